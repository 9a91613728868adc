package crdcontroller

import (
	"context"
	"fmt"
	"log/slog"
	"slices"
	"sync/atomic"
	"testing"
	"time"

	apiextensionsv1 "k8s.io/apiextensions-apiserver/pkg/apis/apiextensions/v1"
	"k8s.io/apiextensions-apiserver/pkg/client/clientset/clientset/fake"
	"k8s.io/apiextensions-apiserver/pkg/client/informers/externalversions"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/runtime/schema"
	dynamicfake "k8s.io/client-go/dynamic/fake"
	clienttesting "k8s.io/client-go/testing"
)

var widgetsGVR = schema.GroupVersionResource{Group: "example.com", Version: "v1", Resource: "widgets"}

// widgetCRD is a CRD of widgets.example.com as the API server stores it
// after create (defaults applied, status cleared).
func widgetCRD() *apiextensionsv1.CustomResourceDefinition {
	return &apiextensionsv1.CustomResourceDefinition{
		ObjectMeta: metav1.ObjectMeta{Name: "widgets.example.com", UID: "uid-1", ResourceVersion: "1"},
		Spec: apiextensionsv1.CustomResourceDefinitionSpec{
			Group: "example.com", Scope: apiextensionsv1.NamespaceScoped,
			Names: names("widgets", "widget", "Widget", "wd"),
			Versions: []apiextensionsv1.CustomResourceDefinitionVersion{
				{Name: "v1beta1", Served: true},
				{Name: "v1", Served: true, Storage: true},
			},
		},
		Status: apiextensionsv1.CustomResourceDefinitionStatus{StoredVersions: []string{"v1"}},
	}
}

func widget(ns, name string) *unstructured.Unstructured {
	u := &unstructured.Unstructured{}
	u.SetAPIVersion("example.com/v1")
	u.SetKind("Widget")
	u.SetNamespace(ns)
	u.SetName(name)
	return u
}

// testEnv is the controller over fake clients, running until the test ends.
type testEnv struct {
	crds   *fake.Clientset
	dyn    *dynamicfake.FakeDynamicClient
	served atomic.Bool
}

func start(t *testing.T, crds []runtime.Object, widgets ...runtime.Object) *testEnv {
	t.Helper()
	env := &testEnv{crds: fake.NewSimpleClientset(crds...)}
	scheme := runtime.NewScheme()
	env.dyn = dynamicfake.NewSimpleDynamicClientWithCustomListKinds(scheme, map[schema.GroupVersionResource]string{widgetsGVR: "WidgetList"}, widgets...)
	factory := externalversions.NewSharedInformerFactory(env.crds, 0)
	served := func(_ context.Context, gvr schema.GroupVersionResource) (bool, error) {
		if gvr != widgetsGVR {
			return false, fmt.Errorf("probe of %s, want %s", gvr, widgetsGVR)
		}
		return env.served.Load(), nil
	}
	log := slog.New(slog.NewTextHandler(testLog{t}, &slog.HandlerOptions{Level: slog.LevelDebug}))
	c := newController(env.crds.ApiextensionsV1().CustomResourceDefinitions(), env.dyn, served,
		factory.Apiextensions().V1().CustomResourceDefinitions(), log)
	ctx, cancel := context.WithCancel(context.Background())
	factory.StartWithContext(ctx)
	done := make(chan error, 1)
	go func() { done <- c.run(ctx) }()
	t.Cleanup(func() {
		cancel()
		if err := <-done; err != nil {
			t.Errorf("run: %v", err)
		}
		factory.Shutdown()
	})
	return env
}

func (env *testEnv) get(t *testing.T, name string) (*apiextensionsv1.CustomResourceDefinition, error) {
	t.Helper()
	return env.crds.ApiextensionsV1().CustomResourceDefinitions().Get(context.Background(), name, metav1.GetOptions{})
}

// hasCondition checks crd's condition t.
func hasCondition(crd *apiextensionsv1.CustomResourceDefinition, t apiextensionsv1.CustomResourceDefinitionConditionType, status apiextensionsv1.ConditionStatus, reason string) error {
	c := findCondition(crd, t)
	if c == nil {
		return fmt.Errorf("no %s condition in %+v", t, crd.Status.Conditions)
	}
	if c.Status != status || c.Reason != reason {
		return fmt.Errorf("%s = %s %s (%q), want %s %s", t, c.Status, c.Reason, c.Message, status, reason)
	}
	return nil
}

