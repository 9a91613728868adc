package replicaset

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"sort"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/fields"
	"k8s.io/client-go/informers"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/kubernetes/scheme"
	typedcorev1 "k8s.io/client-go/kubernetes/typed/core/v1"
	"k8s.io/client-go/rest"
	"k8s.io/client-go/tools/record"

	"github.com/skiff-dev/skiff/internal/controller"
	"github.com/skiff-dev/skiff/internal/testserver"
)

// startControllers runs a fresh API server and both controllers on it
// for the rest of the test, and returns a client.
func startControllers(t *testing.T) kubernetes.Interface {
	t.Helper()
	cfg := testserver.Start(t, testserver.Options{})
	return startControllersWith(t, kubernetes.NewForConfigOrDie(cfg))
}

// startControllersWith runs both controllers with client.
func startControllersWith(t *testing.T, client kubernetes.Interface) kubernetes.Interface {
	t.Helper()
	factory := informers.NewSharedInformerFactory(client, 0)
	broadcaster := record.NewBroadcaster()
	broadcaster.StartRecordingToSink(&typedcorev1.EventSinkImpl{Interface: client.CoreV1().Events("")})
	logger := slog.New(slog.NewTextHandler(tWriter{t}, &slog.HandlerOptions{Level: slog.LevelDebug}))
	deps := func(component string) controller.Deps {
		return controller.Deps{
			Client:    client,
			Informers: factory,
			Recorder:  broadcaster.NewRecorder(scheme.Scheme, corev1.EventSource{Component: component}),
			Logger:    logger.With("component", component),
		}
	}
	rs := New(deps("replicaset-controller"))
	rc := NewReplicationController(deps("replication-controller"))
	ctx, cancel := context.WithCancel(context.Background())
	factory.StartWithContext(ctx)
	done := make(chan error, 2)
	go func() { done <- rs.Run(ctx, 2) }()
	go func() { done <- rc.Run(ctx, 2) }()
	t.Cleanup(func() {
		cancel()
		for range 2 {
			if err := <-done; err != nil {
				t.Errorf("controller: %v", err)
			}
		}
		factory.Shutdown()
		broadcaster.Shutdown()
	})
	return client
}

// tWriter sends log lines to t.Log.
type tWriter struct{ t *testing.T }

func (w tWriter) Write(p []byte) (int, error) {
	w.t.Log(strings.TrimRight(string(p), "\n"))
	return len(p), nil
}

// poll calls f until it returns nil, failing the test with f's last error
// after timeout.
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

func newNamespace(t *testing.T, client kubernetes.Interface, name string) string {
	t.Helper()
	_, err := client.CoreV1().Namespaces().Create(context.Background(),
		&corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: name}}, metav1.CreateOptions{})
	if err != nil {
		t.Fatalf("creating namespace: %v", err)
	}
	return name
}

func podTemplate(app string) corev1.PodTemplateSpec {
	return corev1.PodTemplateSpec{
		ObjectMeta: metav1.ObjectMeta{Labels: map[string]string{"app": app}, Annotations: map[string]string{"note": "from-template"}},
		Spec:       corev1.PodSpec{Containers: []corev1.Container{{Name: "c", Image: "busybox"}}},
	}
}

func createRS(t *testing.T, client kubernetes.Interface, ns, name string, replicas int32, mutate ...func(*appsv1.ReplicaSet)) *appsv1.ReplicaSet {
	t.Helper()
	rs := &appsv1.ReplicaSet{
		ObjectMeta: metav1.ObjectMeta{Name: name, Namespace: ns},
		Spec: appsv1.ReplicaSetSpec{
			Replicas: &replicas,
			Selector: &metav1.LabelSelector{MatchLabels: map[string]string{"app": name}},
			Template: podTemplate(name),
		},
	}
	for _, m := range mutate {
		m(rs)
	}
	rs, err := client.AppsV1().ReplicaSets(ns).Create(context.Background(), rs, metav1.CreateOptions{})
	if err != nil {
		t.Fatalf("creating replicaset: %v", err)
	}
	return rs
}

func scaleRS(t *testing.T, client kubernetes.Interface, ns, name string, replicas int32) {
	t.Helper()
	ctx := context.Background()
	poll(t, 10*time.Second, "scaling "+name, func() error {
		scale, err := client.AppsV1().ReplicaSets(ns).GetScale(ctx, name, metav1.GetOptions{})
		if err != nil {
			return err
		}
		scale.Spec.Replicas = replicas
		_, err = client.AppsV1().ReplicaSets(ns).UpdateScale(ctx, name, scale, metav1.UpdateOptions{})
		return err
	})
}

