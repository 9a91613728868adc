// Package discovery serves the Kubernetes discovery documents that tell
// kubectl and client-go which groups, versions and resources skiff serves.
//
// It owns the read-only endpoints /api, /api/v1, /apis, /apis/<group> and
// /apis/<group>/<version>. On /api and /apis it answers both the legacy
// documents (metav1.APIVersions and metav1.APIGroupList) and, when the
// Accept header asks for it, aggregated discovery
// (apidiscovery.k8s.io/v2 or v2beta1 APIGroupDiscoveryList) with an ETag
// and 304 on If-None-Match.
//
// Its inputs are the []*registry.Resource list and the ExtraGroups given to
// New (groups another handler serves, like metrics.k8s.io; they are
// advertised without a storageVersionHash) and, for Dynamic, the custom
// resources given to SetCustomResources and the extension servers' groups
// given to SetRemoteGroups (internal/aggregator; a remote group version
// hides a local one, as an APIService takes it over upstream). Every
// document is computed when its inputs change, so serving reads only
// immutable bytes and the handler is safe for concurrent use. It never
// reads storage and never writes anything.
// ReviewGroups lists the create-only review resources the API server
// answers itself (authentication.k8s.io and authorization.k8s.io), to be
// passed as extra groups.
//
// Beyond what a Resource states (Status, Scale), the well-known
// subresources of pods, services, nodes, namespaces and serviceaccounts
// (binding, eviction, log, exec, attach, portforward, proxy,
// ephemeralcontainers, finalize, token) are
// advertised from a fixed table, as upstream advertises them, together with
// the legacy core "bindings" resource. The HTTP layer decides whether it
// actually serves them.
//
// # Usage
//
//	h := discovery.New(builtin.Resources(), append(discovery.ReviewGroups(), metricsapi.Group())...)
//	mux.Handle("/api", h)
//	mux.Handle("/api/", h)  // only /api/v1 is answered
//	mux.Handle("/apis", h)
//	mux.Handle("/apis/", h) // only /apis/<g> and /apis/<g>/<v>
package discovery
