package policy_test

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	admissionregistrationv1 "k8s.io/api/admissionregistration/v1"
	apiextensionsv1 "k8s.io/apiextensions-apiserver/pkg/apis/apiextensions/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/client-go/discovery"
	fakediscovery "k8s.io/client-go/discovery/fake"
	"k8s.io/client-go/informers"
	"k8s.io/client-go/kubernetes/fake"
	"k8s.io/client-go/openapi"
	"k8s.io/client-go/rest"
	clienttesting "k8s.io/client-go/testing"
	"k8s.io/kube-openapi/pkg/validation/spec"

	"github.com/skiff-dev/skiff/internal/admission/policy"
	skiffopenapi "github.com/skiff-dev/skiff/internal/openapi"
	"github.com/skiff-dev/skiff/internal/registry/builtin"
)

var (
	deploymentsGVR = schema.GroupVersionResource{Group: "apps", Version: "v1", Resource: "deployments"}
	replicaSetsGVR = schema.GroupVersionResource{Group: "apps", Version: "v1", Resource: "replicasets"}
	configMapsGVR  = schema.GroupVersionResource{Version: "v1", Resource: "configmaps"}
	cronTabsGVR    = schema.GroupVersionResource{Group: "stable.example.com", Version: "v1", Resource: "crontabs"}
	deploymentGVK  = schema.GroupVersionKind{Group: "apps", Version: "v1", Kind: "Deployment"}
	replicaSetGVK  = schema.GroupVersionKind{Group: "apps", Version: "v1", Kind: "ReplicaSet"}
	configMapGVK   = schema.GroupVersionKind{Version: "v1", Kind: "ConfigMap"}
	cronTabGVK     = schema.GroupVersionKind{Group: "stable.example.com", Version: "v1", Kind: "CronTab"}
)

// Small schemas, already resolved, as a SchemaResolver returns them.
func str() spec.Schema                 { return *spec.StringProperty() }
func integer() spec.Schema             { return *spec.Int64Property() }
func boolean() spec.Schema             { return *spec.BoolProperty() }
func listOf(s spec.Schema) spec.Schema { return *spec.ArrayProperty(&s) }
func mapOf(s spec.Schema) spec.Schema  { return *spec.MapProperty(&s) }
func withExt(s spec.Schema, ext string) spec.Schema {
	s.AddExtension(ext, true)
	return s
}
func object(props map[string]spec.Schema) spec.Schema {
	return spec.Schema{SchemaProps: spec.SchemaProps{Type: spec.StringOrArray{"object"}, Properties: props}}
}
func kindRoot(props map[string]spec.Schema) *spec.Schema {
	s := object(props)
	return &s
}

// deploymentSchema is a Deployment-like schema: int replicas, string
// fields, maps of labels, a list of objects, an int-or-string.
func deploymentSchema() *spec.Schema {
	labels := mapOf(str())
	return kindRoot(map[string]spec.Schema{
		"apiVersion": str(),
		"kind":       str(),
		"metadata":   object(map[string]spec.Schema{"name": str(), "namespace": str(), "labels": labels}),
		"spec": object(map[string]spec.Schema{
			"replicas": integer(),
			"paused":   boolean(),
			"selector": object(map[string]spec.Schema{"matchLabels": labels}),
			"strategy": object(map[string]spec.Schema{
				"type":          str(),
				"rollingUpdate": object(map[string]spec.Schema{"maxSurge": withExt(spec.Schema{}, "x-kubernetes-int-or-string")}),
			}),
			"template": object(map[string]spec.Schema{
				"metadata": object(map[string]spec.Schema{"labels": labels}),
				"spec": object(map[string]spec.Schema{
					"containers": listOf(object(map[string]spec.Schema{
						"name":  str(),
						"image": str(),
						"ports": listOf(object(map[string]spec.Schema{"containerPort": integer()})),
					})),
				}),
			}),
		}),
		"status": object(map[string]spec.Schema{"readyReplicas": integer()}),
	})
}

// cronTabSchema is the conformance test's CronTab; spec preserves
// unknown fields when preserve is set. No metadata: ObjectMeta is assumed.
func cronTabSchema(preserve bool) *spec.Schema {
	sp := object(map[string]spec.Schema{"cronSpec": str(), "image": str(), "replicas": integer()})
	if preserve {
		sp = withExt(sp, "x-kubernetes-preserve-unknown-fields")
	}
	return kindRoot(map[string]spec.Schema{"spec": sp})
}

