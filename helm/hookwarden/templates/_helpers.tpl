{{/*
Named templates of the hookwarden chart.

The ones meant for other charts ("hookwarden.sidecar", "hookwarden.volumes",
"hookwarden.podAnnotations") read only .Values, .Release and .Capabilities, never .Chart, so
a chart that has hookwarden as a dependency can call them with a context of its own:

  {{- $hw := dict "Values" .Values.hookwarden "Release" .Release "Capabilities" .Capabilities }}
  initContainers:
    {{- include "hookwarden.sidecar" $hw | nindent 4 }}

where .Values.hookwarden holds this chart's values (defaults included). The resource names
they refer to (the ConfigMap, the PVC) are the ones this chart renders for the same release.
*/}}

{{/* The chart's name, or nameOverride. */}}
{{- define "hookwarden.name" -}}
{{- default "hookwarden" .Values.nameOverride | trunc 63 | trimSuffix "-" }}
{{- end }}

{{/* "<release>-<name>" (or fullnameOverride), at most 63 characters. */}}
{{- define "hookwarden.fullname" -}}
{{- if .Values.fullnameOverride }}
{{- .Values.fullnameOverride | trunc 63 | trimSuffix "-" }}
{{- else }}
{{- $name := default "hookwarden" .Values.nameOverride }}
{{- if contains $name .Release.Name }}
{{- .Release.Name | trunc 63 | trimSuffix "-" }}
{{- else }}
{{- printf "%s-%s" .Release.Name $name | trunc 63 | trimSuffix "-" }}
{{- end }}
{{- end }}
{{- end }}

{{/* Labels that select this release's pods. Test pods do not carry them. */}}
{{- define "hookwarden.selectorLabels" -}}
app.kubernetes.io/name: {{ include "hookwarden.name" . }}
app.kubernetes.io/instance: {{ .Release.Name }}
{{- end }}

{{/* Labels of every resource of the chart itself. */}}
{{- define "hookwarden.labels" -}}
helm.sh/chart: {{ printf "%s-%s" .Chart.Name .Chart.Version | replace "+" "_" | trunc 63 | trimSuffix "-" }}
{{ include "hookwarden.selectorLabels" . }}
app.kubernetes.io/version: {{ .Chart.AppVersion | quote }}
app.kubernetes.io/managed-by: {{ .Release.Service }}
{{- with .Values.commonLabels }}
{{ toYaml . }}
{{- end }}
{{- end }}

{{/* Labels of the `helm test` pods: same release, but never matched by the selector. */}}
{{- define "hookwarden.testSelectorLabels" -}}
app.kubernetes.io/name: {{ printf "%s-test" (include "hookwarden.name" .) | trunc 63 | trimSuffix "-" }}
app.kubernetes.io/instance: {{ .Release.Name }}
{{- end }}

{{- define "hookwarden.testLabels" -}}
helm.sh/chart: {{ printf "%s-%s" .Chart.Name .Chart.Version | replace "+" "_" | trunc 63 | trimSuffix "-" }}
{{ include "hookwarden.testSelectorLabels" . }}
app.kubernetes.io/component: test
app.kubernetes.io/managed-by: {{ .Release.Service }}
{{- end }}

{{/* The ServiceAccount the pod runs as. */}}
{{- define "hookwarden.serviceAccountName" -}}
{{- if .Values.serviceAccount.create }}
{{- default (include "hookwarden.fullname" .) .Values.serviceAccount.name }}
{{- else }}
{{- default "default" .Values.serviceAccount.name }}
{{- end }}
{{- end }}

{{/* The hookwarden image reference; the tag defaults to the chart's appVersion. */}}
{{- define "hookwarden.image" -}}
{{- $tag := .Values.proxy.image.tag }}
{{- if not $tag }}
{{- with .Chart }}{{ $tag = .AppVersion }}{{ end }}
{{- end }}
{{- if not $tag }}
{{- fail "proxy.image.tag is required when the hookwarden templates are included from another chart" }}
{{- end }}
{{- printf "%s:%s" .Values.proxy.image.repository $tag }}
{{- end }}

{{/* The app's image reference. */}}
{{- define "hookwarden.appImage" -}}
{{- $repo := required "app.image.repository is required: the image of the app hookwarden protects" .Values.app.image.repository }}
{{- printf "%s:%s" $repo (default "latest" .Values.app.image.tag) }}
{{- end }}

