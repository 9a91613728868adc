#!/usr/bin/env bash
# Builds bin/skiff and runs the pod start-up benchmark against it (as root).
# Extra arguments go to the benchmark (see bench/podstartup/doc.go).
set -euo pipefail
cd "$(dirname "$0")/../.."
go build -o bin/skiff ./cmd/skiff
exec go run ./bench/podstartup -bin bin/skiff "$@"
