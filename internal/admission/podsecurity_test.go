package admission

import (
	"context"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
)

// restrictedPod passes the restricted level.
func restrictedPod(name string) *corev1.Pod {
	p := testPod(name)
	p.Spec.SecurityContext = &corev1.PodSecurityContext{
		RunAsNonRoot:   ptr(true),
		SeccompProfile: &corev1.SeccompProfile{Type: corev1.SeccompProfileTypeRuntimeDefault},
	}
	p.Spec.Containers[0].SecurityContext = &corev1.SecurityContext{
		AllowPrivilegeEscalation: ptr(false),
		Capabilities:             &corev1.Capabilities{Drop: []corev1.Capability{"ALL"}},
	}
	return p
}

func TestCheckPod(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name          string
		pod           func(p *corev1.Pod)
		wantBaseline  []string
		wantRestricts []string // beyond the baseline ones, in order, for a restrictedPod base
	}{
		{name: "restricted pod passes"},
		{
			name:          "privileged",
			pod:           func(p *corev1.Pod) { p.Spec.Containers[0].SecurityContext.Privileged = ptr(true) },
			wantBaseline:  []string{`privileged (container "c" must not set securityContext.privileged=true)`},
			wantRestricts: []string{`privileged (container "c" must not set securityContext.privileged=true)`},
		},
		{
			name: "host namespaces and ports",
			pod: func(p *corev1.Pod) {
				p.Spec.HostNetwork, p.Spec.HostPID, p.Spec.HostIPC = true, true, true
				p.Spec.Containers[0].Ports = []corev1.ContainerPort{{ContainerPort: 80, HostPort: 80}, {ContainerPort: 443, HostPort: 443}}
			},
			wantBaseline: []string{
				"host namespaces (hostNetwork=true, hostPID=true, hostIPC=true)",
				`hostPort (container "c" uses hostPorts 80, 443)`,
			},
			wantRestricts: []string{
				"host namespaces (hostNetwork=true, hostPID=true, hostIPC=true)",
				`hostPort (container "c" uses hostPorts 80, 443)`,
			},
		},
		{
			name: "capabilities",
			pod: func(p *corev1.Pod) {
				p.Spec.Containers[0].SecurityContext.Capabilities.Add = []corev1.Capability{"NET_ADMIN", "CHOWN", "NET_BIND_SERVICE"}
			},
			wantBaseline: []string{`non-default capabilities (container "c" must not include "NET_ADMIN" in securityContext.capabilities.add)`},
			wantRestricts: []string{
				`non-default capabilities (container "c" must not include "NET_ADMIN" in securityContext.capabilities.add)`,
				`unrestricted capabilities (container "c" must not include "CHOWN", "NET_ADMIN" in securityContext.capabilities.add)`,
			},
		},
		{
			name: "hostPath volume",
			pod: func(p *corev1.Pod) {
				p.Spec.Volumes = []corev1.Volume{{Name: "root", VolumeSource: corev1.VolumeSource{HostPath: &corev1.HostPathVolumeSource{Path: "/"}}}}
			},
			wantBaseline:  []string{`hostPath volumes (volume "root")`},
			wantRestricts: []string{`restricted volume types (volume "root" uses restricted volume type "hostPath")`},
		},
		{
			name: "gitRepo volumes",
			pod: func(p *corev1.Pod) {
				p.Spec.Volumes = []corev1.Volume{
					{Name: "a", VolumeSource: corev1.VolumeSource{GitRepo: &corev1.GitRepoVolumeSource{}}},
					{Name: "b", VolumeSource: corev1.VolumeSource{NFS: &corev1.NFSVolumeSource{}}},
				}
			},
			wantBaseline:  []string{`restricted volume types (volume "a" uses restricted volume type "gitRepo")`},
			wantRestricts: []string{`restricted volume types (volumes "a", "b" use restricted volume types "gitRepo", "nfs")`},
		},
		{
			name: "allowed volume types",
			pod: func(p *corev1.Pod) {
				p.Spec.Volumes = []corev1.Volume{
					{Name: "e", VolumeSource: corev1.VolumeSource{EmptyDir: &corev1.EmptyDirVolumeSource{}}},
					{Name: "s", VolumeSource: corev1.VolumeSource{Secret: &corev1.SecretVolumeSource{}}},
					{Name: "p", VolumeSource: corev1.VolumeSource{PersistentVolumeClaim: &corev1.PersistentVolumeClaimVolumeSource{}}},
				}
			},
		},
		{
			name: "apparmor, selinux, procMount, sysctls, hostProcess",
			pod: func(p *corev1.Pod) {
				sc := p.Spec.Containers[0].SecurityContext
				sc.AppArmorProfile = &corev1.AppArmorProfile{Type: corev1.AppArmorProfileTypeUnconfined}
				sc.SELinuxOptions = &corev1.SELinuxOptions{Type: "spc_t", User: "root"}
				sc.ProcMount = ptr(corev1.UnmaskedProcMount)
				sc.WindowsOptions = &corev1.WindowsSecurityContextOptions{HostProcess: ptr(true)}
				p.Spec.SecurityContext.Sysctls = []corev1.Sysctl{{Name: "kernel.msgmax", Value: "1"}, {Name: "net.ipv4.tcp_syncookies", Value: "1"}}
			},
			wantBaseline: []string{
				`forbidden AppArmor profile (container "c" must not set securityContext.appArmorProfile.type to "Unconfined")`,
				`procMount (container "c" must not set securityContext.procMount to "Unmasked")`,
				`seLinuxOptions (container "c" set forbidden securityContext.seLinuxOptions: type "spc_t"; user may not be set)`,
				"forbidden sysctls (kernel.msgmax)",
				`hostProcess (container "c" must not set securityContext.windowsOptions.hostProcess=true)`,
			},
			wantRestricts: []string{
				`forbidden AppArmor profile (container "c" must not set securityContext.appArmorProfile.type to "Unconfined")`,
				`procMount (container "c" must not set securityContext.procMount to "Unmasked")`,
				`seLinuxOptions (container "c" set forbidden securityContext.seLinuxOptions: type "spc_t"; user may not be set)`,
				"forbidden sysctls (kernel.msgmax)",
				`hostProcess (container "c" must not set securityContext.windowsOptions.hostProcess=true)`,
			},
		},
		{
			name: "apparmor annotation",
			pod: func(p *corev1.Pod) {
				p.Annotations = map[string]string{"container.apparmor.security.beta.kubernetes.io/c": "unconfined"}
			},
			wantBaseline:  []string{`forbidden AppArmor profile (container.apparmor.security.beta.kubernetes.io/c="unconfined")`},
			wantRestricts: []string{`forbidden AppArmor profile (container.apparmor.security.beta.kubernetes.io/c="unconfined")`},
		},
		{
			name: "seccomp unconfined",
			pod: func(p *corev1.Pod) {
				p.Spec.SecurityContext.SeccompProfile.Type = corev1.SeccompProfileTypeUnconfined
			},
			wantBaseline:  []string{`seccompProfile (pod must not set securityContext.seccompProfile.type to "Unconfined")`},
			wantRestricts: []string{`seccompProfile (pod must not set securityContext.seccompProfile.type to "Unconfined")`},
		},
		{
			name: "root user",
			pod: func(p *corev1.Pod) {
				p.Spec.SecurityContext.RunAsUser = ptr(int64(0))
				p.Spec.Containers[0].SecurityContext.RunAsNonRoot = ptr(false)
			},
			wantRestricts: []string{
				`runAsNonRoot != true (container "c" must not set securityContext.runAsNonRoot=false)`,
				"runAsUser=0 (pod must not set runAsUser=0)",
			},
		},
		{
			name: "user namespaces relax the root checks",
			pod: func(p *corev1.Pod) {
				p.Spec.HostUsers = ptr(false)
				p.Spec.SecurityContext.RunAsNonRoot = nil
				p.Spec.SecurityContext.RunAsUser = ptr(int64(0))
				p.Spec.Containers[0].SecurityContext.ProcMount = ptr(corev1.UnmaskedProcMount)
			},
		},
		{
			name: "windows pods skip linux-only restricted checks",
			pod: func(p *corev1.Pod) {
				p.Spec.OS = &corev1.PodOS{Name: corev1.Windows}
				p.Spec.SecurityContext.SeccompProfile = nil
				p.Spec.Containers[0].SecurityContext = nil
			},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			p := restrictedPod("p")
			if tt.pod != nil {
				tt.pod(p)
			}
			str := func(vs []Violation) []string {
				var out []string
				for _, v := range vs {
					out = append(out, v.String())
				}
				return out
			}
			if diff := cmp.Diff(tt.wantBaseline, str(CheckPod(LevelBaseline, &p.ObjectMeta, &p.Spec))); diff != "" {
				t.Errorf("baseline (-want +got):\n%s", diff)
			}
			if diff := cmp.Diff(tt.wantRestricts, str(CheckPod(LevelRestricted, &p.ObjectMeta, &p.Spec))); diff != "" {
				t.Errorf("restricted (-want +got):\n%s", diff)
			}
			if got := CheckPod(LevelPrivileged, &p.ObjectMeta, &p.Spec); got != nil {
				t.Errorf("privileged: %v", got)
			}
		})
	}
}

