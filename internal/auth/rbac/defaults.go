package rbac

import (
	rbacv1 "k8s.io/api/rbac/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/skiff-dev/skiff/internal/auth"
)

// Well-known labels and annotations of the default policy, as upstream.
const (
	// AutoUpdateAnnotation on a default role or binding set to "false"
	// stops EnsureDefaults from touching it.
	AutoUpdateAnnotation = "rbac.authorization.kubernetes.io/autoupdate"
	// BootstrappingLabel marks the default policy objects.
	BootstrappingLabel = "kubernetes.io/bootstrapping"
	// AggregateToAdmin, AggregateToEdit and AggregateToView label cluster
	// roles whose rules the aggregation controller adds to admin, edit and
	// view.
	AggregateToAdmin = "rbac.authorization.k8s.io/aggregate-to-admin"
	AggregateToEdit  = "rbac.authorization.k8s.io/aggregate-to-edit"
	AggregateToView  = "rbac.authorization.k8s.io/aggregate-to-view"
)

// Component users of the control plane, as upstream names them.
const (
	KubeSchedulerUser         = "system:kube-scheduler"
	KubeControllerManagerUser = "system:kube-controller-manager"
	KubeProxyUser             = "system:kube-proxy"
	MonitoringGroup           = "system:monitoring"
	// ClusterNetworkUser is skiff's cluster DNS and networking component
	// of "skiff server" (the kube-dns Service and its EndpointSlice, the
	// cluster DNS server, the default IngressClass).
	ClusterNetworkUser = "skiff:cluster-network"
)

// Names of the skiff cluster roles (and of their bindings) that complete
// upstream's for what skiff's components do.
const (
	NodeNetworkRole           = "skiff:node-network"
	NodeNetworkStatusRole     = "skiff:node-network-status"
	KubeSchedulerRole         = "skiff:kube-scheduler"
	KubeControllerManagerRole = "skiff:kube-controller-manager"
	ClusterNetworkRole        = "skiff:cluster-network"
)

func readVerbs() []string { return []string{"get", "list", "watch"} }
func writeVerbs() []string {
	return []string{"create", "update", "patch", "delete", "deletecollection"}
}
func readWriteVerbs() []string {
	return []string{"get", "list", "watch", "create", "update", "patch", "delete", "deletecollection"}
}
func eventVerbs() []string { return []string{"create", "update", "patch"} }

// rule builds a PolicyRule: rule(verbs...).groups(...).resources(...).
type ruleBuilder struct{ r rbacv1.PolicyRule }

func rule(verbs ...string) *ruleBuilder {
	return &ruleBuilder{r: rbacv1.PolicyRule{Verbs: verbs}}
}
func (b *ruleBuilder) groups(g ...string) *ruleBuilder    { b.r.APIGroups = g; return b }
func (b *ruleBuilder) resources(r ...string) *ruleBuilder { b.r.Resources = r; return b }
func (b *ruleBuilder) names(n ...string) *ruleBuilder     { b.r.ResourceNames = n; return b }
func (b *ruleBuilder) urls(u ...string) *ruleBuilder      { b.r.NonResourceURLs = u; return b }
func (b *ruleBuilder) rule() rbacv1.PolicyRule            { return b.r }

func eventsRule() rbacv1.PolicyRule {
	return rule(eventVerbs()...).groups("", "events.k8s.io").resources("events").rule()
}

func defaultMeta(name string, extraLabels ...string) metav1.ObjectMeta {
	l := map[string]string{BootstrappingLabel: "rbac-defaults"}
	for _, k := range extraLabels {
		l[k] = "true"
	}
	return metav1.ObjectMeta{Name: name, Labels: l, Annotations: map[string]string{AutoUpdateAnnotation: "true"}}
}

