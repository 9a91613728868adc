package namespace

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"strings"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/client-go/kubernetes"
	clientgoscheme "k8s.io/client-go/kubernetes/scheme"
	"k8s.io/client-go/metadata"
	"k8s.io/client-go/rest"

	"github.com/skiff-dev/skiff/internal/apiserver"
	"github.com/skiff-dev/skiff/internal/discovery"
	"github.com/skiff-dev/skiff/internal/etcd/etcdtest"
	"github.com/skiff-dev/skiff/internal/pki"
	"github.com/skiff-dev/skiff/internal/registry"
	"github.com/skiff-dev/skiff/internal/registry/builtin"
	"github.com/skiff-dev/skiff/internal/storage"
)

// startAPIServer assembles a real API server over a fresh embedded etcd
// (every builtin resource, discovery, TLS with the admin certificate) and
// returns a client configuration for it. Everything stops with the test.
func startAPIServer(t *testing.T) *rest.Config {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	client := etcdtest.Start(t)

	scheme := runtime.NewScheme()
	if err := clientgoscheme.AddToScheme(scheme); err != nil {
		t.Fatalf("building scheme: %v", err)
	}
	resources := builtin.Resources()
	newStorage := func(res *registry.Resource) storage.Interface {
		group := res.GVR.Group
		if group == "" {
			group = "core"
		}
		st, err := storage.New(ctx, storage.Config{
			Client:      client,
			Prefix:      "/registry/" + group + "/" + res.GVR.Resource + "/",
			Resource:    res.GroupResource(),
			Codec:       storage.ProtobufCodec(scheme, res.GVR.GroupVersion()),
			NewFunc:     res.Strategy.New,
			NewListFunc: res.Strategy.NewList,
			Attrs:       res.Strategy.Attrs,
		})
		if err != nil {
			t.Fatalf("creating storage for %s: %v", res.GroupResource(), err)
		}
		return st
	}
	quiet := slog.New(slog.DiscardHandler)
	var namespaces *registry.Store
	for _, res := range resources {
		if res.GVR.Group == "" && res.GVR.Resource == "namespaces" {
			namespaces = registry.NewStore(res, newStorage(res), registry.StoreOptions{Logger: quiet})
		}
	}
	if namespaces == nil {
		t.Fatal("no namespaces resource in builtin.Resources()")
	}
	stores := []*registry.Store{namespaces}
	for _, res := range resources {
		if res != namespaces.Resource {
			stores = append(stores, registry.NewStore(res, newStorage(res), registry.StoreOptions{Namespaces: namespaces, Logger: quiet}))
		}
	}

	bundle, err := pki.Ensure(pki.Options{Dir: t.TempDir(), Hostname: "localhost"})
	if err != nil {
		t.Fatalf("creating certificates: %v", err)
	}
	srv, err := apiserver.New(apiserver.Config{
		Stores:    stores,
		Scheme:    scheme,
		Discovery: discovery.New(resources),
		ClientCAs: bundle.ClientCAs(),
		Logger:    quiet,
	})
	if err != nil {
		t.Fatalf("creating API server: %v", err)
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatalf("listening: %v", err)
	}
	served := make(chan error, 1)
	go func() { served <- srv.Serve(ctx, ln, bundle.ServerTLSConfig()) }()
	t.Cleanup(func() {
		cancel()
		if err := <-served; err != nil {
			t.Errorf("serving: %v", err)
		}
	})
	return &rest.Config{
		Host: "https://" + ln.Addr().String(),
		TLSClientConfig: rest.TLSClientConfig{
			CAData:   bundle.CAPEM,
			CertData: bundle.AdminCertPEM,
			KeyData:  bundle.AdminKeyPEM,
		},
		QPS: -1,
	}
}