// TestCheckPodDefaultPod: a plain pod's restricted message, as upstream
// prints it for `kubectl run`.
func TestCheckPodDefaultPod(t *testing.T) {
	t.Parallel()
	p := testPod("p")
	got := joinViolations(CheckPod(LevelRestricted, &p.ObjectMeta, &p.Spec))
	want := `allowPrivilegeEscalation != false (container "c" must set securityContext.allowPrivilegeEscalation=false), ` +
		`unrestricted capabilities (container "c" must set securityContext.capabilities.drop=["ALL"]), ` +
		`runAsNonRoot != true (pod or container "c" must set securityContext.runAsNonRoot=true), ` +
		`seccompProfile (pod or container "c" must set securityContext.seccompProfile.type to "RuntimeDefault" or "Localhost")`
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("(-want +got):\n%s", diff)
	}
	if v := CheckPod(LevelBaseline, &p.ObjectMeta, &p.Spec); v != nil {
		t.Errorf("baseline: %v", v)
	}
}

func namespace(name string, labels map[string]string) *corev1.Namespace {
	return &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: name, Labels: labels}}
}

func privilegedPod(name string) *corev1.Pod {
	p := testPod(name)
	p.Spec.Containers[0].SecurityContext = &corev1.SecurityContext{Privileged: ptr(true)}
	return p
}

