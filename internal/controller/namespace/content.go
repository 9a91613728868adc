package namespace

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/client-go/discovery"
)

// deletion is what one pass over a namespace's content found: the errors
// met on the way and what is still left. The zero value means "everything
// discovered, deleted and gone".
type deletion struct {
	// discoveryErr is set when some API groups could not be discovered.
	discoveryErr error
	// parseErrs are group versions discovery returned that do not parse.
	parseErrs []error
	// contentErrs are failures to list or delete some resource's objects.
	contentErrs []error
	// remaining counts the objects still present, keyed by resource
	// ("pods." or "deployments.apps").
	remaining map[string]int
	// finalizers counts the remaining objects carrying each finalizer.
	finalizers map[string]int
}

// contentLeft reports whether any object is still in the namespace.
func (d *deletion) contentLeft() bool { return len(d.remaining) > 0 }

// err returns the errors worth retrying with back-off: content deletion
// failures, and discovery failures (a group that could not be discovered
// may still hold objects). Parse errors are permanent and only reported in
// the conditions, as upstream does.
func (d *deletion) err() error {
	errs := slices.Clone(d.contentErrs)
	if d.discoveryErr != nil {
		errs = append(errs, d.discoveryErr)
	}
	return errors.Join(errs...)
}

// deleteContent deletes every object of every namespaced resource in the
// namespace ns and reports what is left. It never fails as a whole: each
// problem is recorded in the result, and the caller decides.
func (c *Controller) deleteContent(ctx context.Context, ns string) *deletion {
	d := &deletion{remaining: map[string]int{}, finalizers: map[string]int{}}
	lists, err := discovery.ServerPreferredNamespacedResources(c.disc)
	if err != nil {
		// Partial discovery still returns what it found: delete that.
		d.discoveryErr = fmt.Errorf("discovering namespaced resources: %w", err)
	}
	for _, gvr := range deletableResources(lists, d) {
		c.deleteResource(ctx, ns, gvr, d)
	}
	return d
}

// deletable is one resource whose objects can be removed.
type deletable struct {
	gvr schema.GroupVersionResource
	// collection is true when the resource serves deletecollection;
	// otherwise objects are deleted one by one.
	collection bool
}

// deletableResources picks, from discovery's answer, the resources whose
// objects can be listed and deleted (one by one or as a collection).
// Subresources are skipped. Unparsable group versions are recorded in d.
func deletableResources(lists []*metav1.APIResourceList, d *deletion) []deletable {
	var out []deletable
	for _, list := range lists {
		gv, err := schema.ParseGroupVersion(list.GroupVersion)
		if err != nil {
			d.parseErrs = append(d.parseErrs, fmt.Errorf("parsing group version %q: %w", list.GroupVersion, err))
			continue
		}
		for _, r := range list.APIResources {
			if strings.Contains(r.Name, "/") || !r.Namespaced {
				continue
			}
			verbs := r.Verbs
			collection := slices.Contains(verbs, "deletecollection")
			if !slices.Contains(verbs, "list") || !(collection || slices.Contains(verbs, "delete")) {
				continue
			}
			out = append(out, deletable{gvr: gv.WithResource(r.Name), collection: collection})
		}
	}
	return out
}

// deleteResource deletes the objects of one resource in ns and records in
// d what is left of them.
func (c *Controller) deleteResource(ctx context.Context, ns string, r deletable, d *deletion) {
	client := c.meta.Resource(r.gvr).Namespace(ns)
	background := metav1.DeletePropagationBackground
	opts := metav1.DeleteOptions{PropagationPolicy: &background}
	key := r.gvr.Resource + "." + r.gvr.Group

	oneByOne := !r.collection
	if r.collection {
		err := client.DeleteCollection(ctx, opts, metav1.ListOptions{})
		switch {
		case err == nil:
		case apierrors.IsMethodNotSupported(err) || apierrors.IsNotFound(err):
			oneByOne = true
		default:
			d.contentErrs = append(d.contentErrs, fmt.Errorf("deleting collection of %s in %q: %w", key, ns, err))
			return
		}
	}

	list, err := client.List(ctx, metav1.ListOptions{})
	if err != nil {
		if apierrors.IsNotFound(err) || apierrors.IsMethodNotSupported(err) {
			return
		}
		d.contentErrs = append(d.contentErrs, fmt.Errorf("listing %s in %q: %w", key, ns, err))
		return
	}
	if oneByOne && len(list.Items) > 0 {
		for _, item := range list.Items {
			if item.DeletionTimestamp != nil {
				continue
			}
			if err := client.Delete(ctx, item.Name, opts); err != nil && !apierrors.IsNotFound(err) {
				d.contentErrs = append(d.contentErrs, fmt.Errorf("deleting %s %q in %q: %w", key, item.Name, ns, err))
				return
			}
		}
		if list, err = client.List(ctx, metav1.ListOptions{}); err != nil {
			d.contentErrs = append(d.contentErrs, fmt.Errorf("listing %s in %q: %w", key, ns, err))
			return
		}
	}
	if len(list.Items) == 0 {
		return
	}
	d.remaining[key] += len(list.Items)
	for _, item := range list.Items {
		for _, f := range item.Finalizers {
			d.finalizers[f]++
		}
	}
}

