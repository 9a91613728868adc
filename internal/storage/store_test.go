package storage

import (
	"bytes"
	"context"
	"strconv"
	"sync"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/runtime"
)

func TestCreateGetDelete(t *testing.T) {
	t.Parallel()
	s, _ := newTestStore(t, nil, nil)
	ctx := context.Background()

	created := mustCreate(t, s, pod("ns", "a", nil, ""))
	if created.ResourceVersion == "" {
		t.Fatal("created object has no resourceVersion")
	}
	got, err := s.Get(ctx, "ns/a")
	if err != nil {
		t.Fatalf("Get: %v", err)
	}
	g := got.(*corev1.Pod)
	if diff := cmp.Diff(created.ResourceVersion, g.ResourceVersion); diff != "" {
		t.Errorf("Get resourceVersion (-create +get):\n%s", diff)
	}
	if g.APIVersion != "v1" || g.Kind != "Pod" {
		t.Errorf("Get apiVersion/kind = %q/%q, want v1/Pod", g.APIVersion, g.Kind)
	}

	_, err = s.Create(ctx, "ns/a", pod("ns", "a", nil, ""))
	if !apierrors.IsAlreadyExists(err) {
		t.Errorf("second Create error = %v, want AlreadyExists", err)
	}

	for _, tc := range []struct {
		name string
		pre  *Preconditions
		ok   func(error) bool
	}{
		{"wrong uid", &Preconditions{UID: "other"}, apierrors.IsConflict},
		{"stale rv", &Preconditions{ResourceVersion: "1"}, apierrors.IsConflict},
		{"missing", nil, nil},
		{"match", &Preconditions{UID: "uid-a", ResourceVersion: created.ResourceVersion}, func(err error) bool { return err == nil }},
		{"gone", nil, apierrors.IsNotFound},
	} {
		t.Run(tc.name, func(t *testing.T) {
			key := "ns/a"
			if tc.name == "missing" {
				_, err := s.Delete(ctx, "ns/nothing", nil, nil)
				if !apierrors.IsNotFound(err) {
					t.Errorf("Delete of a missing key = %v, want NotFound", err)
				}
				return
			}
			out, err := s.Delete(ctx, key, tc.pre, nil)
			if !tc.ok(err) {
				t.Fatalf("Delete error = %v", err)
			}
			if err == nil {
				rv, _ := strconv.Atoi(rvOf(t, out))
				crv, _ := strconv.Atoi(created.ResourceVersion)
				if rv <= crv {
					t.Errorf("deleted object RV %d, want the delete revision > %d", rv, crv)
				}
			}
		})
	}
	if _, err := s.Get(ctx, "ns/a"); !apierrors.IsNotFound(err) {
		t.Errorf("Get after delete = %v, want NotFound", err)
	}
}

func TestDeleteValidateVeto(t *testing.T) {
	t.Parallel()
	s, _ := newTestStore(t, nil, nil)
	mustCreate(t, s, pod("ns", "a", nil, ""))
	veto := apierrors.NewBadRequest("no")
	if _, err := s.Delete(context.Background(), "ns/a", nil, func(runtime.Object) error { return veto }); err != veto {
		t.Fatalf("Delete with veto = %v, want the veto", err)
	}
	if _, err := s.Get(context.Background(), "ns/a"); err != nil {
		t.Fatalf("object gone after vetoed delete: %v", err)
	}
}