func aggregated(name, selectorLabel string, extraLabels ...string) rbacv1.ClusterRole {
	return rbacv1.ClusterRole{
		ObjectMeta: defaultMeta(name, extraLabels...),
		AggregationRule: &rbacv1.AggregationRule{ClusterRoleSelectors: []metav1.LabelSelector{
			{MatchLabels: map[string]string{selectorLabel: "true"}},
		}},
	}
}

// DefaultClusterRoles returns the default cluster roles, a subset of
// upstream's bootstrap policy with the same rules (for the API groups
// skiff serves and those upstream components expect). Each call returns
// fresh objects.
func DefaultClusterRoles() []rbacv1.ClusterRole {
	cr := func(name string, rules ...rbacv1.PolicyRule) rbacv1.ClusterRole {
		return rbacv1.ClusterRole{ObjectMeta: defaultMeta(name), Rules: rules}
	}
	withLabel := func(r rbacv1.ClusterRole, label string) rbacv1.ClusterRole {
		r.Labels[label] = "true"
		return r
	}
	return []rbacv1.ClusterRole{
		cr("cluster-admin",
			rule("*").groups("*").resources("*").rule(),
			rule("*").urls("*").rule()),
		aggregated("admin", AggregateToAdmin),
		aggregated("edit", AggregateToEdit, AggregateToAdmin),
		aggregated("view", AggregateToView, AggregateToEdit),
		withLabel(cr("system:aggregate-to-admin",
			rule("create").groups("authorization.k8s.io").resources("localsubjectaccessreviews").rule(),
			rule(readWriteVerbs()...).groups(rbacv1.GroupName).resources("rolebindings", "roles").rule(),
		), AggregateToAdmin),
		withLabel(cr("system:aggregate-to-edit",
			rule(readVerbs()...).groups("").resources("pods/attach", "pods/exec", "pods/portforward", "pods/proxy", "secrets", "services/proxy").rule(),
			rule("impersonate").groups("").resources("serviceaccounts").rule(),
			rule(writeVerbs()...).groups("").resources("pods", "pods/attach", "pods/exec", "pods/portforward", "pods/proxy").rule(),
			rule("create").groups("").resources("pods/eviction").rule(),
			rule(writeVerbs()...).groups("").resources("configmaps", "persistentvolumeclaims", "replicationcontrollers",
				"replicationcontrollers/scale", "secrets", "serviceaccounts", "services", "services/proxy").rule(),
			rule("create").groups("").resources("serviceaccounts/token").rule(),
			rule(writeVerbs()...).groups("", "events.k8s.io").resources("events").rule(),
			rule(writeVerbs()...).groups("apps").resources("daemonsets", "deployments", "deployments/rollback", "deployments/scale",
				"replicasets", "replicasets/scale", "statefulsets", "statefulsets/scale").rule(),
			rule(writeVerbs()...).groups("autoscaling").resources("horizontalpodautoscalers").rule(),
			rule(writeVerbs()...).groups("batch").resources("cronjobs", "jobs").rule(),
			rule(writeVerbs()...).groups("extensions").resources("daemonsets", "deployments", "deployments/rollback", "deployments/scale",
				"ingresses", "networkpolicies", "replicasets", "replicasets/scale", "replicationcontrollers/scale").rule(),
			rule(writeVerbs()...).groups("policy").resources("poddisruptionbudgets").rule(),
			rule(writeVerbs()...).groups("networking.k8s.io").resources("ingresses", "networkpolicies").rule(),
			rule(readWriteVerbs()...).groups("coordination.k8s.io").resources("leases").rule(),
			rule(writeVerbs()...).groups("resource.k8s.io").resources("resourceclaims", "resourceclaimtemplates").rule(),
		), AggregateToEdit),
		withLabel(cr("system:aggregate-to-view",
			rule(readVerbs()...).groups("").resources("configmaps", "endpoints", "persistentvolumeclaims", "persistentvolumeclaims/status",
				"pods", "replicationcontrollers", "replicationcontrollers/scale", "serviceaccounts", "services", "services/status").rule(),
			rule(readVerbs()...).groups("").resources("bindings", "events", "limitranges", "namespaces/status", "pods/log", "pods/status",
				"replicationcontrollers/status", "resourcequotas", "resourcequotas/status").rule(),
			rule(readVerbs()...).groups("").resources("namespaces").rule(),
			rule(readVerbs()...).groups("", "events.k8s.io").resources("events").rule(),
			rule(readVerbs()...).groups("discovery.k8s.io").resources("endpointslices").rule(),
			rule(readVerbs()...).groups("apps").resources("controllerrevisions", "daemonsets", "daemonsets/status", "deployments",
				"deployments/scale", "deployments/status", "replicasets", "replicasets/scale", "replicasets/status",
				"statefulsets", "statefulsets/scale", "statefulsets/status").rule(),
			rule(readVerbs()...).groups("autoscaling").resources("horizontalpodautoscalers", "horizontalpodautoscalers/status").rule(),
			rule(readVerbs()...).groups("batch").resources("cronjobs", "cronjobs/status", "jobs", "jobs/status").rule(),
			rule(readVerbs()...).groups("extensions").resources("daemonsets", "daemonsets/status", "deployments", "deployments/scale",
				"deployments/status", "ingresses", "ingresses/status", "networkpolicies", "replicasets", "replicasets/scale",
				"replicasets/status", "replicationcontrollers/scale").rule(),
			rule(readVerbs()...).groups("policy").resources("poddisruptionbudgets", "poddisruptionbudgets/status").rule(),
			rule(readVerbs()...).groups("networking.k8s.io").resources("ingresses", "ingresses/status", "networkpolicies").rule(),
			rule(readVerbs()...).groups("resource.k8s.io").resources("resourceclaims", "resourceclaims/status", "resourceclaimtemplates").rule(),
		), AggregateToView),
		cr("system:discovery",
			rule("get").urls("/api", "/api/*", "/apis", "/apis/*", "/healthz", "/livez", "/openapi", "/openapi/*",
				"/readyz", "/version", "/version/").rule()),
		cr("system:basic-user",
			rule("create").groups("authorization.k8s.io").resources("selfsubjectaccessreviews", "selfsubjectrulesreviews").rule(),
			rule("create").groups("authentication.k8s.io").resources("selfsubjectreviews").rule()),
		cr("system:public-info-viewer",
			rule("get").urls("/healthz", "/livez", "/readyz", "/version", "/version/").rule()),
		cr("system:monitoring",
			rule("get").urls("/healthz", "/healthz/*", "/livez", "/livez/*", "/metrics", "/metrics/slis",
				"/readyz", "/readyz/*", "/statusz").rule(),
			rule("get").groups("").resources("nodes/metrics").rule()),
		cr("system:auth-delegator",
			rule("create").groups("authentication.k8s.io").resources("tokenreviews").rule(),
			rule("create").groups("authorization.k8s.io").resources("subjectaccessreviews").rule()),
		cr("system:service-account-issuer-discovery",
			rule("get").urls("/.well-known/openid-configuration", "/.well-known/openid-configuration/",
				"/openid/v1/jwks", "/openid/v1/jwks/").rule()),
		cr("system:node", NodeRules()...),
		cr("system:node-bootstrapper",
			rule("create", "get", "list", "watch").groups("certificates.k8s.io").resources("certificatesigningrequests").rule()),
		cr("system:certificates.k8s.io:certificatesigningrequests:nodeclient",
			rule("create").groups("certificates.k8s.io").resources("certificatesigningrequests/nodeclient").rule()),
		cr("system:certificates.k8s.io:certificatesigningrequests:selfnodeclient",
			rule("create").groups("certificates.k8s.io").resources("certificatesigningrequests/selfnodeclient").rule()),
		cr("system:certificates.k8s.io:kube-apiserver-client-kubelet-approver",
			rule("approve").groups("certificates.k8s.io").resources("signers").names("kubernetes.io/kube-apiserver-client-kubelet").rule()),
		cr("system:node-proxier",
			rule("list", "watch").groups("").resources("endpoints", "services").rule(),
			rule(readVerbs()...).groups("").resources("nodes").rule(),
			eventsRule(),
			rule("list", "watch").groups("networking.k8s.io").resources("servicecidrs").rule(),
			rule("list", "watch").groups("discovery.k8s.io").resources("endpointslices").rule()),
		cr("system:kube-dns",
			rule("list", "watch").groups("").resources("endpoints", "services").rule()),
		cr("system:kube-scheduler",
			eventsRule(),
			rule("create").groups("coordination.k8s.io").resources("leases").rule(),
			rule("get", "list", "update", "watch").groups("coordination.k8s.io").resources("leases").names("kube-scheduler").rule(),
			rule(readWriteVerbs()...).groups("coordination.k8s.io").resources("leasecandidates").rule(),
			rule(readVerbs()...).groups("").resources("nodes").rule(),
			rule("delete", "get", "list", "watch").groups("").resources("pods").rule(),
			rule("create").groups("").resources("bindings", "pods/binding").rule(),
			rule("patch", "update").groups("").resources("pods/status").rule(),
			rule(readVerbs()...).groups("").resources("replicationcontrollers", "services").rule(),
			rule(readVerbs()...).groups("apps", "extensions").resources("replicasets").rule(),
			rule(readVerbs()...).groups("apps").resources("statefulsets").rule(),
			rule(readVerbs()...).groups("policy").resources("poddisruptionbudgets").rule(),
			rule(readVerbs()...).groups("").resources("persistentvolumeclaims", "persistentvolumes").rule(),
			rule("create").groups("authentication.k8s.io").resources("tokenreviews").rule(),
			rule("create").groups("authorization.k8s.io").resources("subjectaccessreviews").rule(),
			rule(readVerbs()...).groups("storage.k8s.io").resources("csinodes", "volumeattachments", "csidrivers", "csistoragecapacities").rule(),
			rule(readVerbs()...).groups("").resources("namespaces").rule(),
			rule(readVerbs()...).groups("resource.k8s.io").resources("deviceclasses", "resourceslices").rule(),
			rule("get", "list", "patch", "update", "watch").groups("resource.k8s.io").resources("resourceclaims", "resourceclaims/status").rule(),
			rule("create", "delete").groups("resource.k8s.io").resources("resourceclaims").rule(),
			rule("update").groups("").resources("pods/finalizers").rule()),
		cr("system:volume-scheduler",
			rule("get", "list", "patch", "update", "watch").groups("").resources("persistentvolumes", "persistentvolumeclaims").rule(),
			rule(readVerbs()...).groups("storage.k8s.io").resources("storageclasses").rule()),
		cr("system:kube-controller-manager",
			eventsRule(),
			rule("create").groups("coordination.k8s.io").resources("leases").rule(),
			rule("get", "update").groups("coordination.k8s.io").resources("leases").names("kube-controller-manager").rule(),
			rule("create").groups("").resources("secrets", "serviceaccounts").rule(),
			rule("delete").groups("").resources("secrets").rule(),
			rule("get").groups("").resources("configmaps", "namespaces", "secrets", "serviceaccounts").rule(),
			rule("update").groups("").resources("secrets", "serviceaccounts").rule(),
			rule("create").groups("authentication.k8s.io").resources("tokenreviews").rule(),
			rule("create").groups("authorization.k8s.io").resources("subjectaccessreviews").rule(),
			rule("list", "watch").groups("*").resources("*").rule(),
			rule("create").groups("").resources("serviceaccounts/token").rule()),
		cr(NodeNetworkRole, NodeNetworkRules()...),
		cr(NodeNetworkStatusRole,
			rule("update", "patch").groups("networking.k8s.io").resources("ingresses/status").rule(),
			rule("update", "patch").groups("").resources("services/status").rule()),
		cr(KubeSchedulerRole, KubeSchedulerRules()...),
		cr(KubeControllerManagerRole, KubeControllerManagerRules()...),
		cr(ClusterNetworkRole, ClusterNetworkRules()...),
	}
}