func TestNamesThenEstablished(t *testing.T) {
	taken := names("gadgets", "gadget", "Gadget", "wd")
	gadgets := &apiextensionsv1.CustomResourceDefinition{
		ObjectMeta: metav1.ObjectMeta{Name: "gadgets.example.com", UID: "uid-2", ResourceVersion: "1"},
		Spec:       apiextensionsv1.CustomResourceDefinitionSpec{Group: "example.com", Names: taken},
		Status:     apiextensionsv1.CustomResourceDefinitionStatus{AcceptedNames: taken},
	}
	env := start(t, []runtime.Object{widgetCRD(), gadgets})

	// The short name "wd" is the gadgets'.
	eventually(t, func() error {
		crd, err := env.get(t, "widgets.example.com")
		if err != nil {
			return err
		}
		if err := hasCondition(crd, apiextensionsv1.NamesAccepted, apiextensionsv1.ConditionFalse, "ShortNamesConflict"); err != nil {
			return err
		}
		return hasCondition(crd, apiextensionsv1.Established, apiextensionsv1.ConditionFalse, "NotAccepted")
	})

	// The gadgets go: the widgets get every name, then wait to be served.
	if err := env.crds.ApiextensionsV1().CustomResourceDefinitions().Delete(context.Background(), "gadgets.example.com", metav1.DeleteOptions{}); err != nil {
		t.Fatal(err)
	}
	eventually(t, func() error {
		crd, err := env.get(t, "widgets.example.com")
		if err != nil {
			return err
		}
		if !namesEqual(crd.Status.AcceptedNames, crd.Spec.Names) {
			return fmt.Errorf("accepted names %+v", crd.Status.AcceptedNames)
		}
		if err := hasCondition(crd, apiextensionsv1.NamesAccepted, apiextensionsv1.ConditionTrue, "NoConflicts"); err != nil {
			return err
		}
		return hasCondition(crd, apiextensionsv1.Established, apiextensionsv1.ConditionFalse, "Installing")
	})

	env.served.Store(true)
	eventually(t, func() error {
		crd, err := env.get(t, "widgets.example.com")
		if err != nil {
			return err
		}
		return hasCondition(crd, apiextensionsv1.Established, apiextensionsv1.ConditionTrue, "InitialNamesAccepted")
	})
}

// deleted is a CRD being deleted with the cleanup finalizer, in the given
// state (Established or not).
func deleted(established bool) *apiextensionsv1.CustomResourceDefinition {
	crd := widgetCRD()
	crd.Status.AcceptedNames = crd.Spec.Names
	now := metav1.Now()
	crd.DeletionTimestamp = &now
	crd.Finalizers = []string{apiextensionsv1.CustomResourceCleanupFinalizer, "example.com/other"}
	crd.Status.Conditions = []apiextensionsv1.CustomResourceDefinitionCondition{
		{Type: apiextensionsv1.NamesAccepted, Status: apiextensionsv1.ConditionTrue, Reason: "NoConflicts"},
		{Type: apiextensionsv1.Terminating, Status: apiextensionsv1.ConditionTrue, Reason: "InstanceDeletionPending"},
	}
	if established {
		crd.Status.Conditions = append(crd.Status.Conditions, apiextensionsv1.CustomResourceDefinitionCondition{
			Type: apiextensionsv1.Established, Status: apiextensionsv1.ConditionTrue, Reason: "InitialNamesAccepted"})
	}
	return crd
}

func TestCleanup(t *testing.T) {
	tests := []struct {
		name        string
		established bool
		wantReason  string
	}{
		{"established", true, "InstanceDeletionCompleted"},
		{"accepted, not yet established", false, "InstanceDeletionCompleted"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			env := start(t, []runtime.Object{deleted(tt.established)},
				widget("a", "one"), widget("a", "two"), widget("b", "three"))
			// The fake has no deletecollection: the controller falls back
			// to deleting one by one, as for a server without it.
			env.dyn.PrependReactor("delete-collection", "widgets", func(clienttesting.Action) (bool, runtime.Object, error) {
				return true, nil, apierrors.NewMethodNotSupported(widgetsGVR.GroupResource(), "deletecollection")
			})
			eventually(t, func() error {
				crd, err := env.get(t, "widgets.example.com")
				if err != nil {
					return err
				}
				if slices.Contains(crd.Finalizers, apiextensionsv1.CustomResourceCleanupFinalizer) {
					return fmt.Errorf("finalizers %v", crd.Finalizers)
				}
				if !slices.Contains(crd.Finalizers, "example.com/other") {
					return fmt.Errorf("the other finalizer is gone: %v", crd.Finalizers)
				}
				return hasCondition(crd, apiextensionsv1.Terminating, apiextensionsv1.ConditionFalse, tt.wantReason)
			})
			left, err := env.dyn.Resource(widgetsGVR).List(context.Background(), metav1.ListOptions{})
			if err != nil {
				t.Fatal(err)
			}
			if len(left.Items) != 0 {
				t.Errorf("%d widgets left", len(left.Items))
			}
		})
	}
}

