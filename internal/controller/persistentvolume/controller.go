package persistentvolume

import (
	"context"
	"fmt"
	"log/slog"
	"path"
	"strings"
	"time"

	corev1 "k8s.io/api/core/v1"
	storagev1 "k8s.io/api/storage/v1"
	apiequality "k8s.io/apimachinery/pkg/api/equality"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/labels"
	"k8s.io/client-go/kubernetes"
	corelisters "k8s.io/client-go/listers/core/v1"
	storagelisters "k8s.io/client-go/listers/storage/v1"
	"k8s.io/client-go/tools/cache"
	"k8s.io/client-go/tools/record"
	storagehelpers "k8s.io/component-helpers/storage/volume"
	"k8s.io/utils/ptr"

	"github.com/skiff-dev/skiff/internal/controller"
	"github.com/skiff-dev/skiff/internal/controller/reconcile"
	"github.com/skiff-dev/skiff/internal/volumematch"
)

// Name is the controller's name in logs and the work queue.
const Name = "persistentvolume-binder"

// The default class and its provisioner.
const (
	DefaultClassName = "local-path"
	Provisioner      = "skiff.dev/local-path"
	DefaultPath      = "/var/lib/skiff/storage"
)

// Event reasons, as upstream.
const (
	ReasonFailedBinding         = "FailedBinding"
	ReasonProvisioningSucceeded = "ProvisioningSucceeded"
	ReasonProvisioningFailed    = "ProvisioningFailed"
	ReasonExternalProvisioning  = "ExternalProvisioning"
	ReasonWaitForFirstConsumer  = "WaitForFirstConsumer"
	ReasonClaimLost             = "ClaimLost"
	ReasonVolumeFailedDelete    = "VolumeFailedDelete"
)

// resync is how often an unbound claim is looked at again without a
// trigger (upstream's default --pvclaimbinder-sync-period).
const resync = 15 * time.Second

const (
	claimPrefix  = "claim:"
	volumePrefix = "volume:"
	classKey     = "class"
)

// Controller binds claims to volumes. See the package documentation. Run
// it once.
type Controller struct {
	client   kubernetes.Interface
	claims   corelisters.PersistentVolumeClaimLister
	volumes  corelisters.PersistentVolumeLister
	classes  storagelisters.StorageClassLister
	synced   []cache.InformerSynced
	recorder record.EventRecorder
	log      *slog.Logger
	now      func() time.Time
	loop     *reconcile.Loop
}

// New returns the binder and registers its informers (claims, volumes,
// storage classes) on deps.Informers; start the factory, then call Run.
func New(deps controller.Deps) *Controller {
	log := deps.Log()
	rec := deps.Events()
	claimInf := deps.Informers.Core().V1().PersistentVolumeClaims()
	pvInf := deps.Informers.Core().V1().PersistentVolumes()
	scInf := deps.Informers.Storage().V1().StorageClasses()
	c := &Controller{
		client:   deps.Client,
		claims:   claimInf.Lister(),
		volumes:  pvInf.Lister(),
		classes:  scInf.Lister(),
		synced:   []cache.InformerSynced{claimInf.Informer().HasSynced, pvInf.Informer().HasSynced, scInf.Informer().HasSynced},
		recorder: rec,
		log:      log,
		now:      deps.Clock(),
	}
	c.loop = reconcile.New(Name, c.sync, log)
	handlers := []struct {
		inf cache.SharedIndexInformer
		h   cache.ResourceEventHandler
	}{
		{claimInf.Informer(), c.loop.HandlerFor(c.claimKeys)},
		{pvInf.Informer(), c.loop.HandlerFor(c.volumeKeys)},
		{scInf.Informer(), c.loop.HandlerFor(func(any) []string { return c.unboundClaimKeys() })},
	}
	for _, h := range handlers {
		if _, err := h.inf.AddEventHandler(h.h); err != nil {
			log.Info("cannot add event handler", "err", err)
		}
	}
	return c
}

// Run ensures the default class, waits for the caches, runs workers
// workers and blocks until ctx is done. It returns nil on cancellation.
func (c *Controller) Run(ctx context.Context, workers int) error {
	c.loop.Enqueue(classKey)
	return c.loop.Run(ctx, workers, c.synced...)
}

