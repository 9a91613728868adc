#!/usr/bin/env bash
# up.sh builds bin/skiff and runs a single-node skiff cluster in the
# foreground. Ctrl-C (SIGINT) or SIGTERM stops it cleanly; running it again
# on the same data dir resumes the same cluster.
#
# Usage: ./hack/up.sh [DATA_DIR] [extra "skiff server" flags...]
#   DATA_DIR defaults to $SKIFF_DATA_DIR, or ./.skiff in the repository.
#   Example: ./hack/up.sh /tmp/skiff --listen 127.0.0.1:7443 -v
set -euo pipefail
cd "$(dirname "$0")/.."

data_dir="${SKIFF_DATA_DIR:-./.skiff}"
if [[ $# -gt 0 && "$1" != -* ]]; then
	data_dir="$1"
	shift
fi

. hack/lib.sh

if ! command -v go >/dev/null 2>&1; then
	echo "up.sh: Go is required to build skiff (see https://go.dev/doc/install)" >&2
	exit 1
fi
ensure_debian_packages "${node_packages[@]}"

echo "up.sh: building bin/skiff" >&2
go build -o bin/skiff ./cmd/skiff

echo "up.sh: starting skiff with data in ${data_dir} (Ctrl-C stops it)" >&2
exec ./bin/skiff server --data-dir "${data_dir}" "$@"
