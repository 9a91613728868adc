package node

import (
	corev1 "k8s.io/api/core/v1"
	"k8s.io/component-helpers/storage/ephemeral"
)

// refs are the names a pod (or persistent volume) references in its own
// namespace, by kind. Pure data; build it with podRefs or pvSecrets.
type refs struct {
	secrets, configMaps, claims map[string]bool
	serviceAccount              string
}

func (r *refs) addSecret(name string) {
	if name == "" {
		return
	}
	if r.secrets == nil {
		r.secrets = map[string]bool{}
	}
	r.secrets[name] = true
}

func (r *refs) addConfigMap(name string) {
	if name == "" {
		return
	}
	if r.configMaps == nil {
		r.configMaps = map[string]bool{}
	}
	r.configMaps[name] = true
}

func (r *refs) addClaim(name string) {
	if name == "" {
		return
	}
	if r.claims == nil {
		r.claims = map[string]bool{}
	}
	r.claims[name] = true
}

func (r *refs) addSecretRef(ref *corev1.SecretReference) {
	if ref != nil {
		r.addSecret(ref.Name)
	}
}

func (r *refs) addLocalRef(ref *corev1.LocalObjectReference) {
	if ref != nil {
		r.addSecret(ref.Name)
	}
}

// podRefs lists what pod references: secrets and config maps of volumes
// (also projected ones and volume plugins' secret references), env and
// envFrom of every container, image pull secrets, claims (also the
// generated claims of ephemeral volumes) and the service account.
func podRefs(pod *corev1.Pod) refs {
	var r refs
	r.serviceAccount = pod.Spec.ServiceAccountName
	if r.serviceAccount == "" {
		r.serviceAccount = "default"
	}
	for _, s := range pod.Spec.ImagePullSecrets {
		r.addSecret(s.Name)
	}
	for i := range pod.Spec.Volumes {
		v := &pod.Spec.Volumes[i]
		switch {
		case v.Secret != nil:
			r.addSecret(v.Secret.SecretName)
		case v.ConfigMap != nil:
			r.addConfigMap(v.ConfigMap.Name)
		case v.Projected != nil:
			for _, src := range v.Projected.Sources {
				if src.Secret != nil {
					r.addSecret(src.Secret.Name)
				}
				if src.ConfigMap != nil {
					r.addConfigMap(src.ConfigMap.Name)
				}
			}
		case v.PersistentVolumeClaim != nil:
			r.addClaim(v.PersistentVolumeClaim.ClaimName)
		case v.Ephemeral != nil:
			r.addClaim(ephemeral.VolumeClaimName(pod, v))
		case v.CSI != nil:
			r.addLocalRef(v.CSI.NodePublishSecretRef)
		case v.AzureFile != nil:
			r.addSecret(v.AzureFile.SecretName)
		case v.CephFS != nil:
			r.addLocalRef(v.CephFS.SecretRef)
		case v.Cinder != nil:
			r.addLocalRef(v.Cinder.SecretRef)
		case v.FlexVolume != nil:
			r.addLocalRef(v.FlexVolume.SecretRef)
		case v.ISCSI != nil:
			r.addLocalRef(v.ISCSI.SecretRef)
		case v.RBD != nil:
			r.addLocalRef(v.RBD.SecretRef)
		case v.ScaleIO != nil:
			r.addLocalRef(v.ScaleIO.SecretRef)
		case v.StorageOS != nil:
			r.addLocalRef(v.StorageOS.SecretRef)
		}
	}
	containers := func(cs []corev1.Container) {
		for i := range cs {
			addEnvRefs(&r, cs[i].Env, cs[i].EnvFrom)
		}
	}
	containers(pod.Spec.InitContainers)
	containers(pod.Spec.Containers)
	for i := range pod.Spec.EphemeralContainers {
		c := &pod.Spec.EphemeralContainers[i]
		addEnvRefs(&r, c.Env, c.EnvFrom)
	}
	return r
}

func addEnvRefs(r *refs, env []corev1.EnvVar, envFrom []corev1.EnvFromSource) {
	for _, e := range env {
		if e.ValueFrom == nil {
			continue
		}
		if e.ValueFrom.SecretKeyRef != nil {
			r.addSecret(e.ValueFrom.SecretKeyRef.Name)
		}
		if e.ValueFrom.ConfigMapKeyRef != nil {
			r.addConfigMap(e.ValueFrom.ConfigMapKeyRef.Name)
		}
	}
	for _, e := range envFrom {
		if e.SecretRef != nil {
			r.addSecret(e.SecretRef.Name)
		}
		if e.ConfigMapRef != nil {
			r.addConfigMap(e.ConfigMapRef.Name)
		}
	}
}

// pvSecrets lists the secrets, by namespace, that a node mounting pv
// needs: the CSI node-side secret references and the volume plugins'
// namespaced secret references.
func pvSecrets(pv *corev1.PersistentVolume) []corev1.SecretReference {
	var out []corev1.SecretReference
	add := func(ref *corev1.SecretReference) {
		if ref != nil && ref.Name != "" {
			out = append(out, *ref)
		}
	}
	s := &pv.Spec.PersistentVolumeSource
	if s.CSI != nil {
		add(s.CSI.NodePublishSecretRef)
		add(s.CSI.NodeStageSecretRef)
		add(s.CSI.NodeExpandSecretRef)
	}
	if s.CephFS != nil {
		add(s.CephFS.SecretRef)
	}
	if s.Cinder != nil {
		add(s.Cinder.SecretRef)
	}
	if s.FlexVolume != nil {
		add(s.FlexVolume.SecretRef)
	}
	if s.ISCSI != nil {
		add(s.ISCSI.SecretRef)
	}
	if s.RBD != nil {
		add(s.RBD.SecretRef)
	}
	if s.ScaleIO != nil {
		add(s.ScaleIO.SecretRef)
	}
	if s.StorageOS != nil && s.StorageOS.SecretRef != nil {
		out = append(out, corev1.SecretReference{Namespace: s.StorageOS.SecretRef.Namespace, Name: s.StorageOS.SecretRef.Name})
	}
	if s.AzureFile != nil && s.AzureFile.SecretName != "" && s.AzureFile.SecretNamespace != nil {
		out = append(out, corev1.SecretReference{Namespace: *s.AzureFile.SecretNamespace, Name: s.AzureFile.SecretName})
	}
	return out
}
