package discovery

import "k8s.io/apimachinery/pkg/runtime/schema"

// ReviewGroups returns the create-only review resources the API server
// itself answers (internal/apiserver reviews.go), for New's extra groups:
// authentication.k8s.io/v1 tokenreviews and selfsubjectreviews, and
// authorization.k8s.io/v1 selfsubjectaccessreviews, subjectaccessreviews,
// localsubjectaccessreviews (namespaced) and selfsubjectrulesreviews, each
// with the verb create only, as upstream advertises them. The older
// selfsubjectreviews versions the server also answers (v1beta1, v1alpha1,
// for kubectl 1.27) are not advertised: clients call them without
// discovery.
//
//	disc := discovery.New(resources, append(discovery.ReviewGroups(), metricsapi.Group())...)
func ReviewGroups() []ExtraGroup {
	create := []string{"create"}
	return []ExtraGroup{
		{
			GroupVersion: schema.GroupVersion{Group: "authentication.k8s.io", Version: "v1"},
			Resources: []ExtraResource{
				{Name: "selfsubjectreviews", Kind: "SelfSubjectReview", Verbs: create},
				{Name: "tokenreviews", Kind: "TokenReview", Verbs: create},
			},
		},
		{
			GroupVersion: schema.GroupVersion{Group: "authorization.k8s.io", Version: "v1"},
			Resources: []ExtraResource{
				{Name: "localsubjectaccessreviews", Kind: "LocalSubjectAccessReview", Namespaced: true, Verbs: create},
				{Name: "selfsubjectaccessreviews", Kind: "SelfSubjectAccessReview", Verbs: create},
				{Name: "selfsubjectrulesreviews", Kind: "SelfSubjectRulesReview", Verbs: create},
				{Name: "subjectaccessreviews", Kind: "SubjectAccessReview", Verbs: create},
			},
		},
	}
}