// activePods lists the namespace's pods that are not being deleted,
// sorted by name.
func activePods(client kubernetes.Interface, ns string) ([]corev1.Pod, error) {
	list, err := client.CoreV1().Pods(ns).List(context.Background(), metav1.ListOptions{})
	if err != nil {
		return nil, err
	}
	var out []corev1.Pod
	for _, p := range list.Items {
		if p.DeletionTimestamp == nil {
			out = append(out, p)
		}
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Name < out[j].Name })
	return out, nil
}

func waitPods(t *testing.T, client kubernetes.Interface, ns string, n int) []corev1.Pod {
	t.Helper()
	var pods []corev1.Pod
	poll(t, 20*time.Second, fmt.Sprintf("%d pods in %s", n, ns), func() error {
		var err error
		pods, err = activePods(client, ns)
		if err != nil {
			return err
		}
		if len(pods) != n {
			return fmt.Errorf("%d pods", len(pods))
		}
		return nil
	})
	return pods
}

// markPod makes the pod look as a node would report it.
func markPod(t *testing.T, client kubernetes.Interface, p corev1.Pod, node string, phase corev1.PodPhase, ready bool) {
	t.Helper()
	ctx := context.Background()
	if node != "" {
		err := client.CoreV1().Pods(p.Namespace).Bind(ctx, &corev1.Binding{
			ObjectMeta: metav1.ObjectMeta{Name: p.Name, Namespace: p.Namespace},
			Target:     corev1.ObjectReference{Kind: "Node", Name: node},
		}, metav1.CreateOptions{})
		if err != nil {
			t.Fatalf("binding %s: %v", p.Name, err)
		}
	}
	poll(t, 10*time.Second, "status of "+p.Name, func() error {
		cur, err := client.CoreV1().Pods(p.Namespace).Get(ctx, p.Name, metav1.GetOptions{})
		if err != nil {
			return err
		}
		cur.Status.Phase = phase
		status := corev1.ConditionFalse
		if ready {
			status = corev1.ConditionTrue
		}
		cur.Status.Conditions = []corev1.PodCondition{{Type: corev1.PodReady, Status: status, LastTransitionTime: metav1.Now()}}
		_, err = client.CoreV1().Pods(p.Namespace).UpdateStatus(ctx, cur, metav1.UpdateOptions{})
		return err
	})
}

func rsStatus(t *testing.T, client kubernetes.Interface, ns, name string, want appsv1.ReplicaSetStatus) {
	t.Helper()
	poll(t, 20*time.Second, "status of replicaset "+name, func() error {
		rs, err := client.AppsV1().ReplicaSets(ns).Get(context.Background(), name, metav1.GetOptions{})
		if err != nil {
			return err
		}
		want.ObservedGeneration = rs.Generation
		if diff := cmp.Diff(want, rs.Status); diff != "" {
			return fmt.Errorf("status (-want +got):\n%s", diff)
		}
		return nil
	})
}

func ptr[T any](v T) *T { return &v }

func events(t *testing.T, client kubernetes.Interface, ns, reason string) []corev1.Event {
	t.Helper()
	list, err := client.CoreV1().Events(ns).List(context.Background(), metav1.ListOptions{
		FieldSelector: fields.OneTermEqualSelector("reason", reason).String(),
	})
	if err != nil {
		t.Fatalf("listing events: %v", err)
	}
	return list.Items
}

