{{/* Names, labels, and the one place where values become the worker's environment. */}}

{{- define "faceguard.name" -}}
{{- default .Chart.Name .Values.nameOverride | trunc 63 | trimSuffix "-" }}
{{- end }}

{{- define "faceguard.fullname" -}}
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

{{- define "faceguard.chart" -}}
{{- printf "%s-%s" .Chart.Name .Chart.Version | replace "+" "_" | trunc 63 | trimSuffix "-" }}
{{- end }}

{{- define "faceguard.selectorLabels" -}}
app.kubernetes.io/name: {{ include "faceguard.name" . }}
app.kubernetes.io/instance: {{ .Release.Name }}
{{- end }}

{{- define "faceguard.labels" -}}
helm.sh/chart: {{ include "faceguard.chart" . }}
{{ include "faceguard.selectorLabels" . }}
app.kubernetes.io/version: {{ .Chart.AppVersion | quote }}
app.kubernetes.io/managed-by: {{ .Release.Service }}
app.kubernetes.io/component: worker
{{- end }}

{{- define "faceguard.serviceAccountName" -}}
{{- if .Values.serviceAccount.create }}
{{- default (include "faceguard.fullname" .) .Values.serviceAccount.name }}
{{- else }}
{{- default "default" .Values.serviceAccount.name }}
{{- end }}
{{- end }}

{{- define "faceguard.image" -}}
{{- printf "%s:%s" .Values.image.repository (default .Chart.AppVersion .Values.image.tag) }}
{{- end }}

{{/* Where the Kafka TLS secret is mounted. */}}
{{- define "faceguard.tlsDir" -}}/etc/faceguard/kafka-tls{{- end }}

{{/* Where the JWKS file of the HTTP API's token keys is mounted. */}}
{{- define "faceguard.jwtDir" -}}/etc/faceguard/jwt{{- end }}

{{/* The name of the port serving /metrics and the probes: the worker's probe port, or serve's HTTP port. */}}
{{- define "faceguard.portName" -}}{{ if eq .Values.mode "http" }}http{{ else }}metrics{{ end }}{{- end }}

{{/* Whether the HTTP API mounts the JWT Secret. */}}
{{- define "faceguard.useJwtSecret" -}}
{{- if and (eq .Values.mode "http") (eq .Values.http.auth "jwt") .Values.http.jwt.existingSecret -}}true{{- end -}}
{{- end }}

{{/* Secret names: the user's existing one, or the chart's. */}}
{{- define "faceguard.saslSecret" -}}
{{- default (printf "%s-kafka-sasl" (include "faceguard.fullname" .)) .Values.kafka.sasl.existingSecret }}
{{- end }}
{{- define "faceguard.s3Secret" -}}
{{- default (printf "%s-s3" (include "faceguard.fullname" .)) .Values.objectStore.s3.existingSecret }}
{{- end }}
{{/* The chart-managed SASL Secret's data (the workers' Secret and the topics Job's hook copy). */}}
{{- define "faceguard.saslStringData" -}}
username: {{ .Values.kafka.sasl.username | quote }}
password: {{ .Values.kafka.sasl.password | quote }}
{{- end }}
{{- define "faceguard.createSaslSecret" -}}
{{- if and .Values.kafka.sasl.mechanism (not .Values.kafka.sasl.existingSecret) }}true{{- end }}
{{- end }}
{{- define "faceguard.createS3Secret" -}}
{{- if and .Values.objectStore.s3.accessKeyId (not .Values.objectStore.s3.existingSecret) }}true{{- end }}
{{- end }}
{{- define "faceguard.useS3Secret" -}}
{{- if or .Values.objectStore.s3.existingSecret .Values.objectStore.s3.accessKeyId }}true{{- end }}
{{- end }}

