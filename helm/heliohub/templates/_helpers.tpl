{{/* The prefix of this chart's resource names: the release name, followed by "-heliohub" unless it holds it
(Helm's fullname convention), so the release `heliohub` has `heliohub-archive` and the release `second` has
`second-heliohub-archive`. The hub's and the gateway's extraConfig (values.yaml) apply the same rule. */}}
{{- define "heliohub.fullname" -}}
{{- if contains "heliohub" .Release.Name }}{{ .Release.Name }}{{ else }}{{ .Release.Name }}-heliohub{{ end }}
{{- end }}

{{/* The chart's labels, as Helm's best practices name them. */}}
{{- define "heliohub.labels" -}}
app.kubernetes.io/name: heliohub
app.kubernetes.io/instance: {{ .Release.Name }}
app.kubernetes.io/version: {{ .Chart.AppVersion | quote }}
app.kubernetes.io/managed-by: {{ .Release.Service }}
helm.sh/chart: {{ printf "%s-%s" .Chart.Name .Chart.Version | quote }}
{{- end }}

{{/* A Secret of S3 keys named $name from $keys (accessKeyId, secretAccessKey), when $keys.create. */}}
{{- define "heliohub.keysSecret" -}}
{{- $ := index . 0 }}{{- $name := index . 1 }}{{- $keys := index . 2 }}{{- $what := index . 3 }}
{{- if $keys.create }}
{{- if not (and $keys.accessKeyId $keys.secretAccessKey) }}
{{- fail (printf "archive.%s.create is true: set archive.%s.accessKeyId and archive.%s.secretAccessKey, or set archive.%s.create to false and create the Secret %s yourself" $what $what $what $what $name) }}
{{- end }}
apiVersion: v1
kind: Secret
metadata:
  name: {{ $name }}
  labels:
    {{- include "heliohub.labels" $ | nindent 4 }}
type: Opaque
stringData:
  AWS_ACCESS_KEY_ID: {{ $keys.accessKeyId | quote }}
  AWS_SECRET_ACCESS_KEY: {{ $keys.secretAccessKey | quote }}
{{- end }}
{{- end }}
