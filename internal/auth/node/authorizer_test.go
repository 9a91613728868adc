package node

import (
	"context"
	"fmt"
	"strings"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	networkingv1 "k8s.io/api/networking/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/client-go/informers"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/kubernetes/fake"
	"k8s.io/client-go/tools/cache"

	"github.com/skiff-dev/skiff/internal/auth"
	"github.com/skiff-dev/skiff/internal/auth/rbac"
)

func nodeUser(name string) auth.User {
	return auth.User{Name: auth.NodeUserPrefix + name, Groups: []string{auth.NodesGroup, auth.AllAuthenticated}}
}

func req(u auth.User, verb, group, resource, sub, ns, name string) auth.Attributes {
	return auth.Attributes{User: u, Verb: verb, ResourceRequest: true, APIGroup: group, APIVersion: "v1",
		Resource: resource, Subresource: sub, Namespace: ns, Name: name}
}

// fullPod is a pod on n1 in ns that references one object of every kind.
func fullPod() *corev1.Pod {
	return &corev1.Pod{
		ObjectMeta: metav1.ObjectMeta{Namespace: "ns", Name: "web"},
		Spec: corev1.PodSpec{
			NodeName:           "n1",
			ServiceAccountName: "web-sa",
			ImagePullSecrets:   []corev1.LocalObjectReference{{Name: "pull"}},
			Volumes: []corev1.Volume{
				{Name: "sec", VolumeSource: corev1.VolumeSource{Secret: &corev1.SecretVolumeSource{SecretName: "vol-secret"}}},
				{Name: "cm", VolumeSource: corev1.VolumeSource{ConfigMap: &corev1.ConfigMapVolumeSource{LocalObjectReference: corev1.LocalObjectReference{Name: "vol-cm"}}}},
				{Name: "proj", VolumeSource: corev1.VolumeSource{Projected: &corev1.ProjectedVolumeSource{Sources: []corev1.VolumeProjection{
					{Secret: &corev1.SecretProjection{LocalObjectReference: corev1.LocalObjectReference{Name: "proj-secret"}}},
					{ConfigMap: &corev1.ConfigMapProjection{LocalObjectReference: corev1.LocalObjectReference{Name: "proj-cm"}}},
				}}}},
				{Name: "data", VolumeSource: corev1.VolumeSource{PersistentVolumeClaim: &corev1.PersistentVolumeClaimVolumeSource{ClaimName: "data"}}},
				{Name: "scratch", VolumeSource: corev1.VolumeSource{Ephemeral: &corev1.EphemeralVolumeSource{}}},
				{Name: "csi", VolumeSource: corev1.VolumeSource{CSI: &corev1.CSIVolumeSource{Driver: "d", NodePublishSecretRef: &corev1.LocalObjectReference{Name: "csi-secret"}}}},
			},
			InitContainers: []corev1.Container{{Name: "init", Env: []corev1.EnvVar{
				{Name: "A", ValueFrom: &corev1.EnvVarSource{SecretKeyRef: &corev1.SecretKeySelector{LocalObjectReference: corev1.LocalObjectReference{Name: "init-env-secret"}, Key: "k"}}},
			}}},
			Containers: []corev1.Container{{
				Name: "app",
				Env: []corev1.EnvVar{
					{Name: "B", ValueFrom: &corev1.EnvVarSource{ConfigMapKeyRef: &corev1.ConfigMapKeySelector{LocalObjectReference: corev1.LocalObjectReference{Name: "env-cm"}, Key: "k"}}},
				},
				EnvFrom: []corev1.EnvFromSource{
					{SecretRef: &corev1.SecretEnvSource{LocalObjectReference: corev1.LocalObjectReference{Name: "envfrom-secret"}}},
					{ConfigMapRef: &corev1.ConfigMapEnvSource{LocalObjectReference: corev1.LocalObjectReference{Name: "envfrom-cm"}}},
				},
			}},
		},
	}
}

