package builtin

import (
	"context"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/resource"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/util/intstr"
	"k8s.io/apimachinery/pkg/util/validation/field"
	"k8s.io/utils/ptr"

	"github.com/skiff-dev/skiff/internal/registry"
)

// coreResource finds a core/v1 resource by plural name.
func coreResource(t *testing.T, plural string) *registry.Resource {
	t.Helper()
	for _, r := range coreResources() {
		if r.GVR.Resource == plural {
			return r
		}
	}
	t.Fatalf("no core resource %q", plural)
	return nil
}

// fieldErrs renders errors as "field: type" for comparison.
func fieldErrs(errs field.ErrorList) []string {
	var out []string
	for _, e := range errs {
		out = append(out, e.Field+": "+e.Type.String())
	}
	return out
}

func minimalPod() *corev1.Pod {
	return &corev1.Pod{
		ObjectMeta: metav1.ObjectMeta{Name: "p", Namespace: "default"},
		Spec:       corev1.PodSpec{Containers: []corev1.Container{{Name: "c", Image: "nginx"}}},
	}
}

func TestPodDefaults(t *testing.T) {
	p := minimalPod()
	p.Spec.Containers[0].Ports = []corev1.ContainerPort{{ContainerPort: 80}}
	p.Spec.Containers[0].Resources.Limits = corev1.ResourceList{corev1.ResourceCPU: resource.MustParse("1")}
	p.Spec.Containers[0].LivenessProbe = &corev1.Probe{ProbeHandler: corev1.ProbeHandler{HTTPGet: &corev1.HTTPGetAction{Port: intstr.FromInt32(80)}}}
	p.Spec.Containers[0].Env = []corev1.EnvVar{{Name: "N", ValueFrom: &corev1.EnvVarSource{FieldRef: &corev1.ObjectFieldSelector{FieldPath: "metadata.name"}}}}
	p.Spec.InitContainers = []corev1.Container{{Name: "i", Image: "busybox:1.36"}}
	p.Spec.Volumes = []corev1.Volume{
		{Name: "cm", VolumeSource: corev1.VolumeSource{ConfigMap: &corev1.ConfigMapVolumeSource{LocalObjectReference: corev1.LocalObjectReference{Name: "x"}}}},
		{Name: "empty"},
		{Name: "hp", VolumeSource: corev1.VolumeSource{HostPath: &corev1.HostPathVolumeSource{Path: "/tmp"}}},
	}
	s := coreResource(t, "pods").Strategy
	s.PrepareForCreate(context.Background(), p)
	s.Default(p)
	once := p.DeepCopy()
	s.Default(p)
	if diff := cmp.Diff(once, p); diff != "" {
		t.Fatalf("defaulting twice differs from once (-once +twice):\n%s", diff)
	}

	got := p.Spec
	c := got.Containers[0]
	checks := []struct {
		name      string
		got, want any
	}{
		{"restartPolicy", got.RestartPolicy, corev1.RestartPolicyAlways},
		{"dnsPolicy", got.DNSPolicy, corev1.DNSClusterFirst},
		{"schedulerName", got.SchedulerName, "default-scheduler"},
		{"terminationGracePeriodSeconds", *got.TerminationGracePeriodSeconds, int64(30)},
		{"securityContext", *got.SecurityContext, corev1.PodSecurityContext{}},
		{"enableServiceLinks", *got.EnableServiceLinks, true},
		{"terminationMessagePath", c.TerminationMessagePath, "/dev/termination-log"},
		{"terminationMessagePolicy", c.TerminationMessagePolicy, corev1.TerminationMessageReadFile},
		{"imagePullPolicy untagged", c.ImagePullPolicy, corev1.PullAlways},
		{"imagePullPolicy tagged", got.InitContainers[0].ImagePullPolicy, corev1.PullIfNotPresent},
		{"port protocol", c.Ports[0].Protocol, corev1.ProtocolTCP},
		{"probe timeout", c.LivenessProbe.TimeoutSeconds, int32(1)},
		{"probe period", c.LivenessProbe.PeriodSeconds, int32(10)},
		{"probe success", c.LivenessProbe.SuccessThreshold, int32(1)},
		{"probe failure", c.LivenessProbe.FailureThreshold, int32(3)},
		{"probe scheme", c.LivenessProbe.HTTPGet.Scheme, corev1.URISchemeHTTP},
		{"probe path", c.LivenessProbe.HTTPGet.Path, "/"},
		{"fieldRef apiVersion", c.Env[0].ValueFrom.FieldRef.APIVersion, "v1"},
		{"requests from limits", c.Resources.Requests.Cpu().String(), "1"},
		{"configMap defaultMode", *got.Volumes[0].ConfigMap.DefaultMode, int32(420)},
		{"emptyDir", got.Volumes[1].EmptyDir != nil, true},
		{"hostPath type", *got.Volumes[2].HostPath.Type, corev1.HostPathUnset},
		{"phase", p.Status.Phase, corev1.PodPending},
		{"qos", p.Status.QOSClass, corev1.PodQOSBurstable},
	}
	for _, ch := range checks {
		if diff := cmp.Diff(ch.want, ch.got); diff != "" {
			t.Errorf("%s (-want +got):\n%s", ch.name, diff)
		}
	}
}