// fakeResolver is a SchemaResolver over fixed maps. hidden resources are
// known only after Reset.
type fakeResolver struct {
	kinds   map[schema.GroupVersionResource][]schema.GroupVersionKind
	hidden  map[schema.GroupVersionResource][]schema.GroupVersionKind
	schemas map[schema.GroupVersionKind]*spec.Schema

	mu     sync.Mutex
	resets int // guarded by mu
}

func newFakeResolver() *fakeResolver {
	return &fakeResolver{
		kinds: map[schema.GroupVersionResource][]schema.GroupVersionKind{
			deploymentsGVR: {deploymentGVK},
			replicaSetsGVR: {replicaSetGVK},
			configMapsGVR:  {configMapGVK},
		},
		schemas: map[schema.GroupVersionKind]*spec.Schema{
			deploymentGVK: deploymentSchema(),
			replicaSetGVK: deploymentSchema(),
			configMapGVK:  kindRoot(map[string]spec.Schema{"data": mapOf(str())}),
		},
	}
}

func (f *fakeResolver) ResolveSchema(gvk schema.GroupVersionKind) (*spec.Schema, error) {
	if s, ok := f.schemas[gvk]; ok {
		return s, nil
	}
	return nil, fmt.Errorf("no schema for %v: %w", gvk, policy.ErrSchemaNotFound)
}

