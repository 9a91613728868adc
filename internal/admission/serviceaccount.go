package admission

import (
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"time"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes"
	corelisters "k8s.io/client-go/listers/core/v1"
)

// Service account token mounting, as upstream's ServiceAccount plugin does
// it.
const (
	// DefaultServiceAccountName is the account a pod runs as when it names none.
	DefaultServiceAccountName = "default"
	// TokenMountPath is where containers find token, ca.crt and namespace.
	TokenMountPath = "/var/run/secrets/kubernetes.io/serviceaccount"
	// TokenVolumePrefix starts the generated projected volume's name.
	TokenVolumePrefix = "kube-api-access-"
	// TokenExpirationSeconds is the projected token's requested lifetime
	// (upstream's 3607: one hour plus seven seconds so that the kubelet's
	// refresh is distinguishable from a user's request).
	TokenExpirationSeconds = 3607
	// RootCAConfigMap is the config map holding the cluster CA in every namespace.
	RootCAConfigMap = "kube-root-ca.crt"
	// MirrorPodAnnotation marks a static pod's mirror.
	MirrorPodAnnotation = "kubernetes.io/config.mirror"
)

// ServiceAccount defaults a pod's service account, refuses pods whose
// service account does not exist, and projects the account's token into
// every container, as upstream's ServiceAccount plugin. It handles pod
// CREATE only (no subresource).
type ServiceAccount struct {
	lister corelisters.ServiceAccountLister // may be nil
	client kubernetes.Interface
	// suffix returns the 5 random characters of a generated volume name.
	suffix func() string
}

var (
	_ Mutator   = (*ServiceAccount)(nil)
	_ Validator = (*ServiceAccount)(nil)
)

// NewServiceAccount returns the plugin. Service accounts are looked up in
// lister (nil: none) and, when it misses (a cache that lags a fresh
// account), live through client.
func NewServiceAccount(lister corelisters.ServiceAccountLister, client kubernetes.Interface) *ServiceAccount {
	return &ServiceAccount{lister: lister, client: client, suffix: randomSuffix}
}

// randomSuffix mimics upstream's name generator: 5 characters from an
// alphabet without vowels (no words) and without look-alikes.
func randomSuffix() string {
	const alphabet = "bcdfghjklmnpqrstvwxz2456789"
	b := make([]byte, 5)
	for i := range b {
		b[i] = alphabet[rand.IntN(len(alphabet))]
	}
	return string(b)
}

// Name implements Plugin.
func (*ServiceAccount) Name() string { return "ServiceAccount" }

func (*ServiceAccount) handles(r *Request) (*corev1.Pod, bool) {
	if r.Operation != Create || !r.is("", "pods", "") {
		return nil, false
	}
	pod, ok := r.Object.(*corev1.Pod)
	return pod, ok
}

// Admit sets spec.serviceAccountName, mounts the token volume and copies
// the account's imagePullSecrets when the pod has none. Mirror pods are
// never changed.
func (s *ServiceAccount) Admit(ctx context.Context, r *Request) error {
	pod, ok := s.handles(r)
	if !ok {
		return nil
	}
	if _, mirror := pod.Annotations[MirrorPodAnnotation]; mirror {
		return nil // Validate refuses what a mirror pod may not reference
	}
	if pod.Spec.ServiceAccountName == "" {
		pod.Spec.ServiceAccountName = DefaultServiceAccountName
	}
	sa, err := s.get(ctx, r.Namespace, pod.Spec.ServiceAccountName)
	if err != nil {
		return forbidden(r, err)
	}
	if shouldAutomount(sa, pod) {
		s.mountToken(pod)
	}
	if len(pod.Spec.ImagePullSecrets) == 0 && len(sa.ImagePullSecrets) > 0 {
		pod.Spec.ImagePullSecrets = append([]corev1.LocalObjectReference(nil), sa.ImagePullSecrets...)
	}
	return nil
}

