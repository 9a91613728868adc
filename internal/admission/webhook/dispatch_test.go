package webhook

import (
	"context"
	"encoding/json"
	"errors"
	"net/http"
	"strings"
	"sync/atomic"
	"testing"

	"github.com/google/go-cmp/cmp"
	admissionv1 "k8s.io/api/admission/v1"
	admissionregistrationv1 "k8s.io/api/admissionregistration/v1"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/utils/ptr"

	"github.com/skiff-dev/skiff/internal/admission"
)

// errText is "" for nil and "<code> <message>" for a StatusError.
func errText(t *testing.T, err error) string {
	t.Helper()
	if err == nil {
		return ""
	}
	var se *apierrors.StatusError
	if !errors.As(err, &se) {
		return "non-status: " + err.Error()
	}
	return strings.TrimSpace(strings.Join([]string{itoa(se.ErrStatus.Code), se.ErrStatus.Message}, " "))
}

func itoa(c int32) string {
	b, _ := json.Marshal(c)
	return string(b)
}

func patchResponse(patch string) *admissionv1.AdmissionResponse {
	return &admissionv1.AdmissionResponse{Allowed: true, Patch: []byte(patch), PatchType: ptr.To(admissionv1.PatchTypeJSONPatch)}
}

func TestValidatingVerdicts(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name   string
		answer reviewFunc
		want   string
	}{
		{name: "allow", answer: allowAll},
		{name: "deny without status", answer: func(*admissionv1.AdmissionRequest) *admissionv1.AdmissionResponse {
			return &admissionv1.AdmissionResponse{}
		}, want: `400 admission webhook "v.example.com" denied the request without explanation`},
		{name: "deny with message", answer: func(*admissionv1.AdmissionRequest) *admissionv1.AdmissionResponse {
			return &admissionv1.AdmissionResponse{Result: &metav1.Status{Message: "pods are not welcome"}}
		}, want: `400 admission webhook "v.example.com" denied the request: pods are not welcome`},
		{name: "deny with status code", answer: func(*admissionv1.AdmissionRequest) *admissionv1.AdmissionResponse {
			return &admissionv1.AdmissionResponse{Result: &metav1.Status{Code: 403, Reason: metav1.StatusReasonForbidden, Message: "no"}}
		}, want: `403 admission webhook "v.example.com" denied the request: no`},
		{name: "deny with reason only", answer: func(*admissionv1.AdmissionRequest) *admissionv1.AdmissionResponse {
			return &admissionv1.AdmissionResponse{Result: &metav1.Status{Code: 200, Reason: "Invalid"}}
		}, want: `400 admission webhook "v.example.com" denied the request: Invalid`},
		{name: "a patch from a validating webhook", answer: func(*admissionv1.AdmissionRequest) *admissionv1.AdmissionResponse {
			return patchResponse(`[]`)
		}, want: `500 Internal error occurred: failed calling webhook "v.example.com": received invalid webhook response: validating webhook may not return response.patch`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			url, ca := newWebhookServer(t, tt.answer)
			p := NewValidating(Config{Validating: validatingLister(t, validatingConfig("cfg", validatingHook("v.example.com", url, ca)))})
			err := p.Validate(context.Background(), podCreate(testPod("p")))
			if got := errText(t, err); got != tt.want {
				t.Errorf("Validate: got %q, want %q", got, tt.want)
			}
		})
	}
}

