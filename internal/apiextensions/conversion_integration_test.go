package apiextensions_test

import (
	"context"
	"encoding/json"
	"encoding/pem"
	"fmt"
	"net/http"
	"net/http/httptest"
	"testing"
	"time"

	apiextensionsv1 "k8s.io/apiextensions-apiserver/pkg/apis/apiextensions/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/apimachinery/pkg/watch"
	"k8s.io/client-go/dynamic"
	"k8s.io/utils/ptr"

	"github.com/skiff-dev/skiff/internal/testserver"
)

var (
	widgetsV1 = schema.GroupVersionResource{Group: "conv.example.com", Version: "v1", Resource: "widgets"}
	widgetsV2 = schema.GroupVersionResource{Group: "conv.example.com", Version: "v2", Resource: "widgets"}
)

// widgetConverter is a conversion webhook: v1's spec.size is v2's
// spec.dimension.
func widgetConverter(t *testing.T) *httptest.Server {
	t.Helper()
	return httptest.NewTLSServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		var review apiextensionsv1.ConversionReview
		if err := json.NewDecoder(r.Body).Decode(&review); err != nil || review.Request == nil {
			http.Error(w, "bad review", http.StatusBadRequest)
			return
		}
		resp := &apiextensionsv1.ConversionResponse{UID: review.Request.UID, Result: metav1.Status{Status: metav1.StatusSuccess}}
		for _, raw := range review.Request.Objects {
			u := &unstructured.Unstructured{}
			if err := u.UnmarshalJSON(raw.Raw); err != nil {
				http.Error(w, err.Error(), http.StatusBadRequest)
				return
			}
			from, to := "size", "dimension"
			if review.Request.DesiredAPIVersion == widgetsV1.GroupVersion().String() {
				from, to = to, from
			}
			if v, ok, _ := unstructured.NestedString(u.Object, "spec", from); ok {
				unstructured.RemoveNestedField(u.Object, "spec", from)
				_ = unstructured.SetNestedField(u.Object, v, "spec", to)
			}
			u.SetAPIVersion(review.Request.DesiredAPIVersion)
			b, _ := u.MarshalJSON()
			resp.ConvertedObjects = append(resp.ConvertedObjects, runtime.RawExtension{Raw: b})
		}
		review.Response, review.Request = resp, nil
		w.Header().Set("Content-Type", "application/json")
		_ = json.NewEncoder(w).Encode(&review)
	}))
}

func widgetCRD(webhookURL string, caBundle []byte) *apiextensionsv1.CustomResourceDefinition {
	version := func(name, field string, storage bool) apiextensionsv1.CustomResourceDefinitionVersion {
		return apiextensionsv1.CustomResourceDefinitionVersion{
			Name: name, Served: true, Storage: storage,
			Schema: &apiextensionsv1.CustomResourceValidation{OpenAPIV3Schema: &apiextensionsv1.JSONSchemaProps{
				Type: "object",
				Properties: map[string]apiextensionsv1.JSONSchemaProps{
					"spec": {Type: "object", Properties: map[string]apiextensionsv1.JSONSchemaProps{field: {Type: "string"}}},
				},
			}},
			SelectableFields: []apiextensionsv1.SelectableField{{JSONPath: ".spec." + field}},
		}
	}
	return &apiextensionsv1.CustomResourceDefinition{
		ObjectMeta: metav1.ObjectMeta{Name: "widgets.conv.example.com"},
		Spec: apiextensionsv1.CustomResourceDefinitionSpec{
			Group: "conv.example.com",
			Scope: apiextensionsv1.NamespaceScoped,
			Names: apiextensionsv1.CustomResourceDefinitionNames{Plural: "widgets", Singular: "widget", Kind: "Widget", ListKind: "WidgetList"},
			Versions: []apiextensionsv1.CustomResourceDefinitionVersion{
				version("v1", "size", true), version("v2", "dimension", false),
			},
			Conversion: &apiextensionsv1.CustomResourceConversion{
				Strategy: apiextensionsv1.WebhookConverter,
				Webhook: &apiextensionsv1.WebhookConversion{
					ConversionReviewVersions: []string{"v1"},
					ClientConfig:             &apiextensionsv1.WebhookClientConfig{URL: ptr.To(webhookURL), CABundle: caBundle},
				},
			},
		},
	}
}

