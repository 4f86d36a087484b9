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

{{/* Whether Redis is a primary with replicas followed through Sentinels. */}}
{{- define "ferromq.redisReplicated" -}}
{{- if eq .Values.redis.architecture "replication" }}true{{ end }}
{{- end }}

{{/* Key of the external Sentinels' password in the Redis Secret. */}}
{{- define "ferromq.sentinelPasswordKey" -}}
{{- if .Values.redis.existingSecret }}{{ .Values.redis.existingSecretSentinelPasswordKey }}{{ else }}sentinel-password{{ end }}
{{- end }}

{{/* Host name of each bundled Redis node, node 0 first, space-separated. */}}
{{- define "ferromq.redisNodes" -}}
{{- $name := include "ferromq.redisName" . }}
{{- $hosts := list }}
{{- range $i := until (int .Values.redis.replication.nodes) }}
{{- $hosts = append $hosts (printf "%s-%d.%s-headless.%s.svc.%s" $name $i $name $.Release.Namespace $.Values.clusterDomain) }}
{{- end }}
{{- join " " $hosts }}
{{- end }}

{{/* FERROMQ_REDIS_SENTINELS: the bundled Sentinels, or redis.sentinels. */}}
{{- define "ferromq.redisSentinels" -}}
{{- if .Values.redis.bundled }}
{{- $addrs := list }}
{{- range splitList " " (include "ferromq.redisNodes" .) }}
{{- $addrs = append $addrs (printf "%s:26379" .) }}
{{- end }}
{{- join "," $addrs }}
{{- else }}
{{- .Values.redis.sentinels }}
{{- end }}
{{- end }}

{{/* FERROMQ_MIN_REPLICAS_ACK: redis.minReplicasAck, or 1 for a replicated Redis and 0 otherwise. */}}
{{- define "ferromq.minReplicasAck" -}}
{{- if eq (toString .Values.redis.minReplicasAck) "" }}{{ ternary 1 0 (eq .Values.redis.architecture "replication") }}{{ else }}{{ .Values.redis.minReplicasAck }}{{ end }}
{{- end }}

{{/* Environment shared by the data plane and the controller: the store. */}}
{{- define "ferromq.redisEnv" -}}
{{- $secret := include "ferromq.redisSecretName" . }}
{{- if include "ferromq.redisReplicated" . }}
- name: FERROMQ_REDIS_SENTINELS
  value: {{ include "ferromq.redisSentinels" . | quote }}
- name: FERROMQ_REDIS_MASTER_NAME
  value: {{ .Values.redis.masterName | quote }}
{{- /* The bundled Sentinels share the nodes' password; an existing Secret may leave either out. */}}
{{- $optional := and .Values.redis.existingSecret (not .Values.redis.bundled) }}
{{- if or .Values.redis.bundled .Values.redis.password .Values.redis.existingSecret }}
- name: FERROMQ_REDIS_PASSWORD
  valueFrom:
    secretKeyRef:
      name: {{ $secret }}
      key: {{ include "ferromq.redisPasswordKey" . }}
      {{- if $optional }}
      optional: true
      {{- end }}
{{- end }}
{{- if or .Values.redis.bundled .Values.redis.sentinelPassword .Values.redis.existingSecret }}
- name: FERROMQ_REDIS_SENTINEL_PASSWORD
  valueFrom:
    secretKeyRef:
      name: {{ $secret }}
      key: {{ ternary (include "ferromq.redisPasswordKey" .) (include "ferromq.sentinelPasswordKey" .) .Values.redis.bundled }}
      {{- if $optional }}
      optional: true
      {{- end }}
{{- end }}
{{- else }}
- name: REDIS_URL
  valueFrom:
    secretKeyRef:
      name: {{ $secret }}
      key: {{ include "ferromq.redisUrlKey" . }}
{{- if .Values.redis.cluster }}
- name: FERROMQ_REDIS_CLUSTER
  value: "true"
{{- end }}
{{- end }}
{{- if .Values.redis.tls }}
- name: FERROMQ_REDIS_TLS
  value: "true"
{{- end }}
{{- with .Values.redis.caSecret }}
- name: FERROMQ_REDIS_CA
  value: /etc/ferromq/redis-ca/{{ $.Values.redis.caSecretKey }}
{{- end }}
- name: FERROMQ_MIN_REPLICAS_ACK
  value: {{ include "ferromq.minReplicasAck" . | quote }}