func TestCleanupFailureIsReportedAndRetried(t *testing.T) {
	env := start(t, []runtime.Object{deleted(true)}, widget("a", "one"))
	var fail atomic.Bool
	fail.Store(true)
	env.dyn.PrependReactor("delete-collection", "widgets", func(clienttesting.Action) (bool, runtime.Object, error) {
		if fail.Load() {
			return true, nil, apierrors.NewInternalError(fmt.Errorf("etcd is down"))
		}
		return true, nil, apierrors.NewMethodNotSupported(widgetsGVR.GroupResource(), "deletecollection")
	})
	eventually(t, func() error {
		crd, err := env.get(t, "widgets.example.com")
		if err != nil {
			return err
		}
		return hasCondition(crd, apiextensionsv1.Terminating, apiextensionsv1.ConditionTrue, "InstanceDeletionFailed")
	})
	fail.Store(false)
	eventually(t, func() error {
		crd, err := env.get(t, "widgets.example.com")
		if err != nil {
			return err
		}
		if len(crd.Finalizers) != 1 {
			return fmt.Errorf("finalizers %v", crd.Finalizers)
		}
		return hasCondition(crd, apiextensionsv1.Terminating, apiextensionsv1.ConditionFalse, "InstanceDeletionCompleted")
	})
}

func TestCleanupNeverEstablished(t *testing.T) {
	crd := deleted(false)
	crd.Status.Conditions = crd.Status.Conditions[1:] // no NamesAccepted
	env := start(t, []runtime.Object{crd}, widget("a", "one"))
	eventually(t, func() error {
		crd, err := env.get(t, "widgets.example.com")
		if err != nil {
			return err
		}
		if len(crd.Finalizers) != 1 {
			return fmt.Errorf("finalizers %v", crd.Finalizers)
		}
		return hasCondition(crd, apiextensionsv1.Terminating, apiextensionsv1.ConditionFalse, "NeverEstablished")
	})
}

func TestServedGVR(t *testing.T) {
	tests := []struct {
		name     string
		versions []apiextensionsv1.CustomResourceDefinitionVersion
		want     string
		ok       bool
	}{
		{"storage served", []apiextensionsv1.CustomResourceDefinitionVersion{{Name: "v1beta1", Served: true}, {Name: "v1", Served: true, Storage: true}}, "v1", true},
		{"storage not served", []apiextensionsv1.CustomResourceDefinitionVersion{{Name: "v1beta1", Served: true}, {Name: "v1", Storage: true}, {Name: "v2", Served: true}}, "v1beta1", true},
		{"none served", []apiextensionsv1.CustomResourceDefinitionVersion{{Name: "v1", Storage: true}}, "", false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			crd := widgetCRD()
			crd.Spec.Versions = tt.versions
			gvr, ok := servedGVR(crd)
			if ok != tt.ok || gvr.Version != tt.want {
				t.Errorf("servedGVR = %v, %v; want version %q, %v", gvr, ok, tt.want, tt.ok)
			}
		})
	}
}

func TestEstablishBackoff(t *testing.T) {
	for _, tt := range []struct{ waited, want time.Duration }{
		{0, 10 * time.Millisecond}, {time.Second, 125 * time.Millisecond}, {time.Hour, time.Second},
	} {
		if got := establishBackoff(tt.waited); got != tt.want {
			t.Errorf("establishBackoff(%s) = %s, want %s", tt.waited, got, tt.want)
		}
	}
}

type testLog struct{ t *testing.T }

func (w testLog) Write(p []byte) (int, error) { w.t.Log(string(p)); return len(p), nil }

// eventually polls f until it returns nil, failing with its last error
// after 10 s. (controllertest.Eventually cannot be imported here: it
// starts a server, which runs this package.)
func eventually(t *testing.T, f func() error) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for {
		err := f()
		if err == nil {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("condition not met before deadline: %v", err)
		}
		<-time.After(10 * time.Millisecond)
	}
}
