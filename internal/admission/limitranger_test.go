package admission

import (
	"context"
	"fmt"
	"sync/atomic"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/resource"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	clienttesting "k8s.io/client-go/testing"
	"k8s.io/client-go/tools/cache"
)

func rl(kv ...string) corev1.ResourceList {
	out := corev1.ResourceList{}
	for i := 0; i < len(kv); i += 2 {
		out[corev1.ResourceName(kv[i])] = resource.MustParse(kv[i+1])
	}
	return out
}

func limitRange(name string, items ...corev1.LimitRangeItem) *corev1.LimitRange {
	return &corev1.LimitRange{ObjectMeta: metav1.ObjectMeta{Name: name, Namespace: "ns"}, Spec: corev1.LimitRangeSpec{Limits: items}}
}

func withResources(req, lim corev1.ResourceList) corev1.Container {
	return corev1.Container{Name: "c", Image: "i", Resources: corev1.ResourceRequirements{Requests: req, Limits: lim}}
}

func TestLimitRangerDefaults(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name       string
		ranges     []*corev1.LimitRange
		containers []corev1.Container
		init       []corev1.Container
		wantC      []corev1.ResourceRequirements
		wantInit   []corev1.ResourceRequirements
		wantNote   string
	}{
		{
			name: "default and defaultRequest fill unset values",
			ranges: []*corev1.LimitRange{limitRange("lr", corev1.LimitRangeItem{
				Type: corev1.LimitTypeContainer, Default: rl("cpu", "500m", "memory", "256Mi"), DefaultRequest: rl("cpu", "100m", "memory", "128Mi"),
			})},
			containers: []corev1.Container{withResources(nil, nil)},
			init:       []corev1.Container{{Name: "i", Resources: corev1.ResourceRequirements{Limits: rl("cpu", "1")}}},
			wantC:      []corev1.ResourceRequirements{{Requests: rl("cpu", "100m", "memory", "128Mi"), Limits: rl("cpu", "500m", "memory", "256Mi")}},
			wantInit:   []corev1.ResourceRequirements{{Requests: rl("cpu", "100m", "memory", "128Mi"), Limits: rl("cpu", "1", "memory", "256Mi")}},
			wantNote:   "LimitRanger plugin set: cpu, memory request for container c; cpu, memory limit for container c; cpu, memory request for init container i; memory limit for init container i",
		},
		{
			name: "set values are kept",
			ranges: []*corev1.LimitRange{limitRange("lr", corev1.LimitRangeItem{
				Type: corev1.LimitTypeContainer, Default: rl("cpu", "500m"), DefaultRequest: rl("cpu", "100m"),
			})},
			containers: []corev1.Container{withResources(rl("cpu", "200m"), rl("cpu", "300m"))},
			wantC:      []corev1.ResourceRequirements{{Requests: rl("cpu", "200m"), Limits: rl("cpu", "300m")}},
		},
		{
			name: "max and min stand in for missing defaults",
			ranges: []*corev1.LimitRange{limitRange("lr", corev1.LimitRangeItem{
				Type: corev1.LimitTypeContainer, Max: rl("memory", "1Gi"), Min: rl("cpu", "50m"),
			})},
			containers: []corev1.Container{withResources(nil, nil)},
			wantC:      []corev1.ResourceRequirements{{Requests: rl("cpu", "50m", "memory", "1Gi"), Limits: rl("memory", "1Gi")}},
			wantNote:   "LimitRanger plugin set: cpu, memory request for container c; memory limit for container c",
		},
		{
			name:       "pod items give no defaults",
			ranges:     []*corev1.LimitRange{limitRange("lr", corev1.LimitRangeItem{Type: corev1.LimitTypePod, Max: rl("cpu", "4")})},
			containers: []corev1.Container{withResources(rl("cpu", "1"), rl("cpu", "1"))},
			wantC:      []corev1.ResourceRequirements{{Requests: rl("cpu", "1"), Limits: rl("cpu", "1")}},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			client := newClient()
			for _, lr := range tt.ranges {
				if _, err := client.CoreV1().LimitRanges("ns").Create(context.Background(), lr, metav1.CreateOptions{}); err != nil {
					t.Fatal(err)
				}
			}
			pod := testPod("p", tt.containers...)
			pod.Spec.InitContainers = tt.init
			if err := NewChain(NewLimitRanger(nil, client)).Admit(context.Background(), podCreate("ns", pod)); err != nil {
				t.Fatalf("Admit: %v", err)
			}
			var gotC, gotInit []corev1.ResourceRequirements
			for _, c := range pod.Spec.Containers {
				gotC = append(gotC, c.Resources)
			}
			for _, c := range pod.Spec.InitContainers {
				gotInit = append(gotInit, c.Resources)
			}
			if diff := cmp.Diff(tt.wantC, gotC); diff != "" {
				t.Errorf("containers (-want +got):\n%s", diff)
			}
			if diff := cmp.Diff(tt.wantInit, gotInit); diff != "" {
				t.Errorf("init containers (-want +got):\n%s", diff)
			}
			if diff := cmp.Diff(tt.wantNote, pod.Annotations[LimitRangerAnnotation]); diff != "" {
				t.Errorf("annotation (-want +got):\n%s", diff)
			}
		})
	}
}

