package rbac

import (
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
	rbacv1 "k8s.io/api/rbac/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/client-go/informers"
	"k8s.io/client-go/kubernetes/fake"
	"k8s.io/client-go/tools/cache"

	"github.com/skiff-dev/skiff/internal/auth"
)

// newSynced returns an authorizer over a fake clientset holding objs, its
// caches synced.
func newSynced(t *testing.T, objs ...runtime.Object) *Authorizer {
	t.Helper()
	client := fake.NewClientset(objs...)
	factory := informers.NewSharedInformerFactory(client, 0)
	a := New(factory)
	factory.StartWithContext(t.Context())
	t.Cleanup(factory.Shutdown)
	if !cache.WaitForCacheSync(t.Context().Done(), a.HasSynced) {
		t.Fatal("caches did not sync")
	}
	return a
}

func clusterRole(name string, rules ...rbacv1.PolicyRule) *rbacv1.ClusterRole {
	return &rbacv1.ClusterRole{ObjectMeta: metav1.ObjectMeta{Name: name}, Rules: rules}
}

func role(ns, name string, rules ...rbacv1.PolicyRule) *rbacv1.Role {
	return &rbacv1.Role{ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: name}, Rules: rules}
}

func userSubject(n string) rbacv1.Subject  { return rbacv1.Subject{Kind: rbacv1.UserKind, Name: n} }
func groupSubject(n string) rbacv1.Subject { return rbacv1.Subject{Kind: rbacv1.GroupKind, Name: n} }
func saSubject(ns, n string) rbacv1.Subject {
	return rbacv1.Subject{Kind: rbacv1.ServiceAccountKind, Namespace: ns, Name: n}
}

func clusterBinding(name, roleName string, subjects ...rbacv1.Subject) *rbacv1.ClusterRoleBinding {
	return &rbacv1.ClusterRoleBinding{
		ObjectMeta: metav1.ObjectMeta{Name: name},
		RoleRef:    rbacv1.RoleRef{APIGroup: rbacv1.GroupName, Kind: "ClusterRole", Name: roleName},
		Subjects:   subjects,
	}
}

func binding(ns, name, kind, roleName string, subjects ...rbacv1.Subject) *rbacv1.RoleBinding {
	return &rbacv1.RoleBinding{
		ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: name},
		RoleRef:    rbacv1.RoleRef{APIGroup: rbacv1.GroupName, Kind: kind, Name: roleName},
		Subjects:   subjects,
	}
}

// testPolicy is the policy the authorizer tests share.
func testPolicy() []runtime.Object {
	return []runtime.Object{
		clusterRole("pod-reader", rule("get", "list", "watch").groups("").resources("pods").rule()),
		clusterRole("logs", rule("get").groups("").resources("pods/log").rule()),
		clusterRole("scale-all", rule("update").groups("apps").resources("*/scale").rule()),
		clusterRole("named", rule("get").groups("").resources("configmaps").names("cm1").rule()),
		clusterRole("health", rule("get").urls("/healthz", "/apis/*").rule()),
		clusterRole("all", rule("*").groups("*").resources("*").rule(), rule("*").urls("*").rule()),
		role("ns1", "secret-reader", rule("get").groups("").resources("secrets").rule()),
		clusterBinding("alice-pods", "pod-reader", userSubject("alice")),
		clusterBinding("devs-logs", "logs", groupSubject("devs")),
		clusterBinding("masters", "all", groupSubject(auth.SystemMasters)),
		clusterBinding("robot-scale", "scale-all", saSubject("ns2", "robot")),
		clusterBinding("anonymous-health", "health", groupSubject(auth.AllUnauthenticated)),
		binding("ns1", "bob-secrets", "Role", "secret-reader", userSubject("bob")),
		binding("ns1", "carol-named", "ClusterRole", "named", userSubject("carol")),
		binding("ns1", "builder-secrets", "Role", "secret-reader", saSubject("", "builder")),
		binding("ns1", "dangling", "Role", "missing", userSubject("dave")),
	}
}