func TestDefaultPullPolicy(t *testing.T) {
	tests := map[string]corev1.PullPolicy{
		"nginx":                 corev1.PullAlways,
		"nginx:latest":          corev1.PullAlways,
		"nginx:1.25":            corev1.PullIfNotPresent,
		"localhost:5000/app":    corev1.PullAlways,
		"localhost:5000/app:v1": corev1.PullIfNotPresent,
		"nginx@sha256:" + strings.Repeat("a", 64): corev1.PullIfNotPresent,
	}
	for image, want := range tests {
		t.Run(image, func(t *testing.T) {
			if got := defaultPullPolicy(image); got != want {
				t.Errorf("defaultPullPolicy(%q) = %q, want %q", image, got, want)
			}
		})
	}
}

func TestPodQOSClass(t *testing.T) {
	rl := func(cpu, mem string) corev1.ResourceList {
		out := corev1.ResourceList{}
		if cpu != "" {
			out[corev1.ResourceCPU] = resource.MustParse(cpu)
		}
		if mem != "" {
			out[corev1.ResourceMemory] = resource.MustParse(mem)
		}
		return out
	}
	tests := []struct {
		name string
		res  corev1.ResourceRequirements
		want corev1.PodQOSClass
	}{
		{"none", corev1.ResourceRequirements{}, corev1.PodQOSBestEffort},
		{"limits only", corev1.ResourceRequirements{Limits: rl("1", "1Gi")}, corev1.PodQOSGuaranteed},
		{"equal", corev1.ResourceRequirements{Limits: rl("1", "1Gi"), Requests: rl("1", "1Gi")}, corev1.PodQOSGuaranteed},
		{"lower requests", corev1.ResourceRequirements{Limits: rl("1", "1Gi"), Requests: rl("500m", "1Gi")}, corev1.PodQOSBurstable},
		{"requests only", corev1.ResourceRequirements{Requests: rl("100m", "")}, corev1.PodQOSBurstable},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			spec := &corev1.PodSpec{Containers: []corev1.Container{{Name: "c", Resources: tt.res}}}
			if got := podQOSClass(spec); got != tt.want {
				t.Errorf("podQOSClass = %q, want %q", got, tt.want)
			}
		})
	}
}

