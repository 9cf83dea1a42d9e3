{{/*
Names: <release>-clientify-odoo (or the release name when it already says so), and
<fullname>-<component> for each service. Truncated so a StatefulSet's pod labels
(controller-revision-hash adds 11 characters) stay within 63.
*/}}
{{- define "clientify-odoo.fullname" -}}
{{- if .Values.fullnameOverride -}}
{{- .Values.fullnameOverride | trunc 40 | trimSuffix "-" -}}
{{- else -}}
{{- $name := default .Chart.Name .Values.nameOverride -}}
{{- if contains $name .Release.Name -}}
{{- .Release.Name | trunc 40 | trimSuffix "-" -}}
{{- else -}}
{{- printf "%s-%s" .Release.Name $name | trunc 40 | trimSuffix "-" -}}
{{- end -}}
{{- end -}}
{{- end -}}

{{- define "clientify-odoo.componentName" -}}
{{- printf "%s-%s" (include "clientify-odoo.fullname" .root) .component | trunc 52 | trimSuffix "-" -}}
{{- end -}}

{{- define "clientify-odoo.selectorLabels" -}}
app.kubernetes.io/name: {{ default .root.Chart.Name .root.Values.nameOverride | trunc 63 | trimSuffix "-" }}
app.kubernetes.io/instance: {{ .root.Release.Name }}
app.kubernetes.io/component: {{ .component }}
{{- end -}}

{{- define "clientify-odoo.labels" -}}
{{ include "clientify-odoo.selectorLabels" . }}
helm.sh/chart: {{ printf "%s-%s" .root.Chart.Name .root.Chart.Version | replace "+" "_" | trunc 63 | trimSuffix "-" }}
app.kubernetes.io/version: {{ .root.Chart.AppVersion | quote }}
app.kubernetes.io/managed-by: {{ .root.Release.Service }}
app.kubernetes.io/part-of: clientify-odoo
{{- end -}}

{{- define "clientify-odoo.image" -}}
{{- printf "%s:%s" .Values.image.repository (default .Chart.AppVersion .Values.image.tag) -}}
{{- end -}}

{{/* The Secret the services read their keys from: the user's, or the chart's. */}}
{{- define "clientify-odoo.secretName" -}}
{{- if .Values.secrets.existingSecret -}}
{{- .Values.secrets.existingSecret -}}
{{- else -}}
{{- printf "%s-secrets" (include "clientify-odoo.fullname" .) -}}
{{- end -}}
{{- end -}}

{{- define "clientify-odoo.mappingPath" -}}/etc/clientify-odoo/mapping.yaml{{- end -}}

{{/*
The non-secret settings, as literal values: the same in every pod, and inline rather
than in a ConfigMap so the topics Job, a pre-install hook that runs before the chart's
other objects exist, reads them too. HOME points at the writable /tmp because the
root filesystem is read-only.
*/}}
{{- define "clientify-odoo.env" -}}
- name: KAFKA_BOOTSTRAP_SERVERS
  value: {{ required "kafka.bootstrapServers is required" .Values.kafka.bootstrapServers | quote }}
- name: TOPIC_PREFIX
  value: {{ .Values.connection.topicPrefix | quote }}
- name: ODOO_URL
  value: {{ .Values.connection.odoo.url | quote }}
- name: ODOO_DB
  value: {{ .Values.connection.odoo.db | quote }}
- name: ODOO_USER
  value: {{ .Values.connection.odoo.user | quote }}
- name: CLIENTIFY_URL
  value: {{ .Values.connection.clientify.url | quote }}
{{- if .Values.mapping }}
- name: MAPPING_FILE
  value: {{ include "clientify-odoo.mappingPath" . }}
{{- end }}
- name: HOME
  value: /tmp
- name: PYTHONDONTWRITEBYTECODE
  value: "1"
{{- with .Values.extraEnv }}
{{ toYaml . }}
{{- end }}
{{- end -}}

