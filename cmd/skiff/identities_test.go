package main

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"testing"
	"time"

	appsv1 "k8s.io/api/apps/v1"
	certificatesv1 "k8s.io/api/certificates/v1"
	corev1 "k8s.io/api/core/v1"
	rbacv1 "k8s.io/api/rbac/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/api/resource"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/skiff-dev/skiff/internal/auth/rbac"
	"github.com/skiff-dev/skiff/internal/server"
	"github.com/skiff-dev/skiff/internal/servicealloc"
	"github.com/skiff-dev/skiff/internal/testserver"
)

// eventually polls f until it returns nil or timeout passes.
func eventually(t *testing.T, timeout time.Duration, what string, f func() error) {
	t.Helper()
	deadline := time.Now().Add(timeout)
	for {
		err := f()
		if err == nil {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("%s: still failing after %v: %v", what, timeout, err)
		}
		select {
		case <-time.After(50 * time.Millisecond):
		case <-t.Context().Done():
			t.Fatalf("%s: %v", what, t.Context().Err())
		}
	}
}

// certCN returns the subject of DataDir/pki/<name>.crt.
func certCN(t *testing.T, dir, name string) string {
	t.Helper()
	data, err := os.ReadFile(filepath.Join(dir, "pki", name+".crt"))
	if err != nil {
		t.Fatalf("reading the %s certificate: %v", name, err)
	}
	block, _ := pem.Decode(data)
	if block == nil {
		t.Fatalf("%s.crt holds no PEM", name)
	}
	cert, err := x509.ParseCertificate(block.Bytes)
	if err != nil {
		t.Fatalf("parsing %s.crt: %v", name, err)
	}
	return fmt.Sprintf("CN=%s O=%v", cert.Subject.CommonName, cert.Subject.Organization)
}

