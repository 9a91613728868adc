package webhook

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"reflect"

	admissionv1 "k8s.io/api/admission/v1"
	admissionv1beta1 "k8s.io/api/admission/v1beta1"
	authenticationv1 "k8s.io/api/authentication/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/client-go/kubernetes/scheme"
	sigsjson "sigs.k8s.io/json"

	"github.com/skiff-dev/skiff/internal/admission"
)

// callError is a failed call to a webhook (upstream's ErrCallingWebhook):
// connection, TLS, timeout, a non-2xx answer or a malformed response. The
// webhook's failurePolicy decides whether it refuses the request.
type callError struct {
	webhook string
	reason  error
}

func (e *callError) Error() string {
	return fmt.Sprintf("failed calling webhook %q: %v", e.webhook, e.reason)
}

func (e *callError) Unwrap() error { return e.reason }

// denied is upstream's refusal by a webhook: its status with a code of at
// least 400 (400 when it sets none) and the message
// `admission webhook "<name>" denied the request: <message>`.
func denied(webhook string, result *metav1.Status) *apierrors.StatusError {
	var st metav1.Status
	if result != nil {
		st = *result.DeepCopy()
	}
	st.TypeMeta = metav1.TypeMeta{}
	if st.Code < http.StatusBadRequest {
		st.Code = http.StatusBadRequest
	}
	if st.Status == "" || st.Status == metav1.StatusSuccess {
		st.Status = metav1.StatusFailure
	}
	by := fmt.Sprintf("admission webhook %q denied the request", webhook)
	switch {
	case st.Message != "":
		st.Message = by + ": " + st.Message
	case st.Reason != "":
		st.Message = by + ": " + string(st.Reason)
	default:
		st.Message = by + " without explanation"
	}
	return &apierrors.StatusError{ErrStatus: st}
}

// dryRunUnsupported is upstream's refusal of a dry-run request by a
// webhook that may have side effects.
func dryRunUnsupported(webhook string) *apierrors.StatusError {
	return apierrors.NewBadRequest(fmt.Sprintf("admission webhook %q does not support dry run", webhook))
}

// attributes is one request's data as webhooks see it: the kind and the
// JSON of the object, the old object and the options, each encoded once
// (the object again after a patch). Not safe for concurrent use until
// prepare has run; after that, until the object changes, it is read-only.
type attributes struct {
	r    *admission.Request
	kind schema.GroupVersionKind

	obj, old, opts []byte // nil until encoded; "null" for no object
}

func newAttributes(r *admission.Request) *attributes {
	a := &attributes{r: r}
	switch {
	case r.Object != nil:
		a.kind = objectKind(r.Object, r.Kind)
	case r.OldObject != nil:
		a.kind = objectKind(r.OldObject, r.Kind)
	default:
		a.kind = r.Kind
	}
	return a
}

// prepare encodes whatever is not encoded yet.
func (a *attributes) prepare() error {
	var err error
	if a.obj == nil {
		if a.obj, err = encodeObject(a.r.Object, a.kind); err != nil {
			return fmt.Errorf("encoding the object: %w", err)
		}
	}
	if a.old == nil {
		if a.old, err = encodeObject(a.r.OldObject, a.kind); err != nil {
			return fmt.Errorf("encoding the old object: %w", err)
		}
	}
	if a.opts == nil {
		if a.opts, err = encodeOptions(a.r); err != nil {
			return fmt.Errorf("encoding the options: %w", err)
		}
	}
	return nil
}

// objectKind is the kind an object is sent as: its own when it carries
// one, else the request's kind when it names the object's Go type, else
// the kind client-go's scheme registers the type under, else the
// request's kind.
func objectKind(obj runtime.Object, reqKind schema.GroupVersionKind) schema.GroupVersionKind {
	if gvk := obj.GetObjectKind().GroupVersionKind(); !gvk.Empty() && gvk.Kind != "" {
		return gvk
	}
	t := reflect.TypeOf(obj)
	if t.Kind() == reflect.Pointer {
		t = t.Elem()
	}
	if t.Name() == reqKind.Kind {
		return reqKind
	}
	if kinds, _, err := scheme.Scheme.ObjectKinds(obj); err == nil && len(kinds) > 0 {
		return kinds[0]
	}
	return reqKind
}

