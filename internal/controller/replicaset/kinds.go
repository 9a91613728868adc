package replicaset

import (
	"context"
	"fmt"

	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/labels"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/client-go/informers"
	"k8s.io/client-go/kubernetes"
	appslisters "k8s.io/client-go/listers/apps/v1"
	corelisters "k8s.io/client-go/listers/core/v1"
	"k8s.io/client-go/tools/cache"

	"github.com/skiff-dev/skiff/internal/nsindex"
)

// owner is the kind-independent view of a ReplicaSet or a
// ReplicationController, built from an informer's cached object. Nothing
// in it may be mutated: obj and template point into the cache.
type owner struct {
	obj      runtime.Object // for events
	meta     metav1.Object
	replicas int32
	minReady int32
	// selector is what the owner's pods match; labels.Nothing() when the
	// owner has no selector (never "everything").
	selector labels.Selector
	template *corev1.PodTemplateSpec
	status   status
	// hasTerminating is true for kinds whose status has
	// terminatingReplicas (ReplicaSets).
	hasTerminating bool
}

// status is the part of the owner's status this controller writes.
type status struct {
	Replicas             int32
	FullyLabeledReplicas int32
	ReadyReplicas        int32
	AvailableReplicas    int32
	TerminatingReplicas  *int32
	ObservedGeneration   int64
	Conditions           []condition
}

// condition is a ReplicaSetCondition or ReplicationControllerCondition.
type condition struct {
	Type               string
	Status             corev1.ConditionStatus
	LastTransitionTime metav1.Time
	Reason             string
	Message            string
}

// conditionReplicaFailure is the condition type set when pods cannot be
// created or deleted (the same string for both kinds).
const conditionReplicaFailure = string(appsv1.ReplicaSetReplicaFailure)

// kind is what differs between ReplicaSets and ReplicationControllers.
type kind interface {
	gvk() schema.GroupVersionKind
	informer() cache.SharedIndexInformer
	// get reads an owner from the cache; a NotFound error when absent.
	get(namespace, name string) (*owner, error)
	// list reads the owners of a namespace from the cache.
	list(namespace string) ([]*owner, error)
	// getLive reads an owner from the API server (not the cache).
	getLive(ctx context.Context, namespace, name string) (metav1.Object, error)
	// updateStatus writes st to the owner's status subresource; on a
	// conflict it re-reads the owner and tries once more.
	updateStatus(ctx context.Context, o *owner, st status) error
}

// rsKind serves apps/v1 ReplicaSets.
type rsKind struct {
	client kubernetes.Interface
	inf    cache.SharedIndexInformer
	lister appslisters.ReplicaSetLister
}

var _ kind = (*rsKind)(nil)

func newRSKind(client kubernetes.Interface, f informers.SharedInformerFactory) *rsKind {
	i := f.Apps().V1().ReplicaSets()
	return &rsKind{client: client, inf: i.Informer(), lister: i.Lister()}
}

func (k *rsKind) gvk() schema.GroupVersionKind {
	return appsv1.SchemeGroupVersion.WithKind("ReplicaSet")
}

func (k *rsKind) informer() cache.SharedIndexInformer { return k.inf }

func (k *rsKind) get(namespace, name string) (*owner, error) {
	rs, err := k.lister.ReplicaSets(namespace).Get(name)
	if err != nil {
		return nil, err
	}
	return rsOwner(rs), nil
}

func (k *rsKind) list(namespace string) ([]*owner, error) {
	all := nsindex.List[*appsv1.ReplicaSet](k.inf.GetIndexer(), namespace)
	out := make([]*owner, 0, len(all))
	for _, rs := range all {
		out = append(out, rsOwner(rs))
	}
	return out, nil
}

func (k *rsKind) getLive(ctx context.Context, namespace, name string) (metav1.Object, error) {
	return k.client.AppsV1().ReplicaSets(namespace).Get(ctx, name, metav1.GetOptions{})
}

func (k *rsKind) updateStatus(ctx context.Context, o *owner, st status) error {
	rs := o.obj.(*appsv1.ReplicaSet).DeepCopy()
	for attempt := 0; ; attempt++ {
		rs.Status.Replicas = st.Replicas
		rs.Status.FullyLabeledReplicas = st.FullyLabeledReplicas
		rs.Status.ReadyReplicas = st.ReadyReplicas
		rs.Status.AvailableReplicas = st.AvailableReplicas
		rs.Status.TerminatingReplicas = st.TerminatingReplicas
		rs.Status.ObservedGeneration = st.ObservedGeneration
		rs.Status.Conditions = nil
		for _, c := range st.Conditions {
			rs.Status.Conditions = append(rs.Status.Conditions, appsv1.ReplicaSetCondition{
				Type: appsv1.ReplicaSetConditionType(c.Type), Status: c.Status,
				LastTransitionTime: c.LastTransitionTime, Reason: c.Reason, Message: c.Message,
			})
		}
		_, err := k.client.AppsV1().ReplicaSets(rs.Namespace).UpdateStatus(ctx, rs, metav1.UpdateOptions{})
		if err == nil || attempt > 0 || !apierrors.IsConflict(err) {
			if err != nil {
				return fmt.Errorf("updating status of replicaset %s/%s: %w", rs.Namespace, rs.Name, err)
			}
			return nil
		}
		fresh, gerr := k.client.AppsV1().ReplicaSets(rs.Namespace).Get(ctx, rs.Name, metav1.GetOptions{})
		if gerr != nil {
			return fmt.Errorf("re-reading replicaset %s/%s for a status update: %w", rs.Namespace, rs.Name, gerr)
		}
		if fresh.UID != rs.UID {
			return nil // replaced; its own sync will write its status
		}
		rs = fresh
	}
}

