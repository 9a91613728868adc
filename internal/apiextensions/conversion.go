package apiextensions

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"maps"
	"net/http"
	"time"

	admissionregistrationv1 "k8s.io/api/admissionregistration/v1"
	apiextensionsv1 "k8s.io/apiextensions-apiserver/pkg/apis/apiextensions/v1"
	apivalidation "k8s.io/apimachinery/pkg/api/validation"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	metav1validation "k8s.io/apimachinery/pkg/apis/meta/v1/validation"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/apimachinery/pkg/util/uuid"
	"k8s.io/apimachinery/pkg/util/validation/field"
)

// converter converts custom resources between the versions of their CRD.
// It is called by versioned on every path between a served version and
// the stored one; implementations are safe for concurrent use.
type converter interface {
	// convert returns objs in apiVersion, in their order. Objects already
	// in apiVersion are returned as they are; the others are new objects:
	// objs (often shared with the watch cache) are never modified. On
	// error no object is returned.
	convert(ctx context.Context, objs []*unstructured.Unstructured, apiVersion string) ([]*unstructured.Unstructured, error)
}

var (
	_ converter = noneConverter{}
	_ converter = (*webhookConverter)(nil)
	_ converter = unavailableConverter{}
)

// poster calls a webhook (webhook.Caller).
type poster interface {
	Post(ctx context.Context, cc *admissionregistrationv1.WebhookClientConfig, body []byte) ([]byte, error)
}

// conversionWebhookTimeout bounds one call of a conversion webhook, as
// upstream.
const conversionWebhookTimeout = 30 * time.Second

// converterFor chooses crd's converter from spec.conversion: None (also
// when unset) changes only apiVersion; Webhook calls the CRD's webhook
// through p. Without p (nil), a Webhook CRD's objects cannot be
// converted between different versions: those conversions fail.
func converterFor(crd *apiextensionsv1.CustomResourceDefinition, p poster) converter {
	c := crd.Spec.Conversion
	if c == nil || c.Strategy != apiextensionsv1.WebhookConverter {
		return noneConverter{}
	}
	if c.Webhook == nil || c.Webhook.ClientConfig == nil {
		return unavailableConverter{reason: "the CRD has no webhook client config"}
	}
	if p == nil {
		return unavailableConverter{reason: "conversion webhooks are not enabled in this API server"}
	}
	version := ""
	for _, v := range c.Webhook.ConversionReviewVersions {
		if v == "v1" || v == "v1beta1" {
			version = v
			break
		}
	}
	return &webhookConverter{
		poster:        p,
		clientConfig:  clientConfigFor(c.Webhook.ClientConfig),
		reviewVersion: version,
		timeout:       conversionWebhookTimeout,
		newUID:        uuid.NewUUID,
	}
}

// clientConfigFor maps a CRD's webhook client config to admission's (the
// same fields). A caBundle of only whitespace is none, as upstream.
func clientConfigFor(cc *apiextensionsv1.WebhookClientConfig) admissionregistrationv1.WebhookClientConfig {
	out := admissionregistrationv1.WebhookClientConfig{URL: cc.URL, CABundle: cc.CABundle}
	if len(bytes.TrimSpace(out.CABundle)) == 0 {
		out.CABundle = nil
	}
	if s := cc.Service; s != nil {
		out.Service = &admissionregistrationv1.ServiceReference{Namespace: s.Namespace, Name: s.Name, Path: s.Path, Port: s.Port}
	}
	return out
}

// noneConverter is conversion None: only apiVersion changes.
type noneConverter struct{}

func (noneConverter) convert(_ context.Context, objs []*unstructured.Unstructured, apiVersion string) ([]*unstructured.Unstructured, error) {
	out := make([]*unstructured.Unstructured, len(objs))
	for i, o := range objs {
		out[i] = asUnstructured(o, apiVersion)
	}
	return out, nil
}

// asUnstructured returns u with apiVersion set to apiVersion, copying its
// top level when it has to change.
func asUnstructured(u *unstructured.Unstructured, apiVersion string) *unstructured.Unstructured {
	if u.GetAPIVersion() == apiVersion {
		return u
	}
	c := &unstructured.Unstructured{Object: maps.Clone(u.Object)}
	c.SetAPIVersion(apiVersion)
	return c
}

// unavailableConverter is a Webhook CRD's converter when its webhook
// cannot be called: conversion between different versions fails.
type unavailableConverter struct{ reason string }