// TestReviewRequest checks what a webhook is sent.
func TestReviewRequest(t *testing.T) {
	t.Parallel()
	for _, version := range []string{"v1", "v1beta1"} {
		t.Run(version, func(t *testing.T) {
			t.Parallel()
			var got atomic.Pointer[admissionv1.AdmissionRequest]
			var gotVersion atomic.Value
			url, ca := newRawServer(t, reviewHandler(func(req *admissionv1.AdmissionRequest) *admissionv1.AdmissionResponse {
				got.Store(req)
				return &admissionv1.AdmissionResponse{Allowed: true}
			}, &gotVersion))
			w := validatingHook("v.example.com", url, ca, func(h *admissionregistrationv1.ValidatingWebhook) {
				h.AdmissionReviewVersions = []string{"v0", version}
			})
			p := NewValidating(Config{Validating: validatingLister(t, validatingConfig("cfg", w))})
			r := podCreate(testPod("p"))
			r.User.Extra = map[string][]string{"scopes": {"a"}}
			r.Options = &metav1.CreateOptions{FieldManager: "kubectl"}
			if err := p.Validate(context.Background(), r); err != nil {
				t.Fatalf("Validate: %v", err)
			}
			req := got.Load()
			if req == nil {
				t.Fatal("the webhook was not called")
			}
			if v := gotVersion.Load(); v != "admission.k8s.io/"+version {
				t.Errorf("sent AdmissionReview version %v, want admission.k8s.io/%s", v, version)
			}
			if req.UID == "" || req.DryRun == nil || *req.DryRun {
				t.Errorf("uid %q dryRun %v: want a uid and dryRun false", req.UID, req.DryRun)
			}
			type summary struct {
				Kind, Resource, RequestKind    string
				Name, Namespace, Op, User      string
				Groups                         []string
				Extra                          map[string][]string
				ObjectType, OldObject, Options string
			}
			var obj map[string]any
			if err := json.Unmarshal(req.Object.Raw, &obj); err != nil {
				t.Fatalf("decoding the object: %v", err)
			}
			extra := map[string][]string{}
			for k, v := range req.UserInfo.Extra {
				extra[k] = v
			}
			s := summary{
				Kind: req.Kind.String(), Resource: req.Resource.String(), RequestKind: req.RequestKind.String(),
				Name: req.Name, Namespace: req.Namespace, Op: string(req.Operation), User: req.UserInfo.Username,
				Groups: req.UserInfo.Groups, Extra: extra,
				ObjectType: obj["apiVersion"].(string) + "/" + obj["kind"].(string),
				OldObject:  string(req.OldObject.Raw), Options: string(req.Options.Raw),
			}
			want := summary{
				Kind: "/v1, Kind=Pod", Resource: "/v1, Resource=pods", RequestKind: "/v1, Kind=Pod",
				Name: "p", Namespace: "ns", Op: "CREATE", User: "alice",
				Groups: []string{"system:authenticated"}, Extra: map[string][]string{"scopes": {"a"}},
				ObjectType: "v1/Pod", OldObject: "",
				Options: `{"kind":"CreateOptions","apiVersion":"meta.k8s.io/v1","fieldManager":"kubectl"}`,
			}
			if d := cmp.Diff(want, s); d != "" {
				t.Errorf("review request (-want +got):\n%s", d)
			}
			if r.Object.(*corev1.Pod).Kind != "" {
				t.Errorf("the request's object was changed: kind %q", r.Object.(*corev1.Pod).Kind)
			}
		})
	}
}

