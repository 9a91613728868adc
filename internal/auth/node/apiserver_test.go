package node_test

import (
	"context"
	"fmt"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	networkingv1 "k8s.io/api/networking/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/fields"
	"k8s.io/client-go/kubernetes"

	"github.com/skiff-dev/skiff/internal/auth"
	"github.com/skiff-dev/skiff/internal/testserver"
)

// poll calls f until it returns nil or 20 seconds pass (the node
// authorizer reads pods from a cache, so a new pod takes a moment to
// count).
func poll(t *testing.T, what string, f func() error) {
	t.Helper()
	deadline := time.Now().Add(20 * time.Second)
	for {
		err := f()
		if err == nil {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("%s: %v", what, err)
		}
		select {
		case <-time.After(20 * time.Millisecond):
		case <-t.Context().Done():
			t.Fatalf("%s: %v", what, t.Context().Err())
		}
	}
}

// TestNodeCredentialOverServer: on the real API server, with the default
// policy, a node's credential reads the secrets its own pods mount (by
// GET and by a watch of that one name) and the TLS secrets of ingresses,
// and gets 403 for a secret only another node's pod mounts and for
// listing secrets.
func TestNodeCredentialOverServer(t *testing.T) {
	t.Parallel()
	srv := testserver.StartServer(t, testserver.Options{})
	admin := testserver.Client(t, srv.Admin)
	nodeA := testserver.Client(t, srv.ConfigFor(t, auth.NodeUserPrefix+"a", auth.NodesGroup))
	ctx := t.Context()

	const ns = "apps"
	if _, err := admin.CoreV1().Namespaces().Create(ctx, &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: ns}}, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	for _, name := range []string{"a-secret", "b-secret", "site-tls"} {
		s := &corev1.Secret{ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: name}, StringData: map[string]string{"k": name}}
		if _, err := admin.CoreV1().Secrets(ns).Create(ctx, s, metav1.CreateOptions{}); err != nil {
			t.Fatal(err)
		}
	}
	pod := func(name, node, secret string) *corev1.Pod {
		return &corev1.Pod{ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: name}, Spec: corev1.PodSpec{
			NodeName:   node,
			Containers: []corev1.Container{{Name: "c", Image: "busybox"}},
			Volumes:    []corev1.Volume{{Name: "s", VolumeSource: corev1.VolumeSource{Secret: &corev1.SecretVolumeSource{SecretName: secret}}}},
		}}
	}
	for _, p := range []*corev1.Pod{pod("on-a", "a", "a-secret"), pod("on-b", "b", "b-secret")} {
		if _, err := admin.CoreV1().Pods(ns).Create(ctx, p, metav1.CreateOptions{}); err != nil {
			t.Fatal(err)
		}
	}
	ing := &networkingv1.Ingress{ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: "site"}, Spec: networkingv1.IngressSpec{
		DefaultBackend: &networkingv1.IngressBackend{Service: &networkingv1.IngressServiceBackend{Name: "web", Port: networkingv1.ServiceBackendPort{Number: 80}}},
		TLS:            []networkingv1.IngressTLS{{SecretName: "site-tls"}},
	}}
	if _, err := admin.NetworkingV1().Ingresses(ns).Create(ctx, ing, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}

	get := func(name string) error {
		_, err := nodeA.CoreV1().Secrets(ns).Get(ctx, name, metav1.GetOptions{})
		return err
	}
	poll(t, "node a reads its pod's secret", func() error { return get("a-secret") })
	poll(t, "node a reads the ingress's TLS secret", func() error { return get("site-tls") })
	if err := get("b-secret"); !apierrors.IsForbidden(err) {
		t.Errorf("node a reading the secret of node b's pod: %v, want 403 Forbidden", err)
	}
	if _, err := nodeA.CoreV1().Secrets(ns).List(ctx, metav1.ListOptions{}); !apierrors.IsForbidden(err) {
		t.Errorf("node a listing secrets: %v, want 403 Forbidden", err)
	}
	if _, err := nodeA.CoreV1().Secrets("").List(ctx, metav1.ListOptions{}); !apierrors.IsForbidden(err) {
		t.Errorf("node a listing all secrets: %v, want 403 Forbidden", err)
	}
	if _, err := nodeA.CoreV1().ConfigMaps(ns).List(ctx, metav1.ListOptions{}); !apierrors.IsForbidden(err) {
		t.Errorf("node a listing config maps: %v, want 403 Forbidden", err)
	}

	// What the volume manager does: list and watch one name.
	byName := func(name string) metav1.ListOptions {
		return metav1.ListOptions{FieldSelector: fields.OneTermEqualSelector("metadata.name", name).String()}
	}
	list, err := nodeA.CoreV1().Secrets(ns).List(ctx, byName("a-secret"))
	if err != nil || len(list.Items) != 1 {
		t.Errorf("node a listing its secret by name: %v items, %v", itemsOf(list), err)
	}
	w, err := nodeA.CoreV1().Secrets(ns).Watch(ctx, byName("a-secret"))
	if err != nil {
		t.Errorf("node a watching its secret by name: %v", err)
	} else {
		w.Stop()
	}
	if _, err := nodeA.CoreV1().Secrets(ns).List(ctx, byName("b-secret")); !apierrors.IsForbidden(err) {
		t.Errorf("node a listing node b's secret by name: %v, want 403 Forbidden", err)
	}

	// The networking parts' reads (skiff:node-network) and status writes.
	reads := map[string]func(context.Context, kubernetes.Interface) error{
		"endpointslices": func(ctx context.Context, c kubernetes.Interface) error {
			_, err := c.DiscoveryV1().EndpointSlices("").List(ctx, metav1.ListOptions{})
			return err
		},
		"networkpolicies": func(ctx context.Context, c kubernetes.Interface) error {
			_, err := c.NetworkingV1().NetworkPolicies("").List(ctx, metav1.ListOptions{})
			return err
		},
		"namespaces": func(ctx context.Context, c kubernetes.Interface) error {
			_, err := c.CoreV1().Namespaces().List(ctx, metav1.ListOptions{})
			return err
		},
		"ingressclasses": func(ctx context.Context, c kubernetes.Interface) error {
			_, err := c.NetworkingV1().IngressClasses().List(ctx, metav1.ListOptions{})
			return err
		},
		"ingress status": func(ctx context.Context, c kubernetes.Interface) error {
			cur, err := c.NetworkingV1().Ingresses(ns).Get(ctx, "site", metav1.GetOptions{})
			if err != nil {
				return err
			}
			cur = cur.DeepCopy()
			cur.Status.LoadBalancer.Ingress = []networkingv1.IngressLoadBalancerIngress{{IP: "192.0.2.1"}}
			_, err = c.NetworkingV1().Ingresses(ns).UpdateStatus(ctx, cur, metav1.UpdateOptions{})
			return err
		},
	}
	for what, f := range reads {
		if err := f(ctx, nodeA); err != nil {
			t.Errorf("node a: %s: %v", what, err)
		}
	}
	if err := nodeA.NetworkingV1().Ingresses(ns).Delete(ctx, "site", metav1.DeleteOptions{}); !apierrors.IsForbidden(err) {
		t.Errorf("node a deleting an ingress: %v, want 403 Forbidden", err)
	}
	if err := get("site-tls"); err != nil {
		t.Errorf("after a refused delete: %v", err)
	}
	// Once no ingress names it, the TLS secret is no node's business.
	if err := admin.NetworkingV1().Ingresses(ns).Delete(ctx, "site", metav1.DeleteOptions{}); err != nil {
		t.Fatal(err)
	}
	poll(t, "node a refused the TLS secret of a deleted ingress", func() error {
		if err := get("site-tls"); !apierrors.IsForbidden(err) {
			return fmt.Errorf("got %v, want 403 Forbidden", err)
		}
		return nil
	})
}

func itemsOf(l *corev1.SecretList) int {
	if l == nil {
		return 0
	}
	return len(l.Items)
}