func (f *fakeResolver) KindsFor(gvr schema.GroupVersionResource) ([]schema.GroupVersionKind, error) {
	if k, ok := f.kinds[gvr]; ok {
		return k, nil
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	if k, ok := f.hidden[gvr]; ok && f.resets > 0 {
		return k, nil
	}
	return nil, fmt.Errorf("no resource %v", gvr)
}

func (f *fakeResolver) Reset() {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.resets++
}

func rule(groups, versions, resources []string) admissionregistrationv1.NamedRuleWithOperations {
	return admissionregistrationv1.NamedRuleWithOperations{RuleWithOperations: admissionregistrationv1.RuleWithOperations{
		Operations: []admissionregistrationv1.OperationType{admissionregistrationv1.Create, admissionregistrationv1.Update},
		Rule:       admissionregistrationv1.Rule{APIGroups: groups, APIVersions: versions, Resources: resources},
	}}
}

var deploymentsRule = rule([]string{"apps"}, []string{"v1"}, []string{"deployments"})

func newPolicy(rules []admissionregistrationv1.NamedRuleWithOperations, vals ...admissionregistrationv1.Validation) *admissionregistrationv1.ValidatingAdmissionPolicy {
	return &admissionregistrationv1.ValidatingAdmissionPolicy{
		ObjectMeta: metav1.ObjectMeta{Name: "typed", UID: "uid-typed", Generation: 1},
		Spec: admissionregistrationv1.ValidatingAdmissionPolicySpec{
			MatchConstraints: &admissionregistrationv1.MatchResources{
				NamespaceSelector: &metav1.LabelSelector{},
				ObjectSelector:    &metav1.LabelSelector{},
				ResourceRules:     rules,
			},
			Validations: vals,
		},
	}
}

func expr(e string) admissionregistrationv1.Validation {
	return admissionregistrationv1.Validation{Expression: e}
}

// confused is the conformance test's policy whose expressions do not
// type-check against deployments.
var confused = admissionregistrationv1.Validation{
	Expression:        "object.spec.replicas > '1'",
	MessageExpression: "'wants replicas > 1, got ' + object.spec.replicas",
}

// warning is what a test expects of one ExpressionWarning: its fieldRef
// and substrings of its text.
type warning struct {
	FieldRef string
	Contains []string
}

func checkWarnings(t *testing.T, got []admissionregistrationv1.ExpressionWarning, want []warning) {
	t.Helper()
	gotRefs, wantRefs := []string{}, []string{}
	for _, w := range got {
		gotRefs = append(gotRefs, w.FieldRef)
	}
	for _, w := range want {
		wantRefs = append(wantRefs, w.FieldRef)
	}
	if diff := cmp.Diff(wantRefs, gotRefs); diff != "" {
		t.Fatalf("fieldRefs (-want +got):\n%s\nwarnings: %q", diff, got)
	}
	for i, w := range want {
		for _, sub := range w.Contains {
			if !strings.Contains(got[i].Warning, sub) {
				t.Errorf("warning %s = %q, want it to contain %q", w.FieldRef, got[i].Warning, sub)
			}
		}
	}
}

func TestTypeCheck(t *testing.T) {
	t.Parallel()
	paramsCM := func(p *admissionregistrationv1.ValidatingAdmissionPolicy) *admissionregistrationv1.ValidatingAdmissionPolicy {
		p.Spec.ParamKind = &admissionregistrationv1.ParamKind{APIVersion: "v1", Kind: "ConfigMap"}
		return p
	}
	tests := []struct {
		name   string
		policy *admissionregistrationv1.ValidatingAdmissionPolicy
		setup  func(*fakeResolver)
		want   []warning
		resets int
	}{{
		name:   "conformance: type confusion",
		policy: newPolicy([]admissionregistrationv1.NamedRuleWithOperations{deploymentsRule}, confused),
		want: []warning{
			{"spec.validations[0].expression", []string{"apps/v1, Kind=Deployment: ERROR: <input>:1:22: found no matching overload for '_>_' applied to '(int, string)'"}},
			{"spec.validations[0].messageExpression", []string{"found no matching overload for '_+_' applied to '(string, int)'"}},
		},
	}, {
		name: "correct expressions",
		policy: newPolicy([]admissionregistrationv1.NamedRuleWithOperations{deploymentsRule},
			expr("object.spec.replicas > 1"),
			admissionregistrationv1.Validation{Expression: "object.spec.replicas > 1", MessageExpression: "'wants replicas > 1, got ' + string(object.spec.replicas)"},
			expr("object.metadata.labels['app'] == 'web' && 'app' in object.spec.selector.matchLabels"),
			expr("object.spec.template.spec.containers.all(c, c.image.startsWith('registry/') && c.ports.all(p, p.containerPort < 65536))"),
			expr("!has(object.spec.paused) || !object.spec.paused"),
			expr("oldObject == null || object.spec.replicas >= oldObject.spec.replicas"),
			expr("object.spec.strategy.rollingUpdate.maxSurge == '25%' || object.spec.strategy.rollingUpdate.maxSurge == 1"),
			expr("request.operation == 'CREATE' && request.userInfo.username != '' && variables.anything == 1"),
			expr("object.apiVersion == 'apps/v1' && object.kind == 'Deployment' && object.status.readyReplicas >= 0"),
			expr("object.spec.replicas"), // not a bool: the type is not checked, as upstream
		),
	}, {
		name:   "undefined field",
		policy: newPolicy([]admissionregistrationv1.NamedRuleWithOperations{deploymentsRule}, expr("object.spec.maxRetries < 10")),
		want:   []warning{{"spec.validations[0].expression", []string{"undefined field 'maxRetries'"}}},
	}, {
		name: "each kind matched, sorted, joined",
		policy: newPolicy([]admissionregistrationv1.NamedRuleWithOperations{
			rule([]string{"apps"}, []string{"v1"}, []string{"replicasets", "deployments"})}, expr("object.spec.replicas == 'x'")),
		want: []warning{{"spec.validations[0].expression", []string{
			"apps/v1, Kind=Deployment: ERROR: <input>:1:22: found no matching overload for '_==_' applied to '(int, string)'\n | object.spec.replicas == 'x'\n | .....................^\n\napps/v1, Kind=ReplicaSet: ERROR: <input>:1:22: found no matching overload for '_==_' applied to '(int, string)'\n | object.spec.replicas == 'x'\n | .....................^\n",
		}}},
	}, {
		name:   "wildcard group skipped",
		policy: newPolicy([]admissionregistrationv1.NamedRuleWithOperations{rule([]string{"*"}, []string{"v1"}, []string{"deployments"})}, confused),
	}, {
		name:   "wildcard version skipped",
		policy: newPolicy([]admissionregistrationv1.NamedRuleWithOperations{rule([]string{"apps"}, []string{"*"}, []string{"deployments"})}, confused),
	}, {
		name: "wildcard resource and subresources skipped",
		policy: newPolicy([]admissionregistrationv1.NamedRuleWithOperations{
			rule([]string{"apps"}, []string{"v1"}, []string{"*", "deployments/status", "deployments/*"})}, confused),
	}, {
		name:   "unknown resource skipped after one reset",
		policy: newPolicy([]admissionregistrationv1.NamedRuleWithOperations{rule([]string{"example.com"}, []string{"v1"}, []string{"gadgets", "widgets"})}, confused),
		resets: 1,
	}, {
		name:   "resource found after a reset",
		policy: newPolicy([]admissionregistrationv1.NamedRuleWithOperations{rule([]string{"stable.example.com"}, []string{"v1"}, []string{"crontabs"})}, expr("object.spec.maxRetries < 10")),
		setup: func(f *fakeResolver) {
			f.hidden = map[schema.GroupVersionResource][]schema.GroupVersionKind{cronTabsGVR: {cronTabGVK}}
			f.schemas[cronTabGVK] = cronTabSchema(false)
		},
		want:   []warning{{"spec.validations[0].expression", []string{"stable.example.com/v1, Kind=CronTab: ", "undefined field 'maxRetries'"}}},
		resets: 1,
	}, {
		name: "schema not found skipped",
		policy: newPolicy([]admissionregistrationv1.NamedRuleWithOperations{
			rule([]string{"apps"}, []string{"v1"}, []string{"deployments", "replicasets"})}, expr("object.spec.replicas == 'x'")),
		setup: func(f *fakeResolver) { delete(f.schemas, replicaSetGVK) },
		want:  []warning{{"spec.validations[0].expression", []string{"apps/v1, Kind=Deployment: "}}},
	}, {
		name: "CRD: conformance",
		policy: newPolicy([]admissionregistrationv1.NamedRuleWithOperations{rule([]string{"stable.example.com"}, []string{"v1"}, []string{"crontabs"})},
			expr("object.spec.replicas > '1'"), expr("object.spec.maxRetries < 10"), expr("object.spec.replicas > 1"),
			expr("object.metadata.name.startsWith('a') && object.metadata.labels['x'] == 'y' && object.kind == 'CronTab'")),
		setup: func(f *fakeResolver) {
			f.kinds[cronTabsGVR] = []schema.GroupVersionKind{cronTabGVK}
			f.schemas[cronTabGVK] = cronTabSchema(false)
		},
		want: []warning{
			{"spec.validations[0].expression", []string{"found no matching overload for '_>_' applied to '(int, string)'"}},
			{"spec.validations[1].expression", []string{"undefined field 'maxRetries'"}},
		},
	}, {
		name: "CRD: preserve-unknown-fields is dyn",
		policy: newPolicy([]admissionregistrationv1.NamedRuleWithOperations{rule([]string{"stable.example.com"}, []string{"v1"}, []string{"crontabs"})},
			expr("object.spec.maxRetries < 10"), expr("object.spec.replicas > '1'")),
		setup: func(f *fakeResolver) {
			f.kinds[cronTabsGVR] = []schema.GroupVersionKind{cronTabGVK}
			f.schemas[cronTabGVK] = cronTabSchema(true)
		},
	}, {
		name: "params typed after the paramKind",
		policy: paramsCM(newPolicy([]admissionregistrationv1.NamedRuleWithOperations{deploymentsRule},
			expr("object.spec.replicas <= int(params.data['max'])"), expr("params.data.max > 1"))),
		want: []warning{{"spec.validations[1].expression", []string{"found no matching overload for '_>_' applied to '(string, int)'"}}},
	}, {
		name: "params dyn when the paramKind does not resolve",
		policy: paramsCM(newPolicy([]admissionregistrationv1.NamedRuleWithOperations{deploymentsRule},
			expr("params.data.max > 1"), expr("params.whatever"))),
		setup: func(f *fakeResolver) { delete(f.schemas, configMapGVK) },
	}, {
		name: "params of the matched kind",
		policy: paramsCM(newPolicy([]admissionregistrationv1.NamedRuleWithOperations{rule([]string{""}, []string{"v1"}, []string{"configmaps"})},
			expr("object.data == params.data"), expr("object.data.x == params.data.y"), expr("params.data == 1"))),
		want: []warning{{"spec.validations[2].expression", []string{"v1, Kind=ConfigMap: ", "'_==_' applied to '(map(string, string), int)'"}}},
	}, {
		name: "params dyn when the paramKind does not parse",
		policy: func() *admissionregistrationv1.ValidatingAdmissionPolicy {
			p := newPolicy([]admissionregistrationv1.NamedRuleWithOperations{deploymentsRule}, expr("params.data.max > 1"))
			p.Spec.ParamKind = &admissionregistrationv1.ParamKind{APIVersion: "a/b/c", Kind: "ConfigMap"}
			return p
		}(),
	}, {
		name:   "params undeclared without a paramKind",
		policy: newPolicy([]admissionregistrationv1.NamedRuleWithOperations{deploymentsRule}, expr("params.data.max > 1")),
		want:   []warning{{"spec.validations[0].expression", []string{"undeclared reference to 'params'"}}},
	}, {
		name:   "no validations",
		policy: newPolicy([]admissionregistrationv1.NamedRuleWithOperations{deploymentsRule}),
	}, {
		name: "no match constraints",
		policy: func() *admissionregistrationv1.ValidatingAdmissionPolicy {
			p := newPolicy(nil, confused)
			p.Spec.MatchConstraints = nil
			return p
		}(),
	}}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			r := newFakeResolver()
			if tt.setup != nil {
				tt.setup(r)
			}
			orig := tt.policy.DeepCopy()
			got := policy.TypeCheck(context.Background(), tt.policy, r)
			if len(tt.want) == 0 && got != nil {
				t.Errorf("got %q, want nil", got)
			}
			checkWarnings(t, got, tt.want)
			if r.resets != tt.resets {
				t.Errorf("got %d resets, want %d", r.resets, tt.resets)
			}
			if diff := cmp.Diff(orig, tt.policy); diff != "" {
				t.Errorf("policy changed (-before +after):\n%s", diff)
			}
		})
	}
}

