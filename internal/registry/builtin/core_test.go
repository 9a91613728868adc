package builtin

import (
	"context"
	"reflect"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/meta"
	"k8s.io/apimachinery/pkg/api/resource"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/util/intstr"
	"k8s.io/utils/ptr"
)

func TestCoreResourceDescriptions(t *testing.T) {
	type desc struct {
		Kind, ListKind, Singular string
		ShortNames, Categories   []string
		Namespaced, Status       bool
		Scale                    bool
	}
	want := map[string]desc{
		"namespaces":             {"Namespace", "NamespaceList", "namespace", []string{"ns"}, nil, false, true, false},
		"pods":                   {"Pod", "PodList", "pod", []string{"po"}, []string{"all"}, true, true, false},
		"services":               {"Service", "ServiceList", "service", []string{"svc"}, []string{"all"}, true, true, false},
		"endpoints":              {"Endpoints", "EndpointsList", "endpoints", []string{"ep"}, nil, true, false, false},
		"replicationcontrollers": {"ReplicationController", "ReplicationControllerList", "replicationcontroller", []string{"rc"}, []string{"all"}, true, true, true},
		"configmaps":             {"ConfigMap", "ConfigMapList", "configmap", []string{"cm"}, nil, true, false, false},
		"secrets":                {"Secret", "SecretList", "secret", nil, nil, true, false, false},
		"nodes":                  {"Node", "NodeList", "node", []string{"no"}, nil, false, true, false},
		"events":                 {"Event", "EventList", "event", []string{"ev"}, nil, true, false, false},
		"serviceaccounts":        {"ServiceAccount", "ServiceAccountList", "serviceaccount", []string{"sa"}, nil, true, false, false},
		"limitranges":            {"LimitRange", "LimitRangeList", "limitrange", []string{"limits"}, nil, true, false, false},
		"resourcequotas":         {"ResourceQuota", "ResourceQuotaList", "resourcequota", []string{"quota"}, nil, true, true, false},
		"persistentvolumeclaims": {"PersistentVolumeClaim", "PersistentVolumeClaimList", "persistentvolumeclaim", []string{"pvc"}, nil, true, true, false},
		"persistentvolumes":      {"PersistentVolume", "PersistentVolumeList", "persistentvolume", []string{"pv"}, nil, false, true, false},
		"podtemplates":           {"PodTemplate", "PodTemplateList", "podtemplate", nil, nil, true, false, false},
	}
	got := map[string]desc{}
	for _, r := range coreResources() {
		if r.GVR.Group != "" || r.GVR.Version != "v1" {
			t.Errorf("%s: GVR %v, want core/v1", r.GVR.Resource, r.GVR)
		}
		got[r.GVR.Resource] = desc{r.Kind, r.ListKind, r.Singular, r.ShortNames, r.Categories, r.Namespaced, r.Status, r.Scale != nil}

		// New and NewList return the resource's types.
		obj := r.Strategy.New()
		if k := typeName(obj); k != r.Kind {
			t.Errorf("%s: New() is %s, want %s", r.GVR.Resource, k, r.Kind)
		}
		if k := typeName(r.Strategy.NewList()); k != r.ListKind {
			t.Errorf("%s: NewList() is %s, want %s", r.GVR.Resource, k, r.ListKind)
		}
		if !meta.IsListType(r.Strategy.NewList()) {
			t.Errorf("%s: NewList() is not a list", r.GVR.Resource)
		}
		// Every table row matches its columns.
		if tbl := r.Strategy.Table(); tbl != nil {
			r.Strategy.PrepareForCreate(context.Background(), obj)
			r.Strategy.Default(obj)
			if n, m := len(tbl.Row(obj)), len(tbl.Columns); n != m {
				t.Errorf("%s: empty object's row has %d cells for %d columns", r.GVR.Resource, n, m)
			}
		}
	}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("resources (-want +got):\n%s", diff)
	}
}

// typeName is the Go type name of obj, which for core/v1 equals its kind.
func typeName(obj runtime.Object) string {
	return reflect.TypeOf(obj).Elem().Name()
}