func (c unavailableConverter) convert(_ context.Context, objs []*unstructured.Unstructured, apiVersion string) ([]*unstructured.Unstructured, error) {
	for _, o := range objs {
		if o.GetAPIVersion() != apiVersion && !isEmptyObject(o) {
			return nil, newConversionError(fmt.Errorf("conversion webhook for %v failed: %s", o.GroupVersionKind(), c.reason))
		}
	}
	return noneConverter{}.convert(context.Background(), objs, apiVersion)
}

// webhookConverter calls a CRD's conversion webhook with a
// ConversionReview of the objects not yet in the desired version, one
// call per batch, and checks the answer as upstream does.
type webhookConverter struct {
	poster       poster
	clientConfig admissionregistrationv1.WebhookClientConfig
	// reviewVersion is the ConversionReview version sent ("v1" or
	// "v1beta1"); "" when the CRD names none skiff speaks.
	reviewVersion string
	timeout       time.Duration
	newUID        func() types.UID
}

// conversionError is a failed conversion: the client sees its message as
// a 500 Status (reason Unknown), as upstream's API server reports errors
// that are not Statuses.
type conversionError struct{ err error }

func newConversionError(err error) error { return &conversionError{err: err} }

func (e *conversionError) Error() string { return e.err.Error() }
func (e *conversionError) Unwrap() error { return e.err }

// Status makes conversionError an apierrors.APIStatus.
func (e *conversionError) Status() metav1.Status {
	return metav1.Status{
		TypeMeta: metav1.TypeMeta{Kind: "Status", APIVersion: "v1"},
		Status:   metav1.StatusFailure,
		Code:     http.StatusInternalServerError,
		Reason:   metav1.StatusReasonUnknown,
		Message:  e.err.Error(),
	}
}

// isEmptyObject reports whether u has nothing but apiVersion and kind
// (upstream converts those without calling the webhook).
func isEmptyObject(u *unstructured.Unstructured) bool {
	if len(u.Object) != 2 {
		return false
	}
	_, k := u.Object["kind"]
	_, v := u.Object["apiVersion"]
	return k && v
}

func (c *webhookConverter) convert(ctx context.Context, objs []*unstructured.Unstructured, apiVersion string) ([]*unstructured.Unstructured, error) {
	out := make([]*unstructured.Unstructured, len(objs))
	var send []int // indices of objs sent to the webhook
	for i, o := range objs {
		switch {
		case o.GetAPIVersion() == apiVersion:
			out[i] = o
		case isEmptyObject(o):
			out[i] = asUnstructured(o, apiVersion)
		default:
			send = append(send, i)
		}
	}
	if len(send) == 0 {
		return out, nil
	}
	gvk := objs[send[0]].GroupVersionKind()
	fail := func(format string, args ...any) error {
		return newConversionError(fmt.Errorf("conversion webhook for %v "+format, append([]any{gvk}, args...)...))
	}
	if c.reviewVersion == "" {
		return nil, fail("failed: %w", errors.New("no supported conversion review versions"))
	}
	uid := c.newUID()
	review := apiextensionsv1.ConversionReview{
		TypeMeta: metav1.TypeMeta{APIVersion: apiextensionsv1.GroupName + "/" + c.reviewVersion, Kind: "ConversionReview"},
		Request:  &apiextensionsv1.ConversionRequest{UID: uid, DesiredAPIVersion: apiVersion, Objects: make([]runtime.RawExtension, len(send))},
	}
	for j, i := range send {
		raw, err := objs[i].MarshalJSON()
		if err != nil {
			return nil, fail("failed: encoding object %d: %w", j, err)
		}
		review.Request.Objects[j].Raw = raw
	}
	body, err := json.Marshal(&review)
	if err != nil {
		return nil, fail("failed: %w", err)
	}
	cctx, cancel := context.WithTimeout(ctx, c.timeout)
	defer cancel()
	data, err := c.poster.Post(cctx, &c.clientConfig, body)
	if err != nil {
		return nil, fail("failed: %w", err)
	}
	converted, err := c.parseResponse(uid, data)
	if err != nil {
		return nil, fail("failed: %w", err)
	}
	if len(converted) != len(send) {
		return nil, fail("returned %d objects, expected %d", len(converted), len(send))
	}
	single := len(objs) == 1
	for j, i := range send {
		obj, err := convertedObject(objs[i], converted[j], apiVersion)
		if err != nil {
			if single {
				return nil, fail("returned invalid object: %w", err)
			}
			return nil, fail("returned invalid converted object at index %d: %w", j, err)
		}
		out[i] = obj
	}
	return out, nil
}