// NodeNetworkRules are the rules of skiff:node-network, bound to
// system:nodes: what the networking parts of the node agent read with the
// node's credential — the service proxy (services, endpointslices, nodes),
// the pod routes (nodes), network policy (networkpolicies, pods,
// namespaces) and the ingress controller (ingresses, ingressclasses,
// services, endpointslices). Read-only. The TLS secrets of ingresses are
// not here: the node authorizer allows them one by one, by name.
func NodeNetworkRules() []rbacv1.PolicyRule {
	return []rbacv1.PolicyRule{
		rule(readVerbs()...).groups("").resources("services", "nodes", "pods", "namespaces").rule(),
		rule(readVerbs()...).groups("discovery.k8s.io").resources("endpointslices").rule(),
		rule(readVerbs()...).groups("networking.k8s.io").resources("networkpolicies", "ingresses", "ingressclasses").rule(),
	}
}

// KubeSchedulerRules are the rules of skiff:kube-scheduler, bound to
// system:kube-scheduler beside upstream's system:kube-scheduler and
// system:volume-scheduler: skiff's scheduler reads PriorityClasses
// (preemption policy) and holds the Lease kube-system/default-scheduler
// (named after the scheduler, where upstream's is kube-scheduler).
func KubeSchedulerRules() []rbacv1.PolicyRule {
	return []rbacv1.PolicyRule{
		rule(readVerbs()...).groups("scheduling.k8s.io").resources("priorityclasses").rule(),
		rule("get", "update").groups("coordination.k8s.io").resources("leases").names("default-scheduler").rule(),
	}
}

