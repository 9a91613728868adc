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
