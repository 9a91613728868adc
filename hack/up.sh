#!/usr/bin/env bash
# up.sh builds bin/skiff and runs a single-node skiff cluster in the
# foreground: the control plane and a node agent running pods under its own
# containerd. Ctrl-C (SIGINT) or SIGTERM stops it cleanly (pods keep
# running); running it again on the same data dir resumes the same cluster.
#
# Usage: ./hack/up.sh [DATA_DIR] [extra "skiff server" flags...]
#   DATA_DIR defaults to $SKIFF_DATA_DIR, or ./.skiff in the repository.
#   Example: ./hack/up.sh /tmp/skiff --listen 127.0.0.1:7443 -v
#
# The node agent needs root (containers, mounts, the pod network): as
# another user, up.sh runs the server through sudo. It also builds the test
# images (skiff-test/busybox:1.35, skiff-test/testserver:1) and loads them,
# so pods run without any registry.
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

images_dir="${data_dir%/}-images"
if [[ ! -f "${images_dir}/busybox.tar" || ! -f "${images_dir}/testserver.tar" ]]; then
	echo "up.sh: building the test images into ${images_dir}" >&2
	./bin/skiff images build-test --out "${images_dir}" >/dev/null
fi

sudo=""
if [[ "$(id -u)" -ne 0 ]]; then
	sudo="sudo"
	echo "up.sh: the node agent needs root; starting the server with sudo" >&2
fi
echo "up.sh: starting skiff with data in ${data_dir} (Ctrl-C stops it)" >&2
exec $sudo ./bin/skiff server --data-dir "${data_dir}" \
	--image-archives "${images_dir}/busybox.tar,${images_dir}/testserver.tar" "$@"
