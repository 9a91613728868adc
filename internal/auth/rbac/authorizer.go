package rbac

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"

	rbacv1 "k8s.io/api/rbac/v1"
	"k8s.io/apimachinery/pkg/labels"
	"k8s.io/client-go/informers"
	rbaclisters "k8s.io/client-go/listers/rbac/v1"
	"k8s.io/client-go/tools/cache"

	"github.com/skiff-dev/skiff/internal/auth"
)

// Authorizer decides requests from the RBAC objects in its informers'
// caches. It is safe for concurrent use; its methods never call the API
// server. Build it with New before the factory is started.
type Authorizer struct {
	roles               rbaclisters.RoleLister
	roleBindings        rbaclisters.RoleBindingLister
	clusterRoles        rbaclisters.ClusterRoleLister
	clusterRoleBindings rbaclisters.ClusterRoleBindingLister
	// bySubject indexes the cluster role bindings by subjectKeys; nil
	// when the index could not be added (the informer had stopped), and
	// then every request lists them all.
	bySubject cache.Indexer
	synced    []cache.InformerSynced
}

// subjectIndex names the cluster role bindings' index by subject: with
// dozens of bindings, listing and sorting them all was 2% of the server's
// CPU under load, for each request decided by RBAC.
const subjectIndex = "rbac.subject"

// subjectKeys are the index keys of a cluster role binding: one per
// subject that can name a user ("User/name", "Group/name",
// "ServiceAccount/namespace/name"; a service account without a namespace
// names none in a cluster binding).
func subjectKeys(obj any) ([]string, error) {
	b, ok := obj.(*rbacv1.ClusterRoleBinding)
	if !ok {
		return nil, nil
	}
	keys := make([]string, 0, len(b.Subjects))
	for _, s := range b.Subjects {
		switch s.Kind {
		case rbacv1.UserKind, rbacv1.GroupKind:
			keys = append(keys, s.Kind+"/"+s.Name)
		case rbacv1.ServiceAccountKind:
			if s.Namespace != "" {
				keys = append(keys, s.Kind+"/"+s.Namespace+"/"+s.Name)
			}
		}
	}
	return keys, nil
}

// userKeys are the subject index keys that can name user.
func userKeys(user auth.User) []string {
	keys := make([]string, 0, 2+len(user.Groups))
	keys = append(keys, rbacv1.UserKind+"/"+user.Name)
	for _, g := range user.Groups {
		keys = append(keys, rbacv1.GroupKind+"/"+g)
	}
	if rest, ok := strings.CutPrefix(user.Name, auth.ServiceAccountPrefix); ok {
		if ns, name, ok := strings.Cut(rest, ":"); ok {
			keys = append(keys, rbacv1.ServiceAccountKind+"/"+ns+"/"+name)
		}
	}
	return keys
}

// New returns an authorizer reading roles, rolebindings, clusterroles and
// clusterrolebindings from informers, on which it registers those four
// informers. The caller starts the factory; until HasSynced is true the
// authorizer sees a partial (possibly empty) policy and so allows less.
func New(informers informers.SharedInformerFactory) *Authorizer {
	rbac := informers.Rbac().V1()
	crbInformer := rbac.ClusterRoleBindings().Informer()
	var bySubject cache.Indexer
	if _, ok := crbInformer.GetIndexer().GetIndexers()[subjectIndex]; ok {
		bySubject = crbInformer.GetIndexer() // another authorizer on the same factory
	} else if err := crbInformer.AddIndexers(cache.Indexers{subjectIndex: subjectKeys}); err == nil {
		bySubject = crbInformer.GetIndexer()
	}
	return &Authorizer{
		bySubject:           bySubject,
		roles:               rbac.Roles().Lister(),
		roleBindings:        rbac.RoleBindings().Lister(),
		clusterRoles:        rbac.ClusterRoles().Lister(),
		clusterRoleBindings: rbac.ClusterRoleBindings().Lister(),
		synced: []cache.InformerSynced{
			rbac.Roles().Informer().HasSynced,
			rbac.RoleBindings().Informer().HasSynced,
			rbac.ClusterRoles().Informer().HasSynced,
			crbInformer.HasSynced,
		},
	}
}

