package kubetest

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"

	"k8s.io/apimachinery/pkg/runtime/schema"
	utilyaml "k8s.io/apimachinery/pkg/util/yaml"
	"sigs.k8s.io/yaml"
)

// FieldManager is the field manager of Apply's server-side applies.
const FieldManager = "kubetest"

// Apply applies every document of a multi-document YAML stream (e.g. a kustomize
// build of deploy/), in order, like `kubectl apply --server-side --force-conflicts
// --validate=strict`: an object with metadata.name is created, or updated when it
// exists; one with only metadata.generateName is created. Any kind the API server
// serves works (the REST path comes from discovery), and a kind "List" applies its
// items. Unknown or duplicate fields are errors. Empty documents are skipped.
//
// It stops at the first document the API server rejects and returns an error that
// names the document (1-based), its kind and name, and carries the API server's
// error text (a *StatusError, see StatusReason). Applying a Namespace also creates
// its "default" ServiceAccount, as the controller manager would.
func (c *Client) Apply(ctx context.Context, yamlDocs []byte) error {
	docs, err := splitYAML(yamlDocs)
	if err != nil {
		return err
	}
	for i, doc := range docs {
		if err := c.applyJSON(ctx, doc); err != nil {
			return fmt.Errorf("document %d: %w", i+1, err)
		}
	}
	return nil
}

// splitYAML splits a YAML stream at its "---" lines and converts each non-empty
// document to JSON.
func splitYAML(data []byte) ([][]byte, error) {
	r := utilyaml.NewYAMLReader(bufio.NewReader(bytes.NewReader(data)))
	var docs [][]byte
	for i := 1; ; i++ {
		doc, err := r.Read()
		if errors.Is(err, io.EOF) {
			return docs, nil
		}
		if err != nil {
			return nil, fmt.Errorf("read YAML document %d: %w", i, err)
		}
		js, err := yaml.YAMLToJSON(doc)
		if err != nil {
			return nil, fmt.Errorf("YAML document %d: %w", i, err)
		}
		if t := bytes.TrimSpace(js); len(t) == 0 || string(t) == "null" {
			continue
		}
		docs = append(docs, js)
	}
}

// objectHead is what Apply reads of an object to route it.
type objectHead struct {
	APIVersion string `json:"apiVersion"`
	Kind       string `json:"kind"`
	Metadata   struct {
		Name         string `json:"name"`
		GenerateName string `json:"generateName"`
		Namespace    string `json:"namespace"`
	} `json:"metadata"`
	Items []json.RawMessage `json:"items"`
}

func (c *Client) applyJSON(ctx context.Context, js []byte) error {
	var h objectHead
	if err := json.Unmarshal(js, &h); err != nil {
		return fmt.Errorf("not a Kubernetes object: %w", err)
	}
	if h.APIVersion == "" || h.Kind == "" {
		return errors.New("not a Kubernetes object: apiVersion and kind must be set")
	}
	if h.APIVersion == "v1" && h.Kind == "List" {
		for i, item := range h.Items {
			if err := c.applyJSON(ctx, item); err != nil {
				return fmt.Errorf("item %d of the List: %w", i+1, err)
			}
		}
		return nil
	}
	what := h.Kind + " " + h.Metadata.Name
	if h.Metadata.Namespace != "" {
		what = h.Kind + " " + h.Metadata.Namespace + "/" + h.Metadata.Name
	}
	path, err := c.Path(ctx, h.APIVersion, h.Kind, h.Metadata.Namespace, h.Metadata.Name)
	if err != nil {
		return fmt.Errorf("%s: %w", what, err)
	}
	switch {
	case h.Metadata.Name != "":
		// JSON is YAML: the apply patch is the document itself.
		q := url.Values{"fieldManager": {FieldManager}, "force": {"true"}, "fieldValidation": {"Strict"}}
		err = c.do(ctx, http.MethodPatch, path+"?"+q.Encode(), "application/apply-patch+yaml", js, nil)
	case h.Metadata.GenerateName != "":
		var stored objectHead
		err = c.do(ctx, http.MethodPost, path+"?fieldValidation=Strict", "application/json", js, &stored)
		h.Metadata.Name = stored.Metadata.Name
	default:
		return fmt.Errorf("%s: metadata.name (or generateName) must be set", h.Kind)
	}
	if err != nil {
		return fmt.Errorf("%s: %w", what, err)
	}
	gv, _ := schema.ParseGroupVersion(h.APIVersion)
	return c.afterCreate(ctx, gv.WithKind(h.Kind), h.Metadata.Name)
}
