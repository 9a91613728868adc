package integration

import (
	"context"
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/informers"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/tools/cache"
	"k8s.io/utils/ptr"
)

// event is one informer notification, reduced to what the tests compare.
type event struct {
	Kind string // "ConfigMap" or "Deployment"
	Type string // "add", "update", "delete"
	Name string
	// Detail is the config map's data["v"] or the deployment's replicas.
	Detail string
}

// recorder collects informer notifications in the order they arrive.
type recorder struct {
	mu     sync.Mutex
	events []event // guarded by mu
}

func (r *recorder) handler(describe func(obj any) event) cache.ResourceEventHandlerFuncs {
	add := func(typ string, obj any) {
		if tomb, ok := obj.(cache.DeletedFinalStateUnknown); ok {
			obj = tomb.Obj
		}
		e := describe(obj)
		e.Type = typ
		r.mu.Lock()
		r.events = append(r.events, e)
		r.mu.Unlock()
	}
	return cache.ResourceEventHandlerFuncs{
		AddFunc:    func(obj any) { add("add", obj) },
		UpdateFunc: func(_, obj any) { add("update", obj) },
		DeleteFunc: func(obj any) { add("delete", obj) },
	}
}

// snapshot returns the events so far, optionally only those of one kind
// and name.
func (r *recorder) snapshot(kind, name string) []event {
	r.mu.Lock()
	defer r.mu.Unlock()
	var out []event
	for _, e := range r.events {
		if (kind == "" || e.Kind == kind) && (name == "" || e.Name == name) {
			out = append(out, e)
		}
	}
	return out
}

// waitFor polls until the events of kind/name equal want.
func (r *recorder) waitFor(t *testing.T, kind, name string, want []event) {
	t.Helper()
	eventually(t, 20*time.Second, fmt.Sprintf("informer events of %s %s", kind, name), func() error {
		if diff := cmp.Diff(want, r.snapshot(kind, name)); diff != "" {
			return fmt.Errorf("events mismatch (-want +got):\n%s", diff)
		}
		return nil
	})
}

func describeConfigMap(obj any) event {
	cm := obj.(*corev1.ConfigMap)
	return event{Kind: "ConfigMap", Name: cm.Name, Detail: cm.Data["v"]}
}

func describeDeployment(obj any) event {
	d := obj.(*appsv1.Deployment)
	return event{Kind: "Deployment", Name: d.Name, Detail: fmt.Sprint(ptr.Deref(d.Spec.Replicas, -1))}
}

// startInformers starts config map and deployment informers on ns and waits
// for their caches to sync. They stop with the test.
func startInformers(t *testing.T, cs kubernetes.Interface, ns string) *recorder {
	t.Helper()
	rec := &recorder{}
	factory := informers.NewSharedInformerFactoryWithOptions(cs, 0, informers.WithNamespace(ns))
	if _, err := factory.Core().V1().ConfigMaps().Informer().AddEventHandler(rec.handler(describeConfigMap)); err != nil {
		t.Fatalf("adding handler: %v", err)
	}
	if _, err := factory.Apps().V1().Deployments().Informer().AddEventHandler(rec.handler(describeDeployment)); err != nil {
		t.Fatalf("adding handler: %v", err)
	}
	stop := make(chan struct{})
	factory.Start(stop)
	t.Cleanup(func() {
		close(stop)
		factory.Shutdown()
	})
	ctx := testContext(t, 20*time.Second)
	for typ, ok := range factory.WaitForCacheSync(ctx.Done()) {
		if !ok {
			t.Fatalf("informer cache for %v did not sync", typ)
		}
	}
	return rec
}

func configMap(name, v string) *corev1.ConfigMap {
	return &corev1.ConfigMap{ObjectMeta: metav1.ObjectMeta{Name: name}, Data: map[string]string{"v": v}}
}

func deployment(name string, replicas int32, containers ...corev1.Container) *appsv1.Deployment {
	if len(containers) == 0 {
		containers = []corev1.Container{{Name: "app", Image: "registry.example/app:1"}}
	}
	labels := map[string]string{"app": name}
	return &appsv1.Deployment{
		ObjectMeta: metav1.ObjectMeta{Name: name, Labels: labels},
		Spec: appsv1.DeploymentSpec{
			Replicas: ptr.To(replicas),
			Selector: &metav1.LabelSelector{MatchLabels: labels},
			Template: corev1.PodTemplateSpec{
				ObjectMeta: metav1.ObjectMeta{Labels: labels},
				Spec:       corev1.PodSpec{Containers: containers},
			},
		},
	}
}

