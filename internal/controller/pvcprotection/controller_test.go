package pvcprotection

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"sync"
	"testing"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/api/resource"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/rest"
	"k8s.io/utils/ptr"

	"github.com/skiff-dev/skiff/internal/controller"
	"github.com/skiff-dev/skiff/internal/controller/controllertest"
)

func TestUses(t *testing.T) {
	t.Parallel()
	claim := &corev1.PersistentVolumeClaim{ObjectMeta: metav1.ObjectMeta{Name: "web-scratch", Namespace: "ns"}}
	owned := claim.DeepCopy()
	owned.OwnerReferences = []metav1.OwnerReference{{APIVersion: "v1", Kind: "Pod", Name: "web", UID: "u1", Controller: ptr.To(true)}}
	pod := func(phase corev1.PodPhase, vols ...corev1.Volume) *corev1.Pod {
		return &corev1.Pod{
			ObjectMeta: metav1.ObjectMeta{Name: "web", Namespace: "ns", UID: "u1"},
			Spec:       corev1.PodSpec{Volumes: vols},
			Status:     corev1.PodStatus{Phase: phase},
		}
	}
	pvcVol := func(name string) corev1.Volume {
		return corev1.Volume{Name: "v", VolumeSource: corev1.VolumeSource{PersistentVolumeClaim: &corev1.PersistentVolumeClaimVolumeSource{ClaimName: name}}}
	}
	ephemeral := corev1.Volume{Name: "scratch", VolumeSource: corev1.VolumeSource{Ephemeral: &corev1.EphemeralVolumeSource{}}}
	tests := []struct {
		name  string
		pod   *corev1.Pod
		claim *corev1.PersistentVolumeClaim
		want  bool
	}{
		{"pending pod", pod("", pvcVol("web-scratch")), claim, true},
		{"running pod", pod(corev1.PodRunning, pvcVol("web-scratch")), claim, true},
		{"succeeded pod", pod(corev1.PodSucceeded, pvcVol("web-scratch")), claim, false},
		{"failed pod", pod(corev1.PodFailed, pvcVol("web-scratch")), claim, false},
		{"other claim", pod(corev1.PodRunning, pvcVol("other")), claim, false},
		{"no volumes", pod(corev1.PodRunning), claim, false},
		{"ephemeral claim of the pod", pod(corev1.PodRunning, ephemeral), owned, true},
		{"ephemeral name, claim not the pod's", pod(corev1.PodRunning, ephemeral), claim, false},
		{"ephemeral claim, pod terminated", pod(corev1.PodSucceeded, ephemeral), owned, false},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			if got := uses(tc.pod, tc.claim); got != tc.want {
				t.Errorf("uses = %v, want %v", got, tc.want)
			}
		})
	}
}

// both runs the two controllers, one worker each, so that each queue is
// processed in order (the tests use a later key as a barrier).
type both struct {
	pvc *PVCController
	pv  *PVController
}

func (b both) Run(ctx context.Context, _ int) error {
	var wg sync.WaitGroup
	var errPVC, errPV error
	wg.Go(func() { errPVC = b.pvc.Run(ctx, 1) })
	wg.Go(func() { errPV = b.pv.Run(ctx, 1) })
	wg.Wait()
	return errors.Join(errPVC, errPV)
}

func start(t *testing.T) kubernetes.Interface {
	t.Helper()
	client, _ := controllertest.Run(t, 1, func(deps controller.Deps, _ *rest.Config) (controllertest.Runner, error) {
		return both{NewPVC(deps), NewPV(deps)}, nil
	})
	return client
}

func claim(name string) *corev1.PersistentVolumeClaim {
	return &corev1.PersistentVolumeClaim{
		ObjectMeta: metav1.ObjectMeta{Name: name},
		Spec: corev1.PersistentVolumeClaimSpec{
			AccessModes: []corev1.PersistentVolumeAccessMode{corev1.ReadWriteOnce},
			Resources:   corev1.VolumeResourceRequirements{Requests: corev1.ResourceList{corev1.ResourceStorage: resource.MustParse("1Gi")}},
			// No class: nothing binds it in this test.
			StorageClassName: ptr.To("none"),
		},
	}
}

