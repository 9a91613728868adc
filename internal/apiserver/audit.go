package apiserver

import (
	"net/http"

	"github.com/skiff-dev/skiff/internal/auth"
)

// auditBegin starts the audit record of one request. It returns the
// writer and request the rest of the chain uses and a function the chain
// calls once with the final status code.
func (s *Server) auditBegin(w http.ResponseWriter, r *http.Request, _ *requestInfo, _ auth.User) (http.ResponseWriter, *http.Request, func(code int)) {
	return w, r, func(int) {}
}
