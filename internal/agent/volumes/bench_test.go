package volumes

import (
	"context"
	"fmt"
	"testing"

	v1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/types"
)

// BenchmarkSync measures what one steady-state sync of a typical pod costs
// (a service account token volume, a config map, an emptyDir, an env var
// from the config map, service links): Setup, Mounts and Env.
func BenchmarkSync(b *testing.B) {
	for _, first := range []bool{false, true} {
		name := "steady"
		if first {
			name = "first"
		}
		b.Run(name, func(b *testing.B) {
			m, _ := newTestManager(b, fixtures()...)
			ctx := context.Background()
			pod := testPod(
				v1.Volume{Name: "kube-api-access", VolumeSource: v1.VolumeSource{Projected: &v1.ProjectedVolumeSource{Sources: []v1.VolumeProjection{
					{ServiceAccountToken: &v1.ServiceAccountTokenProjection{Path: "token", ExpirationSeconds: ptr(int64(3607))}},
					{ConfigMap: &v1.ConfigMapProjection{LocalObjectReference: v1.LocalObjectReference{Name: "cfg"}, Items: []v1.KeyToPath{{Key: "a", Path: "ca.crt"}}}},
					{DownwardAPI: &v1.DownwardAPIProjection{Items: []v1.DownwardAPIVolumeFile{{Path: "namespace", FieldRef: &v1.ObjectFieldSelector{FieldPath: "metadata.namespace"}}}}},
				}}}},
				v1.Volume{Name: "cfg", VolumeSource: v1.VolumeSource{ConfigMap: &v1.ConfigMapVolumeSource{LocalObjectReference: v1.LocalObjectReference{Name: "cfg"}}}},
				v1.Volume{Name: "scratch", VolumeSource: v1.VolumeSource{EmptyDir: &v1.EmptyDirVolumeSource{}}},
			)
			c := &pod.Spec.Containers[0]
			c.VolumeMounts = []v1.VolumeMount{{Name: "kube-api-access", MountPath: "/var/run/secrets/kubernetes.io/serviceaccount"}, {Name: "cfg", MountPath: "/etc/cfg"}, {Name: "scratch", MountPath: "/tmp"}}
			c.Env = []v1.EnvVar{{Name: "A", ValueFrom: &v1.EnvVarSource{ConfigMapKeyRef: &v1.ConfigMapKeySelector{LocalObjectReference: v1.LocalObjectReference{Name: "cfg"}, Key: "a"}}}}
			if _, err := m.Setup(ctx, pod); err != nil { // start the informers
				b.Fatal(err)
			}
			b.ResetTimer()
			for i := 0; i < b.N; i++ {
				if first {
					pod.UID = types.UID(fmt.Sprint("bench-", i))
				}
				paths, err := m.Setup(ctx, pod)
				if err != nil {
					b.Fatal(err)
				}
				if _, err := m.Mounts(pod, c, paths); err != nil {
					b.Fatal(err)
				}
				if _, err := m.Env(ctx, pod, c); err != nil {
					b.Fatal(err)
				}
				if first {
					b.StopTimer()
					if err := m.Teardown(ctx, pod.UID); err != nil {
						b.Fatal(err)
					}
					b.StartTimer()
				}
			}
		})
	}
}