func TestAuthorize(t *testing.T) {
	t.Parallel()
	a := newSynced(t, testPolicy()...)
	as := func(u auth.User, attrs auth.Attributes) auth.Attributes { attrs.User = u; return attrs }
	alice := auth.User{Name: "alice", Groups: []string{auth.AllAuthenticated}}
	devs := auth.User{Name: "erin", Groups: []string{"devs", auth.AllAuthenticated}}
	bob := auth.User{Name: "bob", Groups: []string{auth.AllAuthenticated}}
	carol := auth.User{Name: "carol"}
	dave := auth.User{Name: "dave"}
	admin := auth.User{Name: "root", Groups: []string{auth.SystemMasters}}
	anonymous := auth.User{Name: auth.Anonymous, Groups: []string{auth.AllUnauthenticated}}
	robot := auth.User{Name: "system:serviceaccount:ns2:robot", Groups: []string{auth.ServiceAccountsAll}}
	builder := auth.User{Name: "system:serviceaccount:ns1:builder"}
	builder2 := auth.User{Name: "system:serviceaccount:ns2:builder"}

	tests := []struct {
		name       string
		attrs      auth.Attributes
		want       auth.Decision
		wantReason string // substring; "" means the reason must be empty
	}{
		{"cluster binding allows", as(alice, res("get", "", "pods", "", "ns1", "p")), auth.Allow,
			`RBAC: allowed by ClusterRoleBinding "alice-pods" of ClusterRole "pod-reader" to User "alice"`},
		{"cluster binding allows cluster-wide list", as(alice, res("list", "", "pods", "", "", "")), auth.Allow, `"alice-pods"`},
		{"verb not granted", as(alice, res("delete", "", "pods", "", "ns1", "p")), auth.NoOpinion, ""},
		{"subresource not granted by resource", as(alice, res("get", "", "pods", "log", "ns1", "p")), auth.NoOpinion, ""},
		{"group subject", as(devs, res("get", "", "pods", "log", "ns1", "p")), auth.Allow,
			`ClusterRoleBinding "devs-logs" of ClusterRole "logs" to Group "devs"`},
		{"star subresource", as(robot, res("update", "apps", "deployments", "scale", "ns9", "d")), auth.Allow,
			`to ServiceAccount "ns2/robot"`},
		{"star subresource not the resource", as(robot, res("update", "apps", "deployments", "", "ns9", "d")), auth.NoOpinion, ""},
		{"star subresource other group", as(robot, res("update", "", "replicationcontrollers", "scale", "ns9", "d")), auth.NoOpinion, ""},
		{"role binding to cluster role in its namespace", as(carol, res("get", "", "configmaps", "", "ns1", "cm1")), auth.Allow,
			`RoleBinding "carol-named/ns1" of ClusterRole "named" to User "carol"`},
		{"resource name not listed", as(carol, res("get", "", "configmaps", "", "ns1", "cm2")), auth.NoOpinion, ""},
		{"resource names do not allow list", as(carol, res("list", "", "configmaps", "", "ns1", "")), auth.NoOpinion, ""},
		{"role binding only in its namespace", as(carol, res("get", "", "configmaps", "", "ns2", "cm1")), auth.NoOpinion, ""},
		{"role binding to role", as(bob, res("get", "", "secrets", "", "ns1", "s")), auth.Allow,
			`RoleBinding "bob-secrets/ns1" of Role "secret-reader" to User "bob"`},
		{"role binding not in other namespaces", as(bob, res("get", "", "secrets", "", "ns2", "s")), auth.NoOpinion, ""},
		{"role binding not cluster-wide", as(bob, res("get", "", "secrets", "", "", "s")), auth.NoOpinion, ""},
		{"service account subject defaults to binding namespace", as(builder, res("get", "", "secrets", "", "ns1", "s")), auth.Allow,
			`to ServiceAccount "ns1/builder"`},
		{"same-named service account elsewhere", as(builder2, res("get", "", "secrets", "", "ns1", "s")), auth.NoOpinion, ""},
		{"non-resource for anonymous", as(anonymous, nonRes("get", "/healthz")), auth.Allow, `"anonymous-health"`},
		{"non-resource prefix", as(anonymous, nonRes("get", "/apis/apps")), auth.Allow, `"anonymous-health"`},
		{"non-resource not a prefix", as(anonymous, nonRes("get", "/healthz/etcd")), auth.NoOpinion, ""},
		{"non-resource star needs the slash", as(anonymous, nonRes("get", "/apis")), auth.NoOpinion, ""},
		{"anonymous gets no resources", as(anonymous, res("get", "", "pods", "", "ns1", "p")), auth.NoOpinion, ""},
		{"resource rules do not grant URLs", as(alice, nonRes("get", "/api")), auth.NoOpinion, ""},
		{"masters may do anything", as(admin, res("escalate", "rbac.authorization.k8s.io", "clusterroles", "", "", "x")), auth.Allow, `"masters"`},
		{"masters may reach any URL", as(admin, nonRes("post", "/whatever")), auth.Allow, `"masters"`},
		{"dangling role is reported", as(dave, res("get", "", "pods", "", "ns1", "p")), auth.NoOpinion, `role binding ns1/dangling: getting role ns1/missing`},
		{"nobody", as(auth.User{Name: "mallory"}, res("get", "", "pods", "", "ns1", "p")), auth.NoOpinion, ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			got, reason, err := a.Authorize(t.Context(), tt.attrs)
			if err != nil {
				t.Fatalf("Authorize: %v", err)
			}
			if got != tt.want {
				t.Errorf("decision = %v, want %v (reason %q)", got, tt.want, reason)
			}
			if tt.wantReason == "" && reason != "" || !strings.Contains(reason, tt.wantReason) {
				t.Errorf("reason = %q, want it to contain %q", reason, tt.wantReason)
			}
		})
	}
}

