package builtin

import (
	"strings"

	corev1 "k8s.io/api/core/v1"
	"k8s.io/utils/ptr"
)

// defaultPodSpec applies the upstream defaults to a pod spec in place (used
// by pods and by every workload's pod template). It is idempotent. The
// pod-only defaults (enableServiceLinks, requests from limits) are
// defaultPod's, as upstream keeps them out of templates.
func defaultPodSpec(spec *corev1.PodSpec) {
	if spec.DNSPolicy == "" {
		spec.DNSPolicy = corev1.DNSClusterFirst
	}
	if spec.RestartPolicy == "" {
		spec.RestartPolicy = corev1.RestartPolicyAlways
	}
	if spec.SecurityContext == nil {
		spec.SecurityContext = &corev1.PodSecurityContext{}
	}
	if spec.TerminationGracePeriodSeconds == nil {
		spec.TerminationGracePeriodSeconds = ptr.To(int64(corev1.DefaultTerminationGracePeriodSeconds))
	}
	if spec.SchedulerName == "" {
		spec.SchedulerName = corev1.DefaultSchedulerName
	}
	// serviceAccount is the deprecated alias of serviceAccountName; the v1
	// conversion keeps the two equal.
	if spec.ServiceAccountName == "" {
		spec.ServiceAccountName = spec.DeprecatedServiceAccount
	}
	spec.DeprecatedServiceAccount = spec.ServiceAccountName

	for i := range spec.Volumes {
		defaultVolume(&spec.Volumes[i])
	}
	for i := range spec.InitContainers {
		defaultContainer(&spec.InitContainers[i])
	}
	for i := range spec.Containers {
		defaultContainer(&spec.Containers[i])
	}
	for i := range spec.EphemeralContainers {
		ec := &spec.EphemeralContainers[i].EphemeralContainerCommon
		if ec.TerminationMessagePath == "" {
			ec.TerminationMessagePath = corev1.TerminationMessagePathDefault
		}
		if ec.TerminationMessagePolicy == "" {
			ec.TerminationMessagePolicy = corev1.TerminationMessageReadFile
		}
		if ec.ImagePullPolicy == "" {
			ec.ImagePullPolicy = defaultPullPolicy(ec.Image)
		}
	}
}

func defaultVolume(v *corev1.Volume) {
	s := &v.VolumeSource
	if countVolumeSources(s) == 0 {
		s.EmptyDir = &corev1.EmptyDirVolumeSource{}
	}
	mode := int32(corev1.ConfigMapVolumeSourceDefaultMode)
	switch {
	case s.ConfigMap != nil:
		if s.ConfigMap.DefaultMode == nil {
			s.ConfigMap.DefaultMode = ptr.To(mode)
		}
	case s.Secret != nil:
		if s.Secret.DefaultMode == nil {
			s.Secret.DefaultMode = ptr.To(int32(corev1.SecretVolumeSourceDefaultMode))
		}
	case s.Projected != nil:
		if s.Projected.DefaultMode == nil {
			s.Projected.DefaultMode = ptr.To(int32(corev1.ProjectedVolumeSourceDefaultMode))
		}
		for j := range s.Projected.Sources {
			if sat := s.Projected.Sources[j].ServiceAccountToken; sat != nil && sat.ExpirationSeconds == nil {
				sat.ExpirationSeconds = ptr.To(int64(3600))
			}
			if da := s.Projected.Sources[j].DownwardAPI; da != nil {
				defaultDownwardAPIItems(da.Items)
			}
		}
	case s.DownwardAPI != nil:
		if s.DownwardAPI.DefaultMode == nil {
			s.DownwardAPI.DefaultMode = ptr.To(int32(corev1.DownwardAPIVolumeSourceDefaultMode))
		}
		defaultDownwardAPIItems(s.DownwardAPI.Items)
	case s.HostPath != nil:
		if s.HostPath.Type == nil {
			s.HostPath.Type = ptr.To(corev1.HostPathUnset)
		}
	case s.Image != nil:
		if s.Image.PullPolicy == "" {
			s.Image.PullPolicy = defaultPullPolicy(s.Image.Reference)
		}
	case s.ISCSI != nil:
		if s.ISCSI.ISCSIInterface == "" {
			s.ISCSI.ISCSIInterface = "default"
		}
	case s.RBD != nil:
		if s.RBD.RBDPool == "" {
			s.RBD.RBDPool = "rbd"
		}
		if s.RBD.RadosUser == "" {
			s.RBD.RadosUser = "admin"
		}
		if s.RBD.Keyring == "" {
			s.RBD.Keyring = "/etc/ceph/keyring"
		}
	case s.AzureDisk != nil:
		if s.AzureDisk.CachingMode == nil {
			s.AzureDisk.CachingMode = ptr.To(corev1.AzureDataDiskCachingReadWrite)
		}
		if s.AzureDisk.FSType == nil {
			s.AzureDisk.FSType = ptr.To("ext4")
		}
		if s.AzureDisk.ReadOnly == nil {
			s.AzureDisk.ReadOnly = ptr.To(false)
		}
		if s.AzureDisk.Kind == nil {
			s.AzureDisk.Kind = ptr.To(corev1.AzureSharedBlobDisk)
		}
	}
}

