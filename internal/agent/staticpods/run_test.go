package staticpods

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/tools/record"
	"k8s.io/utils/ptr"

	"github.com/skiff-dev/skiff/internal/testserver"
)

// TestRun runs Run against a real API server, one node (and manifest
// directory) per subtest. Nothing runs the pods: finalizeDeleted plays the
// agent's part of deleting stopped pods with grace 0.
func TestRun(t *testing.T) {
	cs, err := kubernetes.NewForConfig(testserver.Start(t, testserver.Options{}))
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	finalized := make(chan struct{})
	go func() {
		defer close(finalized)
		finalizeDeleted(ctx, t, cs)
	}()
	t.Cleanup(func() {
		cancel()
		<-finalized
	})

	t.Run("lifecycle", func(t *testing.T) {
		t.Parallel()
		node := createNode(t, cs, "life")
		dir := t.TempDir()
		writeFile(t, dir, "web.yaml", podYAML("web", "", "3600"))
		startRun(t, cs, node.Name, dir, nil)

		first := waitPod(t, cs, "default", "web-life", func(p *corev1.Pod) error { return nil })
		a := first.Annotations
		if a[AnnotationSource] != SourceFile || a[AnnotationHash] == "" || a[AnnotationMirror] != a[AnnotationHash] {
			t.Errorf("annotations %v: want source file and equal hash and mirror", a)
		}
		if _, err := time.Parse(time.RFC3339Nano, a[AnnotationSeen]); err != nil {
			t.Errorf("annotation %s=%q: %v", AnnotationSeen, a[AnnotationSeen], err)
		}
		wantOwner := []metav1.OwnerReference{{APIVersion: "v1", Kind: "Node", Name: node.Name, UID: node.UID, Controller: ptr.To(true)}}
		if diff := cmp.Diff(wantOwner, first.OwnerReferences); diff != "" {
			t.Errorf("owner references (-want +got):\n%s", diff)
		}
		if first.Spec.NodeName != node.Name {
			t.Errorf("nodeName %q, want %q", first.Spec.NodeName, node.Name)
		}
		// Defaults are the API server's.
		if first.Spec.RestartPolicy != corev1.RestartPolicyAlways || first.Spec.TerminationGracePeriodSeconds == nil {
			t.Errorf("spec not defaulted: restartPolicy %q, terminationGracePeriodSeconds %v",
				first.Spec.RestartPolicy, first.Spec.TerminationGracePeriodSeconds)
		}

		// A changed manifest replaces the pod.
		writeFile(t, dir, "web.yaml", podYAML("web", "", "60"))
		second := waitPod(t, cs, "default", "web-life", func(p *corev1.Pod) error {
			if p.UID == first.UID {
				return errors.New("still the first pod")
			}
			return nil
		})
		if second.Annotations[AnnotationMirror] == first.Annotations[AnnotationMirror] {
			t.Errorf("replacement has the old hash %s", first.Annotations[AnnotationMirror])
		}
		if got := second.Spec.Containers[0].Command; !cmp.Equal(got, []string{"sleep", "60"}) {
			t.Errorf("replacement's command %q: want the new manifest's", got)
		}

		// A user's delete is undone.
		if err := cs.CoreV1().Pods("default").Delete(ctx, "web-life", metav1.DeleteOptions{}); err != nil {
			t.Fatal(err)
		}
		third := waitPod(t, cs, "default", "web-life", func(p *corev1.Pod) error {
			if p.UID == second.UID {
				return errors.New("still the deleted pod")
			}
			return nil
		})
		if third.Annotations[AnnotationMirror] != second.Annotations[AnnotationMirror] {
			t.Errorf("recreated pod's hash %s, want %s", third.Annotations[AnnotationMirror], second.Annotations[AnnotationMirror])
		}

		// A removed manifest removes its pod.
		if err := os.Remove(filepath.Join(dir, "web.yaml")); err != nil {
			t.Fatal(err)
		}
		waitGone(t, cs, "default", "web-life")
	})

	t.Run("invalid manifests", func(t *testing.T) {
		t.Parallel()
		node := createNode(t, cs, "bad")
		dir := t.TempDir()
		writeFile(t, dir, "a-garbage.yaml", "{{{ not yaml")
		writeFile(t, dir, "b-configmap.yaml", "apiVersion: v1\nkind: ConfigMap\nmetadata: {name: x}\n")
		writeFile(t, dir, "c-rejected.yaml", strings.Replace(podYAML("rejected", "", "1"), "name: c", "name: Not_A_Label", 1))
		writeFile(t, dir, "d-good.yaml", podYAML("good", "", "3600"))
		writeFile(t, dir, ".hidden.yaml", "{{{ ignored")
		writeFile(t, dir, "README.txt", "ignored")
		rec := record.NewFakeRecorder(100)
		startRun(t, cs, node.Name, dir, rec)

		waitPod(t, cs, "default", "good-bad", func(p *corev1.Pod) error { return nil })
		want := []string{"a-garbage.yaml", "b-configmap.yaml", "c-rejected.yaml"}
		var got []string
		deadline := time.Now().Add(20 * time.Second)
		for len(got) < len(want) && time.Now().Before(deadline) {
			select {
			case ev := <-rec.Events:
				if !strings.HasPrefix(ev, "Warning "+ReasonInvalidManifest+" ") {
					t.Errorf("event %q: want a Warning %s", ev, ReasonInvalidManifest)
				}
				for _, f := range want {
					if strings.Contains(ev, f) {
						got = append(got, f)
					}
				}
			case <-time.After(100 * time.Millisecond):
			}
		}
		if diff := cmp.Diff(want, slices.Sorted(slices.Values(got))); diff != "" {
			t.Fatalf("files with events (-want +got):\n%s", diff)
		}
		if _, err := cs.CoreV1().Pods("default").Get(ctx, "rejected-bad", metav1.GetOptions{}); !apierrors.IsNotFound(err) {
			t.Errorf("rejected pod: got %v, want not found", err)
		}

		// A later pass reports nothing again: adding a good file makes
		// one; then the channel must stay empty.
		writeFile(t, dir, "e-good.yaml", podYAML("other", "", "3600"))
		waitPod(t, cs, "default", "other-bad", func(p *corev1.Pod) error { return nil })
		select {
		case ev := <-rec.Events:
			t.Errorf("event repeated: %q", ev)
		default:
		}

		// A rejected manifest, once fixed, is created.
		writeFile(t, dir, "c-rejected.yaml", podYAML("rejected", "", "1"))
		waitPod(t, cs, "default", "rejected-bad", func(p *corev1.Pod) error { return nil })
	})

	t.Run("node recreated", func(t *testing.T) {
		t.Parallel()
		node := createNode(t, cs, "again")
		dir := t.TempDir()
		writeFile(t, dir, "a.yaml", podYAML("web", "", "3600"))
		startRun(t, cs, node.Name, dir, nil)
		first := waitPod(t, cs, "default", "web-again", func(p *corev1.Pod) error { return nil })

		// No garbage collector runs here: the old Node's pod stays until
		// Run replaces it.
		if err := cs.CoreV1().Nodes().Delete(ctx, node.Name, metav1.DeleteOptions{}); err != nil {
			t.Fatal(err)
		}
		node = createNode(t, cs, "again")
		waitPod(t, cs, "default", "web-again", func(p *corev1.Pod) error {
			if p.UID == first.UID {
				return errors.New("still the first pod")
			}
			if len(p.OwnerReferences) != 1 || p.OwnerReferences[0].UID != node.UID {
				return fmt.Errorf("owners %v, want the new node %s", p.OwnerReferences, node.UID)
			}
			return nil
		})
	})

	t.Run("directory removed and recreated", func(t *testing.T) {
		t.Parallel()
		node := createNode(t, cs, "redir")
		dir := filepath.Join(t.TempDir(), "manifests")
		if err := os.Mkdir(dir, 0o755); err != nil {
			t.Fatal(err)
		}
		writeFile(t, dir, "a.yaml", podYAML("old", "", "3600"))
		startRun(t, cs, node.Name, dir, nil)
		waitPod(t, cs, "default", "old-redir", func(p *corev1.Pod) error { return nil })

		// While the directory is missing nothing changes; the new one is
		// watched again.
		if err := os.RemoveAll(dir); err != nil {
			t.Fatal(err)
		}
		if err := os.Mkdir(dir, 0o755); err != nil {
			t.Fatal(err)
		}
		writeFile(t, dir, "b.yaml", podYAML("new", "", "3600"))
		waitPod(t, cs, "default", "new-redir", func(p *corev1.Pod) error { return nil })
		waitGone(t, cs, "default", "old-redir")
		writeFile(t, dir, "c.yaml", podYAML("newer", "", "3600"))
		waitPod(t, cs, "default", "newer-redir", func(p *corev1.Pod) error { return nil })
	})

	t.Run("namespace and node come later", func(t *testing.T) {
		t.Parallel()
		dir := t.TempDir()
		writeFile(t, dir, "a.yaml", podYAML("late", "later", "3600"))
		writeFile(t, dir, "b.yaml", podYAML("early", "", "3600"))
		startRun(t, cs, "late", dir, nil)

		createNode(t, cs, "late")
		waitPod(t, cs, "default", "early-late", func(p *corev1.Pod) error { return nil })
		// A pass created b.yaml's pod after trying a.yaml's.
		if _, err := cs.CoreV1().Pods("later").Get(ctx, "late-late", metav1.GetOptions{}); !apierrors.IsNotFound(err) {
			t.Fatalf("pod in a missing namespace: got %v, want not found", err)
		}
		if _, err := cs.CoreV1().Namespaces().Create(ctx, &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: "later"}}, metav1.CreateOptions{}); err != nil {
			t.Fatal(err)
		}
		waitPod(t, cs, "later", "late-late", func(p *corev1.Pod) error { return nil })
	})

	t.Run("other pods untouched", func(t *testing.T) {
		t.Parallel()
		node := createNode(t, cs, "keep")
		plain := &corev1.Pod{
			ObjectMeta: metav1.ObjectMeta{Name: "plain", Namespace: "default"},
			Spec: corev1.PodSpec{NodeName: node.Name, Containers: []corev1.Container{{
				Name: "c", Image: "skiff-test/busybox:1.35"}}},
		}
		// A mirror pod of another node, and a pod without the annotation
		// holding a static pod's name.
		foreign := plain.DeepCopy()
		foreign.Name = "foreign"
		foreign.Spec.NodeName = "elsewhere"
		foreign.Annotations = map[string]string{AnnotationMirror: "x", AnnotationSource: SourceFile}
		squatter := plain.DeepCopy()
		squatter.Name = "taken-keep"
		for _, p := range []*corev1.Pod{plain, foreign, squatter} {
			if _, err := cs.CoreV1().Pods("default").Create(ctx, p, metav1.CreateOptions{}); err != nil {
				t.Fatal(err)
			}
		}
		dir := t.TempDir()
		writeFile(t, dir, "taken.yaml", podYAML("taken", "", "3600"))
		writeFile(t, dir, "mine.yaml", podYAML("mine", "", "3600"))
		startRun(t, cs, node.Name, dir, nil)
		waitPod(t, cs, "default", "mine-keep", func(p *corev1.Pod) error { return nil })
		if err := os.Remove(filepath.Join(dir, "mine.yaml")); err != nil {
			t.Fatal(err)
		}
		waitGone(t, cs, "default", "mine-keep")
		for _, p := range []*corev1.Pod{plain, foreign, squatter} {
			got, err := cs.CoreV1().Pods("default").Get(ctx, p.Name, metav1.GetOptions{})
			if err != nil {
				t.Errorf("pod %s: %v", p.Name, err)
				continue
			}
			if got.DeletionTimestamp != nil || IsMirrorPod(got) != IsMirrorPod(p) {
				t.Errorf("pod %s was touched: deletionTimestamp %v, annotations %v", p.Name, got.DeletionTimestamp, got.Annotations)
			}
		}
	})
}