func testObjects() []runtime.Object {
	return []runtime.Object{
		fullPod(),
		&corev1.Pod{ObjectMeta: metav1.ObjectMeta{Namespace: "ns", Name: "other"}, Spec: corev1.PodSpec{
			NodeName: "n2",
			Volumes:  []corev1.Volume{{Name: "s", VolumeSource: corev1.VolumeSource{Secret: &corev1.SecretVolumeSource{SecretName: "n2-secret"}}}},
		}},
		&corev1.Pod{ObjectMeta: metav1.ObjectMeta{Namespace: "ns", Name: "pending"}, Spec: corev1.PodSpec{
			Volumes: []corev1.Volume{{Name: "s", VolumeSource: corev1.VolumeSource{Secret: &corev1.SecretVolumeSource{SecretName: "pending-secret"}}}},
		}},
		&corev1.PersistentVolumeClaim{ObjectMeta: metav1.ObjectMeta{Namespace: "ns", Name: "data"}, Spec: corev1.PersistentVolumeClaimSpec{VolumeName: "pv-data"}},
		&corev1.PersistentVolume{ObjectMeta: metav1.ObjectMeta{Name: "pv-data"}, Spec: corev1.PersistentVolumeSpec{
			PersistentVolumeSource: corev1.PersistentVolumeSource{CSI: &corev1.CSIPersistentVolumeSource{
				Driver: "d", VolumeHandle: "h", NodeStageSecretRef: &corev1.SecretReference{Namespace: "storage", Name: "stage-secret"},
			}},
		}},
		&corev1.PersistentVolume{ObjectMeta: metav1.ObjectMeta{Name: "pv-other"}},
		&networkingv1.Ingress{ObjectMeta: metav1.ObjectMeta{Namespace: "web", Name: "site"}, Spec: networkingv1.IngressSpec{
			TLS: []networkingv1.IngressTLS{{Hosts: []string{"a.example"}, SecretName: "site-tls"}, {SecretName: ""}},
		}},
	}
}

// start returns a node authorizer over client with synced caches.
func start(t *testing.T, client kubernetes.Interface) (*Authorizer, informers.SharedInformerFactory) {
	t.Helper()
	factory := informers.NewSharedInformerFactory(client, 0)
	a := New(factory)
	factory.StartWithContext(t.Context())
	t.Cleanup(factory.Shutdown)
	if !cache.WaitForCacheSync(t.Context().Done(), a.HasSynced) {
		t.Fatal("caches did not sync")
	}
	return a, factory
}

