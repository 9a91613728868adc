package garbagecollector

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	rbacv1 "k8s.io/api/rbac/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/client-go/informers"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/metadata"
	"k8s.io/client-go/tools/record"

	"github.com/skiff-dev/skiff/internal/controller"
	"github.com/skiff-dev/skiff/internal/testserver"
)

// tWriter sends log lines to t.Log.
type tWriter struct{ t *testing.T }

func (w tWriter) Write(p []byte) (int, error) {
	w.t.Log(strings.TrimRight(string(p), "\n"))
	return len(p), nil
}

// poll calls f until it returns nil or the timeout passes, then fails the
// test with f's last error.
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

// start runs a server and a garbage collector for the rest of the test.
func start(t *testing.T) (kubernetes.Interface, *record.FakeRecorder, *Controller) {
	t.Helper()
	return startWith(t, true)
}

// startWith is start; without shared typed informers when shared is false,
// so that every resource is watched through a metadata informer.
func startWith(t *testing.T, shared bool) (kubernetes.Interface, *record.FakeRecorder, *Controller) {
	t.Helper()
	cfg := testserver.Start(t, testserver.Options{})
	client := kubernetes.NewForConfigOrDie(cfg)
	meta, err := metadata.NewForConfig(cfg)
	if err != nil {
		t.Fatalf("building metadata client: %v", err)
	}
	rec := record.NewFakeRecorder(100)
	logger := slog.New(slog.NewTextHandler(tWriter{t}, &slog.HandlerOptions{Level: slog.LevelDebug}))
	var factory informers.SharedInformerFactory
	if shared {
		factory = informers.NewSharedInformerFactory(client, 0)
	}
	gc := New(controller.Deps{
		Client:    client,
		Informers: factory,
		Recorder:  rec,
		Logger:    logger,
	}, meta, client.Discovery())
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- gc.Run(ctx, 2) }()
	t.Cleanup(func() {
		cancel()
		if err := <-done; err != nil {
			t.Errorf("garbage collector: %v", err)
		}
	})
	return client, rec, gc
}

func newNamespace(t *testing.T, client kubernetes.Interface, name string) {
	t.Helper()
	_, err := client.CoreV1().Namespaces().Create(context.Background(), &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: name}}, metav1.CreateOptions{})
	if err != nil {
		t.Fatalf("creating namespace %s: %v", name, err)
	}
}

// refTo returns an owner reference to a config map.
func refTo(cm *corev1.ConfigMap, block bool) metav1.OwnerReference {
	return metav1.OwnerReference{APIVersion: "v1", Kind: "ConfigMap", Name: cm.Name, UID: cm.UID, BlockOwnerDeletion: &block}
}

func createCM(t *testing.T, client kubernetes.Interface, ns, name string, finalizers []string, owners ...metav1.OwnerReference) *corev1.ConfigMap {
	t.Helper()
	cm, err := client.CoreV1().ConfigMaps(ns).Create(context.Background(), &corev1.ConfigMap{ObjectMeta: metav1.ObjectMeta{
		Name: name, Namespace: ns, OwnerReferences: owners, Finalizers: finalizers,
	}}, metav1.CreateOptions{})
	if err != nil {
		t.Fatalf("creating config map %s/%s: %v", ns, name, err)
	}
	return cm
}

func deleteCM(t *testing.T, client kubernetes.Interface, cm *corev1.ConfigMap, policy *metav1.DeletionPropagation) {
	t.Helper()
	err := client.CoreV1().ConfigMaps(cm.Namespace).Delete(context.Background(), cm.Name, metav1.DeleteOptions{PropagationPolicy: policy})
	if err != nil {
		t.Fatalf("deleting config map %s/%s: %v", cm.Namespace, cm.Name, err)
	}
}

// cmGone returns nil once the config map is gone (or replaced).
func cmGone(client kubernetes.Interface, cm *corev1.ConfigMap) func() error {
	return func() error {
		got, err := client.CoreV1().ConfigMaps(cm.Namespace).Get(context.Background(), cm.Name, metav1.GetOptions{})
		switch {
		case apierrors.IsNotFound(err):
			return nil
		case err != nil:
			return err
		case got.UID != cm.UID:
			return nil
		}
		return fmt.Errorf("config map %s/%s still there (deletionTimestamp %v, finalizers %v)", cm.Namespace, cm.Name, got.DeletionTimestamp, got.Finalizers)
	}
}