// Validate refuses mirror pods that reference service accounts, secrets
// or config maps, and other pods whose service account does not exist.
func (s *ServiceAccount) Validate(ctx context.Context, r *Request) error {
	pod, ok := s.handles(r)
	if !ok {
		return nil
	}
	if _, mirror := pod.Annotations[MirrorPodAnnotation]; mirror {
		if what := mirrorPodReference(pod); what != "" {
			return forbidden(r, fmt.Errorf("a mirror pod may not reference %s", what))
		}
		return nil
	}
	if pod.Spec.ServiceAccountName == "" {
		return forbidden(r, errors.New("no service account name specified on pod"))
	}
	if _, err := s.get(ctx, r.Namespace, pod.Spec.ServiceAccountName); err != nil {
		return forbidden(r, err)
	}
	return nil
}

// get returns the service account (read-only: it may come from the
// cache) or upstream's "error looking up service account ns/name: …".
// The default account of a namespace created a moment ago may not exist
// yet (the service account controller creates it on the namespace's
// event): as upstream, it is looked up again for about two seconds, so
// that "kubectl apply" of a namespace and its pods in one file works.
func (s *ServiceAccount) get(ctx context.Context, ns, name string) (*corev1.ServiceAccount, error) {
	if s.lister != nil {
		if sa, err := s.lister.ServiceAccounts(ns).Get(name); err == nil {
			return sa, nil
		}
	}
	attempts := 1
	if name == DefaultServiceAccountName {
		attempts = defaultAccountAttempts
	}
	var err error
	for i := range attempts {
		if i > 0 {
			select {
			case <-time.After(defaultAccountRetry):
			case <-ctx.Done():
				return nil, fmt.Errorf("error looking up service account %s/%s: %w", ns, name, err)
			}
		}
		var sa *corev1.ServiceAccount
		sa, err = s.client.CoreV1().ServiceAccounts(ns).Get(ctx, name, metav1.GetOptions{})
		if err == nil {
			return sa, nil
		}
		if !apierrors.IsNotFound(err) {
			break
		}
	}
	return nil, fmt.Errorf("error looking up service account %s/%s: %w", ns, name, err)
}

// How long get waits for a namespace's default service account.
const (
	defaultAccountAttempts = 10
	defaultAccountRetry    = 200 * time.Millisecond
)

// shouldAutomount: the pod's automountServiceAccountToken wins, then the
// account's, else true.
func shouldAutomount(sa *corev1.ServiceAccount, pod *corev1.Pod) bool {
	if pod.Spec.AutomountServiceAccountToken != nil {
		return *pod.Spec.AutomountServiceAccountToken
	}
	if sa.AutomountServiceAccountToken != nil {
		return *sa.AutomountServiceAccountToken
	}
	return true
}

// mountToken adds the kube-api-access-<rand> projected volume (unless a
// container already mounts something at TokenMountPath, in which case that
// container is left alone) and mounts it read-only in every container and
// init container.
func (s *ServiceAccount) mountToken(pod *corev1.Pod) {
	name := ""
	needs := func(c *corev1.Container) bool {
		for _, m := range c.VolumeMounts {
			if m.MountPath == TokenMountPath {
				return false
			}
		}
		return true
	}
	for _, list := range [][]corev1.Container{pod.Spec.InitContainers, pod.Spec.Containers} {
		for i := range list {
			c := &list[i]
			if !needs(c) {
				continue
			}
			if name == "" {
				name = s.tokenVolume(pod)
			}
			c.VolumeMounts = append(c.VolumeMounts, corev1.VolumeMount{Name: name, ReadOnly: true, MountPath: TokenMountPath})
		}
	}
}

