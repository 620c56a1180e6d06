{{/*
The prefix of every object's name: the release name when it contains the chart's
name, else <release>-<chart>, at most 50 characters so that the longest derived name
(<prefix>-injector-selfsigned-ca) stays a valid 63-character label.
*/}}
{{- define "outrider.fullname" -}}
{{- if .Values.fullnameOverride -}}
{{- .Values.fullnameOverride | trunc 50 | trimSuffix "-" -}}
{{- else -}}
{{- $name := default .Chart.Name .Values.nameOverride -}}
{{- if contains $name .Release.Name -}}
{{- .Release.Name | trunc 50 | trimSuffix "-" -}}
{{- else -}}
{{- printf "%s-%s" .Release.Name $name | trunc 50 | trimSuffix "-" -}}
{{- end -}}
{{- end -}}
{{- end -}}

{{/*
The injector's name: its Deployment, Service, ServiceAccount, webhook configuration
and the app.kubernetes.io/name label of its pods (outrider-injector for release
"outrider", as in deploy/base).
*/}}
{{- define "outrider.injector" -}}
{{- printf "%s-injector" (include "outrider.fullname" .) -}}
{{- end -}}

{{/* The self-signed mode's Secret holding the CA shared by the replicas. */}}
{{- define "outrider.caSecret" -}}
{{- printf "%s-selfsigned-ca" (include "outrider.injector" .) -}}
{{- end -}}

{{/* The Secret the injector serves its certificate from (cert-manager mode). */}}
{{- define "outrider.tlsSecret" -}}
{{- printf "%s-tls" (include "outrider.injector" .) -}}
{{- end -}}

{{/*
The webhook's namespaceSelector: webhook.namespaceSelector, or when empty the
namespaces labelled outrider.dev/injection=enabled.
*/}}
{{- define "outrider.namespaceSelector" -}}
{{- if .Values.webhook.namespaceSelector -}}
{{- toYaml .Values.webhook.namespaceSelector -}}
{{- else -}}
matchLabels:
  outrider.dev/injection: enabled
{{- end -}}
{{- end -}}

{{/* The image of the injector. */}}
{{- define "outrider.image" -}}
{{- printf "%s:%s" .Values.image.repository (default .Chart.AppVersion .Values.image.tag) -}}
{{- end -}}

{{/*
The selector of the injector's pods. It is also what deploy/base selects, so that a
release can take over objects applied with kustomize (selectors cannot change).
*/}}
{{- define "outrider.selectorLabels" -}}
app.kubernetes.io/name: {{ include "outrider.injector" . }}
{{- end -}}

{{/* The labels of every object: deploy/base's, and Helm's. */}}
{{- define "outrider.labels" -}}
{{ include "outrider.selectorLabels" . }}
app.kubernetes.io/part-of: outrider
app.kubernetes.io/instance: {{ .Release.Name }}
app.kubernetes.io/managed-by: {{ .Release.Service }}
app.kubernetes.io/version: {{ default .Chart.AppVersion .Values.image.tag | quote }}
helm.sh/chart: {{ printf "%s-%s" .Chart.Name .Chart.Version | replace "+" "_" | trunc 63 | trimSuffix "-" }}
{{- end -}}

{{/* The container securityContext of the injector's containers. */}}
{{- define "outrider.containerSecurityContext" -}}
allowPrivilegeEscalation: false
readOnlyRootFilesystem: true
runAsNonRoot: true
capabilities:
  drop:
    - ALL
seccompProfile:
  type: RuntimeDefault
{{- end -}}

{{/*
config.yaml of the injector's ConfigMap: injectorDefaults, with the sidecar image
defaulting to the injector's own, and namespace_overlays given as a map written the
way the injector reads it (<namespace>=<configmap>[/<key>],...).
*/}}
{{- define "outrider.config" -}}
{{- $d := deepCopy .Values.injectorDefaults -}}
{{- if not $d.image -}}
{{- $_ := set $d "image" (include "outrider.image" .) -}}
{{- end -}}
{{- if kindIs "map" $d.namespace_overlays -}}
{{- $items := list -}}
{{- range $ns := keys $d.namespace_overlays | sortAlpha -}}
{{- $items = append $items (printf "%s=%s" $ns (index $d.namespace_overlays $ns)) -}}
{{- end -}}
{{- $_ := set $d "namespace_overlays" (join "," $items) -}}
{{- end -}}
{{- toYaml $d -}}
{{- end -}}

