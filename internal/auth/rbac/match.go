package rbac

import (
	"strings"

	rbacv1 "k8s.io/api/rbac/v1"

	"github.com/skiff-dev/skiff/internal/auth"
)

// RuleAllows reports whether rule allows the request attrs describes,
// with upstream's semantics:
//   - "*" in verbs, apiGroups, resources or nonResourceURLs matches all;
//   - a resource request matches "resource" or "resource/subresource"
//     exactly, and "*/subresource" matches that subresource of any
//     resource;
//   - empty resourceNames match every name, otherwise the request must
//     name one of them (so a rule with names never allows list or create);
//   - a non-resource URL matches exactly or by a trailing "*" prefix.
//
// It is pure and safe for concurrent use.
func RuleAllows(attrs auth.Attributes, rule *rbacv1.PolicyRule) bool {
	if attrs.ResourceRequest {
		combined := attrs.Resource
		if attrs.Subresource != "" {
			combined = attrs.Resource + "/" + attrs.Subresource
		}
		return verbMatches(rule, attrs.Verb) &&
			apiGroupMatches(rule, attrs.APIGroup) &&
			resourceMatches(rule, combined, attrs.Subresource) &&
			resourceNameMatches(rule, attrs.Name)
	}
	return verbMatches(rule, attrs.Verb) && nonResourceURLMatches(rule, attrs.Path)
}

// RulesAllow reports whether any of rules allows attrs.
func RulesAllow(attrs auth.Attributes, rules []rbacv1.PolicyRule) bool {
	for i := range rules {
		if RuleAllows(attrs, &rules[i]) {
			return true
		}
	}
	return false
}

func verbMatches(rule *rbacv1.PolicyRule, verb string) bool {
	for _, v := range rule.Verbs {
		if v == rbacv1.VerbAll || v == verb {
			return true
		}
	}
	return false
}

func apiGroupMatches(rule *rbacv1.PolicyRule, group string) bool {
	for _, g := range rule.APIGroups {
		if g == rbacv1.APIGroupAll || g == group {
			return true
		}
	}
	return false
}

func resourceMatches(rule *rbacv1.PolicyRule, combined, subresource string) bool {
	for _, r := range rule.Resources {
		switch {
		case r == rbacv1.ResourceAll, r == combined:
			return true
		case subresource != "" && r == "*/"+subresource:
			return true
		}
	}
	return false
}

func resourceNameMatches(rule *rbacv1.PolicyRule, name string) bool {
	if len(rule.ResourceNames) == 0 {
		return true
	}
	for _, n := range rule.ResourceNames {
		if n == name {
			return true
		}
	}
	return false
}

func nonResourceURLMatches(rule *rbacv1.PolicyRule, path string) bool {
	for _, u := range rule.NonResourceURLs {
		if urlMatches(u, path) {
			return true
		}
	}
	return false
}

// urlMatches reports whether the rule URL pattern u matches path.
func urlMatches(u, path string) bool {
	switch {
	case u == rbacv1.NonResourceAll, u == path:
		return true
	case strings.HasSuffix(u, "*"):
		return strings.HasPrefix(path, strings.TrimSuffix(u, "*"))
	}
	return false
}

// subjectApplies reports whether subject s names user. namespace is the
// binding's namespace ("" for cluster bindings); a ServiceAccount subject
// without a namespace means one in the binding's namespace.
func subjectApplies(s *rbacv1.Subject, user auth.User, namespace string) bool {
	switch s.Kind {
	case rbacv1.UserKind:
		return s.Name == user.Name
	case rbacv1.GroupKind:
		return user.InGroup(s.Name)
	case rbacv1.ServiceAccountKind:
		ns := namespace
		if s.Namespace != "" {
			ns = s.Namespace
		}
		if ns == "" {
			return false
		}
		return user.Name == auth.ServiceAccountPrefix+ns+":"+s.Name
	}
	return false
}

// appliesTo returns the first subject of subjects that names user.
func appliesTo(subjects []rbacv1.Subject, user auth.User, namespace string) (*rbacv1.Subject, bool) {
	for i := range subjects {
		if subjectApplies(&subjects[i], user, namespace) {
			return &subjects[i], true
		}
	}
	return nil, false
}
