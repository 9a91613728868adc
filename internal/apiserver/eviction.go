package apiserver

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"slices"
	"time"

	corev1 "k8s.io/api/core/v1"
	policyv1 "k8s.io/api/policy/v1"
	policyv1beta1 "k8s.io/api/policy/v1beta1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	metavalidation "k8s.io/apimachinery/pkg/apis/meta/v1/validation"
	"k8s.io/apimachinery/pkg/labels"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/runtime/schema"

	"github.com/skiff-dev/skiff/internal/registry"
	"github.com/skiff-dev/skiff/internal/storage"
)

// Eviction (POST pods/<name>/eviction), as upstream's EvictionREST:
//
//	read pod ──404──▶ NotFound
//	   │ terminal, Pending or being deleted
//	   ├──────────────────────────────────────▶ delete (no PDB consulted)
//	   │ otherwise: the PDBs of the namespace selecting the pod
//	   ├─ more than one ──▶ 500 Status
//	   ├─ none ───────────────────────────────▶ delete
//	   ├─ pod not Ready and the budget holds (or policy AlwaysAllow)
//	   │  ──────────────────────────────────────▶ delete at the pod's resourceVersion
//	   └─ check-and-decrement the PDB (one status update; stale status or
//	      no disruption allowed ──▶ 429) ───────▶ delete
//
// Every delete first sets the pod's DisruptionTarget condition, and the
// answer is 201 with a Success Status. dryRun writes neither the PDB nor
// the pod.

var (
	evictionV1GVK      = policyv1.SchemeGroupVersion.WithKind("Eviction")
	evictionV1beta1GVK = policyv1beta1.SchemeGroupVersion.WithKind("Eviction")
	pdbGVR             = policyv1.SchemeGroupVersion.WithResource("poddisruptionbudgets")
)

// maxDisruptedPods is upstream's MaxDisruptedPodSize: a PDB with more
// evictions the disruption controller has not yet seen refuses more.
const maxDisruptedPods = 2000

// evictionRetries bounds the attempts on a conflicting pod write (upstream:
// 20 steps of about 500ms).
const (
	evictionRetries    = 20
	evictionRetryDelay = 500 * time.Millisecond
)

// evictionMsg is upstream's message for an eviction a budget refuses.
const evictionMsg = "Cannot evict pod as it would violate the pod's disruption budget."

// evict handles POST pods/<name>/eviction. It is called by
// serveSubresource for the create verb; authorization (create on
// pods/eviction) has been checked. The PDB and pod writes are the
// server's own, not the caller's.
func (s *Server) evict(w http.ResponseWriter, r *http.Request, ri *requestInfo, pods *registry.Store) {
	if ri.verb != "create" {
		s.writeError(w, methodNotAllowed())
		return
	}
	var opts metav1.CreateOptions
	if err := s.decodeQuery(r, &opts); err != nil {
		s.fail(w, r, err)
		return
	}
	if err := invalidOptions("CreateOptions", metavalidation.ValidateCreateOptions(&opts)); err != nil {
		s.fail(w, r, err)
		return
	}
	ev, warnings, err := s.decodeEviction(r, opts.FieldValidation)
	if err != nil {
		s.fail(w, r, err)
		return
	}
	if ev.Name != ri.name {
		s.fail(w, r, apierrors.NewBadRequest("name in URL does not match name in Eviction object"))
		return
	}
	if ev.Namespace != "" && ev.Namespace != ri.namespace {
		s.fail(w, r, apierrors.NewBadRequest("the namespace of the provided object does not match the namespace sent on the request"))
		return
	}
	del, err := evictionDeleteOptions(ev, opts)
	if err != nil {
		s.fail(w, r, err)
		return
	}
	if err := invalidOptions("DeleteOptions", metavalidation.ValidateDeleteOptions(del)); err != nil {
		s.fail(w, r, err)
		return
	}
	e := &eviction{pods: pods, pdbs: s.resources[pdbGVR.GroupVersion()][pdbGVR.Resource], namespace: ri.namespace, name: ri.name, opts: del, now: time.Now}
	st, err := e.run(r.Context())
	if err != nil {
		s.fail(w, r, err)
		return
	}
	addWarnings(w, warnings)
	st.TypeMeta = metav1.TypeMeta{Kind: "Status", APIVersion: "v1"}
	s.writeRaw(w, int(st.Code), runtime.ContentTypeJSON, st)
}

