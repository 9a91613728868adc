// Package cni writes the node's CNI network configuration: the conflist
// containerd's CRI plugin reads from its CNI conf dir to give every pod
// sandbox an interface on the node's bridge.
//
// The network is upstream's "bridge plus host-local" setup, the one k3s's
// flannel and kubenet use on a single node: a Linux bridge "skiff0" that is
// the pods' gateway, addresses from the node's pod CIDR handed out by
// host-local (its allocations kept under the agent's root), traffic leaving
// the node masqueraded by the bridge plugin (ipMasq, with iptables), and
// the portmap plugin for hostPort. The loopback interface needs no entry:
// containerd sets it up itself.
//
// Inputs: the node's pod CIDR (from node.spec.podCIDR, see
// nodestatus.Reporter.PodCIDR) and the directories. Outputs: one file,
// ConfFile, in the conf dir, written atomically (a temporary file renamed
// over it) and only when its content changes, so containerd's watch on the
// directory sees one complete change.
//
// ForgetNeighbor deletes the node's neighbor entry for one address on the
// bridge (the agent calls it for every new sandbox): host-local reuses the
// addresses of deleted pods, and a stale entry would send the node's
// traffic for the new pod to the old pod's MAC for some seconds.
//
// Never: it never runs plugins, touches interfaces, routes or iptables, and
// never removes other files of the conf dir (containerd reads at most one
// file, the first by name: keep the dir to ourselves).
//
// The plugins are Debian's containernetworking-plugins in /usr/lib/cni,
// which support CNI 1.0.0; their bridge refuses promiscMode together with
// hairpinMode, so only hairpinMode is set (a pod reaching itself through a
// service needs it).
//
// # Usage
//
//	changed, err := cni.WriteConfig(layout.CNIConfDir, podCIDR, filepath.Join(root, "cni"))
//	if err == nil { reporter.SetNetworkReady(true, "") }
package cni
