package admission

import (
	"context"
	"fmt"

	corev1 "k8s.io/api/core/v1"
	schedulingv1 "k8s.io/api/scheduling/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/labels"
	"k8s.io/client-go/kubernetes"
	schedulinglisters "k8s.io/client-go/listers/scheduling/v1"
)

// The built-in PriorityClasses, as upstream's scheduling API defines them.
const (
	SystemNodeCritical    = "system-node-critical"
	SystemClusterCritical = "system-cluster-critical"
	// SystemCriticalPriority is system-cluster-critical's value; system-node-critical is 1000 more.
	SystemCriticalPriority int32 = 2000000000
)

// SystemPriorityClasses returns the two built-in classes (new objects
// every call).
func SystemPriorityClasses() []*schedulingv1.PriorityClass {
	return []*schedulingv1.PriorityClass{
		{
			ObjectMeta:  metav1.ObjectMeta{Name: SystemNodeCritical},
			Value:       SystemCriticalPriority + 1000,
			Description: "Used for system critical pods that must not be moved from their current node.",
		},
		{
			ObjectMeta:  metav1.ObjectMeta{Name: SystemClusterCritical},
			Value:       SystemCriticalPriority,
			Description: "Used for system critical pods that must run in the cluster, but can be moved to another node if necessary.",
		},
	}
}

// EnsurePriorityClasses creates the built-in PriorityClasses that do not
// exist yet (existing ones are left as they are). It is idempotent; the
// server calls it once the API is up.
func EnsurePriorityClasses(ctx context.Context, client kubernetes.Interface) error {
	for _, pc := range SystemPriorityClasses() {
		_, err := client.SchedulingV1().PriorityClasses().Create(ctx, pc, metav1.CreateOptions{})
		if err != nil && !apierrors.IsAlreadyExists(err) {
			return fmt.Errorf("creating priority class %s: %w", pc.Name, err)
		}
	}
	return nil
}

// Priority resolves a pod's priorityClassName into spec.priority and
// spec.preemptionPolicy, as upstream's Priority plugin: an unset name
// takes the globalDefault class (the lowest-valued one if several claim
// it; priority 0 if none), an unknown name is refused. On update it keeps
// the stored priority. It also refuses a second globalDefault
// PriorityClass.
type Priority struct {
	lister schedulinglisters.PriorityClassLister // may be nil
	client kubernetes.Interface
}

var (
	_ Mutator   = (*Priority)(nil)
	_ Validator = (*Priority)(nil)
)

// NewPriority returns the plugin. Classes come from lister (nil: none)
// and, for a name the cache misses, live from client.
func NewPriority(lister schedulinglisters.PriorityClassLister, client kubernetes.Interface) *Priority {
	return &Priority{lister: lister, client: client}
}

// Name implements Plugin.
func (*Priority) Name() string { return "Priority" }

// Admit sets the pod's priority.
func (p *Priority) Admit(ctx context.Context, r *Request) error {
	if !r.is("", "pods", "") {
		return nil
	}
	pod, ok := r.Object.(*corev1.Pod)
	if !ok {
		return nil
	}
	switch r.Operation {
	case Update:
		if old, ok := r.OldObject.(*corev1.Pod); ok {
			if pod.Spec.Priority == nil && old.Spec.Priority != nil {
				v := *old.Spec.Priority
				pod.Spec.Priority = &v
			}
			if pod.Spec.PreemptionPolicy == nil && old.Spec.PreemptionPolicy != nil {
				v := *old.Spec.PreemptionPolicy
				pod.Spec.PreemptionPolicy = &v
			}
		}
		return nil
	case Create:
	default:
		return nil
	}
	var (
		value  int32
		policy *corev1.PreemptionPolicy
	)
	if pod.Spec.PriorityClassName == "" {
		pc, err := p.globalDefault(ctx)
		if err != nil {
			return fmt.Errorf("failed to get default priority class: %w", err)
		}
		if pc != nil {
			pod.Spec.PriorityClassName = pc.Name
			value, policy = pc.Value, pc.PreemptionPolicy
		} else {
			lower := corev1.PreemptLowerPriority
			policy = &lower
		}
	} else {
		pc, err := p.get(ctx, pod.Spec.PriorityClassName)
		if apierrors.IsNotFound(err) {
			return forbidden(r, fmt.Errorf("no PriorityClass with name %v was found", pod.Spec.PriorityClassName))
		}
		if err != nil {
			return fmt.Errorf("failed to get PriorityClass with name %s: %w", pod.Spec.PriorityClassName, err)
		}
		value, policy = pc.Value, pc.PreemptionPolicy
	}
	if pod.Spec.Priority != nil && *pod.Spec.Priority != value {
		return forbidden(r, fmt.Errorf("the integer value of priority (%d) must not be provided in pod spec; priority admission controller computed %d from the given PriorityClass name", *pod.Spec.Priority, value))
	}
	pod.Spec.Priority = &value
	if policy != nil {
		if pod.Spec.PreemptionPolicy != nil && *pod.Spec.PreemptionPolicy != *policy {
			return forbidden(r, fmt.Errorf("the string value of PreemptionPolicy (%s) must not be provided in pod spec; priority admission controller computed %s from the given PriorityClass name", *pod.Spec.PreemptionPolicy, *policy))
		}
		v := *policy
		pod.Spec.PreemptionPolicy = &v
	}
	return nil
}

// Validate refuses a globalDefault PriorityClass when another one exists.
func (p *Priority) Validate(ctx context.Context, r *Request) error {
	if !r.is("scheduling.k8s.io", "priorityclasses", "") || (r.Operation != Create && r.Operation != Update) {
		return nil
	}
	pc, ok := r.Object.(*schedulingv1.PriorityClass)
	if !ok || !pc.GlobalDefault {
		return nil
	}
	def, err := p.globalDefault(ctx)
	if err != nil {
		return fmt.Errorf("looking up the default priority class: %w", err)
	}
	if def != nil && def.Name != pc.Name {
		return forbidden(r, fmt.Errorf("PriorityClass %v is already marked as default. Only one default can exist", def.Name))
	}
	return nil
}

func (p *Priority) get(ctx context.Context, name string) (*schedulingv1.PriorityClass, error) {
	if p.lister != nil {
		if pc, err := p.lister.Get(name); err == nil {
			return pc, nil
		}
	}
	return p.client.SchedulingV1().PriorityClasses().Get(ctx, name, metav1.GetOptions{})
}

// globalDefault returns the globalDefault class with the lowest value
// (ties: the first name), or nil.
func (p *Priority) globalDefault(ctx context.Context) (*schedulingv1.PriorityClass, error) {
	var all []*schedulingv1.PriorityClass
	if p.lister != nil {
		got, err := p.lister.List(labels.Everything())
		if err != nil {
			return nil, err
		}
		all = got
	} else {
		list, err := p.client.SchedulingV1().PriorityClasses().List(ctx, metav1.ListOptions{})
		if err != nil {
			return nil, err
		}
		for i := range list.Items {
			all = append(all, &list.Items[i])
		}
	}
	var best *schedulingv1.PriorityClass
	for _, pc := range all {
		if !pc.GlobalDefault {
			continue
		}
		if best == nil || pc.Value < best.Value || (pc.Value == best.Value && pc.Name < best.Name) {
			best = pc
		}
	}
	return best, nil
}