// claimKeys: the claim, the volume it names, and volumes whose claimRef
// names it (a deleted claim releases them).
func (c *Controller) claimKeys(obj any) []string {
	claim, ok := obj.(*corev1.PersistentVolumeClaim)
	if !ok {
		return nil
	}
	keys := []string{claimPrefix + claim.Namespace + "/" + claim.Name}
	if claim.Spec.VolumeName != "" {
		keys = append(keys, volumePrefix+claim.Spec.VolumeName)
	}
	pvs, _ := c.volumes.List(labels.Everything())
	for _, pv := range pvs {
		if ref := pv.Spec.ClaimRef; ref != nil && ref.Namespace == claim.Namespace && ref.Name == claim.Name && pv.Name != claim.Spec.VolumeName {
			keys = append(keys, volumePrefix+pv.Name)
		}
	}
	return keys
}

// volumeKeys: the volume, the claim it names, and every unbound claim when
// the volume is free (it may fit one).
func (c *Controller) volumeKeys(obj any) []string {
	pv, ok := obj.(*corev1.PersistentVolume)
	if !ok {
		return nil
	}
	keys := []string{volumePrefix + pv.Name}
	if ref := pv.Spec.ClaimRef; ref != nil {
		return append(keys, claimPrefix+ref.Namespace+"/"+ref.Name)
	}
	return append(keys, c.unboundClaimKeys()...)
}

func (c *Controller) unboundClaimKeys() []string {
	claims, _ := c.claims.List(labels.Everything())
	var keys []string
	for _, claim := range claims {
		if claim.Spec.VolumeName == "" {
			keys = append(keys, claimPrefix+claim.Namespace+"/"+claim.Name)
		}
	}
	return keys
}

func (c *Controller) sync(ctx context.Context, key string) (time.Duration, error) {
	switch {
	case key == classKey:
		return 0, c.ensureDefaultClass(ctx)
	case strings.HasPrefix(key, claimPrefix):
		ns, name, err := cache.SplitMetaNamespaceKey(strings.TrimPrefix(key, claimPrefix))
		if err != nil {
			return 0, nil
		}
		return c.syncClaim(ctx, ns, name)
	case strings.HasPrefix(key, volumePrefix):
		return 0, c.syncVolume(ctx, strings.TrimPrefix(key, volumePrefix))
	}
	return 0, nil
}

// ensureDefaultClass creates the local-path class unless a class of that
// name exists.
func (c *Controller) ensureDefaultClass(ctx context.Context) error {
	if _, err := c.classes.Get(DefaultClassName); err == nil {
		return nil
	}
	sc := &storagev1.StorageClass{
		ObjectMeta: metav1.ObjectMeta{
			Name:        DefaultClassName,
			Annotations: map[string]string{annDefaultClass: "true"},
		},
		Provisioner:       Provisioner,
		ReclaimPolicy:     ptr.To(corev1.PersistentVolumeReclaimDelete),
		VolumeBindingMode: ptr.To(storagev1.VolumeBindingWaitForFirstConsumer),
		Parameters:        map[string]string{"path": DefaultPath},
	}
	_, err := c.client.StorageV1().StorageClasses().Create(ctx, sc, metav1.CreateOptions{})
	if err != nil && !apierrors.IsAlreadyExists(err) {
		return fmt.Errorf("creating storage class %s: %w", DefaultClassName, err)
	}
	return nil
}

// defaultClass is the newest class marked default, or nil.
func (c *Controller) defaultClass() *storagev1.StorageClass {
	scs, err := c.classes.List(labels.Everything())
	if err != nil {
		return nil
	}
	var best *storagev1.StorageClass
	for _, sc := range scs {
		if sc.Annotations[annDefaultClass] != "true" && sc.Annotations[annBetaDefaultClass] != "true" {
			continue
		}
		if best == nil || sc.CreationTimestamp.After(best.CreationTimestamp.Time) ||
			(sc.CreationTimestamp.Equal(&best.CreationTimestamp) && sc.Name < best.Name) {
			best = sc
		}
	}
	return best
}

// ---- claims ----

