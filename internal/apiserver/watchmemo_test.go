package apiserver

import (
	"context"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/watch"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/rest"
)

func TestEventMemoEvictsOldest(t *testing.T) {
	t.Parallel()
	c := newEventMemo(2)
	a, b, d := &corev1.Pod{}, &corev1.Pod{}, &corev1.Pod{}
	c.put(eventKey{obj: a}, []byte("a"))
	c.put(eventKey{obj: b}, []byte("b"))
	c.put(eventKey{obj: a}, []byte("again")) // already there: kept as it was
	c.put(eventKey{obj: d}, []byte("d"))
	if _, ok := c.get(eventKey{obj: a}); ok {
		t.Error("the oldest encoding survived a full memo")
	}
	if got, ok := c.get(eventKey{obj: b}); !ok || string(got) != "b" {
		t.Errorf("b = %q, %v", got, ok)
	}
	if got, ok := c.get(eventKey{obj: d}); !ok || string(got) != "d" {
		t.Errorf("d = %q, %v", got, ok)
	}
	if _, ok := c.get(eventKey{obj: b, mediaType: "application/json"}); ok {
		t.Error("another media type found the same encoding")
	}
}

// Watchers of one change in the same format share one encoding, and each
// format decodes to the same object.
func TestWatchersShareEncodings(t *testing.T) {
	env := newTestEnv(t)
	ctx := context.Background()
	js := rest.CopyConfig(env.adminConfig)
	js.ContentType, js.AcceptContentTypes = "application/json", "application/json"
	pb := rest.CopyConfig(env.adminConfig)
	pb.ContentType = "application/vnd.kubernetes.protobuf"
	pb.AcceptContentTypes = "application/vnd.kubernetes.protobuf,application/json"
	var watchers []watch.Interface
	for _, cfg := range []*rest.Config{js, js, pb, pb} {
		cs, err := kubernetes.NewForConfig(cfg)
		if err != nil {
			t.Fatal(err)
		}
		w, err := cs.CoreV1().ConfigMaps("default").Watch(ctx, metav1.ListOptions{})
		if err != nil {
			t.Fatal(err)
		}
		defer w.Stop()
		watchers = append(watchers, w)
	}
	before := len(env.server.events.m)
	cs := env.clientset(t)
	if _, err := cs.CoreV1().ConfigMaps("default").Create(ctx, &corev1.ConfigMap{
		ObjectMeta: metav1.ObjectMeta{Name: "shared"}, Data: map[string]string{"k": "v"}}, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	for i, w := range watchers {
		select {
		case ev := <-w.ResultChan():
			cm, ok := ev.Object.(*corev1.ConfigMap)
			if ev.Type != watch.Added || !ok || cm.Name != "shared" || cm.Data["k"] != "v" {
				t.Errorf("watcher %d got %s %#v", i, ev.Type, ev.Object)
			}
		case <-time.After(10 * time.Second):
			t.Fatalf("watcher %d saw nothing", i)
		}
	}
	env.server.events.mu.Lock()
	added := len(env.server.events.m) - before
	env.server.events.mu.Unlock()
	if added != 2 {
		t.Errorf("four watchers in two formats left %d new encodings, want 2 (one per format)", added)
	}
}