func TestMutatingPatches(t *testing.T) {
	t.Parallel()
	addLabel := func(*admissionv1.AdmissionRequest) *admissionv1.AdmissionResponse {
		return patchResponse(`[{"op":"add","path":"/metadata/labels/patched","value":"yes"}]`)
	}
	t.Run("typed pod", func(t *testing.T) {
		t.Parallel()
		url, ca := newWebhookServer(t, addLabel)
		p := NewMutating(Config{Mutating: mutatingLister(t, mutatingConfig("cfg", mutatingHook("m.example.com", url, ca)))})
		pod := testPod("p")
		r := podCreate(pod)
		if err := p.Admit(context.Background(), r); err != nil {
			t.Fatalf("Admit: %v", err)
		}
		if r.Object != pod {
			t.Fatalf("the request's object was replaced, want it patched in place")
		}
		want := map[string]string{"app": "web", "patched": "yes"}
		if d := cmp.Diff(want, pod.Labels); d != "" {
			t.Errorf("labels (-want +got):\n%s", d)
		}
		if pod.Kind != "" || pod.APIVersion != "" {
			t.Errorf("typed pod got type meta %q %q, want none", pod.APIVersion, pod.Kind)
		}
		if pod.Spec.Containers[0].Image != "busybox" {
			t.Errorf("spec lost: %+v", pod.Spec)
		}
		ann := r.AuditAnnotations["mutation.webhook.admission.k8s.io/round_0_index_0"]
		if want := `{"configuration":"cfg","webhook":"m.example.com","mutated":true}`; ann != want {
			t.Errorf("mutation annotation %q, want %q", ann, want)
		}
	})
	t.Run("unstructured", func(t *testing.T) {
		t.Parallel()
		var sent atomic.Value
		url, ca := newWebhookServer(t, func(req *admissionv1.AdmissionRequest) *admissionv1.AdmissionResponse {
			sent.Store(string(req.Object.Raw))
			return patchResponse(`[{"op":"replace","path":"/spec/size","value":3},{"op":"add","path":"/metadata/labels","value":{"x":"y"}}]`)
		})
		w := mutatingHook("m.example.com", url, ca, func(h *admissionregistrationv1.MutatingWebhook) { h.Rules = allRules() })
		p := NewMutating(Config{Mutating: mutatingLister(t, mutatingConfig("cfg", w))})
		u := &unstructured.Unstructured{Object: map[string]any{
			"apiVersion": "example.com/v1", "kind": "Widget",
			"metadata": map[string]any{"name": "w", "namespace": "ns"},
			"spec":     map[string]any{"size": int64(1)},
		}}
		r := &admission.Request{Operation: admission.Create, Namespace: "ns", Name: "w", Object: u,
			Resource: schema.GroupVersionResource{Group: "example.com", Version: "v1", Resource: "widgets"},
			Kind:     schema.GroupVersionKind{Group: "example.com", Version: "v1", Kind: "Widget"}}
		if err := p.Admit(context.Background(), r); err != nil {
			t.Fatalf("Admit: %v", err)
		}
		if r.Object != u {
			t.Fatalf("the request's object was replaced")
		}
		size, _, _ := unstructured.NestedInt64(u.Object, "spec", "size")
		lbls := u.GetLabels()
		if size != 3 || lbls["x"] != "y" || u.GetKind() != "Widget" {
			t.Errorf("patched object %v, want size 3 and label x=y", u.Object)
		}
		if s, _ := sent.Load().(string); !strings.Contains(s, `"kind":"Widget"`) {
			t.Errorf("sent object %s, want kind Widget", s)
		}
	})
	t.Run("patch type not JSONPatch", func(t *testing.T) {
		t.Parallel()
		url, ca := newWebhookServer(t, func(*admissionv1.AdmissionRequest) *admissionv1.AdmissionResponse {
			return &admissionv1.AdmissionResponse{Allowed: true, Patch: []byte(`[{"op":"add","path":"/x","value":1}]`), PatchType: ptr.To(admissionv1.PatchType("MergePatch"))}
		})
		p := NewMutating(Config{Mutating: mutatingLister(t, mutatingConfig("cfg", mutatingHook("m.example.com", url, ca)))})
		err := p.Admit(context.Background(), podCreate(testPod("p")))
		want := `500 Internal error occurred: failed calling webhook "m.example.com": unsupported patch type "MergePatch"`
		if got := errText(t, err); got != want {
			t.Errorf("Admit: got %q, want %q", got, want)
		}
	})
	t.Run("patch that does not apply", func(t *testing.T) {
		t.Parallel()
		url, ca := newWebhookServer(t, func(*admissionv1.AdmissionRequest) *admissionv1.AdmissionResponse {
			return patchResponse(`[{"op":"replace","path":"/spec/nothere/x","value":1}]`)
		})
		p := NewMutating(Config{Mutating: mutatingLister(t, mutatingConfig("cfg", mutatingHook("m.example.com", url, ca)))})
		err := p.Admit(context.Background(), podCreate(testPod("p")))
		if got := errText(t, err); !strings.HasPrefix(got, "500 Internal error occurred: applying the patch of webhook") {
			t.Errorf("Admit: got %q, want a 500 applying the patch", got)
		}
	})
}

