{{/*
Names. Kubernetes names are limited to 63 characters (DNS labels).
*/}}
{{- define "foresight.name" -}}
{{- default .Chart.Name .Values.nameOverride | trunc 63 | trimSuffix "-" }}
{{- end }}

{{- define "foresight.fullname" -}}
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

{{- define "foresight.chart" -}}
{{- printf "%s-%s" .Chart.Name .Chart.Version | replace "+" "_" | trunc 63 | trimSuffix "-" }}
{{- end }}

{{/*
Labels of every object; the selector labels never change between upgrades.
*/}}
{{- define "foresight.selectorLabels" -}}
app.kubernetes.io/name: {{ include "foresight.name" . }}
app.kubernetes.io/instance: {{ .Release.Name }}
{{- end }}

{{- define "foresight.labels" -}}
helm.sh/chart: {{ include "foresight.chart" . }}
{{ include "foresight.selectorLabels" . }}
app.kubernetes.io/version: {{ .Values.image.tag | default .Chart.AppVersion | trunc 63 | trimSuffix "-" | quote }}
app.kubernetes.io/managed-by: {{ .Release.Service }}
app.kubernetes.io/part-of: foresight
{{- with .Values.commonLabels }}
{{ toYaml . }}
{{- end }}
{{- end }}

{{- define "foresight.serviceAccountName" -}}
{{- if .Values.serviceAccount.create }}
{{- default (include "foresight.fullname" .) .Values.serviceAccount.name }}
{{- else }}
{{- required "serviceAccount.name is required when serviceAccount.create is false" .Values.serviceAccount.name }}
{{- end }}
{{- end }}

{{- define "foresight.image" -}}
{{- if .Values.image.digest }}
{{- printf "%s@%s" .Values.image.repository .Values.image.digest }}
{{- else }}
{{- printf "%s:%s" .Values.image.repository (.Values.image.tag | default .Chart.AppVersion) }}
{{- end }}
{{- end }}

{{/*
The port foresight listens on: the container port, the probes and the Service target.
*/}}
{{/*
The text of one setting of `config`, "" when unset: `list .Values.config "group" "field"`.
Groups whose lines are all commented out are null, so each level may be missing or null.
*/}}
{{- define "foresight.setting" -}}
{{- $node := index . 0 }}
{{- $found := true }}
{{- range $key := rest . }}
{{- if and $found (kindIs "map" $node) }}
{{- $node = get $node $key }}
{{- else }}
{{- $found = false }}
{{- end }}
{{- end }}
{{- if and $found (not (kindIs "invalid" $node)) }}{{ $node }}{{ end }}
{{- end }}

{{- define "foresight.port" -}}
{{- include "foresight.setting" (list .Values.config "server" "port") | default 8080 | int }}
{{- end }}

{{/*
The port of the API (silences, rules, alerts, PromQL queries): the container port `api` and the Service's.
*/}}
{{- define "foresight.apiPort" -}}
{{- include "foresight.setting" (list .Values.config "server" "api_port") | default 8081 | int }}
{{- end }}

{{/*
The API's address inside the cluster, through the Service: https when the API has a
certificate, whose name `<fullname>.<namespace>.svc` matches this host.
*/}}
{{- define "foresight.apiUrl" -}}
{{- printf "%s://%s.%s.svc:%d" (ternary "https" "http" (not (empty .Values.apiTls.existingSecret))) (include "foresight.fullname" .) .Release.Namespace (.Values.service.apiPort | int) }}
{{- end }}

{{/* A number of seconds as a Prometheus duration (`15s`, `500ms`), for Grafana. */}}
{{- define "foresight.duration" -}}
{{- $seconds := float64 . }}
{{- if eq $seconds (floor $seconds) }}{{ printf "%ds" (int $seconds) }}{{ else }}{{ printf "%dms" (int (round (mulf $seconds 1000) 0)) }}{{ end }}
{{- end }}

{{/* How API callers are checked (`config.server.auth`). */}}
{{- define "foresight.auth" -}}
{{- include "foresight.setting" (list .Values.config "server" "auth") | default "kubernetes" }}
{{- end }}

{{- define "foresight.leaseName" -}}
{{- include "foresight.setting" (list .Values.config "leader" "name") | default (printf "%s-leader" (include "foresight.fullname" .)) }}
{{- end }}

