package apiextensions

import (
	"context"
	"encoding/json"
	"encoding/pem"
	"errors"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	apiextensionsv1 "k8s.io/apiextensions-apiserver/pkg/apis/apiextensions/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/utils/ptr"

	"github.com/skiff-dev/skiff/internal/admission/webhook"
)

// renameSpec converts a thing's spec between x/v1 (spec.name) and x/v2
// (spec.fullName), as the test webhook and the fake converter do.
func renameSpec(obj map[string]any, apiVersion string) {
	spec, _ := obj["spec"].(map[string]any)
	from, to := "fullName", "name"
	if apiVersion == "x/v2" {
		from, to = "name", "fullName"
	}
	if spec != nil {
		if v, ok := spec[from]; ok {
			spec[to] = v
			delete(spec, from)
		}
	}
	obj["apiVersion"] = apiVersion
}

// conversionWebhook is a test conversion webhook. Its path chooses how it
// misbehaves: /convert answers well, /fail with a Failure, /uid with
// another uid, /name renames objects, /labels relabels them, /slow
// answers only after its client gave up, /short drops an object.
func conversionWebhook(t *testing.T, received *atomic.Int64) *httptest.Server {
	t.Helper()
	closing := make(chan struct{})
	srv := httptest.NewTLSServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		body, err := io.ReadAll(r.Body)
		if err != nil {
			return
		}
		if r.URL.Path == "/slow" {
			select {
			case <-r.Context().Done():
			case <-closing:
			}
			return
		}
		var review apiextensionsv1.ConversionReview
		if err := json.Unmarshal(body, &review); err != nil || review.Request == nil {
			http.Error(w, "bad review", http.StatusBadRequest)
			return
		}
		received.Add(int64(len(review.Request.Objects)))
		resp := &apiextensionsv1.ConversionResponse{UID: review.Request.UID, Result: metav1.Status{Status: metav1.StatusSuccess}}
		for _, raw := range review.Request.Objects {
			var obj map[string]any
			if err := json.Unmarshal(raw.Raw, &obj); err != nil {
				http.Error(w, err.Error(), http.StatusBadRequest)
				return
			}
			renameSpec(obj, review.Request.DesiredAPIVersion)
			meta := obj["metadata"].(map[string]any)
			delete(meta, "resourceVersion") // kept by the API server
			switch r.URL.Path {
			case "/name":
				meta["name"] = "renamed"
			case "/labels":
				meta["labels"] = map[string]any{"converted": "yes"}
			}
			b, _ := json.Marshal(obj)
			resp.ConvertedObjects = append(resp.ConvertedObjects, runtime.RawExtension{Raw: b})
		}
		switch r.URL.Path {
		case "/fail":
			resp.Result = metav1.Status{Status: metav1.StatusFailure, Message: "cannot convert: boom"}
		case "/uid":
			resp.UID = "someone-else"
		case "/short":
			resp.ConvertedObjects = resp.ConvertedObjects[1:]
		}
		review.Request, review.Response = nil, resp
		w.Header().Set("Content-Type", "application/json")
		_ = json.NewEncoder(w).Encode(&review)
	}))
	t.Cleanup(srv.Close)
	t.Cleanup(func() { close(closing) }) // before srv.Close
	return srv
}

func thing(apiVersion, name string, spec map[string]any) *unstructured.Unstructured {
	return &unstructured.Unstructured{Object: map[string]any{
		"apiVersion": apiVersion, "kind": "Thing",
		"metadata": map[string]any{"name": name, "namespace": "ns", "uid": "uid-" + name, "resourceVersion": "7"},
		"spec":     spec,
	}}
}