// decodeEviction decodes a policy/v1 or policy/v1beta1 Eviction (the
// latter is what older clients send) as a policy/v1 one.
func (s *Server) decodeEviction(r *http.Request, validation string) (*policyv1.Eviction, []string, error) {
	info, err := s.requestSerializer(r)
	if err != nil {
		return nil, nil, err
	}
	body, err := readBody(r)
	if err != nil {
		return nil, nil, err
	}
	// Peek at the body's version; anything unrecognized is left to the
	// policy/v1 decode to report.
	if _, actual, err := info.Serializer.Decode(body, &evictionV1GVK, nil); err == nil && actual != nil && *actual == evictionV1beta1GVK {
		obj, warnings, err := s.decodeWith(info, body, evictionV1beta1GVK, &policyv1beta1.Eviction{}, validation)
		if err != nil {
			return nil, nil, err
		}
		old := obj.(*policyv1beta1.Eviction)
		return &policyv1.Eviction{ObjectMeta: old.ObjectMeta, DeleteOptions: old.DeleteOptions}, warnings, nil
	}
	obj, warnings, err := s.decodeWith(info, body, evictionV1GVK, &policyv1.Eviction{}, validation)
	if err != nil {
		return nil, nil, err
	}
	return obj.(*policyv1.Eviction), warnings, nil
}

// evictionDeleteOptions returns the options of the pod's deletion: the
// Eviction's own, with the request's dryRun when they have none (upstream
// propagateDryRun). Different dryRun values in both are an error.
func evictionDeleteOptions(ev *policyv1.Eviction, opts metav1.CreateOptions) (*metav1.DeleteOptions, error) {
	if ev.DeleteOptions == nil {
		return &metav1.DeleteOptions{DryRun: opts.DryRun}, nil
	}
	del := ev.DeleteOptions.DeepCopy()
	switch {
	case len(del.DryRun) == 0:
		del.DryRun = opts.DryRun
	case len(opts.DryRun) == 0:
	case !slices.Equal(opts.DryRun, del.DryRun):
		return nil, fmt.Errorf("Non-matching dry-run options in request and content: %v and %v", opts.DryRun, del.DryRun) //nolint:staticcheck // upstream's message
	}
	return del, nil
}

// eviction is one eviction request's state. It is used by one goroutine.
type eviction struct {
	pods *registry.Store
	// pdbs is nil when the server does not serve poddisruptionbudgets: no
	// pod is then covered by a budget.
	pdbs            *registry.Store
	namespace, name string
	opts            *metav1.DeleteOptions // never nil
	now             func() time.Time
}

func (e *eviction) dryRun() bool { return slices.Contains(e.opts.DryRun, metav1.DryRunAll) }

func (e *eviction) success() *metav1.Status {
	return &metav1.Status{Status: metav1.StatusSuccess, Code: http.StatusCreated}
}

