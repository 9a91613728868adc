#!/usr/bin/env bash
# test.sh runs the whole test suite: go vet, the build, and every test
# including the end-to-end tests in test/e2e (which drive the built
# bin/skiff with stock kubectl; they skip with a message when kubectl.1.33
# or kubectl.1.27 is missing). Extra arguments go to "go test", e.g.
# ./hack/test.sh -run TestKubectl -v
#
# The output ends with go test's usual per-package ok/FAIL lines, and the
# exit status is go test's.
set -euo pipefail
cd "$(dirname "$0")/.."

. hack/lib.sh
# The runtime tests run real containers; they need the node's packages.
# (As a non-root user this asks sudo; the root-only tests skip without it.)
ensure_debian_packages "${node_packages[@]}"

echo "==> go vet ./..."
go vet ./...

echo "==> go build ./... and bin/skiff"
go build ./...
go build -o bin/skiff ./cmd/skiff

echo "==> go test ./..."
SKIFF_BIN="$PWD/bin/skiff" exec go test -timeout 20m ./... "$@"
