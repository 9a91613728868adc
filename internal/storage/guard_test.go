package storage

import (
	"context"
	"errors"
	"strconv"
	"testing"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/runtime"
)

func TestCreateWithGuard(t *testing.T) {
	t.Parallel()
	s, _ := newTestStore(t, nil, nil)
	ctx := context.Background()
	anchor := mustCreate(t, s, pod("ns", "anchor", nil, ""))
	rev, err := strconv.ParseInt(anchor.ResourceVersion, 10, 64)
	if err != nil {
		t.Fatal(err)
	}
	held := Guard{Key: s.EtcdKey("ns/anchor"), ModRevision: rev}

	if _, err := s.Create(ctx, "ns/a", pod("ns", "a", nil, ""), held); err != nil {
		t.Fatalf("create with a guard that holds: %v", err)
	}
	if _, err := s.Create(ctx, "ns/a", pod("ns", "a", nil, ""), held); !apierrors.IsAlreadyExists(err) {
		t.Errorf("create of a taken key with a guard that holds: %v, want AlreadyExists", err)
	}

	// Change the guarded key: the guard no longer holds.
	if _, err := s.GuaranteedUpdate(ctx, "ns/anchor", false, func(cur runtime.Object) (runtime.Object, error) {
		p := cur.DeepCopyObject().(*corev1.Pod)
		p.Labels = map[string]string{"changed": "yes"}
		return p, nil
	}); err != nil {
		t.Fatalf("updating the guarded key: %v", err)
	}
	if _, err := s.Create(ctx, "ns/b", pod("ns", "b", nil, ""), held); !errors.Is(err, ErrGuardChanged) {
		t.Errorf("create with a stale guard: %v, want ErrGuardChanged", err)
	}
	if _, err := s.Get(ctx, "ns/b"); !apierrors.IsNotFound(err) {
		t.Errorf("after a refused guarded create, Get: %v, want NotFound", err)
	}
	// A taken key still reads as AlreadyExists, even with a stale guard.
	if _, err := s.Create(ctx, "ns/a", pod("ns", "a", nil, ""), held); !apierrors.IsAlreadyExists(err) {
		t.Errorf("create of a taken key with a stale guard: %v, want AlreadyExists", err)
	}
}