{{/* "host:port" for a listen address; IPv6 addresses get brackets. */}}
{{- define "hookwarden.hostPort" -}}
{{- $host := index . 0 }}
{{- if contains ":" $host }}
{{- printf "[%s]:%d" $host (int (index . 1)) }}
{{- else }}
{{- printf "%s:%d" $host (int (index . 1)) }}
{{- end }}
{{- end }}

{{/* True ("true") when the cluster has the preStop sleep action (Kubernetes 1.30+). */}}
{{- define "hookwarden.hasSleepAction" -}}
{{- if and .Capabilities (semverCompare ">=1.30.0-0" .Capabilities.KubeVersion.Version) }}true{{ end }}
{{- end }}

{{/* Seconds the app keeps running after the pod is asked to stop (0 without sleep action). */}}
{{- define "hookwarden.appPreStopSleep" -}}
{{- if and (include "hookwarden.hasSleepAction" .) (not .Values.app.lifecycle) }}
{{- if kindIs "invalid" .Values.app.preStopSleepSeconds }}
{{- add .Values.proxy.preStopSleepSeconds .Values.config.server.shutdownGraceSeconds }}
{{- else }}
{{- int .Values.app.preStopSleepSeconds }}
{{- end }}
{{- else }}0{{ end }}
{{- end }}

{{/* Seconds hookwarden keeps accepting after the pod is asked to stop: classic mode only
(in native mode the kubelet stops the sidecar after the app, and the app's preStop covers
the endpoint removal). */}}
{{- define "hookwarden.proxyPreStopSleep" -}}
{{- if and (include "hookwarden.hasSleepAction" .) (eq .Values.proxy.sidecarMode "classic") }}
{{- int .Values.proxy.preStopSleepSeconds }}
{{- else }}0{{ end }}
{{- end }}

{{/* terminationGracePeriodSeconds: given, or long enough for the whole shutdown. */}}
{{- define "hookwarden.terminationGracePeriodSeconds" -}}
{{- $d := .Values.deployment }}
{{- if not (kindIs "invalid" $d.terminationGracePeriodSeconds) }}
{{- int $d.terminationGracePeriodSeconds }}
{{- else }}
{{- $grace := int .Values.config.server.shutdownGraceSeconds }}
{{- $app := add (include "hookwarden.appPreStopSleep" . | int) (int .Values.app.stopSeconds) }}
{{- if eq .Values.proxy.sidecarMode "native" }}
{{- /* the app stops first, then the sidecar drains */}}
{{- add $app $grace 5 }}
{{- else }}
{{- /* both stop together; the sidecar's preStop and drain run beside the app's */}}
{{- add (max $app (add (include "hookwarden.proxyPreStopSleep" . | int) $grace)) 5 }}
{{- end }}
{{- end }}
{{- end }}

{{/* The Secret a route secret entry comes from. */}}
{{- define "hookwarden.secretNameOf" -}}
{{- $entry := index . 0 }}
{{- $root := index . 1 }}
{{- $name := default $root.Values.secrets.existingSecret $entry.secretName }}
{{- required (printf "secrets.existingSecret is required (or secretName on the route secret %q): create the Secret with kubectl create secret generic" $entry.key) $name }}
{{- end }}

{{/* The file a route secret entry is mounted as. */}}
{{- define "hookwarden.secretFile" -}}
{{- $entry := index . 0 }}
{{- $root := index . 1 }}
{{- printf "%s/%s/%s" (trimSuffix "/" $root.Values.secrets.mountPath) (include "hookwarden.secretNameOf" (list $entry $root)) $entry.key }}
{{- end }}

{{/* "true" when the replay store is on Redis (store.backend "redis"). */}}
{{- define "hookwarden.redisStore" -}}
{{- if eq (.Values.store.backend | default "sled") "redis" }}true{{ end }}
{{- end }}

{{/* "true" when the pod needs the store volume: the sled store, or Redis's local fallback. */}}
{{- define "hookwarden.localStore" -}}
{{- if not (include "hookwarden.redisStore" .) }}true
{{- else if eq .Values.store.redis.onUnavailable "local" }}true
{{- end }}
{{- end }}