func TestPodValidate(t *testing.T) {
	tests := []struct {
		name   string
		mutate func(p *corev1.Pod)
		want   []string
	}{
		{"valid", func(p *corev1.Pod) {}, nil},
		{"no containers", func(p *corev1.Pod) { p.Spec.Containers = nil }, []string{"spec.containers: Required value"}},
		{"no image", func(p *corev1.Pod) { p.Spec.Containers[0].Image = "" }, []string{"spec.containers[0].image: Required value"}},
		{"bad container name", func(p *corev1.Pod) { p.Spec.Containers[0].Name = "Web_1" }, []string{"spec.containers[0].name: Invalid value"}},
		{"duplicate container name", func(p *corev1.Pod) {
			p.Spec.InitContainers = []corev1.Container{{Name: "c", Image: "x"}}
		}, []string{"spec.containers[0].name: Duplicate value"}},
		{"port zero", func(p *corev1.Pod) {
			p.Spec.Containers[0].Ports = []corev1.ContainerPort{{ContainerPort: 0}}
		}, []string{"spec.containers[0].ports[0].containerPort: Required value"}},
		{"port too big", func(p *corev1.Pod) {
			p.Spec.Containers[0].Ports = []corev1.ContainerPort{{ContainerPort: 70000}}
		}, []string{"spec.containers[0].ports[0].containerPort: Invalid value"}},
		{"bad protocol", func(p *corev1.Pod) {
			p.Spec.Containers[0].Ports = []corev1.ContainerPort{{ContainerPort: 80, Protocol: "ICMP"}}
		}, []string{"spec.containers[0].ports[0].protocol: Unsupported value"}},
		{"restart policy", func(p *corev1.Pod) { p.Spec.RestartPolicy = "Sometimes" }, []string{"spec.restartPolicy: Unsupported value"}},
		{"mount of unknown volume", func(p *corev1.Pod) {
			p.Spec.Containers[0].VolumeMounts = []corev1.VolumeMount{{Name: "data", MountPath: "/data"}}
		}, []string{"spec.containers[0].volumeMounts[0].name: Not found"}},
		{"duplicate volume", func(p *corev1.Pod) {
			p.Spec.Volumes = []corev1.Volume{{Name: "v"}, {Name: "v"}}
			defaultPodSpec(&p.Spec)
		}, []string{"spec.volumes[1].name: Duplicate value"}},
		{"two volume sources", func(p *corev1.Pod) {
			p.Spec.Volumes = []corev1.Volume{{Name: "v", VolumeSource: corev1.VolumeSource{
				EmptyDir: &corev1.EmptyDirVolumeSource{}, HostPath: &corev1.HostPathVolumeSource{Path: "/x"}}}}
		}, []string{"spec.volumes[0]: Forbidden"}},
		{"requests above limits", func(p *corev1.Pod) {
			p.Spec.Containers[0].Resources = corev1.ResourceRequirements{
				Limits:   corev1.ResourceList{corev1.ResourceMemory: resource.MustParse("1Gi")},
				Requests: corev1.ResourceList{corev1.ResourceMemory: resource.MustParse("2Gi")},
			}
		}, []string{"spec.containers[0].resources.requests[memory]: Invalid value"}},
		{"unknown resource", func(p *corev1.Pod) {
			p.Spec.Containers[0].Resources.Requests = corev1.ResourceList{"gpu": resource.MustParse("1")}
		}, []string{"spec.containers[0].resources.requests[gpu]: Invalid value"}},
		{"toleration without key", func(p *corev1.Pod) {
			p.Spec.Tolerations = []corev1.Toleration{{Operator: corev1.TolerationOpEqual, Value: "x"}}
		}, []string{"spec.tolerations[0].operator: Invalid value"}},
	}
	s := coreResource(t, "pods").Strategy
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			p := minimalPod()
			tt.mutate(p)
			s.Default(p)
			got := fieldErrs(s.Validate(context.Background(), p))
			if diff := cmp.Diff(tt.want, got); diff != "" {
				t.Errorf("errors (-want +got):\n%s", diff)
			}
		})
	}
}

func TestPodValidateUpdate(t *testing.T) {
	tests := []struct {
		name   string
		mutate func(p *corev1.Pod)
		want   []string
	}{
		{"image change", func(p *corev1.Pod) { p.Spec.Containers[0].Image = "nginx:2" }, nil},
		{"add toleration", func(p *corev1.Pod) {
			p.Spec.Tolerations = append(p.Spec.Tolerations, corev1.Toleration{Key: "k", Operator: corev1.TolerationOpExists})
		}, nil},
		{"set deadline", func(p *corev1.Pod) { p.Spec.ActiveDeadlineSeconds = ptr.To(int64(10)) }, nil},
		{"change restart policy", func(p *corev1.Pod) { p.Spec.RestartPolicy = corev1.RestartPolicyNever }, []string{"spec: Forbidden"}},
		{"change node name", func(p *corev1.Pod) { p.Spec.NodeName = "n2" }, []string{"spec: Forbidden"}},
		{"add container", func(p *corev1.Pod) {
			p.Spec.Containers = append(p.Spec.Containers, corev1.Container{Name: "d", Image: "x", ImagePullPolicy: "Always", TerminationMessagePolicy: "File"})
		}, []string{"spec: Forbidden"}},
	}
	s := coreResource(t, "pods").Strategy
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			old := minimalPod()
			s.Default(old)
			p := old.DeepCopy()
			tt.mutate(p)
			got := fieldErrs(s.ValidateUpdate(context.Background(), p, old))
			if diff := cmp.Diff(tt.want, got); diff != "" {
				t.Errorf("errors (-want +got):\n%s", diff)
			}
		})
	}
}

