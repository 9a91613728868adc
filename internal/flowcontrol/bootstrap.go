package flowcontrol

import (
	flowcontrolv1 "k8s.io/api/flowcontrol/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/utils/ptr"
)

// The users and groups the bootstrap configuration names (upstream's
// k8s.io/apiserver authentication constants, spelled out here because skiff
// does not import k8s.io/apiserver).
const (
	groupMasters          = "system:masters"
	groupAuthenticated    = "system:authenticated"
	groupUnauthenticated  = "system:unauthenticated"
	groupNodes            = "system:nodes"
	groupServiceAccounts  = "system:serviceaccounts"
	userControllerManager = "system:kube-controller-manager"
	userScheduler         = "system:kube-scheduler"
)

// Bootstrap returns upstream 1.33's mandatory and suggested FlowSchemas and
// PriorityLevelConfigurations (with the autoupdate annotation set to
// "true"), as fresh objects the caller may keep and change. Within each
// list the priority levels come before the flow schemas, in upstream's
// order. The objects carry their apiVersion and kind, and their specs are
// already defaulted (the registry's tests check it), so they can be
// compared with what the API server stores.
func Bootstrap() (mandatory, suggested []runtime.Object) {
	b := newBootstrap()
	for _, pl := range b.mandatoryPLs {
		mandatory = append(mandatory, withKind(pl))
	}
	for _, fs := range b.mandatoryFSs {
		mandatory = append(mandatory, withKind(fs))
	}
	for _, pl := range b.suggestedPLs {
		suggested = append(suggested, withKind(pl))
	}
	for _, fs := range b.suggestedFSs {
		suggested = append(suggested, withKind(fs))
	}
	return mandatory, suggested
}

// MandatoryFlowSchema returns a fresh copy of the mandatory FlowSchema
// named name ("exempt" or "catch-all"), or nil when name is not one.
// Validation uses it: upstream refuses any other spec for these names.
func MandatoryFlowSchema(name string) *flowcontrolv1.FlowSchema {
	for _, fs := range mandatoryFlowSchemas() {
		if fs.Name == name {
			return fs
		}
	}
	return nil
}

// MandatoryPriorityLevelConfiguration returns a fresh copy of the
// mandatory PriorityLevelConfiguration named name ("exempt" or
// "catch-all"), or nil when name is not one.
func MandatoryPriorityLevelConfiguration(name string) *flowcontrolv1.PriorityLevelConfiguration {
	for _, pl := range mandatoryPriorityLevels() {
		if pl.Name == name {
			return pl
		}
	}
	return nil
}

// bootstrap is the whole bootstrap configuration, typed.
type bootstrap struct {
	mandatoryPLs, suggestedPLs []*flowcontrolv1.PriorityLevelConfiguration
	mandatoryFSs, suggestedFSs []*flowcontrolv1.FlowSchema
}

func newBootstrap() bootstrap {
	return bootstrap{
		mandatoryPLs: mandatoryPriorityLevels(),
		suggestedPLs: suggestedPriorityLevels(),
		mandatoryFSs: mandatoryFlowSchemas(),
		suggestedFSs: suggestedFlowSchemas(),
	}
}

// withKind sets the object's apiVersion and kind and returns it.
func withKind(obj runtime.Object) runtime.Object {
	switch o := obj.(type) {
	case *flowcontrolv1.FlowSchema:
		o.TypeMeta = metav1.TypeMeta{APIVersion: flowcontrolv1.SchemeGroupVersion.String(), Kind: "FlowSchema"}
	case *flowcontrolv1.PriorityLevelConfiguration:
		o.TypeMeta = metav1.TypeMeta{APIVersion: flowcontrolv1.SchemeGroupVersion.String(), Kind: "PriorityLevelConfiguration"}
	}
	return obj
}

func mandatoryPriorityLevels() []*flowcontrolv1.PriorityLevelConfiguration {
	return []*flowcontrolv1.PriorityLevelConfiguration{
		priorityLevel(flowcontrolv1.PriorityLevelConfigurationNameCatchAll, flowcontrolv1.PriorityLevelConfigurationSpec{
			Type: flowcontrolv1.PriorityLevelEnablementLimited,
			Limited: &flowcontrolv1.LimitedPriorityLevelConfiguration{
				NominalConcurrencyShares: ptr.To[int32](5),
				LendablePercent:          ptr.To[int32](0),
				LimitResponse:            flowcontrolv1.LimitResponse{Type: flowcontrolv1.LimitResponseTypeReject},
			},
		}),
		priorityLevel(flowcontrolv1.PriorityLevelConfigurationNameExempt, flowcontrolv1.PriorityLevelConfigurationSpec{
			Type: flowcontrolv1.PriorityLevelEnablementExempt,
			Exempt: &flowcontrolv1.ExemptPriorityLevelConfiguration{
				NominalConcurrencyShares: ptr.To[int32](0),
				LendablePercent:          ptr.To[int32](0),
			},
		}),
	}
}

