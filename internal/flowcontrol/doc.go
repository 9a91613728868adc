// Package flowcontrol keeps the objects of API priority and fairness
// (flowcontrol.apiserver.k8s.io/v1 FlowSchemas and
// PriorityLevelConfigurations) as upstream 1.33's kube-apiserver does.
//
// skiff serves these objects so that kubectl, client-go and the conformance
// tests find them, but it does NOT queue, classify or limit requests by
// them: there is no fair queuing, no concurrency limit and no
// X-Kubernetes-PF-* response header. Only the objects and their upkeep are
// implemented here.
//
// Responsibilities:
//
//   - Bootstrap: upstream 1.33's configuration objects. The mandatory ones
//     ("exempt" and "catch-all", both kinds) and the suggested ones
//     (system, node-high, leader-election, workload-high, workload-low,
//     global-default levels and their flow schemas), all annotated
//     apf.kubernetes.io/autoupdate-spec=true. The registry validates the
//     mandatory specs against MandatoryFlowSchema and
//     MandatoryPriorityLevelConfiguration.
//   - The ensurer (upstream's pkg/registry/flowcontrol/ensurer), once at
//     start and then every minute (every second after a failure):
//     a missing bootstrap object, mandatory or suggested, is created; a
//     mandatory object always gets its spec back (for the "exempt" level,
//     the values of spec.exempt are the administrator's) and the annotation
//     "true"; a suggested object gets its spec back only when its
//     annotation parses as true, or when it has none and was never changed
//     (generation 1), and its annotation is set to what was decided
//     (an administrator's "false" stays and protects the object's spec).
//     Objects annotated "true" whose names are no longer bootstrapped are
//     deleted; objects without the annotation are never touched.
//   - The Dangling condition of every FlowSchema (upstream's APF config
//     consumer): True, reason NotFound, when the referenced priority level
//     does not exist; False, reason Found, otherwise. Other conditions are
//     kept.
//
// Inputs: FlowSchemas and PriorityLevelConfigurations, watched through
// client-go informers. Outputs: creates, updates and deletes of those
// objects and updates of FlowSchema status, all through the API server,
// with upstream's field managers. It never writes anything else and never
// mutates an object read from the informer cache (it works on copies).
//
// # Usage
//
//	// after the API server serves flowcontrol.apiserver.k8s.io/v1:
//	g.Go(func() error { return flowcontrol.Run(ctx, client, log) })
//
// Run blocks until ctx ends. Internally one work queue carries a key per
// FlowSchema (its condition) and one key for the ensurer, which requeues
// itself after each pass; conflicts are retried.
//
// Known differences from upstream: status writes are updates with a
// resourceVersion, not server-side apply patches; and nothing rate-limits
// a fight over the Dangling condition with another writer.
package flowcontrol
