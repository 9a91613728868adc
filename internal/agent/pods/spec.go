package pods

import (
	"bufio"
	"bytes"
	"fmt"
	"os"
	"slices"
	"strconv"
	"strings"

	v1 "k8s.io/api/core/v1"

	"github.com/skiff-dev/skiff/internal/agent/cri"
)

// Upstream's resolv.conf limits.
const (
	maxDNSServers  = 3
	maxDNSSearches = 32
)

// podLabels are the CRI labels of a pod's sandbox; containers add their
// name.
func podLabels(pod *v1.Pod) map[string]string {
	l := make(map[string]string, len(pod.Labels)+3)
	for k, v := range pod.Labels {
		l[k] = v
	}
	l[LabelPodName] = pod.Name
	l[LabelPodNamespace] = pod.Namespace
	l[LabelPodUID] = string(pod.UID)
	return l
}

// hostname returns the pod's hostname (spec.hostname or its name, at most
// 63 characters) and its domain (<subdomain>.<ns>.svc.<domain>, or "").
func hostname(pod *v1.Pod, clusterDomain string) (string, string) {
	h := pod.Spec.Hostname
	if h == "" {
		h = pod.Name
	}
	if len(h) > 63 {
		h = strings.TrimRight(h[:63], "-.")
	}
	domain := ""
	if pod.Spec.Subdomain != "" {
		domain = pod.Spec.Subdomain + "." + pod.Namespace + ".svc." + clusterDomain
	}
	return h, domain
}

// sandboxConfig returns the CRI sandbox configuration of pod.
func (m *Manager) sandboxConfig(pod *v1.Pod, attempt uint32) (cri.SandboxConfig, error) {
	dns, err := m.dnsConfig(pod)
	if err != nil {
		return cri.SandboxConfig{}, err
	}
	cfg := cri.SandboxConfig{
		Name: pod.Name, Namespace: pod.Namespace, UID: string(pod.UID), Attempt: attempt,
		LogDir:      m.logDir(pod.Namespace, pod.Name, pod.UID),
		HostNetwork: pod.Spec.HostNetwork, HostPID: pod.Spec.HostPID, HostIPC: pod.Spec.HostIPC,
		ShareProcessNamespace: pod.Spec.ShareProcessNamespace != nil && *pod.Spec.ShareProcessNamespace,
		DNS:                   dns,
		Labels:                podLabels(pod),
		Annotations:           pod.Annotations,
	}
	if !pod.Spec.HostNetwork {
		cfg.Hostname, _ = hostname(pod, m.cfg.ClusterDomain)
	}
	for _, c := range allContainers(pod) {
		for _, p := range c.Ports {
			if p.HostPort == 0 {
				continue
			}
			cfg.Ports = append(cfg.Ports, cri.PortMapping{
				Protocol: string(p.Protocol), ContainerPort: p.ContainerPort, HostPort: p.HostPort, HostIP: p.HostIP,
			})
		}
	}
	cfg.Privileged = hasPrivilegedContainer(pod)
	if sc := pod.Spec.SecurityContext; sc != nil && len(sc.Sysctls) > 0 {
		cfg.Sysctls = map[string]string{}
		for _, s := range sc.Sysctls {
			cfg.Sysctls[s.Name] = s.Value
		}
	}
	return cfg, nil
}

// hasPrivilegedContainer reports whether any init, app or ephemeral
// container of pod is privileged, as the kubelet decides a privileged
// sandbox.
func hasPrivilegedContainer(pod *v1.Pod) bool {
	privileged := func(sc *v1.SecurityContext) bool {
		return sc != nil && sc.Privileged != nil && *sc.Privileged
	}
	for _, c := range allContainers(pod) {
		if privileged(c.SecurityContext) {
			return true
		}
	}
	for i := range pod.Spec.EphemeralContainers {
		if privileged(pod.Spec.EphemeralContainers[i].SecurityContext) {
			return true
		}
	}
	return false
}

// allContainers returns the pod's init and app containers, in that order.
func allContainers(pod *v1.Pod) []*v1.Container {
	out := make([]*v1.Container, 0, len(pod.Spec.InitContainers)+len(pod.Spec.Containers))
	for i := range pod.Spec.InitContainers {
		out = append(out, &pod.Spec.InitContainers[i])
	}
	for i := range pod.Spec.Containers {
		out = append(out, &pod.Spec.Containers[i])
	}
	return out
}

// containerSpec finds a container of pod by name, ephemeral containers
// included (as a copy); nil if there is none.
func containerSpec(pod *v1.Pod, name string) *v1.Container {
	if pod == nil {
		return nil
	}
	for _, c := range allContainers(pod) {
		if c.Name == name {
			return c
		}
	}
	for i := range pod.Spec.EphemeralContainers {
		if ec := &pod.Spec.EphemeralContainers[i]; ec.Name == name {
			c := v1.Container(ec.EphemeralContainerCommon)
			return &c
		}
	}
	return nil
}

