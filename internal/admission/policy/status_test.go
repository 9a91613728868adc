package policy

import (
	"context"
	"fmt"
	"log/slog"
	"sync/atomic"
	"testing"
	"time"

	admissionregistrationv1 "k8s.io/api/admissionregistration/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/client-go/informers"
	"k8s.io/client-go/kubernetes/fake"
	clienttesting "k8s.io/client-go/testing"
)

// waitFor polls cond until it holds or 10s pass, reporting its last error.
func waitFor(t *testing.T, cond func() error) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for {
		err := cond()
		if err == nil {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("timed out: %v", err)
		}
		time.Sleep(10 * time.Millisecond) // polling interval, not a wait for an event
	}
}

func TestRunStatus(t *testing.T) {
	t.Parallel()
	pol := vap("replicas", "true")
	pol.Generation = 3
	client := fake.NewClientset(pol)
	var conflicts atomic.Int32
	client.PrependReactor("update", "validatingadmissionpolicies", func(a clienttesting.Action) (bool, runtime.Object, error) {
		if a.GetSubresource() == "status" && conflicts.Add(1) == 1 {
			return true, nil, apierrors.NewConflict(schema.GroupResource{Group: "admissionregistration.k8s.io", Resource: "validatingadmissionpolicies"}, "replicas", fmt.Errorf("stale"))
		}
		return false, nil, nil
	})
	f := informers.NewSharedInformerFactory(client, 0)
	inf := f.Admissionregistration().V1().ValidatingAdmissionPolicies()
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	lister, informer := inf.Lister(), inf.Informer() // registered before f starts
	go func() {
		done <- RunStatus(ctx, client, lister, informer, slog.New(slog.NewTextHandler(t.Output(), nil)))
	}()
	f.StartWithContext(ctx)
	t.Cleanup(func() {
		cancel()
		if err := <-done; err != nil {
			t.Errorf("RunStatus: %v", err)
		}
		f.Shutdown()
	})

	check := func(gen int64) func() error {
		return func() error {
			got, err := client.AdmissionregistrationV1().ValidatingAdmissionPolicies().Get(ctx, "replicas", metav1.GetOptions{})
			if err != nil {
				return err
			}
			if got.Status.ObservedGeneration != gen || got.Status.TypeChecking == nil {
				return fmt.Errorf("status %+v, want observedGeneration %d and typeChecking set", got.Status, gen)
			}
			return nil
		}
	}
	waitFor(t, check(3))
	if n := conflicts.Load(); n < 2 {
		t.Errorf("got %d status updates, want a retry after the conflict", n)
	}

	// A new generation is observed again.
	cur, err := client.AdmissionregistrationV1().ValidatingAdmissionPolicies().Get(ctx, "replicas", metav1.GetOptions{})
	if err != nil {
		t.Fatal(err)
	}
	cur = cur.DeepCopy()
	cur.Generation = 4
	cur.Spec.Validations = append(cur.Spec.Validations, admissionregistrationv1.Validation{Expression: "false"})
	if _, err := client.AdmissionregistrationV1().ValidatingAdmissionPolicies().Update(ctx, cur, metav1.UpdateOptions{}); err != nil {
		t.Fatal(err)
	}
	waitFor(t, check(4))
}