// HasSynced reports whether all four caches have synced.
func (a *Authorizer) HasSynced() bool {
	for _, s := range a.synced {
		if !s() {
			return false
		}
	}
	return true
}

// Authorize allows attrs if a rule of a role bound to attrs.User allows
// it: cluster role bindings everywhere, role bindings (to a Role or a
// ClusterRole) in attrs.Namespace. On Allow the reason names the binding,
// the role and the subject that matched. Otherwise it returns NoOpinion
// (never Deny, as upstream), with a reason listing any bindings whose role
// could not be found. The error is always nil; it is there for the
// authorizer chain's shape.
func (a *Authorizer) Authorize(ctx context.Context, attrs auth.Attributes) (auth.Decision, string, error) {
	var reason string
	var errs []error
	a.visitRules(attrs.User, attrs.Namespace, func(src source, rule *rbacv1.PolicyRule, err error) bool {
		if err != nil {
			errs = append(errs, err)
			return true
		}
		if RuleAllows(attrs, rule) {
			reason = "RBAC: allowed by " + src.String()
			return false
		}
		return true
	})
	if reason != "" {
		return auth.Allow, reason, nil
	}
	if len(errs) > 0 {
		return auth.NoOpinion, "RBAC: " + errors.Join(errs...).Error(), nil
	}
	return auth.NoOpinion, "", nil
}

// RulesFor lists the rules that apply to user in namespace ("" for the
// cluster-wide rules only): resource rules and non-resource rules apart,
// in binding order (cluster role bindings first). incomplete is true when
// a binding's role could not be read, so the lists may lack rules; that is
// what SelfSubjectRulesReview reports as incomplete. The rules are copies.
func (a *Authorizer) RulesFor(user auth.User, namespace string) (resource []rbacv1.PolicyRule, nonResource []rbacv1.PolicyRule, incomplete bool) {
	a.visitRules(user, namespace, func(_ source, rule *rbacv1.PolicyRule, err error) bool {
		if err != nil {
			incomplete = true
			return true
		}
		r := *rule.DeepCopy()
		if len(r.NonResourceURLs) > 0 {
			nonResource = append(nonResource, r)
		} else {
			resource = append(resource, r)
		}
		return true
	})
	return resource, nonResource, incomplete
}

// rulesFor returns every rule user holds in namespace (not copied; do not
// mutate) and the errors met resolving roles.
func (a *Authorizer) rulesFor(user auth.User, namespace string) ([]rbacv1.PolicyRule, error) {
	var rules []rbacv1.PolicyRule
	var errs []error
	a.visitRules(user, namespace, func(_ source, rule *rbacv1.PolicyRule, err error) bool {
		if err != nil {
			errs = append(errs, err)
			return true
		}
		rules = append(rules, *rule)
		return true
	})
	return rules, errors.Join(errs...)
}

// source names the binding a rule came from, for reasons.
type source struct {
	bindingKind, bindingNamespace, bindingName string
	roleKind, roleName                         string
	subject                                    *rbacv1.Subject
}

func (s source) String() string {
	name := s.bindingName
	if s.bindingNamespace != "" {
		name = s.bindingName + "/" + s.bindingNamespace
	}
	subject := s.subject.Name
	if s.subject.Kind == rbacv1.ServiceAccountKind {
		ns := s.subject.Namespace
		if ns == "" {
			ns = s.bindingNamespace
		}
		subject = ns + "/" + s.subject.Name
	}
	return fmt.Sprintf("%s %q of %s %q to %s %q", s.bindingKind, name, s.roleKind, s.roleName, s.subject.Kind, subject)
}

