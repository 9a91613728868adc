package plugins

import (
	"context"
	"fmt"
	"slices"

	"k8s.io/component-helpers/storage/ephemeral"

	v1 "k8s.io/api/core/v1"
	storagev1 "k8s.io/api/storage/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/labels"
	corelisters "k8s.io/client-go/listers/core/v1"
	storagelisters "k8s.io/client-go/listers/storage/v1"
	"k8s.io/component-helpers/scheduling/corev1/nodeaffinity"
	storagehelpers "k8s.io/component-helpers/storage/volume"

	"github.com/skiff-dev/skiff/internal/scheduler/framework"
	"github.com/skiff-dev/skiff/internal/volumematch"
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
//   - An unbound claim of a WaitForFirstConsumer class ("delayed") is
//     placed per node by Filter, as upstream's binder does: a volume
//     pre-bound to the claim (claimRef) decides alone — the node must
//     satisfy its node affinity; otherwise the smallest Available,
//     unclaimed volume that matches the claim (volumematch.Match:
//     class, size, access modes, volumeMode, selector) and whose node
//     affinity admits the node is taken, one volume per claim of the pod;
//     with none, the class's provisioner must be able to provision there:
//     any provisioner but "" and kubernetes.io/no-provisioner, on a node
//     its allowedTopologies admit (skiff.dev/local-path, skiff's own, and
//     external provisioners alike; upstream lets an external one decide
//     later, and skiff checks no storage capacity). A claim already
//     carrying volume.kubernetes.io/selected-node (an earlier attempt
//     chose a node) fits that node only: upstream would overwrite the
//     annotation, but skiff's provisioner acts on it at once, so moving
//     the pod elsewhere would strand it away from its volume. A node that
//     fails any of this is rejected (UnschedulableAndUnresolvable) with
//     "node(s) didn't find available persistent volumes to bind".
//   - Filter rejects a node (UnschedulableAndUnresolvable, as upstream:
//     preemption cannot move a volume) that the required node affinity of
//     a bound claim's PersistentVolume does not match, and every node when
//     such a volume does not exist.
//
// Once the scheduler has chosen a node it calls Bindings for the writes
// the delayed claims need there (pre-bind the chosen volume, or set
// selected-node so that the claim is provisioned on that node) and waits
// for the claims to be bound before binding the pod (upstream's PreBind).
//
// A claim counts as bound when spec.volumeName is set (upstream also
// waits for the binder's pv.kubernetes.io/bind-completed annotation).
// Unlike the other plugins it reads claims, volumes and classes from the
// scheduler's informer listers (in-memory caches, no I/O); the scheduler
// retries pods it rejected when a claim, volume or class is added or
// updated. Unlike upstream it keeps no assume cache of volumes: two pods
// may choose the same free volume in a row, and the second pre-bind then
// fails on the volume's resourceVersion and that pod is retried. With nil
// listers (Default) it skips every pod.
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
	ReasonBindConflict           = "node(s) didn't find available persistent volumes to bind"
)

const volumeBindingKey = "VolumeBinding/filter"

// skipVolumes is VolumeBinding's Skip, shared: most pods use no claim,
// and the framework never changes a Skip status.
var skipVolumes = framework.NewStatus(framework.Skip)

// volumeState is what PreFilter leaves for Filter: the required node
// selectors of the bound volumes, or that one of them is missing, and
// the delayed claims. Read-only once written (Filter runs in parallel).
type volumeState struct {
	selectors []*nodeaffinity.LazyErrorNodeSelector
	missingPV bool
	delayed   []delayedClaim
}

// delayedClaim is an unbound claim of a WaitForFirstConsumer class.
type delayedClaim struct {
	claim *v1.PersistentVolumeClaim
	class *storagev1.StorageClass
	// preBound: candidates is the one volume pre-bound to the claim, and
	// no other volume nor provisioning may serve it.
	preBound bool
	// candidates are the volumes the claim may bind to on some node.
	candidates []*v1.PersistentVolume
}

// ClaimBinding is one write the scheduler makes, once it has chosen a
// node and before it binds the pod, for an unbound claim of a
// WaitForFirstConsumer class: pre-bind Volume to Claim (spec.claimRef;
// the PV controller finishes the bind), or, with Volume nil, set
// volume.kubernetes.io/selected-node on Claim so that it is provisioned
// on the node. Claim and Volume come from the informer caches: copy
// before mutating.
type ClaimBinding struct {
	Claim  *v1.PersistentVolumeClaim
	Volume *v1.PersistentVolume
}

// NewVolumeBinding returns the plugin reading l.
func NewVolumeBinding(l VolumeListers) VolumeBinding { return VolumeBinding{listers: l} }

// Name implements framework.Plugin.
func (VolumeBinding) Name() string { return VolumeBindingName }

