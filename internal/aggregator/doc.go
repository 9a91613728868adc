// Package aggregator is the API server's side of extension API servers:
// the group versions an APIService hands to a service are proxied there,
// as upstream's kube-aggregator does.
//
//   - Routing: the API server asks Handler for every /apis/<group>/<version>
//     path, after authentication and authorization. A group version whose
//     APIService names a service is served by that service (also when the
//     API server serves it itself: the APIService wins, as upstream); any
//     other gets nil and is served locally.
//   - Proxying: to a ready endpoint of the service (its EndpointSlices,
//     the port the APIService names mapped to the endpoints' port), over
//     TLS verified against the APIService's caBundle for the name
//     <service>.<namespace>.svc (or not verified with
//     insecureSkipTLSVerify), presenting the front-proxy client
//     certificate (pki.FrontProxy). The caller's identity travels in
//     X-Remote-User, X-Remote-Group, X-Remote-Uid and X-Remote-Extra-*;
//     its credentials (Authorization, Impersonate-*) do not. Responses
//     stream (watches); upgrades (exec) pass through.
//   - Discovery: each extension server's /apis/<group>/<version> document
//     is fetched (as system:kube-aggregator in system:masters) when the
//     APIServices change and every 30 seconds; the groups that answered
//     are added to /apis and the aggregated discovery documents
//     (discovery.Dynamic.SetRemoteGroups), and their OpenAPI v3 documents
//     (/openapi/v3/apis/<group>/<version>, where served) to /openapi/v3
//     (openapi.Handler.SetRemoteV3). Upstream also merges them into
//     /openapi/v2; skiff does not.
//   - Bootstrap: the kube-system/extension-apiserver-authentication config
//     map (the cluster's client CA and the front-proxy CA with its allowed
//     name and headers), which extension servers read to trust the proxy,
//     and upstream's Role extension-apiserver-authentication-reader and its
//     binding.
//
// Inputs: APIServices (the server's informer, shared with
// internal/apiservice), services and endpoint slices
// (the admission webhooks' listers, shared), all through the API server's
// in-process clients. Outputs:
// proxied requests, the remote groups of discovery and their OpenAPI v3
// documents, the config map, role
// and role binding. The APIServices' Available condition is
// internal/apiservice's, which checks each remote one through this proxy.
package aggregator