- name: FERROMQ_REPLICA_ACK_TIMEOUT
  value: {{ .Values.redis.replicaAckTimeout | quote }}
{{- end }}

{{/* The external Redis' certificate authority, mounted where FERROMQ_REDIS_CA points. */}}
{{- define "ferromq.redisCaMount" -}}
{{- if .Values.redis.caSecret }}
- name: redis-ca
  mountPath: /etc/ferromq/redis-ca
  readOnly: true
{{- end }}
{{- end }}
{{- define "ferromq.redisCaVolume" -}}
{{- with .Values.redis.caSecret }}
- name: redis-ca
  secret:
    secretName: {{ . }}
    defaultMode: 0444
    items:
      - key: {{ $.Values.redis.caSecretKey }}
        path: {{ $.Values.redis.caSecretKey }}
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
{{- pick .Values.redis "bundled" "url" "existingSecret" "existingSecretKey" "existingSecretPasswordKey" "cluster" "password" "architecture" "sentinels" "masterName" "sentinelPassword" "existingSecretSentinelPasswordKey" | toJson | sha256sum }}
{{- end }}
{{- define "ferromq.authChecksum" -}}
{{- .Values.auth | toJson | sha256sum }}
{{- end }}

{{/* Refuses values that cannot work together. */}}
{{- define "ferromq.validate" -}}
{{- $replicated := eq .Values.redis.architecture "replication" }}
{{- if and (not .Values.redis.bundled) (not $replicated) (not .Values.redis.url) (not .Values.redis.existingSecret) }}
{{- fail "redis.bundled is false: set redis.url or redis.existingSecret to the external Redis" }}
{{- end }}
{{- if and $replicated (not .Values.redis.bundled) (not .Values.redis.sentinels) }}
{{- fail "redis.architecture=replication with bundled=false: set redis.sentinels to the external Sentinels" }}
{{- end }}
{{- if and .Values.redis.sentinels (not (and $replicated (not .Values.redis.bundled))) }}
{{- fail "redis.sentinels names external Sentinels: set redis.architecture=replication and redis.bundled=false" }}
{{- end }}
{{- if and $replicated .Values.redis.url }}
{{- fail "redis.url is for architecture=standalone: with replication the Sentinels name the primary" }}
{{- end }}
{{- if and $replicated .Values.redis.cluster }}
{{- fail "redis.cluster is for a Redis Cluster given by redis.url, not architecture=replication" }}
{{- end }}
{{- if and .Values.redis.tls (or .Values.redis.bundled (not $replicated)) }}
{{- fail "redis.tls is for external Sentinels (architecture=replication, bundled=false); a URL asks for TLS with rediss://" }}
{{- end }}
{{- if and .Values.redis.caSecret .Values.redis.bundled }}
{{- fail "redis.caSecret is for an external Redis (the bundled one serves no TLS)" }}
{{- end }}
{{- if and .Values.redis.caSecret (not .Values.redis.tls) (not (hasPrefix "rediss://" .Values.redis.url)) (not .Values.redis.existingSecret) }}
{{- fail "redis.caSecret without TLS: set redis.tls=true (Sentinels) or a rediss:// redis.url" }}
{{- end }}
{{- if and .Values.redis.sentinelPassword (or .Values.redis.bundled .Values.redis.existingSecret) }}
{{- fail "redis.sentinelPassword is for external Sentinels without redis.existingSecret (the bundled Sentinels use redis.password)" }}
{{- end }}
{{- $ack := int (include "ferromq.minReplicasAck" .) }}
{{- if and .Values.redis.bundled (not $replicated) (gt $ack 0) }}
{{- fail "redis.minReplicasAck needs replicas: the bundled standalone Redis has none (set redis.architecture=replication)" }}
{{- end }}
{{- if and .Values.redis.bundled $replicated }}
{{- $nodes := int .Values.redis.replication.nodes }}
{{- $down := int .Values.redis.replication.maxUnavailable }}
{{- if ge $down (sub $nodes (div $nodes 2)) }}
{{- fail "redis.replication.maxUnavailable must leave a majority of the Redis nodes up" }}
{{- end }}
{{- /* A Sentinel goes down with its node: the rest must still reach the quorum. */}}
{{- $quorum := int .Values.redis.replication.quorum }}
{{- if or (le (mul 2 $quorum) $nodes) (gt $quorum (sub $nodes (max 1 $down))) }}
{{- fail "redis.replication.quorum must be a majority of redis.replication.nodes, and reachable with maxUnavailable nodes (at least one) down" }}
{{- end }}
{{- /* A drain of maxUnavailable nodes besides the primary's must leave enough replicas. */}}
{{- if gt $ack (sub (sub $nodes 1) $down) }}
{{- fail "redis.minReplicasAck must leave replicas to spare: at most redis.replication.nodes - 1 - maxUnavailable" }}
{{- end }}
{{- if gt (int .Values.redis.replication.minReplicasToWrite) (sub (sub $nodes 1) $down) }}
{{- fail "redis.replication.minReplicasToWrite must be at most redis.replication.nodes - 1 - maxUnavailable" }}
{{- end }}
{{- if not .Values.redis.persistence.enabled }}
{{- fail "redis.architecture=replication needs redis.persistence.enabled: a primary that comes back empty before the Sentinels notice would empty its replicas" }}
{{- end }}
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
{{- if and .Values.redis.password (or .Values.redis.existingSecret (and (not .Values.redis.bundled) (not $replicated))) }}
{{- fail "redis.password is for the bundled Redis or external Sentinels, without redis.existingSecret (the external Redis' password goes in redis.url)" }}
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

