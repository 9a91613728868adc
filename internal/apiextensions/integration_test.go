package apiextensions_test

import (
	"context"
	"encoding/json"
	"net/http"
	"strings"
	"testing"
	"time"

	apiextensionsv1 "k8s.io/apiextensions-apiserver/pkg/apis/apiextensions/v1"
	apiextensionsclient "k8s.io/apiextensions-apiserver/pkg/client/clientset/clientset"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/apimachinery/pkg/watch"
	"k8s.io/client-go/dynamic"
	clientgoscheme "k8s.io/client-go/kubernetes/scheme"
	"k8s.io/client-go/rest"
	"k8s.io/utils/ptr"

	"github.com/skiff-dev/skiff/internal/testserver"
)

var (
	crontabsV1     = schema.GroupVersionResource{Group: "stable.example.com", Version: "v1", Resource: "crontabs"}
	crontabsV1beta = schema.GroupVersionResource{Group: "stable.example.com", Version: "v1beta1", Resource: "crontabs"}
)

// crontabCRD is the upstream documentation's example, with a second
// served version, status and scale subresources, printer columns and a
// selectable field.
func crontabCRD() *apiextensionsv1.CustomResourceDefinition {
	props := &apiextensionsv1.JSONSchemaProps{
		Type: "object",
		Properties: map[string]apiextensionsv1.JSONSchemaProps{
			"spec": {
				Type: "object",
				XValidations: apiextensionsv1.ValidationRules{
					{Rule: "!has(self.color) || self.color != 'green'", Message: "green is not a color for cron tabs"},
				},
				Properties: map[string]apiextensionsv1.JSONSchemaProps{
					"cronSpec": {Type: "string", Pattern: `^(\d+|\*)(/\d+)?(\s+(\d+|\*)(/\d+)?){4}$`},
					"image":    {Type: "string"},
					"color":    {Type: "string"},
					"replicas": {Type: "integer", Minimum: ptr.To(0.0), Default: &apiextensionsv1.JSON{Raw: []byte("1")}},
					"ports": {
						Type: "array", XListType: ptr.To("map"), XListMapKeys: []string{"name"},
						Items: &apiextensionsv1.JSONSchemaPropsOrArray{Schema: &apiextensionsv1.JSONSchemaProps{
							Type: "object", Required: []string{"name"},
							Properties: map[string]apiextensionsv1.JSONSchemaProps{"name": {Type: "string"}, "port": {Type: "integer"}},
						}},
					},
				},
			},
			"status": {
				Type: "object",
				Properties: map[string]apiextensionsv1.JSONSchemaProps{
					"replicas": {Type: "integer"},
					"selector": {Type: "string"},
				},
			},
		},
	}
	version := func(name string, storage bool) apiextensionsv1.CustomResourceDefinitionVersion {
		return apiextensionsv1.CustomResourceDefinitionVersion{
			Name: name, Served: true, Storage: storage,
			Schema: &apiextensionsv1.CustomResourceValidation{OpenAPIV3Schema: props.DeepCopy()},
			Subresources: &apiextensionsv1.CustomResourceSubresources{
				Status: &apiextensionsv1.CustomResourceSubresourceStatus{},
				Scale: &apiextensionsv1.CustomResourceSubresourceScale{
					SpecReplicasPath: ".spec.replicas", StatusReplicasPath: ".status.replicas",
					LabelSelectorPath: ptr.To(".status.selector"),
				},
			},
			AdditionalPrinterColumns: []apiextensionsv1.CustomResourceColumnDefinition{
				{Name: "Spec", Type: "string", JSONPath: ".spec.cronSpec"},
				{Name: "Replicas", Type: "integer", JSONPath: ".spec.replicas"},
				{Name: "Age", Type: "date", JSONPath: ".metadata.creationTimestamp"},
			},
			SelectableFields: []apiextensionsv1.SelectableField{{JSONPath: ".spec.color"}},
		}
	}
	return &apiextensionsv1.CustomResourceDefinition{
		ObjectMeta: metav1.ObjectMeta{Name: "crontabs.stable.example.com"},
		Spec: apiextensionsv1.CustomResourceDefinitionSpec{
			Group: "stable.example.com",
			Scope: apiextensionsv1.NamespaceScoped,
			Names: apiextensionsv1.CustomResourceDefinitionNames{
				Plural: "crontabs", Singular: "crontab", Kind: "CronTab", ListKind: "CronTabList", ShortNames: []string{"ct"},
			},
			Versions: []apiextensionsv1.CustomResourceDefinitionVersion{version("v1", true), version("v1beta1", false)},
		},
	}
}