// defaultingCases are one representative object per resource, used to
// check that defaulting is idempotent.
func defaultingCases() map[string]runtime.Object {
	tmpl := &corev1.PodTemplateSpec{
		ObjectMeta: metav1.ObjectMeta{Labels: map[string]string{"app": "a"}},
		Spec:       corev1.PodSpec{Containers: []corev1.Container{{Name: "c", Image: "nginx"}}},
	}
	return map[string]runtime.Object{
		"namespaces": &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: "ns1"}},
		"services": &corev1.Service{ObjectMeta: metav1.ObjectMeta{Name: "s"}, Spec: corev1.ServiceSpec{
			Type: corev1.ServiceTypeNodePort, Ports: []corev1.ServicePort{{Port: 80}}, SessionAffinity: corev1.ServiceAffinityClientIP}},
		"endpoints":              &corev1.Endpoints{Subsets: []corev1.EndpointSubset{{Ports: []corev1.EndpointPort{{Port: 80}}}}},
		"replicationcontrollers": &corev1.ReplicationController{Spec: corev1.ReplicationControllerSpec{Template: tmpl.DeepCopy()}},
		"secrets":                &corev1.Secret{StringData: map[string]string{"a": "b"}},
		"nodes": &corev1.Node{Status: corev1.NodeStatus{Capacity: corev1.ResourceList{
			corev1.ResourceCPU: resource.MustParse("2")}}},
		"limitranges": &corev1.LimitRange{Spec: corev1.LimitRangeSpec{Limits: []corev1.LimitRangeItem{{
			Type: corev1.LimitTypeContainer, Max: corev1.ResourceList{corev1.ResourceCPU: resource.MustParse("1")}}}}},
		"persistentvolumeclaims": &corev1.PersistentVolumeClaim{},
		"persistentvolumes": &corev1.PersistentVolume{Spec: corev1.PersistentVolumeSpec{
			PersistentVolumeSource: corev1.PersistentVolumeSource{HostPath: &corev1.HostPathVolumeSource{Path: "/x"}}}},
		"podtemplates": &corev1.PodTemplate{Template: *tmpl.DeepCopy()},
	}
}

func TestCoreDefaultsIdempotent(t *testing.T) {
	for plural, obj := range defaultingCases() {
		t.Run(plural, func(t *testing.T) {
			s := coreResource(t, plural).Strategy
			s.Default(obj)
			once := obj.DeepCopyObject()
			s.Default(obj)
			if diff := cmp.Diff(once, obj); diff != "" {
				t.Errorf("defaulting twice differs (-once +twice):\n%s", diff)
			}
		})
	}
}

func TestServiceDefaults(t *testing.T) {
	svc := &corev1.Service{ObjectMeta: metav1.ObjectMeta{Name: "web"}, Spec: corev1.ServiceSpec{
		Ports: []corev1.ServicePort{{Port: 80}, {Port: 443, TargetPort: intstr.FromString("https")}},
	}}
	defaultService(svc)
	want := corev1.ServiceSpec{
		Ports: []corev1.ServicePort{
			{Port: 80, Protocol: corev1.ProtocolTCP, TargetPort: intstr.FromInt32(80)},
			{Port: 443, Protocol: corev1.ProtocolTCP, TargetPort: intstr.FromString("https")},
		},
		Type:                  corev1.ServiceTypeClusterIP,
		SessionAffinity:       corev1.ServiceAffinityNone,
		IPFamilyPolicy:        ptr.To(corev1.IPFamilyPolicySingleStack),
		IPFamilies:            []corev1.IPFamily{corev1.IPv4Protocol},
		InternalTrafficPolicy: ptr.To(corev1.ServiceInternalTrafficPolicyCluster),
	}
	if diff := cmp.Diff(want, svc.Spec); diff != "" {
		t.Errorf("ClusterIP defaults (-want +got):\n%s", diff)
	}

	lb := &corev1.Service{Spec: corev1.ServiceSpec{Type: corev1.ServiceTypeLoadBalancer, Ports: []corev1.ServicePort{{Port: 80}}}}
	defaultService(lb)
	if lb.Spec.ExternalTrafficPolicy != corev1.ServiceExternalTrafficPolicyCluster {
		t.Errorf("LoadBalancer externalTrafficPolicy = %q, want Cluster", lb.Spec.ExternalTrafficPolicy)
	}
	if lb.Spec.AllocateLoadBalancerNodePorts == nil || !*lb.Spec.AllocateLoadBalancerNodePorts {
		t.Errorf("LoadBalancer allocateLoadBalancerNodePorts not defaulted to true")
	}
}

