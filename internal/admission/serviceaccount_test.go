package admission

import (
	"context"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/informers"
)

func serviceAccount(name string, mod func(*corev1.ServiceAccount)) *corev1.ServiceAccount {
	sa := &corev1.ServiceAccount{ObjectMeta: metav1.ObjectMeta{Name: name, Namespace: "ns"}}
	if mod != nil {
		mod(sa)
	}
	return sa
}

func wantTokenVolume(name string) corev1.Volume {
	return corev1.Volume{Name: name, VolumeSource: corev1.VolumeSource{Projected: &corev1.ProjectedVolumeSource{
		DefaultMode: ptr(int32(0o644)),
		Sources: []corev1.VolumeProjection{
			{ServiceAccountToken: &corev1.ServiceAccountTokenProjection{Path: "token", ExpirationSeconds: ptr(int64(3607))}},
			{ConfigMap: &corev1.ConfigMapProjection{
				LocalObjectReference: corev1.LocalObjectReference{Name: "kube-root-ca.crt"},
				Items:                []corev1.KeyToPath{{Key: "ca.crt", Path: "ca.crt"}},
			}},
			{DownwardAPI: &corev1.DownwardAPIProjection{Items: []corev1.DownwardAPIVolumeFile{{
				Path: "namespace", FieldRef: &corev1.ObjectFieldSelector{APIVersion: "v1", FieldPath: "metadata.namespace"},
			}}}},
		},
	}}}
}

var tokenMount = corev1.VolumeMount{Name: "kube-api-access-abcde", ReadOnly: true, MountPath: "/var/run/secrets/kubernetes.io/serviceaccount"}

func TestServiceAccount(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name     string
		accounts []*corev1.ServiceAccount
		pod      func(*corev1.Pod)
		want     func(*corev1.Pod) // expected changes to the input pod
		wantErr  string
	}{
		{
			name:     "defaults the account and mounts the token everywhere",
			accounts: []*corev1.ServiceAccount{serviceAccount("default", nil)},
			pod: func(p *corev1.Pod) {
				p.Spec.InitContainers = []corev1.Container{{Name: "init", Image: "i"}}
			},
			want: func(p *corev1.Pod) {
				p.Spec.ServiceAccountName = "default"
				p.Spec.Volumes = []corev1.Volume{wantTokenVolume("kube-api-access-abcde")}
				p.Spec.InitContainers[0].VolumeMounts = []corev1.VolumeMount{tokenMount}
				p.Spec.Containers[0].VolumeMounts = []corev1.VolumeMount{tokenMount}
			},
		},
		{
			name:    "missing account is refused",
			wantErr: `403 pods "p" is forbidden: error looking up service account ns/default: serviceaccounts "default" not found`,
		},
		{
			name:     "named account must exist",
			accounts: []*corev1.ServiceAccount{serviceAccount("default", nil)},
			pod:      func(p *corev1.Pod) { p.Spec.ServiceAccountName = "robot" },
			wantErr:  `403 pods "p" is forbidden: error looking up service account ns/robot: serviceaccounts "robot" not found`,
		},
		{
			name:     "pod opts out of automount",
			accounts: []*corev1.ServiceAccount{serviceAccount("default", nil)},
			pod:      func(p *corev1.Pod) { p.Spec.AutomountServiceAccountToken = ptr(false) },
			want:     func(p *corev1.Pod) { p.Spec.ServiceAccountName = "default" },
		},
		{
			name: "account opts out of automount",
			accounts: []*corev1.ServiceAccount{serviceAccount("default", func(sa *corev1.ServiceAccount) {
				sa.AutomountServiceAccountToken = ptr(false)
			})},
			want: func(p *corev1.Pod) { p.Spec.ServiceAccountName = "default" },
		},
		{
			name: "pod opt-in wins over the account",
			accounts: []*corev1.ServiceAccount{serviceAccount("default", func(sa *corev1.ServiceAccount) {
				sa.AutomountServiceAccountToken = ptr(false)
			})},
			pod: func(p *corev1.Pod) { p.Spec.AutomountServiceAccountToken = ptr(true) },
			want: func(p *corev1.Pod) {
				p.Spec.ServiceAccountName = "default"
				p.Spec.Volumes = []corev1.Volume{wantTokenVolume("kube-api-access-abcde")}
				p.Spec.Containers[0].VolumeMounts = []corev1.VolumeMount{tokenMount}
			},
		},
		{
			name:     "container with its own mount at the path is left alone",
			accounts: []*corev1.ServiceAccount{serviceAccount("default", nil)},
			pod: func(p *corev1.Pod) {
				p.Spec.Containers[0].VolumeMounts = []corev1.VolumeMount{{Name: "mine", MountPath: TokenMountPath}}
			},
			want: func(p *corev1.Pod) { p.Spec.ServiceAccountName = "default" },
		},
		{
			name: "image pull secrets are copied from the account",
			accounts: []*corev1.ServiceAccount{serviceAccount("default", func(sa *corev1.ServiceAccount) {
				sa.AutomountServiceAccountToken = ptr(false)
				sa.ImagePullSecrets = []corev1.LocalObjectReference{{Name: "registry"}}
			})},
			want: func(p *corev1.Pod) {
				p.Spec.ServiceAccountName = "default"
				p.Spec.ImagePullSecrets = []corev1.LocalObjectReference{{Name: "registry"}}
			},
		},
		{
			name: "mirror pod is not changed and needs no account",
			pod:  func(p *corev1.Pod) { p.Annotations = map[string]string{MirrorPodAnnotation: "x"} },
		},
		{
			name: "mirror pod may not reference service accounts",
			pod: func(p *corev1.Pod) {
				p.Annotations = map[string]string{MirrorPodAnnotation: "x"}
				p.Spec.ServiceAccountName = "default"
			},
			wantErr: `403 pods "p" is forbidden: a mirror pod may not reference service accounts`,
		},
		{
			name: "mirror pod may not reference secrets",
			pod: func(p *corev1.Pod) {
				p.Annotations = map[string]string{MirrorPodAnnotation: "x"}
				p.Spec.Volumes = []corev1.Volume{{Name: "s", VolumeSource: corev1.VolumeSource{Secret: &corev1.SecretVolumeSource{SecretName: "s"}}}}
			},
			wantErr: `403 pods "p" is forbidden: a mirror pod may not reference secrets`,
		},
		{
			name: "mirror pod may not reference configmaps through env",
			pod: func(p *corev1.Pod) {
				p.Annotations = map[string]string{MirrorPodAnnotation: "x"}
				p.Spec.Containers[0].EnvFrom = []corev1.EnvFromSource{{ConfigMapRef: &corev1.ConfigMapEnvSource{}}}
			},
			wantErr: `403 pods "p" is forbidden: a mirror pod may not reference configmaps`,
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			client := newClient()
			for _, sa := range tt.accounts {
				if _, err := client.CoreV1().ServiceAccounts("ns").Create(context.Background(), sa, metav1.CreateOptions{}); err != nil {
					t.Fatal(err)
				}
			}
			plugin := NewServiceAccount(nil, client)
			plugin.suffix = func() string { return "abcde" }
			pod := testPod("p")
			if tt.pod != nil {
				tt.pod(pod)
			}
			want := pod.DeepCopy()
			if tt.want != nil {
				tt.want(want)
			}
			err := NewChain(plugin).Admit(context.Background(), podCreate("ns", pod))
			if diff := cmp.Diff(tt.wantErr, errText(t, err)); diff != "" {
				t.Fatalf("error (-want +got):\n%s", diff)
			}
			if err != nil {
				return
			}
			if diff := cmp.Diff(want, pod); diff != "" {
				t.Errorf("pod (-want +got):\n%s", diff)
			}
		})
	}
}

