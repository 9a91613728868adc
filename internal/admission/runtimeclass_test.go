package admission

import (
	"context"
	"testing"

	"github.com/google/go-cmp/cmp"
	corev1 "k8s.io/api/core/v1"
	nodev1 "k8s.io/api/node/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	nodelisters "k8s.io/client-go/listers/node/v1"
	"k8s.io/client-go/tools/cache"
)

// runtimeClass returns a RuntimeClass with handler runc, the overhead
// (nil: none) and the scheduling (nil: none).
func runtimeClass(name string, overhead corev1.ResourceList, scheduling *nodev1.Scheduling) *nodev1.RuntimeClass {
	rc := &nodev1.RuntimeClass{ObjectMeta: metav1.ObjectMeta{Name: name}, Handler: "runc", Scheduling: scheduling}
	if overhead != nil {
		rc.Overhead = &nodev1.Overhead{PodFixed: overhead}
	}
	return rc
}

func TestRuntimeClass(t *testing.T) {
	t.Parallel()
	noSchedule := corev1.Toleration{Key: "sandboxed", Operator: corev1.TolerationOpExists, Effect: corev1.TaintEffectNoSchedule}
	anyEffect := corev1.Toleration{Key: "sandboxed", Operator: corev1.TolerationOpExists}
	gpu := corev1.Toleration{Key: "gpu", Operator: corev1.TolerationOpEqual, Value: "yes", Effect: corev1.TaintEffectNoSchedule}
	classes := []runtime.Object{
		runtimeClass("plain", nil, nil),
		runtimeClass("heavy", rl("cpu", "250m", "memory", "120Mi"), nil),
		runtimeClass("sandboxed", rl("memory", "64Mi"), &nodev1.Scheduling{
			NodeSelector: map[string]string{"runtime": "sandboxed", "zone": "a"},
			Tolerations:  []corev1.Toleration{noSchedule, gpu},
		}),
	}
	type want struct {
		Overhead     corev1.ResourceList
		NodeSelector map[string]string
		Tolerations  []corev1.Toleration
	}
	tests := []struct {
		name    string
		pod     func(*corev1.Pod)
		update  bool
		want    want // zero: the pod is left as it was
		wantErr string
	}{
		{
			name: "no class: untouched",
		},
		{
			name:    "no class with an overhead: refused",
			pod:     func(p *corev1.Pod) { p.Spec.Overhead = rl("cpu", "1") },
			wantErr: `403 pods "p" is forbidden: pod rejected: Pod Overhead set without corresponding RuntimeClass defined Overhead`,
		},
		{
			name:    "missing class: refused",
			pod:     func(p *corev1.Pod) { p.Spec.RuntimeClassName = ptr("gvisor") },
			wantErr: `403 pods "p" is forbidden: pod rejected: RuntimeClass "gvisor" not found`,
		},
		{
			name: "class without overhead or scheduling: untouched",
			pod:  func(p *corev1.Pod) { p.Spec.RuntimeClassName = ptr("plain") },
		},
		{
			name: "class without overhead, pod with one: refused",
			pod: func(p *corev1.Pod) {
				p.Spec.RuntimeClassName = ptr("plain")
				p.Spec.Overhead = rl("cpu", "1")
			},
			wantErr: `403 pods "p" is forbidden: pod rejected: Pod Overhead set without corresponding RuntimeClass defined Overhead`,
		},
		{
			name: "overhead set",
			pod:  func(p *corev1.Pod) { p.Spec.RuntimeClassName = ptr("heavy") },
			want: want{Overhead: rl("cpu", "250m", "memory", "120Mi")},
		},
		{
			name: "the same overhead (other spelling) is accepted",
			pod: func(p *corev1.Pod) {
				p.Spec.RuntimeClassName = ptr("heavy")
				p.Spec.Overhead = rl("cpu", "0.25", "memory", "120Mi")
			},
			want: want{Overhead: rl("cpu", "250m", "memory", "120Mi")},
		},
		{
			name: "conflicting overhead: refused",
			pod: func(p *corev1.Pod) {
				p.Spec.RuntimeClassName = ptr("heavy")
				p.Spec.Overhead = rl("cpu", "1")
			},
			wantErr: `403 pods "p" is forbidden: pod rejected: Pod's Overhead doesn't match RuntimeClass's defined Overhead`,
		},
		{
			name: "nodeSelector merged and tolerations appended",
			pod: func(p *corev1.Pod) {
				p.Spec.RuntimeClassName = ptr("sandboxed")
				p.Spec.NodeSelector = map[string]string{"disk": "ssd", "zone": "a"}
				p.Spec.Tolerations = []corev1.Toleration{gpu}
			},
			want: want{
				Overhead:     rl("memory", "64Mi"),
				NodeSelector: map[string]string{"disk": "ssd", "runtime": "sandboxed", "zone": "a"},
				Tolerations:  []corev1.Toleration{gpu, noSchedule},
			},
		},
		{
			name: "nodeSelector and tolerations taken when the pod has none",
			pod:  func(p *corev1.Pod) { p.Spec.RuntimeClassName = ptr("sandboxed") },
			want: want{
				Overhead:     rl("memory", "64Mi"),
				NodeSelector: map[string]string{"runtime": "sandboxed", "zone": "a"},
				Tolerations:  []corev1.Toleration{noSchedule, gpu},
			},
		},
		{
			name: "a broader pod toleration covers the class's",
			pod: func(p *corev1.Pod) {
				p.Spec.RuntimeClassName = ptr("sandboxed")
				p.Spec.Tolerations = []corev1.Toleration{anyEffect}
			},
			want: want{
				Overhead:     rl("memory", "64Mi"),
				NodeSelector: map[string]string{"runtime": "sandboxed", "zone": "a"},
				Tolerations:  []corev1.Toleration{anyEffect, gpu},
			},
		},
		{
			name: "conflicting nodeSelector: refused",
			pod: func(p *corev1.Pod) {
				p.Spec.RuntimeClassName = ptr("sandboxed")
				p.Spec.NodeSelector = map[string]string{"zone": "b"}
			},
			wantErr: `403 pods "p" is forbidden: conflict: runtimeClass.scheduling.nodeSelector[zone] = a; pod.spec.nodeSelector[zone] = b`,
		},
		{
			name: "update: untouched",
			pod: func(p *corev1.Pod) {
				p.Spec.RuntimeClassName = ptr("gvisor")
				p.Spec.Overhead = rl("cpu", "1")
			},
			update: true,
		},
	}
	for _, tt := range tests {
		for _, cached := range []bool{false, true} {
			name := tt.name + "/live"
			if cached {
				name = tt.name + "/cached"
			}
			t.Run(name, func(t *testing.T) {
				t.Parallel()
				var lister nodelisters.RuntimeClassLister
				client := newClient(classes...)
				if cached {
					// Every class in the cache; the client has none, so a
					// live read would fail.
					idx := cache.NewIndexer(cache.MetaNamespaceKeyFunc, cache.Indexers{})
					for _, o := range classes {
						if err := idx.Add(o); err != nil {
							t.Fatal(err)
						}
					}
					lister = nodelisters.NewRuntimeClassLister(idx)
					client = newClient()
				}
				pod := testPod("p")
				if tt.pod != nil {
					tt.pod(pod)
				}
				before := pod.DeepCopy()
				r := podCreate("ns", pod)
				if tt.update {
					r.Operation, r.OldObject = Update, before
				}
				err := NewChain(NewRuntimeClass(lister, client)).Admit(context.Background(), r)
				if diff := cmp.Diff(tt.wantErr, errText(t, err)); diff != "" {
					t.Fatalf("error (-want +got):\n%s", diff)
				}
				if err != nil {
					return
				}
				if tt.want.NodeSelector == nil && tt.want.Tolerations == nil && tt.want.Overhead == nil {
					if diff := cmp.Diff(before, pod); diff != "" {
						t.Fatalf("pod changed (-before +after):\n%s", diff)
					}
					return
				}
				got := want{pod.Spec.Overhead, pod.Spec.NodeSelector, pod.Spec.Tolerations}
				if diff := cmp.Diff(tt.want, got, cmp.Comparer(quantitiesEqual)); diff != "" {
					t.Errorf("pod (-want +got):\n%s", diff)
				}
			})
		}
	}
	// The classes (the cache's, in a server) are never changed.
	for _, o := range classes {
		rc := o.(*nodev1.RuntimeClass)
		if rc.Scheduling != nil && len(rc.Scheduling.NodeSelector) != 2 {
			t.Errorf("class %s changed: %+v", rc.Name, rc.Scheduling)
		}
	}
}

