package webhook

import (
	"context"
	"fmt"
	"strings"
	"sync/atomic"
	"testing"

	admissionv1 "k8s.io/api/admission/v1"
	admissionregistrationv1 "k8s.io/api/admissionregistration/v1"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/utils/ptr"

	"github.com/skiff-dev/skiff/internal/admission"
	"github.com/skiff-dev/skiff/internal/auth"
)

// conds builds matchConditions named c0, c1, ... from expressions.
func conds(exprs ...string) []admissionregistrationv1.MatchCondition {
	out := make([]admissionregistrationv1.MatchCondition, len(exprs))
	for i, e := range exprs {
		out[i] = admissionregistrationv1.MatchCondition{Name: fmt.Sprintf("c%d", i), Expression: e}
	}
	return out
}

// costly is a true condition that costs about 3*n^3: n=68 is about 943,000
// (under the per-call limit, three of them over the webhook's budget),
// n=100 is over the per-call limit.
func costly(n int) string {
	nums := make([]string, n)
	for i := range nums {
		nums[i] = fmt.Sprint(i)
	}
	l := "[" + strings.Join(nums, ",") + "]"
	return l + ".all(a, " + l + ".all(b, " + l + ".all(c, true)))"
}

// matchesPattern reports whether s is pattern, where each "..." of
// pattern stands for any text.
func matchesPattern(s, pattern string) bool {
	parts := strings.Split(pattern, "...")
	if len(parts) == 1 {
		return s == pattern
	}
	if !strings.HasPrefix(s, parts[0]) || !strings.HasSuffix(s[len(parts[0]):], parts[len(parts)-1]) {
		return false
	}
	rest := s[len(parts[0]) : len(s)-len(parts[len(parts)-1])]
	for _, p := range parts[1 : len(parts)-1] {
		i := strings.Index(rest, p)
		if i < 0 {
			return false
		}
		rest = rest[i+len(p):]
	}
	return true
}

func podUpdate(old, pod *corev1.Pod) *admission.Request {
	r := podCreate(pod)
	r.Operation = admission.Update
	r.OldObject = old
	return r
}

func podDelete(old *corev1.Pod) *admission.Request {
	r := podCreate(old)
	r.Operation = admission.Delete
	r.Object = nil
	r.OldObject = old
	return r
}

func withLabels(p *corev1.Pod, lbls map[string]string) *corev1.Pod {
	p.Labels = lbls
	return p
}

