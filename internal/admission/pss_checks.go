package admission

import (
	"fmt"
	"slices"
	"strings"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
)

// This file holds the Pod Security Standards checks, as the upstream
// pod-security-admission library defines them at its latest version (the
// texts of reasons and details are upstream's so that messages match).
// They are pure functions of a pod's metadata and spec.

// Level is a Pod Security Standards level.
type Level string

// Levels, from least to most restrictive.
const (
	LevelPrivileged Level = "privileged"
	LevelBaseline   Level = "baseline"
	LevelRestricted Level = "restricted"
)

// Violation is one failed check: upstream's ForbiddenReason and
// ForbiddenDetail, shown as "reason (detail)".
type Violation struct {
	Reason string
	Detail string
}

func (v Violation) String() string {
	if v.Detail == "" {
		return v.Reason
	}
	return v.Reason + " (" + v.Detail + ")"
}

// pssCheck is one check; restricted checks run only at LevelRestricted.
type pssCheck struct {
	level Level
	run   func(meta *metav1.ObjectMeta, spec *corev1.PodSpec) *Violation
	// baselineOnly checks are replaced by a stricter one at restricted.
	baselineOnly bool
}

// pssChecks lists the checks in upstream's order, which is the order of
// the reasons in a message: baseline checks sorted by check ID, then
// restricted ones sorted by check ID (IDs in the comments).
func pssChecks() []pssCheck {
	return []pssCheck{
		{level: LevelBaseline, run: checkAppArmor},                            // appArmorProfile
		{level: LevelBaseline, run: checkBaselineVolumes, baselineOnly: true}, // baselineVolumes
		{level: LevelBaseline, run: checkCapabilitiesBaseline},                // capabilities_baseline
		{level: LevelBaseline, run: checkHostNamespaces},                      // hostNamespaces
		{level: LevelBaseline, run: checkHostPathVolumes, baselineOnly: true}, // hostPathVolumes
		{level: LevelBaseline, run: checkHostPorts},                           // hostPorts
		{level: LevelBaseline, run: checkPrivileged},                          // privileged
		{level: LevelBaseline, run: checkProcMount},                           // procMount
		{level: LevelBaseline, run: checkSELinux},                             // seLinuxOptions
		{level: LevelBaseline, run: checkSeccompBaseline, baselineOnly: true}, // seccompProfile_baseline
		{level: LevelBaseline, run: checkSysctls},                             // sysctls
		{level: LevelBaseline, run: checkHostProcess},                         // windowsHostProcess
		{level: LevelRestricted, run: checkAllowPrivilegeEscalation},          // allowPrivilegeEscalation
		{level: LevelRestricted, run: checkCapabilitiesRestricted},            // capabilities_restricted
		{level: LevelRestricted, run: checkRestrictedVolumes},                 // restrictedVolumes: overrides baselineVolumes, hostPathVolumes
		{level: LevelRestricted, run: checkRunAsNonRoot},                      // runAsNonRoot
		{level: LevelRestricted, run: checkRunAsUser},                         // runAsUser
		{level: LevelRestricted, run: checkSeccompRestricted},                 // seccompProfile_restricted: overrides seccompProfile_baseline
	}
}

// CheckPod evaluates a pod (or a pod template's metadata and spec)
// against level and returns the violations in upstream's order (nil when
// the pod is allowed). LevelPrivileged allows everything.
func CheckPod(level Level, meta *metav1.ObjectMeta, spec *corev1.PodSpec) []Violation {
	if level == LevelPrivileged {
		return nil
	}
	var out []Violation
	for _, c := range pssChecks() {
		if c.level == LevelRestricted && level != LevelRestricted {
			continue
		}
		if c.baselineOnly && level == LevelRestricted {
			continue
		}
		if v := c.run(meta, spec); v != nil {
			out = append(out, *v)
		}
	}
	return out
}

// visitContainers calls f for every init, regular and ephemeral container.
func visitContainers(spec *corev1.PodSpec, f func(c *corev1.Container)) {
	for i := range spec.InitContainers {
		f(&spec.InitContainers[i])
	}
	for i := range spec.Containers {
		f(&spec.Containers[i])
	}
	for i := range spec.EphemeralContainers {
		f((*corev1.Container)(&spec.EphemeralContainers[i].EphemeralContainerCommon))
	}
}

