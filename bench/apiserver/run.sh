#!/usr/bin/env bash
# Builds bin/skiff and runs the API server benchmark against it.
# Extra arguments go to the benchmark (see bench/apiserver/doc.go).
set -euo pipefail
cd "$(dirname "$0")/../.."
go build -o bin/skiff ./cmd/skiff
exec go run ./bench/apiserver -bin bin/skiff "$@"