func TestTypeCheckNilResolver(t *testing.T) {
	t.Parallel()
	if got := policy.TypeCheck(context.Background(), newPolicy([]admissionregistrationv1.NamedRuleWithOperations{deploymentsRule}, confused), nil); got != nil {
		t.Errorf("got %q, want nil", got)
	}
}

// TestTypeCheckAtMostTenKinds: as upstream, at most 10 kinds are checked.
func TestTypeCheckAtMostTenKinds(t *testing.T) {
	t.Parallel()
	r := newFakeResolver()
	var resources []string
	for i := range 12 {
		res := fmt.Sprintf("r%02d", i)
		resources = append(resources, res)
		gvk := schema.GroupVersionKind{Group: "example.com", Version: "v1", Kind: fmt.Sprintf("K%02d", i)}
		r.kinds[schema.GroupVersionResource{Group: "example.com", Version: "v1", Resource: res}] = []schema.GroupVersionKind{gvk}
		r.schemas[gvk] = deploymentSchema()
	}
	got := policy.TypeCheck(context.Background(), newPolicy([]admissionregistrationv1.NamedRuleWithOperations{
		rule([]string{"example.com"}, []string{"v1"}, resources)}, expr("object.spec.replicas == 'x'")), r)
	if len(got) != 1 {
		t.Fatalf("got %q, want one warning", got)
	}
	if n := strings.Count(got[0].Warning, "example.com/v1, Kind="); n != 10 {
		t.Errorf("warning names %d kinds, want 10: %q", n, got[0].Warning)
	}
	if strings.Contains(got[0].Warning, "K10") || strings.Contains(got[0].Warning, "K11") {
		t.Errorf("warning names kinds after the tenth: %q", got[0].Warning)
	}
}

