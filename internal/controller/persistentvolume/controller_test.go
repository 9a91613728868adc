package persistentvolume

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"sync"
	"testing"

	corev1 "k8s.io/api/core/v1"
	storagev1 "k8s.io/api/storage/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/rest"
	"k8s.io/client-go/tools/record"
	storagehelpers "k8s.io/component-helpers/storage/volume"
	"k8s.io/utils/ptr"

	"github.com/skiff-dev/skiff/internal/controller"
	"github.com/skiff-dev/skiff/internal/controller/controllertest"
	"github.com/skiff-dev/skiff/internal/controller/pvcprotection"
	"github.com/skiff-dev/skiff/internal/volumematch/volumetest"
)

// events collects what the controller records.
type events struct {
	mu  sync.Mutex
	rec *record.FakeRecorder
	got []string
}

func (e *events) contains(s string) error {
	e.mu.Lock()
	defer e.mu.Unlock()
	for {
		select {
		case ev := <-e.rec.Events:
			e.got = append(e.got, ev)
			continue
		default:
		}
		break
	}
	for _, ev := range e.got {
		if strings.Contains(ev, s) {
			return nil
		}
	}
	return fmt.Errorf("no event %q among %q", s, e.got)
}

// start runs the binder against a fresh API server; before is called with
// a client before the controller is built.
func start(t *testing.T, before func(kubernetes.Interface)) (kubernetes.Interface, *events) {
	t.Helper()
	ev := &events{}
	client, _ := controllertest.Run(t, 2, func(deps controller.Deps, cfg *rest.Config) (controllertest.Runner, error) {
		if before != nil {
			before(kubernetes.NewForConfigOrDie(cfg))
		}
		ev.rec = deps.Recorder.(*record.FakeRecorder)
		// The API server adds the protection finalizers: run their
		// controllers too, as the controller manager does.
		return withProtection{New(deps), pvcprotection.NewPVC(deps), pvcprotection.NewPV(deps)}, nil
	})
	return client, ev
}

// withProtection runs the binder and the pvc- and pv-protection
// controllers.
type withProtection struct {
	binder *Controller
	pvc    *pvcprotection.PVCController
	pv     *pvcprotection.PVController
}

func (w withProtection) Run(ctx context.Context, workers int) error {
	var wg sync.WaitGroup
	errs := make([]error, 3)
	wg.Go(func() { errs[0] = w.binder.Run(ctx, workers) })
	wg.Go(func() { errs[1] = w.pvc.Run(ctx, 1) })
	wg.Go(func() { errs[2] = w.pv.Run(ctx, 1) })
	wg.Wait()
	return errors.Join(errs...)
}

func create[T any](t *testing.T, f func(context.Context, T, metav1.CreateOptions) (T, error), obj T) T {
	t.Helper()
	got, err := f(t.Context(), obj, metav1.CreateOptions{})
	if err != nil {
		t.Fatalf("creating %T: %v", obj, err)
	}
	return got
}

func newNamespace(t *testing.T, client kubernetes.Interface, name string) {
	t.Helper()
	create(t, client.CoreV1().Namespaces().Create, &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: name}})
}

func claimIn(ns, name, size string, class *string) *corev1.PersistentVolumeClaim {
	c := volumetest.Claim(name, size, class)
	c.Namespace, c.UID = ns, ""
	return c
}

func waitVolume(t *testing.T, client kubernetes.Interface, name string, check func(*corev1.PersistentVolume) error) *corev1.PersistentVolume {
	t.Helper()
	var pv *corev1.PersistentVolume
	controllertest.Eventually(t, func() error {
		var err error
		pv, err = client.CoreV1().PersistentVolumes().Get(t.Context(), name, metav1.GetOptions{})
		if err != nil {
			return err
		}
		return check(pv)
	})
	return pv
}

