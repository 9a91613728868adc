package scheduler_test

import (
	"context"
	"fmt"
	"slices"
	"testing"
	"time"

	v1 "k8s.io/api/core/v1"
	storagev1 "k8s.io/api/storage/v1"
	"k8s.io/apimachinery/pkg/api/resource"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/rest"
	storagehelpers "k8s.io/component-helpers/storage/volume"

	"github.com/skiff-dev/skiff/internal/controller"
	"github.com/skiff-dev/skiff/internal/controller/controllertest"
	"github.com/skiff-dev/skiff/internal/controller/persistentvolume"
	"github.com/skiff-dev/skiff/internal/scheduler"
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
		// The claim's update, not the five-minute safety net for
		// unschedulable pods, must have moved p. It has failed twice by
		// now (on create, and again when the volume appeared, an event that
		// could have made it fit), so it waits out a 2s back-off, and the
		// back-off queue is flushed once a second: about 2-3s when the
		// machine is idle, more under load. The bound only separates the
		// two mechanisms; it is not a speed target.
		d := time.Since(start)
		t.Logf("p bound %v after its claim", d)
		if d > 15*time.Second {
			t.Errorf("p bound %v after its claim, want well before the unschedulable flush (5m)", d)
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

// newEnvWithBinder is newEnv with the PV controller running too (it
// creates the default local-path class, provisions and binds).
func newEnvWithBinder(t *testing.T) *env {
	t.Helper()
	client, cfg := controllertest.Run(t, 2, func(deps controller.Deps, _ *rest.Config) (controllertest.Runner, error) {
		return persistentvolume.New(deps), nil
	})
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() {
		done <- scheduler.Run(ctx, scheduler.Config{RestConfig: cfg, Logger: controllertest.Logger(t)})
	}()
	t.Cleanup(func() {
		cancel()
		if err := <-done; err != nil {
			t.Errorf("scheduler Run: %v", err)
		}
	})
	return &env{client: client}
}

// addClaimOf creates a 1Gi claim of class; with owner, controlled by
// that pod (the claim of an ephemeral volume).
func (e *env) addClaimOf(t *testing.T, ns, name, class string, owner *v1.Pod) {
	t.Helper()
	c := &v1.PersistentVolumeClaim{
		ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: name},
		Spec: v1.PersistentVolumeClaimSpec{
			AccessModes:      []v1.PersistentVolumeAccessMode{v1.ReadWriteOnce},
			Resources:        v1.VolumeResourceRequirements{Requests: v1.ResourceList{v1.ResourceStorage: resource.MustParse("1Gi")}},
			StorageClassName: &class,
		},
	}
	if owner != nil {
		c.OwnerReferences = []metav1.OwnerReference{*metav1.NewControllerRef(owner, v1.SchemeGroupVersion.WithKind("Pod"))}
	}
	if _, err := e.client.CoreV1().PersistentVolumeClaims(ns).Create(context.Background(), c, metav1.CreateOptions{}); err != nil {
		t.Fatalf("creating claim %s: %v", name, err)
	}
}

// waitClaimVolume waits until claim is bound and returns its volume.
func (e *env) waitClaimVolume(t *testing.T, ns, claim string) (*v1.PersistentVolumeClaim, *v1.PersistentVolume) {
	t.Helper()
	ctx := context.Background()
	var c *v1.PersistentVolumeClaim
	var pv *v1.PersistentVolume
	poll(t, "waiting for claim "+claim+" to be bound", func() error {
		var err error
		if c, err = e.client.CoreV1().PersistentVolumeClaims(ns).Get(ctx, claim, metav1.GetOptions{}); err != nil {
			return err
		}
		if c.Spec.VolumeName == "" || c.Status.Phase != v1.ClaimBound {
			return fmt.Errorf("claim %s is %s on %q", claim, c.Status.Phase, c.Spec.VolumeName)
		}
		if pv, err = e.client.CoreV1().PersistentVolumes().Get(ctx, c.Spec.VolumeName, metav1.GetOptions{}); err != nil {
			return err
		}
		if ref := pv.Spec.ClaimRef; ref == nil || ref.Namespace != ns || ref.Name != claim || ref.UID != c.UID {
			return fmt.Errorf("volume %s claimRef %+v", pv.Name, pv.Spec.ClaimRef)
		}
		return nil
	})
	return c, pv
}

// requiredHosts returns the hostnames a volume's node affinity requires.
func requiredHosts(pv *v1.PersistentVolume) []string {
	if pv.Spec.NodeAffinity == nil || pv.Spec.NodeAffinity.Required == nil {
		return nil
	}
	var hosts []string
	for _, term := range pv.Spec.NodeAffinity.Required.NodeSelectorTerms {
		for _, req := range term.MatchExpressions {
			if req.Key == v1.LabelHostname && req.Operator == v1.NodeSelectorOpIn {
				hosts = append(hosts, req.Values...)
			}
		}
	}
	return hosts
}

func TestVolumeBindingWaitForFirstConsumer(t *testing.T) {
	e := newEnvWithBinder(t)
	ctx := context.Background()
	e.addNode(t, "wffc-a", "4")
	e.addNode(t, "wffc-b", "4")
	poll(t, "waiting for the default class", func() error {
		sc, err := e.client.StorageV1().StorageClasses().Get(ctx, persistentvolume.DefaultClassName, metav1.GetOptions{})
		if err != nil {
			return err
		}
		if sc.VolumeBindingMode == nil || *sc.VolumeBindingMode != storagev1.VolumeBindingWaitForFirstConsumer {
			return fmt.Errorf("default class binds %v", sc.VolumeBindingMode)
		}
		return nil
	})

	t.Run("local-path claim provisioned on the pod's node", func(t *testing.T) {
		ns := e.namespace(t, "local")
		e.addClaimOf(t, ns, "data", persistentvolume.DefaultClassName, nil)
		e.addPod(t, ns, "p", "100m", withClaim("data"))
		node := e.waitBound(t, ns, "p")
		c, pv := e.waitClaimVolume(t, ns, "data")
		if got := requiredHosts(pv); !slices.Equal(got, []string{node}) {
			t.Errorf("volume %s requires hosts %q, want [%s]", pv.Name, got, node)
		}
		if got := c.Annotations[storagehelpers.AnnSelectedNode]; got != node {
			t.Errorf("claim selected-node = %q, want %q", got, node)
		}
	})

	t.Run("ephemeral volume provisioned on the pod's node", func(t *testing.T) {
		ns := e.namespace(t, "ephemeral")
		e.addPod(t, ns, "p", "100m", func(p *v1.Pod) {
			p.Spec.Volumes = append(p.Spec.Volumes, v1.Volume{Name: "scratch", VolumeSource: v1.VolumeSource{
				Ephemeral: &v1.EphemeralVolumeSource{VolumeClaimTemplate: &v1.PersistentVolumeClaimTemplate{
					Spec: v1.PersistentVolumeClaimSpec{AccessModes: []v1.PersistentVolumeAccessMode{v1.ReadWriteOnce}},
				}},
			}})
		})
		// The ephemeral controller is not running: make its claim.
		pod, err := e.client.CoreV1().Pods(ns).Get(ctx, "p", metav1.GetOptions{})
		if err != nil {
			t.Fatal(err)
		}
		e.addClaimOf(t, ns, "p-scratch", persistentvolume.DefaultClassName, pod)
		node := e.waitBound(t, ns, "p")
		_, pv := e.waitClaimVolume(t, ns, "p-scratch")
		if got := requiredHosts(pv); !slices.Equal(got, []string{node}) {
			t.Errorf("volume %s requires hosts %q, want [%s]", pv.Name, got, node)
		}
	})

	t.Run("static volume pinned to b", func(t *testing.T) {
		ns := e.namespace(t, "static")
		wffc := storagev1.VolumeBindingWaitForFirstConsumer
		_, err := e.client.StorageV1().StorageClasses().Create(ctx, &storagev1.StorageClass{
			ObjectMeta:        metav1.ObjectMeta{Name: "static-local"},
			Provisioner:       storagehelpers.NotSupportedProvisioner,
			VolumeBindingMode: &wffc,
		}, metav1.CreateOptions{})
		if err != nil {
			t.Fatal(err)
		}
		_, err = e.client.CoreV1().PersistentVolumes().Create(ctx, &v1.PersistentVolume{
			ObjectMeta: metav1.ObjectMeta{Name: "pv-static-b"},
			Spec: v1.PersistentVolumeSpec{
				Capacity:               v1.ResourceList{v1.ResourceStorage: resource.MustParse("5Gi")},
				AccessModes:            []v1.PersistentVolumeAccessMode{v1.ReadWriteOnce},
				PersistentVolumeSource: v1.PersistentVolumeSource{HostPath: &v1.HostPathVolumeSource{Path: "/tmp/pv-static-b"}},
				StorageClassName:       "static-local",
				NodeAffinity: &v1.VolumeNodeAffinity{Required: &v1.NodeSelector{NodeSelectorTerms: []v1.NodeSelectorTerm{{
					MatchExpressions: []v1.NodeSelectorRequirement{{Key: v1.LabelHostname, Operator: v1.NodeSelectorOpIn, Values: []string{"wffc-b"}}},
				}}}},
			},
		}, metav1.CreateOptions{})
		if err != nil {
			t.Fatal(err)
		}
		e.addClaimOf(t, ns, "data", "static-local", nil)
		// Available and free, yet not bound until a pod uses the claim.
		e.addPod(t, ns, "p", "100m", withClaim("data"))
		if got := e.waitBound(t, ns, "p"); got != "wffc-b" {
			t.Errorf("p bound to %s, want wffc-b", got)
		}
		if _, pv := e.waitClaimVolume(t, ns, "data"); pv.Name != "pv-static-b" {
			t.Errorf("claim bound to %s, want pv-static-b", pv.Name)
		}

		// No volume left and no provisioner: the next pod waits, with
		// upstream's reason.
		e.addClaimOf(t, ns, "more", "static-local", nil)
		e.addPod(t, ns, "q", "100m", withClaim("more"))
		e.waitUnschedulable(t, ns, "q", "0/2 nodes are available: 2 node(s) didn't find available persistent volumes to bind. "+
			"preemption: 0/2 nodes are available: 2 Preemption is not helpful for scheduling.")
	})
}
