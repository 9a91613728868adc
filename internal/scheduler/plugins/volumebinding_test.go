package plugins

import (
	"context"
	"errors"
	"slices"
	"testing"

	v1 "k8s.io/api/core/v1"
	storagev1 "k8s.io/api/storage/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	corelisters "k8s.io/client-go/listers/core/v1"
	storagelisters "k8s.io/client-go/listers/storage/v1"
	"k8s.io/client-go/tools/cache"
	storagehelpers "k8s.io/component-helpers/storage/volume"

	"github.com/skiff-dev/skiff/internal/controller/persistentvolume"
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

// class returns a class provisioned by skiff's local-path provisioner.
func class(name string, mode storagev1.VolumeBindingMode, mut ...func(*storagev1.StorageClass)) *storagev1.StorageClass {
	sc := &storagev1.StorageClass{ObjectMeta: metav1.ObjectMeta{Name: name}, Provisioner: persistentvolume.Provisioner, VolumeBindingMode: &mode}
	for _, m := range mut {
		m(sc)
	}
	return sc
}

func provisioner(p string) func(*storagev1.StorageClass) {
	return func(sc *storagev1.StorageClass) { sc.Provisioner = p }
}

// allowed restricts a class to nodes with label key in values.
func allowed(key string, values ...string) func(*storagev1.StorageClass) {
	return func(sc *storagev1.StorageClass) {
		sc.AllowedTopologies = append(sc.AllowedTopologies, v1.TopologySelectorTerm{
			MatchLabelExpressions: []v1.TopologySelectorLabelRequirement{{Key: key, Values: values}},
		})
	}
}

// staticPV returns an Available volume of class, requiring one of hosts
// if any.
func staticPV(name, class string, hosts ...string) *v1.PersistentVolume {
	pv := volume(name, hosts...)
	pv.Spec.StorageClassName = class
	pv.Status.Phase = v1.VolumeAvailable
	return pv
}

func withClaimRef(ns, name, uid string) func(*v1.PersistentVolume) {
	return func(pv *v1.PersistentVolume) {
		pv.Spec.ClaimRef = &v1.ObjectReference{Namespace: ns, Name: name, UID: types.UID(uid)}
	}
}

func with(pv *v1.PersistentVolume, mut ...func(*v1.PersistentVolume)) *v1.PersistentVolume {
	for _, m := range mut {
		m(pv)
	}
	return pv
}

func selectedNode(n string) func(*v1.PersistentVolumeClaim) {
	return func(c *v1.PersistentVolumeClaim) {
		c.Annotations = map[string]string{storagehelpers.AnnSelectedNode: n}
	}
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
	local := class("local", storagev1.VolumeBindingWaitForFirstConsumer, provisioner(storagehelpers.NotSupportedProvisioner))
	ext := class("ext", storagev1.VolumeBindingWaitForFirstConsumer, provisioner("example.com/csi"))
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
		// WaitForFirstConsumer: the node is chosen first.
		{"WFFC local-path: every node", pod("ns", "p", "", "", nil, withClaims("data")), []any{claim("data", "wffc", ""), wffc}, "a|b"},
		{"WFFC local-path: allowedTopologies exclude a", pod("ns", "p", "", "", nil, withClaims("data")),
			[]any{claim("data", "topo", ""), class("topo", storagev1.VolumeBindingWaitForFirstConsumer, allowed(v1.LabelHostname, "b", "c"))}, "b"},
		{"WFFC local-path: allowedTopologies exclude all", pod("ns", "p", "", "", nil, withClaims("data")),
			[]any{claim("data", "topo", ""), class("topo", storagev1.VolumeBindingWaitForFirstConsumer, allowed("zone", "z1"))},
			"0/2 nodes are available: 2 node(s) didn't find available persistent volumes to bind."},
		{"WFFC static volume on b", pod("ns", "p", "", "", nil, withClaims("data")),
			[]any{claim("data", "local", ""), local, staticPV("pv-b", "local", "b")}, "b"},
		{"WFFC static volume not Available", pod("ns", "p", "", "", nil, withClaims("data")),
			[]any{claim("data", "local", ""), local, with(staticPV("pv-b", "local", "b"), func(pv *v1.PersistentVolume) { pv.Status.Phase = v1.VolumePending })},
			"0/2 nodes are available: 2 node(s) didn't find available persistent volumes to bind."},
		{"WFFC static volume of another class", pod("ns", "p", "", "", nil, withClaims("data")),
			[]any{claim("data", "local", ""), local, staticPV("pv-b", "other", "b")},
			"0/2 nodes are available: 2 node(s) didn't find available persistent volumes to bind."},
		{"WFFC no-provisioner, no volume", pod("ns", "p", "", "", nil, withClaims("data")), []any{claim("data", "local", ""), local},
			"0/2 nodes are available: 2 node(s) didn't find available persistent volumes to bind."},
		{"WFFC two claims, one volume", pod("ns", "p", "", "", nil, withClaims("d1", "d2")),
			[]any{claim("d1", "local", ""), claim("d2", "local", ""), local, staticPV("pv-b", "local", "b")},
			"0/2 nodes are available: 2 node(s) didn't find available persistent volumes to bind."},
		{"WFFC two claims, two volumes on b", pod("ns", "p", "", "", nil, withClaims("d1", "d2")),
			[]any{claim("d1", "local", ""), claim("d2", "local", ""), local, staticPV("pv-b1", "local", "b"), staticPV("pv-b2", "local", "b")}, "b"},
		{"WFFC external provisioner, no volume", pod("ns", "p", "", "", nil, withClaims("data")), []any{claim("data", "ext", ""), ext}, "a|b"},
		{"WFFC external provisioner, volume on a", pod("ns", "p", "", "", nil, withClaims("data")),
			[]any{claim("data", "ext", ""), ext, staticPV("pv-a", "ext", "a")}, "a|b"},
		{"WFFC pre-bound volume on a", pod("ns", "p", "", "", nil, withClaims("data")),
			[]any{claim("data", "wffc", ""), wffc, with(staticPV("pv-a", "wffc", "a"), withClaimRef("ns", "data", ""))}, "a"},
		{"WFFC selected node b", pod("ns", "p", "", "", nil, withClaims("data")), []any{claim("data", "wffc", "", selectedNode("b")), wffc}, "b"},
		{"WFFC ephemeral claim", pod("ns", "p", "", "", nil, withEphemeral("scratch")), []any{claim("p-scratch", "wffc", "", owned), wffc}, "a|b"},
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

// TestVolumeBindingBindings checks the writes chosen for the delayed
// claims once the node is known.
func TestVolumeBindingBindings(t *testing.T) {
	wffc := class("wffc", storagev1.VolumeBindingWaitForFirstConsumer)
	local := class("local", storagev1.VolumeBindingWaitForFirstConsumer, provisioner(storagehelpers.NotSupportedProvisioner))
	p := pod("ns", "p", "", "", nil, withClaims("dyn", "static"))
	tests := []struct {
		name    string
		objs    []any
		node    string
		want    []string // claim=volume, or claim=provision
		wantErr bool
	}{
		{"provision and static", []any{wffc, local, claim("dyn", "wffc", ""), claim("static", "local", ""),
			staticPV("b2", "local", "b"), staticPV("b1", "local", "b"), staticPV("on-a", "local", "a")},
			"b", []string{"dyn=provision", "static=b1"}, false},
		{"bound claims need nothing", []any{claim("dyn", "", "pv1"), claim("static", "", "pv2"), volume("pv1"), volume("pv2")}, "a", nil, false},
		{"claim bound elsewhere meanwhile", []any{claim("dyn", "", "pv1"), claim("static", "", "pv2"), volume("pv1", "b"), volume("pv2")}, "a", nil, true},
		{"volume taken meanwhile", []any{wffc, local, claim("dyn", "wffc", ""), claim("static", "local", ""),
			with(staticPV("on-a", "local", "a"), withClaimRef("ns", "other", "x"))}, "a", nil, true},
	}
	nodes := map[string]*v1.Node{"a": node("a", "4", nil), "b": node("b", "4", nil)}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			bs, err := NewVolumeBinding(volumeListers(t, tt.objs...)).Bindings(p, nodes[tt.node])
			if (err != nil) != tt.wantErr {
				t.Fatalf("Bindings error = %v, want error %v", err, tt.wantErr)
			}
			var got []string
			for _, b := range bs {
				to := "provision"
				if b.Volume != nil {
					to = b.Volume.Name
				}
				got = append(got, b.Claim.Name+"="+to)
			}
			if !slices.Equal(got, tt.want) {
				t.Errorf("Bindings = %q, want %q", got, tt.want)
			}
		})
	}
}
