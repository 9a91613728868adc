package builtin

import (
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
	corev1 "k8s.io/api/core/v1"
	nodev1 "k8s.io/api/node/v1"
	storagev1 "k8s.io/api/storage/v1"
	"k8s.io/apimachinery/pkg/api/resource"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/utils/ptr"
)

func TestStorageNodeDiscovery(t *testing.T) {
	type disc struct {
		Kind       string
		Singular   string
		Short      []string
		Namespaced bool
		Status     bool
	}
	tests := []struct {
		group, resource string
		want            disc
	}{
		{"storage.k8s.io", "csidrivers", disc{"CSIDriver", "csidriver", nil, false, false}},
		{"storage.k8s.io", "csinodes", disc{"CSINode", "csinode", nil, false, false}},
		{"storage.k8s.io", "volumeattachments", disc{"VolumeAttachment", "volumeattachment", nil, false, true}},
		{"storage.k8s.io", "csistoragecapacities", disc{"CSIStorageCapacity", "csistoragecapacity", nil, true, false}},
		{"node.k8s.io", "runtimeclasses", disc{"RuntimeClass", "runtimeclass", nil, false, false}},
	}
	for _, tt := range tests {
		t.Run(tt.resource, func(t *testing.T) {
			r := groupResource(t, tt.group, tt.resource)
			got := disc{r.Kind, r.Singular, r.ShortNames, r.Namespaced, r.Status}
			if diff := cmp.Diff(tt.want, got); diff != "" {
				t.Errorf("(-want +got):\n%s", diff)
			}
			if r.ListKind != r.Kind+"List" || r.GVR.Version != "v1" {
				t.Errorf("list kind %q, version %q", r.ListKind, r.GVR.Version)
			}
		})
	}
}

func TestCSIDriverDefaults(t *testing.T) {
	r := groupResource(t, "storage.k8s.io", "csidrivers")
	d := &storagev1.CSIDriver{ObjectMeta: metav1.ObjectMeta{Name: "hostpath.csi.k8s.io"}}
	checkDefaultIdempotent(t, r, d)
	if errs := create(t, r, d); len(errs) != 0 {
		t.Fatalf("valid driver rejected: %v", errs)
	}
	want := storagev1.CSIDriverSpec{
		AttachRequired:       ptr.To(true),
		PodInfoOnMount:       ptr.To(false),
		VolumeLifecycleModes: []storagev1.VolumeLifecycleMode{storagev1.VolumeLifecyclePersistent},
		FSGroupPolicy:        ptr.To(storagev1.ReadWriteOnceWithFSTypeFSGroupPolicy),
		RequiresRepublish:    ptr.To(false),
		StorageCapacity:      ptr.To(false),
		SELinuxMount:         ptr.To(false),
	}
	if diff := cmp.Diff(want, d.Spec); diff != "" {
		t.Errorf("defaults (-want +got):\n%s", diff)
	}
	// Set values are kept.
	set := &storagev1.CSIDriver{
		ObjectMeta: metav1.ObjectMeta{Name: "x"},
		Spec: storagev1.CSIDriverSpec{
			AttachRequired:       ptr.To(false),
			FSGroupPolicy:        ptr.To(storagev1.FileFSGroupPolicy),
			VolumeLifecycleModes: []storagev1.VolumeLifecycleMode{storagev1.VolumeLifecycleEphemeral},
		},
	}
	r.Strategy.Default(set)
	if *set.Spec.AttachRequired || *set.Spec.FSGroupPolicy != storagev1.FileFSGroupPolicy || set.Spec.VolumeLifecycleModes[0] != storagev1.VolumeLifecycleEphemeral {
		t.Errorf("defaulting overwrote set values: %+v", set.Spec)
	}
}