func TestRulesFor(t *testing.T) {
	t.Parallel()
	a := newSynced(t, testPolicy()...)
	tests := []struct {
		name            string
		user            auth.User
		namespace       string
		wantResource    []rbacv1.PolicyRule
		wantNonResource []rbacv1.PolicyRule
		wantIncomplete  bool
	}{
		{
			name: "cluster and namespace bindings", user: auth.User{Name: "bob", Groups: []string{"devs"}}, namespace: "ns1",
			wantResource: []rbacv1.PolicyRule{
				rule("get").groups("").resources("pods/log").rule(),
				rule("get").groups("").resources("secrets").rule(),
			},
		},
		{
			name: "cluster-wide only", user: auth.User{Name: "bob", Groups: []string{"devs"}},
			wantResource: []rbacv1.PolicyRule{rule("get").groups("").resources("pods/log").rule()},
		},
		{
			name: "non-resource", user: auth.User{Name: auth.Anonymous, Groups: []string{auth.AllUnauthenticated}}, namespace: "ns1",
			wantNonResource: []rbacv1.PolicyRule{rule("get").urls("/healthz", "/apis/*").rule()},
		},
		{name: "dangling binding", user: auth.User{Name: "dave"}, namespace: "ns1", wantIncomplete: true},
		{name: "nothing", user: auth.User{Name: "mallory"}, namespace: "ns1"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			r, nr, incomplete := a.RulesFor(tt.user, tt.namespace)
			if diff := cmp.Diff(tt.wantResource, r); diff != "" {
				t.Errorf("resource rules (-want +got):\n%s", diff)
			}
			if diff := cmp.Diff(tt.wantNonResource, nr); diff != "" {
				t.Errorf("non-resource rules (-want +got):\n%s", diff)
			}
			if incomplete != tt.wantIncomplete {
				t.Errorf("incomplete = %v, want %v", incomplete, tt.wantIncomplete)
			}
		})
	}
}