// parseResponse checks a ConversionReview answer as upstream: a v1 one
// must be a v1 ConversionReview whose uid is the request's (v1beta1 was
// never checked for either); the result must be Success.
func (c *webhookConverter) parseResponse(uid types.UID, data []byte) ([]runtime.RawExtension, error) {
	var review apiextensionsv1.ConversionReview
	if err := json.Unmarshal(data, &review); err != nil {
		return nil, fmt.Errorf("decoding the response: %w", err)
	}
	if c.reviewVersion == "v1" {
		want := apiextensionsv1.SchemeGroupVersion.WithKind("ConversionReview")
		if got := review.GroupVersionKind(); got != want {
			return nil, fmt.Errorf("expected webhook response of %v, got %v", want, got)
		}
	}
	r := review.Response
	if r == nil {
		return nil, errors.New("no response provided")
	}
	if c.reviewVersion == "v1" && r.UID != uid {
		return nil, fmt.Errorf("expected response.uid=%q, got %q", uid, r.UID)
	}
	if r.Result.Status != metav1.StatusSuccess {
		if r.Result.Message != "" {
			return nil, errors.New(r.Result.Message)
		}
		return nil, fmt.Errorf("response.result.status was '%s', not 'Success'", r.Result.Status)
	}
	return r.ConvertedObjects, nil
}

// convertedObject checks the webhook's conversion of original: it must be
// an object of apiVersion and of original's kind, name, namespace and
// uid. Its metadata is original's but for labels and annotations, which
// the webhook may change (they are validated).
func convertedObject(original *unstructured.Unstructured, raw runtime.RawExtension, apiVersion string) (*unstructured.Unstructured, error) {
	converted := &unstructured.Unstructured{}
	if err := converted.UnmarshalJSON(raw.Raw); err != nil {
		return nil, err
	}
	if got := converted.GetAPIVersion(); got != apiVersion {
		return nil, fmt.Errorf("invalid groupVersion (expected %v, received %v)", apiVersion, got)
	}
	if want, got := original.GetKind(), converted.GetKind(); want != got {
		return nil, fmt.Errorf("invalid kind (expected %v, received %v)", want, got)
	}
	if want, got := original.GetName(), converted.GetName(); want != got {
		return nil, fmt.Errorf("must have the same name: %v != %v", want, got)
	}
	if want, got := original.GetNamespace(), converted.GetNamespace(); want != got {
		return nil, fmt.Errorf("must have the same namespace: %v != %v", want, got)
	}
	if want, got := original.GetUID(), converted.GetUID(); want != got {
		return nil, fmt.Errorf("must have the same UID: %v != %v", want, got)
	}
	if err := restoreMetadata(original, converted); err != nil {
		return nil, fmt.Errorf("invalid metadata: %w", err)
	}
	return converted, nil
}

// restoreMetadata sets converted's metadata to a deep copy of original's,
// keeping the labels and annotations converted has (validated when they
// changed).
func restoreMetadata(original, converted *unstructured.Unstructured) error {
	answered, ok := converted.Object["metadata"].(map[string]any)
	if !ok {
		if converted.Object["metadata"] == nil {
			return errors.New("missing metadata in converted object")
		}
		return fmt.Errorf("invalid metadata of type %T in converted object", converted.Object["metadata"])
	}
	meta := map[string]any{}
	if m, ok := original.Object["metadata"].(map[string]any); ok {
		meta = runtime.DeepCopyJSONValue(m).(map[string]any)
	}
	for _, fld := range []string{"labels", "annotations"} {
		v, found := answered[fld]
		if !found || v == nil {
			delete(meta, fld)
			continue
		}
		answer, ok := v.(map[string]any)
		if !ok {
			return fmt.Errorf("invalid metadata.%s of type %T in converted object", fld, v)
		}
		previous, _ := meta[fld].(map[string]any)
		changed := len(previous) != len(answer)
		strs := make(map[string]string, len(answer))
		for k, v := range answer {
			s, ok := v.(string)
			if !ok {
				return fmt.Errorf("metadata.%s[%s] must be a string, but is %T in converted object", fld, k, v)
			}
			if p, ok := previous[k].(string); !ok || p != s {
				changed = true
			}
			strs[k] = s
		}
		if changed {
			var errs field.ErrorList
			if fld == "labels" {
				errs = metav1validation.ValidateLabels(strs, field.NewPath("metadata", "labels"))
			} else {
				errs = apivalidation.ValidateAnnotations(strs, field.NewPath("metadata", "annotations"))
			}
			if len(errs) > 0 {
				return errs.ToAggregate()
			}
		}
		meta[fld] = answer
	}
	converted.Object["metadata"] = meta
	return nil
}
