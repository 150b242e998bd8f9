{{- define "fleetmedic.name" -}}fleetmedic{{- end -}}

{{- define "fleetmedic.fullname" -}}
{{- if contains "fleetmedic" .Release.Name -}}{{ .Release.Name | trunc 50 | trimSuffix "-" }}{{- else -}}{{ printf "%s-fleetmedic" .Release.Name | trunc 50 | trimSuffix "-" }}{{- end -}}
{{- end -}}

{{- define "fleetmedic.labels" -}}
app.kubernetes.io/name: fleetmedic
app.kubernetes.io/instance: {{ .Release.Name }}
app.kubernetes.io/version: {{ .Chart.AppVersion | quote }}
app.kubernetes.io/managed-by: {{ .Release.Service }}
helm.sh/chart: {{ printf "%s-%s" .Chart.Name .Chart.Version }}
{{- end -}}

{{- define "fleetmedic.selector" -}}
app.kubernetes.io/name: fleetmedic
app.kubernetes.io/instance: {{ .Release.Name }}
{{- end -}}

{{- define "fleetmedic.image" -}}
{{ .Values.image.repository }}:{{ .Values.image.tag | default .Chart.AppVersion }}
{{- end -}}

{{- define "fleetmedic.executor" -}}
{{- if eq .Values.mode "live" -}}kubernetes{{- else if eq .Values.mode "dry-run" -}}dry-run{{- else -}}{{ fail "mode must be dry-run or live" }}{{- end -}}
{{- end -}}

{{- define "fleetmedic.securityContext" -}}
allowPrivilegeEscalation: false
readOnlyRootFilesystem: true
runAsNonRoot: true
runAsUser: 10001
runAsGroup: 10001
capabilities:
  drop: ["ALL"]
seccompProfile:
  type: RuntimeDefault
{{- end -}}

{{- define "fleetmedic.env" -}}
- name: POD_NAME
  valueFrom:
    fieldRef: {fieldPath: metadata.name}
- name: HOME
  value: /var/lib/fleetmedic
- name: FLEETMEDIC_CONTROL
  value: /var/lib/fleetmedic/heal.sqlite
{{- with .Values.nats.url }}
- name: FLEETMEDIC_NATS_URL
  value: {{ . | quote }}
{{- end }}
{{- end -}}

{{- define "fleetmedic.container" -}}
resources:
  {{- toYaml .Values.resources | nindent 2 }}
securityContext:
  {{- include "fleetmedic.securityContext" . | nindent 2 }}
volumeMounts:
  - {name: data, mountPath: /var/lib/fleetmedic}
  - {name: config, mountPath: /etc/fleetmedic, readOnly: true}
  - {name: tmp, mountPath: /tmp}
  {{- if .Values.prometheus.tokenSecret.name }}
  - {name: prometheus-token, mountPath: /var/run/secrets/fleetmedic/prometheus, readOnly: true}
  {{- end }}
{{- end -}}

{{- define "fleetmedic.volumes" -}}
- name: config
  configMap:
    name: {{ include "fleetmedic.fullname" . }}
- name: tmp
  emptyDir: {}
{{- if .Values.prometheus.tokenSecret.name }}
- name: prometheus-token
  secret:
    secretName: {{ .Values.prometheus.tokenSecret.name }}
    items:
      - {key: {{ .Values.prometheus.tokenSecret.key }}, path: token}
{{- end }}
{{- end -}}

{{- define "fleetmedic.scheduling" -}}
{{- with .Values.nodeSelector }}
nodeSelector:
  {{- toYaml . | nindent 2 }}
{{- end }}
{{- with .Values.tolerations }}
tolerations:
  {{- toYaml . | nindent 2 }}
{{- end }}
{{- with .Values.affinity }}
affinity:
  {{- toYaml . | nindent 2 }}
{{- end }}
{{- end -}}