func (c *Controller) syncClaim(ctx context.Context, ns, name string) (time.Duration, error) {
	claim, err := c.claims.PersistentVolumeClaims(ns).Get(name)
	if apierrors.IsNotFound(err) {
		return 0, nil // its volumes are reclaimed by their own syncs
	}
	if err != nil {
		return 0, fmt.Errorf("getting claim %s/%s: %w", ns, name, err)
	}
	if claim.DeletionTimestamp != nil {
		return 0, nil
	}
	if claim.Spec.VolumeName != "" {
		return 0, c.syncNamedClaim(ctx, claim)
	}
	if claim.Spec.StorageClassName == nil {
		if _, ok := claim.Annotations[corev1.BetaStorageClassAnnotation]; !ok {
			if sc := c.defaultClass(); sc != nil {
				upd := claim.DeepCopy()
				upd.Spec.StorageClassName = ptr.To(sc.Name)
				if _, err := c.client.CoreV1().PersistentVolumeClaims(ns).Update(ctx, upd, metav1.UpdateOptions{}); err != nil {
					return 0, fmt.Errorf("setting the default class on claim %s/%s: %w", ns, name, err)
				}
				return 0, nil // the update triggers the next step
			}
		}
	}
	pvs, err := c.volumes.List(labels.Everything())
	if err != nil {
		return 0, fmt.Errorf("listing volumes: %w", err)
	}
	// A class that does not exist (yet) binds immediately, as upstream.
	delay, err := storagehelpers.IsDelayBindingMode(claim, c.classes)
	if err != nil {
		return 0, fmt.Errorf("storage class of claim %s/%s: %w", claim.Namespace, claim.Name, err)
	}
	if pv := volumematch.FindVolume(pvs, claim, delay); pv != nil {
		return 0, c.bind(ctx, pv, claim)
	}
	return resync, c.provision(ctx, claim)
}

// syncNamedClaim handles a claim whose spec.volumeName is set: a pre-bound
// claim (bind it if the volume is free and matches), a half-done bind
// (finish it), a bound claim (check it still is).
func (c *Controller) syncNamedClaim(ctx context.Context, claim *corev1.PersistentVolumeClaim) error {
	pv, err := c.volumes.Get(claim.Spec.VolumeName)
	if apierrors.IsNotFound(err) {
		if claim.Status.Phase == corev1.ClaimBound {
			return c.lose(ctx, claim, "Bound claim has lost reference to PersistentVolume. Data on the volume is lost!")
		}
		// Pre-bound to a volume that does not exist (yet): wait for it.
		return nil
	}
	if err != nil {
		return fmt.Errorf("getting volume %s: %w", claim.Spec.VolumeName, err)
	}
	switch {
	case storagehelpers.IsVolumeBoundToClaim(pv, claim):
		if why := volumematch.Fits(pv, claim); why != "" && pv.Spec.ClaimRef.UID == "" {
			c.recorder.Eventf(claim, corev1.EventTypeWarning, ReasonFailedBinding, "Cannot bind to requested volume %q: %s", pv.Name, why)
			return nil
		}
		return c.bind(ctx, pv, claim)
	case pv.Spec.ClaimRef == nil:
		if !volumematch.Available(pv) {
			return nil
		}
		if ok, why := volumematch.Match(pv, claim); !ok {
			c.recorder.Eventf(claim, corev1.EventTypeWarning, ReasonFailedBinding, "Cannot bind to requested volume %q: %s", pv.Name, why)
			return nil
		}
		return c.bind(ctx, pv, claim)
	default:
		if claim.Annotations[storagehelpers.AnnBindCompleted] == "yes" {
			return c.lose(ctx, claim, "Two claims are bound to the same volume, this one is bound incorrectly")
		}
		c.recorder.Eventf(claim, corev1.EventTypeWarning, ReasonFailedBinding, "volume %q already bound to a different claim.", pv.Name)
		return nil
	}
}

func (c *Controller) lose(ctx context.Context, claim *corev1.PersistentVolumeClaim, msg string) error {
	if claim.Status.Phase == corev1.ClaimLost {
		return nil
	}
	upd := claim.DeepCopy()
	upd.Status.Phase = corev1.ClaimLost
	if _, err := c.client.CoreV1().PersistentVolumeClaims(claim.Namespace).UpdateStatus(ctx, upd, metav1.UpdateOptions{}); err != nil {
		return fmt.Errorf("marking claim %s/%s lost: %w", claim.Namespace, claim.Name, err)
	}
	c.recorder.Event(claim, corev1.EventTypeWarning, ReasonClaimLost, msg)
	return nil
}