func TestReplicaSet(t *testing.T) {
	client := startControllers(t)
	ctx := context.Background()

	t.Run("scale up creates owned pods", func(t *testing.T) {
		t.Parallel()
		ns := newNamespace(t, client, "scale-up")
		rs := createRS(t, client, ns, "web", 3)
		pods := waitPods(t, client, ns, 3)
		for _, p := range pods {
			if !strings.HasPrefix(p.Name, "web-") {
				t.Errorf("pod name %q does not start with web-", p.Name)
			}
			want := []metav1.OwnerReference{{APIVersion: "apps/v1", Kind: "ReplicaSet", Name: "web", UID: rs.UID,
				Controller: ptr(true), BlockOwnerDeletion: ptr(true)}}
			if diff := cmp.Diff(want, p.OwnerReferences); diff != "" {
				t.Errorf("owner references of %s (-want +got):\n%s", p.Name, diff)
			}
			if p.Labels["app"] != "web" || p.Annotations["note"] != "from-template" {
				t.Errorf("pod %s: labels %v annotations %v, want the template's", p.Name, p.Labels, p.Annotations)
			}
		}
		rsStatus(t, client, ns, "web", appsv1.ReplicaSetStatus{Replicas: 3, FullyLabeledReplicas: 3, TerminatingReplicas: ptr(int32(0))})
		// Settled: still exactly three (no double creation).
		if pods, err := activePods(client, ns); err != nil || len(pods) != 3 {
			t.Fatalf("after settling: %d pods, err %v", len(pods), err)
		}
		poll(t, 10*time.Second, "SuccessfulCreate events", func() error {
			evs := events(t, client, ns, "SuccessfulCreate")
			var n int32
			for _, e := range evs {
				if e.Source.Component != "replicaset-controller" || e.InvolvedObject.Name != "web" {
					return fmt.Errorf("unexpected event %+v", e)
				}
				n += max(e.Count, 1)
			}
			if n != 3 {
				return fmt.Errorf("%d SuccessfulCreate events", n)
			}
			return nil
		})
	})

	t.Run("a deleted pod is replaced", func(t *testing.T) {
		t.Parallel()
		ns := newNamespace(t, client, "replace")
		createRS(t, client, ns, "web", 2)
		pods := waitPods(t, client, ns, 2)
		if err := client.CoreV1().Pods(ns).Delete(ctx, pods[0].Name, metav1.DeleteOptions{}); err != nil {
			t.Fatalf("deleting pod: %v", err)
		}
		poll(t, 20*time.Second, "replacement", func() error {
			now, err := activePods(client, ns)
			if err != nil {
				return err
			}
			if len(now) != 2 {
				return fmt.Errorf("%d pods", len(now))
			}
			for _, p := range now {
				if p.Name == pods[0].Name {
					return fmt.Errorf("deleted pod %s still there", p.Name)
				}
			}
			return nil
		})
	})

	t.Run("scale down deletes the least valuable", func(t *testing.T) {
		t.Parallel()
		ns := newNamespace(t, client, "scale-down")
		createRS(t, client, ns, "web", 4)
		pods := waitPods(t, client, ns, 4)
		markPod(t, client, pods[0], "node-1", corev1.PodRunning, true)  // most valuable
		markPod(t, client, pods[1], "node-2", corev1.PodRunning, false) // running, not ready
		markPod(t, client, pods[2], "node-3", corev1.PodPending, false) // assigned, pending
		// pods[3]: unassigned, pending: least valuable
		rsStatus(t, client, ns, "web", appsv1.ReplicaSetStatus{Replicas: 4, FullyLabeledReplicas: 4,
			ReadyReplicas: 1, AvailableReplicas: 1, TerminatingReplicas: ptr(int32(0))})

		scaleRS(t, client, ns, "web", 2)
		got := waitPods(t, client, ns, 2)
		if diff := cmp.Diff([]string{pods[0].Name, pods[1].Name}, []string{got[0].Name, got[1].Name}); diff != "" {
			t.Errorf("kept pods (-want +got):\n%s", diff)
		}
		scaleRS(t, client, ns, "web", 1)
		got = waitPods(t, client, ns, 1)
		if got[0].Name != pods[0].Name {
			t.Errorf("kept %s, want the ready one %s", got[0].Name, pods[0].Name)
		}
		// The two assigned pods deleted wait for their node (there is none)
		// to finish them; the unassigned one went at once.
		rsStatus(t, client, ns, "web", appsv1.ReplicaSetStatus{Replicas: 1, FullyLabeledReplicas: 1,
			ReadyReplicas: 1, AvailableReplicas: 1, TerminatingReplicas: ptr(int32(2))})
		if evs := events(t, client, ns, "SuccessfulDelete"); len(evs) == 0 {
			t.Errorf("no SuccessfulDelete events")
		}
	})

	t.Run("orphans are adopted and non-matching pods released", func(t *testing.T) {
		t.Parallel()
		ns := newNamespace(t, client, "adopt")
		// The orphan is assigned to a node: when the controller's cache
		// sees it only after creating two pods of its own, it scales
		// down by deleting an unassigned pod first (upstream's ranking),
		// so the orphan is kept either way.
		orphan := &corev1.Pod{
			ObjectMeta: metav1.ObjectMeta{Name: "orphan", Namespace: ns, Labels: map[string]string{"app": "web"}},
			Spec:       podTemplate("web").Spec,
		}
		orphan.Spec.NodeName = "node-a"
		if _, err := client.CoreV1().Pods(ns).Create(ctx, orphan, metav1.CreateOptions{}); err != nil {
			t.Fatalf("creating orphan: %v", err)
		}
		rs := createRS(t, client, ns, "web", 2)
		// The adoption patch may land just after the second pod exists.
		var pods []corev1.Pod
		poll(t, 20*time.Second, "two pods controlled by the replicaset", func() error {
			var err error
			if pods, err = activePods(client, ns); err != nil {
				return err
			}
			if len(pods) != 2 {
				return fmt.Errorf("%d pods", len(pods))
			}
			for _, p := range pods {
				if ref := metav1.GetControllerOf(&p); ref == nil || ref.UID != rs.UID {
					return fmt.Errorf("pod %s not controlled by the replicaset: %v", p.Name, p.OwnerReferences)
				}
			}
			return nil
		})
		var found bool
		for _, p := range pods {
			found = found || p.Name == "orphan"
		}
		if !found {
			t.Fatalf("orphan not among the pods (deleted instead of adopted?)")
		}

		// Relabel the orphan: it no longer matches and is released, and a
		// replacement is created.
		poll(t, 10*time.Second, "relabel", func() error {
			p, err := client.CoreV1().Pods(ns).Get(ctx, "orphan", metav1.GetOptions{})
			if err != nil {
				return err
			}
			p.Labels = map[string]string{"app": "other"}
			_, err = client.CoreV1().Pods(ns).Update(ctx, p, metav1.UpdateOptions{})
			return err
		})
		waitPods(t, client, ns, 3)
		poll(t, 20*time.Second, "release", func() error {
			p, err := client.CoreV1().Pods(ns).Get(ctx, "orphan", metav1.GetOptions{})
			if err != nil {
				return err
			}
			if len(p.OwnerReferences) != 0 {
				return fmt.Errorf("still owned: %v", p.OwnerReferences)
			}
			return nil
		})
		rsStatus(t, client, ns, "web", appsv1.ReplicaSetStatus{Replicas: 2, FullyLabeledReplicas: 2, TerminatingReplicas: ptr(int32(0))})
	})

	t.Run("pods of another controller are left alone", func(t *testing.T) {
		t.Parallel()
		ns := newNamespace(t, client, "foreign")
		foreign := &corev1.Pod{
			ObjectMeta: metav1.ObjectMeta{Name: "foreign", Namespace: ns, Labels: map[string]string{"app": "web"},
				OwnerReferences: []metav1.OwnerReference{{APIVersion: "apps/v1", Kind: "StatefulSet", Name: "db",
					UID: "1234", Controller: ptr(true)}}},
			Spec: podTemplate("web").Spec,
		}
		if _, err := client.CoreV1().Pods(ns).Create(ctx, foreign, metav1.CreateOptions{}); err != nil {
			t.Fatalf("creating pod: %v", err)
		}
		createRS(t, client, ns, "web", 1)
		pods := waitPods(t, client, ns, 2)
		for _, p := range pods {
			if p.Name == "foreign" && metav1.GetControllerOf(&p).Kind != "StatefulSet" {
				t.Errorf("foreign pod taken: %v", p.OwnerReferences)
			}
		}
		rsStatus(t, client, ns, "web", appsv1.ReplicaSetStatus{Replicas: 1, FullyLabeledReplicas: 1, TerminatingReplicas: ptr(int32(0))})
	})

	t.Run("status follows readiness and minReadySeconds", func(t *testing.T) {
		t.Parallel()
		ns := newNamespace(t, client, "status")
		createRS(t, client, ns, "web", 2, func(rs *appsv1.ReplicaSet) {
			rs.Spec.MinReadySeconds = 2
			rs.Spec.Template.Labels["extra"] = "x"
		})
		pods := waitPods(t, client, ns, 2)
		rsStatus(t, client, ns, "web", appsv1.ReplicaSetStatus{Replicas: 2, FullyLabeledReplicas: 2, TerminatingReplicas: ptr(int32(0))})
		for _, p := range pods {
			markPod(t, client, p, "node-1", corev1.PodRunning, true)
		}
		// Ready at once; available only after minReadySeconds, which the
		// controller waits for on its own (no pod event comes then).
		rsStatus(t, client, ns, "web", appsv1.ReplicaSetStatus{Replicas: 2, FullyLabeledReplicas: 2,
			ReadyReplicas: 2, AvailableReplicas: 2, TerminatingReplicas: ptr(int32(0))})

		// A pod without the template's extra label is counted, not fully labelled.
		poll(t, 10*time.Second, "relabel", func() error {
			p, err := client.CoreV1().Pods(ns).Get(ctx, pods[0].Name, metav1.GetOptions{})
			if err != nil {
				return err
			}
			delete(p.Labels, "extra")
			_, err = client.CoreV1().Pods(ns).Update(ctx, p, metav1.UpdateOptions{})
			return err
		})
		rsStatus(t, client, ns, "web", appsv1.ReplicaSetStatus{Replicas: 2, FullyLabeledReplicas: 1,
			ReadyReplicas: 2, AvailableReplicas: 2, TerminatingReplicas: ptr(int32(0))})
	})

	t.Run("a terminating pod is replaced and reported", func(t *testing.T) {
		t.Parallel()
		ns := newNamespace(t, client, "terminating")
		createRS(t, client, ns, "web", 1)
		pods := waitPods(t, client, ns, 1)
		// A finalizer keeps the pod terminating after its deletion.
		poll(t, 10*time.Second, "finalizer", func() error {
			p, err := client.CoreV1().Pods(ns).Get(ctx, pods[0].Name, metav1.GetOptions{})
			if err != nil {
				return err
			}
			p.Finalizers = []string{"skiff.dev/test"}
			_, err = client.CoreV1().Pods(ns).Update(ctx, p, metav1.UpdateOptions{})
			return err
		})
		if err := client.CoreV1().Pods(ns).Delete(ctx, pods[0].Name, metav1.DeleteOptions{GracePeriodSeconds: ptr(int64(0))}); err != nil {
			t.Fatalf("deleting: %v", err)
		}
		waitPods(t, client, ns, 1)
		rsStatus(t, client, ns, "web", appsv1.ReplicaSetStatus{Replicas: 1, FullyLabeledReplicas: 1, TerminatingReplicas: ptr(int32(1))})
		poll(t, 10*time.Second, "finalizer removal", func() error {
			p, err := client.CoreV1().Pods(ns).Get(ctx, pods[0].Name, metav1.GetOptions{})
			if apierrors.IsNotFound(err) {
				return nil
			}
			if err != nil {
				return err
			}
			p.Finalizers = nil
			_, err = client.CoreV1().Pods(ns).Update(ctx, p, metav1.UpdateOptions{})
			return err
		})
		rsStatus(t, client, ns, "web", appsv1.ReplicaSetStatus{Replicas: 1, FullyLabeledReplicas: 1, TerminatingReplicas: ptr(int32(0))})
	})
}