{{/*
The worker's non-secret configuration as FACEGUARD_* variables (YAML map, values quoted). The
ConfigMap holds it for the workers; the topics Job, which runs before the ConfigMap exists,
gets the same map inline.
*/}}
{{- define "faceguard.config" -}}
KAFKA_BOOTSTRAP_SERVERS: {{ required "kafka.bootstrapServers is required" .Values.kafka.bootstrapServers | quote }}
FACEGUARD_GROUP_ID: {{ .Values.kafka.groupId | quote }}
FACEGUARD_KAFKA_SECURITY_PROTOCOL: {{ .Values.kafka.securityProtocol | quote }}
{{- with .Values.kafka.sasl.mechanism }}
FACEGUARD_KAFKA_SASL_MECHANISM: {{ . | quote }}
{{- end }}
{{- if .Values.kafka.tls.existingSecret }}
FACEGUARD_KAFKA_SSL_CA_LOCATION: {{ printf "%s/ca.crt" (include "faceguard.tlsDir" .) | quote }}
{{- if .Values.kafka.tls.clientCertificate }}
FACEGUARD_KAFKA_SSL_CERTIFICATE_LOCATION: {{ printf "%s/tls.crt" (include "faceguard.tlsDir" .) | quote }}
FACEGUARD_KAFKA_SSL_KEY_LOCATION: {{ printf "%s/tls.key" (include "faceguard.tlsDir" .) | quote }}
{{- end }}
{{- end }}
FACEGUARD_TOPIC_REQUESTS: {{ .Values.topics.requests | quote }}
FACEGUARD_TOPIC_MASKED: {{ .Values.topics.masked | quote }}
FACEGUARD_TOPIC_METADATA: {{ .Values.topics.metadata | quote }}
FACEGUARD_TOPIC_DLQ: {{ .Values.topics.dlq | quote }}
FACEGUARD_RETRY_DELAYS_S: {{ join "," .Values.topics.retryDelaysSeconds | quote }}
FACEGUARD_GUARANTEE: {{ .Values.worker.guarantee | quote }}
FACEGUARD_PRESET: {{ .Values.worker.preset | quote }}
FACEGUARD_PROCESSING_THREADS: {{ .Values.worker.processingThreads | quote }}
FACEGUARD_DRAIN_TIMEOUT_S: {{ .Values.worker.drainTimeoutSeconds | quote }}
FACEGUARD_MASK_METHOD: {{ .Values.worker.maskMethod | quote }}
FACEGUARD_MASK_SHAPE: {{ .Values.worker.maskShape | quote }}
FACEGUARD_LOG_FORMAT: {{ .Values.worker.logFormat | quote }}
FACEGUARD_PROBE_PORT: {{ .Values.probePort | quote }}
{{- with .Values.objectStore.outputStore }}
FACEGUARD_OUTPUT_STORE: {{ . | quote }}
{{- end }}
{{- with .Values.objectStore.s3.endpointUrl }}
FACEGUARD_S3_ENDPOINT_URL: {{ . | quote }}
{{- end }}
{{- with .Values.objectStore.s3.region }}
FACEGUARD_S3_REGION: {{ . | quote }}
{{- end }}
{{- if .Values.objectStore.s3.pathStyle }}
FACEGUARD_S3_PATH_STYLE: "true"
{{- end }}
{{- with .Values.objectStore.s3.buckets }}
FACEGUARD_S3_BUCKETS: {{ . | quote }}
{{- end }}
{{- if eq .Values.mode "http" }}
FACEGUARD_HTTP_HOST: "0.0.0.0"
FACEGUARD_HTTP_PORT: {{ .Values.http.port | quote }}
{{- with .Values.http.threads }}
FACEGUARD_HTTP_THREADS: {{ . | quote }}
{{- end }}
{{- if ne .Values.http.queue nil }}
FACEGUARD_HTTP_QUEUE: {{ .Values.http.queue | quote }}
{{- end }}
FACEGUARD_HTTP_DEADLINE_S: {{ .Values.http.deadlineSeconds | quote }}
FACEGUARD_HTTP_DRAIN_TIMEOUT_S: {{ .Values.http.drainTimeoutSeconds | quote }}
FACEGUARD_HTTP_BRIDGE: {{ .Values.http.bridge | toString | quote }}
FACEGUARD_HTTP_AUTH: {{ .Values.http.auth | quote }}
FACEGUARD_HTTP_ALLOW_PUBLIC: {{ .Values.http.allowPublic | toString | quote }}
{{- if eq .Values.http.auth "jwt" }}
FACEGUARD_JWT_AUDIENCE: {{ .Values.http.jwt.audience | quote }}
{{- with .Values.http.jwt.issuer }}
FACEGUARD_JWT_ISSUER: {{ . | quote }}
{{- end }}
{{- with .Values.http.jwt.scope }}
FACEGUARD_JWT_SCOPE: {{ . | quote }}
{{- end }}
{{- if .Values.http.jwt.jwksKey }}
FACEGUARD_JWT_JWKS_FILE: {{ printf "%s/%s" (include "faceguard.jwtDir" .) .Values.http.jwt.jwksKey | quote }}
{{- end }}
{{- end }}
{{- end }}
{{- range $name, $value := .Values.worker.extraEnv }}
{{ $name }}: {{ $value | toString | quote }}
{{- end }}
{{- end }}

{{/* Credentials from Secrets, as container env entries. */}}
{{- define "faceguard.secretEnv" -}}
{{- if .Values.kafka.sasl.mechanism }}
- name: FACEGUARD_KAFKA_SASL_USERNAME
  valueFrom:
    secretKeyRef:
      name: {{ include "faceguard.saslSecret" . }}
      key: username
- name: FACEGUARD_KAFKA_SASL_PASSWORD
  valueFrom:
    secretKeyRef:
      name: {{ include "faceguard.saslSecret" . }}
      key: password
{{- end }}
{{- if and (include "faceguard.useJwtSecret" .) .Values.http.jwt.hs256SecretKey }}
- name: FACEGUARD_JWT_HS256_SECRET
  valueFrom:
    secretKeyRef:
      name: {{ .Values.http.jwt.existingSecret }}
      key: {{ .Values.http.jwt.hs256SecretKey }}
{{- end }}
{{- if include "faceguard.useS3Secret" . }}
- name: AWS_ACCESS_KEY_ID
  valueFrom:
    secretKeyRef:
      name: {{ include "faceguard.s3Secret" . }}
      key: AWS_ACCESS_KEY_ID