// run evicts the pod. It returns the Status to answer with (201 Success,
// or upstream's 500 for a pod under several budgets) or an API error.
func (e *eviction) run(ctx context.Context) (*metav1.Status, error) {
	var (
		pod     *corev1.Pod
		deleted bool
	)
	// A conflict (the pod changed since it was read) is retried, unless the
	// caller asked for a resourceVersion: then the conflict is the answer.
	retry := rvUnset(e.opts)
	err := retryConflicts(ctx, retry, func() error {
		var err error
		if pod, err = e.getPod(ctx); err != nil {
			return err
		}
		if !canIgnorePDB(pod) {
			return nil
		}
		opts := e.opts
		if enforceRV(pod) && rvUnset(e.opts) {
			// Not racing with whatever makes the pod Ready meanwhile.
			opts = withRV(opts, pod.ResourceVersion)
		}
		if err := e.markAndDelete(ctx, opts); err != nil {
			return err
		}
		deleted = true
		return nil
	})
	if err != nil {
		return nil, err
	}
	if deleted {
		return e.success(), nil
	}

	pdbs, err := e.budgetsOf(ctx, pod)
	if err != nil {
		return nil, err
	}
	if len(pdbs) > 1 {
		return &metav1.Status{
			Status:  metav1.StatusFailure,
			Message: "This pod has more than one PodDisruptionBudget, which the eviction subresource does not support.",
			Code:    http.StatusInternalServerError,
		}, nil
	}
	opts, atRV := e.opts, false
	if len(pdbs) == 1 {
		pdb := pdbs[0]
		if !podReady(pod) && (alwaysAllowUnhealthy(pdb) ||
			(pdb.Status.CurrentHealthy >= pdb.Status.DesiredHealthy && pdb.Status.DesiredHealthy > 0)) {
			// An unready pod does not count as healthy: deleting it
			// disrupts nothing, as long as it does not become Ready
			// meanwhile.
			opts, atRV = withRV(opts, pod.ResourceVersion), true
		} else if err := e.checkAndDecrement(ctx, pdb, pod.Name); err != nil {
			return nil, err
		}
	}
	if err := e.markAndDelete(ctx, opts); err != nil {
		if apierrors.IsConflict(err) && atRV && rvUnset(e.opts) {
			return nil, tooManyRequests(pdbs[0].Name)
		}
		return nil, err
	}
	return e.success(), nil
}

func (e *eviction) getPod(ctx context.Context) (*corev1.Pod, error) {
	obj, err := e.pods.Get(ctx, e.namespace, e.name)
	if err != nil {
		return nil, err
	}
	pod, ok := obj.(*corev1.Pod)
	if !ok {
		return nil, fmt.Errorf("eviction: unexpected object %T", obj)
	}
	return pod, nil
}

// budgetsOf lists the PDBs of the pod's namespace whose selector matches
// it: an empty selector matches every pod, a nil or invalid one none.
func (e *eviction) budgetsOf(ctx context.Context, pod *corev1.Pod) ([]*policyv1.PodDisruptionBudget, error) {
	if e.pdbs == nil {
		return nil, nil
	}
	obj, err := e.pdbs.List(ctx, e.namespace, storage.ListOptions{})
	if err != nil {
		return nil, fmt.Errorf("listing disruption budgets: %w", err)
	}
	list, ok := obj.(*policyv1.PodDisruptionBudgetList)
	if !ok {
		return nil, fmt.Errorf("eviction: unexpected list %T", obj)
	}
	var out []*policyv1.PodDisruptionBudget
	for i := range list.Items {
		pdb := &list.Items[i]
		if pdb.Namespace != pod.Namespace {
			continue
		}
		sel, err := metav1.LabelSelectorAsSelector(pdb.Spec.Selector)
		if err != nil || !sel.Matches(labels.Set(pod.Labels)) {
			continue
		}
		out = append(out, pdb)
	}
	return out, nil
}