func TestServiceValidate(t *testing.T) {
	base := func() *corev1.Service {
		return &corev1.Service{ObjectMeta: metav1.ObjectMeta{Name: "web", Namespace: "default"}, Spec: corev1.ServiceSpec{
			Selector: map[string]string{"app": "web"},
			Ports:    []corev1.ServicePort{{Port: 80}},
		}}
	}
	tests := []struct {
		name   string
		mutate func(s *corev1.Service)
		want   []string
	}{
		{"valid", func(s *corev1.Service) {}, nil},
		{"headless without ports", func(s *corev1.Service) { s.Spec.ClusterIP = "None"; s.Spec.Ports = nil }, nil},
		{"external name", func(s *corev1.Service) {
			s.Spec.Type = corev1.ServiceTypeExternalName
			s.Spec.ExternalName = "example.com"
			s.Spec.Ports = nil
		}, nil},
		{"no ports", func(s *corev1.Service) { s.Spec.Ports = nil }, []string{"spec.ports: Required value"}},
		{"port zero", func(s *corev1.Service) { s.Spec.Ports[0].Port = 0 }, []string{"spec.ports[0].port: Invalid value", "spec.ports[0].targetPort: Invalid value"}},
		{"unnamed ports", func(s *corev1.Service) {
			s.Spec.Ports = []corev1.ServicePort{{Port: 80}, {Port: 81}}
		}, []string{"spec.ports[0].name: Required value", "spec.ports[1].name: Required value"}},
		{"duplicate names", func(s *corev1.Service) {
			s.Spec.Ports = []corev1.ServicePort{{Name: "a", Port: 80}, {Name: "a", Port: 81}}
		}, []string{"spec.ports[1].name: Duplicate value"}},
		{"bad protocol", func(s *corev1.Service) { s.Spec.Ports[0].Protocol = "HTTP" }, []string{"spec.ports[0].protocol: Unsupported value"}},
		{"bad type", func(s *corev1.Service) { s.Spec.Type = "Magic" }, []string{"spec.type: Unsupported value"}},
		{"nodePort on ClusterIP", func(s *corev1.Service) { s.Spec.Ports[0].NodePort = 30080 }, []string{"spec.ports[0].nodePort: Forbidden"}},
		{"bad cluster IP", func(s *corev1.Service) { s.Spec.ClusterIP = "10.0.0" }, []string{"spec.clusterIP: Invalid value"}},
	}
	s := coreResource(t, "services").Strategy
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			svc := base()
			tt.mutate(svc)
			s.Default(svc)
			got := fieldErrs(s.Validate(context.Background(), svc))
			if diff := cmp.Diff(tt.want, got); diff != "" {
				t.Errorf("errors (-want +got):\n%s", diff)
			}
		})
	}
}