func pluralize(one, many string, n int) string {
	if n == 1 {
		return one
	}
	return many
}

func joinQuote(items []string) string {
	q := make([]string, len(items))
	for i, s := range items {
		q[i] = fmt.Sprintf("%q", s)
	}
	return strings.Join(q, ", ")
}

// containers formats `container "a"` / `containers "a", "b"`.
func containers(names []string) string {
	return pluralize("container", "containers", len(names)) + " " + joinQuote(names)
}

// sortedSet returns the distinct values in order.
func sortedSet(values []string) []string {
	out := slices.Clone(values)
	slices.Sort(out)
	return slices.Compact(out)
}

func isWindows(spec *corev1.PodSpec) bool {
	return spec.OS != nil && spec.OS.Name == corev1.Windows
}

// userNamespaced pods (hostUsers: false) get the relaxed runAsNonRoot,
// runAsUser and procMount checks, as upstream does since 1.34.
func userNamespaced(spec *corev1.PodSpec) bool {
	return spec.HostUsers != nil && !*spec.HostUsers
}

func checkAllowPrivilegeEscalation(_ *metav1.ObjectMeta, spec *corev1.PodSpec) *Violation {
	if isWindows(spec) {
		return nil
	}
	var bad []string
	visitContainers(spec, func(c *corev1.Container) {
		if c.SecurityContext == nil || c.SecurityContext.AllowPrivilegeEscalation == nil || *c.SecurityContext.AllowPrivilegeEscalation {
			bad = append(bad, c.Name)
		}
	})
	if len(bad) == 0 {
		return nil
	}
	return &Violation{"allowPrivilegeEscalation != false", containers(bad) + " must set securityContext.allowPrivilegeEscalation=false"}
}

func appArmorTypeAllowed(p *corev1.AppArmorProfile) bool {
	return p == nil || p.Type == corev1.AppArmorProfileTypeRuntimeDefault || p.Type == corev1.AppArmorProfileTypeLocalhost
}

func checkAppArmor(meta *metav1.ObjectMeta, spec *corev1.PodSpec) *Violation {
	var setters, values []string
	if spec.SecurityContext != nil && !appArmorTypeAllowed(spec.SecurityContext.AppArmorProfile) {
		setters = append(setters, "pod")
		values = append(values, string(spec.SecurityContext.AppArmorProfile.Type))
	}
	var bad []string
	visitContainers(spec, func(c *corev1.Container) {
		if c.SecurityContext != nil && !appArmorTypeAllowed(c.SecurityContext.AppArmorProfile) {
			bad = append(bad, c.Name)
			values = append(values, string(c.SecurityContext.AppArmorProfile.Type))
		}
	})
	if len(bad) > 0 {
		setters = append(setters, containers(bad))
	}
	var details []string
	if len(setters) > 0 {
		details = append(details, fmt.Sprintf("%s must not set securityContext.appArmorProfile.type to %s", strings.Join(setters, " and "), joinQuote(sortedSet(values))))
	}
	var annotations []string
	if meta != nil {
		for k, v := range meta.Annotations {
			if !strings.HasPrefix(k, corev1.DeprecatedAppArmorBetaContainerAnnotationKeyPrefix) {
				continue
			}
			if v == "" || v == corev1.DeprecatedAppArmorBetaProfileRuntimeDefault || strings.HasPrefix(v, corev1.DeprecatedAppArmorBetaProfileNamePrefix) {
				continue
			}
			annotations = append(annotations, fmt.Sprintf("%s=%q", k, v))
		}
	}
	slices.Sort(annotations)
	details = append(details, annotations...)
	if len(details) == 0 {
		return nil
	}
	n := len(setters) + len(annotations)
	return &Violation{pluralize("forbidden AppArmor profile", "forbidden AppArmor profiles", n), strings.Join(details, ", ")}
}

// baselineCapabilities may be added at baseline (Docker's defaults).
func baselineCapability(c corev1.Capability) bool {
	switch c {
	case "AUDIT_WRITE", "CHOWN", "DAC_OVERRIDE", "FOWNER", "FSETID", "KILL", "MKNOD", "NET_BIND_SERVICE",
		"SETFCAP", "SETGID", "SETPCAP", "SETUID", "SYS_CHROOT":
		return true
	}
	return false
}