func TestMatchConditions(t *testing.T) {
	t.Parallel()
	scheduler := podCreate(testPod("p"))
	scheduler.User = auth.User{Name: "system:kube-scheduler", Groups: []string{"system:authenticated"}}
	generated := podCreate(testPod(""))
	generated.Name = ""
	dryRun := podCreate(testPod("p"))
	dryRun.DryRun = true
	status := podUpdate(testPod("p"), testPod("p"))
	status.Subresource = "status"
	status.User.Extra = map[string][]string{"scopes": {"a", "b"}}
	status.User.UID = "u-1"
	status.Options = &metav1.UpdateOptions{FieldManager: "kubelet"}

	tests := []struct {
		name       string
		conditions []admissionregistrationv1.MatchCondition
		ignore     bool // failurePolicy Ignore (else Fail)
		req        *admission.Request
		mod        func(*admissionregistrationv1.ValidatingWebhook)
		wantCalled bool
		// wantErr is the verdict, "<code> <message>", where "..." stands
		// for any text.
		wantErr string
	}{
		{name: "user excluded", conditions: conds(`request.userInfo.username != 'system:kube-scheduler'`),
			req: scheduler},
		{name: "other user called", conditions: conds(`request.userInfo.username != 'system:kube-scheduler'`),
			req: podCreate(testPod("p")), wantCalled: true},
		{name: "label matches", conditions: conds(`has(object.metadata.labels) && object.metadata.labels['x'] == 'y'`),
			req: podCreate(withLabels(testPod("p"), map[string]string{"x": "y"})), wantCalled: true},
		{name: "label differs", conditions: conds(`has(object.metadata.labels) && object.metadata.labels['x'] == 'y'`),
			req: podCreate(withLabels(testPod("p"), map[string]string{"x": "z"}))},
		{name: "no labels", conditions: conds(`has(object.metadata.labels) && object.metadata.labels['x'] == 'y'`),
			req: podCreate(withLabels(testPod("p"), nil))},
		{name: "oldObject on update", conditions: conds(`oldObject != null && oldObject.metadata.labels['app'] == 'web' && object.metadata.labels['app'] == 'api'`),
			req: podUpdate(testPod("p"), withLabels(testPod("p"), map[string]string{"app": "api"})), wantCalled: true},
		{name: "oldObject null on create", conditions: conds(`oldObject == null`),
			req: podCreate(testPod("p")), wantCalled: true},
		{name: "object null on delete", conditions: conds(`object == null && oldObject.metadata.name == 'p'`),
			req: podDelete(testPod("p")), wantCalled: true},
		{name: "all true", conditions: conds(`request.operation == 'CREATE'`, `object.metadata.name == 'p'`, `request.namespace == 'ns'`),
			req: podCreate(testPod("p")), wantCalled: true},
		{name: "one false of several", conditions: conds(`request.operation == 'CREATE'`, `object.metadata.name == 'q'`, `request.namespace == 'ns'`),
			req: podCreate(testPod("p"))},
		{name: "a false condition wins over an error", conditions: conds(`object.spec.nothere == 'x'`, `false`),
			req: podCreate(testPod("p"))},
		{name: "evaluation error, Fail", conditions: conds(`true`, `object.spec.nothere == 'x'`),
			req:     podCreate(testPod("p")),
			wantErr: `403 pods "p" is forbidden: expression 'object.spec.nothere == 'x'' resulted in error: no such key: nothere`},
		{name: "evaluation error, Ignore", conditions: conds(`object.spec.nothere == 'x'`), ignore: true,
			req: podCreate(testPod("p"))},
		{name: "two errors, Fail", conditions: conds(`object.a == 1`, `object.b == 1`),
			req:     podCreate(testPod("p")),
			wantErr: `403 pods "p" is forbidden: [expression 'object.a == 1' resulted in error: no such key: a, expression 'object.b == 1' resulted in error: no such key: b]`},
		{name: "no name on a generateName create", conditions: conds(`request.name == 'p'`),
			req: generated, wantErr: `403 pods is forbidden: expression 'request.name == 'p'' resulted in error: no such key: name`},
		{name: "compile error, Fail", conditions: conds(`object.metadata.name ==`),
			req: podCreate(testPod("p")), wantErr: `403 pods "p" is forbidden: compilation error: compilation failed: ERROR: <input>:1:24: Syntax error: ...`},
		{name: "compile error, Ignore", conditions: conds(`object.metadata.name ==`), ignore: true,
			req: podCreate(testPod("p"))},
		{name: "undeclared variable, Fail", conditions: conds(`params.x == 1`),
			req: podCreate(testPod("p")), wantErr: `403 pods "p" is forbidden: compilation error: compilation failed: ERROR: <input>:1:1: undeclared reference to 'params'...`},
		{name: "not a bool, Fail", conditions: conds(`'p'`),
			req: podCreate(testPod("p")), wantErr: `403 pods "p" is forbidden: compilation error: must evaluate to bool but got string`},
		{name: "a dyn that is not a bool, Fail", conditions: conds(`object.metadata.name`),
			req: podCreate(testPod("p")), wantErr: `403 pods "p" is forbidden: expression 'object.metadata.name' must evaluate to bool but got string`},
		{name: "a dyn that is false", conditions: conds(`request.dryRun`),
			req: podCreate(testPod("p"))},
		{name: "authorizer, Fail", conditions: conds(`authorizer.group('').resource('pods').check('create').allowed()`),
			req: podCreate(testPod("p")), wantErr: `403 pods "p" is forbidden: expression 'authorizer.group('').resource('pods').check('create').allowed()' resulted in error: authorizer is not supported...`},
		{name: "authorizer, Ignore", conditions: conds(`authorizer.group('').resource('pods').check('create').allowed()`), ignore: true,
			req: podCreate(testPod("p"))},
		{name: "per-call cost limit, Fail", conditions: conds(costly(100)),
			req: podCreate(testPod("p")), wantErr: `403 pods "p" is forbidden: expression '[0,1,...' resulted in error: operation cancelled: actual cost limit exceeded`},
		{name: "cost budget, Fail", conditions: conds(costly(68), costly(68), costly(68)),
			req: podCreate(testPod("p")), wantErr: `403 pods "p" is forbidden: validation failed due to running out of cost budget, no further validation rules will be run`},
		{name: "cost budget, even after a false condition", conditions: conds(`false`, costly(68), costly(68), costly(68)),
			req: podCreate(testPod("p")), wantErr: `403 pods "p" is forbidden: validation failed due to running out of cost budget...`},
		{name: "cost budget, Ignore", conditions: conds(costly(68), costly(68), costly(68)), ignore: true,
			req: podCreate(testPod("p"))},
		{name: "within budget", conditions: conds(costly(68), costly(68)),
			req: podCreate(testPod("p")), wantCalled: true},
		{name: "request of a create", conditions: conds(
			`request.kind == {'group': '', 'version': 'v1', 'kind': 'Pod'}`,
			`request.resource.resource == 'pods' && request.requestResource.version == 'v1' && request.requestKind.kind == 'Pod'`,
			`!has(request.subResource) && !has(request.requestSubResource) && !has(request.uid) && !has(request.object)`,
			`request.name == 'p' && request.namespace == 'ns' && request.operation == 'CREATE' && request.dryRun == false`,
			`request.userInfo.username == 'alice' && request.userInfo.groups == ['system:authenticated'] && !has(request.userInfo.extra)`,
			`request.options.kind == 'CreateOptions'`),
			req: podCreate(testPod("p")), wantCalled: true},
		{name: "request of a status update", conditions: conds(
			`request.subResource == 'status' && request.requestSubResource == 'status' && request.operation == 'UPDATE'`,
			`request.userInfo.uid == 'u-1' && request.userInfo.extra['scopes'] == ['a', 'b']`,
			`request.options.fieldManager == 'kubelet'`),
			mod: func(h *admissionregistrationv1.ValidatingWebhook) { h.Rules[0].Resources = []string{"pods/status"} },
			req: status, wantCalled: true},
		{name: "dry run", conditions: conds(`request.dryRun`), req: dryRun, wantCalled: true},
		{name: "namespaceObject is null", conditions: conds(`namespaceObject == null`),
			req: podCreate(testPod("p")), wantCalled: true},
		{name: "library functions", conditions: conds(
			`object.spec.containers.map(c, c.image).exists(i, i.startsWith('busy'))`,
			`quantity('1Gi').isGreaterThan(quantity('100Mi')) && [1, 2, 3].isSorted() && 'a-b'.split('-').size() == 2`,
			`isCIDR('10.0.0.0/8') && sets.contains(['a', 'b'], ['a'])`),
			req: podCreate(testPod("p")), wantCalled: true},
		{name: "not evaluated when the rules do not match", conditions: conds(`object.nothere == 1`),
			mod: func(h *admissionregistrationv1.ValidatingWebhook) { h.Rules[0].Resources = []string{"services"} },
			req: podCreate(testPod("p"))},
		{name: "not evaluated when the objectSelector does not match", conditions: conds(`object.nothere == 1`),
			mod: func(h *admissionregistrationv1.ValidatingWebhook) {
				h.ObjectSelector = &metav1.LabelSelector{MatchLabels: map[string]string{"app": "db"}}
			},
			req: podCreate(testPod("p"))},
	}
	for _, tt := range tests {
		for _, kind := range []string{"validating", "mutating"} {
			t.Run(tt.name+"/"+kind, func(t *testing.T) {
				t.Parallel()
				var calls atomic.Int32
				url, ca := newWebhookServer(t, func(*admissionv1.AdmissionRequest) *admissionv1.AdmissionResponse {
					calls.Add(1)
					return &admissionv1.AdmissionResponse{Allowed: true}
				})
				policy := admissionregistrationv1.Fail
				if tt.ignore {
					policy = admissionregistrationv1.Ignore
				}
				vw := validatingHook("w.example.com", url, ca, func(h *admissionregistrationv1.ValidatingWebhook) {
					h.MatchConditions = tt.conditions
					h.FailurePolicy = ptr.To(policy)
					if tt.mod != nil {
						tt.mod(h)
					}
				})
				// Each case builds its own request: the plugins may change it.
				req := *tt.req
				var err error
				if kind == "validating" {
					p := NewValidating(Config{Validating: validatingLister(t, validatingConfig("cfg", vw))})
					err = p.Validate(context.Background(), &req)
				} else {
					mw := mutatingHook(vw.Name, url, ca, func(h *admissionregistrationv1.MutatingWebhook) {
						h.Rules, h.ObjectSelector, h.FailurePolicy, h.MatchConditions = vw.Rules, vw.ObjectSelector, vw.FailurePolicy, vw.MatchConditions
					})
					p := NewMutating(Config{Mutating: mutatingLister(t, mutatingConfig("cfg", mw))})
					err = p.Admit(context.Background(), &req)
				}
				if got := errText(t, err); !matchesPattern(got, tt.wantErr) {
					t.Errorf("verdict %q, want %q", got, tt.wantErr)
				}
				want := int32(0)
				if tt.wantCalled {
					want = 1
				}
				if n := calls.Load(); n != want {
					t.Errorf("the webhook was called %d times, want %d", n, want)
				}
			})
		}
	}
}