// encodeObject is obj's JSON with apiVersion and kind (from kind when
// the object carries none); "null" for nil. The object is not changed.
func encodeObject(obj runtime.Object, kind schema.GroupVersionKind) ([]byte, error) {
	if obj == nil || (reflect.ValueOf(obj).Kind() == reflect.Pointer && reflect.ValueOf(obj).IsNil()) {
		return []byte("null"), nil
	}
	var b []byte
	var err error
	if u, ok := obj.(*unstructured.Unstructured); ok {
		b, err = json.Marshal(u.Object)
	} else {
		b, err = json.Marshal(obj)
	}
	if err != nil {
		return nil, err
	}
	if !obj.GetObjectKind().GroupVersionKind().Empty() {
		return b, nil
	}
	return withTypeMeta(b, kind), nil
}

// withTypeMeta prepends "kind" and "apiVersion" to a JSON object.
func withTypeMeta(b []byte, kind schema.GroupVersionKind) []byte {
	head := fmt.Sprintf(`{"kind":%q,"apiVersion":%q`, kind.Kind, kind.GroupVersion().String())
	rest := bytes.TrimSpace(b)
	if len(rest) < 2 || rest[0] != '{' {
		return b
	}
	out := make([]byte, 0, len(head)+len(rest)+1)
	out = append(out, head...)
	if inner := bytes.TrimSpace(rest[1:]); len(inner) > 0 && inner[0] != '}' {
		out = append(out, ',')
	}
	return append(out, rest[1:]...)
}

// encodeOptions is the write's options as meta.k8s.io/v1 JSON; when the
// caller did not give them, the zero CreateOptions or UpdateOptions with
// the request's dry run, as upstream always sends options.
func encodeOptions(r *admission.Request) ([]byte, error) {
	opts := admission.WriteOptions(r)
	if opts == nil {
		return []byte("null"), nil
	}
	t := reflect.TypeOf(opts)
	if t.Kind() == reflect.Pointer {
		t = t.Elem()
	}
	return encodeObject(opts, metav1.SchemeGroupVersion.WithKind(t.Name()))
}

// reviewVersion is the AdmissionReview version a webhook is sent: the
// first of its admissionReviewVersions that skiff speaks.
func reviewVersion(versions []string) (string, error) {
	for _, v := range versions {
		if v == "v1" || v == "v1beta1" {
			return v, nil
		}
	}
	return "", errors.New("webhook does not accept v1 or v1beta1 AdmissionReview")
}

// buildReview encodes the AdmissionReview (of version) for a.
func buildReview(version string, uid types.UID, a *attributes) ([]byte, error) {
	r := a.r
	dryRun := r.DryRun
	kind := metav1.GroupVersionKind{Group: a.kind.Group, Version: a.kind.Version, Kind: a.kind.Kind}
	res := metav1.GroupVersionResource{Group: r.Resource.Group, Version: r.Resource.Version, Resource: r.Resource.Resource}
	user := authenticationv1.UserInfo{Username: r.User.Name, UID: r.User.UID, Groups: r.User.Groups}
	if len(r.User.Extra) > 0 {
		user.Extra = make(map[string]authenticationv1.ExtraValue, len(r.User.Extra))
		for k, v := range r.User.Extra {
			user.Extra[k] = v
		}
	}
	switch version {
	case "v1":
		return json.Marshal(&admissionv1.AdmissionReview{
			TypeMeta: metav1.TypeMeta{APIVersion: admissionv1.SchemeGroupVersion.String(), Kind: "AdmissionReview"},
			Request: &admissionv1.AdmissionRequest{
				UID: uid, Kind: kind, Resource: res, SubResource: r.Subresource,
				RequestKind: &kind, RequestResource: &res, RequestSubResource: r.Subresource,
				Name: r.Name, Namespace: r.Namespace, Operation: admissionv1.Operation(r.Operation),
				UserInfo: user, DryRun: &dryRun,
				Object:    runtime.RawExtension{Raw: a.obj},
				OldObject: runtime.RawExtension{Raw: a.old},
				Options:   runtime.RawExtension{Raw: a.opts},
			},
		})
	case "v1beta1":
		return json.Marshal(&admissionv1beta1.AdmissionReview{
			TypeMeta: metav1.TypeMeta{APIVersion: admissionv1beta1.SchemeGroupVersion.String(), Kind: "AdmissionReview"},
			Request: &admissionv1beta1.AdmissionRequest{
				UID: uid, Kind: kind, Resource: res, SubResource: r.Subresource,
				RequestKind: &kind, RequestResource: &res, RequestSubResource: r.Subresource,
				Name: r.Name, Namespace: r.Namespace, Operation: admissionv1beta1.Operation(r.Operation),
				UserInfo: user, DryRun: &dryRun,
				Object:    runtime.RawExtension{Raw: a.obj},
				OldObject: runtime.RawExtension{Raw: a.old},
				Options:   runtime.RawExtension{Raw: a.opts},
			},
		})
	}
	return nil, fmt.Errorf("unsupported AdmissionReview version %q", version)
}