// TestControlPlaneIdentities runs "skiff server"'s scheduler and
// controller manager exactly as controlPlaneComponents builds them (each
// with its own certificate and the default RBAC policy, no
// system:masters) against a real API server and checks that they still do
// their work: the scheduler binds pods, the deployment, replica set,
// garbage collector, namespace, aggregation and CSR controllers act.
func TestControlPlaneIdentities(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	srv := testserver.StartServer(t, testserver.Options{DataDir: dir, Components: controlPlaneComponents(dir, true, true)})
	admin := testserver.Client(t, srv.Admin)
	ctx := t.Context()

	t.Run("own certificates", func(t *testing.T) {
		for name, want := range map[string]string{
			"kube-scheduler":          "CN=" + rbac.KubeSchedulerUser + " O=[]",
			"kube-controller-manager": "CN=" + rbac.KubeControllerManagerUser + " O=[]",
		} {
			if got := certCN(t, dir, name); got != want {
				t.Errorf("%s certificate: %s, want %s", name, got, want)
			}
		}
	})

	t.Run("least privilege", func(t *testing.T) {
		sched := testserver.Client(t, srv.ConfigFor(t, rbac.KubeSchedulerUser))
		if _, err := sched.CoreV1().Secrets("kube-system").List(ctx, metav1.ListOptions{}); !apierrors.IsForbidden(err) {
			t.Errorf("scheduler listing secrets: %v, want 403", err)
		}
		cm := testserver.Client(t, srv.ConfigFor(t, rbac.KubeControllerManagerUser))
		crb := &rbacv1.ClusterRoleBinding{
			ObjectMeta: metav1.ObjectMeta{Name: "grab"},
			RoleRef:    rbacv1.RoleRef{APIGroup: rbacv1.GroupName, Kind: "ClusterRole", Name: "cluster-admin"},
			Subjects:   []rbacv1.Subject{{Kind: rbacv1.UserKind, APIGroup: rbacv1.GroupName, Name: rbac.KubeControllerManagerUser}},
		}
		if _, err := cm.RbacV1().ClusterRoleBindings().Create(ctx, crb, metav1.CreateOptions{}); !apierrors.IsForbidden(err) {
			t.Errorf("controller manager binding itself to cluster-admin: %v, want 403", err)
		}
		if _, err := cm.CoreV1().Nodes().Create(ctx, &corev1.Node{ObjectMeta: metav1.ObjectMeta{Name: "fake"}}, metav1.CreateOptions{}); !apierrors.IsForbidden(err) {
			t.Errorf("controller manager creating a node: %v, want 403", err)
		}
	})

	// A node that takes pods (no agent: its status is written here).
	if _, err := admin.CoreV1().Nodes().Create(ctx, &corev1.Node{ObjectMeta: metav1.ObjectMeta{Name: "n1", Labels: map[string]string{"kubernetes.io/hostname": "n1"}}}, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	// The controllers write the node too (pod CIDR): retry on conflicts.
	eventually(t, 10*time.Second, "node status", func() error {
		node, err := admin.CoreV1().Nodes().Get(ctx, "n1", metav1.GetOptions{})
		if err != nil {
			return err
		}
		node = node.DeepCopy()
		node.Status.Capacity = corev1.ResourceList{corev1.ResourceCPU: resource.MustParse("8"), corev1.ResourceMemory: resource.MustParse("16Gi"), corev1.ResourcePods: resource.MustParse("110")}
		node.Status.Allocatable = node.Status.Capacity
		node.Status.Conditions = []corev1.NodeCondition{{Type: corev1.NodeReady, Status: corev1.ConditionTrue, LastHeartbeatTime: metav1.Now(), LastTransitionTime: metav1.Now(), Reason: "KubeletReady"}}
		_, err = admin.CoreV1().Nodes().UpdateStatus(ctx, node, metav1.UpdateOptions{})
		return err
	})
	const ns = "team"
	if _, err := admin.CoreV1().Namespaces().Create(ctx, &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: ns}}, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}

	t.Run("deployment to scheduled pods", func(t *testing.T) {
		replicas := int32(2)
		labels := map[string]string{"app": "web"}
		d := &appsv1.Deployment{
			ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: "web"},
			Spec: appsv1.DeploymentSpec{
				Replicas: &replicas,
				Selector: &metav1.LabelSelector{MatchLabels: labels},
				Template: corev1.PodTemplateSpec{
					ObjectMeta: metav1.ObjectMeta{Labels: labels},
					Spec:       corev1.PodSpec{Containers: []corev1.Container{{Name: "web", Image: "nginx"}}},
				},
			},
		}
		if _, err := admin.AppsV1().Deployments(ns).Create(ctx, d, metav1.CreateOptions{}); err != nil {
			t.Fatal(err)
		}
		eventually(t, 60*time.Second, "a replica set and two pods bound to n1", func() error {
			rss, err := admin.AppsV1().ReplicaSets(ns).List(ctx, metav1.ListOptions{})
			if err != nil {
				return err
			}
			if len(rss.Items) != 1 || rss.Items[0].Status.Replicas != 2 {
				return fmt.Errorf("%d replica sets", len(rss.Items))
			}
			pods, err := admin.CoreV1().Pods(ns).List(ctx, metav1.ListOptions{LabelSelector: "app=web"})
			if err != nil {
				return err
			}
			bound := 0
			for _, p := range pods.Items {
				if p.Spec.NodeName == "n1" {
					bound++
				}
			}
			if bound != 2 {
				return fmt.Errorf("%d of %d pods bound", bound, len(pods.Items))
			}
			return nil
		})
	})

	t.Run("garbage collection", func(t *testing.T) {
		owner, err := admin.CoreV1().ConfigMaps(ns).Create(ctx, &corev1.ConfigMap{ObjectMeta: metav1.ObjectMeta{Name: "owner"}}, metav1.CreateOptions{})
		if err != nil {
			t.Fatal(err)
		}
		dep := &corev1.ConfigMap{ObjectMeta: metav1.ObjectMeta{Name: "dependent", OwnerReferences: []metav1.OwnerReference{
			{APIVersion: "v1", Kind: "ConfigMap", Name: owner.Name, UID: owner.UID},
		}}}
		if _, err := admin.CoreV1().ConfigMaps(ns).Create(ctx, dep, metav1.CreateOptions{}); err != nil {
			t.Fatal(err)
		}
		if err := admin.CoreV1().ConfigMaps(ns).Delete(ctx, "owner", metav1.DeleteOptions{}); err != nil {
			t.Fatal(err)
		}
		eventually(t, 60*time.Second, "the dependent is collected", func() error {
			_, err := admin.CoreV1().ConfigMaps(ns).Get(ctx, "dependent", metav1.GetOptions{})
			if apierrors.IsNotFound(err) {
				return nil
			}
			return fmt.Errorf("dependent: %v", err)
		})
	})

	t.Run("aggregated roles", func(t *testing.T) {
		eventually(t, 30*time.Second, "view aggregates its rules", func() error {
			r, err := admin.RbacV1().ClusterRoles().Get(ctx, "view", metav1.GetOptions{})
			if err != nil {
				return err
			}
			if len(r.Rules) == 0 {
				return errors.New("no rules yet")
			}
			return nil
		})
	})

	t.Run("certificate signing", func(t *testing.T) {
		key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
		if err != nil {
			t.Fatal(err)
		}
		der, err := x509.CreateCertificateRequest(rand.Reader, &x509.CertificateRequest{Subject: pkix.Name{CommonName: "alice"}}, key)
		if err != nil {
			t.Fatal(err)
		}
		csr := &certificatesv1.CertificateSigningRequest{
			ObjectMeta: metav1.ObjectMeta{Name: "alice"},
			Spec: certificatesv1.CertificateSigningRequestSpec{
				Request:    pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE REQUEST", Bytes: der}),
				SignerName: certificatesv1.KubeAPIServerClientSignerName,
				Usages:     []certificatesv1.KeyUsage{certificatesv1.UsageClientAuth, certificatesv1.UsageDigitalSignature},
			},
		}
		created, err := admin.CertificatesV1().CertificateSigningRequests().Create(ctx, csr, metav1.CreateOptions{})
		if err != nil {
			t.Fatal(err)
		}
		created.Status.Conditions = append(created.Status.Conditions, certificatesv1.CertificateSigningRequestCondition{
			Type: certificatesv1.CertificateApproved, Status: corev1.ConditionTrue, Reason: "Test", Message: "approved by the test",
		})
		if _, err := admin.CertificatesV1().CertificateSigningRequests().UpdateApproval(ctx, "alice", created, metav1.UpdateOptions{}); err != nil {
			t.Fatal(err)
		}
		eventually(t, 30*time.Second, "the controller manager signs", func() error {
			got, err := admin.CertificatesV1().CertificateSigningRequests().Get(ctx, "alice", metav1.GetOptions{})
			if err != nil {
				return err
			}
			if len(got.Status.Certificate) == 0 {
				return fmt.Errorf("no certificate; conditions %v", got.Status.Conditions)
			}
			return nil
		})
	})

	// Deleting a namespace deletes everything in it. (Not the namespace
	// above: its pods are bound to a node without an agent, which would
	// never confirm their end.)
	t.Run("namespace deletion", func(t *testing.T) {
		const doomed = "doomed"
		if _, err := admin.CoreV1().Namespaces().Create(ctx, &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: doomed}}, metav1.CreateOptions{}); err != nil {
			t.Fatal(err)
		}
		if _, err := admin.CoreV1().ConfigMaps(doomed).Create(ctx, &corev1.ConfigMap{ObjectMeta: metav1.ObjectMeta{Name: "cm"}}, metav1.CreateOptions{}); err != nil {
			t.Fatal(err)
		}
		if _, err := admin.CoreV1().Secrets(doomed).Create(ctx, &corev1.Secret{ObjectMeta: metav1.ObjectMeta{Name: "s"}}, metav1.CreateOptions{}); err != nil {
			t.Fatal(err)
		}
		role := &rbacv1.Role{ObjectMeta: metav1.ObjectMeta{Name: "r"}, Rules: []rbacv1.PolicyRule{{Verbs: []string{"get"}, APIGroups: []string{""}, Resources: []string{"pods"}}}}
		if _, err := admin.RbacV1().Roles(doomed).Create(ctx, role, metav1.CreateOptions{}); err != nil {
			t.Fatal(err)
		}
		if err := admin.CoreV1().Namespaces().Delete(ctx, doomed, metav1.DeleteOptions{}); err != nil {
			t.Fatal(err)
		}
		eventually(t, 60*time.Second, "the namespace is gone", func() error {
			n, err := admin.CoreV1().Namespaces().Get(ctx, doomed, metav1.GetOptions{})
			if apierrors.IsNotFound(err) {
				return nil
			}
			if err != nil {
				return err
			}
			return fmt.Errorf("phase %s, conditions %v", n.Status.Phase, n.Status.Conditions)
		})
	})
}

