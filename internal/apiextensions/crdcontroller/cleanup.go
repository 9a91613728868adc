package crdcontroller

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"sort"
	"time"

	apiextensionsv1 "k8s.io/apiextensions-apiserver/pkg/apis/apiextensions/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/client-go/dynamic"
)

// Cleanup timing: how often a CRD whose custom resources are still going
// (their own finalizers, graceful deletion) is looked at again, and after
// how long the Terminating condition says so (upstream waits a minute).
const (
	cleanupRecheck = time.Second
	cleanupPatient = time.Minute
)

// overlapsBuiltIn lists the resources a CRD may name although built-in
// resources are stored there; upstream never deletes their "instances".
func overlapsBuiltIn(gr schema.GroupResource) bool {
	return gr == schema.GroupResource{Group: "apiextensions.k8s.io", Resource: "customresourcedefinitions"} ||
		gr == schema.GroupResource{Group: "apiregistration.k8s.io", Resource: "apiservices"}
}

func terminating(status apiextensionsv1.ConditionStatus, reason, message string) apiextensionsv1.CustomResourceDefinitionCondition {
	return apiextensionsv1.CustomResourceDefinitionCondition{
		Type: apiextensionsv1.Terminating, Status: status, Reason: reason, Message: message,
	}
}

// syncCleanup deletes the custom resources of a deleted CRD that still has
// the cleanup finalizer, then removes the finalizer. Level-triggered: each
// call issues the deletes again and looks at what is left; it returns a
// delay to look again while custom resources are still going.
func (c *controller) syncCleanup(ctx context.Context, name string) (time.Duration, error) {
	cached, err := c.lister.Get(name)
	if apierrors.IsNotFound(err) {
		return 0, nil
	}
	if err != nil {
		return 0, fmt.Errorf("getting CRD %s: %w", name, err)
	}
	if cached.DeletionTimestamp == nil || !slices.Contains(cached.Finalizers, apiextensionsv1.CustomResourceCleanupFinalizer) {
		return 0, nil
	}
	crd := cached.DeepCopy()
	if setCondition(crd, terminating(apiextensionsv1.ConditionTrue, "InstanceDeletionInProgress", "CustomResource deletion is in progress"), c.now()) {
		if crd, err = c.updateStatus(ctx, crd); err != nil {
			return 0, ignoreNotFound(err)
		}
	}

	var done apiextensionsv1.CustomResourceDefinitionCondition
	gvr, served := servedGVR(crd)
	switch {
	case overlapsBuiltIn(schema.GroupResource{Group: crd.Spec.Group, Resource: crd.Spec.Names.Plural}):
		done = terminating(apiextensionsv1.ConditionFalse, "OverlappingBuiltInResource", "instances overlap with built-in resources in storage")
	case !conditionTrue(crd, apiextensionsv1.Established) && !conditionTrue(crd, apiextensionsv1.NamesAccepted):
		done = terminating(apiextensionsv1.ConditionFalse, "NeverEstablished", "resource was never established")
	case !served:
		// Custom resources are reached through a served version only (upstream
		// deletes them in storage). Known weakness: objects stored while a
		// version was served stay in etcd once none is served any more.
		done = terminating(apiextensionsv1.ConditionFalse, "NoServedVersion", "no version is served, instances cannot be listed")
	default:
		cond, after, err := c.deleteInstances(ctx, crd, gvr)
		if err != nil || after > 0 {
			if setCondition(crd, cond, c.now()) {
				if _, uerr := c.updateStatus(ctx, crd); uerr != nil && err == nil {
					err = ignoreNotFound(uerr)
				}
			}
			return after, err
		}
		done = cond
	}

	if setCondition(crd, done, c.now()) {
		if crd, err = c.updateStatus(ctx, crd); err != nil {
			return 0, ignoreNotFound(err)
		}
	}
	// The finalizer goes through the main resource: a status write keeps
	// metadata as it was.
	crd.Finalizers = slices.DeleteFunc(crd.Finalizers, func(f string) bool { return f == apiextensionsv1.CustomResourceCleanupFinalizer })
	if _, err := c.crds.Update(ctx, crd, metav1.UpdateOptions{}); err != nil {
		return 0, ignoreNotFound(fmt.Errorf("removing the finalizer of CRD %s: %w", name, err))
	}
	c.log.Info("cleaned up", "crd", name, "reason", done.Reason)
	return 0, nil
}