// checkAndDecrement takes one disruption from the budget, in one
// optimistic-concurrency status update of the stored PDB (storage retries
// it on a conflict, re-checking the latest status), and records the pod in
// status.disruptedPods for the disruption controller. With dryRun the
// listed PDB is only checked.
func (e *eviction) checkAndDecrement(ctx context.Context, listed *policyv1.PodDisruptionBudget, podName string) error {
	if e.dryRun() {
		return allowsDisruption(listed)
	}
	_, _, err := e.pdbs.Update(ctx, e.namespace, listed.Name, registry.StatusSub, func(_ context.Context, current runtime.Object) (runtime.Object, error) {
		pdb, ok := current.(*policyv1.PodDisruptionBudget)
		if !ok {
			return nil, fmt.Errorf("eviction: unexpected object %T", current)
		}
		if err := allowsDisruption(pdb); err != nil {
			return nil, err
		}
		pdb.Status.DisruptionsAllowed--
		if pdb.Status.DisruptionsAllowed == 0 {
			meta.SetStatusCondition(&pdb.Status.Conditions, metav1.Condition{
				Type:               policyv1.DisruptionAllowedCondition,
				Status:             metav1.ConditionFalse,
				Reason:             policyv1.InsufficientPodsReason,
				ObservedGeneration: pdb.Status.ObservedGeneration,
			})
		}
		if pdb.Status.DisruptedPods == nil {
			pdb.Status.DisruptedPods = map[string]metav1.Time{}
		}
		pdb.Status.DisruptedPods[podName] = metav1.Time{Time: e.now()}
		return pdb, nil
	}, metav1.UpdateOptions{})
	return err
}

// allowsDisruption is upstream's check of a budget's status before an
// eviction it covers.
func allowsDisruption(pdb *policyv1.PodDisruptionBudget) error {
	forbidden := func(msg string) error {
		return apierrors.NewForbidden(schema.GroupResource{Group: policyv1.GroupName, Resource: "poddisruptionbudget"}, pdb.Name, errors.New(msg))
	}
	switch {
	case pdb.Status.ObservedGeneration < pdb.Generation:
		return tooManyRequests(pdb.Name)
	case pdb.Status.DisruptionsAllowed < 0:
		return forbidden("pdb disruptions allowed is negative")
	case len(pdb.Status.DisruptedPods) > maxDisruptedPods:
		return forbidden("DisruptedPods map too big - too many evictions not confirmed by PDB controller")
	case pdb.Status.DisruptionsAllowed == 0:
		err := apierrors.NewTooManyRequests(evictionMsg, 0)
		err.ErrStatus.Details.Causes = append(err.ErrStatus.Details.Causes, metav1.StatusCause{
			Type:    policyv1.DisruptionBudgetCause,
			Message: fmt.Sprintf("The disruption budget %s needs %d healthy pods and has %d currently", pdb.Name, pdb.Status.DesiredHealthy, pdb.Status.CurrentHealthy),
		})
		return err
	}
	return nil
}

// tooManyRequests is upstream's answer while a budget's status is stale.
func tooManyRequests(pdbName string) error {
	err := apierrors.NewTooManyRequests(evictionMsg, 10)
	err.ErrStatus.Details.Causes = append(err.ErrStatus.Details.Causes, metav1.StatusCause{
		Type:    policyv1.DisruptionBudgetCause,
		Message: fmt.Sprintf("The disruption budget %s is still being processed by the server.", pdbName),
	})
	return err
}

// markAndDelete sets the pod's DisruptionTarget condition (unless dryRun)
// and deletes it with opts. The condition write checks opts'
// preconditions, and a resourceVersion precondition then moves to the
// version it wrote.
func (e *eviction) markAndDelete(ctx context.Context, opts *metav1.DeleteOptions) error {
	if !e.dryRun() {
		out, _, err := e.pods.Update(ctx, e.namespace, e.name, registry.StatusSub, func(_ context.Context, current runtime.Object) (runtime.Object, error) {
			pod, ok := current.(*corev1.Pod)
			if !ok {
				return nil, fmt.Errorf("eviction: unexpected object %T", current)
			}
			if err := checkPodPreconditions(opts.Preconditions, pod); err != nil {
				return nil, err
			}
			setDisruptionTarget(pod, e.now())
			return pod, nil
		}, metav1.UpdateOptions{})
		if err != nil {
			return err
		}
		if !rvUnset(opts) {
			m, err := meta.Accessor(out)
			if err != nil {
				return fmt.Errorf("reading metadata: %w", err)
			}
			opts = withRV(opts, m.GetResourceVersion())
		}
	}
	_, _, err := e.pods.Delete(ctx, e.namespace, e.name, *opts)
	return err
}