// TestDefaultPolicy checks the default roles and bindings give what
// upstream's give, evaluated by the authorizer.
func TestDefaultPolicy(t *testing.T) {
	t.Parallel()
	var objs []runtime.Object
	for _, r := range DefaultClusterRoles() {
		objs = append(objs, &r)
	}
	for _, b := range DefaultClusterRoleBindings() {
		objs = append(objs, &b)
	}
	// view, edit and admin are filled by the aggregation controller; give
	// them their aggregated rules here, as it would.
	roles := map[string]*rbacv1.ClusterRole{}
	for _, o := range objs {
		if r, ok := o.(*rbacv1.ClusterRole); ok {
			roles[r.Name] = r
		}
	}
	roles["view"].Rules = roles["system:aggregate-to-view"].Rules
	roles["edit"].Rules = append(append([]rbacv1.PolicyRule{}, roles["view"].Rules...), roles["system:aggregate-to-edit"].Rules...)
	roles["admin"].Rules = append(append([]rbacv1.PolicyRule{}, roles["edit"].Rules...), roles["system:aggregate-to-admin"].Rules...)
	objs = append(objs,
		binding("team", "viewers", "ClusterRole", "view", userSubject("viewer")),
		binding("team", "editors", "ClusterRole", "edit", userSubject("editor")),
		binding("team", "admins", "ClusterRole", "admin", userSubject("nsadmin")),
	)
	a := newSynced(t, objs...)
	authn := func(name string, groups ...string) auth.User {
		return auth.User{Name: name, Groups: append(groups, auth.AllAuthenticated)}
	}
	anonymous := auth.User{Name: auth.Anonymous, Groups: []string{auth.AllUnauthenticated}}
	tests := []struct {
		name  string
		user  auth.User
		attrs auth.Attributes
		want  auth.Decision
	}{
		{"anonymous healthz", anonymous, nonRes("get", "/healthz"), auth.Allow},
		{"anonymous livez", anonymous, nonRes("get", "/livez"), auth.Allow},
		{"anonymous readyz", anonymous, nonRes("get", "/readyz"), auth.Allow},
		{"anonymous version", anonymous, nonRes("get", "/version"), auth.Allow},
		{"anonymous no discovery", anonymous, nonRes("get", "/api"), auth.NoOpinion},
		{"anonymous no metrics", anonymous, nonRes("get", "/metrics"), auth.NoOpinion},
		{"anonymous no self review", anonymous, res("create", "authorization.k8s.io", "selfsubjectaccessreviews", "", "", ""), auth.NoOpinion},
		{"authenticated discovery", authn("u"), nonRes("get", "/apis/apps/v1"), auth.Allow},
		{"authenticated openapi", authn("u"), nonRes("get", "/openapi/v3"), auth.Allow},
		{"authenticated self review", authn("u"), res("create", "authorization.k8s.io", "selfsubjectaccessreviews", "", "", ""), auth.Allow},
		{"authenticated rules review", authn("u"), res("create", "authorization.k8s.io", "selfsubjectrulesreviews", "", "", ""), auth.Allow},
		{"authenticated whoami", authn("u"), res("create", "authentication.k8s.io", "selfsubjectreviews", "", "", ""), auth.Allow},
		{"authenticated no pods", authn("u"), res("list", "", "pods", "", "team", ""), auth.NoOpinion},
		{"masters", authn("root", auth.SystemMasters), res("delete", "", "nodes", "", "", "n"), auth.Allow},
		{"monitoring metrics", authn("prom", MonitoringGroup), nonRes("get", "/metrics"), auth.Allow},
		{"view lists pods", authn("viewer"), res("list", "", "pods", "", "team", ""), auth.Allow},
		{"view reads logs", authn("viewer"), res("get", "", "pods", "log", "team", "p"), auth.Allow},
		{"view no secrets", authn("viewer"), res("get", "", "secrets", "", "team", "s"), auth.NoOpinion},
		{"view no delete", authn("viewer"), res("delete", "", "pods", "", "team", "p"), auth.NoOpinion},
		{"view only its namespace", authn("viewer"), res("list", "", "pods", "", "other", ""), auth.NoOpinion},
		{"edit deletes pods", authn("editor"), res("delete", "", "pods", "", "team", "p"), auth.Allow},
		{"edit reads secrets", authn("editor"), res("get", "", "secrets", "", "team", "s"), auth.Allow},
		{"edit scales deployments", authn("editor"), res("update", "apps", "deployments", "scale", "team", "d"), auth.Allow},
		{"edit no roles", authn("editor"), res("create", "rbac.authorization.k8s.io", "roles", "", "team", ""), auth.NoOpinion},
		{"admin creates roles", authn("nsadmin"), res("create", "rbac.authorization.k8s.io", "rolebindings", "", "team", ""), auth.Allow},
		{"admin no quota writes", authn("nsadmin"), res("update", "", "resourcequotas", "", "team", "q"), auth.NoOpinion},
		{"scheduler binds", authn(KubeSchedulerUser), res("create", "", "pods", "binding", "team", "p"), auth.Allow},
		{"scheduler lists nodes", authn(KubeSchedulerUser), res("list", "", "nodes", "", "", ""), auth.Allow},
		{"scheduler no secrets", authn(KubeSchedulerUser), res("get", "", "secrets", "", "team", "s"), auth.NoOpinion},
		{"scheduler own lease", authn(KubeSchedulerUser), res("update", "coordination.k8s.io", "leases", "", "kube-system", "kube-scheduler"), auth.Allow},
		{"scheduler not others' leases", authn(KubeSchedulerUser), res("update", "coordination.k8s.io", "leases", "", "kube-system", "kube-controller-manager"), auth.NoOpinion},
		{"controller manager watches all", authn(KubeControllerManagerUser), res("watch", "apps", "deployments", "", "", ""), auth.Allow},
		{"proxy lists slices", authn(KubeProxyUser), res("list", "discovery.k8s.io", "endpointslices", "", "", ""), auth.Allow},
		{"node updates status", authn("system:node:n1", auth.NodesGroup), res("patch", "", "nodes", "status", "", "n1"), auth.Allow},
		{"node creates csr", authn("system:node:n1", auth.NodesGroup), res("create", "certificates.k8s.io", "certificatesigningrequests", "", "", ""), auth.Allow},
		{"bootstrapper creates csr", authn("system:bootstrap:abcdef", auth.BootstrappersGroup), res("create", "certificates.k8s.io", "certificatesigningrequests", "", "", ""), auth.Allow},
		{"bootstrapper nodeclient", authn("system:bootstrap:abcdef", auth.BootstrappersGroup), res("create", "certificates.k8s.io", "certificatesigningrequests", "nodeclient", "", ""), auth.Allow},
		{"bootstrapper no pods", authn("system:bootstrap:abcdef", auth.BootstrappersGroup), res("list", "", "pods", "", "", ""), auth.NoOpinion},
		{"node selfnodeclient", authn("system:node:n1", auth.NodesGroup), res("create", "certificates.k8s.io", "certificatesigningrequests", "selfnodeclient", "", ""), auth.Allow},
		// skiff:node-network and skiff:node-network-status (system:nodes).
		{"node watches slices", authn("system:node:n1", auth.NodesGroup), res("watch", "discovery.k8s.io", "endpointslices", "", "", ""), auth.Allow},
		{"node lists network policies", authn("system:node:n1", auth.NodesGroup), res("list", "networking.k8s.io", "networkpolicies", "", "", ""), auth.Allow},
		{"node lists namespaces", authn("system:node:n1", auth.NodesGroup), res("list", "", "namespaces", "", "", ""), auth.Allow},
		{"node lists ingresses", authn("system:node:n1", auth.NodesGroup), res("list", "networking.k8s.io", "ingresses", "", "", ""), auth.Allow},
		{"node lists ingress classes", authn("system:node:n1", auth.NodesGroup), res("list", "networking.k8s.io", "ingressclasses", "", "", ""), auth.Allow},
		{"node writes ingress status", authn("system:node:n1", auth.NodesGroup), res("update", "networking.k8s.io", "ingresses", "status", "team", "i"), auth.Allow},
		{"node writes service status", authn("system:node:n1", auth.NodesGroup), res("update", "", "services", "status", "team", "s"), auth.Allow},
		{"node no ingress writes", authn("system:node:n1", auth.NodesGroup), res("update", "networking.k8s.io", "ingresses", "", "team", "i"), auth.NoOpinion},
		{"node no network policy writes", authn("system:node:n1", auth.NodesGroup), res("delete", "networking.k8s.io", "networkpolicies", "", "team", "p"), auth.NoOpinion},
		{"node no deployments", authn("system:node:n1", auth.NodesGroup), res("list", "apps", "deployments", "", "", ""), auth.NoOpinion},
		// skiff:kube-scheduler.
		{"scheduler priority classes", authn(KubeSchedulerUser), res("watch", "scheduling.k8s.io", "priorityclasses", "", "", ""), auth.Allow},
		{"scheduler its skiff lease", authn(KubeSchedulerUser), res("update", "coordination.k8s.io", "leases", "", "kube-system", "default-scheduler"), auth.Allow},
		{"scheduler creates its lease", authn(KubeSchedulerUser), res("create", "coordination.k8s.io", "leases", "", "kube-system", ""), auth.Allow},
		{"scheduler patches pod status", authn(KubeSchedulerUser), res("patch", "", "pods", "status", "team", "p"), auth.Allow},
		{"scheduler deletes victims", authn(KubeSchedulerUser), res("delete", "", "pods", "", "team", "p"), auth.Allow},
		{"scheduler selects a claim's node", authn(KubeSchedulerUser), res("patch", "", "persistentvolumeclaims", "", "team", "data"), auth.Allow},
		{"scheduler pre-binds a volume", authn(KubeSchedulerUser), res("update", "", "persistentvolumes", "", "", "pv1"), auth.Allow},
		{"scheduler creates no volumes", authn(KubeSchedulerUser), res("create", "", "persistentvolumes", "", "", ""), auth.NoOpinion},
		{"scheduler reads storage classes", authn(KubeSchedulerUser), res("list", "storage.k8s.io", "storageclasses", "", "", ""), auth.Allow},
		{"scheduler no pod create", authn(KubeSchedulerUser), res("create", "", "pods", "", "team", ""), auth.NoOpinion},
		// skiff:kube-controller-manager.
		{"controller manager creates pods", authn(KubeControllerManagerUser), res("create", "", "pods", "", "team", ""), auth.Allow},
		{"controller manager creates replica sets", authn(KubeControllerManagerUser), res("create", "apps", "replicasets", "", "team", ""), auth.Allow},
		{"controller manager creates revisions", authn(KubeControllerManagerUser), res("create", "apps", "controllerrevisions", "", "team", ""), auth.Allow},
		{"controller manager creates jobs", authn(KubeControllerManagerUser), res("create", "batch", "jobs", "", "team", ""), auth.Allow},
		{"controller manager creates slices", authn(KubeControllerManagerUser), res("create", "discovery.k8s.io", "endpointslices", "", "team", ""), auth.Allow},
		{"controller manager creates claims", authn(KubeControllerManagerUser), res("create", "", "persistentvolumeclaims", "", "team", ""), auth.Allow},
		{"controller manager creates root CA config maps", authn(KubeControllerManagerUser), res("create", "", "configmaps", "", "team", ""), auth.Allow},
		{"controller manager creates service accounts", authn(KubeControllerManagerUser), res("create", "", "serviceaccounts", "", "team", ""), auth.Allow},
		{"garbage collector deletes anything", authn(KubeControllerManagerUser), res("delete", "example.com", "widgets", "", "team", "w"), auth.Allow},
		{"namespace controller deletes collections", authn(KubeControllerManagerUser), res("deletecollection", "", "secrets", "", "team", ""), auth.Allow},
		{"namespace controller finalizes", authn(KubeControllerManagerUser), res("update", "", "namespaces", "finalize", "", "team"), auth.Allow},
		{"controllers write status", authn(KubeControllerManagerUser), res("update", "apps", "deployments", "status", "team", "d"), auth.Allow},
		{"autoscaler scales", authn(KubeControllerManagerUser), res("update", "apps", "deployments", "scale", "team", "d"), auth.Allow},
		{"node ipam patches nodes", authn(KubeControllerManagerUser), res("patch", "", "nodes", "", "", "n1"), auth.Allow},
		{"controller manager own lease", authn(KubeControllerManagerUser), res("update", "coordination.k8s.io", "leases", "", "kube-system", "skiff-controller-manager"), auth.Allow},
		{"aggregation escalates", authn(KubeControllerManagerUser), res("escalate", "rbac.authorization.k8s.io", "clusterroles", "", "", "admin"), auth.Allow},
		{"csr approving", authn(KubeControllerManagerUser), res("approve", "certificates.k8s.io", "signers", "", "", "kubernetes.io/kube-apiserver-client-kubelet"), auth.Allow},
		{"csr approving, other signers", authn(KubeControllerManagerUser), res("approve", "certificates.k8s.io", "signers", "", "", "kubernetes.io/kube-apiserver-client"), auth.NoOpinion},
		{"csr signing", authn(KubeControllerManagerUser), res("sign", "certificates.k8s.io", "signers", "", "", "kubernetes.io/kubelet-serving"), auth.Allow},
		{"csr signing, foreign signers", authn(KubeControllerManagerUser), res("sign", "certificates.k8s.io", "signers", "", "", "example.com/x"), auth.NoOpinion},
		{"controller manager no impersonation", authn(KubeControllerManagerUser), res("impersonate", "", "users", "", "", "admin"), auth.NoOpinion},
		{"controller manager no bind", authn(KubeControllerManagerUser), res("bind", "rbac.authorization.k8s.io", "clusterroles", "", "", "cluster-admin"), auth.NoOpinion},
		{"controller manager no role create", authn(KubeControllerManagerUser), res("create", "rbac.authorization.k8s.io", "clusterrolebindings", "", "", ""), auth.NoOpinion},
		{"controller manager creates secrets (upstream's role)", authn(KubeControllerManagerUser), res("create", "", "secrets", "", "team", ""), auth.Allow},
		{"controller manager no node create", authn(KubeControllerManagerUser), res("create", "", "nodes", "", "", ""), auth.NoOpinion},
		{"controller manager no metrics", authn(KubeControllerManagerUser), nonRes("get", "/metrics"), auth.NoOpinion},
		// skiff:cluster-network.
		{"cluster network watches services", authn(ClusterNetworkUser), res("watch", "", "services", "", "", ""), auth.Allow},
		{"cluster network watches slices", authn(ClusterNetworkUser), res("watch", "discovery.k8s.io", "endpointslices", "", "", ""), auth.Allow},
		{"cluster network creates kube-dns", authn(ClusterNetworkUser), res("create", "", "services", "", "kube-system", ""), auth.Allow},
		{"cluster network updates its slice", authn(ClusterNetworkUser), res("update", "discovery.k8s.io", "endpointslices", "", "kube-system", "kube-dns-skiff-dns"), auth.Allow},
		{"cluster network no other slices", authn(ClusterNetworkUser), res("update", "discovery.k8s.io", "endpointslices", "", "team", "web-abc"), auth.NoOpinion},
		{"cluster network ingress class", authn(ClusterNetworkUser), res("update", "networking.k8s.io", "ingressclasses", "", "", "skiff"), auth.Allow},
		{"cluster network no other classes", authn(ClusterNetworkUser), res("update", "networking.k8s.io", "ingressclasses", "", "", "nginx"), auth.NoOpinion},
		{"cluster network no secrets", authn(ClusterNetworkUser), res("get", "", "secrets", "", "kube-system", "s"), auth.NoOpinion},
		{"cluster network no service deletion", authn(ClusterNetworkUser), res("delete", "", "services", "", "kube-system", "kube-dns"), auth.NoOpinion},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			attrs := tt.attrs
			attrs.User = tt.user
			got, reason, err := a.Authorize(t.Context(), attrs)
			if err != nil {
				t.Fatalf("Authorize: %v", err)
			}
			if got != tt.want {
				t.Errorf("decision = %v, want %v (reason %q)", got, tt.want, reason)
			}
		})
	}
}

