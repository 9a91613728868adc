package controllermanager

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/fields"
	"k8s.io/client-go/discovery"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/metadata"
	"k8s.io/client-go/rest"

	"github.com/skiff-dev/skiff/internal/controller"
	"github.com/skiff-dev/skiff/internal/testserver"
)

func TestSelectControllers(t *testing.T) {
	tests := []struct {
		name    string
		in      []string
		want    []string
		wantErr string
	}{
		{name: "nil is all", in: nil, want: Names()},
		{name: "star is all", in: []string{"*"}, want: Names()},
		{name: "one", in: []string{"replicaset"}, want: []string{"replicaset"}},
		{name: "keeps start order", in: []string{"replicationcontroller", "namespace"}, want: []string{"namespace", "replicationcontroller"}},
		{name: "all but one", in: []string{"*", "-namespace"}, want: Names()[1:]},
		{name: "only disabling selects nothing", in: []string{"-namespace"}, want: nil},
		{name: "unknown", in: []string{"replicaset", "nope"}, wantErr: `unknown controllers ["nope"]`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := selectControllers(tt.in)
			if tt.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
					t.Fatalf("error = %v, want one containing %q", err, tt.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatalf("unexpected error: %v", err)
			}
			var names []string
			for _, e := range got {
				names = append(names, e.name)
			}
			if diff := cmp.Diff(tt.want, names); diff != "" {
				t.Errorf("selected (-want +got):\n%s", diff)
			}
		})
	}
}

func TestNamesAreUnique(t *testing.T) {
	seen := map[string]bool{}
	for _, e := range controllers() {
		if seen[e.name] || e.component == "" || e.workers < 1 || e.build == nil {
			t.Errorf("bad entry %q (duplicate, or missing component, workers or constructor)", e.name)
		}
		seen[e.name] = true
	}
}

type stubRunner struct {
	meta metadata.Interface
	disc discovery.DiscoveryInterface
}

func (stubRunner) Run(context.Context, int) error { return nil }

func TestWithMetadata(t *testing.T) {
	cfg := &rest.Config{Host: "https://127.0.0.1:1"}
	build := withMetadata(func(_ controller.Deps, meta metadata.Interface, disc discovery.DiscoveryInterface) stubRunner {
		return stubRunner{meta, disc}
	})
	r, err := build(env{deps: controller.Deps{Client: kubernetes.NewForConfigOrDie(cfg)}, config: cfg})
	if err != nil {
		t.Fatalf("build: %v", err)
	}
	if s := r.(stubRunner); s.meta == nil || s.disc == nil {
		t.Errorf("constructor got metadata %v, discovery %v; want both", s.meta, s.disc)
	}
}

// lockedBuffer collects log output from several goroutines.
type lockedBuffer struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (b *lockedBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.Write(p)
}

func (b *lockedBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.String()
}

// manager is one Run in the background.
type runningManager struct {
	logs   *lockedBuffer
	cancel context.CancelFunc
	done   chan error
}

func startManager(t *testing.T, cfg Config) *runningManager {
	t.Helper()
	m := &runningManager{logs: &lockedBuffer{}, done: make(chan error, 1)}
	cfg.Logger = slog.New(slog.NewTextHandler(io.MultiWriter(m.logs, tWriter{t, cfg.Identity}), &slog.HandlerOptions{Level: slog.LevelDebug}))
	ctx, cancel := context.WithCancel(context.Background())
	m.cancel = cancel
	go func() { m.done <- Run(ctx, cfg) }()
	t.Cleanup(func() {
		cancel()
		select {
		case <-m.done:
		case <-time.After(30 * time.Second):
			t.Errorf("manager %s did not stop", cfg.Identity)
		}
	})
	return m
}

// stop cancels the manager and returns what Run returned.
func (m *runningManager) stop(t *testing.T) error {
	t.Helper()
	m.cancel()
	select {
	case err := <-m.done:
		m.done <- err // for the cleanup
		return err
	case <-time.After(30 * time.Second):
		t.Fatalf("manager did not stop within 30s")
		return nil
	}
}

type tWriter struct {
	t    *testing.T
	name string
}

func (w tWriter) Write(p []byte) (int, error) {
	w.t.Log(w.name, strings.TrimRight(string(p), "\n"))
	return len(p), nil
}

func poll(t *testing.T, timeout time.Duration, what string, f func() error) {
	t.Helper()
	deadline := time.Now().Add(timeout)
	for {
		err := f()
		if err == nil {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("%s: not done within %v: %v", what, timeout, err)
		}
		<-time.After(20 * time.Millisecond)
	}
}

// expectReplicas creates a one-replica ReplicaSet in a new namespace and
// waits for its pod, proving that some manager runs the controller.
func expectReplicas(t *testing.T, client kubernetes.Interface, ns string) {
	t.Helper()
	ctx := context.Background()
	if _, err := client.CoreV1().Namespaces().Create(ctx, &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: ns}}, metav1.CreateOptions{}); err != nil {
		t.Fatalf("creating namespace: %v", err)
	}
	one := int32(1)
	labels := map[string]string{"app": "web"}
	_, err := client.AppsV1().ReplicaSets(ns).Create(ctx, &appsv1.ReplicaSet{
		ObjectMeta: metav1.ObjectMeta{Name: "web", Namespace: ns},
		Spec: appsv1.ReplicaSetSpec{
			Replicas: &one,
			Selector: &metav1.LabelSelector{MatchLabels: labels},
			Template: corev1.PodTemplateSpec{
				ObjectMeta: metav1.ObjectMeta{Labels: labels},
				Spec:       corev1.PodSpec{Containers: []corev1.Container{{Name: "c", Image: "busybox"}}},
			},
		},
	}, metav1.CreateOptions{})
	if err != nil {
		t.Fatalf("creating replicaset: %v", err)
	}
	poll(t, 20*time.Second, "pod of "+ns+"/web", func() error {
		pods, err := client.CoreV1().Pods(ns).List(ctx, metav1.ListOptions{})
		if err != nil {
			return err
		}
		if len(pods.Items) != 1 {
			return fmt.Errorf("%d pods", len(pods.Items))
		}
		return nil
	})
}

