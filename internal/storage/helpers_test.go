package storage

import (
	"context"
	"fmt"
	goruntime "runtime"
	"sort"
	"strings"
	"testing"
	"time"

	clientv3 "go.etcd.io/etcd/client/v3"
	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/fields"
	"k8s.io/apimachinery/pkg/labels"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/apimachinery/pkg/watch"
	clientgoscheme "k8s.io/client-go/kubernetes/scheme"

	"github.com/skiff-dev/skiff/internal/etcd/etcdtest"
)

// podAttrs is the pod field set used in tests.
func podAttrs(obj runtime.Object) (labels.Set, fields.Set, error) {
	p, ok := obj.(*corev1.Pod)
	if !ok {
		return nil, nil, fmt.Errorf("not a pod: %T", obj)
	}
	return labels.Set(p.Labels), fields.Set{
		"metadata.name":      p.Name,
		"metadata.namespace": p.Namespace,
		"spec.nodeName":      p.Spec.NodeName,
		"status.phase":       string(p.Status.Phase),
	}, nil
}

// testConfig returns a pod store config on client under a per-test prefix.
func testConfig(t testing.TB, client *clientv3.Client) Config {
	scheme := runtime.NewScheme()
	if err := clientgoscheme.AddToScheme(scheme); err != nil {
		t.Fatal(err)
	}
	return Config{
		Client:      client,
		Prefix:      "/registry/" + strings.ReplaceAll(t.Name(), "/", "_") + "/pods/",
		Resource:    schema.GroupResource{Resource: "pods"},
		Codec:       ProtobufCodec(scheme, corev1.SchemeGroupVersion),
		NewFunc:     func() runtime.Object { return &corev1.Pod{} },
		NewListFunc: func() runtime.Object { return &corev1.PodList{} },
		Attrs:       podAttrs,
	}
}

// newTestStore starts an etcd (when client is nil) and a pod store whose
// cache stops with the test.
func newTestStore(t testing.TB, client *clientv3.Client, mod func(*Config)) (*Store, *clientv3.Client) {
	t.Helper()
	if client == nil {
		client = etcdtest.Start(t)
	}
	cfg := testConfig(t, client)
	if mod != nil {
		mod(&cfg)
	}
	ctx, cancel := context.WithCancel(context.Background())
	t.Cleanup(cancel)
	s, err := New(ctx, cfg)
	if err != nil {
		t.Fatalf("New: %v", err)
	}
	return s, client
}

func pod(ns, name string, lbls map[string]string, node string) *corev1.Pod {
	return &corev1.Pod{
		ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: name, Labels: lbls, UID: types.UID("uid-" + name)},
		Spec:       corev1.PodSpec{NodeName: node, Containers: []corev1.Container{{Name: "c", Image: "busybox"}}},
	}
}

func mustCreate(t testing.TB, s *Store, p *corev1.Pod) *corev1.Pod {
	t.Helper()
	key := p.Namespace + "/" + p.Name
	out, err := s.Create(context.Background(), key, p)
	if err != nil {
		t.Fatalf("Create %s: %v", key, err)
	}
	return out.(*corev1.Pod)
}

func rvOf(t testing.TB, obj runtime.Object) string {
	t.Helper()
	acc, err := meta.Accessor(obj)
	if err != nil {
		t.Fatal(err)
	}
	return acc.GetResourceVersion()
}

// names returns the sorted namespace/name of a list's items.
func names(t testing.TB, list runtime.Object) []string {
	t.Helper()
	items, err := meta.ExtractList(list)
	if err != nil {
		t.Fatal(err)
	}
	out := []string{}
	for _, it := range items {
		acc, _ := meta.Accessor(it)
		out = append(out, acc.GetNamespace()+"/"+acc.GetName())
	}
	sort.Strings(out)
	return out
}

// seen is one received watch event reduced to comparable fields.
type seen struct {
	Type watch.EventType
	Name string
	RV   string
	Note string // initial-events-end annotation, or the Status reason for ERROR
}

// next reads one event within a deadline; ok false when the channel closed.
func next(t testing.TB, w watch.Interface) (seen, bool) {
	t.Helper()
	select {
	case ev, ok := <-w.ResultChan():
		if !ok {
			return seen{}, false
		}
		if st, isStatus := ev.Object.(*metav1.Status); isStatus {
			return seen{Type: ev.Type, Note: string(st.Reason)}, true
		}
		acc, err := meta.Accessor(ev.Object)
		if err != nil {
			t.Fatalf("event object %T: %v", ev.Object, err)
		}
		return seen{Type: ev.Type, Name: acc.GetName(), RV: acc.GetResourceVersion(), Note: acc.GetAnnotations()[InitialEventsAnnotation]}, true
	case <-time.After(10 * time.Second):
		t.Fatal("no watch event within 10s")
	}
	return seen{}, false
}

// nextN reads n events.
func nextN(t testing.TB, w watch.Interface, n int) []seen {
	t.Helper()
	var out []seen
	for range n {
		ev, ok := next(t, w)
		if !ok {
			t.Fatalf("watch closed after %d of %d events: %v", len(out), n, out)
		}
		out = append(out, ev)
	}
	return out
}

// expectQuiet checks that no event arrives for a short while.
func expectQuiet(t testing.TB, w watch.Interface, d time.Duration) {
	t.Helper()
	select {
	case ev, ok := <-w.ResultChan():
		if ok {
			t.Fatalf("unexpected event %v %T", ev.Type, ev.Object)
		}
	case <-time.After(d):
	}
}

// eventually polls cond until it returns nil or the deadline passes.
func eventually(t testing.TB, d time.Duration, cond func() error) {
	t.Helper()
	deadline := time.Now().Add(d)
	for {
		err := cond()
		if err == nil {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("condition not met within %s: %v", d, err)
		}
		select {
		case <-time.After(20 * time.Millisecond):
		}
	}
}

func clientv3WithRev(rev int64) clientv3.OpOption { return clientv3.WithRev(rev) }

func runtimeEncode(s *Store, obj runtime.Object) ([]byte, error) { return runtime.Encode(s.codec, obj) }

func runtimeGOMAXPROCS() int { return goruntime.GOMAXPROCS(0) }