func TestPodGracefulDeletion(t *testing.T) {
	tests := []struct {
		name         string
		nodeName     string
		phase        corev1.PodPhase
		tgps         *int64
		requested    *int64
		wantGrace    int64
		wantGraceful bool
	}{
		{"unscheduled", "", corev1.PodPending, nil, nil, 0, false},
		{"running default", "n1", corev1.PodRunning, nil, nil, 30, true},
		{"running spec", "n1", corev1.PodRunning, ptr.To(int64(5)), nil, 5, true},
		{"running requested", "n1", corev1.PodRunning, ptr.To(int64(5)), ptr.To(int64(0)), 0, true},
		{"succeeded", "n1", corev1.PodSucceeded, nil, nil, 0, false},
		{"failed", "n1", corev1.PodFailed, nil, nil, 0, false},
	}
	s := coreResource(t, "pods").Strategy
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			p := minimalPod()
			p.Spec.NodeName = tt.nodeName
			p.Spec.TerminationGracePeriodSeconds = tt.tgps
			p.Status.Phase = tt.phase
			grace, graceful := s.GracefulDeletion(p, tt.requested)
			if grace != tt.wantGrace || graceful != tt.wantGraceful {
				t.Errorf("GracefulDeletion = (%d, %v), want (%d, %v)", grace, graceful, tt.wantGrace, tt.wantGraceful)
			}
		})
	}
}

