package apiservice_test

import (
	"context"
	"fmt"
	"testing"

	apiextensionsv1 "k8s.io/apiextensions-apiserver/pkg/apis/apiextensions/v1"
	apiextensionsclient "k8s.io/apiextensions-apiserver/pkg/client/clientset/clientset"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/client-go/dynamic"
	apiregistrationv1 "k8s.io/kube-aggregator/pkg/apis/apiregistration/v1"
	"k8s.io/utils/ptr"

	"github.com/skiff-dev/skiff/internal/apiservice"
	"github.com/skiff-dev/skiff/internal/controller/controllertest"
	"github.com/skiff-dev/skiff/internal/testserver"
)

var apiServices = apiregistrationv1.SchemeGroupVersion.WithResource("apiservices")

func get(ctx context.Context, dyn dynamic.Interface, name string) (*apiregistrationv1.APIService, error) {
	u, err := dyn.Resource(apiServices).Get(ctx, name, metav1.GetOptions{})
	if err != nil {
		return nil, err
	}
	a := &apiregistrationv1.APIService{}
	if err := runtime.DefaultUnstructuredConverter.FromUnstructured(u.Object, a); err != nil {
		return nil, err
	}
	return a, nil
}

func available(a *apiregistrationv1.APIService) string {
	for _, c := range a.Status.Conditions {
		if c.Type == apiregistrationv1.Available {
			return string(c.Status) + " " + c.Reason
		}
	}
	return "none"
}

// TestRegistration: the API server (which runs the controller itself)
// registers a local APIService per served group version with upstream's
// priorities, one per custom resource group version while its CRD exists,
// and reports a remote APIService without its service as unavailable.
func TestRegistration(t *testing.T) {
	cfg := testserver.Start(t, testserver.Options{})
	ctx := context.Background()
	dyn := dynamic.NewForConfigOrDie(cfg)

	for _, tc := range []struct {
		name               string
		label              string
		group, version     int32
		wantGroup, wantVer string
	}{
		{"v1.", "onstart", 18000, 1, "", "v1"},
		{"v1.apps", "onstart", 17800, 15, "apps", "v1"},
		{"v2.autoscaling", "onstart", 17500, 30, "autoscaling", "v2"},
		{"v1.autoscaling", "onstart", 17500, 15, "autoscaling", "v1"},
		{"v1.apiregistration.k8s.io", "onstart", 18000, 15, "apiregistration.k8s.io", "v1"},
	} {
		controllertest.Eventually(t, func() error {
			a, err := get(ctx, dyn, tc.name)
			if err != nil {
				return err
			}
			if got := available(a); got != "True Local" {
				return fmt.Errorf("%s: Available %s", tc.name, got)
			}
			if a.Labels[apiservice.AutomanagedLabel] != tc.label || a.Spec.Service != nil ||
				a.Spec.Group != tc.wantGroup || a.Spec.Version != tc.wantVer ||
				a.Spec.GroupPriorityMinimum != tc.group || a.Spec.VersionPriority != tc.version {
				return fmt.Errorf("%s: labels %v, spec %+v", tc.name, a.Labels, a.Spec)
			}
			return nil
		})
	}

	// A CRD's group version comes and goes with it.
	ext := apiextensionsclient.NewForConfigOrDie(cfg)
	crd := &apiextensionsv1.CustomResourceDefinition{
		ObjectMeta: metav1.ObjectMeta{Name: "gadgets.reg.example.com"},
		Spec: apiextensionsv1.CustomResourceDefinitionSpec{
			Group: "reg.example.com", Scope: apiextensionsv1.NamespaceScoped,
			Names: apiextensionsv1.CustomResourceDefinitionNames{Plural: "gadgets", Kind: "Gadget"},
			Versions: []apiextensionsv1.CustomResourceDefinitionVersion{{
				Name: "v1beta1", Served: true, Storage: true,
				Schema: &apiextensionsv1.CustomResourceValidation{OpenAPIV3Schema: &apiextensionsv1.JSONSchemaProps{
					Type: "object", XPreserveUnknownFields: ptr.To(true),
				}},
			}},
		},
	}
	if _, err := ext.ApiextensionsV1().CustomResourceDefinitions().Create(ctx, crd, metav1.CreateOptions{}); err != nil {
		t.Fatalf("creating CRD: %v", err)
	}
	controllertest.Eventually(t, func() error {
		a, err := get(ctx, dyn, "v1beta1.reg.example.com")
		if err != nil {
			return err
		}
		if a.Labels[apiservice.AutomanagedLabel] != "true" || a.Spec.GroupPriorityMinimum != 1000 || a.Spec.VersionPriority != 100 || available(a) != "True Local" {
			return fmt.Errorf("CRD's APIService: labels %v, spec %+v, %s", a.Labels, a.Spec, available(a))
		}
		return nil
	})
	if err := ext.ApiextensionsV1().CustomResourceDefinitions().Delete(ctx, crd.Name, metav1.DeleteOptions{}); err != nil {
		t.Fatalf("deleting CRD: %v", err)
	}
	controllertest.Eventually(t, func() error {
		if _, err := get(ctx, dyn, "v1beta1.reg.example.com"); !apierrors.IsNotFound(err) {
			return fmt.Errorf("CRD's APIService after the CRD's delete: %v", err)
		}
		return nil
	})

	// A remote APIService whose service does not exist.
	remote := &unstructured.Unstructured{Object: map[string]any{
		"apiVersion": "apiregistration.k8s.io/v1", "kind": "APIService",
		"metadata": map[string]any{"name": "v1alpha1.remote.example.com"},
		"spec": map[string]any{
			"group": "remote.example.com", "version": "v1alpha1",
			"groupPriorityMinimum": int64(100), "versionPriority": int64(10),
			"insecureSkipTLSVerify": true,
			"service":               map[string]any{"namespace": "default", "name": "nothing"},
		},
	}}
	created, err := dyn.Resource(apiServices).Create(ctx, remote, metav1.CreateOptions{})
	if err != nil {
		t.Fatalf("creating remote APIService: %v", err)
	}
	if port, _, _ := unstructured.NestedInt64(created.Object, "spec", "service", "port"); port != 443 {
		t.Errorf("service port defaulted to %d, want 443", port)
	}
	controllertest.Eventually(t, func() error {
		a, err := get(ctx, dyn, "v1alpha1.remote.example.com")
		if err != nil {
			return err
		}
		if got := available(a); got != "False ServiceNotFound" {
			return fmt.Errorf("remote APIService: Available %s", got)
		}
		if a.Labels[apiservice.AutomanagedLabel] != "" {
			return fmt.Errorf("remote APIService labelled %v", a.Labels)
		}
		return nil
	})
}