func TestLimitRangerValidation(t *testing.T) {
	t.Parallel()
	container := corev1.LimitTypeContainer
	tests := []struct {
		name    string
		item    corev1.LimitRangeItem
		req     *Request
		wantErr string
	}{
		{
			name: "container within bounds",
			item: corev1.LimitRangeItem{Type: container, Min: rl("cpu", "100m"), Max: rl("cpu", "1")},
			req:  podCreate("ns", testPod("p", withResources(rl("cpu", "200m"), rl("cpu", "500m")))),
		},
		{
			name:    "container over max",
			item:    corev1.LimitRangeItem{Type: container, Max: rl("cpu", "1")},
			req:     podCreate("ns", testPod("p", withResources(rl("cpu", "200m"), rl("cpu", "2")))),
			wantErr: `403 pods "p" is forbidden: maximum cpu usage per Container is 1, but limit is 2`,
		},
		{
			name:    "container under min",
			item:    corev1.LimitRangeItem{Type: container, Min: rl("memory", "64Mi")},
			req:     podCreate("ns", testPod("p", withResources(rl("memory", "32Mi"), rl("memory", "32Mi")))),
			wantErr: `403 pods "p" is forbidden: minimum memory usage per Container is 64Mi, but request is 32Mi`,
		},
		{
			name: "several violations are listed",
			item: corev1.LimitRangeItem{Type: container, Max: rl("cpu", "1", "memory", "1Gi")},
			req:  podCreate("ns", testPod("p", withResources(rl("cpu", "2", "memory", "2Gi"), rl("cpu", "2", "memory", "2Gi")))),
			wantErr: `403 pods "p" is forbidden: [maximum cpu usage per Container is 1, but limit is 2, ` +
				`maximum memory usage per Container is 1Gi, but limit is 2Gi]`,
		},
		{
			name:    "ratio exceeded",
			item:    corev1.LimitRangeItem{Type: container, MaxLimitRequestRatio: rl("cpu", "2")},
			req:     podCreate("ns", testPod("p", withResources(rl("cpu", "100m"), rl("cpu", "400m")))),
			wantErr: `403 pods "p" is forbidden: cpu max limit to request ratio per Container is 2, but provided ratio is 4.000000`,
		},
		{
			name: "pod max sums the containers",
			item: corev1.LimitRangeItem{Type: corev1.LimitTypePod, Max: rl("memory", "1Gi")},
			req: podCreate("ns", testPod("p",
				corev1.Container{Name: "a", Resources: corev1.ResourceRequirements{Requests: rl("memory", "600Mi"), Limits: rl("memory", "600Mi")}},
				corev1.Container{Name: "b", Resources: corev1.ResourceRequirements{Requests: rl("memory", "600Mi"), Limits: rl("memory", "600Mi")}},
			)),
			wantErr: `403 pods "p" is forbidden: maximum memory usage per Pod is 1Gi, but limit is 1200Mi`,
		},
		{
			name: "claim over max",
			item: corev1.LimitRangeItem{Type: corev1.LimitTypePersistentVolumeClaim, Max: rl("storage", "5Gi")},
			req: &Request{Operation: Create, Namespace: "ns", Name: "data", Resource: gvr("", "persistentvolumeclaims"),
				Object: &corev1.PersistentVolumeClaim{ObjectMeta: metav1.ObjectMeta{Name: "data"},
					Spec: corev1.PersistentVolumeClaimSpec{Resources: corev1.VolumeResourceRequirements{Requests: rl("storage", "10Gi")}}}},
			wantErr: `403 persistentvolumeclaims "data" is forbidden: maximum storage usage per PersistentVolumeClaim is 5Gi, but request is 10Gi`,
		},
		{
			name: "claim under min",
			item: corev1.LimitRangeItem{Type: corev1.LimitTypePersistentVolumeClaim, Min: rl("storage", "1Gi")},
			req: &Request{Operation: Update, Namespace: "ns", Name: "data", Resource: gvr("", "persistentvolumeclaims"),
				Object: &corev1.PersistentVolumeClaim{ObjectMeta: metav1.ObjectMeta{Name: "data"},
					Spec: corev1.PersistentVolumeClaimSpec{Resources: corev1.VolumeResourceRequirements{Requests: rl("storage", "100Mi")}}}},
			wantErr: `403 persistentvolumeclaims "data" is forbidden: minimum storage usage per PersistentVolumeClaim is 1Gi, but request is 100Mi`,
		},
		{
			name: "pod updates are not checked",
			item: corev1.LimitRangeItem{Type: container, Max: rl("cpu", "1")},
			req: &Request{Operation: Update, Namespace: "ns", Name: "p", Resource: gvr("", "pods"),
				Object: testPod("p", withResources(rl("cpu", "2"), rl("cpu", "2")))},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			client := newClient(limitRange("lr", tt.item))
			err := NewLimitRanger(nil, client).Validate(context.Background(), tt.req)
			if diff := cmp.Diff(tt.wantErr, errText(t, err)); diff != "" {
				t.Errorf("error (-want +got):\n%s", diff)
			}
		})
	}
}

