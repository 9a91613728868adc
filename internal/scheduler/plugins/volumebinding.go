package plugins

import (
	"context"
	"fmt"

	"k8s.io/component-helpers/storage/ephemeral"

	v1 "k8s.io/api/core/v1"
	storagev1 "k8s.io/api/storage/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	corelisters "k8s.io/client-go/listers/core/v1"
	storagelisters "k8s.io/client-go/listers/storage/v1"
	"k8s.io/component-helpers/scheduling/corev1/nodeaffinity"
	storagehelpers "k8s.io/component-helpers/storage/volume"

	"github.com/skiff-dev/skiff/internal/scheduler/framework"
)

// VolumeBinding keeps a pod off nodes until its PersistentVolumeClaims
// allow it there, with upstream's reasons:
//   - PreFilter rejects the pod on every node (UnschedulableAndUnresolvable)
//     when a claim it uses (a persistentVolumeClaim volume, or the claim
//     <pod>-<volume> of an ephemeral volume) does not exist, is being
//     deleted, belongs to another pod (ephemeral), or is unbound
//     (spec.volumeName empty) and its class does not delay binding
//     (no class, a class that does not exist, or volumeBindingMode
//     Immediate): "pod has unbound immediate PersistentVolumeClaims".
//   - An unbound claim of a WaitForFirstConsumer class leaves every node
//     feasible. Skiff does not yet pick a node for it (upstream sets
//     volume.kubernetes.io/selected-node in PreBind and waits for the
//     binder), so such a claim is bound, or provisioned, only once
//     something else sets that annotation.
//   - Filter rejects a node (UnschedulableAndUnresolvable, as upstream:
//     preemption cannot move a volume) that the required node affinity of
//     a bound claim's PersistentVolume does not match, and every node when
//     such a volume does not exist.
//
// A claim counts as bound when spec.volumeName is set (upstream also
// waits for the binder's pv.kubernetes.io/bind-completed annotation).
// Unlike the other plugins it reads claims, volumes and classes from the
// scheduler's informer listers (in-memory caches, no I/O); the scheduler
// retries pods it rejected when a claim, volume or class is added or
// updated. With nil listers (Default) it skips every pod.
type VolumeBinding struct {
	listers VolumeListers
}

// VolumeListers are the caches VolumeBinding reads.
type VolumeListers struct {
	Claims  corelisters.PersistentVolumeClaimLister
	Volumes corelisters.PersistentVolumeLister
	Classes storagelisters.StorageClassLister
}

var (
	_ framework.PreFilterPlugin = VolumeBinding{}
	_ framework.FilterPlugin    = VolumeBinding{}
)

// VolumeBinding's rejection reasons, as upstream words them.
const (
	ReasonUnboundImmediateClaims = "pod has unbound immediate PersistentVolumeClaims"
	ReasonVolumeNodeConflict     = "node(s) had volume node affinity conflict"
	ReasonVolumeNotExist         = "node(s) unavailable due to one or more pvc(s) bound to non-existent pv(s)"
)

const volumeBindingKey = "VolumeBinding/filter"

// skipVolumes is VolumeBinding's Skip, shared: most pods use no claim,
// and the framework never changes a Skip status.
var skipVolumes = framework.NewStatus(framework.Skip)

// volumeState is what PreFilter leaves for Filter: the required node
// selectors of the bound volumes, or that one of them is missing.
type volumeState struct {
	selectors []*nodeaffinity.LazyErrorNodeSelector
	missingPV bool
}

// NewVolumeBinding returns the plugin reading l.
func NewVolumeBinding(l VolumeListers) VolumeBinding { return VolumeBinding{listers: l} }

// Name implements framework.Plugin.
func (VolumeBinding) Name() string { return VolumeBindingName }

