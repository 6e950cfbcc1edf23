{{/* The chart name, or nameOverride. */}}
{{- define "authedapi.name" -}}
{{- default .Chart.Name .Values.nameOverride | trunc 63 | trimSuffix "-" }}
{{- end }}

{{/* The full name of every resource: <release>-<name>, or the release name when it
already contains the chart name; fullnameOverride wins. */}}
{{- define "authedapi.fullname" -}}
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

{{/* chart-version, for the helm.sh/chart label. */}}
{{- define "authedapi.chart" -}}
{{- printf "%s-%s" .Chart.Name .Chart.Version | replace "+" "_" | trunc 63 | trimSuffix "-" }}
{{- end }}

{{/* Labels of every resource. */}}
{{- define "authedapi.labels" -}}
helm.sh/chart: {{ include "authedapi.chart" . }}
{{ include "authedapi.selectorLabels" . }}
app.kubernetes.io/version: {{ .Values.image.tag | default .Chart.AppVersion | replace "+" "_" | trunc 63 | trimSuffix "-" | quote }}
app.kubernetes.io/component: operator
app.kubernetes.io/part-of: authedapi
app.kubernetes.io/managed-by: {{ .Release.Service }}
{{- end }}

{{/* Labels that select the operator's pods. */}}
{{- define "authedapi.selectorLabels" -}}
app.kubernetes.io/name: {{ include "authedapi.name" . }}
app.kubernetes.io/instance: {{ .Release.Name }}
{{- end }}

{{/* The ServiceAccount the operator runs as. */}}
{{- define "authedapi.serviceAccountName" -}}
{{- if .Values.serviceAccount.create }}
{{- default (include "authedapi.fullname" .) .Values.serviceAccount.name }}
{{- else }}
{{- required "serviceAccount.name is required when serviceAccount.create is false" .Values.serviceAccount.name }}
{{- end }}
{{- end }}

{{/* The operator's image: repository@digest when image.digest is set (the tag is then
ignored), else repository:tag (default tag: the chart's appVersion). */}}
{{- define "authedapi.image" -}}
{{- if .Values.image.digest }}
{{- printf "%s@%s" .Values.image.repository .Values.image.digest }}
{{- else }}
{{- printf "%s:%s" .Values.image.repository (.Values.image.tag | default .Chart.AppVersion) }}
{{- end }}
{{- end }}

{{/* "true" when leader election is on: asked for, or more than one replica. */}}
{{- define "authedapi.leaderElect" -}}
{{- if or .Values.leaderElection.enabled (gt (int .Values.replicas) 1) }}true{{ end }}
{{- end }}

{{/* The operator's ServiceAccount as the API server names it in requests. */}}
{{- define "authedapi.serviceAccountUser" -}}
system:serviceaccount:{{ .Release.Namespace }}:{{ include "authedapi.serviceAccountName" . }}
{{- end }}

{{/* The RBAC rules the operator needs on AuthedApi objects, events and its outputs
ConfigMaps, and nothing more. Which ConfigMaps it may write is narrowed further by the
authedapi-operator-writes admission policy: only those labelled and owned as its own. */}}
{{- define "authedapi.rules" -}}
- apiGroups: ["authedapi.dev"]
  resources: ["authedapis"]
  verbs: ["get", "list", "watch", "patch"]
- apiGroups: ["authedapi.dev"]
  resources: ["authedapis/status"]
  verbs: ["patch"]
- apiGroups: ["authedapi.dev"]
  resources: ["authedapis/finalizers"]
  verbs: ["update"]
- apiGroups: ["events.k8s.io"]
  resources: ["events"]
  verbs: ["create", "patch"]
- apiGroups: [""]
  resources: ["configmaps"]
  verbs: ["get", "create", "patch", "delete"]
{{- end }}

{{/* The keys of an outputs ConfigMap, as a CEL list: what the operator writes
(src/reconcile/kinds/outputs.rs OUTPUT_KEYS; a unit test there keeps the two in step). */}}
{{- define "authedapi.outputKeys" -}}
["endpoint", "identityPoolId", "region", "auth0Domain", "auth0ClientId", "issuer", "clientId", "domainName", "domainUrl", "domainTarget", "domainHostedZoneId"]
{{- end }}

{{/* The pods' affinity: `affinity`, or, with more than one replica and none given, a
preference for different nodes (one node going away then takes one pod, not all). */}}
{{- define "authedapi.affinity" -}}
{{- if .Values.affinity }}
{{- toYaml .Values.affinity }}
{{- else if gt (int .Values.replicas) 1 -}}
podAntiAffinity:
  preferredDuringSchedulingIgnoredDuringExecution:
    - weight: 100
      podAffinityTerm:
        topologyKey: kubernetes.io/hostname
        labelSelector:
          matchLabels:
            {{- include "authedapi.selectorLabels" . | nindent 12 }}
{{- end }}
{{- end }}