func TestAuthorize(t *testing.T) {
	t.Parallel()
	a, _ := start(t, fake.NewClientset(testObjects()...))
	n1, n2 := nodeUser("n1"), nodeUser("n2")
	const allow, deny, none = auth.Allow, auth.Deny, auth.NoOpinion
	tests := []struct {
		name  string
		attrs auth.Attributes
		want  auth.Decision
	}{
		{"volume secret", req(n1, "get", "", "secrets", "", "ns", "vol-secret"), allow},
		{"image pull secret", req(n1, "get", "", "secrets", "", "ns", "pull"), allow},
		{"projected secret", req(n1, "get", "", "secrets", "", "ns", "proj-secret"), allow},
		{"init container env secret", req(n1, "get", "", "secrets", "", "ns", "init-env-secret"), allow},
		{"envFrom secret", req(n1, "get", "", "secrets", "", "ns", "envfrom-secret"), allow},
		{"csi volume secret", req(n1, "get", "", "secrets", "", "ns", "csi-secret"), allow},
		{"persistent volume's csi secret", req(n1, "get", "", "secrets", "", "storage", "stage-secret"), allow},
		{"watch one named secret", req(n1, "watch", "", "secrets", "", "ns", "vol-secret"), allow},
		{"list secrets", req(n1, "list", "", "secrets", "", "ns", ""), deny},
		{"update a referenced secret", req(n1, "update", "", "secrets", "", "ns", "vol-secret"), deny},
		{"secret of another node's pod", req(n1, "get", "", "secrets", "", "ns", "n2-secret"), deny},
		{"the other node reads its own", req(n2, "get", "", "secrets", "", "ns", "n2-secret"), allow},
		{"secret of an unscheduled pod", req(n1, "get", "", "secrets", "", "ns", "pending-secret"), deny},
		{"same name, other namespace", req(n1, "get", "", "secrets", "", "other", "vol-secret"), deny},
		{"ingress TLS secret", req(n1, "get", "", "secrets", "", "web", "site-tls"), allow},
		{"ingress TLS secret, any node", req(n2, "get", "", "secrets", "", "web", "site-tls"), allow},
		{"watch one ingress TLS secret", req(n2, "watch", "", "secrets", "", "web", "site-tls"), allow},
		{"list secrets of an ingress's namespace", req(n1, "list", "", "secrets", "", "web", ""), deny},
		{"update an ingress TLS secret", req(n1, "update", "", "secrets", "", "web", "site-tls"), deny},
		{"ingress TLS secret name in another namespace", req(n1, "get", "", "secrets", "", "ns", "site-tls"), deny},
		{"other secret of an ingress's namespace", req(n1, "get", "", "secrets", "", "web", "db-password"), deny},
		{"a config map named like an ingress TLS secret", req(n1, "get", "", "configmaps", "", "web", "site-tls"), deny},
		{"a config map named like a secret", req(n1, "get", "", "configmaps", "", "ns", "vol-secret"), deny},
		{"volume config map", req(n1, "get", "", "configmaps", "", "ns", "vol-cm"), allow},
		{"projected config map", req(n1, "get", "", "configmaps", "", "ns", "proj-cm"), allow},
		{"env config map", req(n1, "get", "", "configmaps", "", "ns", "env-cm"), allow},
		{"envFrom config map", req(n1, "get", "", "configmaps", "", "ns", "envfrom-cm"), allow},
		{"config map of nobody", req(n1, "get", "", "configmaps", "", "ns", "kube-root-ca.crt"), deny},
		{"claim", req(n1, "get", "", "persistentvolumeclaims", "", "ns", "data"), allow},
		{"ephemeral claim", req(n1, "get", "", "persistentvolumeclaims", "", "ns", "web-scratch"), allow},
		{"claim status update", req(n1, "patch", "", "persistentvolumeclaims", "status", "ns", "data"), allow},
		{"claim of nobody", req(n2, "get", "", "persistentvolumeclaims", "", "ns", "data"), deny},
		{"persistent volume", req(n1, "get", "", "persistentvolumes", "", "", "pv-data"), allow},
		{"other persistent volume", req(n1, "get", "", "persistentvolumes", "", "", "pv-other"), deny},
		{"service account", req(n1, "get", "", "serviceaccounts", "", "ns", "web-sa"), allow},
		{"service account token", req(n1, "create", "", "serviceaccounts", "token", "ns", "web-sa"), allow},
		{"default service account of n2's pod", req(n2, "create", "", "serviceaccounts", "token", "ns", "default"), allow},
		{"token of an unused account", req(n1, "create", "", "serviceaccounts", "token", "ns", "default"), deny},
		{"list service accounts", req(n1, "list", "", "serviceaccounts", "", "ns", ""), deny},
		{"read any pod", req(n1, "get", "", "pods", "", "ns", "other"), allow},
		{"list pods", req(n1, "list", "", "pods", "", "", ""), allow},
		{"create a mirror pod", req(n1, "create", "", "pods", "", "ns", ""), allow},
		{"status of own pod", req(n1, "patch", "", "pods", "status", "ns", "web"), allow},
		{"status of another node's pod", req(n1, "patch", "", "pods", "status", "ns", "other"), deny},
		{"delete own pod", req(n1, "delete", "", "pods", "", "ns", "web"), allow},
		{"delete another node's pod", req(n1, "delete", "", "pods", "", "ns", "other"), deny},
		{"delete an unknown pod", req(n1, "delete", "", "pods", "", "ns", "ghost"), deny},
		{"evict own pod", req(n1, "create", "", "pods", "eviction", "ns", "web"), allow},
		{"exec is not the node's business", req(n1, "create", "", "pods", "exec", "ns", "web"), none},
		{"own node", req(n1, "get", "", "nodes", "", "", "n1"), allow},
		{"read other nodes", req(n1, "list", "", "nodes", "", "", ""), allow},
		{"register", req(n1, "create", "", "nodes", "", "", ""), allow},
		{"update own node status", req(n1, "update", "", "nodes", "status", "", "n1"), allow},
		{"patch own node", req(n1, "patch", "", "nodes", "", "", "n1"), allow},
		{"patch another node", req(n1, "patch", "", "nodes", "", "", "n2"), deny},
		{"update another node's status", req(n1, "update", "", "nodes", "status", "", "n2"), deny},
		{"delete own node is left to RBAC", req(n1, "delete", "", "nodes", "", "", "n1"), none},
		{"own lease", req(n1, "update", "coordination.k8s.io", "leases", "", LeaseNamespace, "n1"), allow},
		{"create own lease", req(n1, "create", "coordination.k8s.io", "leases", "", LeaseNamespace, ""), allow},
		{"another node's lease", req(n1, "update", "coordination.k8s.io", "leases", "", LeaseNamespace, "n2"), deny},
		{"lease elsewhere", req(n1, "get", "coordination.k8s.io", "leases", "", "kube-system", "n1"), deny},
		{"list leases", req(n1, "list", "coordination.k8s.io", "leases", "", LeaseNamespace, ""), deny},
		{"own csinode", req(n1, "update", "storage.k8s.io", "csinodes", "", "", "n1"), allow},
		{"other csinode", req(n1, "update", "storage.k8s.io", "csinodes", "", "", "n2"), deny},
		{"events", req(n1, "create", "", "events", "", "ns", ""), allow},
		{"events.k8s.io events", req(n1, "patch", "events.k8s.io", "events", "", "ns", "e"), allow},
		{"csr create", req(n1, "create", "certificates.k8s.io", "certificatesigningrequests", "", "", ""), allow},
		{"csr approve is not the node's business", req(n1, "update", "certificates.k8s.io", "certificatesigningrequests", "approval", "", "c"), none},
		{"services", req(n1, "list", "", "services", "", "", ""), allow},
		{"endpoints", req(n1, "get", "", "endpoints", "", "ns", "svc"), allow},
		{"deployments: RBAC decides", req(n1, "get", "apps", "deployments", "", "ns", "d"), none},
		{"not a node", req(auth.User{Name: "alice"}, "get", "", "secrets", "", "ns", "n2-secret"), none},
		{"node name without the nodes group", req(auth.User{Name: "system:node:n1"}, "get", "", "secrets", "", "ns", "vol-secret"), none},
		{"non-resource", auth.Attributes{User: n1, Verb: "get", Path: "/healthz"}, none},
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
			if got != auth.NoOpinion && !strings.Contains(reason, `node "`) {
				t.Errorf("reason %q does not name the node", reason)
			}
		})
	}
}

