package testserver

import (
	"context"
	"testing"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
)

func TestStartServesTheAPI(t *testing.T) {
	t.Parallel()
	cfg := Start(t, Options{})
	ns, err := Client(t, cfg).CoreV1().Namespaces().Get(context.Background(), "default", metav1.GetOptions{})
	if err != nil {
		t.Fatalf("getting namespace default: %v", err)
	}
	if ns.Status.Phase != "Active" {
		t.Errorf("namespace default phase = %q, want Active", ns.Status.Phase)
	}
}
