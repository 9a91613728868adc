// Package node is the node authorizer, upstream's Node authorization mode:
// it limits what a node agent (user "system:node:<name>" in group
// "system:nodes") may read and write to what the pods bound to that node
// need, plus the node's own objects.
//
// Reads: pods (indexed by spec.nodeName), persistentvolumeclaims,
// persistentvolumes and ingresses (indexed by TLS secret) through a shared
// informer factory the caller starts.
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
//   - secrets named in spec.tls[].secretName of an Ingress: get (and
//     list/watch of that single name) Allow for every node. Every node
//     runs the ingress controller and serves every ingress, so every node
//     needs each ingress's certificate and key. This widens a secret's
//     reach the way a pod mounting it does: whoever may create an Ingress
//     in a namespace can hand that namespace's secrets to the nodes (as
//     whoever may create a pod there can), never to users. Other secrets
//     stay denied;
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
// Never: it never allows a node an object none of its pods (or, for TLS
// secrets, no ingress) references, and never mutates objects read from
// the cache.
//
// # Usage
//
//	n := node.New(factory) // before factory.Start
//	factory.StartWithContext(ctx)
//	cache.WaitForCacheSync(ctx.Done(), n.HasSynced)
//	// in the chain, before RBAC: a Deny stops, NoOpinion falls through
//	d, reason, err := n.Authorize(ctx, attrs)
package node