// eventually polls f until it returns nil or the deadline passes.
func eventually(t *testing.T, f func() error) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for {
		err := f()
		if err == nil {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("condition not met before deadline: %v", err)
		}
		select {
		case <-time.After(10 * time.Millisecond):
		case <-t.Context().Done():
			t.Fatalf("test ended: %v", err)
		}
	}
}

func decisionIs(a interface {
	Authorize(context.Context, auth.Attributes) (auth.Decision, string, error)
}, attrs auth.Attributes, want auth.Decision) func() error {
	return func() error {
		got, reason, err := a.Authorize(context.Background(), attrs)
		if err != nil {
			return err
		}
		if got != want {
			return fmt.Errorf("decision = %v, want %v (reason %q)", got, want, reason)
		}
		return nil
	}
}

// TestGraphFollowsPods: a secret mounted by a pod on node A is readable by
// A and not B; once the pod is gone, not by A either; scheduling a pod
// that mounts it to B makes it B's.
func TestGraphFollowsPods(t *testing.T) {
	t.Parallel()
	client := fake.NewClientset()
	a, _ := start(t, client)
	ctx := t.Context()
	getSecret := func(node string) auth.Attributes {
		return req(nodeUser(node), "get", "", "secrets", "", "ns", "db-password")
	}
	pod := func(name, node string) *corev1.Pod {
		return &corev1.Pod{ObjectMeta: metav1.ObjectMeta{Namespace: "ns", Name: name}, Spec: corev1.PodSpec{
			NodeName: node,
			Volumes:  []corev1.Volume{{Name: "s", VolumeSource: corev1.VolumeSource{Secret: &corev1.SecretVolumeSource{SecretName: "db-password"}}}},
		}}
	}

	eventually(t, decisionIs(a, getSecret("a"), auth.Deny))
	if _, err := client.CoreV1().Pods("ns").Create(ctx, pod("db", "a"), metav1.CreateOptions{}); err != nil {
		t.Fatalf("creating pod: %v", err)
	}
	eventually(t, decisionIs(a, getSecret("a"), auth.Allow))
	eventually(t, decisionIs(a, getSecret("b"), auth.Deny))

	if err := client.CoreV1().Pods("ns").Delete(ctx, "db", metav1.DeleteOptions{}); err != nil {
		t.Fatalf("deleting pod: %v", err)
	}
	eventually(t, decisionIs(a, getSecret("a"), auth.Deny))

	// A pending pod gives nobody access; binding it gives its node access.
	p, err := client.CoreV1().Pods("ns").Create(ctx, pod("db2", ""), metav1.CreateOptions{})
	if err != nil {
		t.Fatalf("creating pod: %v", err)
	}
	eventually(t, func() error {
		if _, err := a.pods.Pods("ns").Get("db2"); err != nil {
			return err
		}
		return nil
	})
	eventually(t, decisionIs(a, getSecret("b"), auth.Deny))
	p = p.DeepCopy()
	p.Spec.NodeName = "b"
	if _, err := client.CoreV1().Pods("ns").Update(ctx, p, metav1.UpdateOptions{}); err != nil {
		t.Fatalf("binding pod: %v", err)
	}
	eventually(t, decisionIs(a, getSecret("b"), auth.Allow))
	eventually(t, decisionIs(a, getSecret("a"), auth.Deny))
}

