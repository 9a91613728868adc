// Package serviceaccount is the service account controller: every active
// namespace has a ServiceAccount named "default", as upstream's
// serviceaccounts-controller ensures.
//
// Reads: namespaces and serviceaccounts (shared informers).
//
// Writes: serviceaccounts (create only): "default" in each namespace
// whose phase is Active, again whenever it is deleted.
//
// Never: it never creates anything in a terminating namespace, never
// updates or deletes service accounts, and never creates token secrets
// (tokens are issued elsewhere).
//
// # Usage
//
//	c := serviceaccount.New(deps) // registers informers on deps.Informers
//	deps.Informers.StartWithContext(ctx)
//	err := c.Run(ctx, workers) // blocks until ctx is done
package serviceaccount