{{/* Where the container finds its files; tests/helm maps these paths to start foresight. */}}
{{- define "foresight.configDir" -}}/etc/foresight/config{{- end }}
{{- define "foresight.configFile" -}}{{ include "foresight.configDir" . }}/foresight.yaml{{- end }}
{{- define "foresight.rulesDir" -}}/etc/foresight/rules{{- end }}
{{- define "foresight.secretsDir" -}}/etc/foresight/secrets{{- end }}
{{- define "foresight.tlsDir" -}}/etc/foresight/tls{{- end }}

{{/*
The settings file: `config` plus what only the chart knows (the namespace of the Lease, its
name, the directory of `alertRules`). Secret values are refused here: the file is a ConfigMap.
*/}}
{{- define "foresight.settings" -}}
{{- $cfg := deepCopy (.Values.config | default dict) }}
{{- with (include "foresight.setting" (list $cfg "webhook" "secret")) }}
{{- fail "config.webhook.secret: a secret must not go into the settings ConfigMap; store it in a Secret and set webhookSecret.existingSecret" }}
{{- end }}
{{- range $i, $receiver := ((get $cfg "notify" | default dict).receivers | default list) }}
{{- range $j, $hook := (get $receiver "webhook_configs" | default list) }}
{{- if get $hook "secret" }}
{{- fail (printf "config.notify.receivers[%d].webhook_configs[%d].secret: a secret must not go into the settings ConfigMap; mount a Secret with secretMounts and set secret_file" $i $j) }}
{{- end }}
{{- end }}
{{- end }}
{{- $mount := trimSuffix "/" .Values.dataMountPath }}
{{- range $setting := list (list "store" "data_dir") (list "rules" "state_dir") }}
{{- $path := include "foresight.setting" (list $cfg (index $setting 0) (index $setting 1)) }}
{{- if and (hasPrefix "/" $path) (not (hasPrefix (printf "%s/" $mount) $path)) (ne $path $mount) }}
{{- fail (printf "config.%s.%s: %s is not below dataMountPath (%s), and the root file system is read-only" (index $setting 0) (index $setting 1) $path $mount) }}
{{- end }}
{{- end }}
{{- /* A group whose lines are all commented out is null; the loader wants a mapping or nothing. */}}
{{- range $group, $settings := $cfg }}
{{- if kindIs "invalid" $settings }}
{{- $_ := unset $cfg $group }}
{{- else if kindIs "map" $settings }}
{{- range $sub := list "route" "delivery" "horizontal" "vertical" }}
{{- if and (hasKey $settings $sub) (kindIs "invalid" (get $settings $sub)) }}
{{- $_ := unset $settings $sub }}
{{- end }}
{{- end }}
{{- end }}
{{- end }}
{{- $leader := get $cfg "leader" | default dict }}
{{- $_ := set $leader "namespace" .Release.Namespace }}
{{- $_ := set $leader "name" (include "foresight.leaseName" .) }}
{{- $_ := set $cfg "leader" $leader }}
{{- if .Values.sharding.enabled }}
{{- /* Shards share one store: refuse a release that would split the data between them. */}}
{{- $storage := get $cfg "storage" | default dict }}
{{- if not (get $storage "query_url") }}
{{- fail "sharding.enabled needs config.storage.query_url: shards read one shared Prometheus-compatible store" }}
{{- end }}
{{- if not (get $cfg "remote_write") }}
{{- fail "sharding.enabled needs config.remote_write: shards send what they collect to the shared store" }}
{{- end }}
{{- $sharding := get $cfg "sharding" | default dict }}
{{- $_ := set $sharding "replicas" (int .Values.replicaCount) }}
{{- $_ := set $sharding "group" (include "foresight.fullname" . | trunc 40 | trimSuffix "-") }}
{{- $_ := set $cfg "sharding" $sharding }}
{{- end }}
{{- if .Values.alertRules }}
{{- $rules := get $cfg "rules" | default dict }}
{{- $files := get $rules "files" | default list }}
{{- $_ := set $rules "files" (append $files (include "foresight.rulesDir" .)) }}
{{- $_ := set $cfg "rules" $rules }}
{{- end }}
{{- toYaml $cfg }}
{{- end }}