// chain is the order the API server runs authorizers in: the first
// decision other than NoOpinion wins; no decision is forbidden.
type chain []interface {
	Authorize(context.Context, auth.Attributes) (auth.Decision, string, error)
}

func (c chain) Authorize(ctx context.Context, attrs auth.Attributes) (auth.Decision, string, error) {
	for _, a := range c {
		d, reason, err := a.Authorize(ctx, attrs)
		if err != nil || d != auth.NoOpinion {
			return d, reason, err
		}
	}
	return auth.Deny, "no authorizer allowed it", nil
}

// TestWithRBAC runs the node authorizer before RBAC with the default
// policy (system:node bound to system:nodes, which grants reading every
// secret): the node authorizer's Deny must win.
func TestWithRBAC(t *testing.T) {
	t.Parallel()
	objs := testObjects()
	for _, r := range rbac.DefaultClusterRoles() {
		objs = append(objs, &r)
	}
	for _, b := range rbac.DefaultClusterRoleBindings() {
		objs = append(objs, &b)
	}
	client := fake.NewClientset(objs...)
	factory := informers.NewSharedInformerFactory(client, 0)
	nodes := New(factory)
	r := rbac.New(factory)
	factory.StartWithContext(t.Context())
	t.Cleanup(factory.Shutdown)
	if !cache.WaitForCacheSync(t.Context().Done(), nodes.HasSynced, r.HasSynced) {
		t.Fatal("caches did not sync")
	}
	c := chain{nodes, r}
	n1 := nodeUser("n1")
	tests := []struct {
		name  string
		attrs auth.Attributes
		want  auth.Decision
	}{
		{"own pod's secret", req(n1, "get", "", "secrets", "", "ns", "vol-secret"), auth.Allow},
		{"another node's secret", req(n1, "get", "", "secrets", "", "ns", "n2-secret"), auth.Deny},
		{"list all secrets", req(n1, "list", "", "secrets", "", "", ""), auth.Deny},
		{"watch all config maps", req(n1, "watch", "", "configmaps", "", "", ""), auth.Deny},
		{"another node's status", req(n1, "update", "", "nodes", "status", "", "n2"), auth.Deny},
		{"RBAC still grants runtime classes", req(n1, "list", "node.k8s.io", "runtimeclasses", "", "", ""), auth.Allow},
		{"RBAC does not grant deployments", req(n1, "list", "apps", "deployments", "", "", ""), auth.Deny},
		{"RBAC does not grant node deletion", req(n1, "delete", "", "nodes", "", "", "n1"), auth.Deny},
		{"ingress TLS secret", req(n1, "get", "", "secrets", "", "web", "site-tls"), auth.Allow},
		{"list an ingress's namespace's secrets", req(n1, "list", "", "secrets", "", "web", ""), auth.Deny},
		{"RBAC grants endpoint slices", req(n1, "watch", "discovery.k8s.io", "endpointslices", "", "", ""), auth.Allow},
		{"RBAC grants network policies", req(n1, "list", "networking.k8s.io", "networkpolicies", "", "", ""), auth.Allow},
		{"RBAC grants ingresses", req(n1, "list", "networking.k8s.io", "ingresses", "", "", ""), auth.Allow},
		{"RBAC grants ingress status", req(n1, "update", "networking.k8s.io", "ingresses", "status", "web", "site"), auth.Allow},
		{"RBAC does not grant ingress writes", req(n1, "update", "networking.k8s.io", "ingresses", "", "web", "site"), auth.Deny},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			if err := decisionIs(c, tt.attrs, tt.want)(); err != nil {
				t.Error(err)
			}
		})
	}
}