// PreFilter implements framework.PreFilterPlugin.
func (vb VolumeBinding) PreFilter(_ context.Context, state *framework.CycleState, pi *framework.PodInfo, _ *framework.Snapshot) *framework.Status {
	st, status := vb.collect(pi.Pod)
	if status != nil {
		return status
	}
	state.Write(volumeBindingKey, st)
	return nil
}

// collect reads pod's claims: it returns the state Filter needs, or a
// non-nil status (Skip when there is nothing to check, a rejection, or
// an error).
func (vb VolumeBinding) collect(pod *v1.Pod) (*volumeState, *framework.Status) {
	if !HasClaims(pod) || vb.listers.Claims == nil || vb.listers.Volumes == nil {
		return nil, skipVolumes
	}
	st := &volumeState{}
	var pvs []*v1.PersistentVolume // listed on the first delayed claim
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
			return nil, framework.NewStatus(framework.UnschedulableAndUnresolvable, fmt.Sprintf("persistentvolumeclaim %q not found", name))
		}
		if err != nil {
			return nil, framework.AsStatus(fmt.Errorf("getting persistentvolumeclaim %s/%s: %w", pod.Namespace, name, err))
		}
		if claim.DeletionTimestamp != nil {
			return nil, framework.NewStatus(framework.UnschedulableAndUnresolvable, fmt.Sprintf("persistentvolumeclaim %q is being deleted", name))
		}
		if vol.Ephemeral != nil {
			if err := ephemeral.VolumeIsForPod(pod, claim); err != nil {
				return nil, framework.NewStatus(framework.UnschedulableAndUnresolvable, err.Error())
			}
		}
		if claim.Spec.VolumeName == "" {
			class, err := vb.delayingClass(claim)
			if err != nil {
				return nil, framework.AsStatus(err)
			}
			if class == nil {
				return nil, framework.NewStatus(framework.UnschedulableAndUnresolvable, ReasonUnboundImmediateClaims)
			}
			if pvs == nil {
				if pvs, err = vb.listers.Volumes.List(labels.Everything()); err != nil {
					return nil, framework.AsStatus(fmt.Errorf("listing persistentvolumes: %w", err))
				}
			}
			st.delayed = append(st.delayed, newDelayedClaim(claim, class, pvs))
			continue
		}
		pv, err := vb.listers.Volumes.Get(claim.Spec.VolumeName)
		if apierrors.IsNotFound(err) {
			st.missingPV = true
			continue
		}
		if err != nil {
			return nil, framework.AsStatus(fmt.Errorf("getting persistentvolume %s: %w", claim.Spec.VolumeName, err))
		}
		if pv.Spec.NodeAffinity != nil && pv.Spec.NodeAffinity.Required != nil {
			st.selectors = append(st.selectors, nodeaffinity.NewLazyErrorNodeSelector(pv.Spec.NodeAffinity.Required))
		}
	}
	if !st.missingPV && len(st.selectors) == 0 && len(st.delayed) == 0 {
		return nil, skipVolumes
	}
	return st, nil
}

// newDelayedClaim finds claim's candidate volumes among pvs: the volume
// pre-bound to it that fits it, if any (the PV controller takes that one
// whatever the node), else every Available unclaimed volume that
// matches it (upstream ignores volumes in other phases).
func newDelayedClaim(claim *v1.PersistentVolumeClaim, class *storagev1.StorageClass, pvs []*v1.PersistentVolume) delayedClaim {
	d := delayedClaim{claim: claim, class: class}
	if pv := volumematch.FindVolume(pvs, claim, true); pv != nil {
		d.preBound = true
		d.candidates = []*v1.PersistentVolume{pv}
		return d
	}
	for _, pv := range pvs {
		if pv.Spec.ClaimRef != nil || pv.Status.Phase != v1.VolumeAvailable {
			continue
		}
		if ok, _ := volumematch.Match(pv, claim); ok {
			d.candidates = append(d.candidates, pv)
		}
	}
	return d
}

// delayingClass returns claim's class if its volumeBindingMode is
// WaitForFirstConsumer, else nil. No class, or a class that does not
// exist (yet), binds immediately, as upstream decides.
func (vb VolumeBinding) delayingClass(claim *v1.PersistentVolumeClaim) (*storagev1.StorageClass, error) {
	name := storagehelpers.GetPersistentVolumeClaimClass(claim)
	if name == "" || vb.listers.Classes == nil {
		return nil, nil
	}
	class, err := vb.listers.Classes.Get(name)
	if apierrors.IsNotFound(err) {
		return nil, nil
	}
	if err != nil {
		return nil, fmt.Errorf("getting storageclass %s: %w", name, err)
	}
	if class.VolumeBindingMode == nil || *class.VolumeBindingMode != storagev1.VolumeBindingWaitForFirstConsumer {
		return nil, nil
	}
	return class, nil
}

