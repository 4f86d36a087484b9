{{/* Name of the chart, or nameOverride. */}}
{{- define "ferromq.name" -}}
{{- default .Chart.Name .Values.nameOverride | trunc 63 | trimSuffix "-" }}
{{- end }}

{{/* Prefix of every object name: <release>-ferromq, or the release name if it holds the chart name. */}}
{{- define "ferromq.fullname" -}}
{{- if .Values.fullnameOverride }}
{{- .Values.fullnameOverride | trunc 63 | trimSuffix "-" }}
{{- else }}
{{- $name := default .Chart.Name .Values.nameOverride }}
{{- if contains $name .Release.Name }}
{{- .Release.Name | trunc 63 | trimSuffix "-" }}
{{- else }}
{{- printf "%s-%s" .Release.Name $name | trunc 63 | trimSuffix "-" }}
{{- end }}
{{- end }}
{{- end }}

{{- define "ferromq.chart" -}}
{{- printf "%s-%s" .Chart.Name .Chart.Version | replace "+" "_" | trunc 63 | trimSuffix "-" }}
{{- end }}

{{/* Selector labels; call with (dict "ctx" $ "component" "server"). */}}
{{- define "ferromq.selectorLabels" -}}
app.kubernetes.io/name: {{ include "ferromq.name" .ctx }}
app.kubernetes.io/instance: {{ .ctx.Release.Name }}
app.kubernetes.io/component: {{ .component }}
{{- end }}

{{/* A probe of the data plane, over HTTPS when it serves TLS; call with (dict "ctx" $ "probe" ...). */}}
{{- define "ferromq.serverProbe" -}}
{{- $probe := deepCopy .probe }}
{{- if and .ctx.Values.server.tls.secretName $probe.httpGet }}
{{- $_ := set $probe.httpGet "scheme" "HTTPS" }}
{{- end }}
{{- toYaml $probe }}
{{- end }}

{{/* Labels of every object; call with (dict "ctx" $ "component" "server"). */}}
{{- define "ferromq.labels" -}}
helm.sh/chart: {{ include "ferromq.chart" .ctx }}
{{ include "ferromq.selectorLabels" . }}
app.kubernetes.io/version: {{ .ctx.Chart.AppVersion | quote }}
app.kubernetes.io/managed-by: {{ .ctx.Release.Service }}
app.kubernetes.io/part-of: ferromq
{{- with .ctx.Values.commonLabels }}
{{ toYaml . }}
{{- end }}
{{- end }}

{{/*
Labels of pod templates: no chart or app version, so that a chart release that changes
nothing in a pod does not restart it (the single Redis above all).
*/}}
{{- define "ferromq.podLabels" -}}
{{ include "ferromq.selectorLabels" . }}
app.kubernetes.io/part-of: ferromq
{{- with .ctx.Values.commonLabels }}
{{ toYaml . }}
{{- end }}
{{- end }}

{{- define "ferromq.image" -}}
{{- if .Values.image.digest }}
{{- printf "%s@%s" .Values.image.repository .Values.image.digest }}
{{- else }}
{{- printf "%s:%s" .Values.image.repository (default .Chart.AppVersion .Values.image.tag) }}
{{- end }}
{{- end }}

{{- define "ferromq.serverName" -}}{{ include "ferromq.fullname" . }}{{- end }}
{{- define "ferromq.controllerName" -}}{{ include "ferromq.fullname" . }}-controller{{- end }}
{{- define "ferromq.redisName" -}}{{ include "ferromq.fullname" . }}-redis{{- end }}

{{- define "ferromq.serviceAccountName" -}}
{{- if .Values.serviceAccount.create }}{{ default (include "ferromq.fullname" .) .Values.serviceAccount.name }}
{{- else }}{{ default "default" .Values.serviceAccount.name }}{{ end }}
{{- end }}

{{- define "ferromq.controllerServiceAccountName" -}}
{{- if .Values.controller.serviceAccount.create }}{{ default (include "ferromq.controllerName" .) .Values.controller.serviceAccount.name }}
{{- else }}{{ default "default" .Values.controller.serviceAccount.name }}{{ end }}
{{- end }}

{{/* Namespace the controller reconciles; empty for all. */}}
{{- define "ferromq.watchNamespace" -}}
{{- if not .Values.rbac.clusterWide }}{{ default .Release.Namespace .Values.controller.watchNamespace }}{{ end }}
{{- end }}

{{/* Secret holding REDIS_URL (and the bundled Redis' password), and its keys. */}}
{{- define "ferromq.redisSecretName" -}}
{{- default (include "ferromq.redisName" .) .Values.redis.existingSecret }}
{{- end }}
{{- define "ferromq.redisUrlKey" -}}
{{- if .Values.redis.existingSecret }}{{ .Values.redis.existingSecretKey }}{{ else }}redis-url{{ end }}
{{- end }}
{{- define "ferromq.redisPasswordKey" -}}
{{- if .Values.redis.existingSecret }}{{ .Values.redis.existingSecretPasswordKey }}{{ else }}redis-password{{ end }}
{{- end }}

