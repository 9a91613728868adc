#!/usr/bin/env bash
# Builds bin/skiff and runs the service networking benchmark (as root).
# Extra arguments go to the benchmark (see bench/network/main.go).
set -euo pipefail
cd "$(dirname "$0")/../.."
go build -o bin/skiff ./cmd/skiff
exec go run ./bench/network -bin bin/skiff "$@"
