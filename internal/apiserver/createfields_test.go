package apiserver

import (
	"fmt"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/meta"
	"k8s.io/apimachinery/pkg/api/resource"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/apimachinery/pkg/util/intstr"

	"github.com/skiff-dev/skiff/internal/registry"
)

// createFieldsCases are objects of many shapes, each as a create request
// would carry it (namespace set, no managedFields).
func createFieldsCases() map[string]runtime.Object {
	pod := func(mut func(*corev1.Pod)) *corev1.Pod {
		p := benchCreatePod("web-1")
		p.Namespace = "ns"
		mut(p)
		return p
	}
	return map[string]runtime.Object{
		"pod":                pod(func(*corev1.Pod) {}),
		"pod no kind":        pod(func(p *corev1.Pod) { p.TypeMeta = metav1.TypeMeta{} }),
		"pod generateName":   pod(func(p *corev1.Pod) { p.Name, p.GenerateName = "", "web-" }),
		"pod extra label":    pod(func(p *corev1.Pod) { p.Labels["extra"] = "x" }),
		"pod label value":    pod(func(p *corev1.Pod) { p.Labels["app"] = "other" }),
		"pod no labels":      pod(func(p *corev1.Pod) { p.Labels = nil }),
		"pod empty labels":   pod(func(p *corev1.Pod) { p.Labels = map[string]string{} }),
		"pod annotations":    pod(func(p *corev1.Pod) { p.Annotations = map[string]string{"a": "b"} }),
		"pod container name": pod(func(p *corev1.Pod) { p.Spec.Containers[0].Name = "main" }),
		"pod udp port": pod(func(p *corev1.Pod) {
			p.Spec.Containers[0].Ports[0].Protocol = corev1.ProtocolUDP
		}),
		"pod tcp port": pod(func(p *corev1.Pod) {
			p.Spec.Containers[0].Ports[0].Protocol = corev1.ProtocolTCP
		}),
		"pod port number": pod(func(p *corev1.Pod) { p.Spec.Containers[0].Ports[0].ContainerPort = 9090 }),
		"pod two containers": pod(func(p *corev1.Pod) {
			c := p.Spec.Containers[0]
			c.Name = "sidecar"
			c.Ports = nil
			p.Spec.Containers = append(p.Spec.Containers, c)
		}),
		"pod duplicate containers": pod(func(p *corev1.Pod) {
			p.Spec.Containers = append(p.Spec.Containers, p.Spec.Containers[0])
		}),
		"pod empty containers": pod(func(p *corev1.Pod) { p.Spec.Containers = []corev1.Container{} }),
		"pod nil containers":   pod(func(p *corev1.Pod) { p.Spec.Containers = nil }),
		"pod empty env":        pod(func(p *corev1.Pod) { p.Spec.Containers[0].Env = []corev1.EnvVar{} }),
		"pod env from": pod(func(p *corev1.Pod) {
			p.Spec.Containers[0].Env = append(p.Spec.Containers[0].Env, corev1.EnvVar{Name: "POD", ValueFrom: &corev1.EnvVarSource{
				FieldRef: &corev1.ObjectFieldSelector{FieldPath: "metadata.name"}}})
		}),
		"pod command": pod(func(p *corev1.Pod) { p.Spec.Containers[0].Command = []string{"sh", "-c", "true"} }),
		"pod limits": pod(func(p *corev1.Pod) {
			p.Spec.Containers[0].Resources.Limits = corev1.ResourceList{corev1.ResourceCPU: resource.MustParse("1")}
		}),
		"pod empty resources": pod(func(p *corev1.Pod) { p.Spec.Containers[0].Resources = corev1.ResourceRequirements{} }),
		"pod volumes": pod(func(p *corev1.Pod) {
			p.Spec.Volumes = []corev1.Volume{{Name: "data", VolumeSource: corev1.VolumeSource{EmptyDir: &corev1.EmptyDirVolumeSource{}}},
				{Name: "cfg", VolumeSource: corev1.VolumeSource{ConfigMap: &corev1.ConfigMapVolumeSource{LocalObjectReference: corev1.LocalObjectReference{Name: "c"}}}}}
			p.Spec.Containers[0].VolumeMounts = []corev1.VolumeMount{{Name: "data", MountPath: "/data"}}
		}),
		"pod tolerations": pod(func(p *corev1.Pod) {
			p.Spec.Tolerations = []corev1.Toleration{{Key: "k", Operator: corev1.TolerationOpExists, Effect: corev1.TaintEffectNoSchedule}}
			p.Spec.NodeSelector = map[string]string{"disk": "ssd"}
		}),
		"pod affinity": pod(func(p *corev1.Pod) {
			p.Spec.Affinity = &corev1.Affinity{NodeAffinity: &corev1.NodeAffinity{RequiredDuringSchedulingIgnoredDuringExecution: &corev1.NodeSelector{
				NodeSelectorTerms: []corev1.NodeSelectorTerm{{MatchExpressions: []corev1.NodeSelectorRequirement{{Key: "zone", Operator: corev1.NodeSelectorOpIn, Values: []string{"a", "b"}}}}}}}}
		}),
		"pod owner": pod(func(p *corev1.Pod) {
			t := true
			p.OwnerReferences = []metav1.OwnerReference{{APIVersion: "apps/v1", Kind: "ReplicaSet", Name: "web", UID: "u-1", Controller: &t}}
			p.Finalizers = []string{"example.com/f"}
		}),
		"pod owner uid": pod(func(p *corev1.Pod) {
			p.OwnerReferences = []metav1.OwnerReference{{APIVersion: "apps/v1", Kind: "ReplicaSet", Name: "web", UID: "u-2"}}
		}),
		"pod status": pod(func(p *corev1.Pod) { p.Status.Phase = corev1.PodRunning }),
		"pod uid":    pod(func(p *corev1.Pod) { p.UID = "abc" }),
		"pod creationTimestamp": pod(func(p *corev1.Pod) {
			p.CreationTimestamp = metav1.Unix(1000, 0)
		}),
		"pod zero grace": pod(func(p *corev1.Pod) {
			var z int64
			p.Spec.TerminationGracePeriodSeconds = &z
		}),
		"configmap":        &corev1.ConfigMap{ObjectMeta: metav1.ObjectMeta{Name: "c", Namespace: "ns"}, Data: map[string]string{"a": "1", "b": "2"}},
		"configmap binary": &corev1.ConfigMap{ObjectMeta: metav1.ObjectMeta{Name: "c", Namespace: "ns"}, BinaryData: map[string][]byte{"a": {0xff, 0}}},
		"configmap empty":  &corev1.ConfigMap{ObjectMeta: metav1.ObjectMeta{Name: "c", Namespace: "ns"}},
		"service": &corev1.Service{ObjectMeta: metav1.ObjectMeta{Name: "s", Namespace: "ns"}, Spec: corev1.ServiceSpec{
			Selector: map[string]string{"app": "web"},
			Ports:    []corev1.ServicePort{{Name: "http", Port: 80, TargetPort: intstr.FromString("http")}, {Name: "dns", Port: 53, Protocol: corev1.ProtocolUDP, TargetPort: intstr.FromInt32(53)}},
		}},
		"deployment": &appsv1.Deployment{ObjectMeta: metav1.ObjectMeta{Name: "d", Namespace: "ns", Labels: map[string]string{"app": "web"}}, Spec: appsv1.DeploymentSpec{
			Selector: &metav1.LabelSelector{MatchLabels: map[string]string{"app": "web"}},
			Template: corev1.PodTemplateSpec{ObjectMeta: metav1.ObjectMeta{Labels: map[string]string{"app": "web"}}, Spec: benchCreatePod("x").Spec},
		}},
		"namespace":              &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: "n"}},
		"configmap empty value":  &corev1.ConfigMap{ObjectMeta: metav1.ObjectMeta{Name: "c", Namespace: "ns"}, Data: map[string]string{"a": "", "b": "2"}},
		"configmap quoted value": &corev1.ConfigMap{ObjectMeta: metav1.ObjectMeta{Name: "c", Namespace: "ns"}, Data: map[string]string{"a": `x"],"b":[`, "b\"": "2"}},
		"event":                  event(1, "Successfully assigned ns/web-1 to node-1", 10),
		"event other values":     event(2, "Successfully assigned ns/web-22 to node-3", 20),
		"event no count":         event(0, "m", 30),
		"event empty message":    event(1, "", 40),
	}
}

