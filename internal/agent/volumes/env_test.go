package volumes

import (
	"context"
	"slices"
	"testing"

	"github.com/google/go-cmp/cmp"
	v1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/api/resource"

	"github.com/skiff-dev/skiff/internal/agent/cri"
)

func TestExpand(t *testing.T) {
	t.Parallel()
	vars := map[string]string{"A": "a", "B": "b", "EMPTY": ""}
	lookup := func(n string) (string, bool) { v, ok := vars[n]; return v, ok }
	tests := []struct{ in, want string }{
		{"plain", "plain"},
		{"$(A)", "a"},
		{"x$(A)y$(B)z", "xaybz"},
		{"$(EMPTY)!", "!"},
		{"$(UNDEFINED)", "$(UNDEFINED)"},
		{"$$(A)", "$(A)"},
		{"$$$(A)", "$a"},
		{"$(A", "$(A"},
		{"$A", "$A"},
		{"cost $", "cost $"},
		{"$()", "$()"},
		{"$(A)$(B", "a$(B"},
	}
	for _, tt := range tests {
		t.Run(tt.in, func(t *testing.T) {
			if got := expand(tt.in, lookup); got != tt.want {
				t.Errorf("expand(%q) = %q, want %q", tt.in, got, tt.want)
			}
		})
	}
}

// k8sServiceEnv is what the default namespace's kubernetes service adds.
var k8sServiceEnv = []cri.EnvVar{
	{Name: "KUBERNETES_PORT", Value: "tcp://10.96.0.1:443"},
	{Name: "KUBERNETES_PORT_443_TCP", Value: "tcp://10.96.0.1:443"},
	{Name: "KUBERNETES_PORT_443_TCP_ADDR", Value: "10.96.0.1"},
	{Name: "KUBERNETES_PORT_443_TCP_PORT", Value: "443"},
	{Name: "KUBERNETES_PORT_443_TCP_PROTO", Value: "tcp"},
	{Name: "KUBERNETES_SERVICE_HOST", Value: "10.96.0.1"},
	{Name: "KUBERNETES_SERVICE_PORT", Value: "443"},
	{Name: "KUBERNETES_SERVICE_PORT_HTTPS", Value: "443"},
}

