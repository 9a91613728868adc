// Package ingress is skiff's built-in Ingress controller: an HTTP and
// HTTPS reverse proxy on the node, routing by the networking.k8s.io/v1
// Ingresses of its IngressClass ("skiff", controller "skiff.dev/ingress").
//
// Reads (informers; a request never calls the API server): Ingresses,
// IngressClasses, Services, EndpointSlices, and the Secrets named in
// spec.tls of the ingresses it serves, each through a watch of that one
// name (field selector metadata.name), started when an ingress first
// names it and stopped when none does: a node's credential may read those
// secrets by name and no others (see internal/auth/node).
//
// Writes: status.loadBalancer.ingress of the ingresses it serves (the
// configured node addresses), and, through EnsureClass, its IngressClass.
//
// An ingress is served when its legacy annotation kubernetes.io/ingress.class
// names our class; else when spec.ingressClassName names our class or a
// class whose controller is ours; else, with no class at all, when one of
// those classes is marked ingressclass.kubernetes.io/is-default-class.
//
// Routing, as upstream's Ingress specification and the common controllers:
//   - the Host header (port and case ignored) picks the rules of the exact
//     host, else of a wildcard host (*.example.com covers a.example.com,
//     not a.b.example.com nor example.com), else the rules without a host;
//   - within them an Exact path equal to the request path wins, else the
//     longest Prefix path (ImplementationSpecific counts as Prefix) that
//     is an element-wise prefix ("/foo" matches "/foo" and "/foo/bar", not
//     "/foobar"; trailing slashes ignored);
//   - nothing matching: the host's ingress defaultBackend, else the
//     cluster's (the oldest ingress with one), else 404;
//   - the backend's service port (by number or name) leads to the
//     EndpointSlice port of the same name, i.e. the target port, on the
//     READY endpoints, taken round-robin; none: 503. ExternalName services
//     are proxied to their name;
//   - several ingresses claiming one host and path, or one TLS host: the
//     oldest wins.
//
// Requests are proxied unchanged (path, query, Host) with X-Forwarded-For,
// -Host and -Proto. HTTPS picks the certificate by SNI from spec.tls (the
// secretName in the ingress's namespace; entries without hosts cover the
// ingress's rule hosts), else a self-signed fallback (FallbackCommonName).
//
// The routing table is immutable: every informer event marks it dirty,
// and one loop rebuilds it from the caches and swaps it in atomically
// (events during a rebuild coalesce), so a request sees one consistent
// table.
//
// Never: it never mutates informer objects, never writes the status of
// ingresses that are not its own, and never proxies through the
// environment's HTTP proxy.
//
// Not yet: HTTP-to-HTTPS redirects, annotations (rewrites, timeouts,
// auth), retries on another endpoint when one fails, resource backends
// (served as 503).
//
// # Usage
//
//	if err := ingress.EnsureClass(ctx, client, ingress.DefaultClassName, true); err != nil { … }
//	c, err := ingress.New(ingress.Config{Client: client, StatusIPs: []string{nodeIP}})
//	err = c.Run(ctx) // listens, syncs, serves until ctx is done
package ingress