// TestMatchConditionsSeePatches: a mutating webhook's conditions see the
// object as patched by the webhooks before it.
func TestMatchConditionsSeePatches(t *testing.T) {
	t.Parallel()
	url, ca := newWebhookServer(t, func(*admissionv1.AdmissionRequest) *admissionv1.AdmissionResponse {
		return patchResponse(`[{"op":"add","path":"/metadata/labels/x","value":"y"}]`)
	})
	var calls atomic.Int32
	url2, ca2 := newWebhookServer(t, func(*admissionv1.AdmissionRequest) *admissionv1.AdmissionResponse {
		calls.Add(1)
		return &admissionv1.AdmissionResponse{Allowed: true}
	})
	labelled := conds(`object.metadata.labels['x'] == 'y'`)
	first := mutatingHook("a.example.com", url, ca, func(h *admissionregistrationv1.MutatingWebhook) {
		h.MatchConditions = conds(`!('x' in object.metadata.labels)`) // evaluated before the patch
	})
	second := mutatingHook("b.example.com", url2, ca2, func(h *admissionregistrationv1.MutatingWebhook) { h.MatchConditions = labelled })
	p := NewMutating(Config{Mutating: mutatingLister(t, mutatingConfig("a", first), mutatingConfig("b", second))})
	pod := testPod("p")
	if err := p.Admit(context.Background(), podCreate(pod)); err != nil {
		t.Fatalf("Admit: %v", err)
	}
	if pod.Labels["x"] != "y" {
		t.Fatalf("the first webhook's patch was not applied: labels %v", pod.Labels)
	}
	if n := calls.Load(); n != 1 {
		t.Errorf("the second webhook was called %d times, want 1", n)
	}
}

