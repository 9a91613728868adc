// Package apiservice keeps the apiregistration.k8s.io/v1 APIServices of
// the cluster, as upstream's aggregator does with its autoregistration and
// availability controllers.
//
//   - Registration: every group version the API server serves itself
//     (built-in groups, custom resources' groups, metrics.k8s.io) gets an
//     APIService named "<version>.<group>" ("v1." for the core group) with
//     no service: a local one. Built-in group versions get upstream's
//     priorities and the label kube-aggregator.kubernetes.io/automanaged
//     "onstart"; the others (custom resources) priority 1000/100 and the
//     label "true". A local automanaged APIService whose group version is
//     no longer served (its CRD was deleted) is deleted. APIServices
//     without the label, and any that names a service, are the
//     administrator's and are never changed or deleted here.
//   - Availability: the Available condition. A local APIService is always
//     available ("Local"). One that names a service is available ("Passed")
//     when the service exists, has a ready endpoint on the named port and
//     its /apis/<group>/<version> document answers through the API server
//     (which proxies it there, internal/aggregator); otherwise it is
//     unavailable with upstream's reasons: ServiceNotFound,
//     ServicePortError, MissingEndpoints or FailedDiscoveryCheck. Remote
//     APIServices are re-checked every 30 seconds (every 5 while
//     unavailable).
//
// Inputs: the group versions the server serves itself (from its discovery
// handler, not through the API: an extension server's group must not be
// taken for a local one); through the API server, APIServices (an
// informer the server shares with the aggregator), services and endpoint
// slices (read for remote APIServices); a CRD's change re-runs registration (ServedChanged, called by the CRD
// controller's informer). Outputs: APIService creates, spec updates,
// deletes and status updates.
package apiservice
