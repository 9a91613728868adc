package flowcontrol

import (
	"testing"

	"github.com/google/go-cmp/cmp"
	flowcontrolv1 "k8s.io/api/flowcontrol/v1"
	"k8s.io/client-go/kubernetes/fake"
	"k8s.io/client-go/tools/cache"
	"k8s.io/utils/ptr"

	flowcontrollisters "k8s.io/client-go/listers/flowcontrol/v1"
)

func testPLOps() ops[*flowcontrolv1.PriorityLevelConfiguration] {
	lister := flowcontrollisters.NewPriorityLevelConfigurationLister(cache.NewIndexer(cache.MetaNamespaceKeyFunc, cache.Indexers{}))
	return priorityLevelOps(fake.NewClientset(), lister)
}

func TestRevise(t *testing.T) {
	t.Parallel()
	boot := queuing("workload-low", 100, 90, 128, 6)
	changed := func(annotation *string, generation int64) *flowcontrolv1.PriorityLevelConfiguration {
		pl := boot.DeepCopy()
		pl.Generation = generation
		pl.Spec.Limited.NominalConcurrencyShares = ptr.To[int32](1)
		delete(pl.Annotations, flowcontrolv1.AutoUpdateAnnotationKey)
		if annotation != nil {
			pl.Annotations[flowcontrolv1.AutoUpdateAnnotationKey] = *annotation
		}
		return pl
	}
	const restored, kept = true, false
	tests := []struct {
		name       string
		cur        *flowcontrolv1.PriorityLevelConfiguration
		mandatory  bool
		wantUpdate bool
		wantSpec   bool // restored or kept, when updated
		wantAnn    string
	}{
		{"suggested, annotated true", changed(ptr.To("true"), 2), false, true, restored, "true"},
		{"suggested, annotated false", changed(ptr.To("false"), 2), false, false, kept, ""},
		{"suggested, annotated FALSE", changed(ptr.To("FALSE"), 2), false, false, kept, ""},
		{"suggested, no annotation, never changed", changed(nil, 1), false, true, restored, "true"},
		{"suggested, no annotation, changed", changed(nil, 2), false, true, kept, "false"},
		{"suggested, malformed annotation, never changed", changed(ptr.To("maybe"), 1), false, true, restored, "true"},
		{"suggested, malformed annotation, changed", changed(ptr.To("maybe"), 2), false, true, kept, "false"},
		{"suggested, up to date", boot.DeepCopy(), false, false, kept, ""},
		{"suggested, up to date, annotation t", func() *flowcontrolv1.PriorityLevelConfiguration {
			pl := boot.DeepCopy()
			pl.Annotations[flowcontrolv1.AutoUpdateAnnotationKey] = "t"
			return pl
		}(), false, false, kept, ""},
		{"mandatory, annotated false", changed(ptr.To("false"), 2), true, true, restored, "true"},
		{"mandatory, no annotation", changed(nil, 5), true, true, restored, "true"},
	}
	o := testPLOps()
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			before := tt.cur.DeepCopy()
			got, ok := revise(o, tt.cur, boot, tt.mandatory)
			if diff := cmp.Diff(before, tt.cur); diff != "" {
				t.Errorf("revise modified its input (-before +after):\n%s", diff)
			}
			if ok != tt.wantUpdate {
				t.Fatalf("update = %v, want %v", ok, tt.wantUpdate)
			}
			if !ok {
				return
			}
			wantSpec := tt.cur.Spec
			if tt.wantSpec == restored {
				wantSpec = boot.Spec
			}
			if diff := cmp.Diff(wantSpec, got.Spec); diff != "" {
				t.Errorf("spec (-want +got):\n%s", diff)
			}
			if a := got.Annotations[flowcontrolv1.AutoUpdateAnnotationKey]; a != tt.wantAnn {
				t.Errorf("annotation = %q, want %q", a, tt.wantAnn)
			}
		})
	}
}

func TestPriorityLevelSpecEqualExempt(t *testing.T) {
	t.Parallel()
	boot := MandatoryPriorityLevelConfiguration("exempt")
	tests := []struct {
		name   string
		mutate func(pl *flowcontrolv1.PriorityLevelConfiguration)
		want   bool
	}{
		{"as bootstrapped", func(*flowcontrolv1.PriorityLevelConfiguration) {}, true},
		{"exempt values changed", func(pl *flowcontrolv1.PriorityLevelConfiguration) {
			pl.Spec.Exempt.NominalConcurrencyShares = ptr.To[int32](10)
			pl.Spec.Exempt.LendablePercent = ptr.To[int32](50)
		}, true},
		{"exempt missing", func(pl *flowcontrolv1.PriorityLevelConfiguration) { pl.Spec.Exempt = nil }, false},
		{"type changed", func(pl *flowcontrolv1.PriorityLevelConfiguration) {
			pl.Spec.Type = flowcontrolv1.PriorityLevelEnablementLimited
		}, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			have := boot.DeepCopy()
			tt.mutate(have)
			if got := priorityLevelSpecEqual(boot, have); got != tt.want {
				t.Errorf("equal = %v, want %v", got, tt.want)
			}
			if diff := cmp.Diff(MandatoryPriorityLevelConfiguration("exempt"), boot); diff != "" {
				t.Errorf("bootstrap object modified:\n%s", diff)
			}
		})
	}
}