// visitRules calls visit for each rule user holds in namespace, or with an
// error for each binding whose role cannot be read, until visit returns
// false. Rules point into the informer cache: visit must not mutate them.
func (a *Authorizer) visitRules(user auth.User, namespace string, visit func(source, *rbacv1.PolicyRule, error) bool) {
	crbs, err := a.clusterBindingsFor(user)
	if err != nil {
		if !visit(source{}, nil, fmt.Errorf("listing cluster role bindings: %w", err)) {
			return
		}
	}
	sortByName(crbs, func(b *rbacv1.ClusterRoleBinding) string { return b.Name })
	for _, b := range crbs {
		subject, ok := appliesTo(b.Subjects, user, "")
		if !ok {
			continue
		}
		rules, err := a.roleRules(b.RoleRef, "")
		if err != nil {
			if !visit(source{}, nil, fmt.Errorf("cluster role binding %q: %w", b.Name, err)) {
				return
			}
			continue
		}
		src := source{bindingKind: "ClusterRoleBinding", bindingName: b.Name, roleKind: b.RoleRef.Kind, roleName: b.RoleRef.Name, subject: subject}
		for i := range rules {
			if !visit(src, &rules[i], nil) {
				return
			}
		}
	}
	if namespace == "" {
		return
	}
	rbs, err := a.roleBindings.RoleBindings(namespace).List(labels.Everything())
	if err != nil {
		if !visit(source{}, nil, fmt.Errorf("listing role bindings in %s: %w", namespace, err)) {
			return
		}
	}
	sortByName(rbs, func(b *rbacv1.RoleBinding) string { return b.Name })
	for _, b := range rbs {
		subject, ok := appliesTo(b.Subjects, user, namespace)
		if !ok {
			continue
		}
		rules, err := a.roleRules(b.RoleRef, namespace)
		if err != nil {
			if !visit(source{}, nil, fmt.Errorf("role binding %s/%s: %w", namespace, b.Name, err)) {
				return
			}
			continue
		}
		src := source{bindingKind: "RoleBinding", bindingNamespace: namespace, bindingName: b.Name, roleKind: b.RoleRef.Kind, roleName: b.RoleRef.Name, subject: subject}
		for i := range rules {
			if !visit(src, &rules[i], nil) {
				return
			}
		}
	}
}

// clusterBindingsFor returns the cluster role bindings that may apply to
// user (all of them without the subject index), unsorted.
func (a *Authorizer) clusterBindingsFor(user auth.User) ([]*rbacv1.ClusterRoleBinding, error) {
	if a.bySubject == nil {
		return a.clusterRoleBindings.List(labels.Everything())
	}
	var out []*rbacv1.ClusterRoleBinding
	for _, key := range userKeys(user) {
		objs, err := a.bySubject.ByIndex(subjectIndex, key)
		if err != nil {
			return nil, err
		}
		for _, o := range objs {
			b, ok := o.(*rbacv1.ClusterRoleBinding)
			if !ok || slices.Contains(out, b) {
				continue // a binding naming the user twice (as user and group)
			}
			out = append(out, b)
		}
	}
	return out, nil
}

// roleRules returns the rules of the role ref names (a Role in namespace
// or a ClusterRole). The slice belongs to the cache.
func (a *Authorizer) roleRules(ref rbacv1.RoleRef, namespace string) ([]rbacv1.PolicyRule, error) {
	switch ref.Kind {
	case "ClusterRole":
		r, err := a.clusterRoles.Get(ref.Name)
		if err != nil {
			return nil, fmt.Errorf("getting cluster role %q: %w", ref.Name, err)
		}
		return r.Rules, nil
	case "Role":
		if namespace == "" {
			return nil, fmt.Errorf("role %q referenced outside a namespace", ref.Name)
		}
		r, err := a.roles.Roles(namespace).Get(ref.Name)
		if err != nil {
			return nil, fmt.Errorf("getting role %s/%s: %w", namespace, ref.Name, err)
		}
		return r.Rules, nil
	}
	return nil, fmt.Errorf("unknown role kind %q", ref.Kind)
}

// sortByName orders objects by name so that reasons are deterministic.
// It reorders the slice of pointers only, not the cached objects.
func sortByName[T any](objs []T, name func(T) string) {
	slices.SortFunc(objs, func(x, y T) int { return strings.Compare(name(x), name(y)) })
}
