#!/usr/bin/env bash
# update-openapi.sh regenerates internal/openapi/zz_generated.openapi.go, the
# OpenAPI definitions (with the Go doc comments as descriptions) of every
# k8s.io/api and k8s.io/apimachinery type skiff serves.
#
# It runs kube-openapi's openapi-gen at the version pinned in go.mod, built
# outside this module so go.mod stays untouched. Add a package to PKGS when a
# resource of a new API group is served.
set -euo pipefail

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
cd "${ROOT}"

KOA_VERSION=$(go list -m -f '{{.Version}}' k8s.io/kube-openapi)
BIN_DIR=$(mktemp -d)
trap 'rm -rf "${BIN_DIR}"' EXIT
(cd "${BIN_DIR}" && GOFLAGS=-mod=mod GOBIN="${BIN_DIR}" \
	go install "k8s.io/kube-openapi/cmd/openapi-gen@${KOA_VERSION}")

# The API packages whose kinds skiff serves. Their k8s.io/api dependencies
# (e.g. core/v1 refers to scheduling/v1alpha3) are added below.
SERVED=(
	k8s.io/api/core/v1
	k8s.io/api/apps/v1
	k8s.io/api/autoscaling/v1
	k8s.io/api/autoscaling/v2
	k8s.io/api/batch/v1
	k8s.io/api/policy/v1
	k8s.io/api/networking/v1
	k8s.io/api/discovery/v1
	k8s.io/api/rbac/v1
	k8s.io/api/coordination/v1
	k8s.io/api/storage/v1
	k8s.io/api/scheduling/v1
	k8s.io/api/node/v1
	k8s.io/api/events/v1
	k8s.io/api/certificates/v1
	k8s.io/api/authentication/v1
	k8s.io/api/authorization/v1
	k8s.io/api/admissionregistration/v1
	k8s.io/api/flowcontrol/v1
	k8s.io/api/apidiscovery/v2
)
mapfile -t API_PKGS < <(go list -deps "${SERVED[@]}" | grep '^k8s.io/api/' | sort -u)
PKGS=(
	k8s.io/apimachinery/pkg/apis/meta/v1
	k8s.io/apimachinery/pkg/runtime
	k8s.io/apimachinery/pkg/util/intstr
	k8s.io/apimachinery/pkg/api/resource
	k8s.io/apimachinery/pkg/version
	k8s.io/apiextensions-apiserver/pkg/apis/apiextensions/v1
	k8s.io/kube-aggregator/pkg/apis/apiregistration/v1
	"${API_PKGS[@]}"
)

"${BIN_DIR}/openapi-gen" \
	--go-header-file hack/boilerplate.go.txt \
	--output-dir internal/openapi \
	--output-pkg github.com/skiff-dev/skiff/internal/openapi \
	--output-file zz_generated.openapi.go \
	--report-filename /dev/null \
	"${PKGS[@]}"
gofmt -w internal/openapi/zz_generated.openapi.go