// KubeControllerManagerRules are the rules of
// skiff:kube-controller-manager, bound to system:kube-controller-manager
// beside upstream's role of that name. Upstream runs each controller as a
// service account of its own; skiff's run in one process as one user, so
// this role is the union of what they do:
//   - the garbage collector and the namespace controller read, update,
//     patch and delete objects of every resource (upstream's
//     generic-garbage-collector and namespace-controller roles), which
//     also covers the status writes of every controller, scale
//     subresources (podautoscaler), node updates (nodeipam,
//     nodelifecycle) and namespaces/finalize;
//   - create only what the controllers create: pods, replicasets,
//     controllerrevisions, jobs, endpoints, endpointslices,
//     persistentvolumeclaims (statefulset), persistentvolumes and the
//     default storageclass (persistentvolume-binder), serviceaccounts
//     (serviceaccount), configmaps (rootcacert), leases and events;
//   - escalate on clusterroles (clusterroleaggregation writes rules it
//     does not hold), approve for the kubelet client signer
//     (csrapproving) and sign for the signers csrsigning serves.
//
// Never: impersonate, bind, create of anything else (no roles, bindings,
// secrets, nodes), non-resource URLs beyond discovery.
func KubeControllerManagerRules() []rbacv1.PolicyRule {
	return []rbacv1.PolicyRule{
		rule("get", "list", "watch", "update", "patch", "delete", "deletecollection").groups("*").resources("*").rule(),
		rule("create").groups("").resources("pods", "endpoints", "persistentvolumeclaims", "persistentvolumes", "serviceaccounts", "configmaps").rule(),
		rule("create").groups("storage.k8s.io").resources("storageclasses").rule(),
		rule("create").groups("apps").resources("replicasets", "controllerrevisions").rule(),
		rule("create").groups("batch").resources("jobs").rule(),
		rule("create").groups("discovery.k8s.io").resources("endpointslices").rule(),
		rule("create").groups("coordination.k8s.io").resources("leases").rule(),
		eventsRule(),
		rule("escalate").groups(rbacv1.GroupName).resources("clusterroles").rule(),
		rule("approve").groups("certificates.k8s.io").resources("signers").names("kubernetes.io/kube-apiserver-client-kubelet").rule(),
		rule("sign").groups("certificates.k8s.io").resources("signers").names(
			"kubernetes.io/kube-apiserver-client", "kubernetes.io/kube-apiserver-client-kubelet", "kubernetes.io/kubelet-serving").rule(),
	}
}