// TestMutatingOrderAndReinvocation: configurations run in name order and
// each webhook sees the earlier patches; an IfNeeded webhook called before
// a later change is called once more.
func TestMutatingOrderAndReinvocation(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name       string
		policy     admissionregistrationv1.ReinvocationPolicyType
		wantFirst  int32
		wantSecond int32
	}{
		{"IfNeeded", admissionregistrationv1.IfNeededReinvocationPolicy, 2, 1},
		{"Never", admissionregistrationv1.NeverReinvocationPolicy, 1, 1},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			var firstCalls, secondCalls atomic.Int32
			var sawFirstLabel atomic.Bool
			firstURL, firstCA := newWebhookServer(t, func(req *admissionv1.AdmissionRequest) *admissionv1.AdmissionResponse {
				firstCalls.Add(1)
				return patchResponse(`[{"op":"add","path":"/metadata/labels/first","value":"1"}]`)
			})
			secondURL, secondCA := newWebhookServer(t, func(req *admissionv1.AdmissionRequest) *admissionv1.AdmissionResponse {
				secondCalls.Add(1)
				sawFirstLabel.Store(strings.Contains(string(req.Object.Raw), `"first":"1"`))
				return patchResponse(`[{"op":"add","path":"/metadata/labels/second","value":"2"}]`)
			})
			first := mutatingHook("first.example.com", firstURL, firstCA, func(h *admissionregistrationv1.MutatingWebhook) {
				h.ReinvocationPolicy = ptr.To(tt.policy)
			})
			second := mutatingHook("second.example.com", secondURL, secondCA)
			// "a-cfg" sorts before "b-cfg": first runs first although listed second.
			p := NewMutating(Config{Mutating: mutatingLister(t, mutatingConfig("b-cfg", second), mutatingConfig("a-cfg", first))})
			pod := testPod("p")
			r := podCreate(pod)
			if err := p.Admit(context.Background(), r); err != nil {
				t.Fatalf("Admit: %v", err)
			}
			if got := [2]int32{firstCalls.Load(), secondCalls.Load()}; got != [2]int32{tt.wantFirst, tt.wantSecond} {
				t.Errorf("calls (first, second) = %v, want (%d, %d)", got, tt.wantFirst, tt.wantSecond)
			}
			if !sawFirstLabel.Load() {
				t.Errorf("the second webhook did not see the first one's patch")
			}
			if pod.Labels["first"] != "1" || pod.Labels["second"] != "2" {
				t.Errorf("labels %v, want first and second", pod.Labels)
			}
			_, reinvoked := r.AuditAnnotations["mutation.webhook.admission.k8s.io/round_1_index_0"]
			if reinvoked != (tt.wantFirst == 2) {
				t.Errorf("round 1 annotation present %v, want %v (annotations %v)", reinvoked, tt.wantFirst == 2, r.AuditAnnotations)
			}
		})
	}
}