func waitClaim(t *testing.T, client kubernetes.Interface, ns, name string, check func(*corev1.PersistentVolumeClaim) error) *corev1.PersistentVolumeClaim {
	t.Helper()
	var c *corev1.PersistentVolumeClaim
	controllertest.Eventually(t, func() error {
		var err error
		c, err = client.CoreV1().PersistentVolumeClaims(ns).Get(t.Context(), name, metav1.GetOptions{})
		if err != nil {
			return err
		}
		return check(c)
	})
	return c
}

func phase(p corev1.PersistentVolumePhase) func(*corev1.PersistentVolume) error {
	return func(pv *corev1.PersistentVolume) error {
		if pv.Status.Phase != p {
			return fmt.Errorf("volume %s is %q, want %q", pv.Name, pv.Status.Phase, p)
		}
		return nil
	}
}

func boundTo(volume string) func(*corev1.PersistentVolumeClaim) error {
	return func(c *corev1.PersistentVolumeClaim) error {
		if c.Status.Phase != corev1.ClaimBound || c.Spec.VolumeName != volume {
			return fmt.Errorf("claim %s is %q on %q, want Bound on %q", c.Name, c.Status.Phase, c.Spec.VolumeName, volume)
		}
		return nil
	}
}

// checkBound checks both sides of a finished bind.
func checkBound(t *testing.T, client kubernetes.Interface, ns, claim, volume string) (*corev1.PersistentVolumeClaim, *corev1.PersistentVolume) {
	t.Helper()
	c := waitClaim(t, client, ns, claim, boundTo(volume))
	pv := waitVolume(t, client, volume, phase(corev1.VolumeBound))
	if ref := pv.Spec.ClaimRef; ref == nil || ref.Kind != "PersistentVolumeClaim" || ref.APIVersion != "v1" ||
		ref.Namespace != ns || ref.Name != claim || ref.UID != c.UID || ref.ResourceVersion == "" {
		t.Errorf("volume %s claimRef = %+v", volume, pv.Spec.ClaimRef)
	}
	if c.Annotations[storagehelpers.AnnBindCompleted] != "yes" || c.Annotations[storagehelpers.AnnBoundByController] != "yes" {
		t.Errorf("claim annotations = %v", c.Annotations)
	}
	want, got := pv.Spec.Capacity[corev1.ResourceStorage], c.Status.Capacity[corev1.ResourceStorage]
	if want.Cmp(got) != 0 || len(c.Status.AccessModes) != len(pv.Spec.AccessModes) {
		t.Errorf("claim status = %+v, volume capacity %s modes %v", c.Status, want.String(), pv.Spec.AccessModes)
	}
	return c, pv
}