{{/* The Redis URL's Secret and key, as a route secret entry (for secretNameOf, secretFile). */}}
{{- define "hookwarden.redisUrlEntry" -}}
{{- $r := .Values.store.redis }}
{{- $name := required "store.redis.existingSecret is required with store.backend=redis: the Secret holding the Redis URL (kubectl create secret generic <name> --from-literal=url=redis://...)" $r.existingSecret }}
{{- dict "key" (required "store.redis.urlKey is required with store.backend=redis" $r.urlKey) "secretName" $name | toJson }}
{{- end }}

{{/* The "secrets = [...]" line of one route. */}}
{{- define "hookwarden.routeSecrets" -}}
{{- $route := index . 0 }}
{{- $root := index . 1 }}
{{- $items := list }}
{{- range $route.secrets }}
{{- $item := printf "file = %s" (include "hookwarden.secretFile" (list . $root) | toJson) }}
{{- if .id }}
{{- $item = printf "%s, id = %s" $item (.id | toJson) }}
{{- end }}
{{- $items = append $items (printf "{ %s }" $item) }}
{{- end }}
{{- printf "secrets = [%s]" (join ", " $items) }}
{{- end }}

{{/*
hookwarden.toml, rendered from .Values.config. Strings go through toJson: JSON string
escapes are valid TOML basic-string escapes.
*/}}
{{- define "hookwarden.config" -}}
{{- $v := .Values }}
{{- $c := $v.config -}}
# hookwarden configuration, rendered by the hookwarden Helm chart for release {{ .Release.Name }}.
# Change the chart's values rather than this file: every upgrade replaces it.

[server]
listen = {{ include "hookwarden.hostPort" (list $v.proxy.listenAddress $v.proxy.port) | toJson }}
admin_listen = {{ include "hookwarden.hostPort" (list $v.proxy.listenAddress $v.proxy.adminPort) | toJson }}
threads = {{ int64 $c.server.threads }}
unmatched = {{ $c.server.unmatched | toJson }}
trusted_header_prefix = {{ $c.server.trustedHeaderPrefix | toJson }}
body_timeout_seconds = {{ int64 $c.server.bodyTimeoutSeconds }}
shutdown_grace_seconds = {{ int64 $c.server.shutdownGraceSeconds }}

[upstream]
url = {{ printf "http://127.0.0.1:%d" (int $v.app.port) | toJson }}
timeout_seconds = {{ int64 $c.upstream.timeoutSeconds }}

[store]
{{- if include "hookwarden.redisStore" . }}
{{- $r := $v.store.redis }}
backend = "redis"
redis_url = { file = {{ include "hookwarden.secretFile" (list (include "hookwarden.redisUrlEntry" . | fromJson) .) | toJson }} }
redis_prefix = {{ $r.prefix | toJson }}
redis_timeout_ms = {{ int64 $r.timeoutMs }}
on_unavailable = {{ $r.onUnavailable | toJson }}
{{- end }}
{{- if include "hookwarden.localStore" . }}
path = {{ printf "%s/store" (trimSuffix "/" $v.store.mountPath) | toJson }}
{{- end }}
retention_seconds = {{ int64 $c.store.retentionSeconds }}
sync = {{ $c.store.sync | toJson }}
{{- if not (kindIs "invalid" $c.store.leaseSeconds) }}
lease_seconds = {{ int64 $c.store.leaseSeconds }}
{{- end }}
{{- if not (kindIs "invalid" $c.store.cacheBytes) }}
cache_bytes = {{ int64 $c.store.cacheBytes }}
{{- end }}
{{- range $c.routes }}

[[routes]]
name = {{ .name | toJson }}
path = {{ .path | toJson }}
scheme = {{ .scheme | toJson }}
tolerance_seconds = {{ int64 .toleranceSeconds }}
max_body_bytes = {{ int64 .maxBodyBytes }}
{{ include "hookwarden.routeSecrets" (list . $) }}
{{- end }}
{{- end }}

