package statefulset

import (
	"context"
	"fmt"
	"log/slog"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/api/resource"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/util/intstr"
	"k8s.io/client-go/informers"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/tools/record"
	"k8s.io/client-go/util/retry"

	"github.com/skiff-dev/skiff/internal/controller"
	"github.com/skiff-dev/skiff/internal/testserver"
)

// events collects what a FakeRecorder records.
type events struct {
	mu  sync.Mutex
	got []string // guarded by mu
}

func (e *events) has(want string) bool {
	e.mu.Lock()
	defer e.mu.Unlock()
	return slices.Contains(e.got, want)
}

// start runs a fresh API server and the controller for the rest of the test.
func start(t *testing.T) (context.Context, kubernetes.Interface, *events) {
	t.Helper()
	cfg := testserver.Start(t, testserver.Options{})
	client := kubernetes.NewForConfigOrDie(cfg)
	factory := informers.NewSharedInformerFactory(client, 0)
	ctx, cancel := context.WithCancel(context.Background())
	logger := slog.New(slog.NewTextHandler(tlog{t}, &slog.HandlerOptions{Level: slog.LevelInfo}))
	rec := record.NewFakeRecorder(100)
	ev := &events{}
	go func() {
		for e := range rec.Events {
			ev.mu.Lock()
			ev.got = append(ev.got, e)
			ev.mu.Unlock()
		}
	}()
	c := New(controller.Deps{Client: client, Informers: factory, Recorder: rec, Logger: logger})
	factory.StartWithContext(ctx)
	done := make(chan error, 1)
	go func() { done <- c.Run(ctx, 2) }()
	t.Cleanup(func() {
		cancel()
		if err := <-done; err != nil {
			t.Errorf("Run: %v", err)
		}
		factory.Shutdown()
	})
	return ctx, client, ev
}

type tlog struct{ t *testing.T }

func (w tlog) Write(p []byte) (int, error) { w.t.Log(string(p)); return len(p), nil }

func namespace(ctx context.Context, t *testing.T, client kubernetes.Interface, name string) string {
	t.Helper()
	_, err := client.CoreV1().Namespaces().Create(ctx, &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: name}}, metav1.CreateOptions{})
	if err != nil {
		t.Fatalf("creating namespace: %v", err)
	}
	return name
}

// poll calls cond until it returns nil or 30 s pass, then fails with its
// last error.
func poll(t *testing.T, what string, cond func() error) {
	t.Helper()
	deadline := time.Now().Add(30 * time.Second)
	tick := time.NewTicker(20 * time.Millisecond)
	defer tick.Stop()
	for {
		err := cond()
		if err == nil {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("%s: %v", what, err)
		}
		<-tick.C
	}
}

func newSet(ns, name string, replicas int32, policy appsv1.PodManagementPolicyType) *appsv1.StatefulSet {
	labels := map[string]string{"app": name}
	return &appsv1.StatefulSet{
		ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: name},
		Spec: appsv1.StatefulSetSpec{
			Replicas:            &replicas,
			Selector:            &metav1.LabelSelector{MatchLabels: labels},
			ServiceName:         name,
			PodManagementPolicy: policy,
			Template: corev1.PodTemplateSpec{
				ObjectMeta: metav1.ObjectMeta{Labels: labels},
				Spec:       corev1.PodSpec{Containers: []corev1.Container{{Name: "c", Image: "nginx:1"}}},
			},
		},
	}
}

// markReady sets pod's status to Running and Ready, as a node would.
func markReady(ctx context.Context, client kubernetes.Interface, ns, name string) error {
	pod, err := client.CoreV1().Pods(ns).Get(ctx, name, metav1.GetOptions{})
	if err != nil {
		return err
	}
	if runningAndReady(pod) {
		return nil
	}
	pod.Status.Phase = corev1.PodRunning
	pod.Status.Conditions = []corev1.PodCondition{{Type: corev1.PodReady, Status: corev1.ConditionTrue, LastTransitionTime: metav1.Now()}}
	_, err = client.CoreV1().Pods(ns).UpdateStatus(ctx, pod, metav1.UpdateOptions{})
	return err
}