func crontab(name, cron string, extra map[string]any) *unstructured.Unstructured {
	spec := map[string]any{"cronSpec": cron, "image": "my-cron-image"}
	for k, v := range extra {
		spec[k] = v
	}
	return &unstructured.Unstructured{Object: map[string]any{
		"apiVersion": "stable.example.com/v1",
		"kind":       "CronTab",
		"metadata":   map[string]any{"name": name, "labels": map[string]any{"app": "cron"}},
		"spec":       spec,
	}}
}

// establish creates crd and waits until it is Established and its
// resource answers.
func establish(ctx context.Context, t *testing.T, cfg *rest.Config, crd *apiextensionsv1.CustomResourceDefinition) apiextensionsclient.Interface {
	t.Helper()
	ext, err := apiextensionsclient.NewForConfig(cfg)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := ext.ApiextensionsV1().CustomResourceDefinitions().Create(ctx, crd, metav1.CreateOptions{}); err != nil {
		t.Fatalf("creating CRD: %v", err)
	}
	deadline := time.Now().Add(30 * time.Second)
	for {
		got, err := ext.ApiextensionsV1().CustomResourceDefinitions().Get(ctx, crd.Name, metav1.GetOptions{})
		if err != nil {
			t.Fatal(err)
		}
		established := false
		for _, c := range got.Status.Conditions {
			if c.Type == apiextensionsv1.Established && c.Status == apiextensionsv1.ConditionTrue {
				established = true
			}
		}
		if established {
			return ext
		}
		if time.Now().After(deadline) {
			t.Fatalf("CRD not established within 30s: %+v", got.Status)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

func TestCustomResources(t *testing.T) {
	cfg := testserver.Start(t, testserver.Options{})
	ctx := context.Background()
	ext := establish(ctx, t, cfg, crontabCRD())
	dyn := dynamic.NewForConfigOrDie(cfg)
	crs := dyn.Resource(crontabsV1).Namespace("default")

	// Create: defaults applied, unknown fields pruned with a warning,
	// status dropped (the status subresource owns it).
	obj := crontab("daily", "0 0 * * *", map[string]any{"bogus": true})
	obj.Object["status"] = map[string]any{"replicas": int64(7)}
	created, err := crs.Create(ctx, obj, metav1.CreateOptions{})
	if err != nil {
		t.Fatalf("create: %v", err)
	}
	if r, _, _ := unstructured.NestedInt64(created.Object, "spec", "replicas"); r != 1 {
		t.Errorf("spec.replicas = %d, want the default 1", r)
	}
	if _, found, _ := unstructured.NestedFieldNoCopy(created.Object, "spec", "bogus"); found {
		t.Errorf("unknown field spec.bogus kept: %v", created.Object["spec"])
	}
	if _, found := created.Object["status"]; found {
		t.Errorf("status kept on create: %v", created.Object["status"])
	}
	if created.GetGeneration() != 1 || created.GetUID() == "" {
		t.Errorf("generation %d, uid %q", created.GetGeneration(), created.GetUID())
	}

	// Strict field validation refuses the unknown field.
	_, err = crs.Create(ctx, crontab("strict", "0 0 * * *", map[string]any{"bogus": true}), metav1.CreateOptions{FieldValidation: "Strict"})
	if !apierrors.IsBadRequest(err) || !strings.Contains(err.Error(), `unknown field "spec.bogus"`) {
		t.Errorf("strict create with an unknown field: %v", err)
	}

	strict := crontab("strict", "0 0 * * *", nil)
	strict.Object["metadata"].(map[string]any)["unknownMeta"] = "x"
	_, err = crs.Create(ctx, strict, metav1.CreateOptions{FieldValidation: "Strict"})
	if !apierrors.IsBadRequest(err) || !strings.Contains(err.Error(), `unknown field "metadata.unknownMeta"`) {
		t.Errorf("strict create with an unknown metadata field: %v", err)
	}
	body, _ := json.Marshal(strict.Object)
	_, err = crs.Patch(ctx, "strict", types.ApplyPatchType, body, metav1.PatchOptions{FieldManager: "test", FieldValidation: "Strict"})
	if !apierrors.IsBadRequest(err) || !strings.Contains(err.Error(), `.metadata.unknownMeta: field not declared in schema`) {
		t.Errorf("strict apply with an unknown metadata field: %v", err)
	}

	// Invalid values are 422 naming the field.
	_, err = crs.Create(ctx, crontab("bad", "not a cron", map[string]any{"replicas": int64(-1)}), metav1.CreateOptions{})
	if !apierrors.IsInvalid(err) || !strings.Contains(err.Error(), "spec.replicas") || !strings.Contains(err.Error(), "spec.cronSpec") {
		t.Errorf("invalid create: %v", err)
	}

	// CEL rules (x-kubernetes-validations) are enforced.
	_, err = crs.Create(ctx, crontab("green", "0 0 * * *", map[string]any{"color": "green"}), metav1.CreateOptions{})
	if !apierrors.IsInvalid(err) || !strings.Contains(err.Error(), "spec: Invalid value") || !strings.Contains(err.Error(), "green is not a color for cron tabs") {
		t.Errorf("create breaking a CEL rule: %v", err)
	}
	// A rule that does not compile makes the CRD invalid.
	broken := crontabCRD()
	broken.Name, broken.Spec.Group = "crontabs.broken.example.com", "broken.example.com"
	broken.Spec.Versions[0].Schema.OpenAPIV3Schema.XValidations = apiextensionsv1.ValidationRules{{Rule: "self.spec.("}}
	if _, err := ext.ApiextensionsV1().CustomResourceDefinitions().Create(ctx, broken, metav1.CreateOptions{}); !apierrors.IsInvalid(err) || !strings.Contains(err.Error(), "compilation failed") {
		t.Errorf("CRD with a rule that does not compile: %v", err)
	}

	// The other served version sees the same object.
	beta, err := dyn.Resource(crontabsV1beta).Namespace("default").Get(ctx, "daily", metav1.GetOptions{})
	if err != nil {
		t.Fatalf("get v1beta1: %v", err)
	}
	if beta.GetAPIVersion() != "stable.example.com/v1beta1" || beta.GetUID() != created.GetUID() {
		t.Errorf("v1beta1 get: apiVersion %q uid %q", beta.GetAPIVersion(), beta.GetUID())
	}
	betaList, err := dyn.Resource(crontabsV1beta).Namespace("default").List(ctx, metav1.ListOptions{ResourceVersion: created.GetResourceVersion()})
	if err != nil || len(betaList.Items) != 1 || betaList.Items[0].GetAPIVersion() != "stable.example.com/v1beta1" {
		t.Errorf("v1beta1 list from the cache: %v %+v", err, betaList)
	}

	// A watch sees the following changes.
	w, err := crs.Watch(ctx, metav1.ListOptions{ResourceVersion: created.GetResourceVersion()})
	if err != nil {
		t.Fatalf("watch: %v", err)
	}
	defer w.Stop()

	// Spec changes bump the generation; status written through the main
	// resource is ignored.
	upd := created.DeepCopy()
	_ = unstructured.SetNestedField(upd.Object, "*/5 * * * *", "spec", "cronSpec")
	upd.Object["status"] = map[string]any{"replicas": int64(3)}
	updated, err := crs.Update(ctx, upd, metav1.UpdateOptions{})
	if err != nil {
		t.Fatalf("update: %v", err)
	}
	if updated.GetGeneration() != 2 {
		t.Errorf("generation after a spec change = %d, want 2", updated.GetGeneration())
	}
	if _, found := updated.Object["status"]; found {
		t.Errorf("status written through the main resource: %v", updated.Object["status"])
	}

	// /status writes status only, without bumping the generation.
	st := updated.DeepCopy()
	st.Object["status"] = map[string]any{"replicas": int64(2), "selector": "app=cron"}
	_ = unstructured.SetNestedField(st.Object, "1 1 * * *", "spec", "cronSpec")
	afterStatus, err := crs.UpdateStatus(ctx, st, metav1.UpdateOptions{})
	if err != nil {
		t.Fatalf("update status: %v", err)
	}
	if cron, _, _ := unstructured.NestedString(afterStatus.Object, "spec", "cronSpec"); cron != "*/5 * * * *" || afterStatus.GetGeneration() != 2 {
		t.Errorf("status update changed spec or generation: %q, %d", cron, afterStatus.GetGeneration())
	}
	if r, _, _ := unstructured.NestedInt64(afterStatus.Object, "status", "replicas"); r != 2 {
		t.Errorf("status.replicas = %d, want 2", r)
	}

	// The scale subresource reads and writes the replica paths.
	scale, err := crs.Get(ctx, "daily", metav1.GetOptions{}, "scale")
	if err != nil {
		t.Fatalf("get scale: %v", err)
	}
	if r, _, _ := unstructured.NestedInt64(scale.Object, "spec", "replicas"); r != 1 {
		t.Errorf("scale spec.replicas = %d: %v", r, scale.Object)
	}
	if sel, _, _ := unstructured.NestedString(scale.Object, "status", "selector"); sel != "app=cron" {
		t.Errorf("scale status.selector = %q", sel)
	}
	if _, err := crs.Patch(ctx, "daily", types.MergePatchType, []byte(`{"spec":{"replicas":4}}`), metav1.PatchOptions{}, "scale"); err != nil {
		t.Fatalf("patch scale: %v", err)
	}

	// Merge and JSON patches work; strategic merge patch is 415.
	patched, err := crs.Patch(ctx, "daily", types.MergePatchType, []byte(`{"spec":{"color":"blue"}}`), metav1.PatchOptions{})
	if err != nil {
		t.Fatalf("merge patch: %v", err)
	}
	if r, _, _ := unstructured.NestedInt64(patched.Object, "spec", "replicas"); r != 4 {
		t.Errorf("spec.replicas after scaling = %d, want 4", r)
	}
	if _, err := crs.Patch(ctx, "daily", types.JSONPatchType, []byte(`[{"op":"replace","path":"/spec/image","value":"other"}]`), metav1.PatchOptions{}); err != nil {
		t.Fatalf("json patch: %v", err)
	}
	_, err = crs.Patch(ctx, "daily", types.StrategicMergePatchType, []byte(`{"spec":{"image":"x"}}`), metav1.PatchOptions{})
	if se, ok := err.(*apierrors.StatusError); !ok || se.ErrStatus.Code != http.StatusUnsupportedMediaType {
		t.Errorf("strategic merge patch: %v, want 415", err)
	}

	// Server-side apply creates and updates.
	applied := crontab("applied", "0 1 * * *", nil)
	body, _ = json.Marshal(applied.Object)
	if _, err := crs.Patch(ctx, "applied", types.ApplyPatchType, body, metav1.PatchOptions{FieldManager: "test"}); err != nil {
		t.Fatalf("apply: %v", err)
	}

	// Two managers applying items of a map list (x-kubernetes-list-type:
	// map) each own theirs: the schema's list type reaches the merge.
	for _, m := range []struct{ manager, port string }{{"a", "http"}, {"b", "metrics"}} {
		cfg := crontab("applied", "0 1 * * *", nil)
		_ = unstructured.SetNestedSlice(cfg.Object, []any{map[string]any{"name": m.port, "port": int64(80)}}, "spec", "ports")
		if m.manager == "b" {
			unstructured.RemoveNestedField(cfg.Object, "spec", "cronSpec")
			unstructured.RemoveNestedField(cfg.Object, "spec", "image")
		}
		body, _ := json.Marshal(cfg.Object)
		if _, err := crs.Patch(ctx, "applied", types.ApplyPatchType, body, metav1.PatchOptions{FieldManager: m.manager}); err != nil {
			t.Fatalf("apply by %s: %v", m.manager, err)
		}
	}
	merged, err := crs.Get(ctx, "applied", metav1.GetOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if ports, _, _ := unstructured.NestedSlice(merged.Object, "spec", "ports"); len(ports) != 2 {
		t.Errorf("ports after two managers applied one each: %v", ports)
	}

	// Selectors: labels and the selectable field.
	blue, err := crs.List(ctx, metav1.ListOptions{FieldSelector: "spec.color=blue", LabelSelector: "app=cron"})
	if err != nil || len(blue.Items) != 1 || blue.Items[0].GetName() != "daily" {
		t.Errorf("list spec.color=blue: %v %v", err, blue)
	}
	if _, err := crs.List(ctx, metav1.ListOptions{FieldSelector: "spec.image=x"}); !apierrors.IsBadRequest(err) {
		t.Errorf("list by a field that is not selectable: %v, want 400", err)
	}

	// The watch saw the updates in order.
	seen := 0
	timeout := time.After(10 * time.Second)
	for seen < 3 {
		select {
		case ev := <-w.ResultChan():
			if ev.Type != watch.Modified && ev.Type != watch.Added {
				t.Fatalf("unexpected watch event %s: %v", ev.Type, ev.Object)
			}
			seen++
		case <-timeout:
			t.Fatalf("saw %d watch events, want at least 3", seen)
		}
	}

	// Table output prints the columns.
	table := &metav1.Table{}
	rc, err := rest.RESTClientFor(tableConfig(cfg))
	if err != nil {
		t.Fatal(err)
	}
	raw, err := rc.Get().AbsPath("/apis/stable.example.com/v1/namespaces/default/crontabs").
		SetHeader("Accept", "application/json;as=Table;v=v1;g=meta.k8s.io").DoRaw(ctx)
	if err != nil {
		t.Fatalf("table: %v", err)
	}
	if err := json.Unmarshal(raw, table); err != nil {
		t.Fatal(err)
	}
	var cols []string
	for _, c := range table.ColumnDefinitions {
		cols = append(cols, c.Name)
	}
	if strings.Join(cols, ",") != "Name,Spec,Replicas,Age" || len(table.Rows) != 2 {
		t.Errorf("table columns %v, %d rows", cols, len(table.Rows))
	}

	// Defaults added to the schema later apply to stored objects when
	// they are read, as upstream.
	crd, err := ext.ApiextensionsV1().CustomResourceDefinitions().Get(ctx, "crontabs.stable.example.com", metav1.GetOptions{})
	if err != nil {
		t.Fatal(err)
	}
	for i := range crd.Spec.Versions {
		color := crd.Spec.Versions[i].Schema.OpenAPIV3Schema.Properties["spec"].Properties["color"]
		color.Default = &apiextensionsv1.JSON{Raw: []byte(`"red"`)}
		crd.Spec.Versions[i].Schema.OpenAPIV3Schema.Properties["spec"].Properties["color"] = color
	}
	if _, err := ext.ApiextensionsV1().CustomResourceDefinitions().Update(ctx, crd, metav1.UpdateOptions{}); err != nil {
		t.Fatalf("updating CRD: %v", err)
	}
	for deadline := time.Now().Add(10 * time.Second); ; {
		got, err := crs.Get(ctx, "applied", metav1.GetOptions{})
		if err == nil {
			if c, _, _ := unstructured.NestedString(got.Object, "spec", "color"); c == "red" {
				break
			}
		}
		if time.Now().After(deadline) {
			t.Fatalf("default from storage not applied: %v %v", err, got)
		}
		time.Sleep(50 * time.Millisecond)
	}

	// Deleting the CRD deletes its custom resources, then the CRD.
	if err := ext.ApiextensionsV1().CustomResourceDefinitions().Delete(ctx, "crontabs.stable.example.com", metav1.DeleteOptions{}); err != nil {
		t.Fatalf("deleting CRD: %v", err)
	}
	deadline := time.Now().Add(30 * time.Second)
	for {
		_, err := ext.ApiextensionsV1().CustomResourceDefinitions().Get(ctx, "crontabs.stable.example.com", metav1.GetOptions{})
		if apierrors.IsNotFound(err) {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("CRD still there 30s after its delete: %v", err)
		}
		time.Sleep(50 * time.Millisecond)
	}
	// Recreated, it starts empty.
	establish(ctx, t, cfg, crontabCRD())
	list, err := crs.List(ctx, metav1.ListOptions{})
	if err != nil || len(list.Items) != 0 {
		t.Errorf("custom resources after the CRD was recreated: %v %v", err, list)
	}
}

func tableConfig(cfg *rest.Config) *rest.Config {
	c := rest.CopyConfig(cfg)
	c.GroupVersion = &schema.GroupVersion{}
	c.APIPath = "/apis"
	c.NegotiatedSerializer = clientgoscheme.Codecs.WithoutConversion()
	return c
}
