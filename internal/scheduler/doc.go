// Package scheduler is skiff's scheduler: it watches unbound pods that
// name it (spec.schedulerName, "default-scheduler" by default) and the
// nodes, picks a node for each pod and binds the pod through the
// pods/binding subresource.
//
// Reads (informers: its own, or Config.NewInformers's, which in skiff
// server are the process's shared ones): pods, nodes, namespaces (for namespaceSelector),
// priority classes, pod disruption budgets (preemption), services,
// replication controllers, replica sets and stateful sets (the default
// spreading of their pods), and persistent volume claims, persistent
// volumes and storage classes (VolumeBinding). Writes: pods/binding, pod
// status (the PodScheduled condition and status.nominatedNodeName),
// events, for claims of WaitForFirstConsumer classes a volume's
// spec.claimRef (pre-binding) or the claim's
// volume.kubernetes.io/selected-node annotation, and with leader
// election a coordination.k8s.io Lease in kube-system. It talks to
// nothing but the API server and never changes objects read from the
// informer caches (it copies first).
//
// # Usage
//
//	err := scheduler.Run(ctx, scheduler.Config{RestConfig: cfg})
//
// The driving loop, one pod at a time:
//
//	pod := queue.Pop()
//	cache.UpdateSnapshot(snap)                // incremental
//	result, err := framework.Schedule(pod, snap) // pure
//	fit error  -> preempt (maybe), PodScheduled=False, FailedScheduling event, queue.Requeue
//	success    -> cache.AssumePod; go bind:
//	              bindVolumes (delayed claims: write, wait until bound) -> Binding
//	              -> FinishBinding | ForgetPod + Readd
//
// A pod that fits nowhere may preempt: the pods of lower priority on one
// node (the cheapest set, budgets honoured where possible) are marked
// with the DisruptionTarget condition and deleted, and the pod is
// nominated to the node (status.nominatedNodeName); until
// it is placed, pods of lower priority do not get the room it waits for,
// and pods of lower priority nominated to the same node lose their
// nomination. The victims of one disruption budget use up its allowed
// disruptions together.
//
// Pods that did not fit wait until an informer event that could make
// them fit (a node added or changed, a pod deleted, …) moves them back.
package scheduler