func TestPodRow(t *testing.T) {
	now := time.Date(2026, 1, 1, 12, 0, 0, 0, time.UTC)
	created := metav1.NewTime(now.Add(-5 * time.Minute))
	running := corev1.ContainerState{Running: &corev1.ContainerStateRunning{}}
	tests := []struct {
		name string
		pod  func(p *corev1.Pod)
		want []any
	}{
		{"pending unscheduled", func(p *corev1.Pod) {}, []any{"p", "0/1", "Pending", "0", "5m", "<none>", "<none>", "<none>", "<none>"}},
		{"container creating", func(p *corev1.Pod) {
			p.Spec.NodeName = "n1"
			p.Status.ContainerStatuses = []corev1.ContainerStatus{{Name: "c", State: corev1.ContainerState{Waiting: &corev1.ContainerStateWaiting{Reason: "ContainerCreating"}}}}
		}, []any{"p", "0/1", "ContainerCreating", "0", "5m", "<none>", "n1", "<none>", "<none>"}},
		{"running", func(p *corev1.Pod) {
			p.Spec.NodeName = "n1"
			p.Status.Phase = corev1.PodRunning
			p.Status.PodIP = "10.0.0.5"
			p.Status.PodIPs = []corev1.PodIP{{IP: "10.0.0.5"}}
			p.Status.ContainerStatuses = []corev1.ContainerStatus{{Name: "c", Ready: true, State: running}}
		}, []any{"p", "1/1", "Running", "0", "5m", "10.0.0.5", "n1", "<none>", "<none>"}},
		{"crash loop", func(p *corev1.Pod) {
			p.Spec.NodeName = "n1"
			p.Status.Phase = corev1.PodRunning
			p.Status.ContainerStatuses = []corev1.ContainerStatus{{
				Name: "c", RestartCount: 4,
				State:                corev1.ContainerState{Waiting: &corev1.ContainerStateWaiting{Reason: "CrashLoopBackOff"}},
				LastTerminationState: corev1.ContainerState{Terminated: &corev1.ContainerStateTerminated{ExitCode: 1, FinishedAt: metav1.NewTime(now.Add(-90 * time.Second))}},
			}}
		}, []any{"p", "0/1", "CrashLoopBackOff", "4 (90s ago)", "5m", "<none>", "n1", "<none>", "<none>"}},
		{"completed", func(p *corev1.Pod) {
			p.Spec.NodeName = "n1"
			p.Status.Phase = corev1.PodSucceeded
			p.Status.ContainerStatuses = []corev1.ContainerStatus{{Name: "c", State: corev1.ContainerState{Terminated: &corev1.ContainerStateTerminated{Reason: "Completed"}}}}
		}, []any{"p", "0/1", "Completed", "0", "5m", "<none>", "n1", "<none>", "<none>"}},
		{"init waiting", func(p *corev1.Pod) {
			p.Spec.NodeName = "n1"
			p.Spec.InitContainers = []corev1.Container{{Name: "i1"}, {Name: "i2"}}
			p.Status.InitContainerStatuses = []corev1.ContainerStatus{
				{Name: "i1", State: corev1.ContainerState{Terminated: &corev1.ContainerStateTerminated{ExitCode: 0}}},
				{Name: "i2", State: running},
			}
			p.Status.ContainerStatuses = []corev1.ContainerStatus{{Name: "c", State: corev1.ContainerState{Waiting: &corev1.ContainerStateWaiting{Reason: "PodInitializing"}}}}
		}, []any{"p", "0/1", "Init:1/2", "0", "5m", "<none>", "n1", "<none>", "<none>"}},
		{"init failed", func(p *corev1.Pod) {
			p.Spec.InitContainers = []corev1.Container{{Name: "i1"}}
			p.Status.InitContainerStatuses = []corev1.ContainerStatus{
				{Name: "i1", State: corev1.ContainerState{Terminated: &corev1.ContainerStateTerminated{ExitCode: 2}}},
			}
		}, []any{"p", "0/1", "Init:ExitCode:2", "0", "5m", "<none>", "<none>", "<none>", "<none>"}},
		{"terminating", func(p *corev1.Pod) {
			p.Spec.NodeName = "n1"
			p.Status.Phase = corev1.PodRunning
			p.DeletionTimestamp = &created
			p.Status.ContainerStatuses = []corev1.ContainerStatus{{Name: "c", Ready: true, State: running}}
		}, []any{"p", "1/1", "Terminating", "0", "5m", "<none>", "n1", "<none>", "<none>"}},
		{"readiness gates", func(p *corev1.Pod) {
			p.Spec.ReadinessGates = []corev1.PodReadinessGate{{ConditionType: "a"}, {ConditionType: "b"}}
			p.Status.Conditions = []corev1.PodCondition{{Type: "a", Status: corev1.ConditionTrue}}
		}, []any{"p", "0/1", "Pending", "0", "5m", "<none>", "<none>", "<none>", "1/2"}},
	}
	cols := coreResource(t, "pods").Strategy.Table().Columns
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			p := minimalPod()
			p.CreationTimestamp = created
			p.Status.Phase = corev1.PodPending
			tt.pod(p)
			got := podRow(p, now)
			if len(got) != len(cols) {
				t.Fatalf("row has %d cells, table has %d columns", len(got), len(cols))
			}
			if diff := cmp.Diff(tt.want, got); diff != "" {
				t.Errorf("row (-want +got):\n%s", diff)
			}
		})
	}
}

func TestPodTemplateDefaultsOmitPodOnlyFields(t *testing.T) {
	spec := corev1.PodSpec{Containers: []corev1.Container{{
		Name: "c", Image: "nginx:1",
		Resources: corev1.ResourceRequirements{Limits: corev1.ResourceList{corev1.ResourceCPU: resource.MustParse("1")}},
	}}}
	defaultPodSpec(&spec)
	if spec.EnableServiceLinks != nil {
		t.Errorf("template enableServiceLinks = %v, want unset", *spec.EnableServiceLinks)
	}
	if spec.Containers[0].Resources.Requests != nil {
		t.Errorf("template requests = %v, want unset", spec.Containers[0].Resources.Requests)
	}
	if spec.RestartPolicy != corev1.RestartPolicyAlways || *spec.TerminationGracePeriodSeconds != 30 {
		t.Errorf("template spec defaults missing: %+v", spec)
	}
}

func TestPodStatusUpdate(t *testing.T) {
	s := coreResource(t, "pods").Strategy
	old := minimalPod()
	old.Status.Phase = corev1.PodSucceeded
	p := old.DeepCopy()
	p.Status.Phase = corev1.PodRunning
	p.Status.PodIPs = []corev1.PodIP{{IP: "not-an-ip"}}
	got := fieldErrs(s.ValidateStatusUpdate(context.Background(), p, old))
	want := []string{"status.phase: Forbidden", "status.podIPs[0].ip: Invalid value"}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("errors (-want +got):\n%s", diff)
	}
}