func widget(gvr schema.GroupVersionResource, name, field, value string) *unstructured.Unstructured {
	return &unstructured.Unstructured{Object: map[string]any{
		"apiVersion": gvr.GroupVersion().String(), "kind": "Widget",
		"metadata": map[string]any{"name": name},
		"spec":     map[string]any{field: value},
	}}
}

// TestConversionWebhook: a CRD whose versions differ in a field name is
// served through its conversion webhook on create, get, list and watch,
// whichever version an object was written in.
func TestConversionWebhook(t *testing.T) {
	hook := widgetConverter(t)
	defer hook.Close()
	caBundle := pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: hook.Certificate().Raw})

	cfg := testserver.Start(t, testserver.Options{})
	ctx := context.Background()
	establish(ctx, t, cfg, widgetCRD(hook.URL, caBundle))
	dyn := dynamic.NewForConfigOrDie(cfg)
	v1, v2 := dyn.Resource(widgetsV1).Namespace("default"), dyn.Resource(widgetsV2).Namespace("default")

	// Watch in v2 from the start.
	w, err := v2.Watch(ctx, metav1.ListOptions{})
	if err != nil {
		t.Fatalf("watch: %v", err)
	}
	defer w.Stop()

	created, err := v2.Create(ctx, widget(widgetsV2, "big", "dimension", "L"), metav1.CreateOptions{})
	if err != nil {
		t.Fatalf("create through v2: %v", err)
	}
	if got, _, _ := unstructured.NestedString(created.Object, "spec", "dimension"); got != "L" || created.GetAPIVersion() != "conv.example.com/v2" {
		t.Errorf("created through v2: %v", created.Object)
	}
	if _, err := v1.Create(ctx, widget(widgetsV1, "small", "size", "S"), metav1.CreateOptions{}); err != nil {
		t.Fatalf("create through v1: %v", err)
	}

	// Each version reads each object in its own form.
	for _, tc := range []struct {
		res   dynamic.ResourceInterface
		name  string
		field string
		want  string
	}{
		{v1, "big", "size", "L"}, {v2, "big", "dimension", "L"},
		{v1, "small", "size", "S"}, {v2, "small", "dimension", "S"},
	} {
		got, err := tc.res.Get(ctx, tc.name, metav1.GetOptions{})
		if err != nil {
			t.Fatalf("get %s: %v", tc.name, err)
		}
		if v, _, _ := unstructured.NestedString(got.Object, "spec", tc.field); v != tc.want {
			t.Errorf("get %s as %s: spec = %v", tc.name, got.GetAPIVersion(), got.Object["spec"])
		}
	}
	list, err := v2.List(ctx, metav1.ListOptions{})
	if err != nil {
		t.Fatalf("list through v2: %v", err)
	}
	if len(list.Items) != 2 {
		t.Fatalf("list: %d items", len(list.Items))
	}
	for _, it := range list.Items {
		if _, ok, _ := unstructured.NestedString(it.Object, "spec", "dimension"); !ok || it.GetAPIVersion() != "conv.example.com/v2" {
			t.Errorf("listed through v2: %v", it.Object)
		}
	}

	// The watch saw both, converted.
	seen := map[string]string{}
	timeout := time.After(10 * time.Second)
	for len(seen) < 2 {
		select {
		case ev := <-w.ResultChan():
			if ev.Type != watch.Added {
				t.Fatalf("watch event %s: %v", ev.Type, ev.Object)
			}
			u := ev.Object.(*unstructured.Unstructured)
			seen[u.GetName()], _, _ = unstructured.NestedString(u.Object, "spec", "dimension")
		case <-timeout:
			t.Fatalf("watch saw %v", seen)
		}
	}
	if seen["big"] != "L" || seen["small"] != "S" {
		t.Errorf("watched through v2: %v", seen)
	}
}