// TestRunStatusTypeChecking: with a resolver, RunStatus writes the
// warnings of each generation, and type-checks a generation once even
// when writing it is retried.
func TestRunStatusTypeChecking(t *testing.T) {
	t.Parallel()
	pol := newPolicy([]admissionregistrationv1.NamedRuleWithOperations{deploymentsRule}, confused)
	client := fake.NewClientset(pol)
	var updates atomic.Int32
	client.PrependReactor("update", "validatingadmissionpolicies", func(a clienttesting.Action) (bool, runtime.Object, error) {
		if a.GetSubresource() == "status" && updates.Add(1) == 1 {
			return true, nil, errors.New("transient")
		}
		return false, nil, nil
	})
	r := &countingResolver{fakeResolver: newFakeResolver()}
	f := informers.NewSharedInformerFactory(client, 0)
	inf := f.Admissionregistration().V1().ValidatingAdmissionPolicies()
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	lister, informer := inf.Lister(), inf.Informer()
	go func() {
		done <- policy.RunStatus(ctx, client, lister, informer, slog.New(slog.NewTextHandler(t.Output(), nil)), policy.WithSchemaResolver(r))
	}()
	f.StartWithContext(ctx)
	t.Cleanup(func() {
		cancel()
		if err := <-done; err != nil {
			t.Errorf("RunStatus: %v", err)
		}
		f.Shutdown()
	})

	waitStatus := func(gen int64, want []warning) {
		t.Helper()
		deadline := time.Now().Add(10 * time.Second)
		for {
			got, err := client.AdmissionregistrationV1().ValidatingAdmissionPolicies().Get(ctx, pol.Name, metav1.GetOptions{})
			if err == nil && got.Status.ObservedGeneration == gen && got.Status.TypeChecking != nil {
				checkWarnings(t, got.Status.TypeChecking.ExpressionWarnings, want)
				return
			}
			if time.Now().After(deadline) {
				t.Fatalf("timed out waiting for generation %d: %+v, %v", gen, got, err)
			}
			time.Sleep(10 * time.Millisecond) // polling interval, not a wait for an event
		}
	}
	waitStatus(1, []warning{
		{"spec.validations[0].expression", []string{"found no matching overload for '_>_' applied to '(int, string)'"}},
		{"spec.validations[0].messageExpression", []string{"found no matching overload for '_+_' applied to '(string, int)'"}},
	})
	if n := updates.Load(); n < 2 {
		t.Errorf("got %d status updates, want a retry after the failure", n)
	}
	if n := r.resolved.Load(); n != 1 {
		t.Errorf("resolved %d schemas, want 1 (one type check for generation 1)", n)
	}

	// A corrected generation gets typeChecking without warnings.
	cur, err := client.AdmissionregistrationV1().ValidatingAdmissionPolicies().Get(ctx, pol.Name, metav1.GetOptions{})
	if err != nil {
		t.Fatal(err)
	}
	cur = cur.DeepCopy()
	cur.Generation = 2
	cur.Spec.Validations = []admissionregistrationv1.Validation{expr("object.spec.replicas > 1")}
	if _, err := client.AdmissionregistrationV1().ValidatingAdmissionPolicies().Update(ctx, cur, metav1.UpdateOptions{}); err != nil {
		t.Fatal(err)
	}
	waitStatus(2, nil)
}

