package volumes

import (
	"os"
	"testing"
	"time"

	authenticationv1 "k8s.io/api/authentication/v1"
	v1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/resource"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/client-go/kubernetes/fake"
	k8stesting "k8s.io/client-go/testing"
)

const testNode = "node-1"

// fixture objects shared by the tests.
func fixtures() []runtime.Object {
	return []runtime.Object{
		&v1.ConfigMap{
			ObjectMeta: metav1.ObjectMeta{Namespace: "ns", Name: "cfg"},
			Data:       map[string]string{"a": "alpha", "b": "beta", "URL": "http://$(HOST)"},
			BinaryData: map[string][]byte{"bin": {0, 1, 2}},
		},
		&v1.Secret{
			ObjectMeta: metav1.ObjectMeta{Namespace: "ns", Name: "sec"},
			Data:       map[string][]byte{"user": []byte("admin"), "pass": []byte("s3cret")},
		},
		&v1.Service{
			ObjectMeta: metav1.ObjectMeta{Namespace: "default", Name: "kubernetes"},
			Spec: v1.ServiceSpec{ClusterIP: "10.96.0.1", Ports: []v1.ServicePort{
				{Name: "https", Port: 443, Protocol: v1.ProtocolTCP},
			}},
		},
		&v1.Service{
			ObjectMeta: metav1.ObjectMeta{Namespace: "default", Name: "other"},
			Spec:       v1.ServiceSpec{ClusterIP: "10.96.0.2", Ports: []v1.ServicePort{{Port: 80}}},
		},
		&v1.Service{
			ObjectMeta: metav1.ObjectMeta{Namespace: "ns", Name: "my-db"},
			Spec: v1.ServiceSpec{ClusterIP: "10.96.0.10", Ports: []v1.ServicePort{
				{Name: "sql", Port: 5432, Protocol: v1.ProtocolTCP},
				{Name: "metrics-udp", Port: 9000, Protocol: v1.ProtocolUDP},
			}},
		},
		&v1.Service{
			ObjectMeta: metav1.ObjectMeta{Namespace: "ns", Name: "headless"},
			Spec:       v1.ServiceSpec{ClusterIP: v1.ClusterIPNone, Ports: []v1.ServicePort{{Port: 80}}},
		},
		&v1.Node{
			ObjectMeta: metav1.ObjectMeta{Name: testNode},
			Status: v1.NodeStatus{Allocatable: v1.ResourceList{
				v1.ResourceCPU:    resource.MustParse("2"),
				v1.ResourceMemory: resource.MustParse("4Gi"),
			}},
		},
	}
}

// newTestManager returns a Manager on a temp root over a fake clientset
// holding objs; service account tokens are "token-<sa>-<n>".
func newTestManager(t testing.TB, objs ...runtime.Object) (*Manager, *fake.Clientset) {
	t.Helper()
	return newTestManagerWith(t, nil, objs...)
}

// newTestManagerWith is newTestManager with its Config changed by mod.
func newTestManagerWith(t testing.TB, mod func(*Config), objs ...runtime.Object) (*Manager, *fake.Clientset) {
	t.Helper()
	cs := fake.NewSimpleClientset(objs...)
	n := 0
	cs.PrependReactor("create", "serviceaccounts", func(a k8stesting.Action) (bool, runtime.Object, error) {
		if a.GetSubresource() != "token" {
			return false, nil, nil
		}
		ca := a.(k8stesting.CreateActionImpl)
		req := ca.GetObject().(*authenticationv1.TokenRequest)
		n++
		out := req.DeepCopy()
		out.Status.Token = "token-" + ca.Name + "-" + string(rune('0'+n))
		out.Status.ExpirationTimestamp = metav1.NewTime(time.Now().Add(time.Duration(*req.Spec.ExpirationSeconds) * time.Second))
		return true, out, nil
	})
	root := t.TempDir()
	cfg := Config{RootDir: root, Client: cs, NodeName: testNode}
	if mod != nil {
		mod(&cfg)
	}
	m, err := New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		m.stop()
		// As root, secret and projected volumes are tmpfs mounts.
		if err := unmountUnder(root); err != nil {
			t.Errorf("cleanup: %v", err)
		}
	})
	return m, cs
}

func testPod(volumes ...v1.Volume) *v1.Pod {
	return &v1.Pod{
		ObjectMeta: metav1.ObjectMeta{
			Namespace: "ns", Name: "web", UID: "uid-1",
			Labels:      map[string]string{"app": "web", "tier": "front"},
			Annotations: map[string]string{"note": "say \"hi\""},
		},
		Spec: v1.PodSpec{
			NodeName:           testNode,
			ServiceAccountName: "builder",
			Volumes:            volumes,
			Containers: []v1.Container{{
				Name: "main",
				Resources: v1.ResourceRequirements{
					Limits:   v1.ResourceList{v1.ResourceMemory: resource.MustParse("64Mi")},
					Requests: v1.ResourceList{v1.ResourceCPU: resource.MustParse("250m"), v1.ResourceMemory: resource.MustParse("32Mi")},
				},
			}},
		},
		Status: v1.PodStatus{
			PodIP: "10.244.0.5", PodIPs: []v1.PodIP{{IP: "10.244.0.5"}, {IP: "fd00::5"}},
			HostIP: "192.168.1.10", HostIPs: []v1.HostIP{{IP: "192.168.1.10"}},
		},
	}
}

func ptr[T any](v T) *T { return &v }

// poll calls f until it returns nil or the deadline passes, then fails
// with f's last error.
func poll(t *testing.T, timeout time.Duration, what string, f func() error) {
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
		<-time.After(20 * time.Millisecond)
	}
}

func requireRoot(t *testing.T) {
	t.Helper()
	if os.Geteuid() != 0 {
		t.Skip("skipping: mounting tmpfs needs root")
	}
}