// event is a Scheduled event as the scheduler records it.
func event(count int32, message string, at int64) *corev1.Event {
	return &corev1.Event{
		ObjectMeta:     metav1.ObjectMeta{Name: fmt.Sprintf("web-%d.%x", at, at), Namespace: "ns"},
		InvolvedObject: corev1.ObjectReference{Kind: "Pod", Namespace: "ns", Name: fmt.Sprintf("web-%d", at), UID: types.UID(fmt.Sprint("uid-", at)), APIVersion: "v1", ResourceVersion: fmt.Sprint(at)},
		Reason:         "Scheduled",
		Message:        message,
		Source:         corev1.EventSource{Component: "default-scheduler"},
		FirstTimestamp: metav1.Unix(at, 0),
		LastTimestamp:  metav1.Unix(at, 0),
		Count:          count,
		Type:           corev1.EventTypeNormal,
	}
}

// TestCreateFieldsMatchFieldManager checks that the managedFields a create
// gets from the memo are exactly what the field manager computes, for
// objects of many shapes, whatever shapes were remembered before.
func TestCreateFieldsMatchFieldManager(t *testing.T) {
	env := newTestEnv(t)
	s := env.server
	stores := map[schema.GroupKind]*registry.Store{}
	for st := range s.fieldManagers {
		stores[schema.GroupKind{Group: st.Resource.GVR.Group, Kind: st.Resource.Kind}] = st
	}
	cases := createFieldsCases()
	// want is what the field manager alone records for each case.
	want := map[string][]metav1.ManagedFieldsEntry{}
	storeOf := func(obj runtime.Object) *registry.Store {
		kinds, _, err := s.scheme.ObjectKinds(obj)
		if err != nil {
			t.Fatal(err)
		}
		st := stores[kinds[0].GroupKind()]
		if st == nil {
			t.Fatalf("no store for %v", kinds[0])
		}
		return st
	}
	managers := []string{"kubectl-create", "", "bench"}
	for name, obj := range cases {
		st := storeOf(obj)
		for _, manager := range managers {
			out := s.trackUpdate(s.fieldManagers[st].main, nil, obj.DeepCopyObject(), manager, st.Resource)
			want[name+"/"+manager] = managedFieldsOf(t, out)
		}
	}
	// Every case, in several orders, renamed, through a fresh memo per
	// round (so that each case is seen both remembered and not).
	for round := range 3 {
		fms := map[*registry.Store]*fieldManagers{}
		for st, fm := range s.fieldManagers {
			copied := *fm
			copied.created = newCreateFields()
			fms[st] = &copied
		}
		for i := range 2 {
			for name, obj := range cases {
				st := storeOf(obj)
				for _, manager := range managers {
					o := obj.DeepCopyObject()
					m, _ := meta.Accessor(o)
					if m.GetName() != "" {
						m.SetName(fmt.Sprintf("%s-%d-%d", m.GetName(), round, i))
					}
					out := s.trackCreate(fms[st], o, manager, st.Resource)
					got := managedFieldsOf(t, out)
					if diff := cmp.Diff(want[name+"/"+manager], got); diff != "" {
						t.Errorf("round %d pass %d, %s by %q: managedFields differ from the field manager's (-want +got):\n%s", round, i, name, manager, diff)
					}
					// Nothing but managedFields changes.
					in := obj.DeepCopyObject()
					inM, _ := meta.Accessor(in)
					inM.SetName(m.GetName())
					cleared := out.DeepCopyObject()
					cm, _ := meta.Accessor(cleared)
					cm.SetManagedFields(nil)
					if diff := cmp.Diff(in, cleared); diff != "" {
						t.Errorf("%s: object changed (-want +got):\n%s", name, diff)
					}
				}
			}
		}
		// The second pass was served from memory.
		var remembered int
		for _, fm := range fms {
			remembered += len(fm.created.entries)
		}
		if remembered == 0 {
			t.Errorf("round %d: nothing remembered", round)
		}
	}
}