func TestWebhookConverter(t *testing.T) {
	var received atomic.Int64
	srv := conversionWebhook(t, &received)
	ca := pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: srv.Certificate().Raw})
	caller := webhook.NewCaller(nil, nil)

	tests := []struct {
		name     string
		path     string
		versions []string // conversionReviewVersions
		timeout  time.Duration
		in       []*unstructured.Unstructured
		to       string
		want     []map[string]any // specs
		wantSent int64
		wantErr  string
		check    func(t *testing.T, out []*unstructured.Unstructured)
	}{{
		name: "v1 to v2 renames the field", path: "/convert",
		in: []*unstructured.Unstructured{thing("x/v1", "a", map[string]any{"name": "alpha"})},
		to: "x/v2", want: []map[string]any{{"fullName": "alpha"}}, wantSent: 1,
		check: func(t *testing.T, out []*unstructured.Unstructured) {
			if rv := out[0].GetResourceVersion(); rv != "7" || out[0].GetUID() != "uid-a" {
				t.Errorf("metadata not kept: resourceVersion %q uid %q", rv, out[0].GetUID())
			}
		},
	}, {
		name: "v2 to v1 with a v1beta1 review", path: "/convert", versions: []string{"v1beta2", "v1beta1", "v1"},
		in: []*unstructured.Unstructured{thing("x/v2", "a", map[string]any{"fullName": "alpha"})},
		to: "x/v1", want: []map[string]any{{"name": "alpha"}}, wantSent: 1,
	}, {
		name: "a list of mixed versions sends only the others, in one call", path: "/convert",
		in: []*unstructured.Unstructured{
			thing("x/v1", "a", map[string]any{"name": "alpha"}),
			thing("x/v2", "b", map[string]any{"fullName": "beta"}),
			thing("x/v1", "c", map[string]any{"name": "gamma"}),
		},
		to:   "x/v2",
		want: []map[string]any{{"fullName": "alpha"}, {"fullName": "beta"}, {"fullName": "gamma"}}, wantSent: 2,
	}, {
		name: "nothing to convert calls nothing", path: "/fail",
		in: []*unstructured.Unstructured{thing("x/v2", "b", map[string]any{"fullName": "beta"})},
		to: "x/v2", want: []map[string]any{{"fullName": "beta"}},
	}, {
		name: "labels may change", path: "/labels",
		in: []*unstructured.Unstructured{thing("x/v1", "a", map[string]any{"name": "alpha"})},
		to: "x/v2", want: []map[string]any{{"fullName": "alpha"}}, wantSent: 1,
		check: func(t *testing.T, out []*unstructured.Unstructured) {
			if diff := cmp.Diff(map[string]string{"converted": "yes"}, out[0].GetLabels()); diff != "" {
				t.Errorf("labels (-want +got):\n%s", diff)
			}
		},
	}, {
		name: "failure", path: "/fail",
		in: []*unstructured.Unstructured{thing("x/v1", "a", nil)}, to: "x/v2", wantSent: 1,
		wantErr: "conversion webhook for x/v1, Kind=Thing failed: cannot convert: boom",
	}, {
		name: "bad uid", path: "/uid",
		in: []*unstructured.Unstructured{thing("x/v1", "a", nil)}, to: "x/v2", wantSent: 1,
		wantErr: `conversion webhook for x/v1, Kind=Thing failed: expected response.uid="test-uid", got "someone-else"`,
	}, {
		name: "metadata.name changed", path: "/name",
		in: []*unstructured.Unstructured{thing("x/v1", "a", nil)}, to: "x/v2", wantSent: 1,
		wantErr: "conversion webhook for x/v1, Kind=Thing returned invalid object: must have the same name: a != renamed",
	}, {
		name: "metadata.name changed in a list", path: "/name",
		in: []*unstructured.Unstructured{thing("x/v2", "b", nil), thing("x/v1", "a", nil)}, to: "x/v2", wantSent: 1,
		wantErr: "conversion webhook for x/v1, Kind=Thing returned invalid converted object at index 0: must have the same name: a != renamed",
	}, {
		name: "too few objects", path: "/short",
		in: []*unstructured.Unstructured{thing("x/v1", "a", nil), thing("x/v1", "b", nil)}, to: "x/v2", wantSent: 2,
		wantErr: "conversion webhook for x/v1, Kind=Thing returned 1 objects, expected 2",
	}, {
		name: "timeout", path: "/slow", timeout: 300 * time.Millisecond,
		in: []*unstructured.Unstructured{thing("x/v1", "a", nil)}, to: "x/v2",
		wantErr: "conversion webhook for x/v1, Kind=Thing failed: Post",
	}}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			versions := tc.versions
			if versions == nil {
				versions = []string{"v1"}
			}
			crd := &apiextensionsv1.CustomResourceDefinition{Spec: apiextensionsv1.CustomResourceDefinitionSpec{
				Conversion: &apiextensionsv1.CustomResourceConversion{
					Strategy: apiextensionsv1.WebhookConverter,
					Webhook: &apiextensionsv1.WebhookConversion{
						ClientConfig:             &apiextensionsv1.WebhookClientConfig{URL: ptr.To(srv.URL + tc.path), CABundle: ca},
						ConversionReviewVersions: versions,
					},
				},
			}}
			conv, ok := converterFor(crd, caller).(*webhookConverter)
			if !ok {
				t.Fatalf("converterFor: %T", converterFor(crd, caller))
			}
			conv.newUID = func() types.UID { return "test-uid" }
			if tc.timeout != 0 {
				conv.timeout = tc.timeout
			}
			before := make([]*unstructured.Unstructured, len(tc.in))
			for i, o := range tc.in {
				before[i] = o.DeepCopy()
			}
			received.Store(0)
			start := time.Now()
			out, err := conv.convert(context.Background(), tc.in, tc.to)
			if tc.timeout != 0 && time.Since(start) > 5*time.Second {
				t.Errorf("timeout of %v took %v", tc.timeout, time.Since(start))
			}
			if got := received.Load(); got != tc.wantSent {
				t.Errorf("webhook received %d objects, want %d", got, tc.wantSent)
			}
			for i := range tc.in {
				if diff := cmp.Diff(before[i].Object, tc.in[i].Object); diff != "" {
					t.Errorf("input %d modified (-before +after):\n%s", i, diff)
				}
			}
			if tc.wantErr != "" {
				if err == nil || !strings.HasPrefix(err.Error(), tc.wantErr) {
					t.Fatalf("error = %v, want prefix %q", err, tc.wantErr)
				}
				var st apierrors.APIStatus
				if !errors.As(err, &st) || st.Status().Code != http.StatusInternalServerError || st.Status().Message != err.Error() {
					t.Errorf("error is not a 500 Status with its message: %#v", err)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			var specs []map[string]any
			for i, o := range out {
				if o.GetAPIVersion() != tc.to || o.GetKind() != "Thing" || o.GetName() != tc.in[i].GetName() {
					t.Errorf("object %d: %s %s %s", i, o.GetAPIVersion(), o.GetKind(), o.GetName())
				}
				spec, _ := o.Object["spec"].(map[string]any)
				specs = append(specs, spec)
			}
			if diff := cmp.Diff(tc.want, specs); diff != "" {
				t.Errorf("specs (-want +got):\n%s", diff)
			}
			if tc.check != nil {
				tc.check(t, out)
			}
		})
	}
}