func TestGuaranteedUpdate(t *testing.T) {
	t.Parallel()
	s, _ := newTestStore(t, nil, nil)
	ctx := context.Background()
	created := mustCreate(t, s, pod("ns", "a", nil, ""))

	setNode := func(node, rv string) UpdateFunc {
		return func(cur runtime.Object) (runtime.Object, error) {
			p := cur.(*corev1.Pod)
			p.Spec.NodeName = node
			p.ResourceVersion = rv
			return p, nil
		}
	}
	out, err := s.GuaranteedUpdate(ctx, "ns/a", false, setNode("n1", created.ResourceVersion))
	if err != nil {
		t.Fatalf("update with current RV: %v", err)
	}
	rv1 := rvOf(t, out)

	_, err = s.GuaranteedUpdate(ctx, "ns/a", false, setNode("n2", created.ResourceVersion))
	if !apierrors.IsConflict(err) {
		t.Fatalf("update with stale RV = %v, want Conflict", err)
	}
	const wantMsg = `Operation cannot be fulfilled on pods "a": the object has been modified; please apply your changes to the latest version and try again`
	if diff := cmp.Diff(wantMsg, err.Error()); diff != "" {
		t.Errorf("conflict message (-want +got):\n%s", diff)
	}

	// Writing the same object again is a no-op: no new revision.
	out, err = s.GuaranteedUpdate(ctx, "ns/a", false, setNode("n1", ""))
	if err != nil {
		t.Fatalf("no-op update: %v", err)
	}
	if got := rvOf(t, out); got != rv1 {
		t.Errorf("no-op update moved RV %s -> %s", rv1, got)
	}

	if _, err := s.GuaranteedUpdate(ctx, "ns/missing", false, setNode("n1", "")); !apierrors.IsNotFound(err) {
		t.Errorf("update of missing key = %v, want NotFound", err)
	}
	out, err = s.GuaranteedUpdate(ctx, "ns/new", true, func(cur runtime.Object) (runtime.Object, error) {
		if cur != nil {
			t.Errorf("create-on-update got current %v", cur)
		}
		return pod("ns", "new", nil, ""), nil
	})
	if err != nil || rvOf(t, out) == "" {
		t.Fatalf("create-on-update = %v, %v", out, err)
	}
}

func TestGuaranteedUpdateRaceConverges(t *testing.T) {
	t.Parallel()
	s, _ := newTestStore(t, nil, nil)
	ctx := context.Background()
	mustCreate(t, s, pod("ns", "counter", nil, ""))

	const workers, each = 16, 10
	var wg sync.WaitGroup
	for range workers {
		wg.Go(func() {
			for range each {
				_, err := s.GuaranteedUpdate(ctx, "ns/counter", false, func(cur runtime.Object) (runtime.Object, error) {
					p := cur.(*corev1.Pod)
					n, _ := strconv.Atoi(p.Annotations["n"])
					if p.Annotations == nil {
						p.Annotations = map[string]string{}
					}
					p.Annotations["n"] = strconv.Itoa(n + 1)
					return p, nil
				})
				if err != nil {
					t.Errorf("update: %v", err)
				}
			}
		})
	}
	wg.Wait()
	got, err := s.Get(ctx, "ns/counter")
	if err != nil {
		t.Fatal(err)
	}
	if diff := cmp.Diff(strconv.Itoa(workers*each), got.(*corev1.Pod).Annotations["n"]); diff != "" {
		t.Errorf("counter (-want +got):\n%s", diff)
	}
}

// TestCachedStateDigest checks the no-op detection from the watch cache:
// a cached state stands for the bytes stored in etcd by their digest, so
// writing them again is recognised without re-encoding the cached copy.
func TestCachedStateDigest(t *testing.T) {
	t.Parallel()
	s, client := newTestStore(t, nil, nil)
	ctx := context.Background()
	created := mustCreate(t, s, pod("ns", "a", map[string]string{"app": "web"}, ""))
	rev, err := strconv.ParseInt(created.ResourceVersion, 10, 64)
	if err != nil {
		t.Fatal(err)
	}
	deadline := time.Now().Add(10 * time.Second)
	var st *state
	for {
		if st, err = s.initialState(ctx, "ns/a", true); err != nil {
			t.Fatalf("initialState: %v", err)
		}
		if st.stale && st.rev == rev {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("the watch cache never held revision %d", rev)
		}
		time.Sleep(10 * time.Millisecond)
	}
	if !st.hasSum || st.data != nil {
		t.Fatalf("cached state: hasSum %v, data %d bytes; want the digest only", st.hasSum, len(st.data))
	}
	resp, err := client.Get(ctx, s.prefix+"ns/a")
	if err != nil || len(resp.Kvs) != 1 {
		t.Fatalf("reading etcd: %v, %d kvs", err, len(resp.Kvs))
	}
	stored := resp.Kvs[0].Value
	if !st.stores(stored) {
		t.Error("the cached state's digest does not match the bytes in etcd")
	}
	if st.stores(append(bytes.Clone(stored), 0)) {
		t.Error("the cached state's digest matches other bytes")
	}
	// What GuaranteedUpdate writes for the unchanged object is those bytes.
	acc := st.obj.(*corev1.Pod)
	acc.ResourceVersion = ""
	data, err := runtime.Encode(s.codec, acc)
	if err != nil {
		t.Fatal(err)
	}
	if !st.stores(data) {
		t.Error("re-encoding the cached object does not give the stored bytes")
	}
}
