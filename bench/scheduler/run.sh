#!/usr/bin/env bash
# Builds bin/skiff and runs the scheduler benchmark against it.
# Extra arguments go to the benchmark (see bench/scheduler/doc.go).
set -euo pipefail
cd "$(dirname "$0")/../.."
go build -o bin/skiff ./cmd/skiff
exec go run ./bench/scheduler -bin bin/skiff "$@"