func TestServiceUpdate(t *testing.T) {
	s := coreResource(t, "services").Strategy
	old := &corev1.Service{ObjectMeta: metav1.ObjectMeta{Name: "web"}, Spec: corev1.ServiceSpec{
		Type: corev1.ServiceTypeNodePort, ClusterIP: "10.96.0.10", Ports: []corev1.ServicePort{{Port: 80, NodePort: 30080}}}}
	s.Default(old)

	// A replace of the original manifest keeps the assigned IP and node port.
	replaced := &corev1.Service{ObjectMeta: metav1.ObjectMeta{Name: "web"}, Spec: corev1.ServiceSpec{
		Type: corev1.ServiceTypeNodePort, Ports: []corev1.ServicePort{{Port: 80}}}}
	s.PrepareForUpdate(context.Background(), replaced, old)
	s.Default(replaced)
	if errs := s.ValidateUpdate(context.Background(), replaced, old); len(errs) != 0 {
		t.Errorf("replace: unexpected errors %v", errs)
	}
	if diff := cmp.Diff(old.Spec, replaced.Spec); diff != "" {
		t.Errorf("replace changed the spec (-old +new):\n%s", diff)
	}

	changed := old.DeepCopy()
	changed.Spec.ClusterIP = "10.96.0.11"
	changed.Spec.ClusterIPs = []string{"10.96.0.11"}
	got := fieldErrs(s.ValidateUpdate(context.Background(), changed, old))
	want := []string{"spec.clusterIP: Invalid value", "spec.clusterIPs[0]: Invalid value"}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("changed clusterIP errors (-want +got):\n%s", diff)
	}

	// A type change clears what the new type has no use for, when the
	// client sent it back unchanged (kubectl edit of type only).
	toExternal := old.DeepCopy()
	toExternal.Spec.Type = corev1.ServiceTypeExternalName
	toExternal.Spec.ExternalName = "db.example.com"
	s.PrepareForUpdate(context.Background(), toExternal, old)
	s.Default(toExternal)
	if errs := s.ValidateUpdate(context.Background(), toExternal, old); len(errs) != 0 {
		t.Errorf("NodePort to ExternalName: unexpected errors %v", errs)
	}
	if sp := toExternal.Spec; sp.ClusterIP != "" || sp.ClusterIPs != nil || sp.IPFamilies != nil || sp.IPFamilyPolicy != nil ||
		sp.Ports[0].NodePort != 0 || sp.ExternalTrafficPolicy != "" {
		t.Errorf("NodePort to ExternalName kept %+v", sp)
	}
	toClusterIP := old.DeepCopy()
	toClusterIP.Spec.Type = corev1.ServiceTypeClusterIP
	s.PrepareForUpdate(context.Background(), toClusterIP, old)
	s.Default(toClusterIP)
	if sp := toClusterIP.Spec; sp.ClusterIP != "10.96.0.10" || sp.Ports[0].NodePort != 0 || sp.ExternalTrafficPolicy != "" {
		t.Errorf("NodePort to ClusterIP: %+v, want the cluster IP kept, the node port and traffic policy gone", sp)
	}
	// A LoadBalancer without node ports does not get the old ones back.
	noNodePorts := old.DeepCopy()
	noNodePorts.Spec.Type = corev1.ServiceTypeLoadBalancer
	noNodePorts.Spec.AllocateLoadBalancerNodePorts = ptr.To(false)
	s.PrepareForUpdate(context.Background(), noNodePorts, old)
	s.Default(noNodePorts)
	if errs := s.ValidateUpdate(context.Background(), noNodePorts, old); len(errs) != 0 {
		t.Errorf("NodePort to LoadBalancer without node ports: unexpected errors %v", errs)
	}
	if np := noNodePorts.Spec.Ports[0].NodePort; np != 0 {
		t.Errorf("NodePort to LoadBalancer without node ports kept node port %d", np)
	}
	// Nor a NodePort service the health check node port of a Local LoadBalancer.
	local := old.DeepCopy()
	local.Spec.Type = corev1.ServiceTypeLoadBalancer
	local.Spec.ExternalTrafficPolicy = corev1.ServiceExternalTrafficPolicyLocal
	local.Spec.HealthCheckNodePort = 31000
	s.Default(local)
	toNodePort := local.DeepCopy()
	toNodePort.Spec.Type = corev1.ServiceTypeNodePort
	toNodePort.Spec.HealthCheckNodePort = 0
	s.PrepareForUpdate(context.Background(), toNodePort, local)
	s.Default(toNodePort)
	if sp := toNodePort.Spec; sp.HealthCheckNodePort != 0 || sp.Ports[0].NodePort != 30080 {
		t.Errorf("Local LoadBalancer to NodePort: health check node port %d, node port %d; want 0 and 30080",
			sp.HealthCheckNodePort, sp.Ports[0].NodePort)
	}
	// A value the client set on purpose stays, and is judged.
	explicit := old.DeepCopy()
	explicit.Spec.Type = corev1.ServiceTypeExternalName
	explicit.Spec.ExternalName = "db.example.com"
	explicit.Spec.ClusterIP, explicit.Spec.ClusterIPs = "10.96.0.12", []string{"10.96.0.12"}
	s.PrepareForUpdate(context.Background(), explicit, old)
	if errs := s.ValidateUpdate(context.Background(), explicit, old); len(errs) == 0 {
		t.Error("ExternalName with a new cluster IP: no error")
	}
}

func TestServiceRow(t *testing.T) {
	svc := &corev1.Service{ObjectMeta: metav1.ObjectMeta{Name: "web"}, Spec: corev1.ServiceSpec{
		Type: corev1.ServiceTypeNodePort, ClusterIP: "10.96.0.10",
		Selector: map[string]string{"b": "2", "a": "1"},
		Ports:    []corev1.ServicePort{{Port: 80, NodePort: 30080, Protocol: corev1.ProtocolTCP}, {Port: 53, Protocol: corev1.ProtocolUDP}},
	}}
	got := serviceRow(svc)
	want := []any{"web", "NodePort", "10.96.0.10", "<none>", "80:30080/TCP,53/UDP", "<unknown>", "a=1,b=2"}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("row (-want +got):\n%s", diff)
	}
	lb := &corev1.Service{Spec: corev1.ServiceSpec{Type: corev1.ServiceTypeLoadBalancer}}
	if got := serviceExternalIP(lb); got != "<pending>" {
		t.Errorf("pending LoadBalancer external IP = %q", got)
	}
}

