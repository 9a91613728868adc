// Package node is the node authorizer, upstream's Node authorization mode:
// it limits what a node agent (user "system:node:<name>" in group
// "system:nodes") may read and write to what the pods bound to that node
// need, plus the node's own objects.
//
// Reads: pods (indexed by spec.nodeName), persistentvolumeclaims and
// persistentvolumes through a shared informer factory the caller starts.
// Each decision is computed from the informer caches; it never calls the
// API server.
//
// Writes: nothing.
//
// Decisions, for node users only (everyone else gets NoOpinion):
//   - secrets, configmaps, persistentvolumeclaims (and their status),
//     persistentvolumes, serviceaccounts and serviceaccounts/token: Allow
//     when a pod bound to the node references the object (volumes,
//     projected sources, env, envFrom, imagePullSecrets, CSI secrets of
//     its persistent volumes, its service account), Deny otherwise — also
//     for list and watch without a single name, so that RBAC's system:node
//     role (bound to system:nodes) can never grant more;
//   - pods: get/list/watch and create (mirror pods; admission checks the
//     body) Allow; delete, status writes and eviction Allow for pods bound
//     to the node and Deny for others;
//   - nodes: reads and create Allow; update/patch of the node itself and
//     its status Allow, of other nodes Deny; csinodes likewise;
//   - leases: the node's own lease in kube-node-lease Allow, others Deny;
//   - events create/patch/update, certificatesigningrequests
//     create/get/list/watch, services get/list/watch and endpoints get
//     Allow;
//   - anything else NoOpinion (RBAC decides).
//
// Never: it never allows a node an object none of its pods references,
// and never mutates objects read from the cache.
//
// # Usage
//
//	n := node.New(factory) // before factory.Start
//	factory.Start(ctx.Done())
//	cache.WaitForCacheSync(ctx.Done(), n.HasSynced)
//	// in the chain, before RBAC: a Deny stops, NoOpinion falls through
//	d, reason, err := n.Authorize(ctx, attrs)
package node
