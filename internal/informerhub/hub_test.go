package informerhub

import (
	"context"
	"errors"
	"strconv"
	"sync"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes/fake"
	"k8s.io/client-go/tools/cache"
)

// seen collects the names of the pods a handler was told about.
type seen struct {
	mu    sync.Mutex
	names map[string]bool
}

func (s *seen) handler() cache.ResourceEventHandlerFuncs {
	return cache.ResourceEventHandlerFuncs{AddFunc: func(obj any) {
		s.mu.Lock()
		defer s.mu.Unlock()
		if s.names == nil {
			s.names = map[string]bool{}
		}
		s.names[obj.(*corev1.Pod).Name] = true
	}}
}

func (s *seen) has(name string) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.names[name]
}

func createPod(t *testing.T, client *fake.Clientset, name string) {
	t.Helper()
	pod := &corev1.Pod{ObjectMeta: metav1.ObjectMeta{Namespace: "default", Name: name}}
	if _, err := client.CoreV1().Pods("default").Create(context.Background(), pod, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
}

func eventually(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(5 * time.Millisecond)
	}
}

func TestScopesShareInformersAndOutliveEachOther(t *testing.T) {
	hubCtx, stopHub := context.WithCancel(context.Background())
	defer stopHub()
	client := fake.NewClientset()
	hub := New(hubCtx, client, 0)

	// One component run: its context ends at once, as a lost lease would.
	a := hub.Scope()
	aPods := a.Core().V1().Pods().Informer()
	var aSeen seen
	if _, err := aPods.AddEventHandler(aSeen.handler()); err != nil {
		t.Fatal(err)
	}
	runA, stopA := context.WithCancel(context.Background())
	a.StartWithContext(runA)
	for typ, ok := range a.WaitForCacheSync(runA.Done()) {
		if !ok {
			t.Fatalf("%v did not sync", typ)
		}
	}
	createPod(t, client, "first")
	eventually(t, "the first component to see pod first", func() bool { return aSeen.has("first") })
	stopA()
	a.Shutdown()

	// Another component, started after: the same informer, still running.
	b := hub.Scope()
	bPods := b.Core().V1().Pods().Informer()
	if aPods.GetStore() != bPods.GetStore() {
		t.Fatal("two scopes got different pod caches")
	}
	var bSeen seen
	if _, err := bPods.AddEventHandler(bSeen.handler()); err != nil {
		t.Fatal(err)
	}
	b.StartWithContext(context.Background())
	createPod(t, client, "second")
	eventually(t, "the second component to see both pods", func() bool { return bSeen.has("first") && bSeen.has("second") })
	if aSeen.has("second") {
		t.Error("a handler of a shut-down scope was still called")
	}
	if _, err := aPods.AddEventHandler(aSeen.handler()); !errors.Is(err, errShutdown) {
		t.Errorf("adding a handler after Shutdown: err = %v, want errShutdown", err)
	}

	// Ending the hub's context stops the informers.
	stopHub()
	eventually(t, "the hub's informer to stop", bPods.IsStopped)
}