func TestSecretValidate(t *testing.T) {
	tests := []struct {
		name   string
		secret *corev1.Secret
		want   []string
	}{
		{"opaque", &corev1.Secret{StringData: map[string]string{"a": "b"}}, nil},
		{"bad key", &corev1.Secret{Data: map[string][]byte{"a b": nil}}, []string{"data[a b]: Invalid value"}},
		{"tls missing keys", &corev1.Secret{Type: corev1.SecretTypeTLS}, []string{"data[tls.crt]: Required value", "data[tls.key]: Required value"}},
		{"basic auth", &corev1.Secret{Type: corev1.SecretTypeBasicAuth}, []string{"data[username]: Required value", "data[password]: Required value"}},
		{"dockerconfigjson bad json", &corev1.Secret{Type: corev1.SecretTypeDockerConfigJson, Data: map[string][]byte{".dockerconfigjson": []byte("{")}},
			[]string{"data[.dockerconfigjson]: Invalid value"}},
		{"sa token", &corev1.Secret{Type: corev1.SecretTypeServiceAccountToken}, []string{"metadata.annotations[kubernetes.io/service-account.name]: Required value"}},
	}
	s := coreResource(t, "secrets").Strategy
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s.Default(tt.secret)
			got := fieldErrs(s.Validate(context.Background(), tt.secret))
			if diff := cmp.Diff(tt.want, got); diff != "" {
				t.Errorf("errors (-want +got):\n%s", diff)
			}
		})
	}

	sec := &corev1.Secret{StringData: map[string]string{"a": "b"}, Data: map[string][]byte{"c": []byte("d")}}
	s.Default(sec)
	want := &corev1.Secret{Type: corev1.SecretTypeOpaque, Data: map[string][]byte{"a": []byte("b"), "c": []byte("d")}}
	if diff := cmp.Diff(want, sec); diff != "" {
		t.Errorf("defaulted secret (-want +got):\n%s", diff)
	}
}

func TestImmutableConfigMapAndSecret(t *testing.T) {
	cms := coreResource(t, "configmaps").Strategy
	old := &corev1.ConfigMap{Immutable: ptr.To(true), Data: map[string]string{"a": "1"}}
	cm := old.DeepCopy()
	cm.Data["a"] = "2"
	cm.Immutable = nil
	got := fieldErrs(cms.ValidateUpdate(context.Background(), cm, old))
	want := []string{"immutable: Forbidden", "data: Forbidden"}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("configmap errors (-want +got):\n%s", diff)
	}

	ss := coreResource(t, "secrets").Strategy
	olds := &corev1.Secret{Type: corev1.SecretTypeOpaque, Immutable: ptr.To(true), Data: map[string][]byte{"a": []byte("1")}}
	sec := olds.DeepCopy()
	sec.Data["a"] = []byte("2")
	sec.Type = "example.com/other"
	got = fieldErrs(ss.ValidateUpdate(context.Background(), sec, olds))
	want = []string{"type: Invalid value", "data: Forbidden"}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("secret errors (-want +got):\n%s", diff)
	}

	dup := &corev1.ConfigMap{Data: map[string]string{"k": "v"}, BinaryData: map[string][]byte{"k": nil}}
	got = fieldErrs(cms.Validate(context.Background(), dup))
	want = []string{"data[k]: Invalid value"}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("duplicate key errors (-want +got):\n%s", diff)
	}
}

func TestNamespaceLifecycle(t *testing.T) {
	s := coreResource(t, "namespaces").Strategy
	ns := &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: "team-a"}, Status: corev1.NamespaceStatus{Phase: corev1.NamespaceTerminating}}
	s.PrepareForCreate(context.Background(), ns)
	s.Default(ns)
	want := &corev1.Namespace{
		ObjectMeta: metav1.ObjectMeta{Name: "team-a", Labels: map[string]string{"kubernetes.io/metadata.name": "team-a"}},
		Spec:       corev1.NamespaceSpec{Finalizers: []corev1.FinalizerName{corev1.FinalizerKubernetes}},
		Status:     corev1.NamespaceStatus{Phase: corev1.NamespaceActive},
	}
	if diff := cmp.Diff(want, ns); diff != "" {
		t.Errorf("created namespace (-want +got):\n%s", diff)
	}
	if errs := s.ValidateName("Team_A", false); len(errs) == 0 {
		t.Errorf("ValidateName accepted Team_A")
	}
	if errs := s.ValidateName("a.b", false); len(errs) == 0 {
		t.Errorf("ValidateName accepted a.b (namespaces are DNS labels)")
	}

	// spec.finalizers change only through namespaces/finalize.
	upd := ns.DeepCopy()
	upd.Spec.Finalizers = nil
	s.PrepareForUpdate(context.Background(), upd, ns)
	if diff := cmp.Diff(ns.Spec.Finalizers, upd.Spec.Finalizers); diff != "" {
		t.Errorf("main update changed finalizers (-old +new):\n%s", diff)
	}
}