func podUsing(name string, claims ...string) *corev1.Pod {
	pod := &corev1.Pod{
		ObjectMeta: metav1.ObjectMeta{Name: name},
		Spec:       corev1.PodSpec{Containers: []corev1.Container{{Name: "c", Image: "busybox"}}},
	}
	for i, c := range claims {
		pod.Spec.Volumes = append(pod.Spec.Volumes, corev1.Volume{
			Name:         fmt.Sprintf("v%d", i),
			VolumeSource: corev1.VolumeSource{PersistentVolumeClaim: &corev1.PersistentVolumeClaimVolumeSource{ClaimName: c}},
		})
	}
	return pod
}

func must[T any](t *testing.T) func(T, error) T {
	return func(v T, err error) T {
		t.Helper()
		if err != nil {
			t.Fatal(err)
		}
		return v
	}
}

func gone(get func() error) func() error {
	return func() error {
		err := get()
		if apierrors.IsNotFound(err) {
			return nil
		}
		if err != nil {
			return err
		}
		return errors.New("still there")
	}
}

func TestClaimProtection(t *testing.T) {
	client := start(t)
	ctx := t.Context()
	const ns = "prot"
	must[*corev1.Namespace](t)(client.CoreV1().Namespaces().Create(ctx, &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: ns}}, metav1.CreateOptions{}))
	claims := client.CoreV1().PersistentVolumeClaims(ns)
	pods := client.CoreV1().Pods(ns)
	getClaim := func(name string) func() error {
		return func() error { _, err := claims.Get(ctx, name, metav1.GetOptions{}); return err }
	}
	deleteClaim := func(name string) {
		t.Helper()
		if err := claims.Delete(ctx, name, metav1.DeleteOptions{}); err != nil {
			t.Fatal(err)
		}
	}
	// stillThere deletes an unused claim and waits for it to go: the
	// single worker has then handled every key queued before it.
	barrier := 0
	stillThere := func(name string) {
		t.Helper()
		barrier++
		b := fmt.Sprintf("barrier-%d", barrier)
		must[*corev1.PersistentVolumeClaim](t)(claims.Create(ctx, claim(b), metav1.CreateOptions{}))
		deleteClaim(b)
		controllertest.Eventually(t, gone(getClaim(b)))
		c, err := claims.Get(ctx, name, metav1.GetOptions{})
		if err != nil {
			t.Fatalf("claim %s: %v", name, err)
		}
		if c.DeletionTimestamp == nil || !slices.Contains(c.Finalizers, PVCFinalizer) {
			t.Fatalf("claim %s: deletionTimestamp %v, finalizers %v", name, c.DeletionTimestamp, c.Finalizers)
		}
	}

	t.Run("admission adds the finalizer", func(t *testing.T) {
		c := must[*corev1.PersistentVolumeClaim](t)(claims.Create(ctx, claim("fresh"), metav1.CreateOptions{}))
		if !slices.Contains(c.Finalizers, PVCFinalizer) {
			t.Errorf("finalizers = %v", c.Finalizers)
		}
	})

	t.Run("unused claim goes at once", func(t *testing.T) {
		must[*corev1.PersistentVolumeClaim](t)(claims.Create(ctx, claim("unused"), metav1.CreateOptions{}))
		must[*corev1.Pod](t)(pods.Create(ctx, podUsing("other", "something-else"), metav1.CreateOptions{}))
		deleteClaim("unused")
		controllertest.Eventually(t, gone(getClaim("unused")))
	})

	t.Run("claim stays until its pod is deleted", func(t *testing.T) {
		must[*corev1.PersistentVolumeClaim](t)(claims.Create(ctx, claim("data"), metav1.CreateOptions{}))
		must[*corev1.Pod](t)(pods.Create(ctx, podUsing("db", "data"), metav1.CreateOptions{}))
		deleteClaim("data")
		stillThere("data")
		if err := pods.Delete(ctx, "db", metav1.DeleteOptions{GracePeriodSeconds: ptr.To[int64](0)}); err != nil {
			t.Fatal(err)
		}
		controllertest.Eventually(t, gone(getClaim("data")))
	})

	t.Run("claim stays until its pod terminates", func(t *testing.T) {
		must[*corev1.PersistentVolumeClaim](t)(claims.Create(ctx, claim("logs"), metav1.CreateOptions{}))
		pod := must[*corev1.Pod](t)(pods.Create(ctx, podUsing("job", "logs"), metav1.CreateOptions{}))
		pod.Status.Phase = corev1.PodRunning
		pod = must[*corev1.Pod](t)(pods.UpdateStatus(ctx, pod, metav1.UpdateOptions{}))
		deleteClaim("logs")
		stillThere("logs")
		pod.Status.Phase = corev1.PodSucceeded
		must[*corev1.Pod](t)(pods.UpdateStatus(ctx, pod, metav1.UpdateOptions{}))
		controllertest.Eventually(t, gone(getClaim("logs")))
	})

	t.Run("pod created just before the deletion holds the claim", func(t *testing.T) {
		// However far the cache lags, the live list sees the pod.
		must[*corev1.PersistentVolumeClaim](t)(claims.Create(ctx, claim("fast"), metav1.CreateOptions{}))
		must[*corev1.Pod](t)(pods.Create(ctx, podUsing("quick", "fast"), metav1.CreateOptions{}))
		deleteClaim("fast")
		stillThere("fast")
	})

	t.Run("other finalizers are kept", func(t *testing.T) {
		c := claim("held")
		c.Finalizers = []string{"example.com/hold"}
		must[*corev1.PersistentVolumeClaim](t)(claims.Create(ctx, c, metav1.CreateOptions{}))
		deleteClaim("held")
		controllertest.Eventually(t, func() error {
			got, err := claims.Get(ctx, "held", metav1.GetOptions{})
			if err != nil {
				return err
			}
			if !slices.Equal(got.Finalizers, []string{"example.com/hold"}) {
				return fmt.Errorf("finalizers = %v", got.Finalizers)
			}
			return nil
		})
	})
}