{{/*
A probe from values, aimed at the metrics port unless it says otherwise.
*/}}
{{- define "foresight.probe" -}}
{{- $probe := deepCopy . }}
{{- if hasKey $probe "httpGet" }}
{{- $_ := set $probe.httpGet "port" ($probe.httpGet.port | default "metrics") }}
{{- end }}
{{- toYaml $probe }}
{{- end }}

{{/*
The pod template, shared by the Deployment and (with persistence) the StatefulSet.
*/}}
{{- define "foresight.podTemplate" -}}
metadata:
  labels:
    {{- include "foresight.labels" . | nindent 4 }}
    app.kubernetes.io/component: controller
    {{- with .Values.podLabels }}
    {{- toYaml . | nindent 4 }}
    {{- end }}
  annotations:
    # A settings change restarts the pods; rule files are reloaded in place.
    checksum/config: {{ include "foresight.settings" . | sha256sum }}
    {{- with .Values.podAnnotations }}
    {{- toYaml . | nindent 4 }}
    {{- end }}
spec:
  serviceAccountName: {{ include "foresight.serviceAccountName" . }}
  automountServiceAccountToken: {{ .Values.automountServiceAccountToken }}
  enableServiceLinks: false
  {{- with .Values.imagePullSecrets }}
  imagePullSecrets:
    {{- toYaml . | nindent 4 }}
  {{- end }}
  {{- with .Values.priorityClassName }}
  priorityClassName: {{ . }}
  {{- end }}
  securityContext:
    {{- toYaml .Values.podSecurityContext | nindent 4 }}
  terminationGracePeriodSeconds: {{ .Values.terminationGracePeriodSeconds }}
  containers:
    - name: foresight
      image: {{ include "foresight.image" . | quote }}
      imagePullPolicy: {{ .Values.image.pullPolicy }}
      command: ["foresight"]
      args:
        - --config
        - {{ include "foresight.configFile" . }}
        - run
        {{- range .Values.extraArgs }}
        - {{ . | quote }}
        {{- end }}
      env:
        - name: FORESIGHT_LEADER__IDENTITY
          valueFrom:
            fieldRef:
              fieldPath: metadata.name
        - name: FORESIGHT_LEADER__NAMESPACE
          valueFrom:
            fieldRef:
              fieldPath: metadata.namespace
        {{- if .Values.apiTls.existingSecret }}
        - name: FORESIGHT_SERVER__TLS_CERT_FILE
          value: {{ include "foresight.tlsDir" . }}/tls.crt
        - name: FORESIGHT_SERVER__TLS_KEY_FILE
          value: {{ include "foresight.tlsDir" . }}/tls.key
        {{- end }}
        {{- if .Values.externalMetrics.enabled }}
        {{- include "foresight.externalMetrics.podEnv" . | nindent 8 }}
        {{- end }}
        {{- with .Values.webhookSecret.existingSecret }}
        - name: FORESIGHT_WEBHOOK__SECRET
          valueFrom:
            secretKeyRef:
              name: {{ . }}
              key: {{ $.Values.webhookSecret.key }}
        {{- end }}
        {{- with .Values.extraEnv }}
        {{- toYaml . | nindent 8 }}
        {{- end }}
      {{- with .Values.extraEnvFrom }}
      envFrom:
        {{- toYaml . | nindent 8 }}
      {{- end }}
      ports:
        # /metrics, /healthz, /readyz; the API (every request authenticated) on its own port,
        # so the NetworkPolicy can let Prometheus scrape without reaching the API.
        - name: metrics
          containerPort: {{ include "foresight.port" . }}
          protocol: TCP
        - name: api
          containerPort: {{ include "foresight.apiPort" . }}
          protocol: TCP
        {{- if .Values.externalMetrics.enabled }}
        {{- include "foresight.externalMetrics.podPorts" . | nindent 8 }}
        {{- end }}
      {{- with .Values.startupProbe }}
      startupProbe:
        {{- include "foresight.probe" . | nindent 8 }}
      {{- end }}
      {{- with .Values.livenessProbe }}
      livenessProbe:
        {{- include "foresight.probe" . | nindent 8 }}
      {{- end }}
      {{- with .Values.readinessProbe }}
      readinessProbe:
        {{- include "foresight.probe" . | nindent 8 }}
      {{- end }}
      resources:
        {{- toYaml .Values.resources | nindent 8 }}
      securityContext:
        {{- toYaml .Values.securityContext | nindent 8 }}
      volumeMounts:
        - name: config
          mountPath: {{ include "foresight.configDir" . }}
          readOnly: true
        - name: data
          mountPath: {{ .Values.dataMountPath }}
        - name: tmp
          mountPath: /tmp
        {{- if .Values.alertRules }}
        - name: rules
          mountPath: {{ include "foresight.rulesDir" . }}
          readOnly: true
        {{- end }}
        {{- range .Values.secretMounts }}
        - name: secret-{{ .name }}
          mountPath: {{ include "foresight.secretsDir" $ }}/{{ .name }}
          readOnly: true
        {{- end }}
        {{- if .Values.apiTls.existingSecret }}
        # A directory, not subPath files: a renewed Secret reaches the pod and is reloaded.
        - name: api-tls
          mountPath: {{ include "foresight.tlsDir" . }}
          readOnly: true
        {{- end }}
        {{- if .Values.externalMetrics.enabled }}
        {{- include "foresight.externalMetrics.podVolumeMounts" . | nindent 8 }}
        {{- end }}
        {{- with .Values.extraVolumeMounts }}
        {{- toYaml . | nindent 8 }}
        {{- end }}
  volumes:
    - name: config
      configMap:
        name: {{ include "foresight.fullname" . }}-config
    {{- if not .Values.persistence.enabled }}
    - name: data
      emptyDir:
        {{- with .Values.persistence.emptyDirSizeLimit }}
        sizeLimit: {{ . }}
        {{- end }}
    {{- end }}
    - name: tmp
      emptyDir:
        {{- with .Values.tmpSizeLimit }}
        sizeLimit: {{ . }}
        {{- end }}
    {{- if .Values.alertRules }}
    - name: rules
      configMap:
        name: {{ include "foresight.fullname" . }}-rules
    {{- end }}
    {{- range .Values.secretMounts }}
    - name: secret-{{ .name }}
      secret:
        secretName: {{ .name }}
        defaultMode: 0440
        {{- with .items }}
        items:
          {{- toYaml . | nindent 10 }}
        {{- end }}
    {{- end }}
    {{- with .Values.apiTls.existingSecret }}
    - name: api-tls
      secret:
        secretName: {{ . }}
        defaultMode: 0440
        items:
          - {key: tls.crt, path: tls.crt}
          - {key: tls.key, path: tls.key}
    {{- end }}
    {{- if .Values.externalMetrics.enabled }}
    {{- include "foresight.externalMetrics.podVolumes" . | nindent 4 }}
    {{- end }}
    {{- with .Values.extraVolumes }}
    {{- toYaml . | nindent 4 }}
    {{- end }}
  {{- with .Values.nodeSelector }}
  nodeSelector:
    {{- toYaml . | nindent 4 }}
  {{- end }}
  {{- with .Values.tolerations }}
  tolerations:
    {{- toYaml . | nindent 4 }}
  {{- end }}
  affinity:
    {{- if .Values.affinity }}
    {{- toYaml .Values.affinity | nindent 4 }}
    {{- else }}
    # Replicas on different nodes, so that losing a node does not lose the leader and its
    # standby together.
    podAntiAffinity:
      preferredDuringSchedulingIgnoredDuringExecution:
        - weight: 100
          podAffinityTerm:
            topologyKey: kubernetes.io/hostname
            labelSelector:
              matchLabels:
                {{- include "foresight.selectorLabels" . | nindent 16 }}
    {{- end }}
  {{- with .Values.topologySpreadConstraints }}
  topologySpreadConstraints:
    {{- range . }}
    {{- $constraint := deepCopy . }}
    {{- if not (hasKey $constraint "labelSelector") }}
    {{- $_ := set $constraint "labelSelector" (dict "matchLabels" (include "foresight.selectorLabels" $ | fromYaml)) }}
    {{- end }}
    - {{- toYaml $constraint | nindent 6 }}
    {{- end }}
  {{- end }}
{{- end }}