// TestMatchConditionsShareVariables: the variables built for one webhook's
// conditions serve the next, which may need more of them (the options).
func TestMatchConditionsShareVariables(t *testing.T) {
	t.Parallel()
	var calls atomic.Int32
	url, ca := newWebhookServer(t, func(*admissionv1.AdmissionRequest) *admissionv1.AdmissionResponse {
		calls.Add(1)
		return &admissionv1.AdmissionResponse{Allowed: true}
	})
	hook := func(name string, exprs ...string) admissionregistrationv1.ValidatingWebhook {
		return validatingHook(name, url, ca, func(h *admissionregistrationv1.ValidatingWebhook) { h.MatchConditions = conds(exprs...) })
	}
	cfg := validatingConfig("cfg",
		hook("a.example.com", `request.userInfo.username == 'alice'`),
		hook("b.example.com", `request.options.fieldManager == 'kubectl' && object.metadata.name == 'p'`),
		hook("c.example.com", `has(request.options.dryRun)`))
	p := NewValidating(Config{Validating: validatingLister(t, cfg)})
	r := podCreate(testPod("p"))
	r.Options = &metav1.CreateOptions{FieldManager: "kubectl"}
	if err := p.Validate(context.Background(), r); err != nil {
		t.Fatalf("Validate: %v", err)
	}
	if n := calls.Load(); n != 2 {
		t.Errorf("%d webhooks called, want 2 (a and b)", n)
	}
}