// The subject index finds the same cluster bindings, in the same order, as
// listing them all: for users named directly, through several groups (a
// binding naming two of them once), as service accounts, and for a second
// authorizer on the same factory, and for one built after its informer
// started.
func TestClusterBindingsBySubject(t *testing.T) {
	objs := append(testPolicy(),
		clusterBinding("two-groups", "pod-reader", groupSubject("devs"), groupSubject("ops")),
		clusterBinding("sa-without-ns", "all", rbacv1.Subject{Kind: rbacv1.ServiceAccountKind, Name: "robot"}),
	)
	client := fake.NewClientset(objs...)
	factory := informers.NewSharedInformerFactory(client, 0)
	indexed := New(factory)
	second := New(factory)
	factory.StartWithContext(t.Context())
	t.Cleanup(factory.Shutdown)
	if !cache.WaitForCacheSync(t.Context().Done(), indexed.HasSynced) {
		t.Fatal("caches did not sync")
	}
	// A factory whose binding informer started before the authorizer:
	// the index is built over the bindings already there.
	other := informers.NewSharedInformerFactory(client, 0)
	other.Rbac().V1().ClusterRoleBindings().Informer()
	other.StartWithContext(t.Context())
	t.Cleanup(other.Shutdown)
	if !cache.WaitForCacheSync(t.Context().Done(), other.Rbac().V1().ClusterRoleBindings().Informer().HasSynced) {
		t.Fatal("caches did not sync")
	}
	late := New(other)
	other.StartWithContext(t.Context())
	if !cache.WaitForCacheSync(t.Context().Done(), late.HasSynced) {
		t.Fatal("caches did not sync")
	}
	for _, a := range []*Authorizer{indexed, second, late} {
		if a.bySubject == nil {
			t.Fatal("an authorizer has no subject index")
		}
	}
	listing := *indexed
	listing.bySubject = nil
	users := []auth.User{
		{Name: "alice"},
		{Name: "dave", Groups: []string{"devs", "ops", auth.AllAuthenticated}},
		{Name: auth.ServiceAccountPrefix + "ns2:robot", Groups: []string{"system:serviceaccounts"}},
		{Name: "root", Groups: []string{auth.SystemMasters}},
		{Name: "system:anonymous", Groups: []string{auth.AllUnauthenticated}},
		{Name: "nobody"},
	}
	names := func(a *Authorizer, u auth.User) []string {
		var out []string
		a.visitRules(u, "", func(src source, _ *rbacv1.PolicyRule, err error) bool {
			if err != nil {
				t.Errorf("%s: %v", u.Name, err)
			} else if len(out) == 0 || out[len(out)-1] != src.bindingName {
				out = append(out, src.bindingName)
			}
			return true
		})
		return out
	}
	for _, u := range users {
		want := names(&listing, u)
		for _, a := range []*Authorizer{indexed, second, late} {
			if diff := cmp.Diff(want, names(a, u)); diff != "" {
				t.Errorf("%s: bindings differ from a full list (-list +index):\n%s", u.Name, diff)
			}
		}
	}
	if got := names(indexed, users[1]); !cmp.Equal(got, []string{"devs-logs", "two-groups"}) {
		t.Errorf("dave's bindings: %v", got)
	}
}