func TestBinder(t *testing.T) {
	client, ev := start(t, nil)

	t.Run("static volume: smallest fitting", func(t *testing.T) {
		newNamespace(t, client, "static")
		for _, pv := range []*corev1.PersistentVolume{
			volumetest.PV("static-small", "512Mi", "manual"),
			volumetest.PV("static-mid", "2Gi", "manual"),
			volumetest.PV("static-big", "10Gi", "manual"),
			volumetest.PV("static-fast", "1Gi", "fast"),
			volumetest.PV("static-block", "1Gi", "manual", volumetest.WithBlock()),
			volumetest.PV("static-rwx", "1Gi", "manual", volumetest.WithModes(corev1.ReadWriteMany)),
		} {
			create(t, client.CoreV1().PersistentVolumes().Create, pv)
		}
		waitVolume(t, client, "static-small", phase(corev1.VolumeAvailable))
		create(t, client.CoreV1().PersistentVolumeClaims("static").Create, claimIn("static", "data", "1Gi", ptr.To("manual")))
		checkBound(t, client, "static", "data", "static-mid")
		for _, name := range []string{"static-small", "static-big", "static-fast", "static-block", "static-rwx"} {
			waitVolume(t, client, name, phase(corev1.VolumeAvailable))
		}
		// Nothing fits 100Gi: the claim stays Pending.
		create(t, client.CoreV1().PersistentVolumeClaims("static").Create, claimIn("static", "huge", "100Gi", ptr.To("manual")))
		controllertest.Eventually(t, func() error { return ev.contains(`storageclass.storage.k8s.io "manual" not found`) })
		c, err := client.CoreV1().PersistentVolumeClaims("static").Get(t.Context(), "huge", metav1.GetOptions{})
		if err != nil {
			t.Fatal(err)
		}
		if c.Status.Phase != corev1.ClaimPending || c.Spec.VolumeName != "" {
			t.Errorf("huge claim = %q on %q, want Pending", c.Status.Phase, c.Spec.VolumeName)
		}
		// An explicit "" class with nothing available.
		create(t, client.CoreV1().PersistentVolumeClaims("static").Create, claimIn("static", "none", "100Gi", ptr.To("")))
		controllertest.Eventually(t, func() error {
			return ev.contains("no persistent volumes available for this claim and no storage class is set")
		})
	})

	t.Run("pre-bound", func(t *testing.T) {
		newNamespace(t, client, "pre")
		create(t, client.CoreV1().PersistentVolumes().Create, volumetest.PV("pre-free", "1Gi", "pre"))
		create(t, client.CoreV1().PersistentVolumes().Create, volumetest.PV("pre-mine", "5Gi", "pre", volumetest.WithClaimRef("pre", "data", "")))
		waitVolume(t, client, "pre-mine", phase(corev1.VolumeAvailable))
		create(t, client.CoreV1().PersistentVolumeClaims("pre").Create, claimIn("pre", "data", "1Gi", ptr.To("pre")))
		checkBound(t, client, "pre", "data", "pre-mine")

		// A claim naming its volume.
		create(t, client.CoreV1().PersistentVolumes().Create, volumetest.PV("pre-named", "3Gi", "pre"))
		named := claimIn("pre", "named", "1Gi", ptr.To("pre"))
		named.Spec.VolumeName = "pre-named"
		create(t, client.CoreV1().PersistentVolumeClaims("pre").Create, named)
		checkBound(t, client, "pre", "named", "pre-named")
		waitVolume(t, client, "pre-free", phase(corev1.VolumeAvailable))
	})

	t.Run("provisioning with the default class", func(t *testing.T) {
		newNamespace(t, client, "dyn")
		sc, err := client.StorageV1().StorageClasses().Get(t.Context(), DefaultClassName, metav1.GetOptions{})
		if err != nil {
			t.Fatalf("default class: %v", err)
		}
		if sc.Provisioner != Provisioner || ptr.Deref(sc.ReclaimPolicy, "") != corev1.PersistentVolumeReclaimDelete ||
			ptr.Deref(sc.VolumeBindingMode, "") != storagev1.VolumeBindingWaitForFirstConsumer ||
			sc.Annotations[annDefaultClass] != "true" || sc.Parameters["path"] != DefaultPath {
			t.Errorf("default class = %+v", sc)
		}
		claim := create(t, client.CoreV1().PersistentVolumeClaims("dyn").Create, claimIn("dyn", "data", "1Gi", nil))
		name := "pvc-" + string(claim.UID)
		// WaitForFirstConsumer: nothing happens until the scheduler
		// selects a node.
		waitClaim(t, client, "dyn", "data", func(c *corev1.PersistentVolumeClaim) error {
			if ptr.Deref(c.Spec.StorageClassName, "") != DefaultClassName {
				return fmt.Errorf("claim class = %v, want %s", c.Spec.StorageClassName, DefaultClassName)
			}
			return nil
		})
		controllertest.Eventually(t, func() error { return ev.contains("waiting for first consumer to be created before binding") })
		if _, err := client.CoreV1().PersistentVolumes().Get(t.Context(), name, metav1.GetOptions{}); !apierrors.IsNotFound(err) {
			t.Errorf("volume %s provisioned before a node was selected (%v)", name, err)
		}
		patch := []byte(`{"metadata":{"annotations":{"` + storagehelpers.AnnSelectedNode + `":"node-1"}}}`)
		if _, err := client.CoreV1().PersistentVolumeClaims("dyn").Patch(t.Context(), "data", types.MergePatchType, patch, metav1.PatchOptions{}); err != nil {
			t.Fatal(err)
		}
		_, pv := checkBound(t, client, "dyn", "data", name)
		hp := pv.Spec.HostPath
		if hp == nil || hp.Path != DefaultPath+"/"+name || ptr.Deref(hp.Type, "") != corev1.HostPathDirectoryOrCreate {
			t.Errorf("hostPath = %+v", hp)
		}
		if pv.Spec.StorageClassName != DefaultClassName || pv.Spec.PersistentVolumeReclaimPolicy != corev1.PersistentVolumeReclaimDelete ||
			pv.Annotations[storagehelpers.AnnDynamicallyProvisioned] != Provisioner {
			t.Errorf("provisioned volume = %+v", pv)
		}
		na := pv.Spec.NodeAffinity
		if na == nil || na.Required == nil || len(na.Required.NodeSelectorTerms) != 1 {
			t.Fatalf("nodeAffinity = %+v", na)
		}
		exprs := na.Required.NodeSelectorTerms[0].MatchExpressions
		if len(exprs) != 1 || exprs[0].Key != corev1.LabelHostname || exprs[0].Operator != corev1.NodeSelectorOpIn ||
			len(exprs[0].Values) != 1 || exprs[0].Values[0] != "node-1" {
			t.Errorf("nodeAffinity expressions = %+v", exprs)
		}
		// The event follows the volume's create: wait for it.
		controllertest.Eventually(t, func() error { return ev.contains("Successfully provisioned volume " + name) })

		if err := client.CoreV1().PersistentVolumeClaims("dyn").Delete(t.Context(), "data", metav1.DeleteOptions{}); err != nil {
			t.Fatal(err)
		}
		controllertest.Eventually(t, func() error {
			_, err := client.CoreV1().PersistentVolumes().Get(t.Context(), name, metav1.GetOptions{})
			if apierrors.IsNotFound(err) {
				return nil
			}
			return fmt.Errorf("volume %s still there (%v)", name, err)
		})
	})

	t.Run("provisioning with an Immediate class", func(t *testing.T) {
		newNamespace(t, client, "now")
		create(t, client.StorageV1().StorageClasses().Create, &storagev1.StorageClass{
			ObjectMeta: metav1.ObjectMeta{Name: "now"}, Provisioner: Provisioner,
			VolumeBindingMode: ptr.To(storagev1.VolumeBindingImmediate),
		})
		claim := create(t, client.CoreV1().PersistentVolumeClaims("now").Create, claimIn("now", "data", "1Gi", ptr.To("now")))
		_, pv := checkBound(t, client, "now", "data", "pvc-"+string(claim.UID))
		if pv.Spec.NodeAffinity != nil {
			t.Errorf("volume of an Immediate class has node affinity %+v", pv.Spec.NodeAffinity)
		}
	})

	t.Run("WaitForFirstConsumer static volume waits for its pre-binding", func(t *testing.T) {
		newNamespace(t, client, "late")
		create(t, client.StorageV1().StorageClasses().Create, &storagev1.StorageClass{
			ObjectMeta: metav1.ObjectMeta{Name: "late"}, Provisioner: "kubernetes.io/no-provisioner",
			VolumeBindingMode: ptr.To(storagev1.VolumeBindingWaitForFirstConsumer),
		})
		create(t, client.CoreV1().PersistentVolumes().Create, volumetest.PV("late-pv", "1Gi", "late"))
		waitVolume(t, client, "late-pv", phase(corev1.VolumeAvailable))
		claim := create(t, client.CoreV1().PersistentVolumeClaims("late").Create, claimIn("late", "data", "1Gi", ptr.To("late")))
		controllertest.Eventually(t, func() error { return ev.contains("waiting for first consumer") })
		if c, err := client.CoreV1().PersistentVolumeClaims("late").Get(t.Context(), "data", metav1.GetOptions{}); err != nil || c.Spec.VolumeName != "" {
			t.Fatalf("claim bound before the scheduler chose (%v): %q", err, c.Spec.VolumeName)
		}
		// The scheduler pre-binds the volume it chose.
		pv, err := client.CoreV1().PersistentVolumes().Get(t.Context(), "late-pv", metav1.GetOptions{})
		if err != nil {
			t.Fatal(err)
		}
		pv.Spec.ClaimRef = &corev1.ObjectReference{Kind: "PersistentVolumeClaim", APIVersion: "v1", Namespace: "late", Name: "data", UID: claim.UID, ResourceVersion: claim.ResourceVersion}
		if _, err := client.CoreV1().PersistentVolumes().Update(t.Context(), pv, metav1.UpdateOptions{}); err != nil {
			t.Fatal(err)
		}
		checkBound(t, client, "late", "data", "late-pv")
	})

	t.Run("external provisioner", func(t *testing.T) {
		newNamespace(t, client, "ext")
		create(t, client.StorageV1().StorageClasses().Create, &storagev1.StorageClass{
			ObjectMeta: metav1.ObjectMeta{Name: "ext"}, Provisioner: "example.com/csi",
		})
		create(t, client.CoreV1().PersistentVolumeClaims("ext").Create, claimIn("ext", "data", "1Gi", ptr.To("ext")))
		controllertest.Eventually(t, func() error { return ev.contains("external provisioner 'example.com/csi'") })
	})

	t.Run("retain becomes released", func(t *testing.T) {
		newNamespace(t, client, "keep")
		create(t, client.CoreV1().PersistentVolumes().Create, volumetest.PV("keep-pv", "1Gi", "keep"))
		create(t, client.CoreV1().PersistentVolumeClaims("keep").Create, claimIn("keep", "data", "1Gi", ptr.To("keep")))
		checkBound(t, client, "keep", "data", "keep-pv")
		if err := client.CoreV1().PersistentVolumeClaims("keep").Delete(t.Context(), "data", metav1.DeleteOptions{}); err != nil {
			t.Fatal(err)
		}
		pv := waitVolume(t, client, "keep-pv", phase(corev1.VolumeReleased))
		if pv.Spec.ClaimRef == nil || pv.Spec.ClaimRef.Name != "data" {
			t.Errorf("released volume lost its claimRef: %+v", pv.Spec.ClaimRef)
		}
		// A new claim of the same name does not get the released volume.
		create(t, client.CoreV1().PersistentVolumeClaims("keep").Create, claimIn("keep", "data", "1Gi", ptr.To("keep")))
		controllertest.Eventually(t, func() error { return ev.contains(`storageclass.storage.k8s.io "keep" not found`) })
		c, err := client.CoreV1().PersistentVolumeClaims("keep").Get(t.Context(), "data", metav1.GetOptions{})
		if err != nil {
			t.Fatal(err)
		}
		if c.Spec.VolumeName != "" {
			t.Errorf("new claim bound to %q", c.Spec.VolumeName)
		}
	})
}

