package main

import (
	"bufio"
	"bytes"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"strings"

	utilyaml "k8s.io/apimachinery/pkg/util/yaml"
	"sigs.k8s.io/yaml"

	"github.com/outrider-dev/outrider/inject"
)

// maxInjectInput bounds what `outrider inject -f` reads: far more than any set of
// manifests, and what keeps a wrong file (a disk image, /dev/zero) from exhausting
// memory.
const maxInjectInput = 32 << 20

// injectFile is `outrider inject -f FILE`: it injects the pods of the objects in
// FILE ("-": standard input) through the same Mutate as the webhook, with the
// injector's defaults from the flags and --config, and prints the objects as YAML
// (like istioctl kube-inject); objects that hold no pod are printed as they are. A
// denied pod prints its reason on stderr, and nothing is printed on stdout then, so
// that a pipe into kubectl applies all or nothing.
func injectFile(fs *flag.FlagSet, f *injectFlags, stdin io.Reader, stdout, stderr io.Writer) int {
	defaults, err := injectDefaults(fs, f)
	if err != nil {
		fmt.Fprintf(stderr, "outrider inject: %v\n", err)
		return exitUsage
	}
	injector, err := inject.NewInjector(defaults)
	if err != nil {
		fmt.Fprintf(stderr, "outrider inject: invalid defaults: %v\n", err)
		return exitUsage
	}
	name := f.file
	var r io.Reader
	if f.file == "-" {
		name, r = "<stdin>", stdin
	} else {
		file, err := os.Open(f.file)
		if err != nil {
			fmt.Fprintf(stderr, "outrider inject: %v\n", err)
			return exitUsage
		}
		defer file.Close()
		r = file
	}
	data, err := io.ReadAll(io.LimitReader(r, maxInjectInput+1))
	if err != nil {
		fmt.Fprintf(stderr, "outrider inject: read %s: %v\n", name, err)
		return exitFailed
	}
	if len(data) > maxInjectInput {
		fmt.Fprintf(stderr, "outrider inject: %s is more than the limit of %d MiB; split it\n", name, maxInjectInput>>20)
		return exitUsage
	}
	docs, err := splitDocuments(data)
	if err != nil {
		fmt.Fprintf(stderr, "outrider inject: %s: %v\n", name, err)
		return exitUsage
	}
	if len(docs) == 0 {
		fmt.Fprintf(stderr, "outrider inject: %s holds no object; give a Pod, Deployment, StatefulSet, DaemonSet, Job or CronJob\n", name)
		return exitUsage
	}
	var out bytes.Buffer
	failed := false
	for i, doc := range docs {
		y, err := injectDocument(injector, doc.json, func(w string) {
			fmt.Fprintf(stderr, "outrider inject: %s document %d (%s): warning: %s\n", name, i+1, doc.what, w)
		})
		if err != nil {
			fmt.Fprintf(stderr, "outrider inject: %s document %d (%s): %v\n", name, i+1, doc.what, err)
			failed = true
			continue
		}
		if out.Len() > 0 {
			out.WriteString("---\n")
		}
		out.Write(y)
	}
	if failed {
		return exitFailed
	}
	_, _ = stdout.Write(out.Bytes())
	return exitOK
}

// document is one object of the input, as JSON.
type document struct {
	json []byte
	what string // kind and name, for messages
}

// splitDocuments splits a YAML (or JSON) stream at its "---" lines into objects,
// skipping empty documents and opening kind List.
func splitDocuments(data []byte) ([]document, error) {
	r := utilyaml.NewYAMLReader(bufio.NewReader(bytes.NewReader(data)))
	var docs []document
	for i := 1; ; i++ {
		doc, err := r.Read()
		if errors.Is(err, io.EOF) {
			return docs, nil
		}
		if err != nil {
			return nil, fmt.Errorf("document %d: %w", i, err)
		}
		js, err := yaml.YAMLToJSON(doc)
		if err != nil {
			return nil, fmt.Errorf("document %d is not YAML: %w", i, err)
		}
		if t := bytes.TrimSpace(js); len(t) == 0 || string(t) == "null" {
			continue
		}
		var head struct {
			Kind     string                `json:"kind"`
			Metadata struct{ Name string } `json:"metadata"`
			Items    []json.RawMessage     `json:"items"`
		}
		if err := json.Unmarshal(js, &head); err != nil {
			return nil, fmt.Errorf("document %d is not a Kubernetes object: %w", i, err)
		}
		if strings.HasSuffix(head.Kind, "List") {
			for _, item := range head.Items {
				var h struct {
					Kind     string `json:"kind"`
					Metadata struct{ Name string }
				}
				_ = json.Unmarshal(item, &h)
				docs = append(docs, document{json: item, what: h.Kind + " " + h.Metadata.Name})
			}
			continue
		}
		docs = append(docs, document{json: js, what: head.Kind + " " + head.Metadata.Name})
	}
}

// injectDocument injects one object and returns it as YAML.
func injectDocument(in *inject.Injector, js []byte, warn func(string)) ([]byte, error) {
	pv, err := in.InjectObject(js)
	if errors.Is(err, inject.ErrNoPod) {
		var kind struct {
			Kind string `json:"kind"`
		}
		if json.Unmarshal(js, &kind) == nil && kind.Kind != "" {
			return yaml.JSONToYAML(js) // printed as it is, like the rest of a manifest
		}
	}
	if err != nil {
		return nil, err
	}
	for _, w := range pv.Warnings {
		warn(w)
	}
	if !pv.Injected {
		switch pv.Result {
		case inject.ResultSkipped:
			warn(fmt.Sprintf("not injected: the pod does not opt in (%s: \"true\") or is injected already", inject.AnnotationInject))
		}
	}
	return yaml.JSONToYAML(pv.Object)
}
