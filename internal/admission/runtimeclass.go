package admission

import (
	"context"
	"fmt"
	"maps"

	corev1 "k8s.io/api/core/v1"
	nodev1 "k8s.io/api/node/v1"
	"k8s.io/apimachinery/pkg/api/equality"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes"
	nodelisters "k8s.io/client-go/listers/node/v1"
)

// RuntimeClass applies a pod's RuntimeClass when the pod is created, as
// upstream's RuntimeClass plugin does:
//
//   - a pod naming a class that does not exist is refused;
//   - the class's overhead.podFixed becomes spec.overhead (a pod that sets
//     a different overhead is refused);
//   - the class's scheduling.nodeSelector is merged into the pod's (a key
//     with another value is refused) and its scheduling.tolerations are
//     added, keeping only one of tolerations that cover each other.
//
// In the validating phase it refuses a pod whose spec.overhead is not its
// class's overhead, also a pod with an overhead and no class (or a class
// without one): only this plugin sets spec.overhead. Pods without
// runtimeClassName are otherwise left alone, and so are updates (the fields
// are immutable) and subresources.
type RuntimeClass struct {
	lister nodelisters.RuntimeClassLister // may be nil
	client kubernetes.Interface
}

var (
	_ Mutator   = (*RuntimeClass)(nil)
	_ Validator = (*RuntimeClass)(nil)
)

// NewRuntimeClass returns the plugin. Classes come from lister (nil: none)
// and, for a name the cache misses (it may lag a class just created), live
// from client.
func NewRuntimeClass(lister nodelisters.RuntimeClassLister, client kubernetes.Interface) *RuntimeClass {
	return &RuntimeClass{lister: lister, client: client}
}

// Name implements Plugin.
func (*RuntimeClass) Name() string { return "RuntimeClass" }

// Admit sets the overhead and merges the scheduling constraints of the
// pod's class into the pod.
func (p *RuntimeClass) Admit(ctx context.Context, r *Request) error {
	pod, ok := runtimeClassPod(r)
	if !ok {
		return nil
	}
	rc, err := p.class(ctx, r, pod)
	if err != nil || rc == nil {
		return err
	}
	if rc.Overhead != nil {
		if len(pod.Spec.Overhead) > 0 && !equality.Semantic.DeepEqual(rc.Overhead.PodFixed, pod.Spec.Overhead) {
			return forbidden(r, fmt.Errorf("pod rejected: Pod's Overhead doesn't match RuntimeClass's defined Overhead"))
		}
		pod.Spec.Overhead = rc.Overhead.PodFixed.DeepCopy()
	}
	if s := rc.Scheduling; s != nil {
		if pod.Spec.NodeSelector == nil {
			pod.Spec.NodeSelector = maps.Clone(s.NodeSelector)
		} else {
			for k, v := range s.NodeSelector {
				if got, ok := pod.Spec.NodeSelector[k]; ok && got != v {
					return forbidden(r, fmt.Errorf("conflict: runtimeClass.scheduling.nodeSelector[%s] = %s; pod.spec.nodeSelector[%s] = %s", k, v, k, got))
				}
				pod.Spec.NodeSelector[k] = v
			}
		}
		pod.Spec.Tolerations = mergeTolerations(pod.Spec.Tolerations, s.Tolerations)
	}
	return nil
}

// Validate refuses a pod whose overhead is not its class's.
func (p *RuntimeClass) Validate(ctx context.Context, r *Request) error {
	pod, ok := runtimeClassPod(r)
	if !ok {
		return nil
	}
	rc, err := p.class(ctx, r, pod)
	if err != nil {
		return err
	}
	if len(pod.Spec.Overhead) == 0 {
		return nil
	}
	if rc == nil || rc.Overhead == nil {
		return forbidden(r, fmt.Errorf("pod rejected: Pod Overhead set without corresponding RuntimeClass defined Overhead"))
	}
	if !equality.Semantic.DeepEqual(rc.Overhead.PodFixed, pod.Spec.Overhead) {
		return forbidden(r, fmt.Errorf("pod rejected: Pod's Overhead doesn't match RuntimeClass's defined Overhead"))
	}
	return nil
}

// runtimeClassPod returns the pod of a pod CREATE (not a subresource).
func runtimeClassPod(r *Request) (*corev1.Pod, bool) {
	if !r.is("", "pods", "") || r.Operation != Create {
		return nil, false
	}
	pod, ok := r.Object.(*corev1.Pod)
	return pod, ok
}

// class returns the pod's RuntimeClass (nil when it names none; read-only,
// it may be the cache's), or a 403 when it names a missing one.
func (p *RuntimeClass) class(ctx context.Context, r *Request, pod *corev1.Pod) (*nodev1.RuntimeClass, error) {
	if pod.Spec.RuntimeClassName == nil {
		return nil, nil
	}
	name := *pod.Spec.RuntimeClassName
	if p.lister != nil {
		if rc, err := p.lister.Get(name); err == nil {
			return rc, nil
		}
	}
	rc, err := p.client.NodeV1().RuntimeClasses().Get(ctx, name, metav1.GetOptions{})
	if apierrors.IsNotFound(err) {
		return nil, forbidden(r, fmt.Errorf("pod rejected: RuntimeClass %q not found", name))
	}
	if err != nil {
		return nil, fmt.Errorf("getting RuntimeClass %q: %w", name, err)
	}
	return rc, nil
}

// mergeTolerations returns first and then second (copies), leaving out
// each toleration another one kept covers: an exact duplicate, or one a
// broader toleration (an empty effect, the Exists operator, an empty key
// with Exists, a shorter NoExecute tolerationSeconds) also tolerates. Of
// two equal tolerations the first is kept. This is upstream's merge of a
// RuntimeClass's tolerations into a pod's. Nil when both are empty.
func mergeTolerations(first, second []corev1.Toleration) []corev1.Toleration {
	all := make([]corev1.Toleration, 0, len(first)+len(second))
	all = append(all, first...)
	all = append(all, second...)
	var out []corev1.Toleration
next:
	for i := range all {
		t := &all[i]
		for j := range out {
			if covers(&out[j], t) {
				continue next
			}
		}
		for j := i + 1; j < len(all); j++ {
			if !equality.Semantic.DeepEqual(t, &all[j]) && covers(&all[j], t) {
				continue next // a later, broader one is kept instead
			}
		}
		out = append(out, *t.DeepCopy())
	}
	return out
}

// covers reports whether toleration b tolerates every taint a tolerates.
func covers(b, a *corev1.Toleration) bool {
	if equality.Semantic.DeepEqual(a, b) {
		return true
	}
	// An empty key with Exists matches every key.
	if a.Key != b.Key && (b.Key != "" || b.Operator != corev1.TolerationOpExists) {
		return false
	}
	// An empty effect matches every effect.
	if a.Effect != b.Effect && b.Effect != "" {
		return false
	}
	// A NoExecute toleration with a time limit covers only shorter ones.
	if b.Effect == corev1.TaintEffectNoExecute && b.TolerationSeconds != nil {
		if a.TolerationSeconds == nil || *a.TolerationSeconds > *b.TolerationSeconds {
			return false
		}
	}
	switch b.Operator {
	case corev1.TolerationOpEqual, "": // "" means Equal
		return a.Operator == corev1.TolerationOpEqual && a.Value == b.Value
	case corev1.TolerationOpExists:
		return true
	default:
		return false
	}
}