func TestInformerSeesChangesInOrder(t *testing.T) {
	t.Parallel()
	cs := sharedServer.clientset(t)
	ns := newNamespace(t, cs)
	rec := startInformers(t, cs, ns)
	ctx := testContext(t, 60*time.Second)

	cms := cs.CoreV1().ConfigMaps(ns)
	for i := range 3 {
		if _, err := cms.Create(ctx, configMap(fmt.Sprintf("cm-%d", i), "1"), metav1.CreateOptions{}); err != nil {
			t.Fatalf("create: %v", err)
		}
	}
	cm, err := cms.Get(ctx, "cm-1", metav1.GetOptions{})
	if err != nil {
		t.Fatalf("get: %v", err)
	}
	for _, v := range []string{"2", "3"} {
		cm.Data["v"] = v
		if cm, err = cms.Update(ctx, cm, metav1.UpdateOptions{}); err != nil {
			t.Fatalf("update: %v", err)
		}
	}
	if err := cms.Delete(ctx, "cm-1", metav1.DeleteOptions{}); err != nil {
		t.Fatalf("delete: %v", err)
	}

	deps := cs.AppsV1().Deployments(ns)
	if _, err := deps.Create(ctx, deployment("web", 1), metav1.CreateOptions{}); err != nil {
		t.Fatalf("create deployment: %v", err)
	}
	patch := []byte(`{"spec":{"replicas":4}}`)
	if _, err := deps.Patch(ctx, "web", "application/merge-patch+json", patch, metav1.PatchOptions{}); err != nil {
		t.Fatalf("patch deployment: %v", err)
	}
	if err := deps.Delete(ctx, "web", metav1.DeleteOptions{}); err != nil {
		t.Fatalf("delete deployment: %v", err)
	}

	rec.waitFor(t, "ConfigMap", "cm-1", []event{
		{Kind: "ConfigMap", Type: "add", Name: "cm-1", Detail: "1"},
		{Kind: "ConfigMap", Type: "update", Name: "cm-1", Detail: "2"},
		{Kind: "ConfigMap", Type: "update", Name: "cm-1", Detail: "3"},
		{Kind: "ConfigMap", Type: "delete", Name: "cm-1", Detail: "3"},
	})
	rec.waitFor(t, "ConfigMap", "", []event{
		{Kind: "ConfigMap", Type: "add", Name: "cm-0", Detail: "1"},
		{Kind: "ConfigMap", Type: "add", Name: "cm-1", Detail: "1"},
		{Kind: "ConfigMap", Type: "add", Name: "cm-2", Detail: "1"},
		{Kind: "ConfigMap", Type: "update", Name: "cm-1", Detail: "2"},
		{Kind: "ConfigMap", Type: "update", Name: "cm-1", Detail: "3"},
		{Kind: "ConfigMap", Type: "delete", Name: "cm-1", Detail: "3"},
	})
	rec.waitFor(t, "Deployment", "web", []event{
		{Kind: "Deployment", Type: "add", Name: "web", Detail: "1"},
		{Kind: "Deployment", Type: "update", Name: "web", Detail: "4"},
		{Kind: "Deployment", Type: "delete", Name: "web", Detail: "4"},
	})
}

func TestInformerSurvivesServerRestart(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	srv, err := startServer(dir, "")
	if err != nil {
		t.Fatalf("starting server: %v", err)
	}
	t.Cleanup(func() {
		if err := srv.stop(); err != nil {
			t.Errorf("stopping server: %v", err)
		}
	})
	cs := srv.clientset(t)
	ns := newNamespace(t, cs)
	rec := startInformers(t, cs, ns)
	ctx := testContext(t, 120*time.Second)

	cms := cs.CoreV1().ConfigMaps(ns)
	if _, err := cms.Create(ctx, configMap("before", "1"), metav1.CreateOptions{}); err != nil {
		t.Fatalf("create: %v", err)
	}
	rec.waitFor(t, "ConfigMap", "before", []event{{Kind: "ConfigMap", Type: "add", Name: "before", Detail: "1"}})

	// Restart on the same data dir and address; the informer's client keeps
	// pointing at it and must re-list or re-watch on its own.
	if err := srv.stop(); err != nil {
		t.Fatalf("stopping server: %v", err)
	}
	srv2, err := startServer(dir, srv.listen)
	if err != nil {
		t.Fatalf("restarting server: %v", err)
	}
	*srv = *srv2

	eventually(t, 30*time.Second, "update after restart", func() error {
		cm, err := cms.Get(ctx, "before", metav1.GetOptions{})
		if err != nil {
			return err
		}
		cm.Data["v"] = "2"
		_, err = cms.Update(ctx, cm, metav1.UpdateOptions{})
		return err
	})
	if _, err := cms.Create(ctx, configMap("after", "1"), metav1.CreateOptions{}); err != nil {
		t.Fatalf("create after restart: %v", err)
	}
	if _, err := cs.AppsV1().Deployments(ns).Create(ctx, deployment("web", 2), metav1.CreateOptions{}); err != nil {
		t.Fatalf("create deployment after restart: %v", err)
	}
	rec.waitFor(t, "ConfigMap", "before", []event{
		{Kind: "ConfigMap", Type: "add", Name: "before", Detail: "1"},
		{Kind: "ConfigMap", Type: "update", Name: "before", Detail: "2"},
	})
	rec.waitFor(t, "ConfigMap", "after", []event{{Kind: "ConfigMap", Type: "add", Name: "after", Detail: "1"}})
	rec.waitFor(t, "Deployment", "web", []event{{Kind: "Deployment", Type: "add", Name: "web", Detail: "2"}})
}

// waitGone polls until get returns NotFound.
func waitGone(t *testing.T, what string, get func(ctx context.Context) error) {
	t.Helper()
	eventually(t, 30*time.Second, what+" gone", func() error {
		err := get(context.Background())
		if err == nil {
			return fmt.Errorf("%s still exists", what)
		}
		if isNotFound(err) {
			return nil
		}
		return err
	})
}