func quantitiesEqual(a, b corev1.ResourceList) bool {
	if len(a) != len(b) {
		return false
	}
	for k, q := range a {
		if q2, ok := b[k]; !ok || q.Cmp(q2) != 0 {
			return false
		}
	}
	return true
}

func TestMergeTolerations(t *testing.T) {
	t.Parallel()
	sec := func(s int64) *int64 { return &s }
	a := corev1.Toleration{Key: "a", Operator: corev1.TolerationOpEqual, Value: "1", Effect: corev1.TaintEffectNoSchedule}
	aAll := corev1.Toleration{Key: "a", Operator: corev1.TolerationOpExists}
	b := corev1.Toleration{Key: "b", Operator: corev1.TolerationOpExists, Effect: corev1.TaintEffectNoSchedule}
	everything := corev1.Toleration{Operator: corev1.TolerationOpExists}
	exec60 := corev1.Toleration{Key: "n", Operator: corev1.TolerationOpExists, Effect: corev1.TaintEffectNoExecute, TolerationSeconds: sec(60)}
	exec30 := corev1.Toleration{Key: "n", Operator: corev1.TolerationOpExists, Effect: corev1.TaintEffectNoExecute, TolerationSeconds: sec(30)}
	tests := []struct {
		name          string
		first, second []corev1.Toleration
		want          []corev1.Toleration
	}{
		{name: "both empty"},
		{name: "appended", first: []corev1.Toleration{a}, second: []corev1.Toleration{b}, want: []corev1.Toleration{a, b}},
		{name: "duplicates dropped", first: []corev1.Toleration{a, b}, second: []corev1.Toleration{b, a}, want: []corev1.Toleration{a, b}},
		{name: "a later broader one wins", first: []corev1.Toleration{a}, second: []corev1.Toleration{aAll}, want: []corev1.Toleration{aAll}},
		{name: "an earlier broader one wins", first: []corev1.Toleration{aAll}, second: []corev1.Toleration{a}, want: []corev1.Toleration{aAll}},
		{name: "empty key with Exists covers all", first: []corev1.Toleration{a, b}, second: []corev1.Toleration{everything}, want: []corev1.Toleration{everything}},
		{name: "a longer NoExecute time covers a shorter one (later)", first: []corev1.Toleration{exec30}, second: []corev1.Toleration{exec60}, want: []corev1.Toleration{exec60}},
		{name: "a longer NoExecute time covers a shorter one (earlier)", first: []corev1.Toleration{exec60}, second: []corev1.Toleration{exec30}, want: []corev1.Toleration{exec60}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			got := mergeTolerations(tt.first, tt.second)
			if diff := cmp.Diff(tt.want, got); diff != "" {
				t.Errorf("(-want +got):\n%s", diff)
			}
		})
	}
}