func addedCapabilities(spec *corev1.PodSpec, allowed func(corev1.Capability) bool) (bad, caps []string) {
	visitContainers(spec, func(c *corev1.Container) {
		if c.SecurityContext == nil || c.SecurityContext.Capabilities == nil {
			return
		}
		found := false
		for _, cp := range c.SecurityContext.Capabilities.Add {
			if !allowed(cp) {
				caps = append(caps, string(cp))
				found = true
			}
		}
		if found {
			bad = append(bad, c.Name)
		}
	})
	return bad, sortedSet(caps)
}

func checkCapabilitiesBaseline(_ *metav1.ObjectMeta, spec *corev1.PodSpec) *Violation {
	bad, caps := addedCapabilities(spec, baselineCapability)
	if len(bad) == 0 {
		return nil
	}
	return &Violation{"non-default capabilities", fmt.Sprintf("%s must not include %s in securityContext.capabilities.add", containers(bad), joinQuote(caps))}
}

func checkCapabilitiesRestricted(_ *metav1.ObjectMeta, spec *corev1.PodSpec) *Violation {
	if isWindows(spec) {
		return nil
	}
	var missingDrop []string
	visitContainers(spec, func(c *corev1.Container) {
		if c.SecurityContext == nil || c.SecurityContext.Capabilities == nil || !slices.Contains(c.SecurityContext.Capabilities.Drop, "ALL") {
			missingDrop = append(missingDrop, c.Name)
		}
	})
	bad, caps := addedCapabilities(spec, func(c corev1.Capability) bool { return c == "NET_BIND_SERVICE" })
	var details []string
	if len(missingDrop) > 0 {
		details = append(details, containers(missingDrop)+` must set securityContext.capabilities.drop=["ALL"]`)
	}
	if len(bad) > 0 {
		details = append(details, fmt.Sprintf("%s must not include %s in securityContext.capabilities.add", containers(bad), joinQuote(caps)))
	}
	if len(details) == 0 {
		return nil
	}
	return &Violation{"unrestricted capabilities", strings.Join(details, "; ")}
}

func checkHostNamespaces(_ *metav1.ObjectMeta, spec *corev1.PodSpec) *Violation {
	var set []string
	if spec.HostNetwork {
		set = append(set, "hostNetwork=true")
	}
	if spec.HostPID {
		set = append(set, "hostPID=true")
	}
	if spec.HostIPC {
		set = append(set, "hostIPC=true")
	}
	if len(set) == 0 {
		return nil
	}
	return &Violation{"host namespaces", strings.Join(set, ", ")}
}

func checkHostPathVolumes(_ *metav1.ObjectMeta, spec *corev1.PodSpec) *Violation {
	var bad []string
	for _, v := range spec.Volumes {
		if v.HostPath != nil {
			bad = append(bad, v.Name)
		}
	}
	if len(bad) == 0 {
		return nil
	}
	return &Violation{"hostPath volumes", pluralize("volume", "volumes", len(bad)) + " " + joinQuote(bad)}
}

func checkHostPorts(_ *metav1.ObjectMeta, spec *corev1.PodSpec) *Violation {
	var bad, ports []string
	visitContainers(spec, func(c *corev1.Container) {
		found := false
		for _, p := range c.Ports {
			if p.HostPort != 0 {
				found = true
				ports = append(ports, fmt.Sprint(p.HostPort))
			}
		}
		if found {
			bad = append(bad, c.Name)
		}
	})
	if len(bad) == 0 {
		return nil
	}
	return &Violation{"hostPort", fmt.Sprintf("%s %s %s %s", containers(bad), pluralize("uses", "use", len(bad)),
		pluralize("hostPort", "hostPorts", len(ports)), strings.Join(ports, ", "))}
}

func checkPrivileged(_ *metav1.ObjectMeta, spec *corev1.PodSpec) *Violation {
	var bad []string
	visitContainers(spec, func(c *corev1.Container) {
		if c.SecurityContext != nil && c.SecurityContext.Privileged != nil && *c.SecurityContext.Privileged {
			bad = append(bad, c.Name)
		}
	})
	if len(bad) == 0 {
		return nil
	}
	return &Violation{"privileged", containers(bad) + " must not set securityContext.privileged=true"}
}