func suggestedPriorityLevels() []*flowcontrolv1.PriorityLevelConfiguration {
	return []*flowcontrolv1.PriorityLevelConfiguration{
		queuing("system", 30, 33, 64, 6),
		queuing("node-high", 40, 25, 64, 6),
		queuing("leader-election", 10, 0, 16, 4),
		queuing("workload-high", 40, 50, 128, 6),
		queuing("workload-low", 100, 90, 128, 6),
		queuing("global-default", 20, 50, 128, 6),
	}
}

// queuing is a Limited priority level that queues, with a queue length
// limit of 50 (as every suggested one).
func queuing(name string, shares, lendable, queues, handSize int32) *flowcontrolv1.PriorityLevelConfiguration {
	return priorityLevel(name, flowcontrolv1.PriorityLevelConfigurationSpec{
		Type: flowcontrolv1.PriorityLevelEnablementLimited,
		Limited: &flowcontrolv1.LimitedPriorityLevelConfiguration{
			NominalConcurrencyShares: ptr.To(shares),
			LendablePercent:          ptr.To(lendable),
			LimitResponse: flowcontrolv1.LimitResponse{
				Type: flowcontrolv1.LimitResponseTypeQueue,
				Queuing: &flowcontrolv1.QueuingConfiguration{
					Queues:           queues,
					HandSize:         handSize,
					QueueLengthLimit: 50,
				},
			},
		},
	})
}

func mandatoryFlowSchemas() []*flowcontrolv1.FlowSchema {
	return []*flowcontrolv1.FlowSchema{
		flowSchema(flowcontrolv1.FlowSchemaNameExempt, flowcontrolv1.PriorityLevelConfigurationNameExempt, 1, "",
			everything(groups(groupMasters))),
		flowSchema(flowcontrolv1.FlowSchemaNameCatchAll, flowcontrolv1.PriorityLevelConfigurationNameCatchAll, 10000,
			flowcontrolv1.FlowDistinguisherMethodByUserType,
			everything(groups(groupUnauthenticated, groupAuthenticated))),
	}
}

func suggestedFlowSchemas() []*flowcontrolv1.FlowSchema {
	byUser := flowcontrolv1.FlowDistinguisherMethodByUserType
	byNamespace := flowcontrolv1.FlowDistinguisherMethodByNamespaceType
	writeLeases := resourceRule([]string{"get", "create", "update"}, "coordination.k8s.io", "leases")
	return []*flowcontrolv1.FlowSchema{
		flowSchema("system-nodes", "system", 500, byUser, everything(groups(groupNodes))),
		flowSchema("system-node-high", "node-high", 400, byUser, flowcontrolv1.PolicyRulesWithSubjects{
			Subjects: groups(groupNodes),
			ResourceRules: []flowcontrolv1.ResourcePolicyRule{
				{
					Verbs:        []string{flowcontrolv1.VerbAll},
					APIGroups:    []string{""},
					Resources:    []string{"nodes", "nodes/status"},
					Namespaces:   []string{flowcontrolv1.NamespaceEvery},
					ClusterScope: true,
				},
				resourceRule([]string{flowcontrolv1.VerbAll}, "coordination.k8s.io", "leases"),
			},
		}),
		flowSchema("probes", flowcontrolv1.PriorityLevelConfigurationNameExempt, 2, "", flowcontrolv1.PolicyRulesWithSubjects{
			Subjects: groups(groupUnauthenticated, groupAuthenticated),
			NonResourceRules: []flowcontrolv1.NonResourcePolicyRule{{
				Verbs:           []string{"get"},
				NonResourceURLs: []string{"/healthz", "/readyz", "/livez"},
			}},
		}),
		flowSchema("system-leader-election", "leader-election", 100, byUser, flowcontrolv1.PolicyRulesWithSubjects{
			Subjects:      append(users(userControllerManager, userScheduler), kubeSystemServiceAccounts(flowcontrolv1.NameAll)...),
			ResourceRules: []flowcontrolv1.ResourcePolicyRule{writeLeases},
		}),
		flowSchema("workload-leader-election", "leader-election", 200, byUser, flowcontrolv1.PolicyRulesWithSubjects{
			Subjects: kubeSystemServiceAccounts(flowcontrolv1.NameAll),
			ResourceRules: []flowcontrolv1.ResourcePolicyRule{
				resourceRule([]string{"get", "create", "update"}, "", "endpoints", "configmaps"),
				writeLeases,
			},
		}),
		flowSchema("endpoint-controller", "workload-high", 150, byUser, flowcontrolv1.PolicyRulesWithSubjects{
			Subjects: append(users(userControllerManager),
				kubeSystemServiceAccounts("endpoint-controller", "endpointslicemirroring-controller")...),
			ResourceRules: []flowcontrolv1.ResourcePolicyRule{
				resourceRule([]string{"get", "create", "update"}, "", "endpoints"),
			},
		}),
		flowSchema("kube-controller-manager", "workload-high", 800, byNamespace, everything(users(userControllerManager))),
		flowSchema("kube-scheduler", "workload-high", 800, byNamespace, everything(users(userScheduler))),
		flowSchema("kube-system-service-accounts", "workload-high", 900, byNamespace,
			everything(kubeSystemServiceAccounts(flowcontrolv1.NameAll))),
		flowSchema("service-accounts", "workload-low", 9000, byUser, everything(groups(groupServiceAccounts))),
		flowSchema("global-default", "global-default", 9900, byUser,
			everything(groups(groupUnauthenticated, groupAuthenticated))),
	}
}