// countingResolver counts the schemas resolved.
type countingResolver struct {
	*fakeResolver
	resolved atomic.Int32
}

func (c *countingResolver) ResolveSchema(gvk schema.GroupVersionKind) (*spec.Schema, error) {
	c.resolved.Add(1)
	return c.fakeResolver.ResolveSchema(gvk)
}

// openapiDiscovery is a fake discovery (resources) whose OpenAPI v3 comes
// from a real client of a test server.
type openapiDiscovery struct {
	*fakediscovery.FakeDiscovery
	oa openapi.Client
}

func (d openapiDiscovery) OpenAPIV3() openapi.Client { return d.oa }

var _ discovery.DiscoveryInterface = openapiDiscovery{}

const cronTabCRD = `{
  "metadata": {"name": "crontabs.stable.example.com"},
  "spec": {
    "group": "stable.example.com",
    "scope": "Namespaced",
    "names": {"plural": "crontabs", "singular": "crontab", "kind": "CronTab", "listKind": "CronTabList"},
    "versions": [{"name": "v1", "served": true, "storage": true, "schema": {"openAPIV3Schema": {
      "type": "object",
      "properties": {"spec": {"type": "object", "properties": {
        "cronSpec": {"type": "string"}, "image": {"type": "string"}, "replicas": {"type": "integer"},
        "port": {"x-kubernetes-int-or-string": true}
      }}}
    }}}]
  }
}`