func leaseHolder(client kubernetes.Interface) (string, error) {
	lease, err := client.CoordinationV1().Leases(LeaseNamespace).Get(context.Background(), LeaseName, metav1.GetOptions{})
	if err != nil {
		return "", err
	}
	if lease.Spec.HolderIdentity == nil {
		return "", nil
	}
	return *lease.Spec.HolderIdentity, nil
}

func waitHolder(t *testing.T, client kubernetes.Interface, want string) {
	t.Helper()
	poll(t, 20*time.Second, "lease held by "+want, func() error {
		got, err := leaseHolder(client)
		if err != nil {
			return err
		}
		if got != want {
			return fmt.Errorf("held by %q", got)
		}
		return nil
	})
}

func TestRunWithoutLeaderElection(t *testing.T) {
	cfg := testserver.Start(t, testserver.Options{})
	client := kubernetes.NewForConfigOrDie(cfg)
	m := startManager(t, Config{RestConfig: cfg, Identity: "solo", Controllers: []string{"replicaset"}})
	expectReplicas(t, client, "solo")
	poll(t, 10*time.Second, "SuccessfulCreate event", func() error {
		evs, err := client.CoreV1().Events("solo").List(context.Background(), metav1.ListOptions{
			FieldSelector: fields.OneTermEqualSelector("reason", "SuccessfulCreate").String(),
		})
		if err != nil {
			return err
		}
		if len(evs.Items) != 1 || evs.Items[0].Source.Component != "replicaset-controller" {
			return fmt.Errorf("events: %+v", evs.Items)
		}
		return nil
	})
	if _, err := leaseHolder(client); err == nil {
		t.Errorf("a lease exists without leader election")
	}
	if err := m.stop(t); err != nil {
		t.Errorf("Run returned %v, want nil", err)
	}
}

func TestLeaderElectionHandsOver(t *testing.T) {
	cfg := testserver.Start(t, testserver.Options{})
	client := kubernetes.NewForConfigOrDie(cfg)
	first := startManager(t, Config{RestConfig: cfg, LeaderElection: true, Identity: "first"})
	waitHolder(t, client, "first")
	expectReplicas(t, client, "one")

	second := startManager(t, Config{RestConfig: cfg, LeaderElection: true, Identity: "second"})
	// The second manager keeps waiting while the first renews: watch it for
	// longer than a retry period (2s plus jitter).
	until := time.Now().Add(3 * time.Second)
	for time.Now().Before(until) {
		if holder, err := leaseHolder(client); err != nil || holder != "first" {
			t.Fatalf("lease held by %q (err %v) while the first manager runs", holder, err)
		}
		if strings.Contains(second.logs.String(), "controllers started") {
			t.Fatalf("second manager started its controllers while the first holds the lease")
		}
		select {
		case err := <-second.done:
			t.Fatalf("second manager returned while waiting: %v", err)
		case <-time.After(100 * time.Millisecond):
		}
	}

	if err := first.stop(t); err != nil {
		t.Fatalf("first manager returned %v, want nil", err)
	}
	// Released on stop, so the second takes over within a retry period,
	// not after the 15s lease expiry.
	start := time.Now()
	waitHolder(t, client, "second")
	if d := time.Since(start); d > 10*time.Second {
		t.Errorf("takeover took %v", d)
	}
	expectReplicas(t, client, "two")
	if err := second.stop(t); err != nil {
		t.Fatalf("second manager returned %v, want nil", err)
	}
}

func TestLosingTheLeaseStopsTheManager(t *testing.T) {
	cfg := testserver.Start(t, testserver.Options{})
	client := kubernetes.NewForConfigOrDie(cfg)
	m := startManager(t, Config{
		RestConfig: rest.CopyConfig(cfg), LeaderElection: true, Identity: "victim",
		Controllers: []string{"replicaset"},
		lease:       &leaseTimings{duration: 3 * time.Second, renew: 2 * time.Second, retry: 200 * time.Millisecond},
	})
	waitHolder(t, client, "victim")
	poll(t, 10*time.Second, "controllers started", func() error {
		if !strings.Contains(m.logs.String(), "controllers started") {
			return errors.New("not yet")
		}
		return nil
	})

	// Someone else takes the lease over (as after a network partition).
	poll(t, 10*time.Second, "stealing the lease", func() error {
		lease, err := client.CoordinationV1().Leases(LeaseNamespace).Get(context.Background(), LeaseName, metav1.GetOptions{})
		if err != nil {
			return err
		}
		thief, long := "thief", int32(600)
		lease.Spec.HolderIdentity = &thief
		lease.Spec.LeaseDurationSeconds = &long
		lease.Spec.RenewTime = &metav1.MicroTime{Time: time.Now()}
		_, err = client.CoordinationV1().Leases(LeaseNamespace).Update(context.Background(), lease, metav1.UpdateOptions{})
		return err
	})
	select {
	case err := <-m.done:
		m.done <- err
		if !errors.Is(err, ErrLeaseLost) {
			t.Fatalf("Run returned %v, want ErrLeaseLost", err)
		}
	case <-time.After(20 * time.Second):
		t.Fatalf("manager still running 20s after losing its lease")
	}
	if holder, err := leaseHolder(client); err != nil || holder != "thief" {
		t.Errorf("lease held by %q (err %v), want thief's untouched", holder, err)
	}
}
