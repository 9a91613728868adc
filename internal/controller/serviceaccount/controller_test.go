package serviceaccount

import (
	"context"
	"fmt"
	"log/slog"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/informers"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/tools/record"

	"github.com/skiff-dev/skiff/internal/controller"
	"github.com/skiff-dev/skiff/internal/testserver"
)

type testWriter struct{ t *testing.T }

func (w testWriter) Write(p []byte) (int, error) { w.t.Log(string(p)); return len(p), nil }

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
		select {
		case <-time.After(20 * time.Millisecond):
		case <-t.Context().Done():
			t.Fatalf("test ended: %v", err)
		}
	}
}

func TestDefaultServiceAccount(t *testing.T) {
	cfg := testserver.Start(t, testserver.Options{})
	client := kubernetes.NewForConfigOrDie(cfg)
	factory := informers.NewSharedInformerFactory(client, 0)
	ctx, cancel := context.WithCancel(context.Background())
	c := New(controller.Deps{
		Client: client, Informers: factory, Recorder: record.NewFakeRecorder(100),
		Logger: slog.New(slog.NewTextHandler(testWriter{t}, nil)),
	})
	factory.StartWithContext(ctx)
	done := make(chan error, 1)
	go func() { done <- c.Run(ctx, 2) }()
	t.Cleanup(func() {
		cancel()
		if err := <-done; err != nil {
			t.Errorf("Run: %v", err)
		}
		factory.Shutdown()
	})

	exists := func(ns string) func() error {
		return func() error {
			_, err := client.CoreV1().ServiceAccounts(ns).Get(t.Context(), DefaultName, metav1.GetOptions{})
			return err
		}
	}

	t.Run("existing namespaces get one", func(t *testing.T) {
		eventually(t, exists(metav1.NamespaceDefault))
	})

	t.Run("a new namespace gets one, and it comes back after deletion", func(t *testing.T) {
		if _, err := client.CoreV1().Namespaces().Create(t.Context(), &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: "fresh"}}, metav1.CreateOptions{}); err != nil {
			t.Fatalf("creating namespace: %v", err)
		}
		eventually(t, exists("fresh"))
		first, err := client.CoreV1().ServiceAccounts("fresh").Get(t.Context(), DefaultName, metav1.GetOptions{})
		if err != nil {
			t.Fatalf("getting service account: %v", err)
		}
		if err := client.CoreV1().ServiceAccounts("fresh").Delete(t.Context(), DefaultName, metav1.DeleteOptions{}); err != nil {
			t.Fatalf("deleting service account: %v", err)
		}
		eventually(t, func() error {
			sa, err := client.CoreV1().ServiceAccounts("fresh").Get(t.Context(), DefaultName, metav1.GetOptions{})
			if err != nil {
				return err
			}
			if sa.UID == first.UID {
				return fmt.Errorf("still the deleted account %s", sa.UID)
			}
			return nil
		})
	})

	t.Run("terminating namespaces get none", func(t *testing.T) {
		// Without a namespace controller a deleted namespace stays
		// terminating (its "kubernetes" finalizer is never removed).
		if _, err := client.CoreV1().Namespaces().Create(t.Context(), &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: "dying"}}, metav1.CreateOptions{}); err != nil {
			t.Fatalf("creating namespace: %v", err)
		}
		eventually(t, exists("dying"))
		if err := client.CoreV1().Namespaces().Delete(t.Context(), "dying", metav1.DeleteOptions{}); err != nil {
			t.Fatalf("deleting namespace: %v", err)
		}
		eventually(t, func() error {
			ns, err := c.namespaces.Get("dying")
			if err != nil || ns.DeletionTimestamp == nil {
				return fmt.Errorf("namespace not terminating in the cache yet (err %v)", err)
			}
			return nil
		})
		if err := client.CoreV1().ServiceAccounts("dying").Delete(t.Context(), DefaultName, metav1.DeleteOptions{}); err != nil {
			t.Fatalf("deleting service account: %v", err)
		}
		eventually(t, func() error {
			if _, err := c.accounts.ServiceAccounts("dying").Get(DefaultName); !apierrors.IsNotFound(err) {
				return fmt.Errorf("service account still cached (err %v)", err)
			}
			return nil
		})
		// The account's deletion queued the namespace; a direct sync must
		// not create it either.
		if _, err := c.sync(t.Context(), "dying"); err != nil {
			t.Fatalf("sync: %v", err)
		}
		if _, err := client.CoreV1().ServiceAccounts("dying").Get(t.Context(), DefaultName, metav1.GetOptions{}); !apierrors.IsNotFound(err) {
			t.Errorf("service account in a terminating namespace: got err %v, want NotFound", err)
		}
	})
}