// ClusterNetworkRules are the rules of skiff:cluster-network, bound to
// ClusterNetworkUser: the cluster DNS server watches services and
// endpointslices; at start the component creates the kube-dns Service,
// creates or updates its own EndpointSlice (kube-dns-skiff-dns) and
// creates or updates the default IngressClass (skiff). RBAC cannot limit
// create by name, so create is allowed for any service and endpoint slice.
func ClusterNetworkRules() []rbacv1.PolicyRule {
	return []rbacv1.PolicyRule{
		rule(readVerbs()...).groups("").resources("services").rule(),
		rule(readVerbs()...).groups("discovery.k8s.io").resources("endpointslices").rule(),
		rule("create").groups("").resources("services").rule(),
		rule("create").groups("discovery.k8s.io").resources("endpointslices").rule(),
		rule("update").groups("discovery.k8s.io").resources("endpointslices").names("kube-dns-skiff-dns").rule(),
		rule("get", "create").groups("networking.k8s.io").resources("ingressclasses").rule(),
		rule("update").groups("networking.k8s.io").resources("ingressclasses").names("skiff").rule(),
	}
}

// NodeRules are the rules of the system:node cluster role, as upstream's.
// The node authorizer narrows the graph-scoped ones (secrets, config maps,
// volumes, service account tokens, pod writes, its own node and lease) to
// what the node's pods need, answering Deny for the rest, so that binding
// this role to system:nodes grants no cross-node reads.
func NodeRules() []rbacv1.PolicyRule {
	return []rbacv1.PolicyRule{
		rule("create").groups("authentication.k8s.io").resources("tokenreviews").rule(),
		rule("create").groups("authorization.k8s.io").resources("localsubjectaccessreviews", "subjectaccessreviews").rule(),
		rule(readVerbs()...).groups("").resources("services").rule(),
		rule("create", "get", "list", "watch").groups("").resources("nodes").rule(),
		rule("patch", "update").groups("").resources("nodes/status").rule(),
		rule("patch", "update").groups("").resources("nodes").rule(),
		eventsRule(),
		rule(readVerbs()...).groups("").resources("pods").rule(),
		rule("create", "delete").groups("").resources("pods").rule(),
		rule("patch", "update").groups("").resources("pods/status").rule(),
		rule("create").groups("").resources("pods/eviction").rule(),
		rule(readVerbs()...).groups("").resources("configmaps", "secrets").rule(),
		rule("get").groups("").resources("persistentvolumeclaims", "persistentvolumes").rule(),
		rule("get").groups("").resources("endpoints").rule(),
		rule("create", "get", "list", "watch").groups("certificates.k8s.io").resources("certificatesigningrequests").rule(),
		rule("create", "delete", "get", "patch", "update").groups("coordination.k8s.io").resources("leases").rule(),
		rule("get").groups("storage.k8s.io").resources("volumeattachments").rule(),
		rule("create").groups("").resources("serviceaccounts/token").rule(),
		rule("get", "patch", "update").groups("").resources("persistentvolumeclaims/status").rule(),
		rule(readVerbs()...).groups("storage.k8s.io").resources("csidrivers").rule(),
		rule("create", "delete", "get", "patch", "update").groups("storage.k8s.io").resources("csinodes").rule(),
		rule(readVerbs()...).groups("node.k8s.io").resources("runtimeclasses").rule(),
		rule("get").groups("").resources("serviceaccounts").rule(),
	}
}