// kubelet marks every pod of ns Running and Ready until ctx is done.
func kubelet(ctx context.Context, client kubernetes.Interface, ns string) {
	go func() {
		for ctx.Err() == nil {
			pods, err := client.CoreV1().Pods(ns).List(ctx, metav1.ListOptions{})
			if err == nil {
				for _, p := range pods.Items {
					if !runningAndReady(&p) && p.DeletionTimestamp == nil {
						_ = markReady(ctx, client, ns, p.Name)
					}
				}
			}
			select {
			case <-ctx.Done():
			case <-time.After(30 * time.Millisecond):
			}
		}
	}()
}

func podNames(ctx context.Context, client kubernetes.Interface, ns string) (map[string]*corev1.Pod, error) {
	pods, err := client.CoreV1().Pods(ns).List(ctx, metav1.ListOptions{})
	if err != nil {
		return nil, err
	}
	out := map[string]*corev1.Pod{}
	for i := range pods.Items {
		out[pods.Items[i].Name] = &pods.Items[i]
	}
	return out, nil
}

// updateSet applies mutate to the latest version of a set.
func updateSet(ctx context.Context, t *testing.T, client kubernetes.Interface, ns, name string, mutate func(*appsv1.StatefulSet)) {
	t.Helper()
	err := retry.RetryOnConflict(retry.DefaultRetry, func() error {
		s, err := getSet(ctx, client, ns, name)
		if err != nil {
			return err
		}
		mutate(s)
		_, err = client.AppsV1().StatefulSets(ns).Update(ctx, s, metav1.UpdateOptions{})
		return err
	})
	if err != nil {
		t.Fatalf("updating statefulset %s: %v", name, err)
	}
}

func getSet(ctx context.Context, client kubernetes.Interface, ns, name string) (*appsv1.StatefulSet, error) {
	return client.AppsV1().StatefulSets(ns).Get(ctx, name, metav1.GetOptions{})
}

