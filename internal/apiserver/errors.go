package apiserver

import (
	"context"
	"errors"
	"fmt"
	"net/http"

	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
)

// newStatus builds a Status error with an explicit code and reason.
func newStatus(code int32, reason metav1.StatusReason, msg string) *apierrors.StatusError {
	return &apierrors.StatusError{ErrStatus: metav1.Status{
		Status:  metav1.StatusFailure,
		Code:    code,
		Reason:  reason,
		Message: msg,
	}}
}

// toStatus turns any error into the Status the client sees. Errors that are
// not API errors become 500 InternalError, except deadline expiry (504).
func toStatus(err error) metav1.Status {
	var st metav1.Status
	var apiStatus apierrors.APIStatus
	var maxBytes *http.MaxBytesError
	switch {
	case errors.As(err, &apiStatus):
		st = apiStatus.Status()
	case errors.As(err, &maxBytes):
		st = apierrors.NewRequestEntityTooLargeError(fmt.Sprintf("limit is %d", maxBytes.Limit)).Status()
	case errors.Is(err, context.DeadlineExceeded):
		st = timeoutStatus()
	default:
		st = apierrors.NewInternalError(err).Status()
	}
	st.TypeMeta = metav1.TypeMeta{Kind: "Status", APIVersion: "v1"}
	if st.Status == "" {
		st.Status = metav1.StatusFailure
	}
	if st.Code == 0 {
		st.Code = http.StatusInternalServerError
	}
	return st
}

func timeoutStatus() metav1.Status {
	return metav1.Status{
		Status:  metav1.StatusFailure,
		Code:    http.StatusGatewayTimeout,
		Reason:  metav1.StatusReasonTimeout,
		Message: "Timeout: request did not complete within the allotted timeout",
		Details: &metav1.StatusDetails{RetryAfterSeconds: 1},
	}
}

// writeError writes err as a JSON Status. JSON is understood by every
// client regardless of what it asked for.
func (s *Server) writeError(w http.ResponseWriter, err error) {
	st := toStatus(err)
	if st.Code == http.StatusTooManyRequests || st.Code == http.StatusGatewayTimeout {
		if st.Details != nil && st.Details.RetryAfterSeconds > 0 {
			w.Header().Set("Retry-After", fmt.Sprint(st.Details.RetryAfterSeconds))
		}
	}
	s.writeRaw(w, int(st.Code), runtime.ContentTypeJSON, &st)
}

// writeRaw encodes obj as JSON with code. obj must carry its TypeMeta.
func (s *Server) writeRaw(w http.ResponseWriter, code int, contentType string, obj runtime.Object) {
	var info runtime.SerializerInfo
	for _, i := range s.codecs.SupportedMediaTypes() {
		if i.MediaType == contentType {
			info = i
		}
	}
	w.Header().Set("Content-Type", contentType)
	w.Header().Set("X-Content-Type-Options", "nosniff")
	w.WriteHeader(code)
	if info.Serializer != nil {
		if err := info.Serializer.Encode(obj, w); err != nil {
			s.log.Debug("encoding response failed", "err", err)
		}
	}
}