func TestCSIDriverValidation(t *testing.T) {
	r := groupResource(t, "storage.k8s.io", "csidrivers")
	tests := []struct {
		name   string
		mutate func(d *storagev1.CSIDriver)
		want   []string
	}{
		{"valid", func(*storagev1.CSIDriver) {}, []string{}},
		{"bad fsGroupPolicy", func(d *storagev1.CSIDriver) { d.Spec.FSGroupPolicy = ptr.To(storagev1.FSGroupPolicy("Some")) },
			[]string{"FieldValueNotSupported spec.fsGroupPolicy"}},
		{"bad mode", func(d *storagev1.CSIDriver) {
			d.Spec.VolumeLifecycleModes = []storagev1.VolumeLifecycleMode{"Persistent", "Never"}
		}, []string{"FieldValueNotSupported spec.volumeLifecycleModes[1]"}},
		{"token requests", func(d *storagev1.CSIDriver) {
			d.Spec.TokenRequests = []storagev1.TokenRequest{
				{Audience: "a"}, {Audience: "a", ExpirationSeconds: ptr.To[int64](60)},
				{Audience: "b", ExpirationSeconds: ptr.To(int64(1) << 33)},
			}
		}, []string{"FieldValueDuplicate spec.tokenRequests[1].audience", "FieldValueInvalid spec.tokenRequests[1].expirationSeconds",
			"FieldValueInvalid spec.tokenRequests[2].expirationSeconds"}},
		{"token in secrets without requests", func(d *storagev1.CSIDriver) { d.Spec.ServiceAccountTokenInSecrets = ptr.To(true) },
			[]string{"FieldValueInvalid spec.serviceAccountTokenInSecrets"}},
		{"allocatable period", func(d *storagev1.CSIDriver) { d.Spec.NodeAllocatableUpdatePeriodSeconds = ptr.To[int64](5) },
			[]string{"FieldValueInvalid spec.nodeAllocatableUpdatePeriodSeconds"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			d := &storagev1.CSIDriver{ObjectMeta: metav1.ObjectMeta{Name: "d.example.com"}}
			tt.mutate(d)
			if diff := cmp.Diff(tt.want, errStrings(create(t, r, d))); diff != "" {
				t.Errorf("(-want +got):\n%s", diff)
			}
		})
	}
	if msgs := r.Strategy.ValidateName(strings.Repeat("a", 64), false); len(msgs) == 0 {
		t.Errorf("a 64-character driver name was accepted")
	}
	if msgs := r.Strategy.ValidateName("Bad_Name", false); len(msgs) == 0 {
		t.Errorf("Bad_Name was accepted")
	}
}

func TestCSIDriverUpdate(t *testing.T) {
	r := groupResource(t, "storage.k8s.io", "csidrivers")
	old := &storagev1.CSIDriver{ObjectMeta: metav1.ObjectMeta{Name: "d"}}
	r.Strategy.Default(old)
	tests := []struct {
		name   string
		mutate func(d *storagev1.CSIDriver)
		want   []string
	}{
		{"podInfoOnMount is mutable", func(d *storagev1.CSIDriver) { d.Spec.PodInfoOnMount = ptr.To(true) }, []string{}},
		{"requiresRepublish, storageCapacity, seLinuxMount, tokenRequests are mutable", func(d *storagev1.CSIDriver) {
			d.Spec.RequiresRepublish = ptr.To(true)
			d.Spec.StorageCapacity = ptr.To(true)
			d.Spec.SELinuxMount = ptr.To(true)
			d.Spec.TokenRequests = []storagev1.TokenRequest{{Audience: "x"}}
		}, []string{}},
		{"attachRequired", func(d *storagev1.CSIDriver) { d.Spec.AttachRequired = ptr.To(false) }, []string{"FieldValueInvalid spec.attachRequired"}},
		{"fsGroupPolicy", func(d *storagev1.CSIDriver) { d.Spec.FSGroupPolicy = ptr.To(storagev1.NoneFSGroupPolicy) }, []string{"FieldValueInvalid spec.fsGroupPolicy"}},
		{"volumeLifecycleModes", func(d *storagev1.CSIDriver) {
			d.Spec.VolumeLifecycleModes = []storagev1.VolumeLifecycleMode{storagev1.VolumeLifecycleEphemeral}
		}, []string{"FieldValueInvalid spec.volumeLifecycleModes"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			d := old.DeepCopy()
			tt.mutate(d)
			if diff := cmp.Diff(tt.want, errStrings(update(t, r, d, old))); diff != "" {
				t.Errorf("(-want +got):\n%s", diff)
			}
		})
	}
}

