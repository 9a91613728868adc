// Package endpoints is the Endpoints controller: for every Service with a
// selector it keeps a core/v1 Endpoints object of the same name listing
// the pods the selector matches, as upstream's endpoints controller does.
//
// Reads: services, pods and endpoints (shared informers).
//
// Writes: endpoints (create, update, delete). Each Endpoints object holds
// the matching pods that have an IP of the service's first IP family and
// are not terminal: ready pods in subsets[].addresses, the others in
// notReadyAddresses (publishNotReadyAddresses makes every pod, terminating
// ones too, ready; otherwise terminating pods are left out). Each address
// has ip, nodeName, a Pod targetRef (namespace, name, uid) and the pod's
// hostname when spec.hostname is set and spec.subdomain names the service.
// Ports come from the service's targetPorts, names resolved per pod; a pod
// without a named port is left out for that port, and addresses are
// grouped into one subset per distinct port set. Labels are the service's
// plus service.kubernetes.io/headless for headless services; annotations
// endpoints.kubernetes.io/last-change-trigger-time and, past 1000
// addresses (which are truncated), endpoints.kubernetes.io/over-capacity.
// Endpoints of deleted services are deleted (also those left over at
// start, except leader-election locks); a deleted Endpoints object is
// recreated. Failed writes are recorded as Warning events
// FailedToCreateEndpoint and FailedToUpdateEndpoint on the Endpoints.
//
// Never: it never touches the Endpoints of services without a selector or
// of ExternalName services (those belong to users), never writes an object
// that is already right, and never mutates informer objects.
//
// The pod-to-endpoint rules (ShouldPodBeInEndpoints, FindPort,
// ShouldSetHostname, TriggerTimes, …) are exported for the EndpointSlice
// controller, so both agree.
//
// # Usage
//
//	c := endpoints.New(deps) // registers informers on deps.Informers
//	deps.Informers.StartWithContext(ctx)
//	err := c.Run(ctx, workers) // blocks until ctx is done
package endpoints
