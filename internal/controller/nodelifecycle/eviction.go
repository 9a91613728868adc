package nodelifecycle

import (
	"time"

	"github.com/go-logr/logr"
	corev1 "k8s.io/api/core/v1"
)

// withDefaultTolerations returns tolerations plus, for each of the
// not-ready and unreachable NoExecute taints the pod does not tolerate at
// all, a toleration of it for seconds seconds, as upstream's
// DefaultTolerationSeconds admission plugin adds them. tolerations is not
// modified.
func withDefaultTolerations(tolerations []corev1.Toleration, seconds int64) []corev1.Toleration {
	out := append([]corev1.Toleration(nil), tolerations...)
	for _, key := range []string{corev1.TaintNodeNotReady, corev1.TaintNodeUnreachable} {
		taint := corev1.Taint{Key: key, Effect: corev1.TaintEffectNoExecute}
		if tolerates(tolerations, &taint) {
			continue
		}
		s := seconds
		out = append(out, corev1.Toleration{
			Key: key, Operator: corev1.TolerationOpExists,
			Effect: corev1.TaintEffectNoExecute, TolerationSeconds: &s,
		})
	}
	return out
}

func tolerates(tolerations []corev1.Toleration, taint *corev1.Taint) bool {
	for i := range tolerations {
		if tolerations[i].ToleratesTaint(logr.Discard(), taint, false) {
			return true
		}
	}
	return false
}

// evictionTime decides when a pod with tolerations must leave a node with
// the NoExecute taints taints, each added at added(taint). It returns
// evict=false when the pod may stay forever (no taints, or every taint is
// tolerated and none of the tolerations used has tolerationSeconds). With
// evict=true, at is the time of eviction: the zero time when some taint is
// not tolerated (at once), otherwise the earliest TimeAdded of the taints
// plus the smallest tolerationSeconds among the tolerations that match a
// taint (negative seconds count as 0), as upstream's taint manager.
func evictionTime(taints []corev1.Taint, tolerations []corev1.Toleration, added func(corev1.Taint) time.Time) (at time.Time, evict bool) {
	if len(taints) == 0 {
		return time.Time{}, false
	}
	var start time.Time
	minSeconds := int64(-1) // -1: no toleration with seconds seen
	for i := range taints {
		taint := &taints[i]
		matched := false
		for j := range tolerations {
			tol := &tolerations[j]
			if !tol.ToleratesTaint(logr.Discard(), taint, false) {
				continue
			}
			matched = true
			if tol.TolerationSeconds != nil {
				s := max(*tol.TolerationSeconds, 0)
				if minSeconds < 0 || s < minSeconds {
					minSeconds = s
				}
			}
		}
		if !matched {
			return time.Time{}, true
		}
		if a := added(*taint); start.IsZero() || a.Before(start) {
			start = a
		}
	}
	if minSeconds < 0 {
		return time.Time{}, false
	}
	return start.Add(time.Duration(minSeconds) * time.Second), true
}

// noExecuteTaints returns the node's NoExecute taints.
func noExecuteTaints(node *corev1.Node) []corev1.Taint {
	var out []corev1.Taint
	for _, t := range node.Spec.Taints {
		if t.Effect == corev1.TaintEffectNoExecute {
			out = append(out, t)
		}
	}
	return out
}
