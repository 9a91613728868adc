package podstatus

import (
	"context"
	"fmt"
	"log/slog"
	"net/http"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	v1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/rest"

	"github.com/skiff-dev/skiff/internal/agent/cri"
	"github.com/skiff-dev/skiff/internal/testserver"
)

// countingTransport counts status writes.
type countingTransport struct {
	next   http.RoundTripper
	writes *atomic.Int64
}

func (c countingTransport) RoundTrip(r *http.Request) (*http.Response, error) {
	if r.Method == http.MethodPut && strings.HasSuffix(r.URL.Path, "/status") {
		c.writes.Add(1)
	}
	return c.next.RoundTrip(r)
}

type tlogWriter struct{ t *testing.T }

func (w tlogWriter) Write(p []byte) (int, error) {
	w.t.Log(strings.TrimSpace(string(p)))
	return len(p), nil
}

// poll calls f until it returns nil or the deadline passes.
func poll(t *testing.T, what string, f func() error) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for {
		err := f()
		if err == nil {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("%s: %v", what, err)
		}
		time.Sleep(5 * time.Millisecond)
	}
}

func TestWriter(t *testing.T) {
	cfg := testserver.Start(t, testserver.Options{})
	admin := kubernetes.NewForConfigOrDie(cfg)
	var writes atomic.Int64
	wcfg := rest.CopyConfig(cfg)
	wcfg.WrapTransport = func(rt http.RoundTripper) http.RoundTripper { return countingTransport{rt, &writes} }
	client := kubernetes.NewForConfigOrDie(wcfg)

	ctx, cancel := context.WithCancel(context.Background())
	w := NewWriter(client, slog.New(slog.NewTextHandler(tlogWriter{t}, &slog.HandlerOptions{Level: slog.LevelDebug})))
	done := make(chan error, 1)
	go func() { done <- w.Run(ctx) }()
	t.Cleanup(func() {
		cancel()
		if err := <-done; err != nil {
			t.Errorf("Run: %v", err)
		}
	})

	n := 0
	newPod := func(t *testing.T) *v1.Pod {
		t.Helper()
		n++
		p := &v1.Pod{
			ObjectMeta: metav1.ObjectMeta{Name: fmt.Sprintf("p%d", n), Namespace: "default"},
			Spec: v1.PodSpec{NodeName: "n1", RestartPolicy: v1.RestartPolicyAlways,
				Containers: []v1.Container{{Name: "app", Image: "busybox"}}},
		}
		p, err := admin.CoreV1().Pods("default").Create(context.Background(), p, metav1.CreateOptions{})
		if err != nil {
			t.Fatal(err)
		}
		return p
	}
	get := func(t *testing.T, p *v1.Pod) *v1.Pod {
		t.Helper()
		got, err := admin.CoreV1().Pods(p.Namespace).Get(context.Background(), p.Name, metav1.GetOptions{})
		if err != nil {
			t.Fatal(err)
		}
		return got
	}
	start := time.Now() // one clock reading: equal inputs compute equal status
	runningStatus := func(p *v1.Pod, ip string) v1.PodStatus {
		obs := observed(readySandbox(), running("app", 0))
		obs.Sandbox.IP = ip
		return Compute(p, obs, nil, start)
	}
	waitFor := func(t *testing.T, p *v1.Pod, what string, ok func(*v1.Pod) bool) *v1.Pod {
		t.Helper()
		var got *v1.Pod
		poll(t, what, func() error {
			got = get(t, p)
			if !ok(got) {
				return fmt.Errorf("status is %+v", got.Status)
			}
			return nil
		})
		return got
	}
	settle := func(t *testing.T) {
		t.Helper()
		poll(t, "queue to drain", func() error {
			if l := w.queue.Len(); l != 0 {
				return fmt.Errorf("%d queued", l)
			}
			return nil
		})
	}

	t.Run("status lands, unchanged status is not written again", func(t *testing.T) {
		p := newPod(t)
		before := writes.Load()
		w.Set(p, runningStatus(p, "10.0.0.1"))
		got := waitFor(t, p, "status written", func(p *v1.Pod) bool { return p.Status.PodIP == "10.0.0.1" })
		if got.Status.Phase != v1.PodRunning {
			t.Errorf("phase %s, want Running", got.Status.Phase)
		}
		settle(t)
		if d := writes.Load() - before; d != 1 {
			t.Errorf("%d writes, want 1", d)
		}
		// The same status computed from the stored pod, and again from
		// the stale pod (as a lagging informer would give), is no write.
		w.Set(got, runningStatus(got, "10.0.0.1"))
		w.Set(p, runningStatus(p, "10.0.0.1"))
		// Computed later from the stale pod, the start time and the
		// transition times differ: they stay as written.
		later := Compute(p, observed(&cri.Sandbox{ID: "sb1", State: cri.SandboxReady, IP: "10.0.0.1"}, running("app", 0)), nil, start.Add(time.Hour))
		w.Set(p, later)
		settle(t)
		if d := writes.Load() - before; d != 1 {
			t.Errorf("%d writes after unchanged Sets, want 1", d)
		}
		if final := get(t, p); !final.Status.StartTime.Equal(got.Status.StartTime) {
			t.Errorf("startTime changed from %v to %v", got.Status.StartTime, final.Status.StartTime)
		}
	})

	t.Run("bursts coalesce", func(t *testing.T) {
		p := newPod(t)
		before := writes.Load()
		for i := range 50 {
			w.Set(p, runningStatus(p, fmt.Sprintf("10.0.1.%d", i+1)))
		}
		wctx, wcancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer wcancel()
		if err := w.Wait(wctx, p.UID); err != nil {
			t.Fatalf("Wait: %v", err)
		}
		if ip := get(t, p).Status.PodIP; ip != "10.0.1.50" {
			t.Errorf("after Wait podIP is %q, want the last one Set", ip)
		}
		settle(t)
		if d := writes.Load() - before; d >= 50 || d < 1 {
			t.Errorf("%d writes for 50 Sets, want fewer", d)
		}
	})

	t.Run("conflict is retried on a fresh read", func(t *testing.T) {
		p := newPod(t)
		moved := p.DeepCopy()
		moved.Labels = map[string]string{"x": "y"}
		if _, err := admin.CoreV1().Pods(p.Namespace).Update(context.Background(), moved, metav1.UpdateOptions{}); err != nil {
			t.Fatal(err)
		}
		// A condition another component owns appears meanwhile; the
		// writer keeps it.
		fresh := get(t, p)
		fresh.Status.Conditions = append(fresh.Status.Conditions, v1.PodCondition{Type: "example.com/gate", Status: v1.ConditionTrue})
		if _, err := admin.CoreV1().Pods(p.Namespace).UpdateStatus(context.Background(), fresh, metav1.UpdateOptions{}); err != nil {
			t.Fatal(err)
		}
		w.Set(p, runningStatus(p, "10.0.2.1")) // p has the old resourceVersion
		got := waitFor(t, p, "status written", func(p *v1.Pod) bool { return p.Status.PodIP == "10.0.2.1" })
		if findCondition(got.Status.Conditions, "example.com/gate") == nil {
			t.Errorf("condition of another owner lost: %+v", got.Status.Conditions)
		}
		if got.Labels["x"] != "y" {
			t.Errorf("labels changed: %v", got.Labels)
		}
	})

	t.Run("a terminal phase is kept", func(t *testing.T) {
		p := newPod(t)
		failed := get(t, p)
		failed.Status.Phase, failed.Status.Reason = v1.PodFailed, "Evicted"
		if _, err := admin.CoreV1().Pods(p.Namespace).UpdateStatus(context.Background(), failed, metav1.UpdateOptions{}); err != nil {
			t.Fatal(err)
		}
		w.Set(p, runningStatus(p, "10.0.3.1"))
		got := waitFor(t, p, "status written", func(p *v1.Pod) bool { return p.Status.PodIP == "10.0.3.1" })
		if got.Status.Phase != v1.PodFailed {
			t.Errorf("phase %s, want Failed", got.Status.Phase)
		}
	})

	t.Run("pods that are gone are dropped", func(t *testing.T) {
		p := newPod(t)
		if err := admin.CoreV1().Pods(p.Namespace).Delete(context.Background(), p.Name, *metav1.NewDeleteOptions(0)); err != nil {
			t.Fatal(err)
		}
		poll(t, "pod deleted", func() error {
			_, err := admin.CoreV1().Pods(p.Namespace).Get(context.Background(), p.Name, metav1.GetOptions{})
			if err == nil {
				return fmt.Errorf("still there")
			}
			return nil
		})
		w.Set(p, runningStatus(p, "10.0.4.1"))
		poll(t, "entry dropped", func() error {
			w.mu.Lock()
			defer w.mu.Unlock()
			if _, ok := w.pods[p.UID]; ok {
				return fmt.Errorf("still tracked")
			}
			return nil
		})
	})

	t.Run("forget", func(t *testing.T) {
		p := newPod(t)
		w.Set(p, runningStatus(p, "10.0.5.1"))
		if _, ok := w.Status(p.UID); !ok {
			t.Error("Status: no status after Set")
		}
		w.Forget(p.UID)
		if _, ok := w.Status(p.UID); ok {
			t.Error("Status: a status after Forget")
		}
	})
	settle(t)
	if n := w.tracked(); n > 5 {
		t.Errorf("%d pods tracked", n)
	}
}