// bind binds pv and claim in three steps, each skipped when done: the
// volume's claimRef and phase, the claim's volumeName and annotations, the
// claim's status.
func (c *Controller) bind(ctx context.Context, pv *corev1.PersistentVolume, claim *corev1.PersistentVolumeClaim) error {
	ref := pv.Spec.ClaimRef
	if ref == nil || ref.UID != claim.UID || ref.Kind == "" {
		upd := pv.DeepCopy()
		if ref == nil || ref.UID == "" {
			metav1.SetMetaDataAnnotation(&upd.ObjectMeta, storagehelpers.AnnBoundByController, "yes")
		}
		upd.Spec.ClaimRef = &corev1.ObjectReference{
			Kind: "PersistentVolumeClaim", APIVersion: "v1",
			Namespace: claim.Namespace, Name: claim.Name, UID: claim.UID, ResourceVersion: claim.ResourceVersion,
		}
		got, err := c.client.CoreV1().PersistentVolumes().Update(ctx, upd, metav1.UpdateOptions{})
		if err != nil {
			return fmt.Errorf("binding volume %s to claim %s/%s: %w", pv.Name, claim.Namespace, claim.Name, err)
		}
		pv = got
	}
	if pv.Status.Phase != corev1.VolumeBound {
		if err := c.setVolumePhase(ctx, pv, corev1.VolumeBound); err != nil {
			return err
		}
	}
	if claim.Spec.VolumeName != pv.Name || claim.Annotations[storagehelpers.AnnBindCompleted] != "yes" || claim.Annotations[storagehelpers.AnnBoundByController] != "yes" {
		upd := claim.DeepCopy()
		upd.Spec.VolumeName = pv.Name
		metav1.SetMetaDataAnnotation(&upd.ObjectMeta, storagehelpers.AnnBindCompleted, "yes")
		metav1.SetMetaDataAnnotation(&upd.ObjectMeta, storagehelpers.AnnBoundByController, "yes")
		got, err := c.client.CoreV1().PersistentVolumeClaims(claim.Namespace).Update(ctx, upd, metav1.UpdateOptions{})
		if err != nil {
			return fmt.Errorf("binding claim %s/%s to volume %s: %w", claim.Namespace, claim.Name, pv.Name, err)
		}
		claim = got
	}
	if claim.Status.Phase != corev1.ClaimBound ||
		!apiequality.Semantic.DeepEqual(claim.Status.AccessModes, pv.Spec.AccessModes) ||
		!apiequality.Semantic.DeepEqual(claim.Status.Capacity, pv.Spec.Capacity) {
		upd := claim.DeepCopy()
		upd.Status.Phase = corev1.ClaimBound
		upd.Status.AccessModes = pv.Spec.AccessModes
		upd.Status.Capacity = pv.Spec.Capacity
		if _, err := c.client.CoreV1().PersistentVolumeClaims(claim.Namespace).UpdateStatus(ctx, upd, metav1.UpdateOptions{}); err != nil {
			return fmt.Errorf("updating the status of claim %s/%s: %w", claim.Namespace, claim.Name, err)
		}
		c.log.Info("bound", "claim", claim.Namespace+"/"+claim.Name, "volume", pv.Name)
	}
	return nil
}

// provision creates a volume for a claim no volume fits, when its class is
// ours; otherwise it records why the claim waits.
func (c *Controller) provision(ctx context.Context, claim *corev1.PersistentVolumeClaim) error {
	className := storagehelpers.GetPersistentVolumeClaimClass(claim)
	if className == "" {
		c.recorder.Event(claim, corev1.EventTypeNormal, ReasonFailedBinding, "no persistent volumes available for this claim and no storage class is set")
		return nil
	}
	sc, err := c.classes.Get(className)
	if apierrors.IsNotFound(err) {
		c.recorder.Eventf(claim, corev1.EventTypeWarning, ReasonProvisioningFailed, "storageclass.storage.k8s.io %q not found", className)
		return nil
	}
	if err != nil {
		return fmt.Errorf("getting storage class %s: %w", className, err)
	}
	node := claim.Annotations[storagehelpers.AnnSelectedNode]
	if sc.VolumeBindingMode != nil && *sc.VolumeBindingMode == storagev1.VolumeBindingWaitForFirstConsumer && node == "" {
		c.recorder.Event(claim, corev1.EventTypeNormal, ReasonWaitForFirstConsumer, "waiting for first consumer to be created before binding")
		return nil
	}
	if sc.Provisioner != Provisioner {
		c.recorder.Eventf(claim, corev1.EventTypeNormal, ReasonExternalProvisioning,
			"Waiting for a volume to be created either by the external provisioner '%s' or manually by the system administrator. If volume creation is delayed, please verify that the provisioner is running and correctly registered.", sc.Provisioner)
		return nil
	}
	pv := NewVolume(claim, sc)
	if _, err := c.client.CoreV1().PersistentVolumes().Create(ctx, pv, metav1.CreateOptions{}); err != nil {
		if apierrors.IsAlreadyExists(err) {
			return nil // an earlier attempt created it; binding follows from its event
		}
		c.recorder.Eventf(claim, corev1.EventTypeWarning, ReasonProvisioningFailed, "Failed to provision volume with StorageClass %q: %v", sc.Name, err)
		return fmt.Errorf("provisioning volume %s for claim %s/%s: %w", pv.Name, claim.Namespace, claim.Name, err)
	}
	c.recorder.Eventf(claim, corev1.EventTypeNormal, ReasonProvisioningSucceeded, "Successfully provisioned volume %s using %s", pv.Name, Provisioner)
	return nil
}