// startController runs a Controller against cfg until the test ends.
func startController(t *testing.T, cfg *rest.Config) {
	t.Helper()
	cs, err := kubernetes.NewForConfig(cfg)
	if err != nil {
		t.Fatalf("building clientset: %v", err)
	}
	meta, err := metadata.NewForConfig(cfg)
	if err != nil {
		t.Fatalf("building metadata client: %v", err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- New(cs, meta, cs.Discovery(), slog.New(slog.NewTextHandler(tWriter{t}, nil))).Run(ctx) }()
	t.Cleanup(func() {
		cancel()
		if err := <-done; err != nil {
			t.Errorf("controller: %v", err)
		}
	})
}

// tWriter sends log lines to t.Log.
type tWriter struct{ t *testing.T }

func (w tWriter) Write(p []byte) (int, error) {
	w.t.Log(strings.TrimRight(string(p), "\n"))
	return len(p), nil
}

// poll calls f until it returns nil or the timeout passes, then fails the
// test with f's last error.
func poll(t *testing.T, timeout time.Duration, what string, f func() error) {
	t.Helper()
	deadline := time.Now().Add(timeout)
	for {
		err := f()
		if err == nil {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("%s: not done within %v: %v", what, timeout, err)
		}
		<-time.After(20 * time.Millisecond)
	}
}

func TestControllerEmptiesAndFinalizesNamespace(t *testing.T) {
	cfg := startAPIServer(t)
	startController(t, cfg)
	cs, err := kubernetes.NewForConfig(cfg)
	if err != nil {
		t.Fatalf("building clientset: %v", err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()

	const ns = "doomed"
	if _, err := cs.CoreV1().Namespaces().Create(ctx, &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: ns}}, metav1.CreateOptions{}); err != nil {
		t.Fatalf("creating namespace: %v", err)
	}
	// A namespace that is not being deleted is left alone.
	const kept = "kept"
	if _, err := cs.CoreV1().Namespaces().Create(ctx, &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: kept}}, metav1.CreateOptions{}); err != nil {
		t.Fatalf("creating namespace: %v", err)
	}
	for _, n := range []string{ns, kept} {
		for _, name := range []string{"a", "b"} {
			cm := &corev1.ConfigMap{ObjectMeta: metav1.ObjectMeta{Name: name}}
			if _, err := cs.CoreV1().ConfigMaps(n).Create(ctx, cm, metav1.CreateOptions{}); err != nil {
				t.Fatalf("creating config map: %v", err)
			}
		}
	}
	held := &corev1.ConfigMap{ObjectMeta: metav1.ObjectMeta{Name: "held", Finalizers: []string{"example.com/hold"}}}
	if _, err := cs.CoreV1().ConfigMaps(ns).Create(ctx, held, metav1.CreateOptions{}); err != nil {
		t.Fatalf("creating config map: %v", err)
	}
	secret := &corev1.Secret{ObjectMeta: metav1.ObjectMeta{Name: "s"}}
	if _, err := cs.CoreV1().Secrets(ns).Create(ctx, secret, metav1.CreateOptions{}); err != nil {
		t.Fatalf("creating secret: %v", err)
	}

	if err := cs.CoreV1().Namespaces().Delete(ctx, ns, metav1.DeleteOptions{}); err != nil {
		t.Fatalf("deleting namespace: %v", err)
	}

	// Content without finalizers goes; the held config map is marked and
	// stays, and the conditions say why the namespace waits.
	poll(t, 30*time.Second, "conditions naming the remaining finalizer", func() error {
		got, err := cs.CoreV1().Namespaces().Get(ctx, ns, metav1.GetOptions{})
		if err != nil {
			return err
		}
		want := map[corev1.NamespaceConditionType]corev1.ConditionStatus{
			corev1.NamespaceDeletionDiscoveryFailure: corev1.ConditionFalse,
			corev1.NamespaceDeletionGVParsingFailure: corev1.ConditionFalse,
			corev1.NamespaceDeletionContentFailure:   corev1.ConditionFalse,
			corev1.NamespaceContentRemaining:         corev1.ConditionTrue,
			corev1.NamespaceFinalizersRemaining:      corev1.ConditionTrue,
		}
		for _, c := range got.Status.Conditions {
			if want[c.Type] == c.Status {
				delete(want, c.Type)
			}
			if c.Type == corev1.NamespaceFinalizersRemaining && !strings.Contains(c.Message, "example.com/hold") {
				return fmt.Errorf("finalizers condition message %q does not name the finalizer", c.Message)
			}
		}
		if len(want) > 0 {
			return fmt.Errorf("conditions %+v; missing %v", got.Status.Conditions, want)
		}
		return nil
	})
	list, err := cs.CoreV1().ConfigMaps(ns).List(ctx, metav1.ListOptions{})
	if err != nil {
		t.Fatalf("listing config maps: %v", err)
	}
	if len(list.Items) != 1 || list.Items[0].Name != "held" || list.Items[0].DeletionTimestamp == nil {
		t.Fatalf("config maps left while waiting: %+v; want only the held one, marked", list.Items)
	}
	if _, err := cs.CoreV1().Secrets(ns).Get(ctx, "s", metav1.GetOptions{}); !apierrors.IsNotFound(err) {
		t.Errorf("secret: got %v, want NotFound", err)
	}

	// Releasing the finalizer lets the namespace go.
	patch := []byte(`{"metadata":{"finalizers":null}}`)
	if _, err := cs.CoreV1().ConfigMaps(ns).Patch(ctx, "held", types.MergePatchType, patch, metav1.PatchOptions{}); err != nil {
		t.Fatalf("releasing the finalizer: %v", err)
	}
	poll(t, 30*time.Second, "namespace gone", func() error {
		_, err := cs.CoreV1().Namespaces().Get(ctx, ns, metav1.GetOptions{})
		if apierrors.IsNotFound(err) {
			return nil
		}
		if err == nil {
			err = errors.New("still there")
		}
		return err
	})

	// The other namespace kept its content.
	list, err = cs.CoreV1().ConfigMaps(kept).List(ctx, metav1.ListOptions{})
	if err != nil {
		t.Fatalf("listing config maps: %v", err)
	}
	if len(list.Items) != 2 {
		t.Errorf("config maps in the untouched namespace: got %d, want 2", len(list.Items))
	}
}