{{- define "ferromq.tokensSecretName" -}}
{{- default (printf "%s-tokens" (include "ferromq.fullname" .)) .Values.auth.existingSecret }}
{{- end }}
{{- define "ferromq.tokensKey" -}}
{{- if .Values.auth.existingSecret }}{{ .Values.auth.existingSecretKey }}{{ else }}tokens{{ end }}
{{- end }}

{{/* Where push subscribers acknowledge: the data plane Service unless server.publicUrl says otherwise. */}}
{{- define "ferromq.serviceUrl" -}}
{{- printf "%s://%s.%s.svc.%s:%v" (ternary "https" "http" (not (empty .Values.server.tls.secretName))) (include "ferromq.serverName" .) .Release.Namespace .Values.clusterDomain .Values.server.service.port }}
{{- end }}
{{- define "ferromq.publicUrl" -}}
{{- default (include "ferromq.serviceUrl" .) .Values.server.publicUrl }}
{{- end }}

{{/* Environment shared by the data plane and the controller: the store. */}}
{{- define "ferromq.redisEnv" -}}
- name: REDIS_URL
  valueFrom:
    secretKeyRef:
      name: {{ include "ferromq.redisSecretName" . }}
      key: {{ include "ferromq.redisUrlKey" . }}
{{- if .Values.redis.cluster }}
- name: FERROMQ_REDIS_CLUSTER
  value: "true"
{{- end }}
{{- end }}

{{/*
Topology spread constraints with labelSelector filled in; call with
(dict "ctx" $ "component" "server" "constraints" list).
*/}}
{{- define "ferromq.topologySpread" -}}
{{- $out := list }}
{{- range .constraints }}
{{- $c := deepCopy . }}
{{- if not $c.labelSelector }}
{{- $_ := set $c "labelSelector" (dict "matchLabels" (include "ferromq.selectorLabels" (dict "ctx" $.ctx "component" $.component) | fromYaml)) }}
{{- end }}
{{- $out = append $out $c }}
{{- end }}
{{- toYaml $out }}
{{- end }}

{{/*
Checksums of the settings pods read only at start-up, as pod annotations: a change in values
restarts the pods that use it. Generated secrets keep their values across upgrades.
*/}}
{{- define "ferromq.redisChecksum" -}}
{{- pick .Values.redis "bundled" "url" "existingSecret" "existingSecretKey" "existingSecretPasswordKey" "cluster" "password" | toJson | sha256sum }}
{{- end }}
{{- define "ferromq.authChecksum" -}}
{{- .Values.auth | toJson | sha256sum }}
{{- end }}

{{/* Refuses values that cannot work together. */}}
{{- define "ferromq.validate" -}}
{{- if and (not .Values.redis.bundled) (not .Values.redis.url) (not .Values.redis.existingSecret) }}
{{- fail "redis.bundled is false: set redis.url or redis.existingSecret to the external Redis" }}
{{- end }}
{{- if and .Values.redis.bundled .Values.redis.url }}
{{- fail "redis.url names an external Redis: set redis.bundled=false to use it" }}
{{- end }}
{{- if and .Values.rbac.clusterWide .Values.controller.watchNamespace }}
{{- fail "controller.watchNamespace needs rbac.clusterWide=false (a Role in that namespace)" }}
{{- end }}
{{- if and .Values.controller.enabled (not .Values.controller.serviceAccount.create) (not .Values.controller.serviceAccount.name) }}
{{- fail "controller.serviceAccount.create=false needs controller.serviceAccount.name: the controller's rights would go to the namespace's default ServiceAccount" }}
{{- end }}
{{- if and .Values.networkPolicy.enabled .Values.metrics.serviceMonitor.enabled (not .Values.networkPolicy.metricsFrom) }}
{{- fail "networkPolicy with metrics.serviceMonitor: set networkPolicy.metricsFrom to the Prometheus pods, or nothing can scrape the controller" }}
{{- end }}
{{- if and .Values.ingress.enabled (not .Values.ingress.hosts) }}
{{- fail "ingress.enabled needs ingress.hosts" }}
{{- end }}
{{- if and .Values.server.autoscaling.enabled (gt (int .Values.server.autoscaling.minReplicas) (int .Values.server.autoscaling.maxReplicas)) }}
{{- fail "server.autoscaling.minReplicas is above maxReplicas" }}
{{- end }}
{{- if and .Values.redis.password (or .Values.redis.existingSecret (not .Values.redis.bundled)) }}
{{- fail "redis.password is for the bundled Redis without redis.existingSecret (the external Redis' password goes in redis.url)" }}
{{- end }}
{{- if and .Values.redis.url .Values.redis.existingSecret }}
{{- fail "set redis.url or redis.existingSecret, not both" }}
{{- end }}
{{- if and .Values.auth.tokens .Values.auth.existingSecret }}
{{- fail "set auth.tokens or auth.existingSecret, not both" }}
{{- end }}
{{- range .Values.auth.tokens }}
{{- if and (has "*" (default list .projects)) (gt (len .projects) 1) }}
{{- fail "a token's projects are either [\"*\"] (every project) or a list of projects, not both" }}
{{- end }}
{{- end }}
{{- end }}