func TestStatefulSet(t *testing.T) {
	ctx, client, events := start(t)

	t.Run("ordered creation, claims and scale down", func(t *testing.T) {
		ns := namespace(ctx, t, client, "ordered")
		set := newSet(ns, "web", 3, appsv1.OrderedReadyPodManagement)
		set.Spec.VolumeClaimTemplates = []corev1.PersistentVolumeClaim{{
			ObjectMeta: metav1.ObjectMeta{Name: "www"},
			Spec: corev1.PersistentVolumeClaimSpec{
				AccessModes: []corev1.PersistentVolumeAccessMode{corev1.ReadWriteOnce},
				Resources:   corev1.VolumeResourceRequirements{Requests: corev1.ResourceList{corev1.ResourceStorage: resource.MustParse("1Gi")}},
			},
		}}
		if _, err := client.AppsV1().StatefulSets(ns).Create(ctx, set, metav1.CreateOptions{}); err != nil {
			t.Fatal(err)
		}
		for i := range 3 {
			name := fmt.Sprintf("web-%d", i)
			poll(t, "pod "+name+" created and counted", func() error {
				s, err := getSet(ctx, client, ns, "web")
				if err != nil {
					return err
				}
				if s.Status.Replicas != int32(i+1) {
					return fmt.Errorf("status.replicas = %d, want %d", s.Status.Replicas, i+1)
				}
				return nil
			})
			pods, err := podNames(ctx, client, ns)
			if err != nil {
				t.Fatal(err)
			}
			if len(pods) != i+1 || pods[name] == nil {
				t.Fatalf("after %s was created, pods are %v; want only web-0..%d", name, keys(pods), i)
			}
			pod := pods[name]
			gotLabels := map[string]string{
				"pod-name": pod.Labels[appsv1.StatefulSetPodNameLabel],
				"index":    pod.Labels[appsv1.PodIndexLabel],
				"hostname": pod.Spec.Hostname,
				"sub":      pod.Spec.Subdomain,
				"claim":    claimOf(pod, "www"),
			}
			wantLabels := map[string]string{"pod-name": name, "index": fmt.Sprint(i), "hostname": name, "sub": "web", "claim": "www-" + name}
			if diff := cmp.Diff(wantLabels, gotLabels); diff != "" {
				t.Errorf("pod %s identity (-want +got):\n%s", name, diff)
			}
			if pod.Labels[appsv1.StatefulSetRevisionLabel] == "" {
				t.Errorf("pod %s has no revision label", name)
			}
			if _, err := client.CoreV1().PersistentVolumeClaims(ns).Get(ctx, "www-"+name, metav1.GetOptions{}); err != nil {
				t.Errorf("claim of %s: %v", name, err)
			}
			if err := markReady(ctx, client, ns, name); err != nil {
				t.Fatal(err)
			}
		}
		poll(t, "all ready", func() error {
			s, err := getSet(ctx, client, ns, "web")
			if err != nil {
				return err
			}
			if s.Status.ReadyReplicas != 3 || s.Status.AvailableReplicas != 3 || s.Status.CurrentRevision == "" || s.Status.CurrentRevision != s.Status.UpdateRevision || s.Status.ObservedGeneration != s.Generation {
				return fmt.Errorf("status = %+v", s.Status)
			}
			return nil
		})
		revs, err := client.AppsV1().ControllerRevisions(ns).List(ctx, metav1.ListOptions{})
		if err != nil || len(revs.Items) != 1 || revs.Items[0].Revision != 1 {
			t.Fatalf("revisions = %v, %v; want one with revision 1", revs, err)
		}

		// Scale down to 1: web-2 goes before web-1.
		updateSet(ctx, t, client, ns, "web", func(s *appsv1.StatefulSet) {
			one := int32(1)
			s.Spec.Replicas = &one
		})
		poll(t, "scaled down to web-0", func() error {
			pods, err := podNames(ctx, client, ns)
			if err != nil {
				return err
			}
			if pods["web-1"] == nil && pods["web-2"] != nil {
				t.Fatalf("web-1 deleted before web-2")
			}
			if len(pods) != 1 || pods["web-0"] == nil {
				return fmt.Errorf("pods = %v", keys(pods))
			}
			return nil
		})
		for _, want := range []string{
			"Normal SuccessfulCreate create Pod web-0 in StatefulSet web successful",
			"Normal SuccessfulCreate create Claim www-web-0 Pod web-0 in StatefulSet web success",
			"Normal SuccessfulDelete delete Pod web-2 in StatefulSet web successful",
		} {
			poll(t, "event "+want, func() error {
				if !events.has(want) {
					return fmt.Errorf("not recorded")
				}
				return nil
			})
		}
		// Claims are retained by default.
		claims, err := client.CoreV1().PersistentVolumeClaims(ns).List(ctx, metav1.ListOptions{})
		if err != nil || len(claims.Items) != 3 {
			t.Fatalf("claims after scale down: %d, %v; want 3", len(claims.Items), err)
		}
	})

	t.Run("partitioned rolling update", func(t *testing.T) {
		ns := namespace(ctx, t, client, "partition")
		kctx, stop := context.WithCancel(ctx)
		defer stop()
		kubelet(kctx, client, ns)
		set := newSet(ns, "db", 4, appsv1.ParallelPodManagement)
		two := int32(2)
		set.Spec.UpdateStrategy = appsv1.StatefulSetUpdateStrategy{
			Type:          appsv1.RollingUpdateStatefulSetStrategyType,
			RollingUpdate: &appsv1.RollingUpdateStatefulSetStrategy{Partition: &two},
		}
		if _, err := client.AppsV1().StatefulSets(ns).Create(ctx, set, metav1.CreateOptions{}); err != nil {
			t.Fatal(err)
		}
		var oldRev string
		poll(t, "4 ready", func() error {
			s, err := getSet(ctx, client, ns, "db")
			if err != nil {
				return err
			}
			if s.Status.ReadyReplicas != 4 || s.Status.UpdatedReplicas != 4 {
				return fmt.Errorf("status = %+v", s.Status)
			}
			oldRev = s.Status.UpdateRevision
			return nil
		})
		updateSet(ctx, t, client, ns, "db", func(s *appsv1.StatefulSet) {
			s.Spec.Template.Spec.Containers[0].Image = "nginx:2"
		})
		var newRev string
		poll(t, "ordinals >= 2 updated", func() error {
			s, err := getSet(ctx, client, ns, "db")
			if err != nil {
				return err
			}
			newRev = s.Status.UpdateRevision
			if newRev == oldRev || s.Status.UpdatedReplicas != 2 || s.Status.ReadyReplicas != 4 || s.Status.CurrentRevision != oldRev || s.Status.CurrentReplicas != 2 {
				return fmt.Errorf("status = %+v", s.Status)
			}
			return nil
		})
		pods, err := podNames(ctx, client, ns)
		if err != nil {
			t.Fatal(err)
		}
		got := map[string]string{}
		for n, p := range pods {
			got[n] = p.Spec.Containers[0].Image
		}
		want := map[string]string{"db-0": "nginx:1", "db-1": "nginx:1", "db-2": "nginx:2", "db-3": "nginx:2"}
		if diff := cmp.Diff(want, got); diff != "" {
			t.Errorf("images after partitioned update (-want +got):\n%s", diff)
		}
		// A deleted pod below the partition comes back at the current revision.
		if err := client.CoreV1().Pods(ns).Delete(ctx, "db-0", metav1.DeleteOptions{}); err != nil {
			t.Fatal(err)
		}
		poll(t, "db-0 recreated at the current revision", func() error {
			p, err := client.CoreV1().Pods(ns).Get(ctx, "db-0", metav1.GetOptions{})
			if err != nil {
				return err
			}
			if p.UID == pods["db-0"].UID {
				return fmt.Errorf("not recreated yet")
			}
			if p.Spec.Containers[0].Image != "nginx:1" || p.Labels[appsv1.StatefulSetRevisionLabel] != oldRev {
				return fmt.Errorf("recreated db-0 has image %s revision %s", p.Spec.Containers[0].Image, p.Labels[appsv1.StatefulSetRevisionLabel])
			}
			return nil
		})
		// Partition 0 finishes the update and makes it current.
		updateSet(ctx, t, client, ns, "db", func(s *appsv1.StatefulSet) {
			zero := int32(0)
			s.Spec.UpdateStrategy.RollingUpdate.Partition = &zero
		})
		poll(t, "update complete", func() error {
			s, err := getSet(ctx, client, ns, "db")
			if err != nil {
				return err
			}
			if s.Status.CurrentRevision != newRev || s.Status.UpdatedReplicas != 4 || s.Status.CurrentReplicas != 4 || s.Status.ReadyReplicas != 4 {
				return fmt.Errorf("status = %+v", s.Status)
			}
			return nil
		})
	})

	t.Run("maxUnavailable and OnDelete", func(t *testing.T) {
		ns := namespace(ctx, t, client, "unavailable")
		set := newSet(ns, "db", 4, appsv1.ParallelPodManagement)
		two := intstr.FromInt32(2)
		set.Spec.UpdateStrategy = appsv1.StatefulSetUpdateStrategy{
			Type:          appsv1.RollingUpdateStatefulSetStrategyType,
			RollingUpdate: &appsv1.RollingUpdateStatefulSetStrategy{MaxUnavailable: &two},
		}
		if _, err := client.AppsV1().StatefulSets(ns).Create(ctx, set, metav1.CreateOptions{}); err != nil {
			t.Fatal(err)
		}
		readyAll := func() error {
			pods, err := podNames(ctx, client, ns)
			if err != nil {
				return err
			}
			for name, p := range pods {
				if !runningAndReady(p) && p.DeletionTimestamp == nil {
					if err := markReady(ctx, client, ns, name); err != nil {
						return err
					}
				}
			}
			return nil
		}
		images := func(want map[string]string) func() error {
			return func() error {
				pods, err := podNames(ctx, client, ns)
				if err != nil {
					return err
				}
				got := map[string]string{}
				for n, p := range pods {
					got[n] = p.Spec.Containers[0].Image
				}
				if diff := cmp.Diff(want, got); diff != "" {
					return fmt.Errorf("images (-want +got):\n%s", diff)
				}
				return nil
			}
		}
		poll(t, "4 pods", images(map[string]string{"db-0": "nginx:1", "db-1": "nginx:1", "db-2": "nginx:1", "db-3": "nginx:1"}))
		if err := readyAll(); err != nil {
			t.Fatal(err)
		}
		poll(t, "4 ready", func() error {
			s, err := getSet(ctx, client, ns, "db")
			if err != nil {
				return err
			}
			if s.Status.ReadyReplicas != 4 {
				return fmt.Errorf("status = %+v", s.Status)
			}
			return nil
		})
		updateSet(ctx, t, client, ns, "db", func(s *appsv1.StatefulSet) { s.Spec.Template.Spec.Containers[0].Image = "nginx:2" })
		// Two at a time, from the top; the rest waits for them.
		poll(t, "top two updated", images(map[string]string{"db-0": "nginx:1", "db-1": "nginx:1", "db-2": "nginx:2", "db-3": "nginx:2"}))
		poll(t, "status sees them", func() error {
			s, err := getSet(ctx, client, ns, "db")
			if err != nil {
				return err
			}
			if s.Status.UpdatedReplicas != 2 || s.Status.ReadyReplicas != 2 {
				return fmt.Errorf("status = %+v", s.Status)
			}
			return nil
		})
		if err := images(map[string]string{"db-0": "nginx:1", "db-1": "nginx:1", "db-2": "nginx:2", "db-3": "nginx:2"})(); err != nil {
			t.Fatalf("more than maxUnavailable replaced: %v", err)
		}
		if err := readyAll(); err != nil {
			t.Fatal(err)
		}
		poll(t, "all updated", images(map[string]string{"db-0": "nginx:2", "db-1": "nginx:2", "db-2": "nginx:2", "db-3": "nginx:2"}))

		// OnDelete: a template change replaces nothing until a pod is deleted.
		poll(t, "ready again", func() error {
			if err := readyAll(); err != nil {
				return err
			}
			s, err := getSet(ctx, client, ns, "db")
			if err != nil {
				return err
			}
			if s.Status.ReadyReplicas != 4 || s.Status.CurrentRevision != s.Status.UpdateRevision {
				return fmt.Errorf("status = %+v", s.Status)
			}
			return nil
		})
		updateSet(ctx, t, client, ns, "db", func(s *appsv1.StatefulSet) {
			s.Spec.UpdateStrategy = appsv1.StatefulSetUpdateStrategy{Type: appsv1.OnDeleteStatefulSetStrategyType}
			s.Spec.Template.Spec.Containers[0].Image = "nginx:3"
		})
		poll(t, "new update revision", func() error {
			s, err := getSet(ctx, client, ns, "db")
			if err != nil {
				return err
			}
			if s.Status.ObservedGeneration != s.Generation || s.Status.UpdatedReplicas != 0 || s.Status.CurrentReplicas != 4 {
				return fmt.Errorf("status = %+v", s.Status)
			}
			return nil
		})
		if err := images(map[string]string{"db-0": "nginx:2", "db-1": "nginx:2", "db-2": "nginx:2", "db-3": "nginx:2"})(); err != nil {
			t.Fatalf("OnDelete replaced pods: %v", err)
		}
		if err := client.CoreV1().Pods(ns).Delete(ctx, "db-1", metav1.DeleteOptions{}); err != nil {
			t.Fatal(err)
		}
		poll(t, "db-1 recreated at the update revision", images(map[string]string{"db-0": "nginx:2", "db-1": "nginx:3", "db-2": "nginx:2", "db-3": "nginx:2"}))
	})

	t.Run("claim retention policy", func(t *testing.T) {
		ns := namespace(ctx, t, client, "retention")
		set := newSet(ns, "kv", 2, appsv1.ParallelPodManagement)
		set.Spec.VolumeClaimTemplates = []corev1.PersistentVolumeClaim{{
			ObjectMeta: metav1.ObjectMeta{Name: "data"},
			Spec: corev1.PersistentVolumeClaimSpec{
				AccessModes: []corev1.PersistentVolumeAccessMode{corev1.ReadWriteOnce},
				Resources:   corev1.VolumeResourceRequirements{Requests: corev1.ResourceList{corev1.ResourceStorage: resource.MustParse("1Gi")}},
			},
		}}
		set.Spec.PersistentVolumeClaimRetentionPolicy = &appsv1.StatefulSetPersistentVolumeClaimRetentionPolicy{
			WhenDeleted: appsv1.DeletePersistentVolumeClaimRetentionPolicyType,
			WhenScaled:  appsv1.DeletePersistentVolumeClaimRetentionPolicyType,
		}
		if _, err := client.AppsV1().StatefulSets(ns).Create(ctx, set, metav1.CreateOptions{}); err != nil {
			t.Fatal(err)
		}
		owners := func(claim string) (string, error) {
			c, err := client.CoreV1().PersistentVolumeClaims(ns).Get(ctx, claim, metav1.GetOptions{})
			if err != nil {
				return "", err
			}
			var out []string
			for _, r := range c.OwnerReferences {
				out = append(out, r.Kind+"/"+r.Name)
			}
			return fmt.Sprint(out), nil
		}
		poll(t, "claims owned by the set", func() error {
			for _, claim := range []string{"data-kv-0", "data-kv-1"} {
				got, err := owners(claim)
				if err != nil {
					return err
				}
				if got != "[StatefulSet/kv]" {
					return fmt.Errorf("%s owners = %s", claim, got)
				}
			}
			return nil
		})
		updateSet(ctx, t, client, ns, "kv", func(s *appsv1.StatefulSet) {
			one := int32(1)
			s.Spec.Replicas = &one
		})
		poll(t, "scaled-away claim owned by its pod", func() error {
			got, err := owners("data-kv-1")
			if err != nil {
				return err
			}
			if got != "[Pod/kv-1]" {
				return fmt.Errorf("data-kv-1 owners = %s", got)
			}
			if _, err := client.CoreV1().Pods(ns).Get(ctx, "kv-1", metav1.GetOptions{}); !apierrors.IsNotFound(err) {
				return fmt.Errorf("kv-1 not deleted yet: %v", err)
			}
			return nil
		})
		if got, err := owners("data-kv-0"); err != nil || got != "[StatefulSet/kv]" {
			t.Errorf("data-kv-0 owners = %s, %v; want [StatefulSet/kv]", got, err)
		}
	})

	t.Run("failed pod is recreated", func(t *testing.T) {
		ns := namespace(ctx, t, client, "failed")
		set := newSet(ns, "app", 1, appsv1.ParallelPodManagement)
		if _, err := client.AppsV1().StatefulSets(ns).Create(ctx, set, metav1.CreateOptions{}); err != nil {
			t.Fatal(err)
		}
		var first *corev1.Pod
		poll(t, "app-0 created", func() error {
			var err error
			first, err = client.CoreV1().Pods(ns).Get(ctx, "app-0", metav1.GetOptions{})
			return err
		})
		first.Status.Phase = corev1.PodFailed
		if _, err := client.CoreV1().Pods(ns).UpdateStatus(ctx, first, metav1.UpdateOptions{}); err != nil {
			t.Fatal(err)
		}
		poll(t, "app-0 recreated", func() error {
			p, err := client.CoreV1().Pods(ns).Get(ctx, "app-0", metav1.GetOptions{})
			if apierrors.IsNotFound(err) {
				return err
			}
			if err != nil {
				return err
			}
			if p.UID == first.UID {
				return fmt.Errorf("still the failed pod")
			}
			return nil
		})
	})
}

func claimOf(pod *corev1.Pod, volume string) string {
	for _, v := range pod.Spec.Volumes {
		if v.Name == volume && v.PersistentVolumeClaim != nil {
			return v.PersistentVolumeClaim.ClaimName
		}
	}
	return ""
}

func keys[V any](m map[string]V) []string {
	var out []string
	for k := range m {
		out = append(out, k)
	}
	return out
}
