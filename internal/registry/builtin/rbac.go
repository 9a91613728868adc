package builtin

import (
	"strings"
	"time"

	rbacv1 "k8s.io/api/rbac/v1"
	"k8s.io/apimachinery/pkg/api/validation/path"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/util/validation/field"

	"github.com/skiff-dev/skiff/internal/registry"
)

// rbacResources returns rbac.authorization.k8s.io/v1: roles, rolebindings,
// clusterroles and clusterrolebindings. Their names are path segments
// ("system:node" is valid).
func rbacResources() []*registry.Resource {
	gv := rbacv1.SchemeGroupVersion
	return []*registry.Resource{
		{
			GVR: gv.WithResource("clusterrolebindings"), Kind: "ClusterRoleBinding", ListKind: "ClusterRoleBindingList",
			Singular: "clusterrolebinding",
			Strategy: clusterRoleBindingStrategy(),
		},
		{
			GVR: gv.WithResource("clusterroles"), Kind: "ClusterRole", ListKind: "ClusterRoleList",
			Singular: "clusterrole",
			Strategy: clusterRoleStrategy(),
		},
		{
			GVR: gv.WithResource("rolebindings"), Kind: "RoleBinding", ListKind: "RoleBindingList",
			Singular: "rolebinding", Namespaced: true,
			Strategy: roleBindingStrategy(),
		},
		{
			GVR: gv.WithResource("roles"), Kind: "Role", ListKind: "RoleList",
			Singular: "role", Namespaced: true,
			Strategy: roleStrategy(),
		},
	}
}

// roleColumns are the NAME, CREATED AT columns of roles and cluster roles.
func roleColumns() []metav1.TableColumnDefinition {
	return []metav1.TableColumnDefinition{
		columnName(),
		{Name: "Created At", Type: "date", Description: metav1.ObjectMeta{}.SwaggerDoc()["creationTimestamp"]},
	}
}

// roleRow renders a role's row: its name and creation time (RFC 3339, UTC).
func roleRow(m *metav1.ObjectMeta) []any {
	return []any{m.Name, m.CreationTimestamp.UTC().Format(time.RFC3339)}
}

// bindingColumns are the columns of role bindings and cluster role
// bindings; kind names the binding in the descriptions.
func bindingColumns(kind string) []metav1.TableColumnDefinition {
	return []metav1.TableColumnDefinition{
		columnName(),
		columnString("Role", rbacv1.RoleBinding{}.SwaggerDoc()["roleRef"], 0),
		columnAge(),
		columnString("Users", "Users in the "+kind, 1),
		columnString("Groups", "Groups in the "+kind, 1),
		columnString("ServiceAccounts", "ServiceAccounts in the "+kind, 1),
	}
}

// bindingRow renders a binding's row.
func bindingRow(m *metav1.ObjectMeta, ref rbacv1.RoleRef, subjects []rbacv1.Subject) []any {
	var users, groups, sas []string
	for _, s := range subjects {
		switch s.Kind {
		case rbacv1.UserKind:
			users = append(users, s.Name)
		case rbacv1.GroupKind:
			groups = append(groups, s.Name)
		case rbacv1.ServiceAccountKind:
			sas = append(sas, s.Namespace+"/"+s.Name)
		}
	}
	return []any{
		m.Name, ref.Kind + "/" + ref.Name, cellAge(m),
		strings.Join(users, ", "), strings.Join(groups, ", "), strings.Join(sas, ", "),
	}
}

func roleStrategy() registry.Strategy {
	return registry.Define(registry.Typed[*rbacv1.Role, *rbacv1.RoleList]{
		New:          func() *rbacv1.Role { return &rbacv1.Role{} },
		NewList:      func() *rbacv1.RoleList { return &rbacv1.RoleList{} },
		ValidateName: registry.NameIsPathSegment,
		Validate: func(r *rbacv1.Role) field.ErrorList {
			var allErrs field.ErrorList
			for i, rule := range r.Rules {
				allErrs = append(allErrs, validatePolicyRule(rule, true, field.NewPath("rules").Index(i))...)
			}
			return allErrs
		},
		Table: &registry.TypedTable[*rbacv1.Role]{Columns: roleColumns(), Row: func(r *rbacv1.Role) []any { return roleRow(&r.ObjectMeta) }},
	})
}