// TestIngressTLSFollowsIngresses: a secret becomes readable by every node
// when an Ingress names it in spec.tls, and stops being readable when no
// ingress does.
func TestIngressTLSFollowsIngresses(t *testing.T) {
	t.Parallel()
	client := fake.NewClientset()
	a, _ := start(t, client)
	ctx := t.Context()
	get := func(node string) auth.Attributes {
		return req(nodeUser(node), "get", "", "secrets", "", "web", "site-tls")
	}
	eventually(t, decisionIs(a, get("a"), auth.Deny))
	ing := &networkingv1.Ingress{ObjectMeta: metav1.ObjectMeta{Namespace: "web", Name: "site"}, Spec: networkingv1.IngressSpec{
		TLS: []networkingv1.IngressTLS{{SecretName: "site-tls"}},
	}}
	if _, err := client.NetworkingV1().Ingresses("web").Create(ctx, ing, metav1.CreateOptions{}); err != nil {
		t.Fatalf("creating ingress: %v", err)
	}
	eventually(t, decisionIs(a, get("a"), auth.Allow))
	eventually(t, decisionIs(a, get("b"), auth.Allow))

	ing = ing.DeepCopy()
	ing.Spec.TLS[0].SecretName = "new-tls"
	if _, err := client.NetworkingV1().Ingresses("web").Update(ctx, ing, metav1.UpdateOptions{}); err != nil {
		t.Fatalf("updating ingress: %v", err)
	}
	eventually(t, decisionIs(a, get("a"), auth.Deny))
	eventually(t, decisionIs(a, req(nodeUser("a"), "watch", "", "secrets", "", "web", "new-tls"), auth.Allow))

	if err := client.NetworkingV1().Ingresses("web").Delete(ctx, "site", metav1.DeleteOptions{}); err != nil {
		t.Fatalf("deleting ingress: %v", err)
	}
	eventually(t, decisionIs(a, req(nodeUser("a"), "get", "", "secrets", "", "web", "new-tls"), auth.Deny))
}
