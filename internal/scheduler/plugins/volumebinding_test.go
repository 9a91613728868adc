package plugins

import (
	"context"
	"errors"
	"testing"

	v1 "k8s.io/api/core/v1"
	storagev1 "k8s.io/api/storage/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	corelisters "k8s.io/client-go/listers/core/v1"
	storagelisters "k8s.io/client-go/listers/storage/v1"
	"k8s.io/client-go/tools/cache"

	"github.com/skiff-dev/skiff/internal/scheduler/framework"
)

// volumeListers returns listers over the given objects.
func volumeListers(t *testing.T, objs ...any) VolumeListers {
	t.Helper()
	nsIdx := func() cache.Indexer {
		return cache.NewIndexer(cache.MetaNamespaceKeyFunc, cache.Indexers{cache.NamespaceIndex: cache.MetaNamespaceIndexFunc})
	}
	claims, volumes, classes := nsIdx(), nsIdx(), nsIdx()
	for _, o := range objs {
		var err error
		switch o.(type) {
		case *v1.PersistentVolumeClaim:
			err = claims.Add(o)
		case *v1.PersistentVolume:
			err = volumes.Add(o)
		case *storagev1.StorageClass:
			err = classes.Add(o)
		default:
			t.Fatalf("unexpected object %T", o)
		}
		if err != nil {
			t.Fatalf("adding %T: %v", o, err)
		}
	}
	return VolumeListers{
		Claims:  corelisters.NewPersistentVolumeClaimLister(claims),
		Volumes: corelisters.NewPersistentVolumeLister(volumes),
		Classes: storagelisters.NewStorageClassLister(classes),
	}
}

func claim(name, class, volume string, mut ...func(*v1.PersistentVolumeClaim)) *v1.PersistentVolumeClaim {
	c := &v1.PersistentVolumeClaim{
		ObjectMeta: metav1.ObjectMeta{Namespace: "ns", Name: name},
		Spec:       v1.PersistentVolumeClaimSpec{VolumeName: volume},
	}
	if class != "" {
		c.Spec.StorageClassName = &class
	}
	for _, m := range mut {
		m(c)
	}
	return c
}

// volume returns a PV that, with hosts, requires one of those hostnames.
func volume(name string, hosts ...string) *v1.PersistentVolume {
	pv := &v1.PersistentVolume{ObjectMeta: metav1.ObjectMeta{Name: name}}
	if len(hosts) > 0 {
		pv.Spec.NodeAffinity = &v1.VolumeNodeAffinity{Required: &v1.NodeSelector{NodeSelectorTerms: []v1.NodeSelectorTerm{{
			MatchExpressions: []v1.NodeSelectorRequirement{{Key: v1.LabelHostname, Operator: v1.NodeSelectorOpIn, Values: hosts}},
		}}}}
	}
	return pv
}

func class(name string, mode storagev1.VolumeBindingMode) *storagev1.StorageClass {
	return &storagev1.StorageClass{ObjectMeta: metav1.ObjectMeta{Name: name}, VolumeBindingMode: &mode}
}

func withClaims(names ...string) func(*v1.Pod) {
	return func(p *v1.Pod) {
		for _, n := range names {
			p.Spec.Volumes = append(p.Spec.Volumes, v1.Volume{Name: "v-" + n, VolumeSource: v1.VolumeSource{
				PersistentVolumeClaim: &v1.PersistentVolumeClaimVolumeSource{ClaimName: n},
			}})
		}
	}
}

func withEphemeral(vol string) func(*v1.Pod) {
	return func(p *v1.Pod) {
		p.Spec.Volumes = append(p.Spec.Volumes, v1.Volume{Name: vol, VolumeSource: v1.VolumeSource{
			Ephemeral: &v1.EphemeralVolumeSource{},
		}})
	}
}

