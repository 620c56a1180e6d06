//go:build depspin

// Package depspin keeps the modules that several features are being built on in go.mod
// while their code is written; it is never compiled into anything.
package depspin

import (
	_ "github.com/compose-spec/compose-go/v2/loader"
	_ "github.com/grafana/grafana-foundation-sdk/go/dashboard"
	_ "github.com/hashicorp/consul-template/template"
	_ "github.com/prometheus/prometheus/promql/parser"
	_ "helm.sh/helm/v4/pkg/action"
)