func TestReplicationController(t *testing.T) {
	r := coreResource(t, "replicationcontrollers")
	s := r.Strategy
	tmpl := &corev1.PodTemplateSpec{
		ObjectMeta: metav1.ObjectMeta{Labels: map[string]string{"app": "a"}},
		Spec:       corev1.PodSpec{Containers: []corev1.Container{{Name: "c", Image: "nginx"}}},
	}
	rc := &corev1.ReplicationController{ObjectMeta: metav1.ObjectMeta{Name: "rc"}, Spec: corev1.ReplicationControllerSpec{Template: tmpl}}
	s.Default(rc)
	if diff := cmp.Diff(map[string]string{"app": "a"}, rc.Spec.Selector); diff != "" {
		t.Errorf("selector from template labels (-want +got):\n%s", diff)
	}
	if errs := s.Validate(context.Background(), rc); len(errs) != 0 {
		t.Errorf("unexpected errors: %v", errs)
	}
	spec, status, sel := r.Scale.Get(rc)
	if spec != 1 || status != 0 || sel != "app=a" {
		t.Errorf("scale = (%d, %d, %q), want (1, 0, \"app=a\")", spec, status, sel)
	}
	r.Scale.SetReplicas(rc, 3)
	if *rc.Spec.Replicas != 3 {
		t.Errorf("SetReplicas: replicas = %d", *rc.Spec.Replicas)
	}

	bad := rc.DeepCopy()
	bad.Spec.Selector = map[string]string{"app": "b"}
	bad.Spec.Template.Spec.RestartPolicy = corev1.RestartPolicyNever
	got := fieldErrs(s.Validate(context.Background(), bad))
	want := []string{"spec.template.metadata.labels: Invalid value", "spec.template.spec.restartPolicy: Unsupported value"}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("errors (-want +got):\n%s", diff)
	}
}

func TestPVCValidate(t *testing.T) {
	s := coreResource(t, "persistentvolumeclaims").Strategy
	c := &corev1.PersistentVolumeClaim{ObjectMeta: metav1.ObjectMeta{Name: "data"}}
	s.Default(c)
	got := fieldErrs(s.Validate(context.Background(), c))
	want := []string{"spec.accessModes: Required value", "spec.resources[storage]: Required value"}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("errors (-want +got):\n%s", diff)
	}

	c.Spec.AccessModes = []corev1.PersistentVolumeAccessMode{corev1.ReadWriteOnce}
	c.Spec.Resources.Requests = corev1.ResourceList{corev1.ResourceStorage: resource.MustParse("1Gi")}
	if errs := s.Validate(context.Background(), c); len(errs) != 0 {
		t.Fatalf("unexpected errors: %v", errs)
	}
	upd := c.DeepCopy()
	upd.Spec.AccessModes = []corev1.PersistentVolumeAccessMode{corev1.ReadWriteMany}
	got = fieldErrs(s.ValidateUpdate(context.Background(), upd, c))
	if diff := cmp.Diff([]string{"spec: Forbidden"}, got); diff != "" {
		t.Errorf("update errors (-want +got):\n%s", diff)
	}

	// A bound claim may grow but not shrink.
	bound := c.DeepCopy()
	bound.Spec.VolumeName = "pv1"
	bound.Status.Phase = corev1.ClaimBound
	grow := bound.DeepCopy()
	grow.Spec.Resources.Requests[corev1.ResourceStorage] = resource.MustParse("2Gi")
	if errs := s.ValidateUpdate(context.Background(), grow, bound); len(errs) != 0 {
		t.Errorf("growing a bound claim: %v", errs)
	}
	shrink := bound.DeepCopy()
	shrink.Spec.Resources.Requests[corev1.ResourceStorage] = resource.MustParse("512Mi")
	got = fieldErrs(s.ValidateUpdate(context.Background(), shrink, bound))
	if diff := cmp.Diff([]string{"spec.resources.requests.storage: Forbidden"}, got); diff != "" {
		t.Errorf("shrink errors (-want +got):\n%s", diff)
	}
	// An unbound claim may not change its request.
	grow2 := c.DeepCopy()
	grow2.Spec.Resources.Requests[corev1.ResourceStorage] = resource.MustParse("2Gi")
	got = fieldErrs(s.ValidateUpdate(context.Background(), grow2, c))
	if diff := cmp.Diff([]string{"spec: Forbidden"}, got); diff != "" {
		t.Errorf("unbound growth errors (-want +got):\n%s", diff)
	}
}

func TestNodeRow(t *testing.T) {
	n := &corev1.Node{
		ObjectMeta: metav1.ObjectMeta{Name: "n1", Labels: map[string]string{"node-role.kubernetes.io/control-plane": ""}},
		Spec:       corev1.NodeSpec{Unschedulable: true},
		Status: corev1.NodeStatus{
			Conditions: []corev1.NodeCondition{{Type: corev1.NodeReady, Status: corev1.ConditionTrue}},
			Addresses:  []corev1.NodeAddress{{Type: corev1.NodeInternalIP, Address: "192.168.1.2"}},
			NodeInfo:   corev1.NodeSystemInfo{KubeletVersion: "v1.33.0", OSImage: "Debian", KernelVersion: "6.1", ContainerRuntimeVersion: "containerd://2.0"},
		},
	}
	got := nodeRow(n)
	want := []any{"n1", "Ready,SchedulingDisabled", "control-plane", "<unknown>", "v1.33.0", "192.168.1.2", "<none>", "Debian", "6.1", "containerd://2.0"}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("row (-want +got):\n%s", diff)
	}
}

