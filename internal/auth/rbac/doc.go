// Package rbac is the RBAC authorizer: it decides requests from Roles,
// ClusterRoles, RoleBindings and ClusterRoleBindings (rbac.authorization.k8s.io/v1)
// with upstream's matching semantics, lists the rules a user holds (for
// SelfSubjectRulesReview and `kubectl auth can-i --list`), prevents
// privilege escalation through role and binding writes, and reconciles
// upstream's default cluster roles and bindings.
//
// Reads: roles, rolebindings, clusterroles and clusterrolebindings through
// a shared informer factory (the caller starts it); EnsureDefaults reads
// and writes clusterroles and clusterrolebindings through a client.
//
// Writes: only EnsureDefaults writes (creates default cluster roles and
// bindings, adds missing rules, subjects, labels and annotations to them).
//
// Never: Authorize never calls the API server, never returns Deny (a
// request RBAC does not allow gets NoOpinion, as upstream), and never
// mutates objects read from the informer cache. EnsureDefaults never
// removes rules or subjects, and never touches an object annotated
// rbac.authorization.kubernetes.io/autoupdate: "false".
//
// # Usage
//
//	a := rbac.New(factory)          // registers the four RBAC informers
//	factory.StartWithContext(ctx)
//	cache.WaitForCacheSync(ctx.Done(), a.HasSynced)
//	if err := rbac.EnsureDefaults(ctx, client); err != nil { ... }
//	decision, reason, err := a.Authorize(ctx, attrs)
//
// On role writes the registry calls AuthorizeRoleWrite, on binding writes
// AuthorizeBindingWrite (both built on ConfirmNoEscalation).
package rbac