{{/* Checks that no schema can express; rendered nowhere, included for its failures. */}}
{{- define "hookwarden.validate" -}}
{{- $v := .Values }}
{{- $ports := list (int $v.app.port) (int $v.proxy.port) (int $v.proxy.adminPort) }}
{{- if ne (len ($ports | uniq)) 3 }}
{{- fail (printf "app.port (%d), proxy.port (%d) and proxy.adminPort (%d) must all differ" (int $v.app.port) (int $v.proxy.port) (int $v.proxy.adminPort)) }}
{{- end }}
{{- if and $v.store.persistence.enabled (gt (int $v.deployment.replicaCount) 1) }}
{{- fail "store.persistence.enabled allows one replica only: pods cannot share one sled store (for several replicas use the emptyDir, or store.backend=redis)" }}
{{- end }}
{{- if include "hookwarden.redisStore" . }}
{{- $_ := include "hookwarden.redisUrlEntry" . }}
{{- if and $v.store.persistence.enabled (not (include "hookwarden.localStore" .)) }}
{{- fail "store.persistence.enabled has no use with store.backend=redis and store.redis.onUnavailable=refuse: there is no local store to keep (set onUnavailable=local for a fallback store on the PVC, or turn persistence off)" }}
{{- end }}
{{- end }}
{{- range $v.config.routes }}
{{- range .secrets }}
{{- $_ := include "hookwarden.secretNameOf" (list . $) }}
{{- end }}
{{- end }}
{{- end }}

{{/* Pod annotations: the config checksum that rolls pods, and scrape hints. */}}
{{- define "hookwarden.podAnnotations" -}}
checksum/config: {{ include "hookwarden.config" . | sha256sum }}
{{- if .Values.metrics.podAnnotations }}
prometheus.io/scrape: "true"
prometheus.io/port: {{ .Values.proxy.adminPort | int | quote }}
prometheus.io/path: /metrics
{{- end }}
{{- end }}

{{/*
The hookwarden container, as one list item. In native mode it carries
restartPolicy: Always and belongs under initContainers; in classic mode under containers.
It needs the volumes of "hookwarden.volumes".
*/}}
{{- define "hookwarden.sidecar" -}}
{{- $p := .Values.proxy }}
{{- $preStop := include "hookwarden.proxyPreStopSleep" . | int -}}
- name: hookwarden
  image: {{ include "hookwarden.image" . | quote }}
  imagePullPolicy: {{ $p.image.pullPolicy }}
  {{- if eq $p.sidecarMode "native" }}
  restartPolicy: Always
  {{- end }}
  args:
    {{- if $p.logFormat }}
    - --log-format
    - {{ $p.logFormat | quote }}
    {{- end }}
    - run
    - --config
    - /etc/hookwarden/hookwarden.toml
  ports:
    - name: proxy
      containerPort: {{ int $p.port }}
      protocol: TCP
    - name: admin
      containerPort: {{ int $p.adminPort }}
      protocol: TCP
  {{- with $p.env }}
  env:
    {{- toYaml . | nindent 4 }}
  {{- end }}
  startupProbe:
    httpGet:
      path: /livez
      port: admin
    {{- toYaml $p.startupProbe | nindent 4 }}
  livenessProbe:
    httpGet:
      path: /livez
      port: admin
    {{- toYaml $p.livenessProbe | nindent 4 }}
  readinessProbe:
    httpGet:
      path: /readyz
      port: admin
    {{- toYaml $p.readinessProbe | nindent 4 }}
  {{- if gt $preStop 0 }}
  lifecycle:
    preStop:
      sleep:
        seconds: {{ $preStop }}
  {{- end }}
  {{- with $p.resources }}
  resources:
    {{- toYaml . | nindent 4 }}
  {{- end }}
  securityContext:
    {{- toYaml $p.securityContext | nindent 4 }}
  volumeMounts:
    - name: hookwarden-config
      mountPath: /etc/hookwarden
      readOnly: true
    - name: hookwarden-secrets
      mountPath: {{ .Values.secrets.mountPath }}
      readOnly: true
    {{- if include "hookwarden.localStore" . }}
    - name: hookwarden-store
      mountPath: {{ .Values.store.mountPath }}
    {{- end }}
    - name: hookwarden-tmp
      mountPath: /tmp
{{- end }}

{{/*
The projected volume of the Secrets the sidecar reads, one folder per Secret, no subPath:
the routes' secrets and, with store.backend "redis", the Redis URL.
*/}}
{{- define "hookwarden.secretsVolume" -}}
{{- include "hookwarden.projectedSecrets" (list . true) }}
{{- end }}

