package plugins

import (
	"context"
	"fmt"

	"github.com/go-logr/logr"
	v1 "k8s.io/api/core/v1"
	corev1helpers "k8s.io/component-helpers/scheduling/corev1"

	"github.com/skiff-dev/skiff/internal/scheduler/framework"
)

// TaintToleration rejects nodes with a NoSchedule or NoExecute taint the
// pod does not tolerate, and prefers nodes with fewer untolerated
// PreferNoSchedule taints.
type TaintToleration struct{}

var (
	_ framework.FilterPlugin    = TaintToleration{}
	_ framework.ScorePlugin     = TaintToleration{}
	_ framework.ScoreNormalizer = TaintToleration{}
)

// Name implements framework.Plugin.
func (TaintToleration) Name() string { return TaintTolerationName }

// Filter implements framework.FilterPlugin.
func (TaintToleration) Filter(_ context.Context, _ *framework.CycleState, pod *framework.PodInfo, node *framework.NodeInfo) *framework.Status {
	taints := node.Taints()
	if len(taints) == 0 {
		return nil
	}
	taint, found := corev1helpers.FindMatchingUntoleratedTaint(logr.Discard(), taints, pod.Pod.Spec.Tolerations, func(t *v1.Taint) bool {
		return t.Effect == v1.TaintEffectNoSchedule || t.Effect == v1.TaintEffectNoExecute
	}, false)
	if !found {
		return nil
	}
	return framework.NewStatus(framework.UnschedulableAndUnresolvable, fmt.Sprintf("node(s) had untolerated taint {%s: %s}", taint.Key, taint.Value))
}

// Score implements framework.ScorePlugin: the number of PreferNoSchedule
// taints not tolerated by the pod's PreferNoSchedule (or effect-less)
// tolerations; normalized in reverse.
func (TaintToleration) Score(_ context.Context, _ *framework.CycleState, pod *framework.PodInfo, node *framework.NodeInfo) (int64, *framework.Status) {
	var n int64
	taints := node.Taints()
	for i := range taints {
		t := &taints[i]
		if t.Effect != v1.TaintEffectPreferNoSchedule {
			continue
		}
		tolerated := false
		for j := range pod.Pod.Spec.Tolerations {
			tol := &pod.Pod.Spec.Tolerations[j]
			if (tol.Effect == "" || tol.Effect == v1.TaintEffectPreferNoSchedule) && tol.ToleratesTaint(logr.Discard(), t, false) {
				tolerated = true
				break
			}
		}
		if !tolerated {
			n++
		}
	}
	return n, nil
}

// NormalizeScore implements framework.ScoreNormalizer.
func (TaintToleration) NormalizeScore(_ context.Context, _ *framework.CycleState, _ *framework.PodInfo, scores []int64) *framework.Status {
	normalize(scores, true)
	return nil
}
