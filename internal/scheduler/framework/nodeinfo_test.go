package framework_test

import (
	"testing"

	v1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/skiff-dev/skiff/internal/scheduler/framework"
)

// TestNodeInfoKeepsSchedulingFields checks that a NodeInfo repeats the
// node's unschedulable flag and taints, follows SetNode, and that clones
// keep them.
func TestNodeInfoKeepsSchedulingFields(t *testing.T) {
	taint := v1.Taint{Key: "dedicated", Value: "gpu", Effect: v1.TaintEffectNoSchedule}
	cordoned := &v1.Node{ObjectMeta: metav1.ObjectMeta{Name: "a"}, Spec: v1.NodeSpec{Unschedulable: true, Taints: []v1.Taint{taint}}}
	plain := &v1.Node{ObjectMeta: metav1.ObjectMeta{Name: "a"}}

	ni := framework.NewNodeInfo(cordoned)
	check := func(what string, n *framework.NodeInfo, unschedulable bool, taints int) {
		t.Helper()
		if n.Unschedulable() != unschedulable || len(n.Taints()) != taints {
			t.Errorf("%s: Unschedulable() = %v, %d taints; want %v, %d", what, n.Unschedulable(), len(n.Taints()), unschedulable, taints)
		}
	}
	check("cordoned node", ni, true, 1)
	check("clone", ni.Clone(), true, 1)
	ni.SetNode(plain)
	check("after SetNode(plain)", ni, false, 0)
	ni.SetNode(nil)
	check("without a node", ni, false, 0)
}
