package pods

import (
	"os"
	"path/filepath"
	"slices"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	v1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/resource"
	"k8s.io/utils/ptr"

	"github.com/skiff-dev/skiff/internal/agent/cri"
)

func TestExpand(t *testing.T) {
	t.Parallel()
	env := map[string]string{"A": "a", "EMPTY": ""}
	tests := []struct{ in, want string }{
		{"plain", "plain"},
		{"$(A)", "a"},
		{"x$(A)y$(A)", "xaya"},
		{"$(EMPTY)|", "|"},
		{"$(MISSING)", "$(MISSING)"},
		{"$$(A)", "$(A)"},
		{"$$", "$"},
		{"$A", "$A"},
		{"$(A", "$(A"},
		{"trailing$", "trailing$"},
	}
	for _, tt := range tests {
		if got := expand(tt.in, env); got != tt.want {
			t.Errorf("expand(%q) = %q, want %q", tt.in, got, tt.want)
		}
	}
}

func TestDNSConfig(t *testing.T) {
	t.Parallel()
	resolv := filepath.Join(t.TempDir(), "resolv.conf")
	if err := os.WriteFile(resolv, []byte("# comment\nnameserver 1.1.1.1\nnameserver 8.8.8.8\nsearch example.com corp\noptions edns0\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	five := "2"
	tests := []struct {
		name       string
		clusterDNS []string
		mutate     func(*v1.Pod)
		want       *cri.DNSConfig
	}{
		{
			name: "ClusterFirst", clusterDNS: []string{"10.96.0.10"},
			want: &cri.DNSConfig{Servers: []string{"10.96.0.10"}, Searches: []string{"ns.svc.cluster.local", "svc.cluster.local", "cluster.local", "example.com", "corp"}, Options: []string{"ndots:5"}},
		},
		{
			name: "ClusterFirst without cluster DNS is Default",
			want: &cri.DNSConfig{Servers: []string{"1.1.1.1", "8.8.8.8"}, Searches: []string{"example.com", "corp"}, Options: []string{"edns0"}},
		},
		{
			name: "ClusterFirst with host network is Default", clusterDNS: []string{"10.96.0.10"},
			mutate: func(p *v1.Pod) { p.Spec.HostNetwork = true },
			want:   &cri.DNSConfig{Servers: []string{"1.1.1.1", "8.8.8.8"}, Searches: []string{"example.com", "corp"}, Options: []string{"edns0"}},
		},
		{
			name: "ClusterFirstWithHostNet", clusterDNS: []string{"10.96.0.10"},
			mutate: func(p *v1.Pod) { p.Spec.HostNetwork, p.Spec.DNSPolicy = true, v1.DNSClusterFirstWithHostNet },
			want:   &cri.DNSConfig{Servers: []string{"10.96.0.10"}, Searches: []string{"ns.svc.cluster.local", "svc.cluster.local", "cluster.local", "example.com", "corp"}, Options: []string{"ndots:5"}},
		},
		{
			name: "None with dnsConfig", clusterDNS: []string{"10.96.0.10"},
			mutate: func(p *v1.Pod) {
				p.Spec.DNSPolicy = v1.DNSNone
				p.Spec.DNSConfig = &v1.PodDNSConfig{Nameservers: []string{"9.9.9.9"}, Searches: []string{"a.b"}, Options: []v1.PodDNSConfigOption{{Name: "ndots", Value: &five}}}
			},
			want: &cri.DNSConfig{Servers: []string{"9.9.9.9"}, Searches: []string{"a.b"}, Options: []string{"ndots:2"}},
		},
		{
			name: "dnsConfig merges into ClusterFirst", clusterDNS: []string{"10.96.0.10"},
			mutate: func(p *v1.Pod) {
				p.Spec.DNSConfig = &v1.PodDNSConfig{Nameservers: []string{"10.96.0.10", "9.9.9.9"}, Options: []v1.PodDNSConfigOption{{Name: "ndots", Value: &five}, {Name: "rotate"}}}
			},
			want: &cri.DNSConfig{Servers: []string{"10.96.0.10", "9.9.9.9"}, Searches: []string{"ns.svc.cluster.local", "svc.cluster.local", "cluster.local", "example.com", "corp"}, Options: []string{"ndots:2", "rotate"}},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			m := &Manager{cfg: Config{ClusterDNS: tt.clusterDNS, ClusterDomain: "cluster.local", ResolvConf: resolv}}
			pod := testPod("p")
			if tt.mutate != nil {
				tt.mutate(pod)
			}
			got, err := m.dnsConfig(pod)
			if err != nil {
				t.Fatal(err)
			}
			if diff := cmp.Diff(tt.want, got); diff != "" {
				t.Errorf("(-want +got):\n%s", diff)
			}
		})
	}
}

func TestHostsFileHostNetwork(t *testing.T) {
	t.Parallel()
	hosts := filepath.Join(t.TempDir(), "hosts")
	if err := os.WriteFile(hosts, []byte("127.0.0.1 localhost\n192.0.2.10 node-1"), 0o644); err != nil {
		t.Fatal(err)
	}
	m := &Manager{cfg: Config{HostsFile: hosts, ClusterDomain: "cluster.local"}}
	pod := testPod("p", func(p *v1.Pod) {
		p.Spec.HostNetwork = true
		p.Spec.HostAliases = []v1.HostAlias{{IP: "10.0.0.1", Hostnames: []string{"db"}}}
	})
	want := "127.0.0.1 localhost\n192.0.2.10 node-1\n\n# Entries added by HostAliases.\n10.0.0.1\tdb\n"
	if diff := cmp.Diff(want, string(m.hostsFile(pod, "192.0.2.10"))); diff != "" {
		t.Errorf("(-want +got):\n%s", diff)
	}
}

func TestResources(t *testing.T) {
	t.Parallel()
	rl := func(kv ...string) v1.ResourceList {
		l := v1.ResourceList{}
		for i := 0; i < len(kv); i += 2 {
			l[v1.ResourceName(kv[i])] = resource.MustParse(kv[i+1])
		}
		return l
	}
	tests := []struct {
		name string
		qos  v1.PodQOSClass
		res  v1.ResourceRequirements
		want cri.Resources
	}{
		{name: "best effort", qos: v1.PodQOSBestEffort, want: cri.Resources{CPUShares: 2, OOMScoreAdj: 1000}},
		{name: "guaranteed", qos: v1.PodQOSGuaranteed,
			res:  v1.ResourceRequirements{Requests: rl("cpu", "500m", "memory", "64Mi"), Limits: rl("cpu", "500m", "memory", "64Mi")},
			want: cri.Resources{CPUShares: 512, CPUQuota: 50000, CPUPeriod: 100000, MemoryLimitBytes: 64 << 20, OOMScoreAdj: -997}},
		{name: "tiny request", qos: v1.PodQOSBurstable, res: v1.ResourceRequirements{Requests: rl("cpu", "1m")},
			want: cri.Resources{CPUShares: 2, OOMScoreAdj: 999}},
		{name: "limit only", qos: v1.PodQOSBurstable, res: v1.ResourceRequirements{Limits: rl("cpu", "2", "memory", "32Mi")},
			want: cri.Resources{CPUShares: 2048, CPUQuota: 200000, CPUPeriod: 100000, MemoryLimitBytes: 32 << 20, OOMScoreAdj: 999}},
	}
	for _, tt := range tests {
		pod := testPod("p")
		pod.Status.QOSClass = tt.qos
		pod.Spec.Containers[0].Resources = tt.res
		if diff := cmp.Diff(&tt.want, resources(pod, &pod.Spec.Containers[0])); diff != "" {
			t.Errorf("%s (-want +got):\n%s", tt.name, diff)
		}
	}
}

func TestBackoff(t *testing.T) {
	t.Parallel()
	t0 := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	var b *backoff
	if w := b.wait(t0, t0); w != 0 {
		t.Errorf("first restart waits %v", w)
	}
	b = &backoff{}
	var delays []time.Duration
	finished := t0
	for range 8 {
		b.restarted(finished, time.Second)
		delays = append(delays, b.delay)
		finished = finished.Add(b.delay + time.Second)
	}
	want := []time.Duration{10 * time.Second, 20 * time.Second, 40 * time.Second, 80 * time.Second, 160 * time.Second, 300 * time.Second, 300 * time.Second, 300 * time.Second}
	if diff := cmp.Diff(want, delays); diff != "" {
		t.Errorf("delays (-want +got):\n%s", diff)
	}
	if w := b.wait(finished, finished.Add(100*time.Second)); w != 200*time.Second {
		t.Errorf("wait = %v, want 200s", w)
	}
	if w := b.wait(finished.Add(11*time.Minute), finished.Add(11*time.Minute)); w != 0 {
		t.Errorf("wait after a long pause = %v, want 0", w)
	}
	b.restarted(finished.Add(11*time.Minute), 11*time.Minute)
	if b.delay != 10*time.Second {
		t.Errorf("delay after a long run = %v, want 10s", b.delay)
	}
}

func TestContainerConfig(t *testing.T) {
	t.Parallel()
	e := newTestEnv(t, nil)
	uid, gid, root := int64(1000), int64(2000), int64(0)
	priv, ro := true, true
	pod := testPod("p", func(p *v1.Pod) {
		p.Spec.SecurityContext = &v1.PodSecurityContext{RunAsUser: &root, RunAsGroup: &gid}
		c := &p.Spec.Containers[0]
		c.Command = []string{"sh", "-c"}
		c.Args = []string{"echo $(GREETING) $$(GREETING) $(NOPE)"}
		c.Env = []v1.EnvVar{{Name: "GREETING", Value: "hi"}}
		c.WorkingDir = "/work"
		c.TTY, c.Stdin, c.StdinOnce = true, true, true
		c.SecurityContext = &v1.SecurityContext{RunAsUser: &uid, Privileged: &priv, ReadOnlyRootFilesystem: &ro}
	})
	e.sync(t, pod)
	s := &podSync{m: e.m, ps: e.m.pods[pod.UID], pod: pod, rt: &podRuntime{}, sb: &cri.Sandbox{ID: "sb", IP: "10.88.0.5"}}
	s.sbc.LogDir = e.m.logDir("ns", "p", pod.UID)
	s.hostsPath = "/hosts"
	got, err := s.containerConfig(t.Context(), &pod.Spec.Containers[0], 3)
	if err != nil {
		t.Fatal(err)
	}
	want := cri.ContainerConfig{
		Name: "main", Attempt: 3, Image: "busybox",
		Command: []string{"sh", "-c"}, Args: []string{"echo hi $(GREETING) $(NOPE)"}, WorkingDir: "/work",
		Env: []cri.EnvVar{{Name: "GREETING", Value: "hi"}},
		Mounts: []cri.Mount{
			{ContainerPath: "/etc/hosts", HostPath: "/hosts"},
			{ContainerPath: "/dev/termination-log", HostPath: filepath.Join(e.m.cfg.RootDir, "pods", "uid-p", "containers", "main", "3")},
		},
		Labels: map[string]string{
			"io.kubernetes.pod.name": "p", "io.kubernetes.pod.namespace": "ns", "io.kubernetes.pod.uid": "uid-p",
			"io.kubernetes.container.name": "main",
		},
		// The TTY is recorded for attach, which the CRI does not tell.
		Annotations: map[string]string{annotationGrace: "30", annotationImage: "busybox", cri.AnnotationTTY: "true"},
		LogPath:     "main/3.log",
		Stdin:       true, StdinOnce: true, TTY: true,
		Resources: &cri.Resources{CPUShares: 2, OOMScoreAdj: 1000},
		RunAsUser: &uid, RunAsGroup: &gid, Privileged: true, ReadOnlyRootFS: true,
	}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("(-want +got):\n%s", diff)
	}
	st, err := os.Stat(want.Mounts[1].HostPath)
	if err != nil || st.Mode().Perm() != 0o666 {
		t.Errorf("termination message file: %v, %v; want mode 0666", st, err)
	}
}