// TestValidation: upstream's rules for APIService specs, as 422s naming
// the field.
func TestValidation(t *testing.T) {
	cfg := testserver.Start(t, testserver.Options{})
	ctx := context.Background()
	dyn := dynamic.NewForConfigOrDie(cfg)
	for _, tc := range []struct {
		name      string
		objName   string
		spec      map[string]any
		wantField string
	}{
		{"name not version.group", "v1.other.example.com",
			map[string]any{"group": "x.example.com", "version": "v1", "groupPriorityMinimum": int64(1), "versionPriority": int64(1)}, "metadata.name"},
		{"empty group but not v1", "v2.",
			map[string]any{"group": "", "version": "v2", "groupPriorityMinimum": int64(1), "versionPriority": int64(1)}, "spec.group"},
		{"group priority out of range", "v1.x.example.com",
			map[string]any{"group": "x.example.com", "version": "v1", "groupPriorityMinimum": int64(20001), "versionPriority": int64(1)}, "spec.groupPriorityMinimum"},
		{"version priority zero", "v1.x.example.com",
			map[string]any{"group": "x.example.com", "version": "v1", "groupPriorityMinimum": int64(1)}, "spec.versionPriority"},
		{"local with a CA bundle", "v1.x.example.com",
			map[string]any{"group": "x.example.com", "version": "v1", "groupPriorityMinimum": int64(1), "versionPriority": int64(1), "caBundle": "Zm9v"}, "spec.caBundle"},
		{"service without a name", "v1.x.example.com",
			map[string]any{"group": "x.example.com", "version": "v1", "groupPriorityMinimum": int64(1), "versionPriority": int64(1),
				"service": map[string]any{"namespace": "default"}}, "spec.service.name"},
		{"CA bundle and skip verify", "v1.x.example.com",
			map[string]any{"group": "x.example.com", "version": "v1", "groupPriorityMinimum": int64(1), "versionPriority": int64(1),
				"caBundle": "Zm9v", "insecureSkipTLSVerify": true,
				"service": map[string]any{"namespace": "default", "name": "s"}}, "spec.insecureSkipTLSVerify"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			obj := &unstructured.Unstructured{Object: map[string]any{
				"apiVersion": "apiregistration.k8s.io/v1", "kind": "APIService",
				"metadata": map[string]any{"name": tc.objName},
				"spec":     tc.spec,
			}}
			_, err := dyn.Resource(apiServices).Create(ctx, obj, metav1.CreateOptions{})
			if !apierrors.IsInvalid(err) {
				t.Fatalf("create: %v, want 422", err)
			}
			st := err.(apierrors.APIStatus).Status()
			found := false
			for _, c := range st.Details.Causes {
				if c.Field == tc.wantField {
					found = true
				}
			}
			if !found {
				t.Errorf("causes %+v do not name %s", st.Details.Causes, tc.wantField)
			}
		})
	}
}
