// Package csrapproving is the CSR approving controller: it approves the
// node client certificate requests that node agents make when they join
// (authenticated by a bootstrap token) and when they renew (authenticated
// by their current node certificate), as upstream's csrapproving
// controller does.
//
// Reads: certificatesigningrequests (shared informer).
//
// Writes: the Approved condition (reason AutoApproved) of the CSRs that
// [Decide] approves, through certificatesigningrequests/approval.
//
// Never: it never denies (a request it does not recognise is left for a
// human with `kubectl certificate approve|deny`), never touches a request
// already approved or denied, and never approves another signer's
// requests.
//
// Unlike upstream, which asks a SubjectAccessReview whether the requester
// may create certificatesigningrequests/nodeclient (bootstrap) or
// selfnodeclient (renewal), it decides by the requester's groups recorded
// in spec.username/spec.groups: a member of system:bootstrappers may get
// any node client certificate; a member of system:nodes only its own
// (spec.username equals the requested CN). This relies on the API server
// setting spec.username/groups from the authenticated requester on create
// and ignoring what the client sent, which internal/registry/builtin's CSR
// strategy does.
//
// # Usage
//
//	c := csrapproving.New(deps) // registers the CSR informer on deps.Informers
//	deps.Informers.StartWithContext(ctx)
//	err := c.Run(ctx, workers) // blocks until ctx is done
package csrapproving