func TestEnv(t *testing.T) {
	t.Parallel()
	m, _ := newTestManager(t, fixtures()...)
	noLinks := func(p *v1.Pod) { p.Spec.EnableServiceLinks = ptr(false) }
	cmRef := func(name string, optional bool) *v1.ConfigMapEnvSource {
		return &v1.ConfigMapEnvSource{LocalObjectReference: v1.LocalObjectReference{Name: name}, Optional: &optional}
	}
	field := func(p string) *v1.EnvVarSource {
		return &v1.EnvVarSource{FieldRef: &v1.ObjectFieldSelector{FieldPath: p}}
	}
	tests := []struct {
		name    string
		pod     func(*v1.Pod)
		c       v1.Container
		want    []cri.EnvVar
		wantErr string
	}{
		{
			name: "no env, links off: only the kubernetes service",
			pod:  noLinks,
			want: k8sServiceEnv,
		},
		{
			name: "service links of the namespace",
			c:    v1.Container{Env: []v1.EnvVar{{Name: "X", Value: "1"}}},
			want: slices.Concat([]cri.EnvVar{{Name: "X", Value: "1"}}, k8sServiceEnv, []cri.EnvVar{
				{Name: "MY_DB_PORT", Value: "tcp://10.96.0.10:5432"},
				{Name: "MY_DB_PORT_5432_TCP", Value: "tcp://10.96.0.10:5432"},
				{Name: "MY_DB_PORT_5432_TCP_ADDR", Value: "10.96.0.10"},
				{Name: "MY_DB_PORT_5432_TCP_PORT", Value: "5432"},
				{Name: "MY_DB_PORT_5432_TCP_PROTO", Value: "tcp"},
				{Name: "MY_DB_PORT_9000_UDP", Value: "udp://10.96.0.10:9000"},
				{Name: "MY_DB_PORT_9000_UDP_ADDR", Value: "10.96.0.10"},
				{Name: "MY_DB_PORT_9000_UDP_PORT", Value: "9000"},
				{Name: "MY_DB_PORT_9000_UDP_PROTO", Value: "udp"},
				{Name: "MY_DB_SERVICE_HOST", Value: "10.96.0.10"},
				{Name: "MY_DB_SERVICE_PORT", Value: "5432"},
				{Name: "MY_DB_SERVICE_PORT_METRICS_UDP", Value: "9000"},
				{Name: "MY_DB_SERVICE_PORT_SQL", Value: "5432"},
			}),
		},
		{
			name: "envFrom with prefix, env overrides, expansion",
			pod:  noLinks,
			c: v1.Container{
				EnvFrom: []v1.EnvFromSource{
					{ConfigMapRef: cmRef("cfg", false)},
					{Prefix: "S_", SecretRef: &v1.SecretEnvSource{LocalObjectReference: v1.LocalObjectReference{Name: "sec"}}},
					{ConfigMapRef: cmRef("missing", true)},
				},
				Env: []v1.EnvVar{
					{Name: "HOST", Value: "$(a).example"},
					{Name: "b", Value: "overridden"},
					{Name: "FULL", Value: "$(URL) via $(KUBERNETES_SERVICE_HOST) $$(a) $(LATER)"},
					{Name: "LATER", Value: "late"},
					{Name: "FROM_CM", ValueFrom: &v1.EnvVarSource{ConfigMapKeyRef: &v1.ConfigMapKeySelector{LocalObjectReference: v1.LocalObjectReference{Name: "cfg"}, Key: "a"}}},
					{Name: "FROM_SECRET", ValueFrom: &v1.EnvVarSource{SecretKeyRef: &v1.SecretKeySelector{LocalObjectReference: v1.LocalObjectReference{Name: "sec"}, Key: "pass"}}},
					{Name: "OPT_KEY", ValueFrom: &v1.EnvVarSource{ConfigMapKeyRef: &v1.ConfigMapKeySelector{LocalObjectReference: v1.LocalObjectReference{Name: "cfg"}, Key: "zz", Optional: ptr(true)}}},
					{Name: "OPT_SECRET", ValueFrom: &v1.EnvVarSource{SecretKeyRef: &v1.SecretKeySelector{LocalObjectReference: v1.LocalObjectReference{Name: "nope"}, Key: "k", Optional: ptr(true)}}},
					{Name: "KUBERNETES_SERVICE_HOST", Value: "mine"},
				},
			},
			want: append([]cri.EnvVar{
				// envFrom config map keys, sorted
				{Name: "URL", Value: "http://$(HOST)"}, // values from envFrom are not expanded
				{Name: "a", Value: "alpha"},
				{Name: "b", Value: "overridden"},
				{Name: "S_pass", Value: "s3cret"},
				{Name: "S_user", Value: "admin"},
				{Name: "HOST", Value: "alpha.example"},
				{Name: "FULL", Value: "http://$(HOST) via 10.96.0.1 $(a) $(LATER)"},
				{Name: "LATER", Value: "late"},
				{Name: "FROM_CM", Value: "alpha"},
				{Name: "FROM_SECRET", Value: "s3cret"},
				{Name: "KUBERNETES_SERVICE_HOST", Value: "mine"},
			}, withoutName(k8sServiceEnv, "KUBERNETES_SERVICE_HOST")...),
		},
		{
			name: "field and resource refs",
			pod:  noLinks,
			c: v1.Container{
				Name: "main",
				Resources: v1.ResourceRequirements{
					Limits:   v1.ResourceList{v1.ResourceMemory: resource.MustParse("64Mi")},
					Requests: v1.ResourceList{v1.ResourceCPU: resource.MustParse("250m")},
				},
				Env: []v1.EnvVar{
					{Name: "NAME", ValueFrom: field("metadata.name")},
					{Name: "NS", ValueFrom: field("metadata.namespace")},
					{Name: "UID", ValueFrom: field("metadata.uid")},
					{Name: "APP", ValueFrom: field("metadata.labels['app']")},
					{Name: "NOTE", ValueFrom: field("metadata.annotations['note']")},
					{Name: "NODE", ValueFrom: field("spec.nodeName")},
					{Name: "SA", ValueFrom: field("spec.serviceAccountName")},
					{Name: "POD_IP", ValueFrom: field("status.podIP")},
					{Name: "POD_IPS", ValueFrom: field("status.podIPs")},
					{Name: "HOST_IP", ValueFrom: field("status.hostIP")},
					{Name: "HOST_IPS", ValueFrom: field("status.hostIPs")},
					{Name: "MEM_MI", ValueFrom: &v1.EnvVarSource{ResourceFieldRef: &v1.ResourceFieldSelector{Resource: "limits.memory", Divisor: resource.MustParse("1Mi")}}},
					{Name: "MEM", ValueFrom: &v1.EnvVarSource{ResourceFieldRef: &v1.ResourceFieldSelector{Resource: "limits.memory"}}},
					{Name: "CPU_LIMIT", ValueFrom: &v1.EnvVarSource{ResourceFieldRef: &v1.ResourceFieldSelector{Resource: "limits.cpu"}}},
					{Name: "CPU_REQ", ValueFrom: &v1.EnvVarSource{ResourceFieldRef: &v1.ResourceFieldSelector{Resource: "requests.cpu"}}},
					{Name: "CPU_REQ_M", ValueFrom: &v1.EnvVarSource{ResourceFieldRef: &v1.ResourceFieldSelector{Resource: "requests.cpu", Divisor: resource.MustParse("1m")}}},
				},
			},
			want: append([]cri.EnvVar{
				{Name: "NAME", Value: "web"},
				{Name: "NS", Value: "ns"},
				{Name: "UID", Value: "uid-1"},
				{Name: "APP", Value: "web"},
				{Name: "NOTE", Value: `say "hi"`},
				{Name: "NODE", Value: testNode},
				{Name: "SA", Value: "builder"},
				{Name: "POD_IP", Value: "10.244.0.5"},
				{Name: "POD_IPS", Value: "10.244.0.5,fd00::5"},
				{Name: "HOST_IP", Value: "192.168.1.10"},
				{Name: "HOST_IPS", Value: "192.168.1.10"},
				{Name: "MEM_MI", Value: "64"},
				{Name: "MEM", Value: "67108864"},
				{Name: "CPU_LIMIT", Value: "2"}, // node allocatable
				{Name: "CPU_REQ", Value: "1"},   // rounded up
				{Name: "CPU_REQ_M", Value: "250"},
			}, k8sServiceEnv...),
		},
		{
			name:    "missing config map",
			c:       v1.Container{EnvFrom: []v1.EnvFromSource{{ConfigMapRef: cmRef("missing", false)}}},
			wantErr: `configmap "missing" not found`,
		},
		{
			name: "missing secret key",
			c: v1.Container{Env: []v1.EnvVar{{Name: "P", ValueFrom: &v1.EnvVarSource{SecretKeyRef: &v1.SecretKeySelector{
				LocalObjectReference: v1.LocalObjectReference{Name: "sec"}, Key: "zz"}}}}},
			wantErr: `secret "sec" has no key "zz" (env "P")`,
		},
		{
			name: "missing secret",
			c: v1.Container{Env: []v1.EnvVar{{Name: "P", ValueFrom: &v1.EnvVarSource{SecretKeyRef: &v1.SecretKeySelector{
				LocalObjectReference: v1.LocalObjectReference{Name: "gone"}, Key: "zz"}}}}},
			wantErr: `secret "gone" not found`,
		},
		{
			name:    "unsupported field",
			c:       v1.Container{Env: []v1.EnvVar{{Name: "L", ValueFrom: field("metadata.labels")}}},
			wantErr: `env "L": unsupported fieldPath "metadata.labels" in an environment variable`,
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			pod := testPod()
			if tt.pod != nil {
				tt.pod(pod)
			}
			got, err := m.Env(context.Background(), pod, &tt.c)
			if tt.wantErr != "" {
				if err == nil || err.Error() != tt.wantErr {
					t.Fatalf("Env error = %v, want %q", err, tt.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatalf("Env: %v", err)
			}
			if diff := cmp.Diff(tt.want, got); diff != "" {
				t.Errorf("Env (-want +got):\n%s", diff)
			}
		})
	}
}

func TestEnvMissingObjectIsNotFound(t *testing.T) {
	t.Parallel()
	m, _ := newTestManager(t, fixtures()...)
	_, err := m.Env(context.Background(), testPod(), &v1.Container{EnvFrom: []v1.EnvFromSource{{SecretRef: &v1.SecretEnvSource{LocalObjectReference: v1.LocalObjectReference{Name: "x"}}}}})
	if !apierrors.IsNotFound(err) {
		t.Errorf("apierrors.IsNotFound(%v) = false, want true", err)
	}
}

func withoutName(env []cri.EnvVar, name string) []cri.EnvVar {
	var out []cri.EnvVar
	for _, e := range env {
		if e.Name != name {
			out = append(out, e)
		}
	}
	return out
}