func TestSandboxConfig(t *testing.T) {
	t.Parallel()
	m := &Manager{cfg: Config{RootDir: "/root", ClusterDNS: []string{"10.96.0.10"}, ClusterDomain: "cluster.local", ResolvConf: "/nonexistent"}}
	pod := testPod("a-very-long-pod-name-that-goes-on-and-on-beyond-sixty-three-characters-x", func(p *v1.Pod) {
		p.Spec.Containers[0].Ports = []v1.ContainerPort{{ContainerPort: 80, HostPort: 8080, Protocol: v1.ProtocolTCP}, {ContainerPort: 53, Protocol: v1.ProtocolUDP}}
		p.Annotations = map[string]string{"a": "b"}
	})
	got, err := m.sandboxConfig(pod, 2)
	if err != nil {
		t.Fatal(err)
	}
	want := cri.SandboxConfig{
		Name: pod.Name, Namespace: "ns", UID: string(pod.UID), Attempt: 2,
		Hostname: "a-very-long-pod-name-that-goes-on-and-on-beyond-sixty-three-cha",
		LogDir:   "/root/logs/ns_" + pod.Name + "_" + string(pod.UID),
		DNS:      &cri.DNSConfig{Servers: []string{"10.96.0.10"}, Searches: []string{"ns.svc.cluster.local", "svc.cluster.local", "cluster.local"}, Options: []string{"ndots:5"}},
		Ports:    []cri.PortMapping{{Protocol: "TCP", ContainerPort: 80, HostPort: 8080}},
		Labels: map[string]string{"app": pod.Name, "io.kubernetes.pod.name": pod.Name, "io.kubernetes.pod.namespace": "ns",
			"io.kubernetes.pod.uid": string(pod.UID)},
		Annotations: map[string]string{"a": "b"},
	}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("(-want +got):\n%s", diff)
	}

	// A privileged container (init, app or ephemeral) makes the sandbox
	// privileged: containerd refuses it in an unprivileged one.
	for name, mutate := range map[string]func(p *v1.Pod){
		"app": func(p *v1.Pod) { p.Spec.Containers[0].SecurityContext = &v1.SecurityContext{Privileged: ptr.To(true)} },
		"init": func(p *v1.Pod) {
			p.Spec.InitContainers = []v1.Container{{Name: "i", SecurityContext: &v1.SecurityContext{Privileged: ptr.To(true)}}}
		},
		"ephemeral": func(p *v1.Pod) {
			p.Spec.EphemeralContainers = []v1.EphemeralContainer{{EphemeralContainerCommon: v1.EphemeralContainerCommon{Name: "e", SecurityContext: &v1.SecurityContext{Privileged: ptr.To(true)}}}}
		},
	} {
		got, err := m.sandboxConfig(testPod("p", mutate), 0)
		if err != nil || !got.Privileged {
			t.Errorf("%s container privileged: sandbox privileged %v (%v)", name, got.Privileged, err)
		}
	}
	unprivileged, _ := m.sandboxConfig(testPod("p", func(p *v1.Pod) {
		p.Spec.Containers[0].SecurityContext = &v1.SecurityContext{Privileged: ptr.To(false)}
	}), 0)
	if unprivileged.Privileged {
		t.Error("sandbox privileged without a privileged container")
	}
}

func TestSupplementalGroups(t *testing.T) {
	for _, tc := range []struct {
		sc   *v1.PodSecurityContext
		want []int64
	}{
		{nil, nil},
		{&v1.PodSecurityContext{SupplementalGroups: []int64{5, 6}}, []int64{5, 6}},
		{&v1.PodSecurityContext{SupplementalGroups: []int64{5}, FSGroup: ptr.To(int64(1001))}, []int64{5, 1001}},
		{&v1.PodSecurityContext{SupplementalGroups: []int64{1001}, FSGroup: ptr.To(int64(1001))}, []int64{1001}},
	} {
		pod := testPod("p", func(p *v1.Pod) { p.Spec.SecurityContext = tc.sc })
		if got := supplementalGroups(pod); !slices.Equal(got, tc.want) {
			t.Errorf("%+v: %v, want %v", tc.sc, got, tc.want)
		}
	}
}
