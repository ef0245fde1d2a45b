{{/*
Names, labels and shared Pod fragments. Every template includes these so that names, selectors
and the restricted security context are defined once.
*/}}

{{- define "kubekms.name" -}}
{{- default .Chart.Name .Values.nameOverride | trunc 63 | trimSuffix "-" }}
{{- end }}

{{- define "kubekms.fullname" -}}
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

{{- define "kubekms.chart" -}}
{{- printf "%s-%s" .Chart.Name .Chart.Version | replace "+" "_" | trunc 63 | trimSuffix "-" }}
{{- end }}

{{/* Labels on every resource. */}}
{{- define "kubekms.labels" -}}
{{- include "kubekms.labelMap" (dict "ctx" .) }}
{{- end }}

{{/*
One object's labels as a YAML map, each key exactly once (kustomize and Argo CD refuse a
duplicate key): the chart's own labels win over commonLabels, the component over both, and
`extra` (labels a value asks for, e.g. a Prometheus selector) only adds keys not set yet.
(dict "ctx" $ "component" "api" "extra" (dict ...)); component and extra are optional.
*/}}
{{- define "kubekms.labelMap" -}}
{{- $ctx := .ctx }}
{{- $labels := dict "helm.sh/chart" (include "kubekms.chart" $ctx) "app.kubernetes.io/name" (include "kubekms.name" $ctx) "app.kubernetes.io/instance" $ctx.Release.Name "app.kubernetes.io/version" ($ctx.Chart.AppVersion | toString) "app.kubernetes.io/managed-by" $ctx.Release.Service "app.kubernetes.io/part-of" "kubekms" }}
{{- with .component }}
{{- $_ := set $labels "app.kubernetes.io/component" . }}
{{- end }}
{{- $labels = merge $labels (deepCopy ($ctx.Values.commonLabels | default dict)) (deepCopy (.extra | default dict)) }}
{{- toYaml $labels }}
{{- end }}

{{/* Selector labels of one component: (dict "ctx" $ "component" "api"). */}}
{{- define "kubekms.selectorLabels" -}}
app.kubernetes.io/name: {{ include "kubekms.name" .ctx }}
app.kubernetes.io/instance: {{ .ctx.Release.Name }}
app.kubernetes.io/component: {{ .component }}
{{- end }}

{{/* All labels of one component: (dict "ctx" $ "component" "api" ["extra" (dict ...)]). */}}
{{- define "kubekms.componentLabels" -}}
{{- include "kubekms.labelMap" . }}
{{- end }}

{{- define "kubekms.api.fullname" -}}
{{- printf "%s-api" (include "kubekms.fullname" .) | trunc 63 | trimSuffix "-" }}
{{- end }}

{{- define "kubekms.operator.fullname" -}}
{{- printf "%s-operator" (include "kubekms.fullname" .) | trunc 63 | trimSuffix "-" }}
{{- end }}

{{- define "kubekms.api.serviceAccountName" -}}
{{- if .Values.api.serviceAccount.create }}
{{- default (include "kubekms.api.fullname" .) .Values.api.serviceAccount.name }}
{{- else }}
{{- required "api.serviceAccount.name is required when api.serviceAccount.create is false" .Values.api.serviceAccount.name }}
{{- end }}
{{- end }}

{{- define "kubekms.operator.serviceAccountName" -}}
{{- if .Values.operator.serviceAccount.create }}
{{- default (include "kubekms.operator.fullname" .) .Values.operator.serviceAccount.name }}
{{- else }}
{{- required "operator.serviceAccount.name is required when operator.serviceAccount.create is false" .Values.operator.serviceAccount.name }}
{{- end }}
{{- end }}

{{- define "kubekms.image" -}}
{{- $tag := default .Chart.AppVersion .Values.image.tag }}
{{- if .Values.image.digest }}
{{- printf "%s:%s@%s" .Values.image.repository $tag .Values.image.digest }}
{{- else }}
{{- printf "%s:%s" .Values.image.repository $tag }}
{{- end }}
{{- end }}

{{- define "kubekms.rootKey.secretName" -}}
{{- default (printf "%s-root-key" (include "kubekms.fullname" .)) .Values.rootKey.existingSecret }}
{{- end }}

{{/*
"true" when the API serves HTTPS: `api.tls.enabled` when set, else on as soon as cert-manager or an
existing Secret provides a certificate (TLS by default whenever a certificate is at hand).
*/}}
{{- define "kubekms.api.tls" -}}
{{- $tls := .Values.api.tls }}
{{- if kindIs "bool" $tls.enabled }}
{{- if $tls.enabled }}true{{ end }}
{{- else if or $tls.certManager.enabled $tls.existingSecret }}true
{{- end }}
{{- end }}

{{- define "kubekms.tls.secretName" -}}
{{- if .Values.api.tls.certManager.enabled }}
{{- printf "%s-tls" (include "kubekms.api.fullname" .) }}
{{- else }}
{{- required "api.tls.existingSecret (or api.tls.certManager.enabled) is required when api.tls.enabled is true" .Values.api.tls.existingSecret }}
{{- end }}
{{- end }}

{{- define "kubekms.api.scheme" -}}
{{- if include "kubekms.api.tls" . }}https{{ else }}http{{ end }}
{{- end }}