// deleteInstances deletes every custom resource of crd (read through gvr)
// and reports the Terminating condition: False InstanceDeletionCompleted
// once none is left; True InstanceDeletionInProgress (or, after
// cleanupPatient, InstanceDeletionCheck) with a delay to look again while
// some are still going; True InstanceDeletionFailed with the error when a
// list or delete failed.
func (c *controller) deleteInstances(ctx context.Context, crd *apiextensionsv1.CustomResourceDefinition, gvr schema.GroupVersionResource) (
	apiextensionsv1.CustomResourceDefinitionCondition, time.Duration, error) {
	failed := func(format string, err error) (apiextensionsv1.CustomResourceDefinitionCondition, time.Duration, error) {
		return terminating(apiextensionsv1.ConditionTrue, "InstanceDeletionFailed", fmt.Sprintf(format, err)), 0,
			fmt.Errorf("deleting the custom resources of CRD %s: %w", crd.Name, err)
	}
	all := c.dynamic.Resource(gvr)
	list, err := all.List(ctx, metav1.ListOptions{})
	if apierrors.IsNotFound(err) && !conditionTrue(crd, apiextensionsv1.Established) {
		// Accepted but never served: nothing can have been created.
		return terminating(apiextensionsv1.ConditionFalse, "NeverEstablished", "resource was never established"), 0, nil
	}
	if err != nil {
		return failed("could not list instances: %v", err)
	}
	if len(list.Items) == 0 {
		return completed(), 0, nil
	}

	namespaces := map[string]bool{}
	for _, item := range list.Items {
		namespaces[item.GetNamespace()] = true
	}
	var errs []error
	for _, ns := range sortedKeys(namespaces) {
		var r dynamic.ResourceInterface = all
		if ns != "" {
			r = all.Namespace(ns)
		}
		err := r.DeleteCollection(ctx, metav1.DeleteOptions{}, metav1.ListOptions{})
		if apierrors.IsMethodNotSupported(err) {
			err = deleteEach(ctx, r, list.Items, ns)
		}
		if err != nil {
			errs = append(errs, err)
		}
	}
	if err := errors.Join(errs...); err != nil {
		return failed("could not issue all deletes: %v", err)
	}

	left, err := all.List(ctx, metav1.ListOptions{})
	if err != nil {
		return failed("could not list instances: %v", err)
	}
	if len(left.Items) == 0 {
		c.log.Info("deleted custom resources", "crd", crd.Name, "count", len(list.Items))
		return completed(), 0, nil
	}
	if since := c.now().Sub(crd.DeletionTimestamp.Time); since > cleanupPatient {
		return terminating(apiextensionsv1.ConditionTrue, "InstanceDeletionCheck",
			fmt.Sprintf("could not confirm zero CustomResources remaining: %d left after %s", len(left.Items), since.Round(time.Second))), cleanupRecheck, nil
	}
	return terminating(apiextensionsv1.ConditionTrue, "InstanceDeletionInProgress", "CustomResource deletion is in progress"), cleanupRecheck, nil
}

func completed() apiextensionsv1.CustomResourceDefinitionCondition {
	return terminating(apiextensionsv1.ConditionFalse, "InstanceDeletionCompleted", "removed all instances")
}

// deleteEach deletes the items of namespace ns one by one, for a server
// without deletecollection.
func deleteEach(ctx context.Context, r dynamic.ResourceInterface, items []unstructured.Unstructured, ns string) error {
	var errs []error
	for i := range items {
		if items[i].GetNamespace() != ns {
			continue
		}
		if err := r.Delete(ctx, items[i].GetName(), metav1.DeleteOptions{}); err != nil && !apierrors.IsNotFound(err) {
			errs = append(errs, err)
		}
	}
	return errors.Join(errs...)
}

func sortedKeys(m map[string]bool) []string {
	out := make([]string, 0, len(m))
	for k := range m {
		out = append(out, k)
	}
	sort.Strings(out)
	return out
}

// ignoreNotFound drops a NotFound error: the CRD is gone, nothing is left
// to do.
func ignoreNotFound(err error) error {
	if apierrors.IsNotFound(err) {
		return nil
	}
	return err
}