// TestClusterNetworkIdentity runs the cluster DNS component as its own
// user: it creates the kube-dns Service, the default IngressClass and,
// once the DNS server listens, its EndpointSlice.
func TestClusterNetworkIdentity(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	// A loopback address of its own, so that port 53 is free.
	ip := fmt.Sprintf("127.53.%d.%d", os.Getpid()%250+1, time.Now().UnixNano()%250+1)
	comp, err := clusterNetworkComponent(servicealloc.DefaultServiceCIDR, ip, "cluster.local", io.Discard)
	if err != nil {
		t.Fatal(err)
	}
	srv := testserver.StartServer(t, testserver.Options{DataDir: dir, Components: []server.Component{comp}})
	admin := testserver.Client(t, srv.Admin)
	ctx := t.Context()
	if got, want := certCN(t, dir, "cluster-network"), "CN="+rbac.ClusterNetworkUser+" O=[]"; got != want {
		t.Errorf("certificate: %s, want %s", got, want)
	}
	eventually(t, 30*time.Second, "kube-dns, its endpoint slice and the ingress class", func() error {
		if _, err := admin.CoreV1().Services("kube-system").Get(ctx, "kube-dns", metav1.GetOptions{}); err != nil {
			return err
		}
		if _, err := admin.NetworkingV1().IngressClasses().Get(ctx, "skiff", metav1.GetOptions{}); err != nil {
			return err
		}
		if os.Geteuid() != 0 {
			return nil // no port 53
		}
		_, err := admin.DiscoveryV1().EndpointSlices("kube-system").Get(ctx, "kube-dns-skiff-dns", metav1.GetOptions{})
		return err
	})
}
