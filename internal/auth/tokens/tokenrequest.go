package tokens

import (
	"context"
	"fmt"
	"time"

	authenticationv1 "k8s.io/api/authentication/v1"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/apimachinery/pkg/util/validation/field"
)

// TokenRequest limits, as upstream's validation.
const (
	DefaultTokenExpirationSeconds = 3600
	MinTokenExpirationSeconds     = 600
	maxTokenExpirationSeconds     = 1 << 32
)

var tokenRequestKind = schema.GroupKind{Group: authenticationv1.GroupName, Kind: "TokenRequest"}

// TokenRequest is the logic of POST
// /api/v1/namespaces/<ns>/serviceaccounts/<name>/token: sa is the service
// account the handler read (it exists), req the decoded body. It
// validates req (metadata name/namespace empty or sa's; expirationSeconds
// at least 600 and below 2^32, defaulting to 3600; boundObjectRef a v1
// Pod or Secret in sa's namespace, or a Node, that exists in the
// listers, with the UID given if any, a pod running as sa), caps the
// lifetime at the issuer's MaxExpiration (48h by default; spec.
// expirationSeconds in the answer is the lifetime granted), defaults
// audiences to the API audiences, and returns a copy of req with
// status.token and status.expirationTimestamp. Errors are API status
// errors (Invalid with field paths, BadRequest, NotFound, Conflict) to be
// written as they are. The listers may lag the store by a moment: a
// bound object created just before may not be found yet (NotFound; the
// client retries).
func (i *Issuer) TokenRequest(ctx context.Context, sa *corev1.ServiceAccount, req *authenticationv1.TokenRequest, lookups Lookups) (*authenticationv1.TokenRequest, error) {
	if sa == nil || req == nil {
		return nil, apierrors.NewBadRequest("a service account and a TokenRequest are required")
	}
	out := req.DeepCopy()
	var errs field.ErrorList
	if out.Name != "" && out.Name != sa.Name {
		errs = append(errs, field.Invalid(field.NewPath("metadata", "name"), out.Name, "must match the service account name if specified"))
	}
	if out.Namespace != "" && out.Namespace != sa.Namespace {
		errs = append(errs, field.Invalid(field.NewPath("metadata", "namespace"), out.Namespace, "must match the service account namespace if specified"))
	}
	specPath := field.NewPath("spec")
	if out.Spec.ExpirationSeconds == nil {
		v := int64(DefaultTokenExpirationSeconds)
		out.Spec.ExpirationSeconds = &v
	}
	switch secs := *out.Spec.ExpirationSeconds; {
	case secs < MinTokenExpirationSeconds:
		errs = append(errs, field.Invalid(specPath.Child("expirationSeconds"), secs, "may not specify a duration less than 10 minutes"))
	case secs > maxTokenExpirationSeconds:
		errs = append(errs, field.Invalid(specPath.Child("expirationSeconds"), secs, "may not specify a duration larger than 2^32 seconds"))
	}
	for n, a := range out.Spec.Audiences {
		if a == "" {
			errs = append(errs, field.Invalid(specPath.Child("audiences").Index(n), a, "must not be empty"))
		}
	}
	if r := out.Spec.BoundObjectRef; r != nil {
		p := specPath.Child("boundObjectRef")
		if r.Name == "" {
			errs = append(errs, field.Required(p.Child("name"), ""))
		}
		if r.Kind == "" {
			errs = append(errs, field.Required(p.Child("kind"), ""))
		}
	}
	if len(errs) > 0 {
		return nil, apierrors.NewInvalid(tokenRequestKind, sa.Name, errs)
	}
	if len(out.Spec.Audiences) == 0 {
		out.Spec.Audiences = i.APIAudiences()
	}

	var bound *BoundObject
	if r := out.Spec.BoundObjectRef; r != nil {
		var err error
		bound, err = resolveBound(sa, r, lookups)
		if err != nil {
			return nil, err
		}
	}

	secs := *out.Spec.ExpirationSeconds
	maxExp := i.MaxExpiration
	if maxExp == 0 {
		maxExp = DefaultMaxExpiration
	}
	if maxSecs := int64(maxExp / time.Second); maxExp > 0 && secs > maxSecs {
		secs = maxSecs
		out.Spec.ExpirationSeconds = &secs
	}
	token, exp, err := i.Issue(sa, out.Spec.Audiences, time.Duration(secs)*time.Second, bound)
	if err != nil {
		return nil, apierrors.NewInternalError(err)
	}
	out.Status = authenticationv1.TokenRequestStatus{Token: token, ExpirationTimestamp: metav1.NewTime(exp)}
	return out, nil
}

// resolveBound looks up the object a TokenRequest binds to and checks it.
func resolveBound(sa *corev1.ServiceAccount, r *authenticationv1.BoundObjectReference, l Lookups) (*BoundObject, error) {
	gv, err := schema.ParseGroupVersion(r.APIVersion)
	if err != nil || gv.Group != "" {
		return nil, apierrors.NewBadRequest(fmt.Sprintf("cannot bind token to object of type %s, %s", r.APIVersion, r.Kind))
	}
	var (
		b    = &BoundObject{Kind: r.Kind, Name: r.Name}
		meta metav1.Object
		gr   schema.GroupResource
	)
	unsupported := apierrors.NewBadRequest(fmt.Sprintf("cannot bind token to a %s: this server cannot look them up", r.Kind))
	switch r.Kind {
	case KindPod:
		gr = corev1.Resource("pods")
		if l.Pods == nil {
			return nil, unsupported
		}
		pod, err := l.Pods.Pods(sa.Namespace).Get(r.Name)
		if err != nil {
			return nil, lookupError(err, gr, r.Name)
		}
		if pod.Spec.ServiceAccountName != sa.Name {
			return nil, apierrors.NewBadRequest(fmt.Sprintf("cannot bind token for serviceaccount %q to pod running with different serviceaccount name.", sa.Name))
		}
		meta = pod
		if n := pod.Spec.NodeName; n != "" {
			b.NodeName = n
			if l.Nodes != nil {
				if node, err := l.Nodes.Get(n); err == nil {
					b.NodeUID = node.UID
				}
			}
		}
	case KindSecret:
		gr = corev1.Resource("secrets")
		if l.Secrets == nil {
			return nil, unsupported
		}
		secret, err := l.Secrets.Secrets(sa.Namespace).Get(r.Name)
		if err != nil {
			return nil, lookupError(err, gr, r.Name)
		}
		meta = secret
	case KindNode:
		gr = corev1.Resource("nodes")
		if l.Nodes == nil {
			return nil, unsupported
		}
		node, err := l.Nodes.Get(r.Name)
		if err != nil {
			return nil, lookupError(err, gr, r.Name)
		}
		meta = node
	default:
		return nil, apierrors.NewBadRequest(fmt.Sprintf("cannot bind token to object of type %s", schema.FromAPIVersionAndKind(r.APIVersion, r.Kind)))
	}
	b.UID = meta.GetUID()
	if r.UID != "" && r.UID != b.UID {
		return nil, apierrors.NewConflict(gr, r.Name, fmt.Errorf("the UID in the bound object reference (%s) does not match the UID in record. The object might have been deleted and then recreated", r.UID))
	}
	return b, nil
}

func lookupError(err error, gr schema.GroupResource, name string) error {
	if apierrors.IsNotFound(err) {
		return apierrors.NewNotFound(gr, name)
	}
	return apierrors.NewInternalError(fmt.Errorf("looking up %s %q: %w", gr, name, err))
}