func TestValidateEphemeralContainersUpdate(t *testing.T) {
	base := &corev1.Pod{
		ObjectMeta: metav1.ObjectMeta{Name: "p", Namespace: "ns"},
		Spec:       corev1.PodSpec{Containers: []corev1.Container{{Name: "app", Image: "busybox"}}},
	}
	defaultPod(base)
	debugger := func(name, target string) corev1.EphemeralContainer {
		ec := corev1.EphemeralContainer{
			EphemeralContainerCommon: corev1.EphemeralContainerCommon{Name: name, Image: "busybox"},
			TargetContainerName:      target,
		}
		return ec
	}
	withEph := func(ecs ...corev1.EphemeralContainer) *corev1.Pod {
		p := base.DeepCopy()
		p.Spec.EphemeralContainers = ecs
		defaultPod(p)
		return p
	}
	tests := []struct {
		name     string
		old, new *corev1.Pod
		want     []string // substrings of the errors, in order; none: valid
	}{
		{name: "add one", old: base, new: withEph(debugger("dbg", "app"))},
		{name: "add a second", old: withEph(debugger("dbg", "")), new: withEph(debugger("dbg", ""), debugger("dbg2", ""))},
		{name: "name taken by a container", old: base, new: withEph(debugger("app", "")),
			want: []string{`spec.ephemeralContainers[0].name: Duplicate value: "app"`}},
		{name: "unknown target", old: base, new: withEph(debugger("dbg", "nope")),
			want: []string{`spec.ephemeralContainers[0].targetContainerName: Not found: "nope"`}},
		{name: "ports", old: base, new: func() *corev1.Pod {
			ec := debugger("dbg", "")
			ec.Ports = []corev1.ContainerPort{{ContainerPort: 80}}
			return withEph(ec)
		}(), want: []string{"spec.ephemeralContainers[0].ports: Forbidden: cannot be set for an Ephemeral Container"}},
		{name: "removing one", old: withEph(debugger("dbg", "")), new: base,
			want: []string{`spec.ephemeralContainers[0]: Forbidden: existing ephemeral containers "dbg" may not be removed or changed`}},
		{name: "changing one", old: withEph(debugger("dbg", "")), new: func() *corev1.Pod {
			ec := debugger("dbg", "")
			ec.Image = "other"
			return withEph(ec)
		}(), want: []string{`existing ephemeral containers "dbg" may not be removed or changed`}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			errs := validateEphemeralContainersUpdate(tt.new, tt.old)
			if len(errs) != len(tt.want) {
				t.Fatalf("errors = %v, want %d like %q", errs, len(tt.want), tt.want)
			}
			for i, w := range tt.want {
				if !strings.Contains(errs[i].Error(), w) {
					t.Errorf("error %d = %q, want it to contain %q", i, errs[i].Error(), w)
				}
			}
		})
	}
}

func TestPodSysctlNames(t *testing.T) {
	r := coreResource(t, "pods")
	pod := &corev1.Pod{
		ObjectMeta: metav1.ObjectMeta{Name: "p", Namespace: "ns"},
		Spec: corev1.PodSpec{
			Containers: []corev1.Container{{Name: "c", Image: "busybox"}},
			SecurityContext: &corev1.PodSecurityContext{Sysctls: []corev1.Sysctl{
				{Name: "foo-", Value: "bar"},
				{Name: "kernel.shmmax", Value: "100000000"},
				{Name: "safe-and-unsafe", Value: "100000000"},
				{Name: "bar..", Value: "42"},
				{Name: "net/ipv4/ip_forward", Value: "1"},
				{Name: "net.ipv4.ip_forward", Value: "1"},
			}},
		},
	}
	got := fieldErrs(create(t, r, pod))
	want := []string{
		"spec.securityContext.sysctls[0].name: Invalid value",
		"spec.securityContext.sysctls[3].name: Invalid value",
		"spec.securityContext.sysctls[5].name: Duplicate value",
	}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("(-want +got):\n%s", diff)
	}
}
