package flowcontrol

import (
	"testing"

	"github.com/google/go-cmp/cmp"
	flowcontrolv1 "k8s.io/api/flowcontrol/v1"
	"k8s.io/apimachinery/pkg/api/meta"
	"k8s.io/apimachinery/pkg/runtime"
)

func TestBootstrap(t *testing.T) {
	t.Parallel()
	mandatory, suggested := Bootstrap()
	names := func(objs []runtime.Object) []string {
		var out []string
		for _, o := range objs {
			m, err := meta.Accessor(o)
			if err != nil {
				t.Fatal(err)
			}
			kind := o.GetObjectKind().GroupVersionKind()
			if kind.GroupVersion() != flowcontrolv1.SchemeGroupVersion {
				t.Errorf("%s: apiVersion %v", m.GetName(), kind.GroupVersion())
			}
			if v := m.GetAnnotations()[flowcontrolv1.AutoUpdateAnnotationKey]; v != "true" {
				t.Errorf("%s %s: autoupdate annotation %q", kind.Kind, m.GetName(), v)
			}
			out = append(out, kind.Kind+"/"+m.GetName())
		}
		return out
	}
	wantMandatory := []string{
		"PriorityLevelConfiguration/catch-all", "PriorityLevelConfiguration/exempt",
		"FlowSchema/exempt", "FlowSchema/catch-all",
	}
	if diff := cmp.Diff(wantMandatory, names(mandatory)); diff != "" {
		t.Errorf("mandatory (-want +got):\n%s", diff)
	}
	wantSuggested := []string{
		"PriorityLevelConfiguration/system", "PriorityLevelConfiguration/node-high",
		"PriorityLevelConfiguration/leader-election", "PriorityLevelConfiguration/workload-high",
		"PriorityLevelConfiguration/workload-low", "PriorityLevelConfiguration/global-default",
		"FlowSchema/system-nodes", "FlowSchema/system-node-high", "FlowSchema/probes",
		"FlowSchema/system-leader-election", "FlowSchema/workload-leader-election",
		"FlowSchema/endpoint-controller", "FlowSchema/kube-controller-manager", "FlowSchema/kube-scheduler",
		"FlowSchema/kube-system-service-accounts", "FlowSchema/service-accounts", "FlowSchema/global-default",
	}
	if diff := cmp.Diff(wantSuggested, names(suggested)); diff != "" {
		t.Errorf("suggested (-want +got):\n%s", diff)
	}

	// Every flow schema references a bootstrapped priority level.
	levels := map[string]bool{}
	for _, o := range append(mandatory, suggested...) {
		if pl, ok := o.(*flowcontrolv1.PriorityLevelConfiguration); ok {
			levels[pl.Name] = true
		}
	}
	for _, o := range append(mandatory, suggested...) {
		if fs, ok := o.(*flowcontrolv1.FlowSchema); ok && !levels[fs.Spec.PriorityLevelConfiguration.Name] {
			t.Errorf("FlowSchema %s references unknown level %q", fs.Name, fs.Spec.PriorityLevelConfiguration.Name)
		}
	}
}

func TestMandatoryLookups(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name       string
		fs, pl     bool
		wantPLType flowcontrolv1.PriorityLevelEnablement
	}{
		{"exempt", true, true, flowcontrolv1.PriorityLevelEnablementExempt},
		{"catch-all", true, true, flowcontrolv1.PriorityLevelEnablementLimited},
		{"global-default", false, false, ""},
		{"", false, false, ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := MandatoryFlowSchema(tt.name); (got != nil) != tt.fs {
				t.Errorf("MandatoryFlowSchema = %v", got)
			}
			pl := MandatoryPriorityLevelConfiguration(tt.name)
			if (pl != nil) != tt.pl {
				t.Fatalf("MandatoryPriorityLevelConfiguration = %v", pl)
			}
			if pl != nil && pl.Spec.Type != tt.wantPLType {
				t.Errorf("type = %s, want %s", pl.Spec.Type, tt.wantPLType)
			}
		})
	}
	// Each call returns a fresh object.
	a := MandatoryFlowSchema("exempt")
	a.Spec.MatchingPrecedence = 42
	if b := MandatoryFlowSchema("exempt"); b.Spec.MatchingPrecedence != 1 {
		t.Errorf("MandatoryFlowSchema shares its objects: precedence %d", b.Spec.MatchingPrecedence)
	}
}
