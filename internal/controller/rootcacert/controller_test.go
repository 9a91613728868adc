package rootcacert

import (
	"context"
	"fmt"
	"log/slog"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/informers"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/tools/record"

	"github.com/skiff-dev/skiff/internal/controller"
	"github.com/skiff-dev/skiff/internal/testserver"
)

func eventually(t *testing.T, f func() error) {
	t.Helper()
	deadline := time.Now().Add(20 * time.Second)
	for {
		err := f()
		if err == nil {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("condition not met before deadline: %v", err)
		}
		<-time.After(20 * time.Millisecond)
	}
}

func TestPublishes(t *testing.T) {
	cfg := testserver.Start(t, testserver.Options{})
	client := kubernetes.NewForConfigOrDie(cfg)
	factory := informers.NewSharedInformerFactory(client, 0)
	c, err := NewForConfig(controller.Deps{Client: client, Informers: factory, Recorder: record.NewFakeRecorder(10), Logger: slog.New(slog.DiscardHandler)}, cfg)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	factory.Start(ctx.Done())
	done := make(chan error, 1)
	go func() { done <- c.Run(ctx, 2) }()
	t.Cleanup(func() {
		cancel()
		if err := <-done; err != nil {
			t.Errorf("Run: %v", err)
		}
	})
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
	eventually(t, check("default"))
	eventually(t, check("kube-system"))

	if _, err := client.CoreV1().Namespaces().Create(ctx, &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: "late"}}, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	eventually(t, check("late"))

	// Tampered with: restored. Deleted: recreated.
	cm, err := client.CoreV1().ConfigMaps("late").Get(ctx, ConfigMapName, metav1.GetOptions{})
	if err != nil {
		t.Fatal(err)
	}
	cm.Data = map[string]string{Key: "junk", "extra": "x"}
	if _, err := client.CoreV1().ConfigMaps("late").Update(ctx, cm, metav1.UpdateOptions{}); err != nil {
		t.Fatal(err)
	}
	eventually(t, check("late"))
	if err := client.CoreV1().ConfigMaps("late").Delete(ctx, ConfigMapName, metav1.DeleteOptions{}); err != nil {
		t.Fatal(err)
	}
	eventually(t, check("late"))

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
