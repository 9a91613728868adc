# lib.sh holds what the hack/ scripts share. Source it; it changes nothing
# by itself.

# node_packages are the Debian packages a node needs: containerd (with
# ctr) and runc run containers, the CNI plugins give pods their network
# (they use iptables for host ports), busybox-static goes into the test
# image, nftables serves the service proxy and network policy, iproute2
# (ip) keeps routes to other nodes' pods, kmod (modprobe) loads
# br_netfilter where it is a module.
node_packages=(containerd runc containernetworking-plugins busybox-static nftables iproute2 kmod iptables)

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
	echo "skiff: installing ${missing[*]}" >&2
	$sudo apt-get update -qq
	DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq --no-install-recommends "${missing[@]}"
}