func TestCSINodeValidation(t *testing.T) {
	r := groupResource(t, "storage.k8s.io", "csinodes")
	valid := func() *storagev1.CSINode {
		return &storagev1.CSINode{
			ObjectMeta: metav1.ObjectMeta{Name: "node-1"},
			Spec: storagev1.CSINodeSpec{Drivers: []storagev1.CSINodeDriver{
				{Name: "a.example.com", NodeID: "node-1", TopologyKeys: []string{"topology.kubernetes.io/zone"}},
				{Name: "b.example.com", NodeID: "n1", Allocatable: &storagev1.VolumeNodeResources{Count: ptr.To[int32](10)}},
			}},
		}
	}
	tests := []struct {
		name   string
		mutate func(n *storagev1.CSINode)
		want   []string
	}{
		{"valid", func(*storagev1.CSINode) {}, []string{}},
		{"duplicate driver", func(n *storagev1.CSINode) { n.Spec.Drivers[1].Name = "a.example.com" },
			[]string{"FieldValueDuplicate spec.drivers[1].name"}},
		{"missing nodeID", func(n *storagev1.CSINode) { n.Spec.Drivers[0].NodeID = "" }, []string{"FieldValueRequired spec.drivers[0].nodeID"}},
		{"long nodeID", func(n *storagev1.CSINode) { n.Spec.Drivers[0].NodeID = strings.Repeat("x", 257) },
			[]string{"FieldValueInvalid spec.drivers[0].nodeID"}},
		{"bad driver name", func(n *storagev1.CSINode) { n.Spec.Drivers[0].Name = "" }, []string{"FieldValueRequired spec.drivers[0].name"}},
		{"bad topology key", func(n *storagev1.CSINode) { n.Spec.Drivers[0].TopologyKeys = []string{"a", "a", "-x"} },
			[]string{"FieldValueDuplicate spec.drivers[0].topologyKeys[1]", "FieldValueInvalid spec.drivers[0].topologyKeys[2]"}},
		{"negative count", func(n *storagev1.CSINode) { n.Spec.Drivers[1].Allocatable.Count = ptr.To[int32](-1) },
			[]string{"FieldValueInvalid spec.drivers[1].allocatable.count"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			n := valid()
			tt.mutate(n)
			if diff := cmp.Diff(tt.want, errStrings(create(t, r, n))); diff != "" {
				t.Errorf("(-want +got):\n%s", diff)
			}
		})
	}

	old := valid()
	changed := old.DeepCopy()
	changed.Spec.Drivers[0].NodeID = "other"
	changed.Spec.Drivers[0].TopologyKeys = nil
	changed.Spec.Drivers = append(changed.Spec.Drivers[:1], storagev1.CSINodeDriver{Name: "c.example.com", NodeID: "n"})
	want := []string{"FieldValueInvalid spec.drivers[0].nodeID", "FieldValueInvalid spec.drivers[0].topologyKeys"}
	if diff := cmp.Diff(want, errStrings(update(t, r, changed, old))); diff != "" {
		t.Errorf("update (-want +got):\n%s", diff)
	}
	if got := r.Strategy.Table().Row(old); got[1] != int64(2) {
		t.Errorf("DRIVERS cell = %v, want 2", got[1])
	}
}

func TestVolumeAttachmentValidation(t *testing.T) {
	r := groupResource(t, "storage.k8s.io", "volumeattachments")
	valid := func() *storagev1.VolumeAttachment {
		return &storagev1.VolumeAttachment{
			ObjectMeta: metav1.ObjectMeta{Name: "va"},
			Spec: storagev1.VolumeAttachmentSpec{
				Attacher: "csi.example.com", NodeName: "node-1",
				Source: storagev1.VolumeAttachmentSource{PersistentVolumeName: ptr.To("pv-1")},
			},
		}
	}
	inline := &corev1.PersistentVolumeSpec{PersistentVolumeSource: corev1.PersistentVolumeSource{
		CSI: &corev1.CSIPersistentVolumeSource{Driver: "csi.example.com", VolumeHandle: "h"},
	}}
	tests := []struct {
		name   string
		mutate func(va *storagev1.VolumeAttachment)
		want   []string
	}{
		{"valid", func(*storagev1.VolumeAttachment) {}, []string{}},
		{"valid inline", func(va *storagev1.VolumeAttachment) {
			va.Spec.Source = storagev1.VolumeAttachmentSource{InlineVolumeSpec: inline}
		}, []string{}},
		{"required", func(va *storagev1.VolumeAttachment) { va.Spec.Attacher, va.Spec.NodeName = "", "" },
			[]string{"FieldValueRequired spec.attacher", "FieldValueRequired spec.nodeName"}},
		{"no source", func(va *storagev1.VolumeAttachment) { va.Spec.Source = storagev1.VolumeAttachmentSource{} },
			[]string{"FieldValueInvalid spec.source"}},
		{"two sources", func(va *storagev1.VolumeAttachment) { va.Spec.Source.InlineVolumeSpec = inline },
			[]string{"FieldValueInvalid spec.source"}},
		{"empty pv name", func(va *storagev1.VolumeAttachment) { va.Spec.Source.PersistentVolumeName = ptr.To("") },
			[]string{"FieldValueRequired spec.source.persistentVolumeName"}},
		{"inline without csi", func(va *storagev1.VolumeAttachment) {
			va.Spec.Source = storagev1.VolumeAttachmentSource{InlineVolumeSpec: &corev1.PersistentVolumeSpec{}}
		}, []string{"FieldValueRequired spec.source.inlineVolumeSpec.csi"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			va := valid()
			tt.mutate(va)
			if diff := cmp.Diff(tt.want, errStrings(create(t, r, va))); diff != "" {
				t.Errorf("(-want +got):\n%s", diff)
			}
		})
	}

	// Create clears status; the spec is immutable; status has its limits.
	va := valid()
	va.Status.Attached = true
	create(t, r, va)
	if va.Status.Attached {
		t.Errorf("create kept status.attached")
	}
	changed := va.DeepCopy()
	changed.Spec.NodeName = "node-2"
	if diff := cmp.Diff([]string{"FieldValueInvalid spec"}, errStrings(update(t, r, changed, va))); diff != "" {
		t.Errorf("update (-want +got):\n%s", diff)
	}
	st := va.DeepCopy()
	st.Status.AttachError = &storagev1.VolumeError{Message: strings.Repeat("m", 1025)}
	if diff := cmp.Diff([]string{"FieldValueTooLong status.attachError.message"}, errStrings(r.Strategy.ValidateStatusUpdate(t.Context(), st, va))); diff != "" {
		t.Errorf("status (-want +got):\n%s", diff)
	}
	st.Status = storagev1.VolumeAttachmentStatus{Attached: true}
	row := r.Strategy.Table().Row(st)
	if diff := cmp.Diff([]any{"va", "csi.example.com", "pv-1", "node-1", true}, row[:5]); diff != "" {
		t.Errorf("row (-want +got):\n%s", diff)
	}
}