// DefaultClusterRoleBindings returns the default cluster role bindings:
// upstream's, plus the three skiff:* bindings kubeadm-style clusters add
// for joining nodes (bootstrap-token users may create CSRs and have their
// node client CSRs auto-approved; nodes may renew their own certificate),
// plus one per skiff:* role above (node networking to system:nodes, the
// scheduler's, controller manager's and cluster network's own roles to
// their users).
// system:node is bound to the group system:nodes (upstream leaves it
// unbound and relies on the node authorizer alone); the node authorizer
// must run before RBAC so it can deny cross-node reads.
func DefaultClusterRoleBindings() []rbacv1.ClusterRoleBinding {
	group := func(n string) rbacv1.Subject {
		return rbacv1.Subject{Kind: rbacv1.GroupKind, APIGroup: rbacv1.GroupName, Name: n}
	}
	user := func(n string) rbacv1.Subject {
		return rbacv1.Subject{Kind: rbacv1.UserKind, APIGroup: rbacv1.GroupName, Name: n}
	}
	crb := func(name, role string, subjects ...rbacv1.Subject) rbacv1.ClusterRoleBinding {
		return rbacv1.ClusterRoleBinding{
			ObjectMeta: defaultMeta(name),
			RoleRef:    rbacv1.RoleRef{APIGroup: rbacv1.GroupName, Kind: "ClusterRole", Name: role},
			Subjects:   subjects,
		}
	}
	return []rbacv1.ClusterRoleBinding{
		crb("cluster-admin", "cluster-admin", group(auth.SystemMasters)),
		crb("system:monitoring", "system:monitoring", group(MonitoringGroup)),
		crb("system:discovery", "system:discovery", group(auth.AllAuthenticated)),
		crb("system:basic-user", "system:basic-user", group(auth.AllAuthenticated)),
		crb("system:public-info-viewer", "system:public-info-viewer", group(auth.AllAuthenticated), group(auth.AllUnauthenticated)),
		crb("system:service-account-issuer-discovery", "system:service-account-issuer-discovery", group(auth.ServiceAccountsAll)),
		crb("system:node", "system:node", group(auth.NodesGroup)),
		crb("system:node-proxier", "system:node-proxier", user(KubeProxyUser)),
		crb("system:kube-dns", "system:kube-dns", rbacv1.Subject{Kind: rbacv1.ServiceAccountKind, Namespace: metav1.NamespaceSystem, Name: "kube-dns"}),
		crb("system:kube-scheduler", "system:kube-scheduler", user(KubeSchedulerUser)),
		crb("system:volume-scheduler", "system:volume-scheduler", user(KubeSchedulerUser)),
		crb("system:kube-controller-manager", "system:kube-controller-manager", user(KubeControllerManagerUser)),
		crb("skiff:kubelet-bootstrap", "system:node-bootstrapper", group(auth.BootstrappersGroup)),
		crb("skiff:node-autoapprove-bootstrap", "system:certificates.k8s.io:certificatesigningrequests:nodeclient", group(auth.BootstrappersGroup)),
		crb("skiff:node-autoapprove-certificate-rotation", "system:certificates.k8s.io:certificatesigningrequests:selfnodeclient", group(auth.NodesGroup)),
		crb(NodeNetworkRole, NodeNetworkRole, group(auth.NodesGroup)),
		crb(NodeNetworkStatusRole, NodeNetworkStatusRole, group(auth.NodesGroup)),
		crb(KubeSchedulerRole, KubeSchedulerRole, user(KubeSchedulerUser)),
		crb(KubeControllerManagerRole, KubeControllerManagerRole, user(KubeControllerManagerUser)),
		crb(ClusterNetworkRole, ClusterNetworkRole, user(ClusterNetworkUser)),
	}
}