// managedFieldsOf returns obj's managedFields with the times cleared (they
// are the time of the call).
func managedFieldsOf(t *testing.T, obj runtime.Object) []metav1.ManagedFieldsEntry {
	t.Helper()
	m, err := meta.Accessor(obj)
	if err != nil {
		t.Fatal(err)
	}
	var out []metav1.ManagedFieldsEntry
	for _, e := range m.GetManagedFields() {
		if e.Time == nil {
			t.Errorf("managedFields entry of %q has no time", e.Manager)
		}
		e.Time = nil
		out = append(out, e)
	}
	return out
}

// TestCreateFieldsKeepsClientManagedFields checks that an object that
// arrives with managedFields is tracked by the field manager (which keeps
// what the client sent), not from memory.
func TestCreateFieldsKeepsClientManagedFields(t *testing.T) {
	calls := 0
	c := newCreateFields()
	compute := func(obj runtime.Object) func() runtime.Object {
		return func() runtime.Object {
			calls++
			m, _ := meta.Accessor(obj)
			m.SetManagedFields([]metav1.ManagedFieldsEntry{{Manager: "m", Operation: metav1.ManagedFieldsOperationUpdate,
				FieldsType: "FieldsV1", FieldsV1: &metav1.FieldsV1{Raw: []byte(`{"f:data":{}}`)}, Time: &metav1.Time{}}})
			return obj
		}
	}
	newCM := func(name string, mf []metav1.ManagedFieldsEntry) *corev1.ConfigMap {
		return &corev1.ConfigMap{ObjectMeta: metav1.ObjectMeta{Name: name, Namespace: "ns", ManagedFields: mf}, Data: map[string]string{"a": "1"}}
	}
	for i, tc := range []struct {
		name      string
		obj       *corev1.ConfigMap
		wantCalls int
	}{
		{"first create computes", newCM("a", nil), 1},
		{"same shape is remembered", newCM("b", nil), 1},
		{"values outside lists are not part of the shape", &corev1.ConfigMap{ObjectMeta: metav1.ObjectMeta{Name: "b2", Namespace: "other", Labels: map[string]string{}}, Data: map[string]string{"a": "22"}}, 1},
		{"client managedFields compute", newCM("c", []metav1.ManagedFieldsEntry{{Manager: "x"}}), 2},
		{"invalid UTF-8 computes", &corev1.ConfigMap{ObjectMeta: metav1.ObjectMeta{Name: "d", Namespace: "ns"}, Data: map[string]string{"a": "\xff"}}, 3},
		{"and is not remembered", &corev1.ConfigMap{ObjectMeta: metav1.ObjectMeta{Name: "e", Namespace: "ns"}, Data: map[string]string{"a": "\xff"}}, 4},
		{"a large value has a small shape", &corev1.ConfigMap{ObjectMeta: metav1.ObjectMeta{Name: "f", Namespace: "ns"}, Data: map[string]string{"a": strings.Repeat("x", maxCreateFieldsKey)}}, 4},
		{"large shape computes", &corev1.ConfigMap{ObjectMeta: metav1.ObjectMeta{Name: "g", Namespace: "ns"}, Data: manyKeys(maxCreateFieldsKey / 8)}, 5},
		{"and is not remembered", &corev1.ConfigMap{ObjectMeta: metav1.ObjectMeta{Name: "h", Namespace: "ns"}, Data: manyKeys(maxCreateFieldsKey / 8)}, 6},
	} {
		out := c.track(tc.obj, "m", compute(tc.obj)).(*corev1.ConfigMap)
		if calls != tc.wantCalls {
			t.Errorf("%d %s: field manager called %d times in all, want %d", i, tc.name, calls, tc.wantCalls)
		}
		if len(out.ManagedFields) != 1 || out.ManagedFields[0].Manager != "m" || out.Name != tc.obj.Name {
			t.Errorf("%s: got %+v", tc.name, out.ObjectMeta)
		}
	}
}