func TestConverterFor(t *testing.T) {
	webhookCRD := &apiextensionsv1.CustomResourceDefinition{Spec: apiextensionsv1.CustomResourceDefinitionSpec{
		Conversion: &apiextensionsv1.CustomResourceConversion{
			Strategy: apiextensionsv1.WebhookConverter,
			Webhook: &apiextensionsv1.WebhookConversion{
				ClientConfig: &apiextensionsv1.WebhookClientConfig{
					Service:  &apiextensionsv1.ServiceReference{Namespace: "ns", Name: "svc", Path: ptr.To("/c"), Port: ptr.To[int32](8443)},
					CABundle: []byte(" \n"),
				},
				ConversionReviewVersions: []string{"v1"},
			},
		},
	}}
	if _, ok := converterFor(&apiextensionsv1.CustomResourceDefinition{}, nil).(noneConverter); !ok {
		t.Error("no conversion is not None")
	}
	c, ok := converterFor(webhookCRD, webhook.NewCaller(nil, nil)).(*webhookConverter)
	if !ok {
		t.Fatal("Webhook is not a webhook converter")
	}
	if c.clientConfig.CABundle != nil || c.clientConfig.Service == nil || *c.clientConfig.Service.Port != 8443 || *c.clientConfig.Service.Path != "/c" || c.timeout != 30*time.Second {
		t.Errorf("webhook converter: %+v", c)
	}
	// Without a caller, conversion between versions fails; within one it
	// does not.
	u := converterFor(webhookCRD, nil)
	if _, err := u.convert(context.Background(), []*unstructured.Unstructured{thing("x/v2", "a", nil)}, "x/v2"); err != nil {
		t.Errorf("same version: %v", err)
	}
	_, err := u.convert(context.Background(), []*unstructured.Unstructured{thing("x/v1", "a", nil)}, "x/v2")
	if err == nil || !strings.HasPrefix(err.Error(), "conversion webhook for x/v1, Kind=Thing failed: ") {
		t.Errorf("error = %v", err)
	}
}

