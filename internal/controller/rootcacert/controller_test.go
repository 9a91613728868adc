package rootcacert

import (
	"context"
	"fmt"
	"testing"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/rest"

	"github.com/skiff-dev/skiff/internal/controller"
	"github.com/skiff-dev/skiff/internal/controller/controllertest"
)

func TestPublishes(t *testing.T) {
	client, cfg := controllertest.Run(t, 2, func(deps controller.Deps, cfg *rest.Config) (controllertest.Runner, error) {
		return NewForConfig(deps, cfg)
	})
	ctx := context.Background()
	want := string(cfg.TLSClientConfig.CAData)
	check := func(ns string) func() error {
		return func() error {
			cm, err := client.CoreV1().ConfigMaps(ns).Get(ctx, ConfigMapName, metav1.GetOptions{})
			if err != nil {
				return err
			}
			if cm.Data[Key] != want || len(cm.Data) != 1 {
				return fmt.Errorf("data = %v", cm.Data)
			}
			return nil
		}
	}
	controllertest.Eventually(t, check("default"))
	controllertest.Eventually(t, check("kube-system"))

	if _, err := client.CoreV1().Namespaces().Create(ctx, &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: "late"}}, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	controllertest.Eventually(t, check("late"))

	// Tampered with: restored. Deleted: recreated.
	cm, err := client.CoreV1().ConfigMaps("late").Get(ctx, ConfigMapName, metav1.GetOptions{})
	if err != nil {
		t.Fatal(err)
	}
	cm.Data = map[string]string{Key: "junk", "extra": "x"}
	if _, err := client.CoreV1().ConfigMaps("late").Update(ctx, cm, metav1.UpdateOptions{}); err != nil {
		t.Fatal(err)
	}
	controllertest.Eventually(t, check("late"))
	if err := client.CoreV1().ConfigMaps("late").Delete(ctx, ConfigMapName, metav1.DeleteOptions{}); err != nil {
		t.Fatal(err)
	}
	controllertest.Eventually(t, check("late"))

	// Other config maps are never touched.
	other := &corev1.ConfigMap{ObjectMeta: metav1.ObjectMeta{Namespace: "late", Name: "mine"}, Data: map[string]string{"a": "b"}}
	if _, err := client.CoreV1().ConfigMaps("late").Create(ctx, other, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	got, err := client.CoreV1().ConfigMaps("late").Get(ctx, "mine", metav1.GetOptions{})
	if err != nil || got.Data["a"] != "b" {
		t.Errorf("other config map: %v, %v", got, err)
	}
}