{{/*
Environment of both processes: namespace and the sealer. The root key and the HSM PIN come from
Secrets through secretKeyRef, so they never appear in the Pod spec or in `helm get values`.
Call with (dict "ctx" $ "component" "api"|"operator").

No render ever contains a root key (`helm template`, Argo CD and client-side dry runs have no
cluster to look the live key up in, so a rendered key would overwrite it). Unless
rootKey.existingSecret names one, the operator creates the root-key Secret itself on its first
start (create-if-absent, never updated): its reference is optional, and KUBEKMS_ROOT_KEY_SECRET
tells it where to create it. The API's reference is required, so the kubelet holds the API
container (CreateContainerConfigError, retried) until the Secret exists.
*/}}
{{- define "kubekms.sealerEnv" -}}
{{- $component := .component }}
{{- with .ctx }}
- name: KUBEKMS_NAMESPACE
  valueFrom:
    fieldRef:
      fieldPath: metadata.namespace
{{- if .Values.hsm.enabled }}
{{- if and .Values.hsm.tokenLabel (not (kindIs "invalid" .Values.hsm.slot)) }}
{{- fail "set only one of hsm.tokenLabel and hsm.slot" }}
{{- end }}
- name: HSM_LIB_PATH
  value: {{ .Values.hsm.libraryPath | quote }}
{{- if .Values.hsm.tokenLabel }}
- name: HSM_TOKEN_LABEL
  value: {{ .Values.hsm.tokenLabel | quote }}
{{- else if not (kindIs "invalid" .Values.hsm.slot) }}
- name: HSM_SLOT
  value: {{ .Values.hsm.slot | toString | quote }}
{{- else }}
{{- fail "hsm.tokenLabel or hsm.slot is required when hsm.enabled" }}
{{- end }}
- name: HSM_KEY_LABEL
  value: {{ .Values.hsm.keyLabel | quote }}
- name: HSM_PIN
  valueFrom:
    secretKeyRef:
      name: {{ required "hsm.pinSecret.name is required when hsm.enabled" .Values.hsm.pinSecret.name }}
      key: {{ .Values.hsm.pinSecret.key }}
{{- with .Values.hsm.extraEnv }}
{{ toYaml . }}
{{- end }}
{{- else }}
{{- $created := and (not .Values.rootKey.existingSecret) (eq $component "operator") }}
- name: ROOT_ENCRYPTION_KEY
  valueFrom:
    secretKeyRef:
      name: {{ include "kubekms.rootKey.secretName" . }}
      key: {{ .Values.rootKey.secretKey }}
      {{- if $created }}
      optional: true
      {{- end }}
{{- if $created }}
- name: KUBEKMS_ROOT_KEY_SECRET
  value: {{ include "kubekms.rootKey.secretName" . | quote }}
- name: KUBEKMS_ROOT_KEY_SECRET_KEY
  value: {{ .Values.rootKey.secretKey | quote }}
{{- end }}
{{- end }}
{{- end }}
{{- end }}

{{/* Volumes shared by both Pods: a writable /tmp and, with an HSM, the vendor library. */}}
{{- define "kubekms.volumes" -}}
- name: tmp
  emptyDir:
    sizeLimit: 64Mi
{{- with .Values.serviceAccountToken.expirationSeconds }}
{{- /* The automounted volume, with the token's lifetime chosen here (see values.yaml). */}}
- name: kube-api-access
  projected:
    defaultMode: 0444
    sources:
      - serviceAccountToken:
          path: token
          expirationSeconds: {{ . }}
      - configMap:
          name: kube-root-ca.crt
          items:
            - key: ca.crt
              path: ca.crt
      - downwardAPI:
          items:
            - path: namespace
              fieldRef:
                fieldPath: metadata.namespace
{{- end }}
{{- if .Values.hsm.enabled }}
{{- if not .Values.hsm.volume }}
{{- fail "hsm.volume (the volume holding the PKCS#11 library) is required when hsm.enabled" }}
{{- end }}
- name: hsm-library
{{ toYaml .Values.hsm.volume | indent 2 }}
{{- end }}
{{- end }}

{{- define "kubekms.volumeMounts" -}}
- name: tmp
  mountPath: /tmp
{{- if .Values.serviceAccountToken.expirationSeconds }}
- name: kube-api-access
  mountPath: /var/run/secrets/kubernetes.io/serviceaccount
  readOnly: true
{{- end }}
{{- if .Values.hsm.enabled }}
- name: hsm-library
  mountPath: {{ .Values.hsm.mountPath }}
  readOnly: true
{{- end }}
{{- end }}

{{- define "kubekms.imagePullSecrets" -}}
{{- with .Values.imagePullSecrets -}}
imagePullSecrets:
{{- range . }}
{{- if kindIs "string" . }}
  - name: {{ . }}
{{- else }}
  - name: {{ .name }}
{{- end }}
{{- end }}
{{- end }}
{{- end }}

{{/* Egress both Pods need: DNS and (ipBlock mode) the Kubernetes API server. */}}
{{- define "kubekms.networkPolicy.egress" -}}
- ports:
    - port: 53
      protocol: UDP
    - port: 53
      protocol: TCP
{{- if eq .Values.networkPolicy.kubeApiServerEgress "ipBlock" }}
- to:
    {{- range .Values.networkPolicy.kubeApiServerCIDRs }}
    - ipBlock:
        cidr: {{ . }}
    {{- end }}
  ports:
    {{- range .Values.networkPolicy.kubeApiServerPorts }}
    - port: {{ . }}
      protocol: TCP
    {{- end }}
{{- end }}
{{- end }}

{{/* The Pods' own token: the kubelet's automounted one unless serviceAccountToken sets a lifetime. */}}
{{- define "kubekms.automountToken" -}}
{{ if .Values.serviceAccountToken.expirationSeconds }}false{{ else }}true{{ end }}
{{- end }}