// dnsConfig returns the resolv.conf of pod per its dnsPolicy and dnsConfig.
func (m *Manager) dnsConfig(pod *v1.Pod) (*cri.DNSConfig, error) {
	policy := pod.Spec.DNSPolicy
	if policy == "" {
		policy = v1.DNSClusterFirst
	}
	if policy == v1.DNSClusterFirst && pod.Spec.HostNetwork {
		policy = v1.DNSDefault
	}
	if (policy == v1.DNSClusterFirst || policy == v1.DNSClusterFirstWithHostNet) && len(m.cfg.ClusterDNS) == 0 {
		policy = v1.DNSDefault
	}
	out := &cri.DNSConfig{}
	switch policy {
	case v1.DNSNone:
	case v1.DNSDefault:
		host, err := readResolvConf(m.cfg.ResolvConf)
		if err != nil {
			return nil, err
		}
		out = host
	default: // ClusterFirst, ClusterFirstWithHostNet
		host, err := readResolvConf(m.cfg.ResolvConf)
		if err != nil {
			return nil, err
		}
		d := m.cfg.ClusterDomain
		out.Servers = slices.Clone(m.cfg.ClusterDNS)
		out.Searches = append([]string{pod.Namespace + ".svc." + d, "svc." + d, d}, host.Searches...)
		out.Options = []string{"ndots:5"}
	}
	if dc := pod.Spec.DNSConfig; dc != nil {
		out.Servers = append(out.Servers, dc.Nameservers...)
		out.Searches = append(out.Searches, dc.Searches...)
		for _, o := range dc.Options {
			opt := o.Name
			if o.Value != nil {
				opt += ":" + *o.Value
			}
			out.Options = slices.DeleteFunc(out.Options, func(s string) bool {
				name, _, _ := strings.Cut(s, ":")
				return name == o.Name
			})
			out.Options = append(out.Options, opt)
		}
	}
	out.Servers = dedupe(out.Servers)
	out.Searches = dedupe(out.Searches)
	if len(out.Servers) > maxDNSServers {
		out.Servers = out.Servers[:maxDNSServers]
	}
	if len(out.Searches) > maxDNSSearches {
		out.Searches = out.Searches[:maxDNSSearches]
	}
	return out, nil
}

func dedupe(s []string) []string {
	seen := map[string]bool{}
	return slices.DeleteFunc(s, func(x string) bool {
		if seen[x] {
			return true
		}
		seen[x] = true
		return false
	})
}

// readResolvConf parses the nameserver, search and options lines of a
// resolv.conf; a missing file is empty.
func readResolvConf(path string) (*cri.DNSConfig, error) {
	b, err := os.ReadFile(path)
	if os.IsNotExist(err) {
		return &cri.DNSConfig{}, nil
	}
	if err != nil {
		return nil, fmt.Errorf("reading resolv.conf: %w", err)
	}
	out := &cri.DNSConfig{}
	sc := bufio.NewScanner(bytes.NewReader(b))
	for sc.Scan() {
		f := strings.Fields(sc.Text())
		if len(f) == 0 || strings.HasPrefix(f[0], "#") || strings.HasPrefix(f[0], ";") {
			continue
		}
		switch f[0] {
		case "nameserver":
			if len(f) > 1 {
				out.Servers = append(out.Servers, f[1])
			}
		case "search", "domain":
			out.Searches = f[1:]
		case "options":
			out.Options = append(out.Options, f[1:]...)
		}
	}
	return out, nil
}

// hostsFile returns the /etc/hosts of a pod whose IP is podIP.
func (m *Manager) hostsFile(pod *v1.Pod, podIP string) []byte {
	var b bytes.Buffer
	if pod.Spec.HostNetwork {
		host, _ := os.ReadFile(m.cfg.HostsFile)
		b.Write(host)
		if len(host) > 0 && host[len(host)-1] != '\n' {
			b.WriteByte('\n')
		}
	} else {
		b.WriteString("# Kubernetes-managed hosts file.\n" +
			"127.0.0.1\tlocalhost\n" +
			"::1\tlocalhost ip6-localhost ip6-loopback\n" +
			"fe00::0\tip6-localnet\n" +
			"fe00::0\tip6-mcastprefix\n" +
			"fe00::1\tip6-allnodes\n" +
			"fe00::2\tip6-allrouters\n")
		if podIP != "" {
			h, domain := hostname(pod, m.cfg.ClusterDomain)
			if domain != "" {
				fmt.Fprintf(&b, "%s\t%s.%s\t%s\n", podIP, h, domain, h)
			} else {
				fmt.Fprintf(&b, "%s\t%s\n", podIP, h)
			}
		}
	}
	if len(pod.Spec.HostAliases) > 0 {
		b.WriteString("\n# Entries added by HostAliases.\n")
		for _, a := range pod.Spec.HostAliases {
			fmt.Fprintf(&b, "%s\t%s\n", a.IP, strings.Join(a.Hostnames, "\t"))
		}
	}
	return b.Bytes()
}