func TestServiceAccountIgnoresOtherRequests(t *testing.T) {
	t.Parallel()
	plugin := NewServiceAccount(nil, newClient())
	pod := testPod("p")
	for _, r := range []*Request{
		{Operation: Update, Namespace: "ns", Resource: gvr("", "pods"), Object: pod, OldObject: pod},
		{Operation: Create, Namespace: "ns", Resource: gvr("", "pods"), Subresource: "binding", Object: pod},
		{Operation: Create, Namespace: "ns", Resource: gvr("", "configmaps"), Object: &corev1.ConfigMap{}},
	} {
		if err := NewChain(plugin).Admit(context.Background(), r); err != nil {
			t.Errorf("%s %s/%s: %v", r.Operation, r.Resource.Resource, r.Subresource, err)
		}
	}
	if pod.Spec.ServiceAccountName != "" {
		t.Errorf("pod changed: %+v", pod.Spec)
	}
}

// TestServiceAccountFromInformer: the cache serves the lookup, and a
// cache miss falls back to a live read.
func TestServiceAccountFromInformer(t *testing.T) {
	t.Parallel()
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	client := newClient(serviceAccount("default", nil))
	f := informers.NewSharedInformerFactory(client, 0)
	plugin := NewServiceAccount(f.Core().V1().ServiceAccounts().Lister(), client)
	f.StartWithContext(ctx)
	f.WaitForCacheSync(ctx.Done())
	if err := NewChain(plugin).Admit(ctx, podCreate("ns", testPod("a"))); err != nil {
		t.Fatalf("cached account: %v", err)
	}
	// An account the cache may not have seen yet is read live.
	if _, err := client.CoreV1().ServiceAccounts("ns").Create(ctx, serviceAccount("fresh", nil), metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	pod := testPod("b")
	pod.Spec.ServiceAccountName = "fresh"
	if err := NewChain(plugin).Admit(ctx, podCreate("ns", pod)); err != nil {
		t.Fatalf("fresh account: %v", err)
	}
}

// A namespace's default account is created by a controller a moment after
// the namespace: a pod created right away waits for it instead of being
// refused (kubectl apply of a namespace and its pods in one file).
func TestServiceAccountWaitsForDefault(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	client := newClient()
	plugin := NewServiceAccount(nil, client)
	go func() {
		time.Sleep(300 * time.Millisecond)
		_, _ = client.CoreV1().ServiceAccounts("ns").Create(ctx, serviceAccount("default", nil), metav1.CreateOptions{})
	}()
	start := time.Now()
	if err := NewChain(plugin).Admit(ctx, podCreate("ns", testPod("a"))); err != nil {
		t.Fatalf("pod created while its default account appears: %v", err)
	}
	if waited := time.Since(start); waited < 300*time.Millisecond {
		t.Errorf("admitted after %v, before the account existed", waited)
	}
	// Other accounts are not waited for.
	pod := testPod("b")
	pod.Spec.ServiceAccountName = "robot"
	start = time.Now()
	if err := NewChain(plugin).Admit(ctx, podCreate("ns", pod)); err == nil {
		t.Fatal("missing account robot admitted")
	}
	if waited := time.Since(start); waited > defaultAccountRetry {
		t.Errorf("a missing named account was waited for (%v)", waited)
	}
}

func TestRandomSuffix(t *testing.T) {
	t.Parallel()
	for range 100 {
		s := randomSuffix()
		if len(s) != 5 {
			t.Fatalf("suffix %q: want 5 characters", s)
		}
		for _, c := range s {
			if !strings.ContainsRune("bcdfghjklmnpqrstvwxz2456789", c) {
				t.Fatalf("suffix %q has %q", s, c)
			}
		}
	}
}
