// Package rootcacert publishes the cluster CA to every namespace as the
// config map kube-root-ca.crt (key ca.crt), as upstream's root CA
// certificate publisher does, so that pods can verify the API server (the
// projected kube-api-access volumes refer to it).
//
// It reads Namespaces (the shared informer) and config maps named
// kube-root-ca.crt (an informer of its own, filtered by name, so it never
// holds every config map of the cluster); it writes those config maps,
// creating them in active namespaces and restoring their content when
// changed or deleted. It never touches other config maps.
package rootcacert
