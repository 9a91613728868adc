package ephemeral

import (
	"context"
	"fmt"
	"testing"

	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/resource"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/rest"

	"github.com/skiff-dev/skiff/internal/controller"
	"github.com/skiff-dev/skiff/internal/controller/controllertest"
)

func podWith(name string, volumes ...string) *corev1.Pod {
	p := &corev1.Pod{
		ObjectMeta: metav1.ObjectMeta{Name: name, Namespace: "default"},
		Spec:       corev1.PodSpec{Containers: []corev1.Container{{Name: "c", Image: "busybox"}}},
	}
	for _, v := range volumes {
		p.Spec.Volumes = append(p.Spec.Volumes, corev1.Volume{Name: v, VolumeSource: corev1.VolumeSource{
			Ephemeral: &corev1.EphemeralVolumeSource{VolumeClaimTemplate: &corev1.PersistentVolumeClaimTemplate{
				ObjectMeta: metav1.ObjectMeta{Labels: map[string]string{"vol": v}},
				Spec: corev1.PersistentVolumeClaimSpec{
					AccessModes: []corev1.PersistentVolumeAccessMode{corev1.ReadWriteOnce},
					Resources:   corev1.VolumeResourceRequirements{Requests: corev1.ResourceList{corev1.ResourceStorage: resource.MustParse("1Gi")}},
				},
			}},
		}})
	}
	return p
}

func TestCreatesOwnedClaims(t *testing.T) {
	client, _ := controllertest.Run(t, 1, func(deps controller.Deps, _ *rest.Config) (controllertest.Runner, error) {
		return New(deps), nil
	})
	ctx := context.Background()
	claims := client.CoreV1().PersistentVolumeClaims("default")
	// A claim of the name the pod's second volume would get, not the pod's.
	if _, err := claims.Create(ctx, &corev1.PersistentVolumeClaim{
		ObjectMeta: metav1.ObjectMeta{Name: "web-cache"},
		Spec:       podWith("x", "v").Spec.Volumes[0].Ephemeral.VolumeClaimTemplate.Spec,
	}, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	pod, err := client.CoreV1().Pods("default").Create(ctx, podWith("web", "scratch", "cache"), metav1.CreateOptions{})
	if err != nil {
		t.Fatal(err)
	}
	controllertest.Eventually(t, func() error {
		c, err := claims.Get(ctx, "web-scratch", metav1.GetOptions{})
		if err != nil {
			return err
		}
		if !metav1.IsControlledBy(c, pod) || c.Labels["vol"] != "scratch" || c.Spec.Resources.Requests.Storage().String() != "1Gi" {
			return fmt.Errorf("claim web-scratch: owners %v, labels %v, spec %+v", c.OwnerReferences, c.Labels, c.Spec)
		}
		return nil
	})
	if c, err := claims.Get(ctx, "web-cache", metav1.GetOptions{}); err != nil || len(c.OwnerReferences) != 0 {
		t.Errorf("a claim the pod does not own was changed: %v, %v", c, err)
	}
	// Gone while the pod lives (its pvc-protection finalizer stripped, as
	// no protection controller runs here): made again.
	c, err := claims.Get(ctx, "web-scratch", metav1.GetOptions{})
	if err != nil {
		t.Fatal(err)
	}
	c.Finalizers = nil
	if _, err := claims.Update(ctx, c, metav1.UpdateOptions{}); err != nil {
		t.Fatal(err)
	}
	if err := claims.Delete(ctx, "web-scratch", metav1.DeleteOptions{}); err != nil {
		t.Fatal(err)
	}
	controllertest.Eventually(t, func() error {
		c, err := claims.Get(ctx, "web-scratch", metav1.GetOptions{})
		if err != nil {
			return err
		}
		if c.DeletionTimestamp != nil {
			return fmt.Errorf("still the deleted claim")
		}
		return nil
	})
}
