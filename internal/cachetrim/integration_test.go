package cachetrim_test

import (
	"context"
	"testing"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/informers"
	"k8s.io/client-go/kubernetes"

	"github.com/skiff-dev/skiff/internal/cachetrim"
	"github.com/skiff-dev/skiff/internal/testserver"
)

// TestUpdateFromTrimmedCopyKeepsManagedFields checks the claim of the
// package doc against the real API server: an object read from a trimmed
// informer cache and updated keeps the managed fields it had, and gains
// the updater's entry.
func TestUpdateFromTrimmedCopyKeepsManagedFields(t *testing.T) {
	cfg := testserver.Start(t, testserver.Options{})
	client := kubernetes.NewForConfigOrDie(cfg)
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	if _, err := client.CoreV1().ConfigMaps("default").Create(ctx, &corev1.ConfigMap{
		ObjectMeta: metav1.ObjectMeta{Name: "cm"}, Data: map[string]string{"a": "1"},
	}, metav1.CreateOptions{FieldManager: "creator"}); err != nil {
		t.Fatalf("creating: %v", err)
	}
	factory := informers.NewSharedInformerFactoryWithOptions(client, 0, cachetrim.Option())
	lister := factory.Core().V1().ConfigMaps().Lister()
	factory.StartWithContext(ctx)
	defer factory.Shutdown()
	defer cancel() // before Shutdown, which waits for the informers to stop
	factory.WaitForCacheSync(ctx.Done())
	cached, err := lister.ConfigMaps("default").Get("cm")
	if err != nil {
		t.Fatalf("reading the cache: %v", err)
	}
	if cached.ManagedFields != nil {
		t.Fatalf("the cached copy has managed fields: %v", cached.ManagedFields)
	}
	cm := cached.DeepCopy()
	cm.Data["b"] = "2"
	out, err := client.CoreV1().ConfigMaps("default").Update(ctx, cm, metav1.UpdateOptions{FieldManager: "updater"})
	if err != nil {
		t.Fatalf("updating from the trimmed copy: %v", err)
	}
	managers := map[string]bool{}
	for _, e := range out.ManagedFields {
		managers[e.Manager] = true
	}
	if !managers["creator"] || !managers["updater"] {
		t.Errorf("managed fields after the update name %v, want creator and updater", managers)
	}
}