// ownerUIDs returns the uids the config map's owner references point at.
func ownerUIDs(t *testing.T, client kubernetes.Interface, cm *corev1.ConfigMap) []types.UID {
	t.Helper()
	got, err := client.CoreV1().ConfigMaps(cm.Namespace).Get(context.Background(), cm.Name, metav1.GetOptions{})
	if err != nil {
		t.Fatalf("getting config map %s/%s: %v", cm.Namespace, cm.Name, err)
	}
	var out []types.UID
	for _, r := range got.OwnerReferences {
		out = append(out, r.UID)
	}
	return out
}

// settle waits until the collector has looked at what it has been shown:
// a marker object pointing at a missing owner, created after everything
// else in ns, is collected.
func settle(t *testing.T, client kubernetes.Interface, ns string) {
	t.Helper()
	marker := createCM(t, client, ns, "settle-marker", nil, metav1.OwnerReference{
		APIVersion: "v1", Kind: "ConfigMap", Name: "missing", UID: "00000000-0000-0000-0000-00000000dead",
	})
	poll(t, 30*time.Second, "marker collected", cmGone(client, marker))
}

func TestGarbageCollector(t *testing.T) {
	client, rec, gc := start(t)
	ctx := context.Background()
	foreground := metav1.DeletePropagationForeground
	orphan := metav1.DeletePropagationOrphan
	const timeout = 30 * time.Second

	t.Run("watches the deletable resources except events", func(t *testing.T) {
		got, err := deletableResources(client.Discovery())
		if err != nil {
			t.Fatalf("deletableResources: %v", err)
		}
		want := map[schema.GroupVersionResource]string{
			{Version: "v1", Resource: "pods"}:                                             "Pod",
			{Version: "v1", Resource: "configmaps"}:                                       "ConfigMap",
			{Version: "v1", Resource: "namespaces"}:                                       "Namespace",
			{Group: "apps", Version: "v1", Resource: "replicasets"}:                       "ReplicaSet",
			{Group: "rbac.authorization.k8s.io", Version: "v1", Resource: "clusterroles"}: "ClusterRole",
			{Group: "batch", Version: "v1", Resource: "jobs"}:                             "Job",
		}
		for gvr, kind := range want {
			if got[gvr] != kind {
				t.Errorf("resource %s: kind %q, want %q", gvr, got[gvr], kind)
			}
		}
		for gvr := range got {
			if gvr.Resource == "events" || strings.Contains(gvr.Resource, "/") {
				t.Errorf("resource %s must not be watched", gvr)
			}
		}
		// A resync with nothing new keeps one informer per resource.
		if err := gc.monitors.sync(ctx); err != nil {
			t.Fatalf("resync: %v", err)
		}
		gc.monitors.mu.Lock()
		running := len(gc.monitors.running)
		gc.monitors.mu.Unlock()
		if running != len(got) {
			t.Errorf("%d informers running, want %d", running, len(got))
		}
	})

	t.Run("background deletion removes dependents", func(t *testing.T) {
		ns := "background"
		newNamespace(t, client, ns)
		owner := createCM(t, client, ns, "owner", nil)
		deps := []*corev1.ConfigMap{
			createCM(t, client, ns, "dep-1", nil, refTo(owner, false)),
			createCM(t, client, ns, "dep-2", nil, refTo(owner, true)),
		}
		grandchild := createCM(t, client, ns, "grandchild", nil, refTo(deps[0], false))
		unrelated := createCM(t, client, ns, "unrelated", nil)
		settle(t, client, ns)
		deleteCM(t, client, owner, nil)
		for _, d := range append(deps, grandchild) {
			poll(t, timeout, "dependent "+d.Name+" collected", cmGone(client, d))
		}
		if _, err := client.CoreV1().ConfigMaps(ns).Get(ctx, unrelated.Name, metav1.GetOptions{}); err != nil {
			t.Errorf("unrelated config map: %v", err)
		}
	})

	t.Run("dependent with another live owner loses only the reference", func(t *testing.T) {
		ns := "two-owners"
		newNamespace(t, client, ns)
		a := createCM(t, client, ns, "owner-a", nil)
		b := createCM(t, client, ns, "owner-b", nil)
		dep := createCM(t, client, ns, "dep", nil, refTo(a, false), refTo(b, false))
		settle(t, client, ns)
		deleteCM(t, client, a, nil)
		poll(t, timeout, "reference to owner-a removed", func() error {
			got := ownerUIDs(t, client, dep)
			if diff := cmp.Diff([]types.UID{b.UID}, got); diff != "" {
				return fmt.Errorf("owner uids (-want +got):\n%s", diff)
			}
			return nil
		})
		settle(t, client, ns)
		if got := ownerUIDs(t, client, dep); len(got) != 1 {
			t.Errorf("dependent changed again: owners %v", got)
		}
	})

	t.Run("foreground deletion deletes dependents first", func(t *testing.T) {
		ns := "foreground"
		newNamespace(t, client, ns)
		owner := createCM(t, client, ns, "owner", nil)
		// held blocks the owner and cannot go before its finalizer is removed.
		held := createCM(t, client, ns, "held", []string{"test.skiff.dev/hold"}, refTo(owner, true))
		free := createCM(t, client, ns, "free", nil, refTo(owner, false))
		settle(t, client, ns)
		deleteCM(t, client, owner, &foreground)

		poll(t, timeout, "held dependent being deleted", func() error {
			got, err := client.CoreV1().ConfigMaps(ns).Get(ctx, held.Name, metav1.GetOptions{})
			if err != nil {
				return err
			}
			if got.DeletionTimestamp == nil {
				return errors.New("no deletionTimestamp yet")
			}
			return nil
		})
		poll(t, timeout, "free dependent collected", cmGone(client, free))
		settle(t, client, ns)
		got, err := client.CoreV1().ConfigMaps(ns).Get(ctx, owner.Name, metav1.GetOptions{})
		if err != nil {
			t.Fatalf("owner must wait for its blocking dependent: %v", err)
		}
		if got.DeletionTimestamp == nil || !hasFinalizer(got, metav1.FinalizerDeleteDependents) {
			t.Fatalf("owner: deletionTimestamp %v, finalizers %v; want being deleted with %s", got.DeletionTimestamp, got.Finalizers, metav1.FinalizerDeleteDependents)
		}

		patch := []byte(`{"metadata":{"finalizers":null}}`)
		if _, err := client.CoreV1().ConfigMaps(ns).Patch(ctx, held.Name, types.MergePatchType, patch, metav1.PatchOptions{}); err != nil {
			t.Fatalf("releasing held dependent: %v", err)
		}
		poll(t, timeout, "held dependent gone", cmGone(client, held))
		poll(t, timeout, "owner gone", cmGone(client, owner))
	})

	t.Run("foreground deletion of an owner without dependents", func(t *testing.T) {
		ns := "foreground-alone"
		newNamespace(t, client, ns)
		owner := createCM(t, client, ns, "owner", nil)
		deleteCM(t, client, owner, &foreground)
		poll(t, timeout, "owner gone", cmGone(client, owner))
	})

	t.Run("foreground deletion goes through the whole subtree", func(t *testing.T) {
		ns := "foreground-tree"
		newNamespace(t, client, ns)
		owner := createCM(t, client, ns, "owner", nil)
		child := createCM(t, client, ns, "child", nil, refTo(owner, true))
		grandchild := createCM(t, client, ns, "grandchild", []string{"test.skiff.dev/hold"}, refTo(child, true))
		settle(t, client, ns)
		deleteCM(t, client, owner, &foreground)
		poll(t, timeout, "grandchild being deleted", func() error {
			got, err := client.CoreV1().ConfigMaps(ns).Get(ctx, grandchild.Name, metav1.GetOptions{})
			if err != nil {
				return err
			}
			if got.DeletionTimestamp == nil {
				return errors.New("no deletionTimestamp yet")
			}
			return nil
		})
		settle(t, client, ns)
		for _, cm := range []*corev1.ConfigMap{owner, child} {
			got, err := client.CoreV1().ConfigMaps(ns).Get(ctx, cm.Name, metav1.GetOptions{})
			if err != nil {
				t.Fatalf("%s must wait for the grandchild: %v", cm.Name, err)
			}
			if got.DeletionTimestamp == nil {
				t.Errorf("%s: not being deleted", cm.Name)
			}
		}
		patch := []byte(`{"metadata":{"finalizers":null}}`)
		if _, err := client.CoreV1().ConfigMaps(ns).Patch(ctx, grandchild.Name, types.MergePatchType, patch, metav1.PatchOptions{}); err != nil {
			t.Fatalf("releasing grandchild: %v", err)
		}
		for _, cm := range []*corev1.ConfigMap{grandchild, child, owner} {
			poll(t, timeout, cm.Name+" gone", cmGone(client, cm))
		}
	})

	t.Run("foreground deletion of a cycle of blocking owners", func(t *testing.T) {
		ns := "foreground-cycle"
		newNamespace(t, client, ns)
		a := createCM(t, client, ns, "a", nil)
		b := createCM(t, client, ns, "b", nil, refTo(a, true))
		a.OwnerReferences = []metav1.OwnerReference{refTo(b, true)}
		if _, err := client.CoreV1().ConfigMaps(ns).Update(ctx, a, metav1.UpdateOptions{}); err != nil {
			t.Fatalf("closing the cycle: %v", err)
		}
		settle(t, client, ns)
		deleteCM(t, client, a, &foreground)
		poll(t, timeout, "a gone", cmGone(client, a))
		poll(t, timeout, "b gone", cmGone(client, b))
	})

	t.Run("orphan deletion leaves dependents without the reference", func(t *testing.T) {
		ns := "orphan"
		newNamespace(t, client, ns)
		owner := createCM(t, client, ns, "owner", nil)
		other := createCM(t, client, ns, "other", nil)
		dep := createCM(t, client, ns, "dep", nil, refTo(owner, true))
		both := createCM(t, client, ns, "both", nil, refTo(owner, false), refTo(other, false))
		settle(t, client, ns)
		deleteCM(t, client, owner, &orphan)
		poll(t, timeout, "owner gone", cmGone(client, owner))
		if got := ownerUIDs(t, client, dep); len(got) != 0 {
			t.Errorf("dep owners = %v, want none", got)
		}
		if diff := cmp.Diff([]types.UID{other.UID}, ownerUIDs(t, client, both)); diff != "" {
			t.Errorf("both owners (-want +got):\n%s", diff)
		}
		settle(t, client, ns)
		if _, err := client.CoreV1().ConfigMaps(ns).Get(ctx, dep.Name, metav1.GetOptions{}); err != nil {
			t.Errorf("orphaned dependent: %v", err)
		}
	})

	t.Run("dependent of an owner that never existed is collected", func(t *testing.T) {
		ns := "dangling"
		newNamespace(t, client, ns)
		// An owner with the right name but another uid does not count.
		createCM(t, client, ns, "owner", nil)
		dep := createCM(t, client, ns, "dep", nil, metav1.OwnerReference{
			APIVersion: "v1", Kind: "ConfigMap", Name: "owner", UID: "11111111-2222-3333-4444-555555555555",
		})
		poll(t, timeout, "dependent collected", cmGone(client, dep))
	})

	t.Run("owner in another namespace counts as absent", func(t *testing.T) {
		newNamespace(t, client, "cross-a")
		newNamespace(t, client, "cross-b")
		owner := createCM(t, client, "cross-a", "owner", nil)
		dep := createCM(t, client, "cross-b", "dep", nil, refTo(owner, false))
		poll(t, timeout, "dependent collected", cmGone(client, dep))
		if _, err := client.CoreV1().ConfigMaps("cross-a").Get(ctx, owner.Name, metav1.GetOptions{}); err != nil {
			t.Errorf("owner: %v", err)
		}
		poll(t, timeout, "OwnerRefInvalidNamespace event", func() error {
			for {
				select {
				case e := <-rec.Events:
					if strings.Contains(e, "OwnerRefInvalidNamespace") {
						return nil
					}
				default:
					return errors.New("no event yet")
				}
			}
		})
	})

	t.Run("cluster-scoped owner of namespaced dependents", func(t *testing.T) {
		ns := "cluster-owner"
		newNamespace(t, client, ns)
		cr, err := client.RbacV1().ClusterRoles().Create(ctx, &rbacv1.ClusterRole{ObjectMeta: metav1.ObjectMeta{Name: "gc-owner"}}, metav1.CreateOptions{})
		if err != nil {
			t.Fatalf("creating cluster role: %v", err)
		}
		ref := metav1.OwnerReference{APIVersion: "rbac.authorization.k8s.io/v1", Kind: "ClusterRole", Name: cr.Name, UID: cr.UID}
		dep := createCM(t, client, ns, "dep", nil, ref)
		settle(t, client, ns)
		if _, err := client.CoreV1().ConfigMaps(ns).Get(ctx, dep.Name, metav1.GetOptions{}); err != nil {
			t.Fatalf("dependent of a live cluster-scoped owner: %v", err)
		}
		if err := client.RbacV1().ClusterRoles().Delete(ctx, cr.Name, metav1.DeleteOptions{}); err != nil {
			t.Fatalf("deleting cluster role: %v", err)
		}
		poll(t, timeout, "dependent collected", cmGone(client, dep))
	})

	t.Run("pods owned by a replica set", func(t *testing.T) {
		ns := "replicaset"
		newNamespace(t, client, ns)
		labels := map[string]string{"app": "web"}
		rs, err := client.AppsV1().ReplicaSets(ns).Create(ctx, &appsv1.ReplicaSet{
			ObjectMeta: metav1.ObjectMeta{Name: "web"},
			Spec: appsv1.ReplicaSetSpec{
				Selector: &metav1.LabelSelector{MatchLabels: labels},
				Template: corev1.PodTemplateSpec{
					ObjectMeta: metav1.ObjectMeta{Labels: labels},
					Spec:       corev1.PodSpec{Containers: []corev1.Container{{Name: "c", Image: "busybox"}}},
				},
			},
		}, metav1.CreateOptions{})
		if err != nil {
			t.Fatalf("creating replica set: %v", err)
		}
		yes := true
		ref := metav1.OwnerReference{APIVersion: "apps/v1", Kind: "ReplicaSet", Name: rs.Name, UID: rs.UID, Controller: &yes, BlockOwnerDeletion: &yes}
		var pods []*corev1.Pod
		for i := range 2 {
			pod, err := client.CoreV1().Pods(ns).Create(ctx, &corev1.Pod{
				ObjectMeta: metav1.ObjectMeta{Name: fmt.Sprintf("web-%d", i), Labels: labels, OwnerReferences: []metav1.OwnerReference{ref}},
				Spec:       corev1.PodSpec{Containers: []corev1.Container{{Name: "c", Image: "busybox"}}},
			}, metav1.CreateOptions{})
			if err != nil {
				t.Fatalf("creating pod: %v", err)
			}
			pods = append(pods, pod)
		}
		settle(t, client, ns)
		if err := client.AppsV1().ReplicaSets(ns).Delete(ctx, rs.Name, metav1.DeleteOptions{}); err != nil {
			t.Fatalf("deleting replica set: %v", err)
		}
		for _, pod := range pods {
			poll(t, timeout, "pod "+pod.Name+" collected", func() error {
				got, err := client.CoreV1().Pods(ns).Get(ctx, pod.Name, metav1.GetOptions{})
				switch {
				case apierrors.IsNotFound(err):
					return nil
				case err != nil:
					return err
				case got.DeletionTimestamp != nil:
					return nil // graceful deletion: a node would finish it
				}
				return errors.New("pod still there")
			})
		}
	})
}

// TestMetadataInformers checks the collector without shared typed
// informers: every resource is then watched through a metadata informer
// (the way resources the typed factory does not know are watched).
func TestMetadataInformers(t *testing.T) {
	client, _, gc := startWith(t, false)
	ns := "metadata"
	newNamespace(t, client, ns)
	owner := createCM(t, client, ns, "owner", nil)
	dep := createCM(t, client, ns, "dep", nil, refTo(owner, true))
	settle(t, client, ns)
	gc.monitors.mu.Lock()
	running := len(gc.monitors.running)
	gc.monitors.mu.Unlock()
	if running == 0 {
		t.Fatal("no metadata informers running")
	}
	deleteCM(t, client, owner, nil)
	poll(t, 30*time.Second, "dependent collected", cmGone(client, dep))
}
