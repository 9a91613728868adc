package apiserver

import (
	"context"
	"net/http"

	authenticationv1 "k8s.io/api/authentication/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	metavalidation "k8s.io/apimachinery/pkg/apis/meta/v1/validation"
	"k8s.io/apimachinery/pkg/runtime"

	"github.com/skiff-dev/skiff/internal/registry"
)

var tokenRequestGVK = authenticationv1.SchemeGroupVersion.WithKind("TokenRequest")

// TokenRequester issues service account tokens: the serviceaccounts/token
// subresource's logic (internal/auth/tokens). It validates the request and
// returns API errors naming the fields.
type TokenRequester func(ctx context.Context, namespace, name string, req *authenticationv1.TokenRequest) (*authenticationv1.TokenRequest, error)

// requestToken serves POST .../serviceaccounts/<name>/token.
func (s *Server) requestToken(w http.ResponseWriter, r *http.Request, ri *requestInfo, accounts *registry.Store) {
	if s.cfg.TokenRequest == nil {
		s.writeError(w, newStatus(http.StatusServiceUnavailable, metav1.StatusReasonServiceUnavailable, "service account tokens are not served by this server"))
		return
	}
	var opts metav1.CreateOptions
	if err := s.decodeQuery(r, &opts); err != nil {
		s.fail(w, r, err)
		return
	}
	if err := invalidOptions("CreateOptions", metavalidation.ValidateCreateOptions(&opts)); err != nil {
		s.fail(w, r, err)
		return
	}
	obj, warnings, err := s.decodeBody(r, tokenRequestGVK, &authenticationv1.TokenRequest{}, opts.FieldValidation)
	if err != nil {
		s.fail(w, r, err)
		return
	}
	req := obj.(*authenticationv1.TokenRequest)
	if req.Name != "" && req.Name != ri.name {
		s.fail(w, r, apierrors.NewBadRequest("name in URL does not match name in TokenRequest object"))
		return
	}
	if req.Namespace != "" && req.Namespace != ri.namespace {
		s.fail(w, r, apierrors.NewBadRequest("the namespace of the provided object does not match the namespace sent on the request"))
		return
	}
	// The account must exist (404 as for any missing object).
	if _, err := accounts.Get(r.Context(), ri.namespace, ri.name); err != nil {
		s.fail(w, r, err)
		return
	}
	out, err := s.cfg.TokenRequest(r.Context(), ri.namespace, ri.name, req)
	if err != nil {
		s.fail(w, r, err)
		return
	}
	out.SetGroupVersionKind(tokenRequestGVK)
	addWarnings(w, warnings)
	s.writeRaw(w, http.StatusCreated, runtime.ContentTypeJSON, out)
}
