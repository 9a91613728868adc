package scheduler_test

import (
	"context"
	"testing"
	"time"

	v1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/resource"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
)

func withClaim(name string) podOpt {
	return func(p *v1.Pod) {
		p.Spec.Volumes = append(p.Spec.Volumes, v1.Volume{Name: "data", VolumeSource: v1.VolumeSource{
			PersistentVolumeClaim: &v1.PersistentVolumeClaimVolumeSource{ClaimName: name},
		}})
	}
}

// addClaim creates a claim without a class, naming volume ("" for none).
func (e *env) addClaim(t *testing.T, ns, name, volume string) *v1.PersistentVolumeClaim {
	t.Helper()
	noClass := ""
	c := &v1.PersistentVolumeClaim{
		ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: name},
		Spec: v1.PersistentVolumeClaimSpec{
			AccessModes:      []v1.PersistentVolumeAccessMode{v1.ReadWriteOnce},
			Resources:        v1.VolumeResourceRequirements{Requests: v1.ResourceList{v1.ResourceStorage: resource.MustParse("1Gi")}},
			StorageClassName: &noClass,
			VolumeName:       volume,
		},
	}
	created, err := e.client.CoreV1().PersistentVolumeClaims(ns).Create(context.Background(), c, metav1.CreateOptions{})
	if err != nil {
		t.Fatalf("creating claim %s: %v", name, err)
	}
	return created
}

// addVolume creates a hostPath volume for claim, requiring the node
// named host if host is not "".
func (e *env) addVolume(t *testing.T, name, host string, claim *v1.PersistentVolumeClaim) {
	t.Helper()
	pv := &v1.PersistentVolume{
		ObjectMeta: metav1.ObjectMeta{Name: name},
		Spec: v1.PersistentVolumeSpec{
			Capacity:               v1.ResourceList{v1.ResourceStorage: resource.MustParse("1Gi")},
			AccessModes:            []v1.PersistentVolumeAccessMode{v1.ReadWriteOnce},
			PersistentVolumeSource: v1.PersistentVolumeSource{HostPath: &v1.HostPathVolumeSource{Path: "/tmp/" + name}},
			ClaimRef:               &v1.ObjectReference{Kind: "PersistentVolumeClaim", APIVersion: "v1", Namespace: claim.Namespace, Name: claim.Name, UID: claim.UID},
		},
	}
	if host != "" {
		pv.Spec.NodeAffinity = &v1.VolumeNodeAffinity{Required: &v1.NodeSelector{NodeSelectorTerms: []v1.NodeSelectorTerm{{
			MatchExpressions: []v1.NodeSelectorRequirement{{Key: v1.LabelHostname, Operator: v1.NodeSelectorOpIn, Values: []string{host}}},
		}}}}
	}
	if _, err := e.client.CoreV1().PersistentVolumes().Create(context.Background(), pv, metav1.CreateOptions{}); err != nil {
		t.Fatalf("creating volume %s: %v", name, err)
	}
	t.Cleanup(func() {
		_ = e.client.CoreV1().PersistentVolumes().Delete(context.Background(), name, metav1.DeleteOptions{})
	})
}

func TestVolumeBinding(t *testing.T) {
	e := newEnv(t)
	ctx := context.Background()

	t.Run("unbound claim keeps the pod pending until it is bound", func(t *testing.T) {
		ns := e.namespace(t, "unbound")
		e.addNode(t, "vol-a", "4")
		claim := e.addClaim(t, ns, "data", "")
		e.addPod(t, ns, "p", "100m", withClaim("data"))
		e.waitUnschedulable(t, ns, "p", "0/1 nodes are available: pod has unbound immediate PersistentVolumeClaims. "+
			"preemption: 0/1 nodes are available: 1 Preemption is not helpful for scheduling.")
		e.waitEvent(t, ns, "p", "FailedScheduling", "0/1 nodes are available: pod has unbound immediate PersistentVolumeClaims.")

		// Bind by hand, as the binder does: the volume's claimRef, then
		// the claim's volumeName.
		e.addVolume(t, "pv-unbound", "", claim)
		claim, err := e.client.CoreV1().PersistentVolumeClaims(ns).Get(ctx, "data", metav1.GetOptions{})
		if err != nil {
			t.Fatal(err)
		}
		claim.Spec.VolumeName = "pv-unbound"
		start := time.Now()
		if _, err := e.client.CoreV1().PersistentVolumeClaims(ns).Update(ctx, claim, metav1.UpdateOptions{}); err != nil {
			t.Fatalf("binding claim: %v", err)
		}
		if got := e.waitBound(t, ns, "p"); got != "vol-a" {
			t.Errorf("p bound to %s, want vol-a", got)
		}
		// The queue's back-off is at most 1s after one failed attempt.
		d := time.Since(start)
		t.Logf("p bound %v after its claim", d)
		if d > 3*time.Second {
			t.Errorf("p bound %v after its claim, want within a few seconds", d)
		}
		_ = e.client.CoreV1().Pods(ns).Delete(ctx, "p", *metav1.NewDeleteOptions(0))
	})

	t.Run("missing claim", func(t *testing.T) {
		ns := e.namespace(t, "missing")
		e.addNode(t, "missing-a", "4")
		e.addPod(t, ns, "p", "100m", withClaim("nope"))
		e.waitUnschedulable(t, ns, "p", `0/1 nodes are available: persistentvolumeclaim "nope" not found. `+
			"preemption: 0/1 nodes are available: 1 Preemption is not helpful for scheduling.")
	})

	t.Run("volume node affinity", func(t *testing.T) {
		ns := e.namespace(t, "affinity")
		e.addNode(t, "aff-a", "4")
		e.addNode(t, "aff-b", "4")
		onB := e.addClaim(t, ns, "on-b", "pv-on-b")
		e.addVolume(t, "pv-on-b", "aff-b", onB)
		for _, name := range []string{"p1", "p2", "p3"} {
			e.addPod(t, ns, name, "100m", withClaim("on-b"))
		}
		for _, name := range []string{"p1", "p2", "p3"} {
			if got := e.waitBound(t, ns, name); got != "aff-b" {
				t.Errorf("%s bound to %s, want aff-b", name, got)
			}
		}

		onC := e.addClaim(t, ns, "on-c", "pv-on-c")
		e.addVolume(t, "pv-on-c", "aff-c", onC)
		e.addPod(t, ns, "q", "100m", withClaim("on-c"))
		e.waitEvent(t, ns, "q", "FailedScheduling", "node(s) had volume node affinity conflict.")
		// A node the volume allows arrives: q moves there.
		e.addNode(t, "aff-c", "4")
		if got := e.waitBound(t, ns, "q"); got != "aff-c" {
			t.Errorf("q bound to %s, want aff-c", got)
		}
		for _, name := range []string{"p1", "p2", "p3", "q"} {
			_ = e.client.CoreV1().Pods(ns).Delete(ctx, name, *metav1.NewDeleteOptions(0))
		}
	})
}