func podYAML(name, namespace, seconds string) string {
	ns := ""
	if namespace != "" {
		ns = "\n  namespace: " + namespace
	}
	return fmt.Sprintf(`apiVersion: v1
kind: Pod
metadata:
  name: %s%s
spec:
  containers:
  - name: c
    image: skiff-test/busybox:1.35
    command: [sleep, "%s"]
`, name, ns, seconds)
}

// writeFile writes a file as an editor would: a temporary dotfile renamed
// into place.
func writeFile(t *testing.T, dir, name, content string) {
	t.Helper()
	tmp := filepath.Join(dir, "."+name+".tmp")
	if err := os.WriteFile(tmp, []byte(content), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.Rename(tmp, filepath.Join(dir, name)); err != nil {
		t.Fatal(err)
	}
}

func createNode(t *testing.T, cs kubernetes.Interface, name string) *corev1.Node {
	t.Helper()
	n, err := cs.CoreV1().Nodes().Create(context.Background(), &corev1.Node{ObjectMeta: metav1.ObjectMeta{Name: name}}, metav1.CreateOptions{})
	if err != nil {
		t.Fatal(err)
	}
	return n
}

// startRun runs Run until the test ends. The long interval leaves the
// changes to inotify and the pod informer, so that the test shows they
// work.
func startRun(t *testing.T, cs kubernetes.Interface, node, dir string, rec record.EventRecorder) {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() {
		done <- Run(ctx, Config{
			Client:   cs,
			NodeName: node,
			Dir:      dir,
			Interval: time.Second,
			Recorder: rec,
			Logger:   slog.New(slog.NewTextHandler(testWriter{t}, nil)),
		})
	}()
	t.Cleanup(func() {
		cancel()
		if err := <-done; err != nil {
			t.Errorf("Run: %v", err)
		}
	})
}

// finalizeDeleted plays the agent: it deletes terminating pods with grace
// 0, as the agent does once it has stopped them.
func finalizeDeleted(ctx context.Context, t *testing.T, cs kubernetes.Interface) {
	for ctx.Err() == nil {
		list, err := cs.CoreV1().Pods("").List(ctx, metav1.ListOptions{})
		if err == nil {
			for _, p := range list.Items {
				if p.DeletionTimestamp == nil {
					continue
				}
				uid := p.UID
				err := cs.CoreV1().Pods(p.Namespace).Delete(ctx, p.Name, metav1.DeleteOptions{
					GracePeriodSeconds: ptr.To(int64(0)),
					Preconditions:      &metav1.Preconditions{UID: &uid},
				})
				if err != nil && !apierrors.IsNotFound(err) && !apierrors.IsConflict(err) && ctx.Err() == nil {
					t.Logf("finalizing %s/%s: %v", p.Namespace, p.Name, err)
				}
			}
		}
		select {
		case <-ctx.Done():
		case <-time.After(50 * time.Millisecond):
		}
	}
}

// waitPod polls until the pod exists, is not terminating and check
// accepts it.
func waitPod(t *testing.T, cs kubernetes.Interface, ns, name string, check func(*corev1.Pod) error) *corev1.Pod {
	t.Helper()
	var last error
	deadline := time.Now().Add(30 * time.Second)
	for time.Now().Before(deadline) {
		p, err := cs.CoreV1().Pods(ns).Get(context.Background(), name, metav1.GetOptions{})
		switch {
		case err != nil:
			last = err
		case p.DeletionTimestamp != nil:
			last = errors.New("terminating")
		default:
			if last = check(p); last == nil {
				return p
			}
		}
		time.Sleep(50 * time.Millisecond)
	}
	t.Fatalf("pod %s/%s: %v", ns, name, last)
	return nil
}

func waitGone(t *testing.T, cs kubernetes.Interface, ns, name string) {
	t.Helper()
	var uid types.UID
	deadline := time.Now().Add(30 * time.Second)
	for time.Now().Before(deadline) {
		p, err := cs.CoreV1().Pods(ns).Get(context.Background(), name, metav1.GetOptions{})
		if apierrors.IsNotFound(err) {
			return
		}
		if err == nil {
			uid = p.UID
		}
		time.Sleep(50 * time.Millisecond)
	}
	t.Fatalf("pod %s/%s (uid %s) still there", ns, name, uid)
}

type testWriter struct{ t *testing.T }

func (w testWriter) Write(p []byte) (int, error) {
	w.t.Log(strings.TrimSuffix(string(p), "\n"))
	return len(p), nil
}