// newOpenAPIResolver returns NewDiscoveryResolver's resolver over the
// documents skiff's OpenAPI handler serves (the built-in resources and
// the CronTab CRD), with the resources of configmaps, deployments,
// customresourcedefinitions and crontabs, and the count of documents read.
func newOpenAPIResolver(t testing.TB) (policy.SchemaResolver, *atomic.Int32) {
	t.Helper()
	h, err := skiffopenapi.New(builtin.Resources())
	if err != nil {
		t.Fatalf("openapi: %v", err)
	}
	crd := &apiextensionsv1.CustomResourceDefinition{}
	if err := json.Unmarshal([]byte(cronTabCRD), crd); err != nil {
		t.Fatal(err)
	}
	if err := h.SetCustomResources([]*apiextensionsv1.CustomResourceDefinition{crd}); err != nil {
		t.Fatalf("SetCustomResources: %v", err)
	}
	docReads := new(atomic.Int32)
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if strings.HasPrefix(r.URL.Path, "/openapi/v3/api") {
			docReads.Add(1)
		}
		h.ServeHTTP(w, r)
	}))
	t.Cleanup(srv.Close)
	dc, err := discovery.NewDiscoveryClientForConfig(&rest.Config{Host: srv.URL, QPS: -1}) // no client-side rate limit
	if err != nil {
		t.Fatal(err)
	}
	fd := &fakediscovery.FakeDiscovery{Fake: &clienttesting.Fake{}}
	fd.Resources = []*metav1.APIResourceList{
		{GroupVersion: "v1", APIResources: []metav1.APIResource{{Name: "configmaps", Namespaced: true, Kind: "ConfigMap"}}},
		{GroupVersion: "apps/v1", APIResources: []metav1.APIResource{{Name: "deployments", Namespaced: true, Kind: "Deployment"}}},
		{GroupVersion: "apiextensions.k8s.io/v1", APIResources: []metav1.APIResource{{Name: "customresourcedefinitions", Kind: "CustomResourceDefinition"}}},
		{GroupVersion: "stable.example.com/v1", APIResources: []metav1.APIResource{{Name: "crontabs", Namespaced: true, Kind: "CronTab"}}},
	}
	return policy.NewDiscoveryResolver(openapiDiscovery{FakeDiscovery: fd, oa: dc.OpenAPIV3()}), docReads
}