// checkPodPreconditions is upstream's 409 for a pod whose uid or
// resourceVersion is not the one asked for.
func checkPodPreconditions(pre *metav1.Preconditions, pod *corev1.Pod) error {
	if pre == nil {
		return nil
	}
	gr := schema.GroupResource{Resource: "Pod"}
	if pre.UID != nil && *pre.UID != "" && *pre.UID != pod.UID {
		return apierrors.NewConflict(gr, pod.Name, fmt.Errorf("the UID in the precondition (%s) does not match the UID in record (%s). The object might have been deleted and then recreated", *pre.UID, pod.UID))
	}
	if pre.ResourceVersion != nil && *pre.ResourceVersion != "" && *pre.ResourceVersion != pod.ResourceVersion {
		return apierrors.NewConflict(gr, pod.Name, fmt.Errorf("the ResourceVersion in the precondition (%s) does not match the ResourceVersion in record (%s). The object might have been modified", *pre.ResourceVersion, pod.ResourceVersion))
	}
	return nil
}

// setDisruptionTarget sets the DisruptionTarget condition upstream's
// eviction sets (reason EvictionByEvictionAPI); the transition time moves
// only when the status changes.
func setDisruptionTarget(pod *corev1.Pod, now time.Time) {
	c := corev1.PodCondition{
		Type:               corev1.DisruptionTarget,
		Status:             corev1.ConditionTrue,
		Reason:             "EvictionByEvictionAPI",
		Message:            "Eviction API: evicting",
		LastTransitionTime: metav1.Time{Time: now},
	}
	for i := range pod.Status.Conditions {
		cur := &pod.Status.Conditions[i]
		if cur.Type != c.Type {
			continue
		}
		if cur.Status == c.Status {
			c.LastTransitionTime = cur.LastTransitionTime
		}
		*cur = c
		return
	}
	pod.Status.Conditions = append(pod.Status.Conditions, c)
}

// canIgnorePDB: terminal, Pending and terminating pods are deleted without
// consulting budgets (they are not running, or already going).
func canIgnorePDB(pod *corev1.Pod) bool {
	switch pod.Status.Phase {
	case corev1.PodSucceeded, corev1.PodFailed, corev1.PodPending:
		return true
	}
	return pod.DeletionTimestamp != nil
}

// enforceRV reports whether a PDB-free deletion must be at the pod's read
// resourceVersion: not for a pod that is terminal or already terminating.
func enforceRV(pod *corev1.Pod) bool {
	switch pod.Status.Phase {
	case corev1.PodSucceeded, corev1.PodFailed:
		return false
	}
	return pod.DeletionTimestamp == nil
}

func podReady(pod *corev1.Pod) bool {
	for _, c := range pod.Status.Conditions {
		if c.Type == corev1.PodReady {
			return c.Status == corev1.ConditionTrue
		}
	}
	return false
}

func alwaysAllowUnhealthy(pdb *policyv1.PodDisruptionBudget) bool {
	p := pdb.Spec.UnhealthyPodEvictionPolicy
	return p != nil && *p == policyv1.AlwaysAllow
}

func rvUnset(opts *metav1.DeleteOptions) bool {
	return opts.Preconditions == nil || opts.Preconditions.ResourceVersion == nil
}

// withRV returns a copy of opts with a resourceVersion precondition.
func withRV(opts *metav1.DeleteOptions, rv string) *metav1.DeleteOptions {
	out := opts.DeepCopy()
	if out.Preconditions == nil {
		out.Preconditions = &metav1.Preconditions{}
	}
	out.Preconditions.ResourceVersion = &rv
	return out
}

// retryConflicts calls f until it succeeds, fails with anything but a
// conflict (any error when retry is false), or evictionRetries attempts
// have conflicted.
func retryConflicts(ctx context.Context, retry bool, f func() error) error {
	var err error
	for range evictionRetries {
		if err = f(); err == nil || !retry || !apierrors.IsConflict(err) {
			return err
		}
		select {
		case <-ctx.Done():
			return err
		case <-time.After(evictionRetryDelay):
		}
	}
	return err
}