// TestStorageCodecPrunesByVersion: objects stored in an older version are
// read with that version's schema, so conversion gets all of them.
func TestStorageCodecPrunesByVersion(t *testing.T) {
	schemaOf := func(fields ...string) *apiextensionsv1.CustomResourceValidation {
		props := map[string]apiextensionsv1.JSONSchemaProps{}
		for _, f := range fields {
			props[f] = apiextensionsv1.JSONSchemaProps{Type: "string"}
		}
		return &apiextensionsv1.CustomResourceValidation{OpenAPIV3Schema: &apiextensionsv1.JSONSchemaProps{
			Type:       "object",
			Properties: map[string]apiextensionsv1.JSONSchemaProps{"spec": {Type: "object", Properties: props}},
		}}
	}
	crd := &apiextensionsv1.CustomResourceDefinition{
		Spec: apiextensionsv1.CustomResourceDefinitionSpec{
			Group: "x", Scope: apiextensionsv1.NamespaceScoped,
			Versions: []apiextensionsv1.CustomResourceDefinitionVersion{
				{Name: "v1", Served: true, Schema: schemaOf("hostPort")},
				{Name: "v2", Served: true, Storage: true, Schema: schemaOf("host", "port")},
				{Name: "v0", Served: false, Schema: schemaOf("address")},
			},
		},
		Status: apiextensionsv1.CustomResourceDefinitionStatus{AcceptedNames: apiextensionsv1.CustomResourceDefinitionNames{
			Plural: "things", Singular: "thing", Kind: "Thing", ListKind: "ThingList",
		}},
	}
	crs, err := resourcesOf(crd)
	if err != nil {
		t.Fatal(err)
	}
	codec := newStorageCodec(crd, crs)
	tests := []struct {
		apiVersion string
		want       map[string]any
	}{
		{"x/v1", map[string]any{"hostPort": "h:1"}},
		{"x/v2", map[string]any{"host": "h", "port": "1"}},
		{"x/v0", map[string]any{"address": "a"}},
		{"x/gone", map[string]any{"host": "h", "port": "1"}},
	}
	for _, tc := range tests {
		t.Run(tc.apiVersion, func(t *testing.T) {
			data := `{"apiVersion":"` + tc.apiVersion + `","kind":"Thing","metadata":{"name":"a"},"spec":{"hostPort":"h:1","host":"h","port":"1","address":"a"}}`
			obj, _, err := codec.Decode([]byte(data), nil, nil)
			if err != nil {
				t.Fatal(err)
			}
			if diff := cmp.Diff(tc.want, obj.(*unstructured.Unstructured).Object["spec"]); diff != "" {
				t.Errorf("spec (-want +got):\n%s", diff)
			}
		})
	}
}