func TestBoundVolumeDeleted(t *testing.T) {
	client, ev := start(t, nil)
	newNamespace(t, client, "lost")
	create(t, client.CoreV1().PersistentVolumes().Create, volumetest.PV("lost-pv", "1Gi", "lost"))
	create(t, client.CoreV1().PersistentVolumeClaims("lost").Create, claimIn("lost", "data", "1Gi", ptr.To("lost")))
	_, pv := checkBound(t, client, "lost", "data", "lost-pv")
	// Without its pv-protection finalizer the volume goes at once (with
	// it, it would wait for the claim: TestDeletedVolumeWaitsForClaim).
	pv.Finalizers = nil
	if _, err := client.CoreV1().PersistentVolumes().Update(t.Context(), pv, metav1.UpdateOptions{}); err != nil {
		t.Fatal(err)
	}
	if err := client.CoreV1().PersistentVolumes().Delete(t.Context(), "lost-pv", metav1.DeleteOptions{}); err != nil {
		t.Fatal(err)
	}
	waitClaim(t, client, "lost", "data", func(c *corev1.PersistentVolumeClaim) error {
		if c.Status.Phase != corev1.ClaimLost {
			return fmt.Errorf("claim is %q, want Lost", c.Status.Phase)
		}
		return nil
	})
	// The event follows the status write the test saw: wait for it.
	controllertest.Eventually(t, func() error { return ev.contains("ClaimLost") })
}