func TestPodSecurity(t *testing.T) {
	t.Parallel()
	restricted := map[string]string{PSSEnforceLabel: "restricted"}
	deployment := &appsv1.Deployment{ObjectMeta: metav1.ObjectMeta{Name: "d"}, Spec: appsv1.DeploymentSpec{Template: corev1.PodTemplateSpec{Spec: privilegedPod("").Spec}}}
	tests := []struct {
		name      string
		cfg       PodSecurityConfig
		ns        *corev1.Namespace
		objs      []runtime.Object
		req       *Request
		wantErr   string
		wantWarn  []string
		wantAudit map[string]string
	}{
		{
			name: "enforce restricted refuses a privileged pod",
			ns:   namespace("ns", restricted),
			req: podCreate("ns", func() *corev1.Pod {
				p := restrictedPod("x")
				p.Spec.Containers[0].SecurityContext.Privileged = ptr(true)
				return p
			}()),
			wantErr:   `403 pods "x" is forbidden: violates PodSecurity "restricted:latest": privileged (container "c" must not set securityContext.privileged=true)`,
			wantAudit: map[string]string{PSSEnforcePolicyAnnotation: "restricted:latest"},
		},
		{
			name:      "enforce restricted admits a restricted pod",
			ns:        namespace("ns", restricted),
			req:       podCreate("ns", restrictedPod("x")),
			wantAudit: map[string]string{PSSEnforcePolicyAnnotation: "restricted:latest"},
		},
		{
			name:      "pinned version is shown",
			ns:        namespace("ns", map[string]string{PSSEnforceLabel: "baseline", PSSEnforceVersionLabel: "v1.30"}),
			req:       podCreate("ns", privilegedPod("x")),
			wantErr:   `403 pods "x" is forbidden: violates PodSecurity "baseline:v1.30": privileged (container "c" must not set securityContext.privileged=true)`,
			wantAudit: map[string]string{PSSEnforcePolicyAnnotation: "baseline:v1.30"},
		},
		{
			name: "unlabelled namespace is privileged",
			ns:   namespace("ns", nil),
			req:  podCreate("ns", privilegedPod("x")),
		},
		{
			name:      "kube-system is not exempt by default",
			ns:        namespace("kube-system", map[string]string{PSSEnforceLabel: "baseline"}),
			req:       podCreate("kube-system", privilegedPod("x")),
			wantErr:   `403 pods "x" is forbidden: violates PodSecurity "baseline:latest": privileged (container "c" must not set securityContext.privileged=true)`,
			wantAudit: map[string]string{PSSEnforcePolicyAnnotation: "baseline:latest"},
		},
		{
			name:      "exempt namespace",
			cfg:       PodSecurityConfig{ExemptNamespaces: []string{"kube-system"}},
			ns:        namespace("kube-system", map[string]string{PSSEnforceLabel: "baseline"}),
			req:       podCreate("kube-system", privilegedPod("x")),
			wantAudit: map[string]string{PSSExemptAnnotation: "namespace"},
		},
		{
			name:     "warn and audit only",
			ns:       namespace("ns", map[string]string{PSSWarnLabel: "baseline", PSSAuditLabel: "baseline"}),
			req:      podCreate("ns", privilegedPod("x")),
			wantWarn: []string{`would violate PodSecurity "baseline:latest": privileged (container "c" must not set securityContext.privileged=true)`},
			wantAudit: map[string]string{
				PSSAuditViolationsAnnotation: `would violate PodSecurity "baseline:latest": privileged (container "c" must not set securityContext.privileged=true)`,
			},
		},
		{
			name:      "invalid level fails closed",
			ns:        namespace("ns", map[string]string{PSSEnforceLabel: "bogus"}),
			req:       podCreate("ns", testPod("x")),
			wantErr:   `403 pods "x" is forbidden: violates PodSecurity "restricted:latest": allowPrivilegeEscalation != false (container "c" must set securityContext.allowPrivilegeEscalation=false), unrestricted capabilities (container "c" must set securityContext.capabilities.drop=["ALL"]), runAsNonRoot != true (pod or container "c" must set securityContext.runAsNonRoot=true), seccompProfile (pod or container "c" must set securityContext.seccompProfile.type to "RuntimeDefault" or "Localhost")`,
			wantAudit: map[string]string{PSSEnforcePolicyAnnotation: "restricted:latest"},
		},
		{
			name: "label-only pod update is not re-evaluated",
			ns:   namespace("ns", restricted),
			req: &Request{Operation: Update, Namespace: "ns", Name: "x", Resource: gvr("", "pods"),
				Object: func() *corev1.Pod { p := privilegedPod("x"); p.Labels = map[string]string{"a": "b"}; return p }(), OldObject: privilegedPod("x")},
		},
		{
			name: "image update is re-evaluated",
			ns:   namespace("ns", restricted),
			req: &Request{Operation: Update, Namespace: "ns", Name: "x", Resource: gvr("", "pods"),
				Object: func() *corev1.Pod { p := privilegedPod("x"); p.Spec.Containers[0].Image = "new"; return p }(), OldObject: privilegedPod("x")},
			wantErr:   `403 pods "x" is forbidden: violates PodSecurity "restricted:latest": `,
			wantAudit: map[string]string{PSSEnforcePolicyAnnotation: "restricted:latest"},
		},
		{
			name: "status updates are ignored",
			ns:   namespace("ns", restricted),
			req: &Request{Operation: Update, Namespace: "ns", Name: "x", Resource: gvr("", "pods"), Subresource: "status",
				Object: privilegedPod("x"), OldObject: privilegedPod("x")},
		},
		{
			name:     "workloads only warn",
			ns:       namespace("ns", map[string]string{PSSEnforceLabel: "baseline", PSSWarnLabel: "restricted"}),
			req:      &Request{Operation: Create, Namespace: "ns", Name: "d", Resource: gvr("apps", "deployments"), Object: deployment},
			wantWarn: []string{`would violate PodSecurity "baseline:latest": privileged (container "c" must not set securityContext.privileged=true)`, `would violate PodSecurity "restricted:latest": `},
		},
		{
			name:    "invalid namespace labels are refused",
			req:     &Request{Operation: Create, Name: "ns2", Resource: gvr("", "namespaces"), Object: namespace("ns2", map[string]string{PSSEnforceLabel: "strict", PSSWarnVersionLabel: "1.30"})},
			wantErr: `422 Namespace "ns2" is invalid: [metadata.labels[pod-security.kubernetes.io/enforce]: Unsupported value: "strict": supported values: "privileged", "baseline", "restricted", metadata.labels[pod-security.kubernetes.io/warn-version]: Invalid value: "1.30": must be "latest" or "v1.x"]`,
		},
		{
			name: "tightening enforce warns about existing pods",
			objs: []runtime.Object{privilegedPod("bad"), restrictedPod("good")},
			req: &Request{Operation: Update, Name: "ns", Resource: gvr("", "namespaces"),
				Object: namespace("ns", map[string]string{PSSEnforceLabel: "baseline"}), OldObject: namespace("ns", nil)},
			wantWarn: []string{`existing pods in namespace "ns" violate the new PodSecurity enforce level "baseline:latest"`, "bad: privileged"},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			objs := tt.objs
			if tt.ns != nil {
				objs = append(objs, tt.ns)
			}
			plugin := NewPodSecurity(tt.cfg, nil, newClient(objs...))
			err := NewChain(plugin).Admit(context.Background(), tt.req)
			if diff := cmp.Diff(tt.wantErr, upToPrefix(errText(t, err), tt.wantErr)); diff != "" {
				t.Errorf("error (-want +got):\n%s", diff)
			}
			var warn []string
			for i, w := range tt.req.Warnings {
				if i < len(tt.wantWarn) {
					w = upToPrefix(w, tt.wantWarn[i])
				}
				warn = append(warn, w)
			}
			if diff := cmp.Diff(tt.wantWarn, warn); diff != "" {
				t.Errorf("warnings (-want +got):\n%s", diff)
			}
			if diff := cmp.Diff(tt.wantAudit, tt.req.AuditAnnotations); diff != "" {
				t.Errorf("audit annotations (-want +got):\n%s", diff)
			}
		})
	}
}

// upToPrefix cuts got to want's length when want ends in ": " (a test
// that checks only the start of a long message) and got starts with it.
func upToPrefix(got, want string) string {
	if strings.HasSuffix(want, ": ") && strings.HasPrefix(got, want) {
		return want
	}
	return got
}