func TestReplicationController(t *testing.T) {
	client := startControllers(t)
	ctx := context.Background()
	ns := newNamespace(t, client, "rc")
	rc := &corev1.ReplicationController{
		ObjectMeta: metav1.ObjectMeta{Name: "web", Namespace: ns},
		Spec: corev1.ReplicationControllerSpec{
			Replicas: ptr(int32(3)),
			Selector: map[string]string{"app": "web"},
			Template: ptr(podTemplate("web")),
		},
	}
	rc, err := client.CoreV1().ReplicationControllers(ns).Create(ctx, rc, metav1.CreateOptions{})
	if err != nil {
		t.Fatalf("creating replicationcontroller: %v", err)
	}
	pods := waitPods(t, client, ns, 3)
	for _, p := range pods {
		want := []metav1.OwnerReference{{APIVersion: "v1", Kind: "ReplicationController", Name: "web", UID: rc.UID,
			Controller: ptr(true), BlockOwnerDeletion: ptr(true)}}
		if diff := cmp.Diff(want, p.OwnerReferences); diff != "" {
			t.Errorf("owner references of %s (-want +got):\n%s", p.Name, diff)
		}
	}
	markPod(t, client, pods[1], "node-1", corev1.PodRunning, true)

	poll(t, 10*time.Second, "scale down", func() error {
		cur, err := client.CoreV1().ReplicationControllers(ns).Get(ctx, "web", metav1.GetOptions{})
		if err != nil {
			return err
		}
		cur.Spec.Replicas = ptr(int32(1))
		_, err = client.CoreV1().ReplicationControllers(ns).Update(ctx, cur, metav1.UpdateOptions{})
		return err
	})
	got := waitPods(t, client, ns, 1)
	if got[0].Name != pods[1].Name {
		t.Errorf("kept %s, want the ready one %s", got[0].Name, pods[1].Name)
	}
	poll(t, 20*time.Second, "status", func() error {
		cur, err := client.CoreV1().ReplicationControllers(ns).Get(ctx, "web", metav1.GetOptions{})
		if err != nil {
			return err
		}
		want := corev1.ReplicationControllerStatus{Replicas: 1, FullyLabeledReplicas: 1, ReadyReplicas: 1,
			AvailableReplicas: 1, ObservedGeneration: cur.Generation}
		if diff := cmp.Diff(want, cur.Status); diff != "" {
			return fmt.Errorf("status (-want +got):\n%s", diff)
		}
		return nil
	})
	if evs := events(t, client, ns, "SuccessfulDelete"); len(evs) == 0 || evs[0].Source.Component != "replication-controller" {
		t.Errorf("SuccessfulDelete events: %v", evs)
	}
}