// tokenVolume adds the projected volume to pod and returns its name.
func (s *ServiceAccount) tokenVolume(pod *corev1.Pod) string {
	taken := map[string]bool{}
	for _, v := range pod.Spec.Volumes {
		taken[v.Name] = true
	}
	name := TokenVolumePrefix + s.suffix()
	for taken[name] {
		name = TokenVolumePrefix + s.suffix()
	}
	exp := int64(TokenExpirationSeconds)
	mode := int32(0o644)
	pod.Spec.Volumes = append(pod.Spec.Volumes, corev1.Volume{
		Name: name,
		VolumeSource: corev1.VolumeSource{Projected: &corev1.ProjectedVolumeSource{
			DefaultMode: &mode,
			Sources: []corev1.VolumeProjection{
				{ServiceAccountToken: &corev1.ServiceAccountTokenProjection{Path: "token", ExpirationSeconds: &exp}},
				{ConfigMap: &corev1.ConfigMapProjection{
					LocalObjectReference: corev1.LocalObjectReference{Name: RootCAConfigMap},
					Items:                []corev1.KeyToPath{{Key: "ca.crt", Path: "ca.crt"}},
				}},
				{DownwardAPI: &corev1.DownwardAPIProjection{Items: []corev1.DownwardAPIVolumeFile{{
					Path:     "namespace",
					FieldRef: &corev1.ObjectFieldSelector{APIVersion: "v1", FieldPath: "metadata.namespace"},
				}}}},
			},
		}},
	})
	return name
}

// mirrorPodReference names the kind of API object a mirror pod
// references ("service accounts", "secrets", "configmaps"; "" for none):
// the kubelet cannot fetch API objects on behalf of a static pod.
func mirrorPodReference(pod *corev1.Pod) string {
	switch {
	case pod.Spec.ServiceAccountName != "":
		return "service accounts"
	case referencesSecrets(pod):
		return "secrets"
	case referencesConfigMaps(pod):
		return "configmaps"
	}
	return ""
}

// referencesSecrets reports whether pod uses a secret: pull secrets,
// secret volumes and projections (service account tokens count), env.
func referencesSecrets(pod *corev1.Pod) bool {
	if len(pod.Spec.ImagePullSecrets) > 0 {
		return true
	}
	for _, v := range pod.Spec.Volumes {
		switch {
		case v.Secret != nil:
			return true
		case v.Projected != nil:
			for _, src := range v.Projected.Sources {
				if src.Secret != nil || src.ServiceAccountToken != nil {
					return true
				}
			}
		case v.CephFS != nil && v.CephFS.SecretRef != nil, v.Cinder != nil && v.Cinder.SecretRef != nil,
			v.FlexVolume != nil && v.FlexVolume.SecretRef != nil, v.RBD != nil && v.RBD.SecretRef != nil,
			v.ISCSI != nil && v.ISCSI.SecretRef != nil, v.ScaleIO != nil && v.ScaleIO.SecretRef != nil,
			v.StorageOS != nil && v.StorageOS.SecretRef != nil, v.CSI != nil && v.CSI.NodePublishSecretRef != nil,
			v.AzureFile != nil:
			return true
		}
	}
	found := false
	visitContainers(&pod.Spec, func(c *corev1.Container) {
		for _, e := range c.EnvFrom {
			found = found || e.SecretRef != nil
		}
		for _, e := range c.Env {
			found = found || (e.ValueFrom != nil && e.ValueFrom.SecretKeyRef != nil)
		}
	})
	return found
}

// referencesConfigMaps reports whether pod uses a config map (volumes,
// projections, env).
func referencesConfigMaps(pod *corev1.Pod) bool {
	for _, v := range pod.Spec.Volumes {
		switch {
		case v.ConfigMap != nil:
			return true
		case v.Projected != nil:
			for _, src := range v.Projected.Sources {
				if src.ConfigMap != nil {
					return true
				}
			}
		}
	}
	found := false
	visitContainers(&pod.Spec, func(c *corev1.Container) {
		for _, e := range c.EnvFrom {
			found = found || e.ConfigMapRef != nil
		}
		for _, e := range c.Env {
			found = found || (e.ValueFrom != nil && e.ValueFrom.ConfigMapKeyRef != nil)
		}
	})
	return found
}