func TestIndexersOfTheSameNameAreShared(t *testing.T) {
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	client := fake.NewClientset()
	hub := New(ctx, client, 0)
	byNode := cache.Indexers{"test.spec.nodeName": func(obj any) ([]string, error) {
		return []string{obj.(*corev1.Pod).Spec.NodeName}, nil
	}}
	for range 2 { // two components, or two terms of one
		s := hub.Scope()
		inf := s.Core().V1().Pods().Informer()
		if err := inf.AddIndexers(byNode); err != nil {
			t.Fatalf("AddIndexers: %v", err)
		}
		s.StartWithContext(ctx)
		s.WaitForCacheSync(ctx.Done())
	}
	pod := &corev1.Pod{ObjectMeta: metav1.ObjectMeta{Namespace: "default", Name: "p"}, Spec: corev1.PodSpec{NodeName: "n1"}}
	if _, err := client.CoreV1().Pods("default").Create(ctx, pod, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	idx := hub.Scope().Core().V1().Pods().Informer().GetIndexer()
	eventually(t, "the pod in the shared index", func() bool {
		got, err := idx.ByIndex("test.spec.nodeName", "n1")
		return err == nil && len(got) == 1
	})
}

func TestShutdownRemovesGenericInformerHandlers(t *testing.T) {
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	client := fake.NewClientset()
	hub := New(ctx, client, 0)
	s := hub.Scope()
	g, err := s.ForResource(corev1.SchemeGroupVersion.WithResource("pods"))
	if err != nil {
		t.Fatal(err)
	}
	var got seen
	if _, err := g.Informer().AddEventHandler(got.handler()); err != nil {
		t.Fatal(err)
	}
	s.StartWithContext(ctx)
	s.WaitForCacheSync(ctx.Done())
	createPod(t, client, "before")
	eventually(t, "the generic informer's handler to see a pod", func() bool { return got.has("before") })
	s.Shutdown()

	// Another scope's handler sees the next pod; the removed one must not.
	other := hub.Scope()
	var later seen
	if _, err := other.Core().V1().Pods().Informer().AddEventHandler(later.handler()); err != nil {
		t.Fatal(err)
	}
	createPod(t, client, "after")
	eventually(t, "a live handler to see the next pod", func() bool { return later.has("after") })
	// ForResource wraps the informer anew: still one fanout for both.
	hub.mu.Lock()
	fanouts := len(hub.fanouts)
	hub.mu.Unlock()
	if fanouts != 1 {
		t.Errorf("%d fanouts for the pod informer, want 1", fanouts)
	}
	if got.has("after") {
		t.Error("the generic informer's handler outlived its scope")
	}
}

func TestRunStartsUnderTheHub(t *testing.T) {
	hubCtx, stopHub := context.WithCancel(context.Background())
	defer stopHub()
	client := fake.NewClientset()
	hub := New(hubCtx, client, 0)
	inf := hub.Scope().Core().V1().ConfigMaps().Informer()
	runCtx, stopRun := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { inf.RunWithContext(runCtx); close(done) }()
	eventually(t, "the informer to sync", inf.HasSynced)
	stopRun()
	<-done
	time.Sleep(50 * time.Millisecond)
	if inf.IsStopped() {
		t.Error("ending the caller's context stopped a hub informer")
	}
}

// mirror applies a handler's events to a map and records what would be
// a protocol error: an Add of a key it holds, an Update or Delete of one
// it does not.
type mirror struct {
	mu     sync.Mutex
	objs   map[string]*corev1.Pod
	errors []string
}

func (m *mirror) handler() cache.ResourceEventHandlerFuncs {
	key := func(obj any) string {
		k, _ := cache.DeletionHandlingMetaNamespaceKeyFunc(obj)
		return k
	}
	return cache.ResourceEventHandlerFuncs{
		AddFunc: func(obj any) {
			m.mu.Lock()
			defer m.mu.Unlock()
			if m.objs == nil {
				m.objs = map[string]*corev1.Pod{}
			}
			if _, ok := m.objs[key(obj)]; ok {
				m.errors = append(m.errors, "second add of "+key(obj))
			}
			m.objs[key(obj)] = obj.(*corev1.Pod)
		},
		UpdateFunc: func(_, obj any) {
			m.mu.Lock()
			defer m.mu.Unlock()
			if _, ok := m.objs[key(obj)]; !ok {
				m.errors = append(m.errors, "update before add of "+key(obj))
			}
			m.objs[key(obj)] = obj.(*corev1.Pod)
		},
		DeleteFunc: func(obj any) {
			m.mu.Lock()
			defer m.mu.Unlock()
			if _, ok := m.objs[key(obj)]; !ok {
				m.errors = append(m.errors, "delete before add of "+key(obj))
			}
			delete(m.objs, key(obj))
		},
	}
}

// TestJoiningMidStreamSeesEachObjectOnce adds handlers while pods are
// created, updated and deleted: each must end up with exactly the cache's
// pods, having been told of each once, in order.
func TestJoiningMidStreamSeesEachObjectOnce(t *testing.T) {
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	client := fake.NewClientset()
	hub := New(ctx, client, 0)
	first := hub.Scope()
	inf := first.Core().V1().Pods().Informer()
	var early mirror
	if _, err := inf.AddEventHandler(early.handler()); err != nil {
		t.Fatal(err)
	}
	first.StartWithContext(ctx)

	const n = 200
	done := make(chan struct{})
	go func() {
		defer close(done)
		pods := client.CoreV1().Pods("default")
		for i := range n {
			pod := &corev1.Pod{ObjectMeta: metav1.ObjectMeta{Namespace: "default", Name: "p" + strconv.Itoa(i)}}
			if _, err := pods.Create(ctx, pod, metav1.CreateOptions{}); err != nil {
				t.Error(err)
				return
			}
			if i%3 == 0 {
				pod.Labels = map[string]string{"touched": "yes"}
				if _, err := pods.Update(ctx, pod, metav1.UpdateOptions{}); err != nil {
					t.Error(err)
					return
				}
			}
			if i%5 == 0 {
				if err := pods.Delete(ctx, pod.Name, metav1.DeleteOptions{}); err != nil {
					t.Error(err)
					return
				}
			}
		}
	}()
	var late []*mirror
	var regs []cache.ResourceEventHandlerRegistration
	for range 20 {
		m := &mirror{}
		reg, err := hub.Scope().Core().V1().Pods().Informer().AddEventHandler(m.handler())
		if err != nil {
			t.Fatal(err)
		}
		late, regs = append(late, m), append(regs, reg)
		time.Sleep(time.Millisecond)
	}
	<-done
	// The fake clientset's watch can miss an event, so the informer's
	// cache is the reference, not the count of pods left.
	same := func(m *mirror) bool {
		m.mu.Lock()
		defer m.mu.Unlock()
		keys := inf.GetStore().ListKeys()
		if len(keys) != len(m.objs) {
			return false
		}
		for _, k := range keys {
			obj, _, _ := inf.GetStore().GetByKey(k)
			if m.objs[k] != obj {
				return false
			}
		}
		return true
	}
	for i, m := range append(late, &early) {
		deadline := time.Now().Add(10 * time.Second)
		for !same(m) {
			if time.Now().After(deadline) {
				t.Fatalf("handler %d holds %d pods, the cache %d", i, len(m.objs), len(inf.GetStore().List()))
			}
			time.Sleep(5 * time.Millisecond)
		}
		m.mu.Lock()
		if len(m.errors) > 0 {
			t.Errorf("handler %d: %v", i, m.errors)
		}
		m.mu.Unlock()
	}
	// All of them joined one fanout: the informer has one listener.
	hub.mu.Lock()
	fanouts := len(hub.fanouts)
	hub.mu.Unlock()
	if fanouts != 1 {
		t.Errorf("%d fanouts for one informer", fanouts)
	}
	for i, reg := range regs {
		eventually(t, "a late handler to report synced", reg.HasSynced)
		if i == 0 {
			select {
			case <-reg.HasSyncedChecker().Done():
			default:
				t.Error("HasSynced but its checker is not done")
			}
		}
	}
}
