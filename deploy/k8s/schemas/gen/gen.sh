#!/usr/bin/env bash
# Regenerates deploy/k8s/schemas/*.json from the sources of
# deploy/k8s/schemas/README.md: takes the files out of local git clones (bare
# or not) and runs gen/main.go. Needs no network when the clones and the Go
# module cache are there.
#
#   KUBECTL_VALIDATE_GIT=... PROMETHEUS_OPERATOR_GIT=... CNPG_GIT=... \
#     deploy/k8s/schemas/gen/gen.sh
#
# KUBERNETES_GIT (a clone of kubernetes/kubernetes, api/openapi-spec/v3 at
# KUBERNETES_REF) may stand in for KUBECTL_VALIDATE_GIT (its copy of the same
# documents, pkg/openapiclient/builtins/$K8S_VERSION). The HTTPRoute CRD comes
# from the sigs.k8s.io/gateway-api module that deploy/go.mod requires.
set -euo pipefail

K8S_VERSION=${K8S_VERSION:-1.30}
KUBERNETES_REF=${KUBERNETES_REF:-release-$K8S_VERSION}
KUBECTL_VALIDATE_REF=${KUBECTL_VALIDATE_REF:-HEAD}
PROMETHEUS_OPERATOR_REF=${PROMETHEUS_OPERATOR_REF:-v0.93.0}
CNPG_REF=${CNPG_REF:-v1.30.0}

here=$(cd "$(dirname "$0")" && pwd)
deploy=$(cd "$here/../../.." && pwd)
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT

# The group/versions of the built-in kinds (gen/main.go's builtins).
groups=(api/v1 apis/apps/v1 apis/batch/v1 apis/autoscaling/v2 apis/policy/v1 apis/networking.k8s.io/v1)
mkdir -p "$tmp/k8s"
if [[ -n ${KUBERNETES_GIT:-} ]]; then
	k8s_source="Kubernetes $K8S_VERSION (kubernetes/kubernetes $KUBERNETES_REF $(git -C "$KUBERNETES_GIT" rev-parse --short=12 "$KUBERNETES_REF^{commit}") api/openapi-spec/v3)"
else
	: "${KUBECTL_VALIDATE_GIT:?set KUBECTL_VALIDATE_GIT or KUBERNETES_GIT}"
	k8s_source="Kubernetes $K8S_VERSION (kubernetes-sigs/kubectl-validate $(git -C "$KUBECTL_VALIDATE_GIT" rev-parse --short=12 "$KUBECTL_VALIDATE_REF^{commit}") pkg/openapiclient/builtins/$K8S_VERSION)"
fi
for gv in "${groups[@]}"; do
	if [[ -n ${KUBERNETES_GIT:-} ]]; then
		# api/v1 -> api__v1_openapi.json, apis/apps/v1 -> apis__apps__v1_openapi.json
		git -C "$KUBERNETES_GIT" show "$KUBERNETES_REF:api/openapi-spec/v3/${gv//\//__}_openapi.json" >"$tmp/k8s/${gv//\//__}_openapi.json"
	else
		mkdir -p "$tmp/k8s/$(dirname "$gv")"
		git -C "$KUBECTL_VALIDATE_GIT" show "$KUBECTL_VALIDATE_REF:pkg/openapiclient/builtins/$K8S_VERSION/$gv.json" >"$tmp/k8s/$gv.json"
	fi
done

: "${PROMETHEUS_OPERATOR_GIT:?set PROMETHEUS_OPERATOR_GIT}"
: "${CNPG_GIT:?set CNPG_GIT}"
for crd in servicemonitors prometheusrules; do
	git -C "$PROMETHEUS_OPERATOR_GIT" show "$PROMETHEUS_OPERATOR_REF:example/prometheus-operator-crd/monitoring.coreos.com_$crd.yaml" >"$tmp/$crd.yaml"
done
git -C "$CNPG_GIT" show "$CNPG_REF:config/crd/bases/postgresql.cnpg.io_clusters.yaml" >"$tmp/clusters.yaml"
prom_source="prometheus-operator/prometheus-operator $PROMETHEUS_OPERATOR_REF $(git -C "$PROMETHEUS_OPERATOR_GIT" rev-parse --short=12 "$PROMETHEUS_OPERATOR_REF^{commit}")"
cnpg_source="cloudnative-pg/cloudnative-pg $CNPG_REF $(git -C "$CNPG_GIT" rev-parse --short=12 "$CNPG_REF^{commit}")"
cd "$deploy"
gateway=$(go list -m -f '{{.Path}}@{{.Version}} {{.Dir}}' sigs.k8s.io/gateway-api)
go run ./k8s/schemas/gen/main.go -version "$k8s_source" -k8s "$tmp/k8s" \
	-crd "$tmp/servicemonitors.yaml#$prom_source" \
	-crd "$tmp/prometheusrules.yaml#$prom_source" \
	-crd "$tmp/clusters.yaml#$cnpg_source" \
	-crd "${gateway#* }/config/crd/standard/gateway.networking.k8s.io_httproutes.yaml#${gateway%% *}" \
	-out k8s/schemas
