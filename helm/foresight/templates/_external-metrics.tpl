{{/*
The external metrics API (externalMetrics): names, and what the pod template adds when it is
enabled. Each `foresight.externalMetrics.pod*` helper renders nothing when it is off.
*/}}
{{- define "foresight.externalMetrics.name" -}}
{{- printf "%s-external-metrics" (include "foresight.fullname" .) | trunc 63 | trimSuffix "-" }}
{{- end }}

{{- define "foresight.externalMetrics.secretName" -}}
{{- if eq .Values.externalMetrics.certificate.source "existingSecret" }}
{{- required "externalMetrics.certificate.existingSecret is required with source existingSecret" .Values.externalMetrics.certificate.existingSecret }}
{{- else }}
{{- printf "%s-tls" (include "foresight.externalMetrics.name" .) }}
{{- end }}
{{- end }}

{{- define "foresight.externalMetrics.tlsDir" -}}/etc/foresight/external-metrics-tls{{- end }}

{{/* Environment of the container: the settings of `external_metrics` the chart owns. */}}
{{- define "foresight.externalMetrics.podEnv" -}}
{{- if .Values.externalMetrics.enabled }}
- name: FORESIGHT_EXTERNAL_METRICS__ENABLED
  value: "true"
- name: FORESIGHT_EXTERNAL_METRICS__PORT
  value: {{ .Values.externalMetrics.port | quote }}
- name: FORESIGHT_EXTERNAL_METRICS__TLS_CERT_FILE
  value: {{ include "foresight.externalMetrics.tlsDir" . }}/tls.crt
- name: FORESIGHT_EXTERNAL_METRICS__TLS_KEY_FILE
  value: {{ include "foresight.externalMetrics.tlsDir" . }}/tls.key
{{- end }}
{{- end }}

{{/* The container port the Service and the APIService reach. */}}
{{- define "foresight.externalMetrics.podPorts" -}}
{{- if .Values.externalMetrics.enabled }}
- name: external-metrics
  containerPort: {{ .Values.externalMetrics.port }}
  protocol: TCP
{{- end }}
{{- end }}

{{/* A directory, not subPath files: a renewed certificate reaches the pod and is reloaded. */}}
{{- define "foresight.externalMetrics.podVolumeMounts" -}}
{{- if .Values.externalMetrics.enabled }}
- name: external-metrics-tls
  mountPath: {{ include "foresight.externalMetrics.tlsDir" . }}
  readOnly: true
{{- end }}
{{- end }}

{{- define "foresight.externalMetrics.podVolumes" -}}
{{- if .Values.externalMetrics.enabled }}
- name: external-metrics-tls
  secret:
    secretName: {{ include "foresight.externalMetrics.secretName" . }}
    defaultMode: 0440
    items:
      - {key: tls.crt, path: tls.crt}
      - {key: tls.key, path: tls.key}
{{- end }}
{{- end }}