func TestEventRow(t *testing.T) {
	now := time.Date(2026, 1, 1, 12, 0, 0, 0, time.UTC)
	e := &corev1.Event{
		ObjectMeta:     metav1.ObjectMeta{Name: "p.1"},
		InvolvedObject: corev1.ObjectReference{Kind: "Pod", Name: "p"},
		Reason:         "Scheduled", Type: corev1.EventTypeNormal, Message: "assigned ",
		Source:         corev1.EventSource{Component: "default-scheduler"},
		FirstTimestamp: metav1.NewTime(now.Add(-2 * time.Minute)),
	}
	got := eventRow(e, now)
	want := []any{"2m", "Normal", "Scheduled", "pod/p", "", "default-scheduler", "assigned", "2m", int64(1), "p.1"}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("row (-want +got):\n%s", diff)
	}
}

func TestFormatEndpoints(t *testing.T) {
	addrs := func(ips ...string) []corev1.EndpointAddress {
		var out []corev1.EndpointAddress
		for _, ip := range ips {
			out = append(out, corev1.EndpointAddress{IP: ip})
		}
		return out
	}
	tests := []struct {
		name string
		ep   *corev1.Endpoints
		want string
	}{
		{"empty", &corev1.Endpoints{}, "<none>"},
		{"two", &corev1.Endpoints{Subsets: []corev1.EndpointSubset{{Addresses: addrs("10.0.0.1", "10.0.0.2"), Ports: []corev1.EndpointPort{{Port: 80}}}}}, "10.0.0.1:80,10.0.0.2:80"},
		{"more", &corev1.Endpoints{Subsets: []corev1.EndpointSubset{{Addresses: addrs("10.0.0.1", "10.0.0.2", "10.0.0.3", "10.0.0.4", "10.0.0.5"), Ports: []corev1.EndpointPort{{Port: 80}}}}},
			"10.0.0.1:80,10.0.0.2:80,10.0.0.3:80 + 2 more..."},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := formatEndpoints(tt.ep); got != tt.want {
				t.Errorf("formatEndpoints = %q, want %q", got, tt.want)
			}
		})
	}
}

func TestCoreFieldSelectors(t *testing.T) {
	p := minimalPod()
	p.Spec.NodeName = "n1"
	p.Status.Phase = corev1.PodRunning
	_, fs, err := coreResource(t, "pods").Strategy.Attrs(p)
	if err != nil {
		t.Fatal(err)
	}
	for k, want := range map[string]string{"spec.nodeName": "n1", "status.phase": "Running", "metadata.name": "p", "spec.hostNetwork": "false"} {
		if got := fs[k]; got != want {
			t.Errorf("pods %s = %q, want %q", k, got, want)
		}
	}
	_, fs, err = coreResource(t, "secrets").Strategy.Attrs(&corev1.Secret{Type: corev1.SecretTypeTLS})
	if err != nil {
		t.Fatal(err)
	}
	if got := fs["type"]; got != string(corev1.SecretTypeTLS) {
		t.Errorf("secrets type = %q", got)
	}
}