// response is a webhook's answer, whatever its version.
type response struct {
	Allowed          bool
	Result           *metav1.Status
	Patch            []byte
	PatchType        string
	AuditAnnotations map[string]string
	Warnings         []string
}

// parseResponse decodes and checks a webhook's AdmissionReview as
// upstream's VerifyAdmissionResponse: a v1 answer must be a v1
// AdmissionReview with the request's uid (v1beta1 was permissive); a
// mutating webhook sends patch and patchType together, a validating one
// neither.
func parseResponse(version string, uid types.UID, body []byte, mutating bool) (*response, error) {
	var out response
	switch version {
	case "v1":
		var rev admissionv1.AdmissionReview
		if err := sigsjson.UnmarshalCaseSensitivePreserveInts(body, &rev); err != nil {
			return nil, fmt.Errorf("decoding the AdmissionReview: %w", err)
		}
		if rev.Response == nil {
			return nil, errors.New("webhook response was absent")
		}
		if rev.Response.UID != uid {
			return nil, fmt.Errorf("expected response.uid=%q, got %q", uid, rev.Response.UID)
		}
		want := admissionv1.SchemeGroupVersion.WithKind("AdmissionReview")
		if got := rev.GroupVersionKind(); got != want {
			return nil, fmt.Errorf("expected webhook response of %v, got %v", want.String(), got.String())
		}
		resp := rev.Response
		out = response{Allowed: resp.Allowed, Result: resp.Result, Patch: resp.Patch,
			AuditAnnotations: resp.AuditAnnotations, Warnings: resp.Warnings}
		if resp.PatchType != nil {
			out.PatchType = string(*resp.PatchType)
		}
	case "v1beta1":
		var rev admissionv1beta1.AdmissionReview
		if err := sigsjson.UnmarshalCaseSensitivePreserveInts(body, &rev); err != nil {
			return nil, fmt.Errorf("decoding the AdmissionReview: %w", err)
		}
		if rev.Response == nil {
			return nil, errors.New("webhook response was absent")
		}
		resp := rev.Response
		out = response{Allowed: resp.Allowed, Result: resp.Result, Patch: resp.Patch,
			AuditAnnotations: resp.AuditAnnotations, Warnings: resp.Warnings}
		if resp.PatchType != nil {
			out.PatchType = string(*resp.PatchType)
		}
		// v1beta1 answers are not checked further.
		return &out, nil
	default:
		return nil, fmt.Errorf("unsupported AdmissionReview version %q", version)
	}
	switch {
	case mutating && len(out.Patch) > 0 && out.PatchType == "":
		return nil, errors.New("webhook returned response.patch but not response.patchType")
	case mutating && len(out.Patch) == 0 && out.PatchType != "":
		return nil, errors.New("webhook returned response.patchType but not response.patch")
	case !mutating && len(out.Patch) > 0:
		return nil, errors.New("validating webhook may not return response.patch")
	case !mutating && out.PatchType != "":
		return nil, errors.New("validating webhook may not return response.patchType")
	}
	return &out, nil
}