func TestCSIStorageCapacityValidation(t *testing.T) {
	r := groupResource(t, "storage.k8s.io", "csistoragecapacities")
	valid := func() *storagev1.CSIStorageCapacity {
		return &storagev1.CSIStorageCapacity{
			ObjectMeta:       metav1.ObjectMeta{Name: "cap", Namespace: "default"},
			StorageClassName: "fast",
			NodeTopology:     &metav1.LabelSelector{MatchLabels: map[string]string{"topology.kubernetes.io/zone": "a"}},
			Capacity:         ptr.To(resource.MustParse("10Gi")),
		}
	}
	tests := []struct {
		name   string
		mutate func(c *storagev1.CSIStorageCapacity)
		want   []string
	}{
		{"valid", func(*storagev1.CSIStorageCapacity) {}, []string{}},
		{"no class", func(c *storagev1.CSIStorageCapacity) { c.StorageClassName = "" }, []string{"FieldValueRequired storageClassName"}},
		{"bad class", func(c *storagev1.CSIStorageCapacity) { c.StorageClassName = "Fast_" }, []string{"FieldValueInvalid storageClassName"}},
		{"negative", func(c *storagev1.CSIStorageCapacity) {
			c.Capacity = ptr.To(resource.MustParse("-1"))
			c.MaximumVolumeSize = ptr.To(resource.MustParse("-1"))
		}, []string{"FieldValueInvalid capacity", "FieldValueInvalid maximumVolumeSize"}},
		{"bad topology", func(c *storagev1.CSIStorageCapacity) {
			c.NodeTopology = &metav1.LabelSelector{MatchLabels: map[string]string{"-bad": "a"}}
		}, []string{"FieldValueInvalid nodeTopology.matchLabels"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c := valid()
			tt.mutate(c)
			if diff := cmp.Diff(tt.want, errStrings(create(t, r, c))); diff != "" {
				t.Errorf("(-want +got):\n%s", diff)
			}
		})
	}
	old := valid()
	changed := old.DeepCopy()
	changed.Capacity = ptr.To(resource.MustParse("1Gi"))
	if errs := update(t, r, changed, old); len(errs) != 0 {
		t.Errorf("capacity change rejected: %v", errs)
	}
	changed.StorageClassName = "slow"
	changed.NodeTopology = nil
	want := []string{"FieldValueInvalid nodeTopology", "FieldValueInvalid storageClassName"}
	if diff := cmp.Diff(want, errStrings(update(t, r, changed, old))); diff != "" {
		t.Errorf("update (-want +got):\n%s", diff)
	}
	if diff := cmp.Diff([]any{"cap", "fast", "10Gi"}, r.Strategy.Table().Row(old)[:3]); diff != "" {
		t.Errorf("row (-want +got):\n%s", diff)
	}
}