func TestVolumeProtection(t *testing.T) {
	client := start(t)
	ctx := t.Context()
	pvs := client.CoreV1().PersistentVolumes()
	volume := func(name string) *corev1.PersistentVolume {
		return &corev1.PersistentVolume{
			ObjectMeta: metav1.ObjectMeta{Name: name},
			Spec: corev1.PersistentVolumeSpec{
				Capacity:               corev1.ResourceList{corev1.ResourceStorage: resource.MustParse("1Gi")},
				AccessModes:            []corev1.PersistentVolumeAccessMode{corev1.ReadWriteOnce},
				PersistentVolumeSource: corev1.PersistentVolumeSource{HostPath: &corev1.HostPathVolumeSource{Path: "/tmp/" + name}},
				ClaimRef:               &corev1.ObjectReference{Namespace: "ns", Name: "data", UID: types.UID("u1")},
			},
		}
	}
	setPhase := func(pv *corev1.PersistentVolume, p corev1.PersistentVolumePhase) *corev1.PersistentVolume {
		t.Helper()
		pv.Status.Phase = p
		return must[*corev1.PersistentVolume](t)(pvs.UpdateStatus(ctx, pv, metav1.UpdateOptions{}))
	}
	getPV := func(name string) func() error {
		return func() error { _, err := pvs.Get(ctx, name, metav1.GetOptions{}); return err }
	}

	bound := must[*corev1.PersistentVolume](t)(pvs.Create(ctx, volume("bound"), metav1.CreateOptions{}))
	if !slices.Contains(bound.Finalizers, PVFinalizer) {
		t.Fatalf("finalizers = %v", bound.Finalizers)
	}
	setPhase(bound, corev1.VolumeBound)
	if err := pvs.Delete(ctx, "bound", metav1.DeleteOptions{}); err != nil {
		t.Fatal(err)
	}
	// Barrier: a volume that is not Bound goes at once; the single worker
	// has then handled "bound" too.
	must[*corev1.PersistentVolume](t)(pvs.Create(ctx, volume("free"), metav1.CreateOptions{}))
	if err := pvs.Delete(ctx, "free", metav1.DeleteOptions{}); err != nil {
		t.Fatal(err)
	}
	controllertest.Eventually(t, gone(getPV("free")))
	got, err := pvs.Get(ctx, "bound", metav1.GetOptions{})
	if err != nil {
		t.Fatalf("bound volume: %v", err)
	}
	if got.DeletionTimestamp == nil || !slices.Contains(got.Finalizers, PVFinalizer) {
		t.Fatalf("bound volume: deletionTimestamp %v, finalizers %v", got.DeletionTimestamp, got.Finalizers)
	}
	setPhase(got, corev1.VolumeReleased)
	controllertest.Eventually(t, gone(getPV("bound")))
}