// expand replaces $(VAR) in s by env's value of VAR; $$ is a literal $,
// and a reference to an undefined variable stays as written.
func expand(s string, env map[string]string) string {
	if !strings.Contains(s, "$") {
		return s
	}
	var b strings.Builder
	for i := 0; i < len(s); i++ {
		if s[i] != '$' || i+1 >= len(s) {
			b.WriteByte(s[i])
			continue
		}
		switch s[i+1] {
		case '$':
			b.WriteByte('$')
			i++
		case '(':
			end := strings.IndexByte(s[i+2:], ')')
			if end < 0 {
				b.WriteString(s[i:])
				return b.String()
			}
			name := s[i+2 : i+2+end]
			if v, ok := env[name]; ok {
				b.WriteString(v)
			} else {
				b.WriteString(s[i : i+3+end])
			}
			i += 2 + end
		default:
			b.WriteByte('$')
		}
	}
	return b.String()
}

// resources returns the cgroup settings for c: CPU shares from the request
// (from the limit if only that is set; 2 at least), a CFS quota from the
// CPU limit over a 100ms period, the memory limit, and an OOM score
// adjustment by the pod's QoS class.
func resources(pod *v1.Pod, c *v1.Container) *cri.Resources {
	r := &cri.Resources{CPUShares: 2}
	req, lim := c.Resources.Requests.Cpu(), c.Resources.Limits.Cpu()
	if req.IsZero() {
		req = lim
	}
	if !req.IsZero() {
		r.CPUShares = max(req.MilliValue()*1024/1000, 2)
	}
	if !lim.IsZero() {
		r.CPUPeriod = 100000
		r.CPUQuota = max(lim.MilliValue()*r.CPUPeriod/1000, 1000)
	}
	if mem := c.Resources.Limits.Memory(); !mem.IsZero() {
		r.MemoryLimitBytes = mem.Value()
	}
	switch pod.Status.QOSClass {
	case v1.PodQOSGuaranteed:
		r.OOMScoreAdj = -997
	case v1.PodQOSBestEffort:
		r.OOMScoreAdj = 1000
	default:
		// Burstable: upstream scales by the memory request over the node's
		// capacity; without the capacity at hand, the middle of its range.
		r.OOMScoreAdj = 999
		if mem := c.Resources.Requests.Memory(); !mem.IsZero() {
			r.OOMScoreAdj = 500
		}
	}
	return r
}

// runAs returns the user and group c runs as (container over pod
// security context; nil: the image's).
func runAs(pod *v1.Pod, c *v1.Container) (user, group *int64) {
	if psc := pod.Spec.SecurityContext; psc != nil {
		user, group = psc.RunAsUser, psc.RunAsGroup
	}
	if sc := c.SecurityContext; sc != nil {
		if sc.RunAsUser != nil {
			user = sc.RunAsUser
		}
		if sc.RunAsGroup != nil {
			group = sc.RunAsGroup
		}
	}
	return user, group
}

// supplementalGroups are the groups every container of pod gets besides
// its own: securityContext.supplementalGroups and the fsGroup, which owns
// the pod's volumes, as the kubelet adds them.
func supplementalGroups(pod *v1.Pod) []int64 {
	psc := pod.Spec.SecurityContext
	if psc == nil {
		return nil
	}
	groups := slices.Clone(psc.SupplementalGroups)
	if psc.FSGroup != nil && !slices.Contains(groups, *psc.FSGroup) {
		groups = append(groups, *psc.FSGroup)
	}
	return groups
}

// gracePeriod returns how long containers of pod get between the stop
// signal and SIGKILL, at least 2s as upstream.
func gracePeriod(pod *v1.Pod) int64 {
	g := int64(v1.DefaultTerminationGracePeriodSeconds)
	switch {
	case pod == nil:
		g = 2
	case pod.DeletionGracePeriodSeconds != nil:
		g = *pod.DeletionGracePeriodSeconds
	case pod.Spec.TerminationGracePeriodSeconds != nil:
		g = *pod.Spec.TerminationGracePeriodSeconds
	}
	return max(g, 2)
}

// graceFromAnnotations reads the grace period recorded on a container, for
// pods whose object is gone.
func graceFromAnnotations(a map[string]string) int64 {
	if g, err := strconv.ParseInt(a[annotationGrace], 10, 64); err == nil {
		return max(g, 2)
	}
	return 2
}