func defaultDownwardAPIItems(items []corev1.DownwardAPIVolumeFile) {
	for i := range items {
		if f := items[i].FieldRef; f != nil && f.APIVersion == "" {
			f.APIVersion = "v1"
		}
	}
}

func defaultContainer(c *corev1.Container) {
	if c.TerminationMessagePath == "" {
		c.TerminationMessagePath = corev1.TerminationMessagePathDefault
	}
	if c.TerminationMessagePolicy == "" {
		c.TerminationMessagePolicy = corev1.TerminationMessageReadFile
	}
	if c.ImagePullPolicy == "" {
		c.ImagePullPolicy = defaultPullPolicy(c.Image)
	}
	for i := range c.Ports {
		p := &c.Ports[i]
		if p.Protocol == "" {
			p.Protocol = corev1.ProtocolTCP
		}
	}
	for i := range c.Env {
		if vf := c.Env[i].ValueFrom; vf != nil && vf.FieldRef != nil && vf.FieldRef.APIVersion == "" {
			vf.FieldRef.APIVersion = "v1"
		}
	}
	roundResourceList(c.Resources.Limits)
	roundResourceList(c.Resources.Requests)
	defaultProbe(c.LivenessProbe)
	defaultProbe(c.ReadinessProbe)
	defaultProbe(c.StartupProbe)
	if c.Lifecycle != nil {
		defaultHandler(c.Lifecycle.PostStart)
		defaultHandler(c.Lifecycle.PreStop)
	}
}

// defaultRequestsFromLimits sets a request equal to the limit for every
// resource that has only a limit. Upstream does this for pods, not for
// pod templates.
func defaultRequestsFromLimits(r *corev1.ResourceRequirements) {
	if len(r.Limits) == 0 {
		return
	}
	if r.Requests == nil {
		r.Requests = corev1.ResourceList{}
	}
	for name, q := range r.Limits {
		if _, ok := r.Requests[name]; !ok {
			r.Requests[name] = q.DeepCopy()
		}
	}
}

// roundResourceList rounds every quantity up to milli precision, as
// upstream's SetDefaults_ResourceList does for every resource list.
func roundResourceList(rl corev1.ResourceList) {
	for name, q := range rl {
		if q.RoundUp(-3) {
			rl[name] = q
		}
	}
}

func defaultHandler(h *corev1.LifecycleHandler) {
	if h != nil {
		defaultHTTPGet(h.HTTPGet)
	}
}

func defaultHTTPGet(g *corev1.HTTPGetAction) {
	if g == nil {
		return
	}
	if g.Path == "" {
		g.Path = "/"
	}
	if g.Scheme == "" {
		g.Scheme = corev1.URISchemeHTTP
	}
}

func defaultProbe(p *corev1.Probe) {
	if p == nil {
		return
	}
	if p.TimeoutSeconds == 0 {
		p.TimeoutSeconds = 1
	}
	if p.PeriodSeconds == 0 {
		p.PeriodSeconds = 10
	}
	if p.SuccessThreshold == 0 {
		p.SuccessThreshold = 1
	}
	if p.FailureThreshold == 0 {
		p.FailureThreshold = 3
	}
	defaultHTTPGet(p.HTTPGet)
	if p.GRPC != nil && p.GRPC.Service == nil {
		p.GRPC.Service = ptr.To("")
	}
}

// defaultPullPolicy is Always for ":latest" or untagged images, otherwise
// IfNotPresent. Digests count as tags.
func defaultPullPolicy(image string) corev1.PullPolicy {
	if image == "" {
		return corev1.PullIfNotPresent
	}
	if strings.Contains(image, "@") {
		return corev1.PullIfNotPresent
	}
	ref := image
	if i := strings.LastIndex(ref, "/"); i >= 0 {
		ref = ref[i+1:]
	}
	i := strings.LastIndex(ref, ":")
	if i < 0 || ref[i+1:] == "latest" {
		return corev1.PullAlways
	}
	return corev1.PullIfNotPresent
}