// TestDiscoveryResolver type-checks against the documents skiff's
// OpenAPI handler serves: built-in kinds ($refs, ObjectMeta, the
// JSONSchemaProps cycle of CustomResourceDefinition) and a CRD.
func TestDiscoveryResolver(t *testing.T) {
	t.Parallel()
	r, docReads := newOpenAPIResolver(t)

	cronTabs := rule([]string{"stable.example.com"}, []string{"v1"}, []string{"crontabs"})
	crds := rule([]string{"apiextensions.k8s.io"}, []string{"v1"}, []string{"customresourcedefinitions"})
	withParams := func(p *admissionregistrationv1.ValidatingAdmissionPolicy) *admissionregistrationv1.ValidatingAdmissionPolicy {
		p.Spec.ParamKind = &admissionregistrationv1.ParamKind{APIVersion: "v1", Kind: "ConfigMap"}
		return p
	}
	tests := []struct {
		name   string
		policy *admissionregistrationv1.ValidatingAdmissionPolicy
		want   []warning
	}{{
		name:   "deployments: conformance",
		policy: newPolicy([]admissionregistrationv1.NamedRuleWithOperations{deploymentsRule}, confused),
		want: []warning{
			{"spec.validations[0].expression", []string{"apps/v1, Kind=Deployment: ERROR: <input>:1:22: found no matching overload for '_>_' applied to '(int, string)'"}},
			{"spec.validations[0].messageExpression", []string{"found no matching overload for '_+_' applied to '(string, int)'"}},
		},
	}, {
		name: "deployments: correct",
		policy: withParams(newPolicy([]admissionregistrationv1.NamedRuleWithOperations{deploymentsRule},
			expr("object.spec.replicas > 1"),
			expr("object.metadata.name.startsWith('web') && object.metadata.namespace != '' && object.metadata.labels['app'] == 'web'"),
			expr("object.metadata.generation > 0 && object.metadata.creationTimestamp != ''"),
			expr("object.spec.template.spec.containers.all(c, c.image.startsWith('registry/') && (!has(c.ports) || c.ports.all(p, p.containerPort > 0)))"),
			expr("object.spec.strategy.rollingUpdate.maxSurge == '25%' || object.spec.strategy.rollingUpdate.maxSurge == 1"),
			expr("object.spec.template.spec.containers.all(c, !has(c.resources.limits) || c.resources.limits.all(k, k != ''))"),
			expr("object.spec.replicas <= int(params.data['max'])"))),
	}, {
		name: "deployments: undefined fields, typed params",
		policy: withParams(newPolicy([]admissionregistrationv1.NamedRuleWithOperations{deploymentsRule},
			expr("object.spec.maxRetries < 10"), expr("object.metadata.labels.app == 1"), expr("params.data.max > 1"))),
		want: []warning{
			{"spec.validations[0].expression", []string{"undefined field 'maxRetries'"}},
			{"spec.validations[1].expression", []string{"'_==_' applied to '(string, int)'"}},
			{"spec.validations[2].expression", []string{"'_>_' applied to '(string, int)'"}},
		},
	}, {
		name: "CRD: conformance",
		policy: newPolicy([]admissionregistrationv1.NamedRuleWithOperations{cronTabs},
			expr("object.spec.replicas > '1'"), expr("object.spec.maxRetries < 10")),
		want: []warning{
			{"spec.validations[0].expression", []string{"stable.example.com/v1, Kind=CronTab: ", "found no matching overload for '_>_' applied to '(int, string)'"}},
			{"spec.validations[1].expression", []string{"undefined field 'maxRetries'"}},
		},
	}, {
		name: "CRD: correct",
		policy: newPolicy([]admissionregistrationv1.NamedRuleWithOperations{cronTabs},
			expr("object.spec.replicas > 1"), expr("object.spec.port == 80 || object.spec.port == 'http'"),
			expr("object.metadata.name.size() < 64 && object.apiVersion == 'stable.example.com/v1' && object.kind == 'CronTab'")),
	}, {
		name: "JSONSchemaProps cycle is dyn",
		policy: newPolicy([]admissionregistrationv1.NamedRuleWithOperations{crds},
			expr("object.spec.versions.all(v, !has(v.schema) || v.schema.openAPIV3Schema.properties.all(k, v.schema.openAPIV3Schema.properties[k].properties.x.type != 1))"),
			expr("object.spec.group == 1")),
		want: []warning{{"spec.validations[1].expression", []string{"apiextensions.k8s.io/v1, Kind=CustomResourceDefinition: "}}},
	}}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got := policy.TypeCheck(context.Background(), tt.policy, r)
			t.Logf("warnings: %q", got)
			checkWarnings(t, got, tt.want)
		})
	}

	// Documents are read once while their hash stays.
	before := docReads.Load()
	policy.TypeCheck(context.Background(), newPolicy([]admissionregistrationv1.NamedRuleWithOperations{deploymentsRule}, confused), r)
	if n := docReads.Load() - before; n != 0 {
		t.Errorf("read %d documents again, want 0 (cached by hash)", n)
	}
	// An unknown kind is ErrSchemaNotFound.
	if _, err := r.ResolveSchema(schema.GroupVersionKind{Group: "apps", Version: "v1", Kind: "Gadget"}); !errors.Is(err, policy.ErrSchemaNotFound) {
		t.Errorf("ResolveSchema(Gadget) = %v, want ErrSchemaNotFound", err)
	}
	if _, err := r.ResolveSchema(schema.GroupVersionKind{Group: "example.com", Version: "v1", Kind: "Gadget"}); !errors.Is(err, policy.ErrSchemaNotFound) {
		t.Errorf("ResolveSchema(example.com Gadget) = %v, want ErrSchemaNotFound", err)
	}
}

// BenchmarkTypeCheck is the cost of type-checking a policy on
// deployments (with the documents already read): the Deployment type,
// its CEL environment and two expressions.
func BenchmarkTypeCheck(b *testing.B) {
	r, _ := newOpenAPIResolver(b)
	p := newPolicy([]admissionregistrationv1.NamedRuleWithOperations{deploymentsRule}, confused)
	policy.TypeCheck(context.Background(), p, r) // reads and resolves the schema
	b.ReportAllocs()
	for b.Loop() {
		if got := policy.TypeCheck(context.Background(), p, r); len(got) != 2 {
			b.Fatalf("got %q, want 2 warnings", got)
		}
	}
}