- name: AWS_SECRET_ACCESS_KEY
  valueFrom:
    secretKeyRef:
      name: {{ include "faceguard.s3Secret" . }}
      key: AWS_SECRET_ACCESS_KEY
{{- end }}
{{- end }}

{{/* Volumes every worker container needs: the writable /tmp, and the Kafka TLS files. */}}
{{- define "faceguard.volumes" -}}
- name: tmp
  emptyDir:
    medium: Memory
    sizeLimit: {{ .Values.tmpSizeLimit }}
{{- with .Values.kafka.tls.existingSecret }}
- name: kafka-tls
  secret:
    secretName: {{ . }}
    defaultMode: 0440
{{- end }}
{{- if and (include "faceguard.useJwtSecret" .) .Values.http.jwt.jwksKey }}
- name: jwt-keys
  secret:
    secretName: {{ .Values.http.jwt.existingSecret }}
    defaultMode: 0440
    items:
      - key: {{ .Values.http.jwt.jwksKey }}
        path: {{ .Values.http.jwt.jwksKey }}
{{- end }}
{{- end }}

{{- define "faceguard.volumeMounts" -}}
- name: tmp
  mountPath: /tmp
{{- if .Values.kafka.tls.existingSecret }}
- name: kafka-tls
  mountPath: {{ include "faceguard.tlsDir" . }}
  readOnly: true
{{- end }}
{{- if and (include "faceguard.useJwtSecret" .) .Values.http.jwt.jwksKey }}
- name: jwt-keys
  mountPath: {{ include "faceguard.jwtDir" . }}
  readOnly: true
{{- end }}
{{- end }}

{{/* Checks that no schema can express. */}}
{{- define "faceguard.validate" -}}
{{- if and (eq .Values.mode "http") (eq .Values.http.auth "off") (not .Values.http.allowPublic) }}
{{- fail "mode http with http.auth off: set http.auth jwt, or http.allowPublic true when a gateway in front checks every caller" }}
{{- end }}
{{- if and (eq .Values.mode "http") (eq .Values.http.auth "jwt") (not .Values.http.jwt.existingSecret) }}
{{- fail "http.auth jwt needs http.jwt.existingSecret with the token keys (hs256SecretKey and/or jwksKey)" }}
{{- end }}
{{- if and (eq .Values.mode "http") (eq .Values.autoscaling.mode "keda") }}
{{- fail "mode http scales on CPU: set autoscaling.mode hpa (or none); KEDA's lag trigger is for workers" }}
{{- end }}
{{- if and (eq .Values.mode "worker") (ne .Values.autoscaling.mode "none") (gt (int .Values.autoscaling.maxReplicas) (int .Values.topics.partitions)) }}
{{- fail (printf "autoscaling.maxReplicas (%d) exceeds topics.partitions (%d): a worker beyond the partition count sits idle" (int .Values.autoscaling.maxReplicas) (int .Values.topics.partitions)) }}
{{- end }}
{{- if gt (int .Values.autoscaling.minReplicas) (int .Values.autoscaling.maxReplicas) }}
{{- fail "autoscaling.minReplicas exceeds autoscaling.maxReplicas" }}
{{- end }}
{{- if and (eq .Values.autoscaling.mode "hpa") (lt (int .Values.autoscaling.minReplicas) 1) }}
{{- fail "autoscaling.minReplicas must be at least 1 with mode hpa (only KEDA scales from zero)" }}
{{- end }}
{{- if and .Values.kafka.sasl.mechanism (not .Values.kafka.sasl.existingSecret) (not .Values.kafka.sasl.password) }}
{{- fail "kafka.sasl.mechanism is set: give kafka.sasl.existingSecret, or kafka.sasl.username and kafka.sasl.password" }}
{{- end }}
{{- if and .Values.kafka.sasl.mechanism (not (hasPrefix "SASL_" .Values.kafka.securityProtocol)) }}
{{- fail "kafka.sasl.mechanism needs kafka.securityProtocol SASL_SSL or SASL_PLAINTEXT" }}
{{- end }}
{{- if and .Values.kafka.tls.existingSecret (not (hasSuffix "SSL" .Values.kafka.securityProtocol)) }}
{{- fail "kafka.tls.existingSecret needs kafka.securityProtocol SSL or SASL_SSL" }}
{{- end }}
{{- end }}

{{/* HPA behaviour, for KEDA's HPA and the plain one: add quickly, remove slowly (each change is a rebalance). */}}
{{- define "faceguard.scalingBehavior" -}}
scaleUp:
  stabilizationWindowSeconds: 0
  policies:
    - type: Pods
      value: 2
      periodSeconds: 60
scaleDown:
  stabilizationWindowSeconds: {{ .Values.autoscaling.scaleDownStabilizationSeconds }}
  policies:
    - type: Pods
      value: {{ .Values.autoscaling.scaleDownPodsPerMinute }}
      periodSeconds: 60
{{- end }}
