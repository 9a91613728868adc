package plugins

import (
	"context"

	"github.com/skiff-dev/skiff/internal/hostports"
	"github.com/skiff-dev/skiff/internal/scheduler/framework"
)

// NodePorts rejects nodes where a host port the pod asks for is taken.
type NodePorts struct{}

var _ framework.FilterPlugin = NodePorts{}

// ReasonNodePorts is NodePorts' rejection reason.
const ReasonNodePorts = "node(s) didn't have free ports for the requested pod ports"

// Name implements framework.Plugin.
func (NodePorts) Name() string { return NodePortsName }

// Filter implements framework.FilterPlugin.
func (NodePorts) Filter(_ context.Context, _ *framework.CycleState, pod *framework.PodInfo, node *framework.NodeInfo) *framework.Status {
	if len(node.UsedPorts) == 0 {
		return nil
	}
	if hostports.Collide(hostports.Of(pod.Pod), node.UsedPorts) {
		return framework.NewStatus(framework.Unschedulable, ReasonNodePorts)
	}
	return nil
}