// Filter implements framework.FilterPlugin.
func (VolumeBinding) Filter(_ context.Context, state *framework.CycleState, _ *framework.PodInfo, node *framework.NodeInfo) *framework.Status {
	st, _ := state.Read(volumeBindingKey).(*volumeState)
	if st == nil {
		return nil
	}
	if _, reason := st.place(node.Node()); reason != "" {
		return framework.NewStatus(framework.UnschedulableAndUnresolvable, reason)
	}
	return nil
}

// place checks node against the pod's claims: every bound volume exists
// and its node affinity admits node, and each delayed claim can get a
// volume there (placeDelayed, whose writes it returns). It returns the
// rejection reason, or "".
func (st *volumeState) place(node *v1.Node) ([]ClaimBinding, string) {
	if st.missingPV {
		return nil, ReasonVolumeNotExist
	}
	for _, sel := range st.selectors {
		// A selector that does not parse matches no node, as upstream's
		// CheckNodeAffinity error counts as a conflict.
		if ok, err := sel.Match(node); err != nil || !ok {
			return nil, ReasonVolumeNodeConflict
		}
	}
	if len(st.delayed) == 0 {
		return nil, ""
	}
	bindings, ok := placeDelayed(st.delayed, node)
	if !ok {
		return nil, ReasonBindConflict
	}
	return bindings, ""
}

// placeDelayed decides, for each delayed claim, how it gets a volume on
// node: a candidate volume (never the same one for two claims) or
// provisioning. It reports false if some claim cannot.
func placeDelayed(delayed []delayedClaim, node *v1.Node) ([]ClaimBinding, bool) {
	bindings := make([]ClaimBinding, 0, len(delayed))
	var taken map[string]bool
	for _, d := range delayed {
		if sel := d.claim.Annotations[storagehelpers.AnnSelectedNode]; sel != "" && sel != node.Name {
			return nil, false
		}
		var fit []*v1.PersistentVolume
		for _, pv := range d.candidates {
			if !taken[pv.Name] && storagehelpers.CheckNodeAffinity(pv, node.Labels) == nil {
				fit = append(fit, pv)
			}
		}
		if pv := volumematch.FindVolume(fit, d.claim, false); pv != nil {
			if taken == nil {
				taken = map[string]bool{}
			}
			taken[pv.Name] = true
			bindings = append(bindings, ClaimBinding{Claim: d.claim, Volume: pv})
			continue
		}
		if d.preBound || !canProvision(d.class, node) {
			return nil, false
		}
		bindings = append(bindings, ClaimBinding{Claim: d.claim})
	}
	return bindings, true
}

// canProvision reports whether class's provisioner may create a volume
// for node: it has one, and its allowedTopologies (if any) admit node.
func canProvision(class *storagev1.StorageClass, node *v1.Node) bool {
	if class.Provisioner == "" || class.Provisioner == storagehelpers.NotSupportedProvisioner {
		return false
	}
	return matchTopology(class.AllowedTopologies, node.Labels)
}

// matchTopology reports whether node labels satisfy allowedTopologies, as
// upstream: no terms admit every node; the terms are ORed, the
// expressions of a term ANDed, and an expression needs the label with
// one of its values.
func matchTopology(terms []v1.TopologySelectorTerm, nodeLabels map[string]string) bool {
	if len(terms) == 0 {
		return true
	}
	for _, term := range terms {
		if matchTopologyTerm(term, nodeLabels) {
			return true
		}
	}
	return false
}

func matchTopologyTerm(term v1.TopologySelectorTerm, nodeLabels map[string]string) bool {
	for _, req := range term.MatchLabelExpressions {
		v, ok := nodeLabels[req.Key]
		if !ok || !slices.Contains(req.Values, v) {
			return false
		}
	}
	return true
}

// Bindings returns the writes the delayed claims of pod need on node —
// pre-bind the volume Filter would choose there, or provision — from the
// caches' current contents. Nil when the pod has none. It fails when
// node no longer fits the pod's claims (a volume was taken, or a claim
// bound elsewhere, since the pod was scheduled) or a cache read fails.
// The scheduler calls it from its bind goroutines; it only reads the
// caches.
func (vb VolumeBinding) Bindings(pod *v1.Pod, node *v1.Node) ([]ClaimBinding, error) {
	st, status := vb.collect(pod)
	switch {
	case status.IsSkip():
		return nil, nil
	case status != nil:
		return nil, fmt.Errorf("checking the claims of pod %s/%s: %w", pod.Namespace, pod.Name, status.Err())
	}
	bindings, reason := st.place(node)
	if reason != "" {
		return nil, fmt.Errorf("node %s: %s", node.Name, reason)
	}
	return bindings, nil
}

// HasClaims reports whether pod uses a claim, directly or through an
// ephemeral volume.
func HasClaims(pod *v1.Pod) bool {
	for i := range pod.Spec.Volumes {
		if pod.Spec.Volumes[i].PersistentVolumeClaim != nil || pod.Spec.Volumes[i].Ephemeral != nil {
			return true
		}
	}
	return false
}
