package crdcontroller_test

import (
	"context"
	"fmt"
	"testing"

	corev1 "k8s.io/api/core/v1"
	apiextensionsv1 "k8s.io/apiextensions-apiserver/pkg/apis/apiextensions/v1"
	apiextensionsclient "k8s.io/apiextensions-apiserver/pkg/client/clientset/clientset"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/client-go/dynamic"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/rest"

	"github.com/skiff-dev/skiff/internal/controller/controllertest"
	"github.com/skiff-dev/skiff/internal/testserver"
)

// The API server ("skiff server", as testserver starts it) runs the
// controller itself; these tests drive it through the API only.

func jsonConfig(cfg *rest.Config) *rest.Config {
	c := rest.CopyConfig(cfg)
	c.ContentType = "application/json"
	c.AcceptContentTypes = "application/json"
	return c
}

// crd is a minimal valid CRD of group example.com.
func crd(plural, kind string, scope apiextensionsv1.ResourceScope, shortNames ...string) *apiextensionsv1.CustomResourceDefinition {
	return &apiextensionsv1.CustomResourceDefinition{
		ObjectMeta: metav1.ObjectMeta{Name: plural + ".example.com"},
		Spec: apiextensionsv1.CustomResourceDefinitionSpec{
			Group: "example.com", Scope: scope,
			Names: apiextensionsv1.CustomResourceDefinitionNames{Plural: plural, Kind: kind, ShortNames: shortNames},
			Versions: []apiextensionsv1.CustomResourceDefinitionVersion{{
				Name: "v1", Served: true, Storage: true,
				Schema: &apiextensionsv1.CustomResourceValidation{OpenAPIV3Schema: &apiextensionsv1.JSONSchemaProps{
					Type: "object",
					Properties: map[string]apiextensionsv1.JSONSchemaProps{
						"spec": {Type: "object", XPreserveUnknownFields: ptrTo(true)},
					},
				}},
			}},
		},
	}
}

func ptrTo[T any](v T) *T { return &v }

func condition(c *apiextensionsv1.CustomResourceDefinition, t apiextensionsv1.CustomResourceDefinitionConditionType) string {
	for _, cond := range c.Status.Conditions {
		if cond.Type == t {
			return string(cond.Status) + " " + cond.Reason
		}
	}
	return "<none>"
}

func TestCRDLifecycle(t *testing.T) {
	cfg := testserver.Start(t, testserver.Options{})
	ctx := context.Background()
	crds := apiextensionsclient.NewForConfigOrDie(jsonConfig(cfg)).ApiextensionsV1().CustomResourceDefinitions()
	dyn := dynamic.NewForConfigOrDie(jsonConfig(cfg))
	core := kubernetes.NewForConfigOrDie(cfg)

	waitFor := func(name string, want map[apiextensionsv1.CustomResourceDefinitionConditionType]string) *apiextensionsv1.CustomResourceDefinition {
		t.Helper()
		var got *apiextensionsv1.CustomResourceDefinition
		controllertest.Eventually(t, func() error {
			var err error
			if got, err = crds.Get(ctx, name, metav1.GetOptions{}); err != nil {
				return err
			}
			for ct, w := range want {
				if c := condition(got, ct); c != w {
					return fmt.Errorf("%s %s = %s, want %s", name, ct, c, w)
				}
			}
			return nil
		})
		return got
	}

	if _, err := crds.Create(ctx, crd("widgets", "Widget", apiextensionsv1.NamespaceScoped, "wd"), metav1.CreateOptions{}); err != nil {
		t.Fatalf("creating the CRD: %v", err)
	}
	got := waitFor("widgets.example.com", map[apiextensionsv1.CustomResourceDefinitionConditionType]string{
		apiextensionsv1.NamesAccepted: "True NoConflicts",
		apiextensionsv1.Established:   "True InitialNamesAccepted",
	})
	if got.Status.AcceptedNames.Plural != "widgets" || got.Status.AcceptedNames.ListKind != "WidgetList" {
		t.Errorf("accepted names %+v", got.Status.AcceptedNames)
	}

	// A second CRD of the group asking for a short name that is taken.
	if _, err := crds.Create(ctx, crd("gadgets", "Gadget", apiextensionsv1.ClusterScoped, "wd"), metav1.CreateOptions{}); err != nil {
		t.Fatalf("creating the second CRD: %v", err)
	}
	waitFor("gadgets.example.com", map[apiextensionsv1.CustomResourceDefinitionConditionType]string{
		apiextensionsv1.NamesAccepted: "False ShortNamesConflict",
		apiextensionsv1.Established:   "False NotAccepted",
	})

	// Custom resources in two namespaces.
	gvr := schema.GroupVersionResource{Group: "example.com", Version: "v1", Resource: "widgets"}
	for _, ns := range []string{"crd-a", "crd-b"} {
		if _, err := core.CoreV1().Namespaces().Create(ctx, &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: ns}}, metav1.CreateOptions{}); err != nil {
			t.Fatalf("creating namespace %s: %v", ns, err)
		}
		for i := range 2 {
			w := &unstructured.Unstructured{Object: map[string]any{
				"apiVersion": "example.com/v1", "kind": "Widget",
				"metadata": map[string]any{"name": fmt.Sprintf("w%d", i)},
				"spec":     map[string]any{"size": int64(i)},
			}}
			if _, err := dyn.Resource(gvr).Namespace(ns).Create(ctx, w, metav1.CreateOptions{}); err != nil {
				t.Fatalf("creating a widget in %s: %v", ns, err)
			}
		}
	}

	// Deleting the CRD deletes the widgets, then the CRD; its names are
	// then free for the gadgets.
	if err := crds.Delete(ctx, "widgets.example.com", metav1.DeleteOptions{}); err != nil {
		t.Fatalf("deleting the CRD: %v", err)
	}
	controllertest.Eventually(t, func() error {
		_, err := crds.Get(ctx, "widgets.example.com", metav1.GetOptions{})
		if apierrors.IsNotFound(err) {
			return nil
		}
		if err != nil {
			return err
		}
		return fmt.Errorf("CRD still there")
	})
	waitFor("gadgets.example.com", map[apiextensionsv1.CustomResourceDefinitionConditionType]string{
		apiextensionsv1.NamesAccepted: "True NoConflicts",
		apiextensionsv1.Established:   "True InitialNamesAccepted",
	})

	// Recreated, the CRD has no widgets left over.
	if _, err := crds.Create(ctx, crd("widgets", "Widget", apiextensionsv1.NamespaceScoped), metav1.CreateOptions{}); err != nil {
		t.Fatalf("recreating the CRD: %v", err)
	}
	waitFor("widgets.example.com", map[apiextensionsv1.CustomResourceDefinitionConditionType]string{
		apiextensionsv1.Established: "True InitialNamesAccepted",
	})
	list, err := dyn.Resource(gvr).List(ctx, metav1.ListOptions{})
	if err != nil {
		t.Fatalf("listing widgets: %v", err)
	}
	if len(list.Items) != 0 {
		t.Errorf("%d widgets survived their CRD", len(list.Items))
	}
}
