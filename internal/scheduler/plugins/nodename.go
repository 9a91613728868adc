package plugins

import (
	"context"

	"github.com/skiff-dev/skiff/internal/scheduler/framework"
)

// NodeName rejects nodes other than the one a pod names in spec.nodeName.
type NodeName struct{}

var _ framework.FilterPlugin = NodeName{}

// ReasonNodeName is NodeName's rejection reason.
const ReasonNodeName = "node(s) didn't match the requested node name"

// Name implements framework.Plugin.
func (NodeName) Name() string { return NodeNameName }

// Filter implements framework.FilterPlugin.
func (NodeName) Filter(_ context.Context, _ *framework.CycleState, pod *framework.PodInfo, node *framework.NodeInfo) *framework.Status {
	if want := pod.Pod.Spec.NodeName; want != "" && want != node.Name() {
		return framework.NewStatus(framework.UnschedulableAndUnresolvable, ReasonNodeName)
	}
	return nil
}