func checkProcMount(_ *metav1.ObjectMeta, spec *corev1.PodSpec) *Violation {
	if userNamespaced(spec) {
		return nil
	}
	var bad, types []string
	visitContainers(spec, func(c *corev1.Container) {
		if c.SecurityContext != nil && c.SecurityContext.ProcMount != nil && *c.SecurityContext.ProcMount != corev1.DefaultProcMount {
			bad = append(bad, c.Name)
			types = append(types, string(*c.SecurityContext.ProcMount))
		}
	})
	if len(bad) == 0 {
		return nil
	}
	return &Violation{"procMount", fmt.Sprintf("%s must not set securityContext.procMount to %s", containers(bad), joinQuote(sortedSet(types)))}
}

// restrictedVolumeType returns the type name of a volume the restricted
// level forbids ("" when allowed).
func restrictedVolumeType(v *corev1.Volume) string {
	switch {
	case v.ConfigMap != nil, v.CSI != nil, v.DownwardAPI != nil, v.EmptyDir != nil, v.Ephemeral != nil,
		v.PersistentVolumeClaim != nil, v.Projected != nil, v.Secret != nil:
		return ""
	case v.HostPath != nil:
		return "hostPath"
	case v.GCEPersistentDisk != nil:
		return "gcePersistentDisk"
	case v.AWSElasticBlockStore != nil:
		return "awsElasticBlockStore"
	case v.GitRepo != nil:
		return "gitRepo"
	case v.NFS != nil:
		return "nfs"
	case v.ISCSI != nil:
		return "iscsi"
	case v.Glusterfs != nil:
		return "glusterfs"
	case v.RBD != nil:
		return "rbd"
	case v.FlexVolume != nil:
		return "flexVolume"
	case v.Cinder != nil:
		return "cinder"
	case v.CephFS != nil:
		return "cephfs"
	case v.Flocker != nil:
		return "flocker"
	case v.FC != nil:
		return "fc"
	case v.AzureFile != nil:
		return "azureFile"
	case v.VsphereVolume != nil:
		return "vsphereVolume"
	case v.Quobyte != nil:
		return "quobyte"
	case v.AzureDisk != nil:
		return "azureDisk"
	case v.PhotonPersistentDisk != nil:
		return "photonPersistentDisk"
	case v.PortworxVolume != nil:
		return "portworxVolume"
	case v.ScaleIO != nil:
		return "scaleIO"
	case v.StorageOS != nil:
		return "storageos"
	}
	return "unknown"
}

// checkBaselineVolumes forbids gitRepo volumes (baseline since 1.31).
func checkBaselineVolumes(_ *metav1.ObjectMeta, spec *corev1.PodSpec) *Violation {
	var bad []string
	for _, v := range spec.Volumes {
		if v.GitRepo != nil {
			bad = append(bad, v.Name)
		}
	}
	if len(bad) == 0 {
		return nil
	}
	return &Violation{"restricted volume types", fmt.Sprintf("%s %s %s restricted volume type \"gitRepo\"",
		pluralize("volume", "volumes", len(bad)), joinQuote(bad), pluralize("uses", "use", len(bad)))}
}

func checkRestrictedVolumes(_ *metav1.ObjectMeta, spec *corev1.PodSpec) *Violation {
	var bad, types []string
	for i := range spec.Volumes {
		if t := restrictedVolumeType(&spec.Volumes[i]); t != "" {
			bad = append(bad, spec.Volumes[i].Name)
			types = append(types, t)
		}
	}
	if len(bad) == 0 {
		return nil
	}
	types = sortedSet(types)
	return &Violation{"restricted volume types", fmt.Sprintf("%s %s %s %s %s",
		pluralize("volume", "volumes", len(bad)), joinQuote(bad), pluralize("uses", "use", len(bad)),
		pluralize("restricted volume type", "restricted volume types", len(types)), joinQuote(types))}
}

