// Package daemonset is the DaemonSet controller: it runs one pod of each
// DaemonSet (apps/v1) on every eligible node, as upstream does.
//
// A node is eligible when it matches the pod template's nodeSelector and
// required node affinity (k8s.io/component-helpers nodeaffinity) and every
// NoSchedule/NoExecute taint on it is tolerated by the template's
// tolerations plus the ones every daemon pod gets (not-ready and
// unreachable NoExecute; disk-, memory-, pid-pressure and unschedulable
// NoSchedule; network-unavailable NoSchedule for host-network pods). A pod
// keeps running on a node that stops being eligible only through
// NoSchedule taints; otherwise it is deleted. Pods are not bound here: each
// gets a required node affinity "matchFields metadata.name In [node]" and
// the scheduler binds it.
//
// Pods carry the controller-revision-hash of the ControllerRevision of
// their template (package history) and pod-template-generation. The
// RollingUpdate strategy replaces outdated pods respecting maxUnavailable
// (delete, then recreate) or maxSurge (create, then delete the old pod once
// the new one is available); OnDelete only creates new pods from the
// current template.
//
// Reads: DaemonSets, Pods, Nodes and ControllerRevisions from the shared
// informers.
// Writes: Pods (create, delete, adopt/release), ControllerRevisions,
// DaemonSet status, Events.
// Never: binds pods (spec.nodeName) or updates a DaemonSet's spec.
//
// A failed pod is deleted (and so replaced) with a back-off per node
// (1 s doubling to 15 min), as upstream does.
//
// Not implemented: slow-start batches of creations, status conditions.
package daemonset
