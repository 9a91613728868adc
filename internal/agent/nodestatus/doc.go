// Package nodestatus is the node agent's voice about its node: it
// registers the Node object, proves the agent alive through the node's
// Lease, and posts the node's status, as upstream's kubelet does.
//
// Reads: the machine (CPU count, /proc/meminfo, the file system of the
// agent's root, /etc/machine-id, the DMI product UUID, the boot ID, the
// kernel release, /etc/os-release), the container runtime (Version: is it
// up; ListImages), pressure from the eviction manager (Config.Usage), the
// network state the agent sets (SetNetworkReady), and its own Node and
// Lease from the API server.
//
// Writes:
//   - the Node: created with the well-known hostname/os/arch labels plus
//     Config.Labels, Config.Taints plus node.kubernetes.io/not-ready
//     (NoSchedule, which the node lifecycle controller lifts once Ready),
//     and a full status. On a node that exists only the labels it owns are
//     restored; its spec (pod CIDR, taints, unschedulable) is kept.
//   - the Lease kube-node-lease/<node>: holder the node, duration 40 s,
//     renewed every 10 s, owned by the Node. This is the heartbeat the
//     node lifecycle controller watches.
//   - the node's status: conditions MemoryPressure, DiskPressure,
//     PIDPressure and Ready with upstream's reasons and messages, capacity
//     and allocatable (cpu, memory, ephemeral-storage, pods; allocatable
//     holds back Config.Reserved and the hard eviction thresholds;
//     extended resources someone else advertised in capacity are kept,
//     with allocatable equal to capacity),
//     addresses (InternalIP, Hostname), nodeInfo, the 50 largest images,
//     and the kubelet endpoint port. It is computed every 10 s and posted
//     (UpdateStatus, conflicts retried from a fresh read) only when it
//     changed apart from heartbeat times, or when 5 min passed since the
//     last post: the Lease carries liveness, so an idle node costs one
//     cached GET and one Lease update per 10 s.
//   - events on the node when a condition changes (NodeReady,
//     NodeNotReady, NodeHasSufficientMemory, …) when Config.Recorder is set.
//
// Never: it never changes the node's spec after creating it (the pod CIDR
// belongs to the nodeipam controller, taints to the node lifecycle
// controller and users), never touches conditions it does not own, and
// never deletes the node.
//
// Lifecycle:
//
//	New ──> Run: register (retry with back-off until it succeeds)
//	              │ Registered() closed
//	              ├──> lease loop:  renew every RenewInterval
//	              └──> status loop: every StatusInterval or on
//	                   SetNetworkReady; a deleted node is registered again
//	        ctx done ──> both loops stop; Run returns nil
//
// The node is NotReady until SetNetworkReady(true, "") and while the
// runtime does not answer Version. PodCIDR works before Run too, and
// returns at once for a node that already has its CIDR: an agent that
// restarts can write its CNI config and call SetNetworkReady before Run,
// so that a Ready node is not posted NotReady in between.
//
// # Usage
//
//	r, err := nodestatus.New(nodestatus.Config{Client: c, NodeName: name, Runtime: rt, RootDir: root, Usage: ev.Pressure})
//	go r.Run(ctx)
//	cidr, err := r.PodCIDR(ctx)          // waits for nodeipam
//	_, err = cni.WriteConfig(confDir, cidr, dataDir)
//	r.SetNetworkReady(err == nil, "")     // the node turns Ready
package nodestatus