{{/*
Checks of the values that values.schema.json cannot express; each failure says what
to change.
*/}}
{{- define "outrider.validate" -}}
{{- if and .Values.podDisruptionBudget.enabled (ge (int .Values.podDisruptionBudget.minAvailable) (int .Values.replicas)) -}}
{{- fail (printf "podDisruptionBudget.minAvailable (%d) must be below replicas (%d), or every node drain waits forever: raise replicas or set podDisruptionBudget.enabled: false" (int .Values.podDisruptionBudget.minAvailable) (int .Values.replicas)) -}}
{{- end -}}
{{- if hasKey .Values.injectorDefaults "sentry_dsn" -}}
{{- fail "injectorDefaults.sentry_dsn: a DSN given to the injector would be copied in clear into every injected pod's outrider.dev/config annotation; put it in a Secret in each namespace and set injectorDefaults.sentry_dsn_secret: <secret>/<key> instead" -}}
{{- end -}}
{{- range $l := list "app.kubernetes.io/name" "app.kubernetes.io/component" "app.kubernetes.io/part-of" "app.kubernetes.io/instance" -}}
{{- if hasKey $.Values.podLabels $l -}}
{{- fail (printf "podLabels: %s is set by the chart (the Service, PodDisruptionBudget and webhook select the injector's pods by it); use another label" $l) -}}
{{- end -}}
{{- end -}}
{{- include "outrider.validateCredentials" . -}}
{{- range .Values.webhook.objectSelector.matchExpressions -}}
{{- if eq .key "app.kubernetes.io/name" -}}
{{- fail "webhook.objectSelector: app.kubernetes.io/name is reserved: the chart excludes the injector's own pods with it; select on another label" -}}
{{- end -}}
{{- end -}}
{{- if hasKey (default (dict) .Values.webhook.objectSelector.matchLabels) "app.kubernetes.io/name" -}}
{{- fail "webhook.objectSelector: app.kubernetes.io/name is reserved: the chart excludes the injector's own pods with it; select on another label" -}}
{{- end -}}
{{- end -}}

{{/*
Checks of the references to Secrets and ConfigMaps in injectorDefaults, here rather
than in values.schema.json, whose messages repeat the value: a credential pasted in
place of its Secret's name must not be printed back.
*/}}
{{- define "outrider.validateCredentials" -}}
{{- $d := .Values.injectorDefaults -}}
{{- $secret := "[a-z0-9]([-a-z0-9.]*[a-z0-9])?" -}}
{{- $key := "[-._a-zA-Z0-9]+" -}}
{{- $header := printf "\\s*[A-Za-z0-9!#$%%&'*+.^_`|~-]+\\s*=\\s*%s/%s\\s*" $secret $key -}}
{{- range $k := list "sentry_dsn_secret" "loki_bearer_token_secret" "loki_ca_secret" "tempo_ca_secret" "sentry_ca_secret" -}}
{{- $v := index $d $k -}}
{{- if and $v (not (regexMatch (printf "^%s/%s$" $secret $key) (toString $v))) -}}
{{- fail (printf "injectorDefaults.%s must be <secret>/<key>, naming a Secret of each injected pod's namespace and its key, such as backend-auth/token; never the credential itself (the value given is not repeated here)" $k) -}}
{{- end -}}
{{- end -}}
{{- range $k := list "loki_basic_auth_secret" "loki_client_cert_secret" "tempo_client_cert_secret" "sentry_client_cert_secret" -}}
{{- $v := index $d $k -}}
{{- if and $v (or (gt (len (toString $v)) 253) (not (regexMatch (printf "^%s$" $secret) (toString $v)))) -}}
{{- fail (printf "injectorDefaults.%s must be the name of a Secret of each injected pod's namespace, such as backend-auth; never the credential itself (the value given is not repeated here)" $k) -}}
{{- end -}}
{{- end -}}
{{- with $d.tempo_headers_secret -}}
{{- if not (regexMatch (printf "^%s(,%s)*$" $header $header) (toString .)) -}}
{{- fail "injectorDefaults.tempo_headers_secret must list <Header>=<secret>/<key>, comma-separated, such as X-Scope-OrgID=tempo-auth/tenant,Authorization=tempo-auth/authorization; never the header values themselves (the value given is not repeated here)" -}}
{{- end -}}
{{- end -}}
{{- $overlays := $d.namespace_overlays -}}
{{- if kindIs "string" $overlays -}}
{{- $m := dict -}}
{{- range $item := splitList "," $overlays -}}
{{- if trim $item -}}
{{- $kv := splitn "=" 2 (trim $item) -}}
{{- $ns := trim $kv._0 -}}
{{- if hasKey $m $ns -}}
{{- fail (printf "injectorDefaults.namespace_overlays: namespace %s is listed twice; keep one" $ns) -}}
{{- end -}}
{{- $_ := set $m $ns (trim (default "" $kv._1)) -}}
{{- end -}}
{{- end -}}
{{- $overlays = $m -}}
{{- end -}}
{{- range $ns, $ref := $overlays -}}
{{- if not (or (eq $ns "*") (and (le (len $ns) 63) (regexMatch "^[a-z0-9]([-a-z0-9]*[a-z0-9])?$" $ns))) -}}
{{- fail (printf "injectorDefaults.namespace_overlays: %q is not a namespace name (or \"*\" for every other namespace)" $ns) -}}
{{- end -}}
{{- if not (regexMatch (printf "^%s(/%s)?$" $secret $key) (toString $ref)) -}}
{{- fail (printf "injectorDefaults.namespace_overlays: the overlay of %s, %q, must be <configmap> or <configmap>/<key>, a ConfigMap of that namespace" $ns (toString $ref)) -}}
{{- end -}}
{{- end -}}
{{- end -}}