// refusingTransport answers pod creations with 403 Forbidden while refuse
// is set, as an admission plugin or a quota would; everything else goes to
// the real API server.
type refusingTransport struct {
	next   http.RoundTripper
	refuse *atomic.Bool
}

func (rt refusingTransport) RoundTrip(req *http.Request) (*http.Response, error) {
	if rt.refuse.Load() && req.Method == http.MethodPost && strings.HasSuffix(req.URL.Path, "/pods") {
		body := `{"kind":"Status","apiVersion":"v1","status":"Failure","message":"pods is forbidden: exceeded quota","reason":"Forbidden","code":403}`
		return &http.Response{
			StatusCode: http.StatusForbidden,
			Header:     http.Header{"Content-Type": []string{"application/json"}},
			Body:       io.NopCloser(strings.NewReader(body)),
			Request:    req,
		}, nil
	}
	return rt.next.RoundTrip(req)
}

func TestReplicaFailure(t *testing.T) {
	cfg := testserver.Start(t, testserver.Options{})
	admin := kubernetes.NewForConfigOrDie(cfg)
	var refuse atomic.Bool
	refuse.Store(true)
	ctrlCfg := rest.CopyConfig(cfg)
	ctrlCfg.WrapTransport = func(next http.RoundTripper) http.RoundTripper { return refusingTransport{next, &refuse} }
	startControllersWith(t, kubernetes.NewForConfigOrDie(ctrlCfg))
	ns := newNamespace(t, admin, "failure")
	createRS(t, admin, ns, "web", 3)

	poll(t, 20*time.Second, "ReplicaFailure condition", func() error {
		rs, err := admin.AppsV1().ReplicaSets(ns).Get(context.Background(), "web", metav1.GetOptions{})
		if err != nil {
			return err
		}
		if len(rs.Status.Conditions) != 1 {
			return fmt.Errorf("conditions %v", rs.Status.Conditions)
		}
		c := rs.Status.Conditions[0]
		if c.Type != appsv1.ReplicaSetReplicaFailure || c.Status != corev1.ConditionTrue || c.Reason != "FailedCreate" ||
			!strings.Contains(c.Message, "exceeded quota") {
			return fmt.Errorf("condition %+v", c)
		}
		return nil
	})
	// The recorder writes events asynchronously: the condition can be
	// seen before the event is stored.
	poll(t, 10*time.Second, "FailedCreate event", func() error {
		if evs := events(t, admin, ns, "FailedCreate"); len(evs) == 0 || evs[0].Type != corev1.EventTypeWarning {
			return fmt.Errorf("FailedCreate events: %v", evs)
		}
		return nil
	})

	refuse.Store(false)
	waitPods(t, admin, ns, 3)
	rsStatus(t, admin, ns, "web", appsv1.ReplicaSetStatus{Replicas: 3, FullyLabeledReplicas: 3, TerminatingReplicas: ptr(int32(0))})
}