func TestVolumeBinding(t *testing.T) {
	wffc := class("wffc", storagev1.VolumeBindingWaitForFirstConsumer)
	immediate := class("fast", storagev1.VolumeBindingImmediate)
	nodes := []*v1.Node{node("a", "4", nil), node("b", "4", nil)}
	deleting := func(c *v1.PersistentVolumeClaim) { c.DeletionTimestamp = &metav1.Time{} }
	owned := func(c *v1.PersistentVolumeClaim) {
		yes := true
		c.OwnerReferences = []metav1.OwnerReference{{APIVersion: "v1", Kind: "Pod", Name: "p", UID: "uid-ns-p", Controller: &yes}}
	}
	tests := []struct {
		name string
		pod  *v1.Pod
		objs []any
		want string // the chosen node or the fit error
	}{
		{"no claims", pod("ns", "p", "", "", nil), nil, "a|b"},
		{"claim missing", pod("ns", "p", "", "", nil, withClaims("data")), nil,
			`0/2 nodes are available: persistentvolumeclaim "data" not found.`},
		{"claim being deleted", pod("ns", "p", "", "", nil, withClaims("data")), []any{claim("data", "", "", deleting)},
			`0/2 nodes are available: persistentvolumeclaim "data" is being deleted.`},
		{"unbound, no class", pod("ns", "p", "", "", nil, withClaims("data")), []any{claim("data", "", "")},
			"0/2 nodes are available: pod has unbound immediate PersistentVolumeClaims."},
		{"unbound, class missing", pod("ns", "p", "", "", nil, withClaims("data")), []any{claim("data", "wffc", "")},
			"0/2 nodes are available: pod has unbound immediate PersistentVolumeClaims."},
		{"unbound Immediate", pod("ns", "p", "", "", nil, withClaims("data")), []any{claim("data", "fast", ""), immediate},
			"0/2 nodes are available: pod has unbound immediate PersistentVolumeClaims."},
		{"unbound beta class annotation", pod("ns", "p", "", "", nil, withClaims("data")), []any{wffc, claim("data", "", "", func(c *v1.PersistentVolumeClaim) {
			c.Annotations = map[string]string{v1.BetaStorageClassAnnotation: "wffc"}
		})}, "a|b"},
		{"unbound WaitForFirstConsumer", pod("ns", "p", "", "", nil, withClaims("data")), []any{claim("data", "wffc", ""), wffc}, "a|b"},
		{"bound, no affinity", pod("ns", "p", "", "", nil, withClaims("data")), []any{claim("data", "", "pv1"), volume("pv1")}, "a|b"},
		{"bound, affinity to b", pod("ns", "p", "", "", nil, withClaims("data")), []any{claim("data", "", "pv1"), volume("pv1", "b")}, "b"},
		{"bound, two volumes, conflicting", pod("ns", "p", "", "", nil, withClaims("d1", "d2")),
			[]any{claim("d1", "", "pv1"), volume("pv1", "a"), claim("d2", "", "pv2"), volume("pv2", "b")},
			"0/2 nodes are available: 2 node(s) had volume node affinity conflict."},
		{"bound, affinity to a missing node", pod("ns", "p", "", "", nil, withClaims("data")), []any{claim("data", "", "pv1"), volume("pv1", "c")},
			"0/2 nodes are available: 2 node(s) had volume node affinity conflict."},
		{"bound, volume missing", pod("ns", "p", "", "", nil, withClaims("data")), []any{claim("data", "", "pv1")},
			"0/2 nodes are available: 2 node(s) unavailable due to one or more pvc(s) bound to non-existent pv(s)."},
		{"one unbound immediate among bound", pod("ns", "p", "", "", nil, withClaims("d1", "d2")),
			[]any{claim("d1", "", "pv1"), volume("pv1", "a"), claim("d2", "fast", ""), immediate},
			"0/2 nodes are available: pod has unbound immediate PersistentVolumeClaims."},
		{"ephemeral claim missing", pod("ns", "p", "", "", nil, withEphemeral("scratch")), nil,
			`0/2 nodes are available: persistentvolumeclaim "p-scratch" not found.`},
		{"ephemeral claim of another pod", pod("ns", "p", "", "", nil, withEphemeral("scratch")), []any{claim("p-scratch", "", "pv1"), volume("pv1")},
			"0/2 nodes are available: PVC ns/p-scratch was not created for pod ns/p (pod is not owner)."},
		{"ephemeral claim bound to a", pod("ns", "p", "", "", nil, withEphemeral("scratch")), []any{claim("p-scratch", "", "pv1", owned), volume("pv1", "a")}, "a"},
		{"claim in another namespace", pod("other", "p", "", "", nil, withClaims("data")), []any{claim("data", "", "pv1"), volume("pv1")},
			`0/2 nodes are available: persistentvolumeclaim "data" not found.`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			ps, w := DefaultWith(volumeListers(t, tt.objs...))
			fw := framework.New(ps, w, framework.Options{Parallelism: 1})
			res, err := fw.Schedule(context.Background(), framework.NewPodInfo(tt.pod, 0), framework.NewSnapshot(nodes, nil))
			got := res.Node
			var fit *framework.FitError
			if errors.As(err, &fit) {
				got = fit.Error()
			} else if err != nil {
				t.Fatalf("Schedule: %v", err)
			}
			if tt.want == "a|b" {
				if got != "a" && got != "b" {
					t.Errorf("got %q, want a node", got)
				}
				return
			}
			if got != tt.want {
				t.Errorf("got %q, want %q", got, tt.want)
			}
		})
	}
}

// TestVolumeBindingStatuses checks the codes and the plugin named on
// rejections, which decide preemption and requeueing.
func TestVolumeBindingStatuses(t *testing.T) {
	vb := NewVolumeBinding(volumeListers(t, claim("unbound", "", ""), claim("bound", "", "pv1"), volume("pv1", "b")))
	ctx := context.Background()

	state := framework.NewCycleState()
	st := vb.PreFilter(ctx, state, framework.NewPodInfo(pod("ns", "p", "", "", nil, withClaims("unbound")), 0), nil)
	if st.Code() != framework.UnschedulableAndUnresolvable || st.Message() != ReasonUnboundImmediateClaims {
		t.Errorf("PreFilter unbound: %v %q", st.Code(), st.Message())
	}

	state = framework.NewCycleState()
	pi := framework.NewPodInfo(pod("ns", "p", "", "", nil, withClaims("bound")), 0)
	if st := vb.PreFilter(ctx, state, pi, nil); !st.IsSuccess() {
		t.Fatalf("PreFilter bound: %v %q", st.Code(), st.Message())
	}
	a, b := framework.NewNodeInfo(node("a", "4", nil)), framework.NewNodeInfo(node("b", "4", nil))
	if st := vb.Filter(ctx, state, pi, a); st.Code() != framework.UnschedulableAndUnresolvable || st.Message() != ReasonVolumeNodeConflict {
		t.Errorf("Filter a: %v %q", st.Code(), st.Message())
	}
	if st := vb.Filter(ctx, state, pi, b); !st.IsSuccess() {
		t.Errorf("Filter b: %v %q", st.Code(), st.Message())
	}

	// Without listers (Default) every pod is skipped.
	if st := (VolumeBinding{}).PreFilter(ctx, framework.NewCycleState(), pi, nil); !st.IsSkip() {
		t.Errorf("PreFilter without listers: %v", st.Code())
	}
}