// TestCoreMinimalObjectsValid checks that a typical minimal manifest of each
// resource passes validation after the create path (prepare, default).
func TestCoreMinimalObjectsValid(t *testing.T) {
	meta := func(name string) metav1.ObjectMeta { return metav1.ObjectMeta{Name: name, Namespace: "default"} }
	tmpl := corev1.PodTemplateSpec{
		ObjectMeta: metav1.ObjectMeta{Labels: map[string]string{"app": "a"}},
		Spec:       corev1.PodSpec{Containers: []corev1.Container{{Name: "c", Image: "nginx:1.27", Ports: []corev1.ContainerPort{{ContainerPort: 80}}}}},
	}
	objs := map[string]runtime.Object{
		"namespaces": &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: "team-a"}},
		"pods":       &corev1.Pod{ObjectMeta: meta("p"), Spec: tmpl.Spec},
		"services": &corev1.Service{ObjectMeta: meta("web"), Spec: corev1.ServiceSpec{
			Type: corev1.ServiceTypeLoadBalancer, Selector: map[string]string{"app": "a"},
			Ports: []corev1.ServicePort{{Name: "http", Port: 80}, {Name: "https", Port: 443}}}},
		"endpoints": &corev1.Endpoints{ObjectMeta: meta("web"), Subsets: []corev1.EndpointSubset{{
			Addresses: []corev1.EndpointAddress{{IP: "10.0.0.1"}}, Ports: []corev1.EndpointPort{{Port: 80}}}}},
		"replicationcontrollers": &corev1.ReplicationController{ObjectMeta: meta("rc"), Spec: corev1.ReplicationControllerSpec{Template: tmpl.DeepCopy()}},
		"configmaps":             &corev1.ConfigMap{ObjectMeta: meta("cm"), Data: map[string]string{"a.conf": "x"}},
		"secrets":                &corev1.Secret{ObjectMeta: meta("s"), StringData: map[string]string{"password": "x"}},
		"nodes": &corev1.Node{ObjectMeta: metav1.ObjectMeta{Name: "node-1.example"}, Status: corev1.NodeStatus{
			Capacity: corev1.ResourceList{corev1.ResourceCPU: resource.MustParse("4"), corev1.ResourcePods: resource.MustParse("110")}}},
		"events": &corev1.Event{ObjectMeta: meta("p.1"), InvolvedObject: corev1.ObjectReference{Kind: "Pod", Namespace: "default", Name: "p"},
			Reason: "Scheduled", Type: corev1.EventTypeNormal},
		"serviceaccounts": &corev1.ServiceAccount{ObjectMeta: meta("default")},
		"limitranges": &corev1.LimitRange{ObjectMeta: meta("lr"), Spec: corev1.LimitRangeSpec{Limits: []corev1.LimitRangeItem{{
			Type:    corev1.LimitTypeContainer,
			Default: corev1.ResourceList{corev1.ResourceCPU: resource.MustParse("500m")},
			Max:     corev1.ResourceList{corev1.ResourceCPU: resource.MustParse("1")}}}}},
		"resourcequotas": &corev1.ResourceQuota{ObjectMeta: meta("q"), Spec: corev1.ResourceQuotaSpec{
			Hard: corev1.ResourceList{"pods": resource.MustParse("10"), "requests.cpu": resource.MustParse("4")}}},
		"persistentvolumeclaims": &corev1.PersistentVolumeClaim{ObjectMeta: meta("data"), Spec: corev1.PersistentVolumeClaimSpec{
			AccessModes: []corev1.PersistentVolumeAccessMode{corev1.ReadWriteOnce},
			Resources:   corev1.VolumeResourceRequirements{Requests: corev1.ResourceList{corev1.ResourceStorage: resource.MustParse("1Gi")}}}},
		"persistentvolumes": &corev1.PersistentVolume{ObjectMeta: metav1.ObjectMeta{Name: "pv1"}, Spec: corev1.PersistentVolumeSpec{
			Capacity:               corev1.ResourceList{corev1.ResourceStorage: resource.MustParse("1Gi")},
			AccessModes:            []corev1.PersistentVolumeAccessMode{corev1.ReadWriteOnce},
			PersistentVolumeSource: corev1.PersistentVolumeSource{HostPath: &corev1.HostPathVolumeSource{Path: "/data"}}}},
		"podtemplates": &corev1.PodTemplate{ObjectMeta: meta("pt"), Template: tmpl},
	}
	if len(objs) != len(coreResources()) {
		t.Fatalf("test covers %d resources, coreResources has %d", len(objs), len(coreResources()))
	}
	for plural, obj := range objs {
		t.Run(plural, func(t *testing.T) {
			r := coreResource(t, plural)
			ctx := context.Background()
			r.Strategy.PrepareForCreate(ctx, obj)
			r.Strategy.Default(obj)
			if errs := r.Strategy.Validate(ctx, obj); len(errs) != 0 {
				t.Errorf("Validate: %v", errs)
			}
			// An unchanged update is valid too.
			old := obj.DeepCopyObject()
			upd := obj.DeepCopyObject()
			r.Strategy.PrepareForUpdate(ctx, upd, old)
			r.Strategy.Default(upd)
			if errs := r.Strategy.ValidateUpdate(ctx, upd, old); len(errs) != 0 {
				t.Errorf("ValidateUpdate: %v", errs)
			}
			if diff := cmp.Diff(old, upd); diff != "" {
				t.Errorf("unchanged update changed the object (-old +new):\n%s", diff)
			}
			if r.Status {
				if errs := r.Strategy.ValidateStatusUpdate(ctx, upd, old); len(errs) != 0 {
					t.Errorf("ValidateStatusUpdate: %v", errs)
				}
			}
		})
	}
}