// TestFailures covers failed calls with each failure policy.
func TestFailures(t *testing.T) {
	t.Parallel()
	hang := func(w http.ResponseWriter, r *http.Request) { <-r.Context().Done() }
	garbage := func(w http.ResponseWriter, r *http.Request) { _, _ = w.Write([]byte("not json")) }
	status500 := func(w http.ResponseWriter, r *http.Request) { http.Error(w, "boom", http.StatusInternalServerError) }
	wrongUID := func(w http.ResponseWriter, r *http.Request) {
		_, _ = w.Write([]byte(`{"apiVersion":"admission.k8s.io/v1","kind":"AdmissionReview","response":{"uid":"other","allowed":true}}`))
	}
	noKind := func(w http.ResponseWriter, r *http.Request) {
		var rev admissionv1.AdmissionReview
		_ = json.NewDecoder(r.Body).Decode(&rev)
		_ = json.NewEncoder(w).Encode(map[string]any{"response": map[string]any{"uid": rev.Request.UID, "allowed": true}})
	}
	tests := []struct {
		name    string
		handler http.HandlerFunc
		policy  admissionregistrationv1.FailurePolicyType
		badCA   bool
		want    string // prefix
	}{
		{name: "timeout, Fail", handler: hang, policy: admissionregistrationv1.Fail,
			want: `500 Internal error occurred: failed calling webhook "v.example.com": failed to call webhook: Post "https://127.0.0.1:`},
		{name: "timeout, Ignore", handler: hang, policy: admissionregistrationv1.Ignore},
		{name: "not json, Fail", handler: garbage, policy: admissionregistrationv1.Fail,
			want: `500 Internal error occurred: failed calling webhook "v.example.com": received invalid webhook response: decoding the AdmissionReview`},
		{name: "not json, Ignore", handler: garbage, policy: admissionregistrationv1.Ignore},
		{name: "status 500", handler: status500, policy: admissionregistrationv1.Fail,
			want: `500 Internal error occurred: failed calling webhook "v.example.com": failed to call webhook: an error on the server ("boom\n")`},
		{name: "wrong uid", handler: wrongUID, policy: admissionregistrationv1.Fail,
			want: `500 Internal error occurred: failed calling webhook "v.example.com": received invalid webhook response: expected response.uid=`},
		{name: "v1 answer without kind", handler: noKind, policy: admissionregistrationv1.Fail,
			want: `500 Internal error occurred: failed calling webhook "v.example.com": received invalid webhook response: expected webhook response of admission.k8s.io/v1, Kind=AdmissionReview, got /, Kind=`},
		{name: "untrusted certificate", handler: garbage, policy: admissionregistrationv1.Fail, badCA: true,
			want: `500 Internal error occurred: failed calling webhook "v.example.com": failed to call webhook: Post "https://127.0.0.1:`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			url, ca := newRawServer(t, tt.handler)
			if tt.badCA {
				_, ca = newCert(t, "other.example.com") // not the server's
			}
			w := validatingHook("v.example.com", url, ca, func(h *admissionregistrationv1.ValidatingWebhook) {
				h.FailurePolicy = ptr.To(tt.policy)
				h.TimeoutSeconds = ptr.To[int32](1)
			})
			p := NewValidating(Config{Validating: validatingLister(t, validatingConfig("cfg", w))})
			r := podCreate(testPod("p"))
			err := p.Validate(context.Background(), r)
			got := errText(t, err)
			if tt.want == "" && got != "" || !strings.HasPrefix(got, tt.want) {
				t.Errorf("Validate: got %q, want prefix %q", got, tt.want)
			}
			if tt.policy == admissionregistrationv1.Ignore {
				key := "failed-open.validating.webhook.admission.k8s.io/round_0_index_0"
				if r.AuditAnnotations[key] != "v.example.com" {
					t.Errorf("annotations %v, want %s", r.AuditAnnotations, key)
				}
			}
		})
	}
	t.Run("mutating timeout, Ignore", func(t *testing.T) {
		t.Parallel()
		url, ca := newRawServer(t, hang)
		w := mutatingHook("m.example.com", url, ca, func(h *admissionregistrationv1.MutatingWebhook) {
			h.FailurePolicy = ptr.To(admissionregistrationv1.Ignore)
			h.TimeoutSeconds = ptr.To[int32](1)
		})
		p := NewMutating(Config{Mutating: mutatingLister(t, mutatingConfig("cfg", w))})
		r := podCreate(testPod("p"))
		if err := p.Admit(context.Background(), r); err != nil {
			t.Fatalf("Admit: %v", err)
		}
		if r.AuditAnnotations["failed-open.mutation.webhook.admission.k8s.io/round_0_index_0"] != "m.example.com" {
			t.Errorf("annotations %v, want the failed-open one", r.AuditAnnotations)
		}
	})
}

func TestDryRun(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name        string
		sideEffects admissionregistrationv1.SideEffectClass
		want        string
		wantCalled  bool
	}{
		{name: "None", sideEffects: admissionregistrationv1.SideEffectClassNone, wantCalled: true},
		{name: "NoneOnDryRun", sideEffects: admissionregistrationv1.SideEffectClassNoneOnDryRun, wantCalled: true},
		{name: "Some", sideEffects: admissionregistrationv1.SideEffectClassSome,
			want: `400 admission webhook "v.example.com" does not support dry run`},
		{name: "Unknown", sideEffects: admissionregistrationv1.SideEffectClassUnknown,
			want: `400 admission webhook "v.example.com" does not support dry run`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			var called, dryRun atomic.Bool
			url, ca := newWebhookServer(t, func(req *admissionv1.AdmissionRequest) *admissionv1.AdmissionResponse {
				called.Store(true)
				dryRun.Store(req.DryRun != nil && *req.DryRun)
				return &admissionv1.AdmissionResponse{Allowed: true}
			})
			w := validatingHook("v.example.com", url, ca, func(h *admissionregistrationv1.ValidatingWebhook) {
				h.SideEffects = ptr.To(tt.sideEffects)
				h.FailurePolicy = ptr.To(admissionregistrationv1.Ignore) // a refusal is not a call failure
			})
			p := NewValidating(Config{Validating: validatingLister(t, validatingConfig("cfg", w))})
			r := podCreate(testPod("p"))
			r.DryRun = true
			err := p.Validate(context.Background(), r)
			if got := errText(t, err); got != tt.want {
				t.Errorf("Validate: got %q, want %q", got, tt.want)
			}
			if called.Load() != tt.wantCalled || (tt.wantCalled && !dryRun.Load()) {
				t.Errorf("called %v dryRun %v, want called %v with dryRun", called.Load(), dryRun.Load(), tt.wantCalled)
			}
		})
	}
}

