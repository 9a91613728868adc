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

# ensure_debian_packages installs the named Debian packages that are not
# installed yet, with apt-get (through sudo when not root). It does nothing
# when all are present or none are named.
ensure_debian_packages() {
	local missing=() p
	for p in "$@"; do
		if ! dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q 'install ok installed'; then
			missing+=("$p")
		fi
	done
	if [[ ${#missing[@]} -eq 0 ]]; then
		return 0
	fi
	local sudo=""
	if [[ "$(id -u)" -ne 0 ]]; then
		sudo="sudo"
	fi
	echo "up.sh: installing ${missing[*]}" >&2
	$sudo apt-get update -qq
	DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq --no-install-recommends "${missing[@]}"
}

if ! command -v go >/dev/null 2>&1; then
	echo "up.sh: Go is required to build skiff (see https://go.dev/doc/install)" >&2
	exit 1
fi
# The API server needs no system packages yet; the node agent will need
# containerd and friends, which will be listed here.
ensure_debian_packages

echo "up.sh: building bin/skiff" >&2
go build -o bin/skiff ./cmd/skiff

echo "up.sh: starting skiff with data in ${data_dir} (Ctrl-C stops it)" >&2
exec ./bin/skiff server --data-dir "${data_dir}" "$@"