// NewVolume is the hostPath volume the local-path provisioner creates for
// claim of class sc, pre-bound to the claim.
func NewVolume(claim *corev1.PersistentVolumeClaim, sc *storagev1.StorageClass) *corev1.PersistentVolume {
	name := "pvc-" + string(claim.UID)
	base := sc.Parameters["path"]
	if base == "" {
		base = DefaultPath
	}
	policy := corev1.PersistentVolumeReclaimDelete
	if sc.ReclaimPolicy != nil {
		policy = *sc.ReclaimPolicy
	}
	pv := &corev1.PersistentVolume{
		ObjectMeta: metav1.ObjectMeta{
			Name:        name,
			Annotations: map[string]string{storagehelpers.AnnDynamicallyProvisioned: Provisioner},
		},
		Spec: corev1.PersistentVolumeSpec{
			Capacity: corev1.ResourceList{corev1.ResourceStorage: claim.Spec.Resources.Requests[corev1.ResourceStorage]},
			PersistentVolumeSource: corev1.PersistentVolumeSource{HostPath: &corev1.HostPathVolumeSource{
				Path: path.Join(base, name),
				Type: ptr.To(corev1.HostPathDirectoryOrCreate),
			}},
			AccessModes:                   append([]corev1.PersistentVolumeAccessMode(nil), claim.Spec.AccessModes...),
			PersistentVolumeReclaimPolicy: policy,
			StorageClassName:              sc.Name,
			VolumeMode:                    ptr.To(volumematch.VolumeMode(claim.Spec.VolumeMode)),
			MountOptions:                  append([]string(nil), sc.MountOptions...),
			ClaimRef: &corev1.ObjectReference{
				Kind: "PersistentVolumeClaim", APIVersion: "v1",
				Namespace: claim.Namespace, Name: claim.Name, UID: claim.UID, ResourceVersion: claim.ResourceVersion,
			},
		},
	}
	if node := claim.Annotations[storagehelpers.AnnSelectedNode]; node != "" {
		pv.Spec.NodeAffinity = &corev1.VolumeNodeAffinity{Required: &corev1.NodeSelector{
			NodeSelectorTerms: []corev1.NodeSelectorTerm{{MatchExpressions: []corev1.NodeSelectorRequirement{{
				Key: corev1.LabelHostname, Operator: corev1.NodeSelectorOpIn, Values: []string{node},
			}}}},
		}}
	}
	return pv
}

// ---- volumes ----

func (c *Controller) syncVolume(ctx context.Context, name string) error {
	pv, err := c.volumes.Get(name)
	if apierrors.IsNotFound(err) {
		return nil
	}
	if err != nil {
		return fmt.Errorf("getting volume %s: %w", name, err)
	}
	if pv.DeletionTimestamp != nil {
		return c.syncDeletedVolume(ctx, pv)
	}
	ref := pv.Spec.ClaimRef
	if ref == nil || ref.UID == "" {
		return c.setVolumePhase(ctx, pv, corev1.VolumeAvailable)
	}
	claim, err := c.claims.PersistentVolumeClaims(ref.Namespace).Get(ref.Name)
	if err != nil && !apierrors.IsNotFound(err) {
		return fmt.Errorf("getting claim %s/%s: %w", ref.Namespace, ref.Name, err)
	}
	if claim == nil || claim.UID != ref.UID {
		// The cache may lag behind (a claim just created): ask the API.
		claim, err = c.client.CoreV1().PersistentVolumeClaims(ref.Namespace).Get(ctx, ref.Name, metav1.GetOptions{})
		if err != nil && !apierrors.IsNotFound(err) {
			return fmt.Errorf("getting claim %s/%s: %w", ref.Namespace, ref.Name, err)
		}
		if err != nil || claim.UID != ref.UID {
			return c.reclaim(ctx, pv)
		}
	}
	switch claim.Spec.VolumeName {
	case pv.Name:
		return c.setVolumePhase(ctx, pv, corev1.VolumeBound)
	case "":
		// A bind in progress (or a provisioned volume): the claim's sync
		// finishes it.
		c.loop.Enqueue(claimPrefix + claim.Namespace + "/" + claim.Name)
		return nil
	default:
		// The claim is bound to another volume. Undo our own binding;
		// leave a user's pre-binding alone.
		if pv.Annotations[storagehelpers.AnnBoundByController] != "yes" {
			return nil
		}
		upd := pv.DeepCopy()
		upd.Spec.ClaimRef = nil
		delete(upd.Annotations, storagehelpers.AnnBoundByController)
		got, err := c.client.CoreV1().PersistentVolumes().Update(ctx, upd, metav1.UpdateOptions{})
		if err != nil {
			return fmt.Errorf("unbinding volume %s: %w", pv.Name, err)
		}
		return c.setVolumePhase(ctx, got, corev1.VolumeAvailable)
	}
}