func manyKeys(n int) map[string]string {
	m := make(map[string]string, n)
	for i := range n {
		m[fmt.Sprintf("key-%05d", i)] = "v"
	}
	return m
}

func TestShape(t *testing.T) {
	tests := []struct{ in, want string }{
		{`{"a":"x","b":"","c":0,"d":12,"e":-1.5e3,"f":true,"g":null}`, `{"a":"-","b":"","c":0,"d":1,"e":1,"f":true,"g":null}`},
		{`{"m":{"k\"ey":"v\"al\\","n":{"o":"p"}}}`, `{"m":{"k\"ey":"-","n":{"o":"-"}}}`},
		{`{"l":["a",1,{"x":"y","z":[2]}],"after":"v"}`, `{"l":["a",1,{"x":"y","z":[2]}],"after":"-"}`},
		{`{"s":"[\"not\",\"an\",\"array\"]","t":"]"}`, `{"s":"-","t":"-"}`},
		{`{"u":"\u003c\ufffd"}` + "\n", `{"u":"-"}` + "\n"},
		{`[{"a":"b"}]`, `[{"a":"b"}]`},
	}
	for _, tc := range tests {
		if got := string(shape([]byte(tc.in))); got != tc.want {
			t.Errorf("shape(%s) = %s, want %s", tc.in, got, tc.want)
		}
	}
}