func TestWarningsAndAuditAnnotations(t *testing.T) {
	t.Parallel()
	answer := func(name string) reviewFunc {
		return func(*admissionv1.AdmissionRequest) *admissionv1.AdmissionResponse {
			return &admissionv1.AdmissionResponse{Allowed: true, Warnings: []string{"from " + name},
				AuditAnnotations: map[string]string{"checked": "yes"}}
		}
	}
	url1, ca1 := newWebhookServer(t, answer("one"))
	url2, ca2 := newWebhookServer(t, answer("two"))
	p := NewValidating(Config{Validating: validatingLister(t, validatingConfig("cfg",
		validatingHook("one.example.com", url1, ca1), validatingHook("two.example.com", url2, ca2)))})
	r := podCreate(testPod("p"))
	if err := p.Validate(context.Background(), r); err != nil {
		t.Fatalf("Validate: %v", err)
	}
	if d := cmp.Diff([]string{"from one", "from two"}, r.Warnings); d != "" {
		t.Errorf("warnings (-want +got):\n%s", d)
	}
	want := map[string]string{"one.example.com/checked": "yes", "two.example.com/checked": "yes"}
	if d := cmp.Diff(want, r.AuditAnnotations); d != "" {
		t.Errorf("audit annotations (-want +got):\n%s", d)
	}
}

// TestNotCalled: requests a webhook must not see.
func TestNotCalled(t *testing.T) {
	t.Parallel()
	var calls atomic.Int32
	url, ca := newWebhookServer(t, func(*admissionv1.AdmissionRequest) *admissionv1.AdmissionResponse {
		calls.Add(1)
		return &admissionv1.AdmissionResponse{}
	})
	w := validatingHook("v.example.com", url, ca, func(h *admissionregistrationv1.ValidatingWebhook) { h.Rules = allRules() })
	p := NewValidating(Config{Validating: validatingLister(t, validatingConfig("cfg", w))})
	cfgReq := &admission.Request{Operation: admission.Create, Name: "x",
		Resource: schema.GroupVersionResource{Group: "admissionregistration.k8s.io", Version: "v1", Resource: "validatingwebhookconfigurations"},
		Object:   validatingConfig("x")}
	if err := p.Validate(context.Background(), cfgReq); err != nil {
		t.Errorf("a webhook configuration write: %v, want admitted without a call", err)
	}
	if calls.Load() != 0 {
		t.Errorf("the webhook was called %d times, want 0", calls.Load())
	}
	// Without configurations, nothing is called.
	empty := NewValidating(Config{Validating: validatingLister(t)})
	if err := empty.Validate(context.Background(), podCreate(testPod("p"))); err != nil {
		t.Errorf("no configurations: %v", err)
	}
	var none Config
	if err := NewMutating(none).Admit(context.Background(), podCreate(testPod("p"))); err != nil {
		t.Errorf("nil listers: %v", err)
	}
}

// TestFirstDenialInOrder: with several refusals, the verdict is the first
// webhook's.
func TestFirstDenialInOrder(t *testing.T) {
	t.Parallel()
	deny := func(msg string) reviewFunc {
		return func(*admissionv1.AdmissionRequest) *admissionv1.AdmissionResponse {
			return &admissionv1.AdmissionResponse{Result: &metav1.Status{Message: msg}}
		}
	}
	url1, ca1 := newWebhookServer(t, deny("first"))
	url2, ca2 := newWebhookServer(t, deny("second"))
	p := NewValidating(Config{Validating: validatingLister(t,
		validatingConfig("b", validatingHook("b.example.com", url2, ca2)),
		validatingConfig("a", validatingHook("a.example.com", url1, ca1)))})
	for range 5 {
		err := p.Validate(context.Background(), podCreate(testPod("p")))
		want := `400 admission webhook "a.example.com" denied the request: first`
		if got := errText(t, err); got != want {
			t.Fatalf("Validate: got %q, want %q", got, want)
		}
	}
}
