package apiserver

import (
	"context"
	"fmt"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/informers"
	"k8s.io/client-go/tools/cache"
)

// TestInformer runs a client-go shared informer, which (client-go >= 1.35)
// syncs with a streaming watch-list: sendInitialEvents plus the
// initial-events-end bookmark.
func TestInformer(t *testing.T) {
	env := newTestEnv(t)
	cs := env.clientset(t)
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	cms := cs.CoreV1().ConfigMaps("default")
	if _, err := cms.Create(ctx, &corev1.ConfigMap{ObjectMeta: metav1.ObjectMeta{Name: "before"}}, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	factory := informers.NewSharedInformerFactory(cs, 0)
	inf := factory.Core().V1().ConfigMaps().Informer()
	factory.StartWithContext(ctx)
	syncCtx, syncCancel := context.WithTimeout(ctx, 20*time.Second)
	defer syncCancel()
	if !cache.WaitForCacheSync(syncCtx.Done(), inf.HasSynced) {
		t.Fatal("informer did not sync")
	}
	lister := factory.Core().V1().ConfigMaps().Lister()
	if _, err := lister.ConfigMaps("default").Get("before"); err != nil {
		t.Fatalf("synced cache lacks the existing object: %v", err)
	}
	if _, err := cms.Create(ctx, &corev1.ConfigMap{ObjectMeta: metav1.ObjectMeta{Name: "after"}}, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	poll(t, 10*time.Second, func() error {
		if _, err := lister.ConfigMaps("default").Get("after"); err != nil {
			return fmt.Errorf("cache: %w", err)
		}
		return nil
	})
	cancel()
	factory.Shutdown()
}