{{/* The bundled Redis' password, for redis-server and Sentinel (REDIS_PASSWORD) and for
redis-cli in the probes (REDISCLI_AUTH). */}}
{{- define "ferromq.redisPasswordEnv" -}}
{{- range list "REDIS_PASSWORD" "REDISCLI_AUTH" }}
- name: {{ . }}
  valueFrom:
    secretKeyRef:
      name: {{ include "ferromq.redisSecretName" $ }}
      key: {{ include "ferromq.redisPasswordKey" $ }}
{{- end }}
{{- end }}

{{/* What files/redis-node.sh reads, beside REDIS_PASSWORD. */}}
{{- define "ferromq.redisNodeEnv" -}}
- name: POD_NAME
  valueFrom:
    fieldRef:
      fieldPath: metadata.name
- name: NODES
  value: {{ include "ferromq.redisNodes" . | quote }}
- name: SELF
  value: "$(POD_NAME).{{ include "ferromq.redisName" . }}-headless.{{ .Release.Namespace }}.svc.{{ .Values.clusterDomain }}"
- name: REDIS_PORT
  value: "6379"
- name: SENTINEL_PORT
  value: "26379"
- name: MASTER_NAME
  value: {{ .Values.redis.masterName | quote }}
- name: QUORUM
  value: {{ .Values.redis.replication.quorum | quote }}
- name: DOWN_AFTER_MS
  value: {{ .Values.redis.replication.downAfterMilliseconds | quote }}
- name: FAILOVER_TIMEOUT_MS
  value: {{ .Values.redis.replication.failoverTimeout | quote }}
- name: CONF_DIR
  value: /conf
{{- end }}