func checkRunAsNonRoot(_ *metav1.ObjectMeta, spec *corev1.PodSpec) *Violation {
	if userNamespaced(spec) {
		return nil
	}
	var setters []string
	podNonRoot := false
	if spec.SecurityContext != nil && spec.SecurityContext.RunAsNonRoot != nil {
		if *spec.SecurityContext.RunAsNonRoot {
			podNonRoot = true
		} else {
			setters = append(setters, "pod")
		}
	}
	var explicit, implicit []string
	visitContainers(spec, func(c *corev1.Container) {
		if c.SecurityContext != nil && c.SecurityContext.RunAsNonRoot != nil {
			if !*c.SecurityContext.RunAsNonRoot {
				explicit = append(explicit, c.Name)
			}
		} else if !podNonRoot {
			implicit = append(implicit, c.Name)
		}
	})
	if len(explicit) > 0 {
		setters = append(setters, containers(explicit))
	}
	if len(setters) > 0 {
		return &Violation{"runAsNonRoot != true", strings.Join(setters, " and ") + " must not set securityContext.runAsNonRoot=false"}
	}
	if len(implicit) > 0 {
		return &Violation{"runAsNonRoot != true", "pod or " + containers(implicit) + " must set securityContext.runAsNonRoot=true"}
	}
	return nil
}

func checkRunAsUser(_ *metav1.ObjectMeta, spec *corev1.PodSpec) *Violation {
	if userNamespaced(spec) {
		return nil
	}
	var setters, bad []string
	if spec.SecurityContext != nil && spec.SecurityContext.RunAsUser != nil && *spec.SecurityContext.RunAsUser == 0 {
		setters = append(setters, "pod")
	}
	visitContainers(spec, func(c *corev1.Container) {
		if c.SecurityContext != nil && c.SecurityContext.RunAsUser != nil && *c.SecurityContext.RunAsUser == 0 {
			bad = append(bad, c.Name)
		}
	})
	if len(bad) > 0 {
		setters = append(setters, containers(bad))
	}
	if len(setters) == 0 {
		return nil
	}
	return &Violation{"runAsUser=0", strings.Join(setters, " and ") + " must not set runAsUser=0"}
}

func checkSELinux(_ *metav1.ObjectMeta, spec *corev1.PodSpec) *Violation {
	var (
		setters, types   []string
		setUser, setRole bool
	)
	valid := func(o *corev1.SELinuxOptions) bool {
		ok := true
		switch o.Type {
		case "", "container_t", "container_init_t", "container_kvm_t", "container_engine_t":
		default:
			types = append(types, o.Type)
			ok = false
		}
		if o.User != "" {
			setUser, ok = true, false
		}
		if o.Role != "" {
			setRole, ok = true, false
		}
		return ok
	}
	if spec.SecurityContext != nil && spec.SecurityContext.SELinuxOptions != nil && !valid(spec.SecurityContext.SELinuxOptions) {
		setters = append(setters, "pod")
	}
	var bad []string
	visitContainers(spec, func(c *corev1.Container) {
		if c.SecurityContext != nil && c.SecurityContext.SELinuxOptions != nil && !valid(c.SecurityContext.SELinuxOptions) {
			bad = append(bad, c.Name)
		}
	})
	if len(bad) > 0 {
		setters = append(setters, containers(bad))
	}
	if len(setters) == 0 {
		return nil
	}
	var data []string
	if types = sortedSet(types); len(types) > 0 {
		data = append(data, pluralize("type", "types", len(types))+" "+joinQuote(types))
	}
	if setUser {
		data = append(data, "user may not be set")
	}
	if setRole {
		data = append(data, "role may not be set")
	}
	return &Violation{"seLinuxOptions", fmt.Sprintf("%s set forbidden securityContext.seLinuxOptions: %s", strings.Join(setters, " and "), strings.Join(data, "; "))}
}

func checkSeccompBaseline(_ *metav1.ObjectMeta, spec *corev1.PodSpec) *Violation {
	var setters, bad []string
	if spec.SecurityContext != nil && spec.SecurityContext.SeccompProfile != nil && spec.SecurityContext.SeccompProfile.Type == corev1.SeccompProfileTypeUnconfined {
		setters = append(setters, "pod")
	}
	visitContainers(spec, func(c *corev1.Container) {
		if c.SecurityContext != nil && c.SecurityContext.SeccompProfile != nil && c.SecurityContext.SeccompProfile.Type == corev1.SeccompProfileTypeUnconfined {
			bad = append(bad, c.Name)
		}
	})
	if len(bad) > 0 {
		setters = append(setters, containers(bad))
	}
	if len(setters) == 0 {
		return nil
	}
	return &Violation{"seccompProfile", strings.Join(setters, " and ") + ` must not set securityContext.seccompProfile.type to "Unconfined"`}
}

