package pods

import (
	"context"
	"fmt"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	v1 "k8s.io/api/core/v1"
	nodev1 "k8s.io/api/node/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	nodelisters "k8s.io/client-go/listers/node/v1"
	"k8s.io/client-go/tools/cache"

	"github.com/skiff-dev/skiff/internal/agent/cri"
	"github.com/skiff-dev/skiff/internal/testserver"
)

// withRuntimeClasses gives e's Manager a RuntimeClass cache holding
// classes, as Run does with its informer, and returns the cache.
func (e *testEnv) withRuntimeClasses(t *testing.T, classes ...*nodev1.RuntimeClass) cache.Indexer {
	t.Helper()
	idx := cache.NewIndexer(cache.MetaNamespaceKeyFunc, cache.Indexers{})
	for _, rc := range classes {
		if err := idx.Add(rc); err != nil {
			t.Fatal(err)
		}
	}
	e.m.runtimeClasses = nodelisters.NewRuntimeClassLister(idx)
	return idx
}

func runtimeClass(name, handler string) *nodev1.RuntimeClass {
	return &nodev1.RuntimeClass{ObjectMeta: metav1.ObjectMeta{Name: name}, Handler: handler}
}

// TestRuntimeClassHandler: the sandbox is created with the handler of the
// pod's RuntimeClass; a missing class, or a handler the runtime does not
// have, leaves the pod without a sandbox and with a Warning event.
func TestRuntimeClassHandler(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name        string
		class       string // pod.spec.runtimeClassName; "" leaves it unset
		wantHandler string
		wantEvent   string // "" for a sandbox created without a Warning
	}{
		{name: "no class: the default handler"},
		{name: "class with handler runc", class: "runc-class", wantHandler: "runc"},
		{
			name: "missing class", class: "gvisor",
			wantEvent: `Warning FailedCreatePodSandBox Failed to create pod sandbox: runtimeclass.node.k8s.io "gvisor" not found`,
		},
		{
			name: "handler the runtime lacks", class: "kata",
			wantEvent: `Warning FailedCreatePodSandBox Failed to create pod sandbox: cri: running sandbox "ns/p": failed to get sandbox runtime: no runtime for "kata" is configured`,
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			e := newTestEnv(t, nil)
			e.withRuntimeClasses(t, runtimeClass("runc-class", "runc"), runtimeClass("kata", "kata"))
			pod := testPod("p", func(p *v1.Pod) {
				if tt.class != "" {
					p.Spec.RuntimeClassName = &tt.class
				}
			})
			e.m.storePod(pod)
			_, err := e.m.syncPod(context.Background(), pod.UID)
			events := e.drainEvents()
			sbs, lerr := e.rt.ListSandboxes(context.Background(), nil)
			if lerr != nil {
				t.Fatal(lerr)
			}
			if tt.wantEvent != "" {
				if err == nil {
					t.Errorf("sync: no error, want one (to be retried)")
				}
				if len(sbs) != 0 {
					t.Errorf("sandboxes = %+v, want none", sbs)
				}
				if !hasEvent(events, tt.wantEvent) {
					t.Errorf("events %q lack %q", events, tt.wantEvent)
				}
				if w := e.status.last(pod.UID).Waiting["main"]; w.Reason != reasonContainerCreating {
					t.Errorf("waiting = %+v, want %s", w, reasonContainerCreating)
				}
				return
			}
			if err != nil {
				t.Fatalf("sync: %v", err)
			}
			if len(sbs) != 1 || sbs[0].RuntimeHandler != tt.wantHandler {
				t.Fatalf("sandboxes = %+v, want one with handler %q", sbs, tt.wantHandler)
			}
			if diff := cmp.Diff([]string{"main/0 Running"}, e.containers(t)); diff != "" {
				t.Errorf("containers (-want +got):\n%s", diff)
			}
			if hasEvent(events, "Warning") {
				t.Errorf("unexpected warnings: %q", events)
			}
		})
	}
}

// TestRuntimeClassAppears: a pod whose class is missing gets its sandbox
// once the class reaches the cache, and the class's arrival enqueues it.
func TestRuntimeClassAppears(t *testing.T) {
	t.Parallel()
	e := newTestEnv(t, nil)
	idx := e.withRuntimeClasses(t)
	pod := testPod("p", func(p *v1.Pod) { p.Spec.RuntimeClassName = new("late") })
	other := testPod("q")
	e.m.storePod(pod)
	e.m.storePod(other)
	if _, err := e.m.syncPod(context.Background(), pod.UID); err == nil {
		t.Fatal("sync without the class: no error")
	}
	rc := runtimeClass("late", "runc")
	if err := idx.Add(rc); err != nil {
		t.Fatal(err)
	}
	e.m.runtimeClassAdded(rc)
	e.m.queue.mu.Lock()
	_, queued := e.m.queue.keys[pod.UID]
	_, otherQueued := e.m.queue.keys[other.UID]
	e.m.queue.mu.Unlock()
	if !queued || otherQueued {
		t.Errorf("after the class appeared: pod queued %v (want true), other pod queued %v (want false)", queued, otherQueued)
	}
	e.sync(t, pod)
	sbs, _ := e.rt.ListSandboxes(context.Background(), nil)
	if len(sbs) != 1 || sbs[0].RuntimeHandler != "runc" {
		t.Errorf("sandboxes = %+v, want one with handler runc", sbs)
	}
}

// TestRunWithRuntimeClass runs a Manager as the node (its credentials
// must let it read RuntimeClasses) against a real API server: a pod
// naming a class with handler runc gets a sandbox with that handler.
func TestRunWithRuntimeClass(t *testing.T) {
	t.Parallel()
	srv := testserver.StartServer(t, testserver.Options{})
	admin := testserver.Client(t, srv.Admin)
	node := testserver.Client(t, srv.ConfigFor(t, "system:node:node-1", "system:nodes"))
	ctx := t.Context()
	if _, err := admin.NodeV1().RuntimeClasses().Create(ctx, runtimeClass("runc-class", "runc"), metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	rt := cri.NewFake("busybox")
	runAgainstServer(t, node, rt, newRecordingStatus())

	pod := &v1.Pod{
		ObjectMeta: metav1.ObjectMeta{Name: "web", Namespace: "default"},
		Spec: v1.PodSpec{
			NodeName:         "node-1",
			RuntimeClassName: new("runc-class"),
			Containers:       []v1.Container{{Name: "main", Image: "busybox"}},
		},
	}
	if _, err := admin.CoreV1().Pods("default").Create(ctx, pod, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	poll(t, 10*time.Second, "sandbox with handler runc", func() error {
		sbs, err := rt.ListSandboxes(ctx, nil)
		if err != nil {
			return err
		}
		if len(sbs) != 1 || sbs[0].RuntimeHandler != "runc" {
			return fmt.Errorf("sandboxes %+v", sbs)
		}
		return nil
	})
}