// TestMatchConditionsCompiledOnce: conditions are compiled with their
// configuration's version, not per request.
func TestMatchConditionsCompiledOnce(t *testing.T) {
	t.Parallel()
	cfg := validatingConfig("cfg", validatingHook("v.example.com", "https://x", nil, func(h *admissionregistrationv1.ValidatingWebhook) {
		h.MatchConditions = conds(`true`, `object.metadata.name ==`)
	}))
	var c hookCache
	first, err := c.validatingHooks(validatingLister(t, cfg))
	if err != nil {
		t.Fatalf("validatingHooks: %v", err)
	}
	if len(first) != 1 || len(first[0].conditions) != 2 {
		t.Fatalf("got %d hooks, want 1 with 2 conditions", len(first))
	}
	if c0, c1 := first[0].conditions[0], first[0].conditions[1]; c0.prog == nil || c0.err != nil || c1.err == nil {
		t.Errorf("conditions: %+v %+v, want the first compiled and the second with its error", c0, c1)
	}
	again, _ := c.validatingHooks(validatingLister(t, cfg))
	if again[0].conditions[0] != first[0].conditions[0] {
		t.Errorf("the conditions of an unchanged configuration were compiled again")
	}
	updated := cfg.DeepCopy()
	updated.ResourceVersion = "2"
	updated.Webhooks[0].MatchConditions = conds(`false`)
	changed, _ := c.validatingHooks(validatingLister(t, updated))
	if len(changed[0].conditions) != 1 || changed[0].conditions[0].expr != "false" {
		t.Errorf("after an update: conditions %+v, want the new one", changed[0].conditions)
	}
}

// BenchmarkValidateConditionExcludes is the cost of a webhook a request
// is excluded from by a matchCondition on the user (no call).
func BenchmarkValidateConditionExcludes(b *testing.B) {
	w := validatingHook("v.example.com", "https://127.0.0.1:1", nil, func(h *admissionregistrationv1.ValidatingWebhook) {
		h.MatchConditions = conds(`request.userInfo.username != 'alice'`)
	})
	p := NewValidating(Config{Validating: validatingLister(b, validatingConfig("cfg", w))})
	pod := testPod("p")
	ctx := context.Background()
	b.ReportAllocs()
	for b.Loop() {
		if err := p.Validate(ctx, podCreate(pod)); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkValidateConditionOnObject is the same with a condition on the
// object's labels (the object is encoded and decoded).
func BenchmarkValidateConditionOnObject(b *testing.B) {
	w := validatingHook("v.example.com", "https://127.0.0.1:1", nil, func(h *admissionregistrationv1.ValidatingWebhook) {
		h.MatchConditions = conds(`has(object.metadata.labels) && object.metadata.labels['app'] == 'db'`)
	})
	p := NewValidating(Config{Validating: validatingLister(b, validatingConfig("cfg", w))})
	pod := testPod("p")
	ctx := context.Background()
	b.ReportAllocs()
	for b.Loop() {
		if err := p.Validate(ctx, podCreate(pod)); err != nil {
			b.Fatal(err)
		}
	}
}