// TestConversionWebhookFieldSelectors: a version's selectable fields are
// matched on objects converted to that version (v2's spec.dimension is
// stored as v1's spec.size), in lists and watches, and a change that moves
// an object out of or into a watch's selection is a DELETED or ADDED event.
func TestConversionWebhookFieldSelectors(t *testing.T) {
	hook := widgetConverter(t)
	defer hook.Close()
	caBundle := pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: hook.Certificate().Raw})

	cfg := testserver.Start(t, testserver.Options{})
	ctx := context.Background()
	establish(ctx, t, cfg, widgetCRD(hook.URL, caBundle))
	dyn := dynamic.NewForConfigOrDie(cfg)
	v1, v2 := dyn.Resource(widgetsV1).Namespace("default"), dyn.Resource(widgetsV2).Namespace("default")

	w, err := v2.Watch(ctx, metav1.ListOptions{FieldSelector: "spec.dimension=L"})
	if err != nil {
		t.Fatalf("watch: %v", err)
	}
	defer w.Stop()
	for _, o := range []struct{ name, value string }{{"big", "L"}, {"small", "S"}, {"large", "L"}} {
		if _, err := v2.Create(ctx, widget(widgetsV2, o.name, "dimension", o.value), metav1.CreateOptions{}); err != nil {
			t.Fatalf("create %s: %v", o.name, err)
		}
	}
	names := func(res dynamic.ResourceInterface, opts metav1.ListOptions) []string {
		t.Helper()
		list, err := res.List(ctx, opts)
		if err != nil {
			t.Fatalf("list %s: %v", opts.FieldSelector, err)
		}
		var out []string
		for _, it := range list.Items {
			out = append(out, it.GetName())
		}
		return out
	}
	for _, tc := range []struct {
		res  dynamic.ResourceInterface
		opts metav1.ListOptions
		want string
	}{
		{v2, metav1.ListOptions{FieldSelector: "spec.dimension=L"}, "[big large]"},
		{v2, metav1.ListOptions{FieldSelector: "spec.dimension=L", ResourceVersion: "0"}, "[big large]"},
		{v2, metav1.ListOptions{FieldSelector: "spec.dimension!=L,metadata.name!=big"}, "[small]"},
		{v2, metav1.ListOptions{FieldSelector: "spec.dimension=L", Limit: 1}, "[big]"},
		{v1, metav1.ListOptions{FieldSelector: "spec.size=S"}, "[small]"},
		{v2, metav1.ListOptions{FieldSelector: "metadata.name=small"}, "[small]"},
	} {
		if got := fmt.Sprint(names(tc.res, tc.opts)); got != tc.want {
			t.Errorf("list %q limit %d: %s, want %s", tc.opts.FieldSelector, tc.opts.Limit, got, tc.want)
		}
	}
	// A field the version does not select is refused.
	if _, err := v2.List(ctx, metav1.ListOptions{FieldSelector: "spec.size=L"}); !apierrors.IsBadRequest(err) {
		t.Errorf("list v2 by v1's field: %v, want 400", err)
	}

	// big leaves the selection, small joins it.
	for _, o := range []struct{ name, value string }{{"big", "M"}, {"small", "L"}} {
		u, err := v2.Get(ctx, o.name, metav1.GetOptions{})
		if err != nil {
			t.Fatalf("get %s: %v", o.name, err)
		}
		_ = unstructured.SetNestedField(u.Object, o.value, "spec", "dimension")
		if _, err := v2.Update(ctx, u, metav1.UpdateOptions{}); err != nil {
			t.Fatalf("update %s: %v", o.name, err)
		}
	}
	want := []string{"ADDED big", "ADDED large", "DELETED big", "ADDED small"}
	var got []string
	timeout := time.After(10 * time.Second)
	for len(got) < len(want) {
		select {
		case ev, ok := <-w.ResultChan():
			if !ok {
				t.Fatalf("watch closed after %v", got)
			}
			u, isU := ev.Object.(*unstructured.Unstructured)
			if !isU {
				t.Fatalf("watch event %s: %v", ev.Type, ev.Object)
			}
			if u.GetAPIVersion() != widgetsV2.GroupVersion().String() {
				t.Errorf("watch event %s %s in %s", ev.Type, u.GetName(), u.GetAPIVersion())
			}
			got = append(got, string(ev.Type)+" "+u.GetName())
		case <-timeout:
			t.Fatalf("watch saw %v, want %v", got, want)
		}
	}
	if fmt.Sprint(got) != fmt.Sprint(want) {
		t.Errorf("watch saw %v, want %v", got, want)
	}
}