// Reasons and messages of the namespace deletion conditions, as upstream
// sets them.
const (
	reasonDiscoveryFailed   = "DiscoveryFailed"
	reasonDiscovered        = "ResourcesDiscovered"
	reasonParsingFailed     = "GroupVersionParsingFailed"
	reasonParsed            = "ParsedGroupVersions"
	reasonDeletionFailed    = "ContentDeletionFailed"
	reasonDeleted           = "ContentDeleted"
	reasonRemain            = "SomeResourcesRemain"
	reasonRemoved           = "ContentRemoved"
	reasonFinalizersRemain  = "SomeFinalizersRemain"
	reasonNoFinalizers      = "ContentHasNoFinalizers"
	messageDiscovered       = "All resources successfully discovered"
	messageParsed           = "All legacy kube types successfully parsed"
	messageDeleted          = "All content successfully deleted, may be waiting on finalization"
	messageRemoved          = "All content successfully removed"
	messageNoFinalizersLeft = "All content-preserving finalizers finished"
)

// conditions returns the five deletion conditions describing d, in
// upstream's order, each stamped with now as its transition time.
func (d *deletion) conditions(now metav1.Time) []corev1.NamespaceCondition {
	cond := func(t corev1.NamespaceConditionType, failed bool, reason, message string) corev1.NamespaceCondition {
		status := corev1.ConditionFalse
		if failed {
			status = corev1.ConditionTrue
		}
		return corev1.NamespaceCondition{Type: t, Status: status, LastTransitionTime: now, Reason: reason, Message: message}
	}
	var out []corev1.NamespaceCondition
	if d.discoveryErr != nil {
		out = append(out, cond(corev1.NamespaceDeletionDiscoveryFailure, true, reasonDiscoveryFailed, d.discoveryErr.Error()))
	} else {
		out = append(out, cond(corev1.NamespaceDeletionDiscoveryFailure, false, reasonDiscovered, messageDiscovered))
	}
	if len(d.parseErrs) > 0 {
		out = append(out, cond(corev1.NamespaceDeletionGVParsingFailure, true, reasonParsingFailed, joinErrors(d.parseErrs)))
	} else {
		out = append(out, cond(corev1.NamespaceDeletionGVParsingFailure, false, reasonParsed, messageParsed))
	}
	if len(d.contentErrs) > 0 {
		out = append(out, cond(corev1.NamespaceDeletionContentFailure, true, reasonDeletionFailed, "Failed to delete all resource types, "+fmt.Sprint(len(d.contentErrs))+" remaining: "+joinErrors(d.contentErrs)))
	} else {
		out = append(out, cond(corev1.NamespaceDeletionContentFailure, false, reasonDeleted, messageDeleted))
	}
	if len(d.remaining) > 0 {
		out = append(out, cond(corev1.NamespaceContentRemaining, true, reasonRemain, "Some resources are remaining: "+countList(d.remaining, "%s has %d resource instances")))
	} else {
		out = append(out, cond(corev1.NamespaceContentRemaining, false, reasonRemoved, messageRemoved))
	}
	if len(d.finalizers) > 0 {
		out = append(out, cond(corev1.NamespaceFinalizersRemaining, true, reasonFinalizersRemain, "Some content in the namespace has finalizers remaining: "+countList(d.finalizers, "%s in %d resource instances")))
	} else {
		out = append(out, cond(corev1.NamespaceFinalizersRemaining, false, reasonNoFinalizers, messageNoFinalizersLeft))
	}
	return out
}

// countList renders counts sorted by key, each through format (a %s for
// the key and a %d for the count), separated by ", ".
func countList(counts map[string]int, format string) string {
	keys := make([]string, 0, len(counts))
	for k := range counts {
		keys = append(keys, k)
	}
	slices.Sort(keys)
	parts := make([]string, len(keys))
	for i, k := range keys {
		parts[i] = fmt.Sprintf(format, k, counts[k])
	}
	return strings.Join(parts, ", ")
}

// joinErrors renders errs on one line, separated by "; ".
func joinErrors(errs []error) string {
	parts := make([]string, len(errs))
	for i, err := range errs {
		parts[i] = err.Error()
	}
	return strings.Join(parts, "; ")
}

// mergeConditions returns existing with every condition of desired set: a
// condition whose status, reason and message are unchanged keeps its old
// transition time; conditions of other types are kept as they are.
// changed is false when the result equals existing.
func mergeConditions(existing, desired []corev1.NamespaceCondition) (merged []corev1.NamespaceCondition, changed bool) {
	merged = slices.Clone(existing)
	for _, want := range desired {
		i := slices.IndexFunc(merged, func(c corev1.NamespaceCondition) bool { return c.Type == want.Type })
		if i < 0 {
			merged = append(merged, want)
			changed = true
			continue
		}
		have := merged[i]
		if have.Status == want.Status && have.Reason == want.Reason && have.Message == want.Message {
			continue
		}
		merged[i] = want
		changed = true
	}
	return merged, changed
}

// hasFinalizer reports whether f is in finalizers.
func hasFinalizer(finalizers []corev1.FinalizerName, f corev1.FinalizerName) bool {
	return slices.Contains(finalizers, f)
}

// withoutFinalizer returns finalizers without f, as a new slice.
func withoutFinalizer(finalizers []corev1.FinalizerName, f corev1.FinalizerName) []corev1.FinalizerName {
	return slices.DeleteFunc(slices.Clone(finalizers), func(x corev1.FinalizerName) bool { return x == f })
}
