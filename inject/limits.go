package inject

import (
	"encoding/json"
	"fmt"
	"strings"

	"github.com/outrider-dev/outrider/internal/confval"
)

// The injector's own limits. Its memory is bounded in two places: the handler reads
// request bodies into at most MaxInflightBytes of buffers at once, and at most
// MaxConcurrentMutations reviews are decoded and answered at once; Mutate checks the pod against the limits below before
// it decodes the whole pod or generates anything, since the work per pod grows with
// its secret annotations and containers. Every limit is far above what a real pod
// needs; a pod past one is denied with a message naming the limit.
const (
	// MaxReviewBytes bounds the body of one admission request. The API server
	// refuses request bodies over 3MiB, so no review of a pod it accepted is larger;
	// a larger body is refused (413) without being read.
	MaxReviewBytes = 3 << 20
	// MaxInflightBytes bounds the buffers of the request bodies in hand at once,
	// each byte counted twice (a buffer growing to an unknown size may hold two
	// copies), and taken as the bytes arrive, so that a client sending slowly holds
	// only what it sent. A request that would go past it is answered at once with 429
	// Too Many Requests and Retry-After: the API server retries such an answer within
	// the webhook's timeout, then applies the webhook's failurePolicy. Answering
	// quickly rather than queueing keeps a flood from holding memory or the API
	// server's time.
	MaxInflightBytes = 16 << 20
	// MaxConcurrentMutations bounds the pods decoded and injected at once; further
	// requests, already read, wait for a turn.
	MaxConcurrentMutations = 2
	// MaxPodBytes bounds the JSON of a pod that opts in to injection: decoding a pod
	// costs many times its size, and etcd stores objects of up to 1.5MiB.
	MaxPodBytes = 512 << 10
	// MaxSecretFiles bounds the secret-/template- annotations of one pod: each is a
	// file rendered from Vault, a block of the sidecar's configuration and work for
	// every admission.
	MaxSecretFiles = 100
	// MaxContainers bounds the containers and init containers of a pod that opts
	// in: each target container gets its own mounts and environment in the patch.
	MaxContainers = 64
	// MaxPodObjects bounds the JSON objects and lists of a pod that opts in. Each
	// becomes a Go struct or slice of up to about a kilobyte when the pod is decoded,
	// so this bounds decoding to a few megabytes where 512KiB of tiny volumes would
	// take tens.
	MaxPodObjects = 10_000
	// maxAnnotationBytes is Kubernetes' limit on the total size of an object's
	// annotations (keys and values). The API server checks it after the mutating
	// webhooks, so the injector checks it first.
	maxAnnotationBytes = 256 << 10
)

// podShape is the part of a pod the pre-check reads: its annotations and how many
// containers it has, without decoding them.
type podShape struct {
	Metadata struct {
		Annotations map[string]string `json:"annotations"`
	} `json:"metadata"`
	Spec struct {
		Containers          []struct{} `json:"containers"`
		InitContainers      []struct{} `json:"initContainers"`
		EphemeralContainers []struct{} `json:"ephemeralContainers"`
	} `json:"spec"`
	// objects counts the JSON objects and lists, up to just past MaxPodObjects.
	objects int
}

// precheck checks a pod that opted in against the limits above, from its size and
// shape alone, so that a pod made to exhaust the injector is denied before anything
// is generated for it.
func precheck(size int, shape *podShape) problems {
	var p problems
	if size > MaxPodBytes {
		p.add(AnnotationInject, "the pod is %d bytes of JSON, more than the %s the injector accepts for a pod it injects; make the pod smaller (move large values to ConfigMaps)", size, confval.ByteSize(MaxPodBytes))
	}
	annBytes, files := 0, 0
	for k, v := range shape.Metadata.Annotations {
		annBytes += len(k) + len(v)
		if strings.HasPrefix(k, AnnotationSecretPrefix) || strings.HasPrefix(k, AnnotationTemplatePrefix) {
			if _, _, attr := cutSuffix(strings.TrimPrefix(strings.TrimPrefix(k, AnnotationSecretPrefix), AnnotationTemplatePrefix)); !attr {
				files++
			}
		}
	}
	if annBytes > maxAnnotationBytes {
		p.add(AnnotationInject, "the pod's annotations take %d bytes, more than Kubernetes' limit of %s (keys and values together); remove some, or move templates to a ConfigMap", annBytes, confval.ByteSize(maxAnnotationBytes))
	}
	if files > MaxSecretFiles {
		p.add(AnnotationSecretPrefix+"<name>", "the pod has %d secret files (%s<name> and %s<name> annotations), more than the limit of %d; render several values into one file with a template, or split the pod",
			files, AnnotationSecretPrefix, AnnotationTemplatePrefix, MaxSecretFiles)
	}
	if n := len(shape.Spec.Containers) + len(shape.Spec.InitContainers) + len(shape.Spec.EphemeralContainers); n > MaxContainers {
		p.add(AnnotationInject, "the pod has %d containers and init containers, more than the limit of %d for a pod the injector injects", n, MaxContainers)
	}
	if n := shape.objects; n > MaxPodObjects {
		p.add(AnnotationInject, "the pod's JSON holds %d objects and lists, more than the limit of %d for a pod the injector injects; make the pod smaller", n, MaxPodObjects)
	}
	return p
}

// countObjects counts the objects and lists of a JSON document, stopping past limit.
func countObjects(raw []byte, limit int) int {
	n, inString := 0, false
	for i := 0; i < len(raw); i++ {
		c := raw[i]
		switch {
		case inString:
			switch c {
			case '\\':
				i++
			case '"':
				inString = false
			}
		case c == '"':
			inString = true
		case c == '{' || c == '[':
			if n++; n > limit {
				return n
			}
		}
	}
	return n
}

// decodeShape reads the pre-check's view of a pod.
func decodeShape(raw []byte) (*podShape, error) {
	var s podShape
	if err := json.Unmarshal(raw, &s); err != nil {
		return nil, fmt.Errorf("cannot decode the pod: %w", err)
	}
	s.objects = countObjects(raw, MaxPodObjects)
	return &s, nil
}
