package admission

import (
	"context"
	"testing"

	"github.com/google/go-cmp/cmp"
	corev1 "k8s.io/api/core/v1"
	schedulingv1 "k8s.io/api/scheduling/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
)

func priorityClass(name string, value int32, global bool, policy *corev1.PreemptionPolicy) *schedulingv1.PriorityClass {
	return &schedulingv1.PriorityClass{ObjectMeta: metav1.ObjectMeta{Name: name}, Value: value, GlobalDefault: global, PreemptionPolicy: policy}
}

func TestPriority(t *testing.T) {
	t.Parallel()
	never := corev1.PreemptNever
	lower := corev1.PreemptLowerPriority
	tests := []struct {
		name       string
		classes    []runtime.Object
		pod        func(*corev1.Pod)
		wantClass  string
		wantValue  int32
		wantPolicy *corev1.PreemptionPolicy
		wantErr    string
	}{
		{
			name:       "no class and no default: zero",
			wantPolicy: &lower,
		},
		{
			name:       "global default applies",
			classes:    []runtime.Object{priorityClass("low", 10, true, &never), priorityClass("high", 1000, false, nil)},
			wantClass:  "low",
			wantValue:  10,
			wantPolicy: &never,
		},
		{
			name:      "lowest global default wins",
			classes:   []runtime.Object{priorityClass("b", 20, true, nil), priorityClass("a", 10, true, nil)},
			wantClass: "a",
			wantValue: 10,
		},
		{
			name:       "named class",
			classes:    []runtime.Object{priorityClass("high", 1000, false, &lower)},
			pod:        func(p *corev1.Pod) { p.Spec.PriorityClassName = "high" },
			wantClass:  "high",
			wantValue:  1000,
			wantPolicy: &lower,
		},
		{
			name:    "unknown class",
			pod:     func(p *corev1.Pod) { p.Spec.PriorityClassName = "nope" },
			wantErr: `403 pods "p" is forbidden: no PriorityClass with name nope was found`,
		},
		{
			name:    "explicit priority must agree",
			classes: []runtime.Object{priorityClass("high", 1000, false, nil)},
			pod: func(p *corev1.Pod) {
				p.Spec.PriorityClassName = "high"
				p.Spec.Priority = ptr(int32(5))
			},
			wantErr: `403 pods "p" is forbidden: the integer value of priority (5) must not be provided in pod spec; priority admission controller computed 1000 from the given PriorityClass name`,
		},
		{
			name:      "built-in classes",
			classes:   []runtime.Object{SystemPriorityClasses()[0], SystemPriorityClasses()[1]},
			pod:       func(p *corev1.Pod) { p.Spec.PriorityClassName = SystemNodeCritical },
			wantClass: SystemNodeCritical,
			wantValue: 2000001000,
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			pod := testPod("p")
			if tt.pod != nil {
				tt.pod(pod)
			}
			err := NewChain(NewPriority(nil, newClient(tt.classes...))).Admit(context.Background(), podCreate("ns", pod))
			if diff := cmp.Diff(tt.wantErr, errText(t, err)); diff != "" {
				t.Fatalf("error (-want +got):\n%s", diff)
			}
			if err != nil {
				return
			}
			got := struct {
				Class  string
				Value  *int32
				Policy *corev1.PreemptionPolicy
			}{pod.Spec.PriorityClassName, pod.Spec.Priority, pod.Spec.PreemptionPolicy}
			want := struct {
				Class  string
				Value  *int32
				Policy *corev1.PreemptionPolicy
			}{tt.wantClass, &tt.wantValue, tt.wantPolicy}
			if diff := cmp.Diff(want, got); diff != "" {
				t.Errorf("priority (-want +got):\n%s", diff)
			}
		})
	}
}

func TestPriorityKeepsPriorityOnUpdate(t *testing.T) {
	t.Parallel()
	old := testPod("p")
	old.Spec.Priority = ptr(int32(7))
	old.Spec.PreemptionPolicy = ptr(corev1.PreemptNever)
	pod := testPod("p")
	r := &Request{Operation: Update, Namespace: "ns", Name: "p", Resource: gvr("", "pods"), Object: pod, OldObject: old}
	if err := NewChain(NewPriority(nil, newClient())).Admit(context.Background(), r); err != nil {
		t.Fatal(err)
	}
	if diff := cmp.Diff(old.Spec, pod.Spec); diff != "" {
		t.Errorf("spec (-want +got):\n%s", diff)
	}
}

func TestPriorityOneGlobalDefault(t *testing.T) {
	t.Parallel()
	client := newClient(priorityClass("existing", 1, true, nil))
	p := NewPriority(nil, client)
	r := &Request{Operation: Create, Name: "second", Resource: gvr("scheduling.k8s.io", "priorityclasses"), Object: priorityClass("second", 2, true, nil)}
	got := errText(t, NewChain(p).Admit(context.Background(), r))
	want := `403 priorityclasses.scheduling.k8s.io "second" is forbidden: PriorityClass existing is already marked as default. Only one default can exist`
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("(-want +got):\n%s", diff)
	}
	r.Object = priorityClass("existing", 3, true, nil) // updating the default itself is fine
	r.Operation, r.Name = Update, "existing"
	if err := NewChain(p).Admit(context.Background(), r); err != nil {
		t.Errorf("update of the default: %v", err)
	}
}

func TestEnsurePriorityClasses(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	client := newClient(priorityClass(SystemClusterCritical, SystemCriticalPriority, false, nil))
	for range 2 { // idempotent
		if err := EnsurePriorityClasses(ctx, client); err != nil {
			t.Fatalf("EnsurePriorityClasses: %v", err)
		}
	}
	list, err := client.SchedulingV1().PriorityClasses().List(ctx, metav1.ListOptions{})
	if err != nil {
		t.Fatal(err)
	}
	got := map[string]int32{}
	for _, pc := range list.Items {
		got[pc.Name] = pc.Value
	}
	want := map[string]int32{SystemNodeCritical: 2000001000, SystemClusterCritical: 2000000000}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("classes (-want +got):\n%s", diff)
	}
}