// PreFilter implements framework.PreFilterPlugin.
func (vb VolumeBinding) PreFilter(_ context.Context, state *framework.CycleState, pi *framework.PodInfo, _ *framework.Snapshot) *framework.Status {
	pod := pi.Pod
	if !hasClaims(pod) || vb.listers.Claims == nil || vb.listers.Volumes == nil {
		return skipVolumes
	}
	st := &volumeState{}
	for i := range pod.Spec.Volumes {
		vol := &pod.Spec.Volumes[i]
		var name string
		switch {
		case vol.PersistentVolumeClaim != nil:
			name = vol.PersistentVolumeClaim.ClaimName
		case vol.Ephemeral != nil:
			name = ephemeral.VolumeClaimName(pod, vol)
		default:
			continue
		}
		claim, err := vb.listers.Claims.PersistentVolumeClaims(pod.Namespace).Get(name)
		if apierrors.IsNotFound(err) {
			return framework.NewStatus(framework.UnschedulableAndUnresolvable, fmt.Sprintf("persistentvolumeclaim %q not found", name))
		}
		if err != nil {
			return framework.AsStatus(fmt.Errorf("getting persistentvolumeclaim %s/%s: %w", pod.Namespace, name, err))
		}
		if claim.DeletionTimestamp != nil {
			return framework.NewStatus(framework.UnschedulableAndUnresolvable, fmt.Sprintf("persistentvolumeclaim %q is being deleted", name))
		}
		if vol.Ephemeral != nil && !metav1.IsControlledBy(claim, pod) {
			return framework.NewStatus(framework.UnschedulableAndUnresolvable,
				fmt.Sprintf("PVC %s/%s was not created for pod %s/%s (pod is not owner)", claim.Namespace, claim.Name, pod.Namespace, pod.Name))
		}
		if claim.Spec.VolumeName == "" {
			delay, err := vb.delayBinding(claim)
			if err != nil {
				return framework.AsStatus(err)
			}
			if !delay {
				return framework.NewStatus(framework.UnschedulableAndUnresolvable, ReasonUnboundImmediateClaims)
			}
			continue
		}
		pv, err := vb.listers.Volumes.Get(claim.Spec.VolumeName)
		if apierrors.IsNotFound(err) {
			st.missingPV = true
			continue
		}
		if err != nil {
			return framework.AsStatus(fmt.Errorf("getting persistentvolume %s: %w", claim.Spec.VolumeName, err))
		}
		if pv.Spec.NodeAffinity != nil && pv.Spec.NodeAffinity.Required != nil {
			st.selectors = append(st.selectors, nodeaffinity.NewLazyErrorNodeSelector(pv.Spec.NodeAffinity.Required))
		}
	}
	if !st.missingPV && len(st.selectors) == 0 {
		return skipVolumes
	}
	state.Write(volumeBindingKey, st)
	return nil
}

// delayBinding reports whether claim's class has volumeBindingMode
// WaitForFirstConsumer. No class, or a class that does not exist (yet),
// binds immediately, as upstream decides.
func (vb VolumeBinding) delayBinding(claim *v1.PersistentVolumeClaim) (bool, error) {
	name := storagehelpers.GetPersistentVolumeClaimClass(claim)
	if name == "" || vb.listers.Classes == nil {
		return false, nil
	}
	class, err := vb.listers.Classes.Get(name)
	if apierrors.IsNotFound(err) {
		return false, nil
	}
	if err != nil {
		return false, fmt.Errorf("getting storageclass %s: %w", name, err)
	}
	return class.VolumeBindingMode != nil && *class.VolumeBindingMode == storagev1.VolumeBindingWaitForFirstConsumer, nil
}

// Filter implements framework.FilterPlugin.
func (VolumeBinding) Filter(_ context.Context, state *framework.CycleState, _ *framework.PodInfo, node *framework.NodeInfo) *framework.Status {
	st, _ := state.Read(volumeBindingKey).(*volumeState)
	if st == nil {
		return nil
	}
	if st.missingPV {
		return framework.NewStatus(framework.UnschedulableAndUnresolvable, ReasonVolumeNotExist)
	}
	for _, sel := range st.selectors {
		// A selector that does not parse matches no node, as upstream's
		// CheckNodeAffinity error counts as a conflict.
		if ok, err := sel.Match(node.Node()); err != nil || !ok {
			return framework.NewStatus(framework.UnschedulableAndUnresolvable, ReasonVolumeNodeConflict)
		}
	}
	return nil
}

// hasClaims reports whether pod uses a claim, directly or through an
// ephemeral volume.
func hasClaims(pod *v1.Pod) bool {
	for i := range pod.Spec.Volumes {
		if pod.Spec.Volumes[i].PersistentVolumeClaim != nil || pod.Spec.Volumes[i].Ephemeral != nil {
			return true
		}
	}
	return false
}
