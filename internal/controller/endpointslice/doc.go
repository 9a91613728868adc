// Package endpointslice is the EndpointSlice controller: for every Service
// with a selector it keeps discovery.k8s.io/v1 EndpointSlices listing the
// pods the selector matches, as upstream's endpointslice controller does.
//
// Reads: services, pods, nodes and endpointslices (shared informers).
//
// Writes: endpointslices (create, update, delete) and Warning events
// FailedToUpdateEndpointSlices on services. Slices are named from
// generateName "<service>-", labelled kubernetes.io/service-name and
// endpointslice.kubernetes.io/managed-by=endpointslice-controller.k8s.io
// (plus the service's labels and service.kubernetes.io/headless for
// headless services), owned by the Service (controller reference), and
// stamped with endpoints.kubernetes.io/last-change-trigger-time. There is
// one set of slices per address type of the service's ipFamilies and one
// per distinct port set (named target ports resolve per pod), at most 100
// endpoints each. Endpoints are the pods with an IP of the address type
// that are not terminal, terminating ones included, with conditions ready
// (serving and not terminating, or always with publishNotReadyAddresses),
// serving (the Ready condition) and terminating, nodeName, zone (the
// node's topology.kubernetes.io/zone label), hostname and a Pod
// targetRef. Pods whose node is not known are left out until it is.
// Existing slices are updated minimally: unchanged slices are not written,
// emptied slices are reused for new ones, and a service with no endpoints
// keeps one empty placeholder slice. When the service is deleted, loses
// its selector or becomes ExternalName, its managed slices are deleted
// (without waiting for the garbage collector).
//
// Never: it never touches slices another manager owns (a different
// managed-by label), never writes a slice that is already right, never
// mutates informer objects, and never acts on a cache that has not caught
// up with its own writes (see package slicewrites), which would duplicate
// slices.
//
// # Usage
//
//	c := endpointslice.New(deps) // registers informers on deps.Informers
//	deps.Informers.StartWithContext(ctx)
//	err := c.Run(ctx, workers) // blocks until ctx is done
package endpointslice