func clusterRoleStrategy() registry.Strategy {
	return registry.Define(registry.Typed[*rbacv1.ClusterRole, *rbacv1.ClusterRoleList]{
		New:          func() *rbacv1.ClusterRole { return &rbacv1.ClusterRole{} },
		NewList:      func() *rbacv1.ClusterRoleList { return &rbacv1.ClusterRoleList{} },
		ValidateName: registry.NameIsPathSegment,
		Validate: func(r *rbacv1.ClusterRole) field.ErrorList {
			var allErrs field.ErrorList
			for i, rule := range r.Rules {
				allErrs = append(allErrs, validatePolicyRule(rule, false, field.NewPath("rules").Index(i))...)
			}
			if r.AggregationRule != nil {
				p := field.NewPath("aggregationRule", "clusterRoleSelectors")
				if len(r.AggregationRule.ClusterRoleSelectors) == 0 {
					allErrs = append(allErrs, field.Required(p, "at least one clusterRoleSelector required if aggregationRule is non-nil"))
				}
				for i := range r.AggregationRule.ClusterRoleSelectors {
					allErrs = append(allErrs, validateLabelSelector(&r.AggregationRule.ClusterRoleSelectors[i], p.Index(i))...)
				}
			}
			return allErrs
		},
		Table: &registry.TypedTable[*rbacv1.ClusterRole]{Columns: roleColumns(), Row: func(r *rbacv1.ClusterRole) []any { return roleRow(&r.ObjectMeta) }},
	})
}

// validatePolicyRule checks one rule of a Role (namespaced) or ClusterRole.
func validatePolicyRule(rule rbacv1.PolicyRule, namespaced bool, fldPath *field.Path) field.ErrorList {
	var allErrs field.ErrorList
	if len(rule.Verbs) == 0 {
		allErrs = append(allErrs, field.Required(fldPath.Child("verbs"), "verbs must contain at least one value"))
	}
	if len(rule.NonResourceURLs) > 0 {
		if namespaced {
			allErrs = append(allErrs, field.Invalid(fldPath.Child("nonResourceURLs"), rule.NonResourceURLs, "namespaced rules cannot apply to non-resource URLs"))
		}
		if len(rule.APIGroups) > 0 || len(rule.Resources) > 0 || len(rule.ResourceNames) > 0 {
			allErrs = append(allErrs, field.Invalid(fldPath.Child("nonResourceURLs"), rule.NonResourceURLs, "rules cannot apply to both regular resources and non-resource URLs"))
		}
		return allErrs
	}
	if len(rule.APIGroups) == 0 {
		allErrs = append(allErrs, field.Required(fldPath.Child("apiGroups"), "resource rules must supply at least one api group"))
	}
	if len(rule.Resources) == 0 {
		allErrs = append(allErrs, field.Required(fldPath.Child("resources"), "resource rules must supply at least one resource"))
	}
	return allErrs
}

func roleBindingStrategy() registry.Strategy {
	return registry.Define(registry.Typed[*rbacv1.RoleBinding, *rbacv1.RoleBindingList]{
		New:          func() *rbacv1.RoleBinding { return &rbacv1.RoleBinding{} },
		NewList:      func() *rbacv1.RoleBindingList { return &rbacv1.RoleBindingList{} },
		ValidateName: registry.NameIsPathSegment,
		Default: func(b *rbacv1.RoleBinding) {
			defaultRoleRef(&b.RoleRef)
			defaultSubjects(b.Subjects)
		},
		Validate: func(b *rbacv1.RoleBinding) field.ErrorList {
			return validateBinding(b.RoleRef, b.Subjects, true)
		},
		ValidateUpdate: func(b, old *rbacv1.RoleBinding) field.ErrorList {
			allErrs := validateBinding(b.RoleRef, b.Subjects, true)
			return append(allErrs, validateRoleRefUnchanged(b.RoleRef, old.RoleRef)...)
		},
		Table: &registry.TypedTable[*rbacv1.RoleBinding]{
			Columns: bindingColumns("roleBinding"),
			Row: func(b *rbacv1.RoleBinding) []any {
				return bindingRow(&b.ObjectMeta, b.RoleRef, b.Subjects)
			},
		},
	})
}