func TestRuntimeClassValidation(t *testing.T) {
	r := groupResource(t, "node.k8s.io", "runtimeclasses")
	valid := func() *nodev1.RuntimeClass {
		return &nodev1.RuntimeClass{
			ObjectMeta: metav1.ObjectMeta{Name: "gvisor"},
			Handler:    "runsc",
			Overhead:   &nodev1.Overhead{PodFixed: corev1.ResourceList{corev1.ResourceCPU: resource.MustParse("100m")}},
			Scheduling: &nodev1.Scheduling{
				NodeSelector: map[string]string{"runtime": "gvisor"},
				Tolerations:  []corev1.Toleration{{Key: "runtime", Operator: corev1.TolerationOpEqual, Value: "gvisor", Effect: corev1.TaintEffectNoSchedule}},
			},
		}
	}
	tests := []struct {
		name   string
		mutate func(rc *nodev1.RuntimeClass)
		want   []string
	}{
		{"valid", func(*nodev1.RuntimeClass) {}, []string{}},
		{"no handler", func(rc *nodev1.RuntimeClass) { rc.Handler = "" }, []string{"FieldValueRequired handler"}},
		{"handler not a label", func(rc *nodev1.RuntimeClass) { rc.Handler = "run.sc" }, []string{"FieldValueInvalid handler"}},
		{"negative overhead", func(rc *nodev1.RuntimeClass) {
			rc.Overhead.PodFixed[corev1.ResourceMemory] = resource.MustParse("-1")
		}, []string{"FieldValueInvalid overhead.limits[memory]"}},
		{"bad node selector", func(rc *nodev1.RuntimeClass) { rc.Scheduling.NodeSelector = map[string]string{"a": "-"} },
			[]string{"FieldValueInvalid scheduling.nodeSelector"}},
		{"bad toleration", func(rc *nodev1.RuntimeClass) {
			rc.Scheduling.Tolerations = append(rc.Scheduling.Tolerations, rc.Scheduling.Tolerations[0],
				corev1.Toleration{Operator: corev1.TolerationOpEqual, Value: "x"})
		}, []string{"FieldValueDuplicate scheduling.tolerations[1]", "FieldValueInvalid scheduling.tolerations[2].operator"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			rc := valid()
			tt.mutate(rc)
			if diff := cmp.Diff(tt.want, errStrings(create(t, r, rc))); diff != "" {
				t.Errorf("(-want +got):\n%s", diff)
			}
		})
	}
	old := valid()
	changed := old.DeepCopy()
	changed.Handler = "kata"
	changed.Scheduling = nil
	if diff := cmp.Diff([]string{"FieldValueInvalid handler"}, errStrings(update(t, r, changed, old))); diff != "" {
		t.Errorf("update (-want +got):\n%s", diff)
	}
	if diff := cmp.Diff([]any{"gvisor", "runsc"}, r.Strategy.Table().Row(old)[:2]); diff != "" {
		t.Errorf("row (-want +got):\n%s", diff)
	}
}

// TestStorageNodeTables checks the column names against upstream's printers.
func TestStorageNodeTables(t *testing.T) {
	tests := []struct {
		group, resource string
		want            []string
	}{
		{"storage.k8s.io", "csidrivers", []string{"Name", "AttachRequired", "PodInfoOnMount", "StorageCapacity", "TokenRequests", "RequiresRepublish", "Modes", "Age"}},
		{"storage.k8s.io", "csinodes", []string{"Name", "Drivers", "Age"}},
		{"storage.k8s.io", "volumeattachments", []string{"Name", "Attacher", "PV", "Node", "Attached", "Age"}},
		{"storage.k8s.io", "csistoragecapacities", []string{"Name", "StorageClassName", "Capacity", "Age"}},
		{"node.k8s.io", "runtimeclasses", []string{"Name", "Handler", "Age"}},
	}
	for _, tt := range tests {
		t.Run(tt.resource, func(t *testing.T) {
			r := groupResource(t, tt.group, tt.resource)
			var got []string
			for _, c := range r.Strategy.Table().Columns {
				got = append(got, c.Name)
			}
			if diff := cmp.Diff(tt.want, got); diff != "" {
				t.Errorf("(-want +got):\n%s", diff)
			}
		})
	}
	d := &storagev1.CSIDriver{ObjectMeta: metav1.ObjectMeta{Name: "d"}}
	var obj runtime.Object = d
	r := groupResource(t, "storage.k8s.io", "csidrivers")
	r.Strategy.Default(obj)
	d.Spec.TokenRequests = []storagev1.TokenRequest{{Audience: "a"}, {Audience: "b"}}
	if diff := cmp.Diff([]any{"d", true, false, false, "a,b", false, "Persistent"}, r.Strategy.Table().Row(d)[:7]); diff != "" {
		t.Errorf("csidriver row (-want +got):\n%s", diff)
	}
}