{{/* The same volume with the routes' secrets only (the `helm test` pods need no Redis URL). */}}
{{- define "hookwarden.routeSecretsVolume" -}}
{{- include "hookwarden.projectedSecrets" (list . false) }}
{{- end }}

{{- define "hookwarden.projectedSecrets" -}}
{{- $root := index . 0 }}
{{- $entries := list }}
{{- range $root.Values.config.routes }}
{{- $entries = concat $entries .secrets }}
{{- end }}
{{- if and (index . 1) (include "hookwarden.redisStore" $root) }}
{{- $entries = append $entries (include "hookwarden.redisUrlEntry" $root | fromJson) }}
{{- end }}
{{- $bySecret := dict }}
{{- range $entries }}
{{- $name := include "hookwarden.secretNameOf" (list . $root) }}
{{- $keys := get $bySecret $name | default (list) }}
{{- $_ := set $bySecret $name (append $keys .key | uniq) }}
{{- end -}}
- name: hookwarden-secrets
  projected:
    sources:
      {{- range $name := keys $bySecret | sortAlpha }}
      - secret:
          name: {{ $name }}
          items:
            {{- range get $bySecret $name | sortAlpha }}
            - key: {{ . }}
              path: {{ printf "%s/%s" $name . }}
            {{- end }}
      {{- end }}
{{- end }}

{{/* The volumes the sidecar mounts, as list items for a pod's volumes. */}}
{{- define "hookwarden.volumes" -}}
{{- $s := .Values.store -}}
- name: hookwarden-config
  configMap:
    name: {{ include "hookwarden.fullname" . }}
{{ include "hookwarden.secretsVolume" . }}
{{- if include "hookwarden.localStore" . }}
- name: hookwarden-store
  {{- if $s.persistence.enabled }}
  persistentVolumeClaim:
    claimName: {{ $s.persistence.existingClaim | default (printf "%s-store" (include "hookwarden.fullname" .)) }}
  {{- else }}
  emptyDir:
    {{- with $s.emptyDir.medium }}
    medium: {{ . }}
    {{- end }}
    sizeLimit: {{ $s.emptyDir.sizeLimit }}
  {{- end }}
{{- end }}
- name: hookwarden-tmp
  emptyDir:
    medium: Memory
    sizeLimit: {{ .Values.proxy.tmpSizeLimit }}
{{- end }}

{{/*
A hookwarden config for a `helm test` pod: the tested route only, signed with its real
secret ("signed") or with a wrong one from HOOKWARDEN_TEST_FORGED_SECRET ("forged").
Called with (list root route kind).
*/}}
{{- define "hookwarden.testConfig" -}}
{{- $root := index . 0 }}
{{- $route := index . 1 }}
{{- $kind := index . 2 -}}
# `hookwarden sign` config of the {{ $kind }} helm test delivery (nothing listens with it).
[server]
listen = "127.0.0.1:8080"
admin_listen = "127.0.0.1:9090"

[upstream]
url = "http://127.0.0.1:3000"

[store]
path = "/tmp/hookwarden-test-store"

[[routes]]
name = {{ $route.name | toJson }}
path = {{ $route.path | toJson }}
scheme = {{ $route.scheme | toJson }}
tolerance_seconds = {{ int64 $route.toleranceSeconds }}
max_body_bytes = {{ int64 $route.maxBodyBytes }}
{{- if eq $kind "signed" }}
{{ include "hookwarden.routeSecrets" (list (dict "secrets" (list (first $route.secrets))) $root) }}
{{- else }}
secrets = [{ env = "HOOKWARDEN_TEST_FORGED_SECRET" }]
{{- end }}
{{- end }}

{{/* The route `helm test` delivers to. */}}
{{- define "hookwarden.testRoute" -}}
{{- $want := .Values.tests.route | default (first .Values.config.routes).name }}
{{- $found := dict }}
{{- range .Values.config.routes }}
{{- if eq .name $want }}{{ $_ := set $found "route" . }}{{ end }}
{{- end }}
{{- if not $found.route }}
{{- fail (printf "tests.route %q names no route in config.routes" $want) }}
{{- end }}
{{- toJson $found.route }}
{{- end }}