func clusterRoleBindingStrategy() registry.Strategy {
	return registry.Define(registry.Typed[*rbacv1.ClusterRoleBinding, *rbacv1.ClusterRoleBindingList]{
		New:          func() *rbacv1.ClusterRoleBinding { return &rbacv1.ClusterRoleBinding{} },
		NewList:      func() *rbacv1.ClusterRoleBindingList { return &rbacv1.ClusterRoleBindingList{} },
		ValidateName: registry.NameIsPathSegment,
		Default: func(b *rbacv1.ClusterRoleBinding) {
			defaultRoleRef(&b.RoleRef)
			defaultSubjects(b.Subjects)
		},
		Validate: func(b *rbacv1.ClusterRoleBinding) field.ErrorList {
			return validateBinding(b.RoleRef, b.Subjects, false)
		},
		ValidateUpdate: func(b, old *rbacv1.ClusterRoleBinding) field.ErrorList {
			allErrs := validateBinding(b.RoleRef, b.Subjects, false)
			return append(allErrs, validateRoleRefUnchanged(b.RoleRef, old.RoleRef)...)
		},
		Table: &registry.TypedTable[*rbacv1.ClusterRoleBinding]{
			Columns: bindingColumns("clusterRoleBinding"),
			Row: func(b *rbacv1.ClusterRoleBinding) []any {
				return bindingRow(&b.ObjectMeta, b.RoleRef, b.Subjects)
			},
		},
	})
}

func defaultRoleRef(ref *rbacv1.RoleRef) {
	if ref.APIGroup == "" {
		ref.APIGroup = rbacv1.GroupName
	}
}

// defaultSubjects fills each subject's apiGroup from its kind, as upstream.
func defaultSubjects(subjects []rbacv1.Subject) {
	for i := range subjects {
		s := &subjects[i]
		if s.APIGroup != "" {
			continue
		}
		switch s.Kind {
		case rbacv1.ServiceAccountKind:
			s.APIGroup = ""
		case rbacv1.UserKind, rbacv1.GroupKind:
			s.APIGroup = rbacv1.GroupName
		}
	}
}

// validateBinding checks a binding's roleRef and subjects; namespaced
// bindings may refer to a Role or a ClusterRole, cluster bindings only to a
// ClusterRole.
func validateBinding(ref rbacv1.RoleRef, subjects []rbacv1.Subject, namespaced bool) field.ErrorList {
	var allErrs field.ErrorList
	refPath := field.NewPath("roleRef")
	if ref.APIGroup != rbacv1.GroupName {
		allErrs = append(allErrs, field.NotSupported(refPath.Child("apiGroup"), ref.APIGroup, []string{rbacv1.GroupName}))
	}
	kinds := []string{"ClusterRole"}
	if namespaced {
		kinds = []string{"Role", "ClusterRole"}
	}
	okKind := false
	for _, k := range kinds {
		okKind = okKind || ref.Kind == k
	}
	if !okKind {
		allErrs = append(allErrs, field.NotSupported(refPath.Child("kind"), ref.Kind, kinds))
	}
	if ref.Name == "" {
		allErrs = append(allErrs, field.Required(refPath.Child("name"), ""))
	} else {
		for _, msg := range path.IsValidPathSegmentName(ref.Name) {
			allErrs = append(allErrs, field.Invalid(refPath.Child("name"), ref.Name, msg))
		}
	}
	for i, s := range subjects {
		allErrs = append(allErrs, validateSubject(s, namespaced, field.NewPath("subjects").Index(i))...)
	}
	return allErrs
}

func validateSubject(s rbacv1.Subject, namespaced bool, fldPath *field.Path) field.ErrorList {
	var allErrs field.ErrorList
	if s.Name == "" {
		allErrs = append(allErrs, field.Required(fldPath.Child("name"), ""))
	}
	switch s.Kind {
	case rbacv1.ServiceAccountKind:
		if s.Name != "" {
			for _, msg := range registry.NameIsDNSSubdomain(s.Name, false) {
				allErrs = append(allErrs, field.Invalid(fldPath.Child("name"), s.Name, msg))
			}
		}
		if s.APIGroup != "" {
			allErrs = append(allErrs, field.NotSupported(fldPath.Child("apiGroup"), s.APIGroup, []string{""}))
		}
		if !namespaced && s.Namespace == "" {
			allErrs = append(allErrs, field.Required(fldPath.Child("namespace"), ""))
		}
	case rbacv1.UserKind, rbacv1.GroupKind:
		if s.APIGroup != rbacv1.GroupName {
			allErrs = append(allErrs, field.NotSupported(fldPath.Child("apiGroup"), s.APIGroup, []string{rbacv1.GroupName}))
		}
	default:
		allErrs = append(allErrs, field.NotSupported(fldPath.Child("kind"), s.Kind,
			[]string{rbacv1.ServiceAccountKind, rbacv1.UserKind, rbacv1.GroupKind}))
	}
	return allErrs
}

// validateRoleRefUnchanged enforces that a binding's roleRef never changes.
func validateRoleRefUnchanged(ref, old rbacv1.RoleRef) field.ErrorList {
	if ref != old {
		return field.ErrorList{field.Invalid(field.NewPath("roleRef"), ref, "cannot change roleRef")}
	}
	return nil
}