func checkSeccompRestricted(_ *metav1.ObjectMeta, spec *corev1.PodSpec) *Violation {
	if isWindows(spec) {
		return nil
	}
	okType := func(p *corev1.SeccompProfile) bool {
		return p.Type == corev1.SeccompProfileTypeRuntimeDefault || p.Type == corev1.SeccompProfileTypeLocalhost
	}
	var setters, values []string
	podSet := false
	if spec.SecurityContext != nil && spec.SecurityContext.SeccompProfile != nil {
		if okType(spec.SecurityContext.SeccompProfile) {
			podSet = true
		} else {
			setters = append(setters, "pod")
			values = append(values, string(spec.SecurityContext.SeccompProfile.Type))
		}
	}
	var explicit, implicit []string
	visitContainers(spec, func(c *corev1.Container) {
		if c.SecurityContext != nil && c.SecurityContext.SeccompProfile != nil {
			if !okType(c.SecurityContext.SeccompProfile) {
				explicit = append(explicit, c.Name)
				values = append(values, string(c.SecurityContext.SeccompProfile.Type))
			}
		} else if !podSet {
			implicit = append(implicit, c.Name)
		}
	})
	if len(explicit) > 0 {
		setters = append(setters, containers(explicit))
	}
	if len(setters) > 0 {
		return &Violation{"seccompProfile", fmt.Sprintf("%s must not set securityContext.seccompProfile.type to %s", strings.Join(setters, " and "), joinQuote(sortedSet(values)))}
	}
	if len(implicit) > 0 {
		return &Violation{"seccompProfile", "pod or " + containers(implicit) + ` must set securityContext.seccompProfile.type to "RuntimeDefault" or "Localhost"`}
	}
	return nil
}

// safeSysctl: namespaced sysctls isolated from other pods (upstream's
// list as of 1.32).
func safeSysctl(name string) bool {
	switch name {
	case "kernel.shm_rmid_forced", "net.ipv4.ip_local_port_range", "net.ipv4.ip_unprivileged_port_start",
		"net.ipv4.tcp_syncookies", "net.ipv4.ping_group_range", "net.ipv4.ip_local_reserved_ports",
		"net.ipv4.tcp_keepalive_time", "net.ipv4.tcp_fin_timeout", "net.ipv4.tcp_keepalive_intvl",
		"net.ipv4.tcp_keepalive_probes", "net.ipv4.tcp_rmem", "net.ipv4.tcp_wmem":
		return true
	}
	return false
}

func checkSysctls(_ *metav1.ObjectMeta, spec *corev1.PodSpec) *Violation {
	if spec.SecurityContext == nil {
		return nil
	}
	var bad []string
	for _, s := range spec.SecurityContext.Sysctls {
		if !safeSysctl(s.Name) {
			bad = append(bad, s.Name)
		}
	}
	if len(bad) == 0 {
		return nil
	}
	return &Violation{"forbidden sysctls", strings.Join(bad, ", ")}
}

func checkHostProcess(_ *metav1.ObjectMeta, spec *corev1.PodSpec) *Violation {
	hostProcess := func(sc *corev1.WindowsSecurityContextOptions) bool {
		return sc != nil && sc.HostProcess != nil && *sc.HostProcess
	}
	var setters, bad []string
	if spec.SecurityContext != nil && hostProcess(spec.SecurityContext.WindowsOptions) {
		setters = append(setters, "pod")
	}
	visitContainers(spec, func(c *corev1.Container) {
		if c.SecurityContext != nil && hostProcess(c.SecurityContext.WindowsOptions) {
			bad = append(bad, c.Name)
		}
	})
	if len(bad) > 0 {
		setters = append(setters, containers(bad))
	}
	if len(setters) == 0 {
		return nil
	}
	return &Violation{"hostProcess", strings.Join(setters, " and ") + " must not set securityContext.windowsOptions.hostProcess=true"}
}