func TestLimitRangerNoRangesIsNoop(t *testing.T) {
	t.Parallel()
	pod := testPod("p")
	want := pod.DeepCopy()
	if err := NewChain(NewLimitRanger(nil, newClient())).Admit(context.Background(), podCreate("ns", pod)); err != nil {
		t.Fatal(err)
	}
	if diff := cmp.Diff(want, pod); diff != "" {
		t.Errorf("pod changed (-want +got):\n%s", diff)
	}
}

// TestLimitRangerLiveLookupReused checks that a namespace the cache has no
// LimitRanges for is listed live once per liveTTL, not on every admit and
// validate, and that a cached LimitRange is used without a live list.
func TestLimitRangerLiveLookupReused(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name      string
		cached    []*corev1.LimitRange // in the lister
		live      []runtime.Object     // behind the client
		wantLists int
		wantLimit bool // the pod gets the LimitRange's default memory limit
	}{
		{name: "no limit ranges anywhere", wantLists: 1},
		{name: "only live", live: []runtime.Object{defaultsRange()}, wantLists: 1, wantLimit: true},
		{name: "cached", cached: []*corev1.LimitRange{defaultsRange()}, wantLists: 0, wantLimit: true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			client := newClient(tt.live...)
			var lists atomic.Int32
			client.PrependReactor("list", "limitranges", func(clienttesting.Action) (bool, runtime.Object, error) {
				lists.Add(1)
				return false, nil, nil
			})
			idx := cache.NewIndexer(cache.MetaNamespaceKeyFunc, cache.Indexers{cache.NamespaceIndex: cache.MetaNamespaceIndexFunc})
			for _, lr := range tt.cached {
				if err := idx.Add(lr); err != nil {
					t.Fatal(err)
				}
			}
			lr := NewLimitRanger(idx, client)
			chain := NewChain(lr)
			for i := range 5 {
				pod := testPod(fmt.Sprintf("p%d", i))
				req := podCreate("ns", pod)
				if err := chain.Admit(context.Background(), req); err != nil {
					t.Fatal(err)
				}
				if err := chain.Validate(context.Background(), req); err != nil {
					t.Fatal(err)
				}
				_, got := pod.Spec.Containers[0].Resources.Limits[corev1.ResourceMemory]
				if got != tt.wantLimit {
					t.Errorf("pod %d: memory limit set %v, want %v", i, got, tt.wantLimit)
				}
			}
			if got := lists.Load(); got != int32(tt.wantLists) {
				t.Errorf("%d live lists, want %d", got, tt.wantLists)
			}
			// Once the lookup expires, the next admit lists again.
			if tt.wantLists > 0 {
				lr.mu.Lock()
				e := lr.live["ns"]
				e.expiry = time.Now().Add(-time.Second)
				lr.live["ns"] = e
				lr.mu.Unlock()
				if err := chain.Admit(context.Background(), podCreate("ns", testPod("late"))); err != nil {
					t.Fatal(err)
				}
				if got := lists.Load(); got != int32(tt.wantLists)+1 {
					t.Errorf("after expiry: %d live lists, want %d", got, tt.wantLists+1)
				}
			}
		})
	}
}

// defaultsRange is a LimitRange in "ns" giving containers a default
// memory limit.
func defaultsRange() *corev1.LimitRange {
	return limitRange("defaults", corev1.LimitRangeItem{Type: corev1.LimitTypeContainer, Default: rl("memory", "128Mi")})
}
