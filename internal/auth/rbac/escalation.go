package rbac

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"

	rbacv1 "k8s.io/api/rbac/v1"

	"github.com/skiff-dev/skiff/internal/auth"
)

// EscalationError says that a user tried to grant rules they do not hold.
// The API server answers it with 403 Forbidden.
type EscalationError struct {
	User      auth.User
	Namespace string
	// Missing are the (broken-down) rules the user lacks.
	Missing []rbacv1.PolicyRule
	// ResolveErr, if not nil, says some of the user's own bindings could
	// not be resolved, so they may hold more than was counted.
	ResolveErr error
}

func (e *EscalationError) Error() string {
	var b strings.Builder
	fmt.Fprintf(&b, "user %q (groups=%q) is attempting to grant RBAC permissions not currently held:", e.User.Name, e.User.Groups)
	for _, r := range e.Missing {
		b.WriteString("\n")
		b.WriteString(ruleString(r))
	}
	if e.ResolveErr != nil {
		fmt.Fprintf(&b, "; resolution errors: %v", e.ResolveErr)
	}
	return b.String()
}

// IsEscalation reports whether err is (or wraps) an *EscalationError.
func IsEscalation(err error) bool {
	var e *EscalationError
	return errors.As(err, &e)
}

// ruleString renders a rule compactly, as upstream's CompactString.
func ruleString(r rbacv1.PolicyRule) string {
	var parts []string
	add := func(name string, v []string) {
		if len(v) > 0 {
			parts = append(parts, fmt.Sprintf("%s:%q", name, v))
		}
	}
	add("APIGroups", r.APIGroups)
	add("Resources", r.Resources)
	add("ResourceNames", r.ResourceNames)
	add("NonResourceURLs", r.NonResourceURLs)
	add("Verbs", r.Verbs)
	return "{" + strings.Join(parts, ", ") + "}"
}

// fullAuthority is what cluster-admin holds; creating an aggregated
// ClusterRole requires it, since its rules come from roles picked later.
func fullAuthority() []rbacv1.PolicyRule {
	return []rbacv1.PolicyRule{
		{Verbs: []string{rbacv1.VerbAll}, APIGroups: []string{rbacv1.APIGroupAll}, Resources: []string{rbacv1.ResourceAll}},
		{Verbs: []string{rbacv1.VerbAll}, NonResourceURLs: []string{rbacv1.NonResourceAll}},
	}
}

// ConfirmNoEscalation returns nil if user already holds every rule of
// rules in namespace ("" for cluster-wide, i.e. through cluster role
// bindings only), and an *EscalationError listing what is missing
// otherwise. It reads the informer caches only. It does not consider the
// escalate and bind verbs or system:masters; AuthorizeRoleWrite and
// AuthorizeBindingWrite do.
func (a *Authorizer) ConfirmNoEscalation(ctx context.Context, user auth.User, namespace string, rules []rbacv1.PolicyRule) error {
	owner, resolveErr := a.rulesFor(user, namespace)
	ok, missing := Covers(owner, rules)
	if ok {
		return nil
	}
	return &EscalationError{User: user, Namespace: namespace, Missing: missing, ResolveErr: resolveErr}
}

// AuthorizeRoleWrite is what the registry calls before it creates or
// updates a Role (namespace set) or ClusterRole (namespace "") named name
// for user. It allows members of system:masters, users allowed the
// "escalate" verb on the role, and otherwise only rules user already holds
// in namespace; an aggregated ClusterRole (aggregation non-nil) requires
// full authority, since its rules are picked later. Upstream skips the
// check on updates that leave the rules unchanged; the caller may too.
func (a *Authorizer) AuthorizeRoleWrite(ctx context.Context, user auth.User, namespace, name string, rules []rbacv1.PolicyRule, aggregation *rbacv1.AggregationRule) error {
	if user.InGroup(auth.SystemMasters) {
		return nil
	}
	resource := "clusterroles"
	if namespace != "" {
		resource = "roles"
	}
	d, _, _ := a.Authorize(ctx, auth.Attributes{
		User: user, Verb: "escalate", ResourceRequest: true, APIGroup: rbacv1.GroupName, APIVersion: "v1",
		Resource: resource, Namespace: namespace, Name: name,
	})
	if d == auth.Allow {
		return nil
	}
	if aggregation != nil {
		return a.ConfirmNoEscalation(ctx, user, namespace, fullAuthority())
	}
	return a.ConfirmNoEscalation(ctx, user, namespace, rules)
}