func TestDeletedVolumeWaitsForClaim(t *testing.T) {
	client, _ := start(t, nil)
	newNamespace(t, client, "held")
	pvs := client.CoreV1().PersistentVolumes()
	create(t, pvs.Create, volumetest.PV("held-pv", "1Gi", "held"))
	create(t, client.CoreV1().PersistentVolumeClaims("held").Create, claimIn("held", "data", "1Gi", ptr.To("held")))
	checkBound(t, client, "held", "data", "held-pv")
	if err := pvs.Delete(t.Context(), "held-pv", metav1.DeleteOptions{}); err != nil {
		t.Fatal(err)
	}
	// The volume stays Bound, and so does the claim, while the claim
	// exists: a later claim's bind shows the binder has looked at both.
	create(t, pvs.Create, volumetest.PV("other-pv", "1Gi", "held"))
	create(t, client.CoreV1().PersistentVolumeClaims("held").Create, claimIn("held", "other", "1Gi", ptr.To("held")))
	checkBound(t, client, "held", "other", "other-pv")
	pv := waitVolume(t, client, "held-pv", phase(corev1.VolumeBound))
	if pv.DeletionTimestamp == nil {
		t.Fatalf("volume not being deleted")
	}
	waitClaim(t, client, "held", "data", boundTo("held-pv"))
	if err := client.CoreV1().PersistentVolumeClaims("held").Delete(t.Context(), "data", metav1.DeleteOptions{}); err != nil {
		t.Fatal(err)
	}
	controllertest.Eventually(t, func() error {
		_, err := pvs.Get(t.Context(), "held-pv", metav1.GetOptions{})
		if apierrors.IsNotFound(err) {
			return nil
		}
		return fmt.Errorf("volume still there (%v)", err)
	})
}

func TestUserDefaultClassKept(t *testing.T) {
	client, ev := start(t, func(c kubernetes.Interface) {
		_, err := c.StorageV1().StorageClasses().Create(context.Background(), &storagev1.StorageClass{
			ObjectMeta:  metav1.ObjectMeta{Name: DefaultClassName},
			Provisioner: "example.com/mine",
		}, metav1.CreateOptions{})
		if err != nil {
			t.Errorf("creating the user's class: %v", err)
		}
	})
	create(t, client.CoreV1().Namespaces().Create, &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: "ns"}})
	// A claim's sync runs after the class's: once the controller has
	// reported on the claim, the class has been ensured.
	create(t, client.CoreV1().PersistentVolumeClaims("ns").Create, claimIn("ns", "data", "1Gi", ptr.To("")))
	controllertest.Eventually(t, func() error {
		return ev.contains("no persistent volumes available for this claim and no storage class is set")
	})
	sc, err := client.StorageV1().StorageClasses().Get(t.Context(), DefaultClassName, metav1.GetOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if sc.Provisioner != "example.com/mine" || sc.Annotations[annDefaultClass] != "" {
		t.Errorf("the user's class was changed: %+v", sc)
	}
}
