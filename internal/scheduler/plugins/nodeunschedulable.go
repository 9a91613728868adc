package plugins

import (
	"context"

	"github.com/go-logr/logr"
	v1 "k8s.io/api/core/v1"
	corev1helpers "k8s.io/component-helpers/scheduling/corev1"

	"github.com/skiff-dev/skiff/internal/scheduler/framework"
)

// NodeUnschedulable rejects nodes with spec.unschedulable unless the pod
// tolerates the node.kubernetes.io/unschedulable:NoSchedule taint.
type NodeUnschedulable struct{}

var _ framework.FilterPlugin = NodeUnschedulable{}

// ReasonNodeUnschedulable is NodeUnschedulable's rejection reason.
const ReasonNodeUnschedulable = "node(s) were unschedulable"

// Name implements framework.Plugin.
func (NodeUnschedulable) Name() string { return NodeUnschedulableName }

// Filter implements framework.FilterPlugin.
func (NodeUnschedulable) Filter(_ context.Context, _ *framework.CycleState, pod *framework.PodInfo, node *framework.NodeInfo) *framework.Status {
	if !node.Unschedulable() {
		return nil
	}
	taint := v1.Taint{Key: v1.TaintNodeUnschedulable, Effect: v1.TaintEffectNoSchedule}
	if corev1helpers.TolerationsTolerateTaint(logr.Discard(), pod.Pod.Spec.Tolerations, &taint, false) {
		return nil
	}
	return framework.NewStatus(framework.UnschedulableAndUnresolvable, ReasonNodeUnschedulable)
}