// AuthorizeBindingWrite is what the registry calls before it creates or
// updates a RoleBinding (namespace set) or ClusterRoleBinding (namespace
// "") referring to ref for user. It allows members of system:masters,
// users allowed the "bind" verb on the referenced role, and otherwise only
// if user already holds all of the role's rules in namespace. A role that
// does not exist yet yields an error wrapping the cache's NotFound.
func (a *Authorizer) AuthorizeBindingWrite(ctx context.Context, user auth.User, namespace string, ref rbacv1.RoleRef) error {
	if user.InGroup(auth.SystemMasters) {
		return nil
	}
	resource := "clusterroles"
	if ref.Kind == "Role" {
		resource = "roles"
	}
	d, _, _ := a.Authorize(ctx, auth.Attributes{
		User: user, Verb: "bind", ResourceRequest: true, APIGroup: rbacv1.GroupName, APIVersion: "v1",
		Resource: resource, Namespace: namespace, Name: ref.Name,
	})
	if d == auth.Allow {
		return nil
	}
	rules, err := a.roleRules(ref, namespace)
	if err != nil {
		return fmt.Errorf("resolving roleRef: %w", err)
	}
	return a.ConfirmNoEscalation(ctx, user, namespace, rules)
}

// Covers reports whether owner's rules cover every rule of servant, and if
// not which parts of servant are missing. Each servant rule is broken down
// into single-verb, single-group, single-resource (single-name,
// single-URL) rules, and each of those must be covered by one owner rule,
// as upstream's validation.Covers.
func Covers(owner, servant []rbacv1.PolicyRule) (bool, []rbacv1.PolicyRule) {
	var missing []rbacv1.PolicyRule
	for _, r := range servant {
		for _, sub := range breakdown(r) {
			covered := false
			for i := range owner {
				if ruleCovers(&owner[i], &sub) {
					covered = true
					break
				}
			}
			if !covered {
				missing = append(missing, sub)
			}
		}
	}
	return len(missing) == 0, missing
}

// breakdown splits a rule into rules of one verb, group, resource and
// name (or one verb and URL).
func breakdown(r rbacv1.PolicyRule) []rbacv1.PolicyRule {
	var out []rbacv1.PolicyRule
	for _, g := range r.APIGroups {
		for _, res := range r.Resources {
			for _, v := range r.Verbs {
				if len(r.ResourceNames) == 0 {
					out = append(out, rbacv1.PolicyRule{APIGroups: []string{g}, Resources: []string{res}, Verbs: []string{v}})
					continue
				}
				for _, n := range r.ResourceNames {
					out = append(out, rbacv1.PolicyRule{APIGroups: []string{g}, Resources: []string{res}, ResourceNames: []string{n}, Verbs: []string{v}})
				}
			}
		}
	}
	for _, u := range r.NonResourceURLs {
		for _, v := range r.Verbs {
			out = append(out, rbacv1.PolicyRule{NonResourceURLs: []string{u}, Verbs: []string{v}})
		}
	}
	return out
}

// ruleCovers reports whether owner covers servant (a broken-down rule).
func ruleCovers(owner, servant *rbacv1.PolicyRule) bool {
	verbs := slices.Contains(owner.Verbs, rbacv1.VerbAll) || containsAll(owner.Verbs, servant.Verbs)
	groups := slices.Contains(owner.APIGroups, rbacv1.APIGroupAll) || containsAll(owner.APIGroups, servant.APIGroups)
	resources := resourcesCover(owner.Resources, servant.Resources)
	urls := urlsCover(owner.NonResourceURLs, servant.NonResourceURLs)
	names := len(owner.ResourceNames) == 0 ||
		(len(servant.ResourceNames) > 0 && containsAll(owner.ResourceNames, servant.ResourceNames))
	return verbs && groups && resources && urls && names
}

func containsAll(set, items []string) bool {
	for _, x := range items {
		if !slices.Contains(set, x) {
			return false
		}
	}
	return true
}

// resourcesCover: "*" covers all, "x/sub" is covered exactly or by
// "*/sub".
func resourcesCover(owner, servant []string) bool {
	if slices.Contains(owner, rbacv1.ResourceAll) {
		return true
	}
	for _, r := range servant {
		if slices.Contains(owner, r) {
			continue
		}
		_, sub, ok := strings.Cut(r, "/")
		if !ok || !slices.Contains(owner, "*/"+sub) {
			return false
		}
	}
	return true
}

// urlsCover: a servant URL is covered by an equal owner URL or an owner
// prefix ending in "*" (a servant "/a/*" is covered by "/a/*" or "/*").
func urlsCover(owner, servant []string) bool {
	for _, u := range servant {
		ok := false
		for _, o := range owner {
			if o == u || (strings.HasSuffix(o, "*") && strings.HasPrefix(u, strings.TrimSuffix(o, "*"))) {
				ok = true
				break
			}
		}
		if !ok {
			return false
		}
	}
	return true
}