{{/*
A pod template. Arguments (a dict):
  root       the chart's top context
  component  the service's name, as in docker-compose.yml
  values     the service's values block
  args       the `clientify-odoo` sub-command and its flags (the image's entry point
             is `clientify-odoo`, so these are the compose file's `command:`)
  port       the port of its /health and /metrics; 0 for none (the reporter)
  secrets    the keys of the Secret this service uses, and only those; a key ending in
             "?" may be absent from the Secret (the variable is then unset)
  data       where its volume (named "data") is mounted; "" for none
*/}}
{{- define "clientify-odoo.podTemplate" -}}
{{- $root := .root -}}
metadata:
  labels:
    {{- include "clientify-odoo.labels" . | nindent 4 }}
    {{- with $root.Values.podLabels }}
    {{- toYaml . | nindent 4 }}
    {{- end }}
  {{- $annotations := dict }}
  {{- if .port }}
  {{- $_ := set $annotations "prometheus.io/scrape" "true" }}
  {{- $_ := set $annotations "prometheus.io/port" (toString .port) }}
  {{- $_ := set $annotations "prometheus.io/path" "/metrics" }}
  {{- end }}
  {{- if and .secrets (not $root.Values.secrets.existingSecret) }}
  {{- /* A changed key restarts the pods that read it. */}}
  {{- $_ := set $annotations "checksum/secret" (include (print $root.Template.BasePath "/secret.yaml") $root | sha256sum) }}
  {{- end }}
  {{- if $root.Values.mapping }}
  {{- $_ := set $annotations "checksum/mapping" ($root.Values.mapping | sha256sum) }}
  {{- end }}
  {{- with merge $annotations $root.Values.podAnnotations }}
  annotations:
    {{- toYaml . | nindent 4 }}
  {{- end }}
spec:
  # No service talks to the Kubernetes API.
  automountServiceAccountToken: false
  {{- with $root.Values.imagePullSecrets }}
  imagePullSecrets:
    {{- toYaml . | nindent 4 }}
  {{- end }}
  securityContext:
    {{- toYaml $root.Values.podSecurityContext | nindent 4 }}
  containers:
    - name: {{ .component }}
      image: {{ include "clientify-odoo.image" $root | quote }}
      imagePullPolicy: {{ $root.Values.image.pullPolicy }}
      args:
        {{- range concat .args (.values.extraArgs | default list) }}
        - {{ . | toString | quote }}
        {{- end }}
      env:
        {{- include "clientify-odoo.env" $root | nindent 8 }}
        {{- range .secrets }}
        {{- $key := trimSuffix "?" . }}
        - name: {{ $key }}
          valueFrom:
            secretKeyRef:
              name: {{ include "clientify-odoo.secretName" $root }}
              key: {{ $key }}
              {{- if hasSuffix "?" . }}
              optional: true
              {{- end }}
        {{- end }}
      {{- if .port }}
      ports:
        - name: http
          containerPort: {{ .port }}
          protocol: TCP
      readinessProbe:
        httpGet:
          path: /health
          port: http
        {{- toYaml $root.Values.probes.readiness | nindent 8 }}
      livenessProbe:
        httpGet:
          path: /health
          port: http
        {{- toYaml $root.Values.probes.liveness | nindent 8 }}
      {{- end }}
      resources:
        {{- toYaml .values.resources | nindent 8 }}
      securityContext:
        {{- toYaml $root.Values.containerSecurityContext | nindent 8 }}
      volumeMounts:
        - name: tmp
          mountPath: /tmp
        {{- if .data }}
        - name: data
          mountPath: {{ .data }}
        {{- end }}
        {{- if $root.Values.mapping }}
        - name: mapping
          mountPath: {{ include "clientify-odoo.mappingPath" $root | dir }}
          readOnly: true
        {{- end }}
  volumes:
    - name: tmp
      emptyDir: {}
    {{- if $root.Values.mapping }}
    - name: mapping
      configMap:
        name: {{ include "clientify-odoo.fullname" $root }}-mapping
    {{- end }}
  {{- with $root.Values.nodeSelector }}
  nodeSelector:
    {{- toYaml . | nindent 4 }}
  {{- end }}
  {{- with $root.Values.tolerations }}
  tolerations:
    {{- toYaml . | nindent 4 }}
  {{- end }}
  {{- with $root.Values.affinity }}
  affinity:
    {{- toYaml . | nindent 4 }}
  {{- end }}
{{- end -}}

{{/* A volumeClaimTemplate named "data" from a persistence block. */}}
{{- define "clientify-odoo.dataClaim" -}}
- metadata:
    name: data
  spec:
    accessModes:
      {{- toYaml .accessModes | nindent 6 }}
    {{- with .storageClass }}
    storageClassName: {{ . | quote }}
    {{- end }}
    resources:
      requests:
        storage: {{ .size }}
{{- end -}}

{{/*
The headless Service a StatefulSet names as its serviceName: stable DNS for each copy,
and the metrics port for a ServiceMonitor if one is wanted.
*/}}
{{- define "clientify-odoo.headlessService" }}
apiVersion: v1
kind: Service
metadata:
  name: {{ include "clientify-odoo.componentName" . }}
  labels:
    {{- include "clientify-odoo.labels" . | nindent 4 }}
spec:
  clusterIP: None
  selector:
    {{- include "clientify-odoo.selectorLabels" . | nindent 4 }}
  {{- if .port }}
  ports:
    - name: http
      port: {{ .port }}
      targetPort: http
      protocol: TCP
  {{- end }}
{{- end -}}