func priorityLevel(name string, spec flowcontrolv1.PriorityLevelConfigurationSpec) *flowcontrolv1.PriorityLevelConfiguration {
	return &flowcontrolv1.PriorityLevelConfiguration{
		ObjectMeta: metav1.ObjectMeta{
			Name:        name,
			Annotations: map[string]string{flowcontrolv1.AutoUpdateAnnotationKey: "true"},
		},
		Spec: spec,
	}
}

// flowSchema builds a FlowSchema; an empty distinguisher means none.
func flowSchema(name, priorityLevel string, precedence int32, distinguisher flowcontrolv1.FlowDistinguisherMethodType, rules ...flowcontrolv1.PolicyRulesWithSubjects) *flowcontrolv1.FlowSchema {
	var dm *flowcontrolv1.FlowDistinguisherMethod
	if distinguisher != "" {
		dm = &flowcontrolv1.FlowDistinguisherMethod{Type: distinguisher}
	}
	return &flowcontrolv1.FlowSchema{
		ObjectMeta: metav1.ObjectMeta{
			Name:        name,
			Annotations: map[string]string{flowcontrolv1.AutoUpdateAnnotationKey: "true"},
		},
		Spec: flowcontrolv1.FlowSchemaSpec{
			PriorityLevelConfiguration: flowcontrolv1.PriorityLevelConfigurationReference{Name: priorityLevel},
			MatchingPrecedence:         precedence,
			DistinguisherMethod:        dm,
			Rules:                      rules,
		},
	}
}

// everything matches every request of subjects: all verbs on all
// resources (namespaced and cluster-scoped) and all non-resource URLs.
func everything(subjects []flowcontrolv1.Subject) flowcontrolv1.PolicyRulesWithSubjects {
	return flowcontrolv1.PolicyRulesWithSubjects{
		Subjects: subjects,
		ResourceRules: []flowcontrolv1.ResourcePolicyRule{{
			Verbs:        []string{flowcontrolv1.VerbAll},
			APIGroups:    []string{flowcontrolv1.APIGroupAll},
			Resources:    []string{flowcontrolv1.ResourceAll},
			Namespaces:   []string{flowcontrolv1.NamespaceEvery},
			ClusterScope: true,
		}},
		NonResourceRules: []flowcontrolv1.NonResourcePolicyRule{{
			Verbs:           []string{flowcontrolv1.VerbAll},
			NonResourceURLs: []string{flowcontrolv1.NonResourceAll},
		}},
	}
}

// resourceRule matches verbs on the resources of one API group in every
// namespace (namespaced resources only).
func resourceRule(verbs []string, group string, resources ...string) flowcontrolv1.ResourcePolicyRule {
	return flowcontrolv1.ResourcePolicyRule{
		Verbs:      verbs,
		APIGroups:  []string{group},
		Resources:  resources,
		Namespaces: []string{flowcontrolv1.NamespaceEvery},
	}
}

func groups(names ...string) []flowcontrolv1.Subject {
	out := make([]flowcontrolv1.Subject, 0, len(names))
	for _, n := range names {
		out = append(out, flowcontrolv1.Subject{Kind: flowcontrolv1.SubjectKindGroup, Group: &flowcontrolv1.GroupSubject{Name: n}})
	}
	return out
}

func users(names ...string) []flowcontrolv1.Subject {
	out := make([]flowcontrolv1.Subject, 0, len(names))
	for _, n := range names {
		out = append(out, flowcontrolv1.Subject{Kind: flowcontrolv1.SubjectKindUser, User: &flowcontrolv1.UserSubject{Name: n}})
	}
	return out
}

// kubeSystemServiceAccounts are the named service accounts of kube-system
// ("*" for all of them).
func kubeSystemServiceAccounts(names ...string) []flowcontrolv1.Subject {
	out := make([]flowcontrolv1.Subject, 0, len(names))
	for _, n := range names {
		out = append(out, flowcontrolv1.Subject{
			Kind:           flowcontrolv1.SubjectKindServiceAccount,
			ServiceAccount: &flowcontrolv1.ServiceAccountSubject{Namespace: metav1.NamespaceSystem, Name: n},
		})
	}
	return out
}
