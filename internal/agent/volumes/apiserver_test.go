package volumes

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"testing"
	"time"

	v1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes"

	"github.com/skiff-dev/skiff/internal/agent/cri"
	"github.com/skiff-dev/skiff/internal/testserver"
)

// TestAgainstAPIServer runs a pod's volumes and environment against the
// real API server: informer-backed reads, updates reaching a mounted
// config map, and the service account token source.
func TestAgainstAPIServer(t *testing.T) {
	t.Parallel()
	cs := kubernetes.NewForConfigOrDie(testserver.Start(t, testserver.Options{}))
	ctx := context.Background()
	ns := &v1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: "ns"}}
	if _, err := cs.CoreV1().Namespaces().Create(ctx, ns, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	cm := &v1.ConfigMap{ObjectMeta: metav1.ObjectMeta{Namespace: "ns", Name: "app"}, Data: map[string]string{"greeting": "hello"}}
	if _, err := cs.CoreV1().ConfigMaps("ns").Create(ctx, cm, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	sa := &v1.ServiceAccount{ObjectMeta: metav1.ObjectMeta{Namespace: "ns", Name: "builder"}}
	if _, err := cs.CoreV1().ServiceAccounts("ns").Create(ctx, sa, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	root := t.TempDir()
	m, err := New(Config{RootDir: root, Client: cs, NodeName: testNode})
	if err != nil {
		t.Fatal(err)
	}
	runCtx, cancel := context.WithCancel(ctx)
	done := make(chan error, 1)
	go func() { done <- m.Run(runCtx) }()
	t.Cleanup(func() {
		cancel()
		if err := <-done; err != nil {
			t.Errorf("Run: %v", err)
		}
		if err := unmountUnder(root); err != nil {
			t.Errorf("cleanup: %v", err)
		}
	})

	pod := testPod(v1.Volume{Name: "cfg", VolumeSource: v1.VolumeSource{ConfigMap: &v1.ConfigMapVolumeSource{LocalObjectReference: v1.LocalObjectReference{Name: "app"}}}})
	start := time.Now()
	paths, err := m.Setup(ctx, pod)
	if err != nil {
		t.Fatal(err)
	}
	t.Logf("first Setup (informer start and sync) took %v", time.Since(start))
	read := func() string {
		data, _ := os.ReadFile(filepath.Join(paths["cfg"], "greeting"))
		return string(data)
	}
	if got := read(); got != "hello" {
		t.Errorf("greeting = %q, want hello", got)
	}

	env, err := m.Env(ctx, pod, &v1.Container{Env: []v1.EnvVar{{Name: "G", ValueFrom: &v1.EnvVarSource{
		ConfigMapKeyRef: &v1.ConfigMapKeySelector{LocalObjectReference: v1.LocalObjectReference{Name: "app"}, Key: "greeting"}}}}})
	if err != nil {
		t.Fatal(err)
	}
	if len(env) == 0 || env[0] != (cri.EnvVar{Name: "G", Value: "hello"}) {
		t.Errorf("env = %v, want G=hello first", env)
	}
	foundK8s := false
	for _, e := range env {
		foundK8s = foundK8s || e.Name == "KUBERNETES_SERVICE_HOST"
	}
	if !foundK8s {
		t.Errorf("env = %v, want KUBERNETES_SERVICE_HOST", env)
	}

	cm.Data["greeting"] = "bonjour"
	if _, err := cs.CoreV1().ConfigMaps("ns").Update(ctx, cm, metav1.UpdateOptions{}); err != nil {
		t.Fatal(err)
	}
	poll(t, 10*time.Second, "the update reaches the volume", func() error {
		if _, err := m.Setup(ctx, pod); err != nil {
			return err
		}
		if got := read(); got != "bonjour" {
			return fmt.Errorf("greeting = %q", got)
		}
		return nil
	})

	// A config map created after the informer started is seen too.
	late := testPod(v1.Volume{Name: "late", VolumeSource: v1.VolumeSource{ConfigMap: &v1.ConfigMapVolumeSource{LocalObjectReference: v1.LocalObjectReference{Name: "late"}}}})
	late.UID = "uid-late"
	if _, err := m.Setup(ctx, late); err == nil || err.Error() != `volume "late": configmap "late" not found` {
		t.Fatalf("Setup before creation: %v", err)
	}
	if _, err := cs.CoreV1().ConfigMaps("ns").Create(ctx, &v1.ConfigMap{ObjectMeta: metav1.ObjectMeta{Namespace: "ns", Name: "late"}, Data: map[string]string{"k": "v"}}, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	poll(t, 10*time.Second, "the late config map", func() error {
		_, err := m.Setup(ctx, late)
		return err
	})

	// Service account tokens: served, or a clear error until issue 7.
	tokPod := testPod(v1.Volume{Name: "kube-api-access", VolumeSource: v1.VolumeSource{Projected: &v1.ProjectedVolumeSource{Sources: []v1.VolumeProjection{
		{ServiceAccountToken: &v1.ServiceAccountTokenProjection{Path: "token", ExpirationSeconds: ptr(int64(3607))}},
	}}}})
	tokPod.UID = "uid-token"
	tp, err := m.Setup(ctx, tokPod)
	switch {
	case errors.Is(err, ErrTokenAPIUnavailable):
		t.Logf("token subresource not served yet: %v", err)
	case err != nil:
		t.Fatalf("Setup with a token: %v", err)
	default:
		data, err := os.ReadFile(filepath.Join(tp["kube-api-access"], "token"))
		if err != nil || len(data) == 0 {
			t.Errorf("token file: %q, %v", data, err)
		}
	}

	if err := m.Teardown(ctx, pod.UID); err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(filepath.Join(root, "uid-1")); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("uid-1 after Teardown: %v", err)
	}
	if _, err := os.Stat(filepath.Join(root, "uid-late")); err != nil {
		t.Errorf("another pod's dir after Teardown of uid-1: %v", err)
	}
}

// TestAsNodeAgainstAPIServer runs the volume manager with a node's
// credential on the real API server, under the node authorizer: the
// config maps and secrets of a pod bound to the node are read (by name),
// updates still arrive by watch, a secret no pod on the node mounts is
// refused at once (not after the cache timeout), and teardown stops the
// watches.
func TestAsNodeAgainstAPIServer(t *testing.T) {
	t.Parallel()
	srv := testserver.StartServer(t, testserver.Options{})
	admin := testserver.Client(t, srv.Admin)
	node := testserver.Client(t, srv.ConfigFor(t, "system:node:"+testNode, "system:nodes"))
	ctx := t.Context()
	if _, err := admin.CoreV1().Namespaces().Create(ctx, &v1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: "ns"}}, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	cm := &v1.ConfigMap{ObjectMeta: metav1.ObjectMeta{Namespace: "ns", Name: "app"}, Data: map[string]string{"greeting": "hello"}}
	if _, err := admin.CoreV1().ConfigMaps("ns").Create(ctx, cm, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	for _, name := range []string{"db", "not-mine"} {
		s := &v1.Secret{ObjectMeta: metav1.ObjectMeta{Namespace: "ns", Name: name}, StringData: map[string]string{"pass": name + "-pw"}}
		if _, err := admin.CoreV1().Secrets("ns").Create(ctx, s, metav1.CreateOptions{}); err != nil {
			t.Fatal(err)
		}
	}
	pod := testPod(
		v1.Volume{Name: "cfg", VolumeSource: v1.VolumeSource{ConfigMap: &v1.ConfigMapVolumeSource{LocalObjectReference: v1.LocalObjectReference{Name: "app"}}}},
		v1.Volume{Name: "db", VolumeSource: v1.VolumeSource{Secret: &v1.SecretVolumeSource{SecretName: "db"}}},
	)
	pod.Spec.Containers[0].Image = "busybox"
	created, err := admin.CoreV1().Pods("ns").Create(ctx, pod, metav1.CreateOptions{})
	if err != nil {
		t.Fatal(err)
	}
	pod = created

	root := t.TempDir()
	m, err := New(Config{RootDir: root, Client: node, NodeName: testNode})
	if err != nil {
		t.Fatal(err)
	}
	runCtx, cancel := context.WithCancel(ctx)
	done := make(chan error, 1)
	go func() { done <- m.Run(runCtx) }()
	t.Cleanup(func() {
		cancel()
		<-done
		if err := unmountUnder(root); err != nil {
			t.Errorf("cleanup: %v", err)
		}
	})

	var paths map[string]string
	// The node authorizer learns of the pod from its own watch.
	poll(t, 20*time.Second, "Setup as the node", func() error {
		paths, err = m.Setup(ctx, pod)
		return err
	})
	read := func(vol, file string) string {
		data, _ := os.ReadFile(filepath.Join(paths[vol], file))
		return string(data)
	}
	if got := read("cfg", "greeting"); got != "hello" {
		t.Errorf("greeting = %q, want hello", got)
	}
	if got := read("db", "pass"); got != "db-pw" {
		t.Errorf("pass = %q, want db-pw", got)
	}
	env, err := m.Env(ctx, pod, &v1.Container{Env: []v1.EnvVar{{Name: "P", ValueFrom: &v1.EnvVarSource{
		SecretKeyRef: &v1.SecretKeySelector{LocalObjectReference: v1.LocalObjectReference{Name: "db"}, Key: "pass"}}}}})
	if err != nil || len(env) == 0 || env[0] != (cri.EnvVar{Name: "P", Value: "db-pw"}) {
		t.Errorf("Env = %v, %v; want P=db-pw first", env, err)
	}

	cm.Data["greeting"] = "bonjour"
	if _, err := admin.CoreV1().ConfigMaps("ns").Update(ctx, cm, metav1.UpdateOptions{}); err != nil {
		t.Fatal(err)
	}
	poll(t, 10*time.Second, "the update reaches the volume", func() error {
		if _, err := m.Setup(ctx, pod); err != nil {
			return err
		}
		if got := read("cfg", "greeting"); got != "bonjour" {
			return fmt.Errorf("greeting = %q", got)
		}
		return nil
	})

	// A pod the API server does not know on this node: its secret is
	// refused, and Setup says so without waiting out the cache timeout.
	stranger := testPod(v1.Volume{Name: "s", VolumeSource: v1.VolumeSource{Secret: &v1.SecretVolumeSource{SecretName: "not-mine"}}})
	stranger.UID = "uid-stranger"
	start := time.Now()
	_, err = m.Setup(ctx, stranger)
	if !apierrors.IsForbidden(err) {
		t.Errorf("Setup of a secret no pod on the node mounts: %v, want Forbidden", err)
	}
	if d := time.Since(start); d > cacheSyncTimeout/2 {
		t.Errorf("refusal took %v", d)
	}
	if err := m.Teardown(ctx, stranger.UID); err != nil {
		t.Fatal(err)
	}

	if err := m.Teardown(ctx, pod.UID); err != nil {
		t.Fatal(err)
	}
	if n := m.objects.watching(); n != 0 {
		t.Errorf("watching %d objects after teardown, want 0", n)
	}
}