func rsOwner(rs *appsv1.ReplicaSet) *owner {
	o := &owner{
		obj:            rs,
		meta:           rs,
		hasTerminating: true,
		replicas:       1,
		minReady:       rs.Spec.MinReadySeconds,
		selector:       labels.Nothing(),
		template:       &rs.Spec.Template,
		status: status{
			Replicas:             rs.Status.Replicas,
			FullyLabeledReplicas: rs.Status.FullyLabeledReplicas,
			ReadyReplicas:        rs.Status.ReadyReplicas,
			AvailableReplicas:    rs.Status.AvailableReplicas,
			TerminatingReplicas:  rs.Status.TerminatingReplicas,
			ObservedGeneration:   rs.Status.ObservedGeneration,
		},
	}
	if rs.Spec.Replicas != nil {
		o.replicas = *rs.Spec.Replicas
	}
	if s := rs.Spec.Selector; s != nil && (len(s.MatchLabels) > 0 || len(s.MatchExpressions) > 0) {
		if sel, err := metav1.LabelSelectorAsSelector(s); err == nil {
			o.selector = sel
		}
	}
	for _, c := range rs.Status.Conditions {
		o.status.Conditions = append(o.status.Conditions, condition{
			Type: string(c.Type), Status: c.Status, LastTransitionTime: c.LastTransitionTime,
			Reason: c.Reason, Message: c.Message,
		})
	}
	return o
}

// rcKind serves core/v1 ReplicationControllers.
type rcKind struct {
	client kubernetes.Interface
	inf    cache.SharedIndexInformer
	lister corelisters.ReplicationControllerLister
}

var _ kind = (*rcKind)(nil)

func newRCKind(client kubernetes.Interface, f informers.SharedInformerFactory) *rcKind {
	i := f.Core().V1().ReplicationControllers()
	return &rcKind{client: client, inf: i.Informer(), lister: i.Lister()}
}

func (k *rcKind) gvk() schema.GroupVersionKind {
	return corev1.SchemeGroupVersion.WithKind("ReplicationController")
}

func (k *rcKind) informer() cache.SharedIndexInformer { return k.inf }

func (k *rcKind) get(namespace, name string) (*owner, error) {
	rc, err := k.lister.ReplicationControllers(namespace).Get(name)
	if err != nil {
		return nil, err
	}
	return rcOwner(rc), nil
}

func (k *rcKind) list(namespace string) ([]*owner, error) {
	all := nsindex.List[*corev1.ReplicationController](k.inf.GetIndexer(), namespace)
	out := make([]*owner, 0, len(all))
	for _, rc := range all {
		out = append(out, rcOwner(rc))
	}
	return out, nil
}

func (k *rcKind) getLive(ctx context.Context, namespace, name string) (metav1.Object, error) {
	return k.client.CoreV1().ReplicationControllers(namespace).Get(ctx, name, metav1.GetOptions{})
}

func (k *rcKind) updateStatus(ctx context.Context, o *owner, st status) error {
	rc := o.obj.(*corev1.ReplicationController).DeepCopy()
	for attempt := 0; ; attempt++ {
		rc.Status.Replicas = st.Replicas
		rc.Status.FullyLabeledReplicas = st.FullyLabeledReplicas
		rc.Status.ReadyReplicas = st.ReadyReplicas
		rc.Status.AvailableReplicas = st.AvailableReplicas
		rc.Status.ObservedGeneration = st.ObservedGeneration
		rc.Status.Conditions = nil
		for _, c := range st.Conditions {
			rc.Status.Conditions = append(rc.Status.Conditions, corev1.ReplicationControllerCondition{
				Type: corev1.ReplicationControllerConditionType(c.Type), Status: c.Status,
				LastTransitionTime: c.LastTransitionTime, Reason: c.Reason, Message: c.Message,
			})
		}
		_, err := k.client.CoreV1().ReplicationControllers(rc.Namespace).UpdateStatus(ctx, rc, metav1.UpdateOptions{})
		if err == nil || attempt > 0 || !apierrors.IsConflict(err) {
			if err != nil {
				return fmt.Errorf("updating status of replicationcontroller %s/%s: %w", rc.Namespace, rc.Name, err)
			}
			return nil
		}
		fresh, gerr := k.client.CoreV1().ReplicationControllers(rc.Namespace).Get(ctx, rc.Name, metav1.GetOptions{})
		if gerr != nil {
			return fmt.Errorf("re-reading replicationcontroller %s/%s for a status update: %w", rc.Namespace, rc.Name, gerr)
		}
		if fresh.UID != rc.UID {
			return nil
		}
		rc = fresh
	}
}

func rcOwner(rc *corev1.ReplicationController) *owner {
	o := &owner{
		obj:      rc,
		meta:     rc,
		replicas: 1,
		minReady: rc.Spec.MinReadySeconds,
		selector: labels.Nothing(),
		template: rc.Spec.Template,
		status: status{
			Replicas:             rc.Status.Replicas,
			FullyLabeledReplicas: rc.Status.FullyLabeledReplicas,
			ReadyReplicas:        rc.Status.ReadyReplicas,
			AvailableReplicas:    rc.Status.AvailableReplicas,
			ObservedGeneration:   rc.Status.ObservedGeneration,
		},
	}
	if rc.Spec.Replicas != nil {
		o.replicas = *rc.Spec.Replicas
	}
	if len(rc.Spec.Selector) > 0 {
		o.selector = labels.SelectorFromSet(rc.Spec.Selector)
	}
	for _, c := range rc.Status.Conditions {
		o.status.Conditions = append(o.status.Conditions, condition{
			Type: string(c.Type), Status: c.Status, LastTransitionTime: c.LastTransitionTime,
			Reason: c.Reason, Message: c.Message,
		})
	}
	return o
}