// syncDeletedVolume releases a Bound volume being deleted once its claim
// is gone, so that the pv-protection controller lets it go; it stays Bound
// while the claim exists (also while the claim is being deleted).
func (c *Controller) syncDeletedVolume(ctx context.Context, pv *corev1.PersistentVolume) error {
	if pv.Status.Phase != corev1.VolumeBound {
		return nil
	}
	if ref := pv.Spec.ClaimRef; ref != nil && ref.UID != "" {
		claim, err := c.client.CoreV1().PersistentVolumeClaims(ref.Namespace).Get(ctx, ref.Name, metav1.GetOptions{})
		if err != nil && !apierrors.IsNotFound(err) {
			return fmt.Errorf("getting claim %s/%s: %w", ref.Namespace, ref.Name, err)
		}
		if err == nil && claim.UID == ref.UID {
			return nil
		}
	}
	return c.setVolumePhase(ctx, pv, corev1.VolumeReleased)
}

// reclaim handles a volume whose claim is gone: delete what we
// provisioned with policy Delete, release everything else. A volume to
// delete is first marked Released: the pv-protection controller removes
// its finalizer only once it is no longer Bound.
func (c *Controller) reclaim(ctx context.Context, pv *corev1.PersistentVolume) error {
	if pv.Spec.PersistentVolumeReclaimPolicy == corev1.PersistentVolumeReclaimDelete && pv.Annotations[storagehelpers.AnnDynamicallyProvisioned] == Provisioner {
		if err := c.setVolumePhase(ctx, pv, corev1.VolumeReleased); err != nil {
			return err
		}
		err := c.client.CoreV1().PersistentVolumes().Delete(ctx, pv.Name, metav1.DeleteOptions{
			Preconditions: &metav1.Preconditions{UID: &pv.UID},
		})
		if err != nil && !apierrors.IsNotFound(err) {
			return fmt.Errorf("deleting released volume %s: %w", pv.Name, err)
		}
		c.log.Info("deleted released volume", "volume", pv.Name)
		return nil
	}
	if pv.Status.Phase == corev1.VolumeReleased {
		return nil
	}
	if err := c.setVolumePhase(ctx, pv, corev1.VolumeReleased); err != nil {
		return err
	}
	if pv.Spec.PersistentVolumeReclaimPolicy == corev1.PersistentVolumeReclaimDelete {
		c.recorder.Eventf(pv, corev1.EventTypeWarning, ReasonVolumeFailedDelete, "skiff deletes only volumes provisioned by %s; delete this one by hand", Provisioner)
	}
	return nil
}

func (c *Controller) setVolumePhase(ctx context.Context, pv *corev1.PersistentVolume, phase corev1.PersistentVolumePhase) error {
	if pv.Status.Phase == phase {
		return nil
	}
	upd := pv.DeepCopy()
	upd.Status.Phase = phase
	upd.Status.Reason, upd.Status.Message = "", ""
	upd.Status.LastPhaseTransitionTime = ptr.To(metav1.NewTime(c.now()))
	if _, err := c.client.CoreV1().PersistentVolumes().UpdateStatus(ctx, upd, metav1.UpdateOptions{}); err != nil {
		return fmt.Errorf("setting volume %s %s: %w", pv.Name, phase, err)
	}
	return nil
}
