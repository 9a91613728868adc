package garbagecollector

import (
	"slices"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
)

// ownerState is what a live look-up found for one owner reference.
type ownerState int

const (
	// solid: the owner exists and is not waiting for its dependents
	// (it may be being deleted in the background or with other
	// finalizers; it still owns).
	solid ownerState = iota
	// dangling: no object with the reference's uid exists where the
	// reference points (absent, replaced, or in another namespace).
	dangling
	// waiting: the owner exists with a deletionTimestamp and the
	// foregroundDeletion finalizer, waiting for its dependents to go.
	waiting
)

func (s ownerState) String() string {
	switch s {
	case solid:
		return "solid"
	case dangling:
		return "dangling"
	case waiting:
		return "waiting"
	}
	return "unknown"
}

// action is what attemptToDelete does to a dependent.
type action int

const (
	// keep: nothing to do.
	keep action = iota
	// removeRefs: patch away the references to RemoveUIDs (the object
	// has a solid owner left).
	removeRefs
	// deleteObject: delete the object with Policy, after making its
	// blocking references non-blocking when Unblock is set.
	deleteObject
)

func (a action) String() string {
	switch a {
	case keep:
		return "keep"
	case removeRefs:
		return "removeRefs"
	case deleteObject:
		return "delete"
	}
	return "unknown"
}

// verdict is the decision about one dependent.
type verdict struct {
	Action     action
	RemoveUIDs []types.UID
	Policy     metav1.DeletionPropagation
	Unblock    bool
}

// facts is what decide needs to know about a dependent besides its owners.
type facts struct {
	// Finalizers are the dependent's own finalizers.
	Finalizers []string
	// HasDependents: other observed objects reference the dependent.
	HasDependents bool
	// DependentDeletingDependents: one of those is itself deleting its
	// dependents (a possible cycle of foreground deletions).
	DependentDeletingDependents bool
}

// decide returns what to do with a dependent whose owner references were
// classified as states (parallel to refs). It has no side effects.
//
// As upstream: with a solid owner left, only the dangling references and
// those to owners waiting for their dependents are removed; with none, the
// object is garbage. Garbage that blocks a waiting owner and has
// dependents of its own is deleted in the foreground (so its owner waits
// for the whole subtree); other garbage is deleted with the policy its own
// finalizers ask for, background by default.
func decide(refs []metav1.OwnerReference, states []ownerState, f facts) verdict {
	if len(refs) == 0 {
		return verdict{Action: keep}
	}
	var solids, gone []types.UID
	anyWaiting := false
	for i, ref := range refs {
		switch states[i] {
		case solid:
			solids = append(solids, ref.UID)
		case waiting:
			anyWaiting = true
			gone = append(gone, ref.UID)
		default:
			gone = append(gone, ref.UID)
		}
	}
	switch {
	case len(solids) > 0 && len(gone) == 0:
		return verdict{Action: keep}
	case len(solids) > 0:
		return verdict{Action: removeRefs, RemoveUIDs: gone}
	case anyWaiting && f.HasDependents:
		return verdict{Action: deleteObject, Policy: metav1.DeletePropagationForeground, Unblock: f.DependentDeletingDependents}
	case slices.Contains(f.Finalizers, metav1.FinalizerOrphanDependents):
		return verdict{Action: deleteObject, Policy: metav1.DeletePropagationOrphan}
	case slices.Contains(f.Finalizers, metav1.FinalizerDeleteDependents):
		return verdict{Action: deleteObject, Policy: metav1.DeletePropagationForeground}
	default:
		return verdict{Action: deleteObject, Policy: metav1.DeletePropagationBackground}
	}
}

// withoutRefs returns refs without the references to uids (a new slice).
func withoutRefs(refs []metav1.OwnerReference, uids []types.UID) []metav1.OwnerReference {
	var out []metav1.OwnerReference
	for _, r := range refs {
		if !slices.Contains(uids, r.UID) {
			out = append(out, r)
		}
	}
	return out
}

// unblocked returns a copy of refs where the references to uids no longer
// block their owner's deletion.
func unblocked(refs []metav1.OwnerReference, uids []types.UID) []metav1.OwnerReference {
	out := make([]metav1.OwnerReference, 0, len(refs))
	f := false
	for _, r := range refs {
		if slices.Contains(uids, r.UID) && blocks(r) {
			r.BlockOwnerDeletion = &f
		}
		out = append(out, r)
	}
	return out
}
