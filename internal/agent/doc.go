// Package agent is skiff's node agent (the kubelet): it makes the pods
// bound to its node real, as containers under containerd, and reports on
// the node.
//
// It owns the node's data dir: DIR/containerd (the supervised containerd,
// see package containerd) and DIR/agent (pod directories, container logs,
// the CNI IPAM state, its serving certificate). It reads, through the API
// server only, the pods bound to its node, its Node object (for the pod
// CIDR), and the config maps, secrets, services, persistent volume claims
// and volumes its pods refer to. It writes its Node and the node's status,
// its Lease in kube-node-lease, pod status, events, and the final deletion
// of the pods it has stopped. It serves the kubelet API (logs, exec,
// attach, port-forward, stats) on its port for the API server.
//
// It must never stop workloads because it stops: when Run returns, the
// containers (and containerd's shims) keep running, and the next Run adopts
// them instead of restarting them.
//
// # Usage
//
//	err := agent.Run(ctx, agent.Config{DataDir: dir, NodeName: "node-a", Kube: restConfig})
//
// Start-up order, each stage gated on the previous one:
//
//	containerd (own, or --container-runtime-endpoint) ─> CRI answers
//	  ─> node registered, Lease renewed ─> kubelet API serving
//	  ─> pod CIDR known ─> CNI config written (node Ready)
//	pod workers start as soon as the CRI answers: host-network pods run
//	before the pod network exists.
//
// The parts are packages of their own: nodestatus (registration,
// heartbeats, conditions), cni (the network config), pods (the per-pod
// sync), podstatus, pull, volumes, prober, kubeletserver (the HTTP API),
// logs, stats and eviction.
package agent
