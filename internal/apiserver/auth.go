package apiserver

import (
	"context"
	"net/http"
	"slices"
)

// User is the authenticated identity of a request.
type User struct {
	// Name is the user name: a client certificate's CommonName, or
	// "system:anonymous".
	Name string
	// Groups holds the certificate's Organizations plus
	// "system:authenticated" (or "system:unauthenticated" for anonymous).
	Groups []string
}

// Anonymous reports whether u is the unauthenticated user.
func (u User) Anonymous() bool { return u.Name == anonymousUser }

const (
	anonymousUser        = "system:anonymous"
	groupAuthenticated   = "system:authenticated"
	groupUnauthenticated = "system:unauthenticated"
	groupMasters         = "system:masters"
)

type userKey struct{}

// WithUser returns ctx carrying u.
func WithUser(ctx context.Context, u User) context.Context {
	return context.WithValue(ctx, userKey{}, u)
}

// UserFrom returns the user a request was authenticated as. ok is false
// for contexts that did not pass through the server's handler.
func UserFrom(ctx context.Context) (u User, ok bool) {
	u, ok = ctx.Value(userKey{}).(User)
	return u, ok
}

// authenticate derives the user from a verified TLS client certificate.
// Only chains verified against ClientCAs count; a certificate the TLS
// layer did not verify is treated as no certificate.
func authenticate(r *http.Request) User {
	if r.TLS != nil && len(r.TLS.VerifiedChains) > 0 && len(r.TLS.VerifiedChains[0]) > 0 {
		cert := r.TLS.VerifiedChains[0][0]
		groups := slices.Clone(cert.Subject.Organization)
		groups = append(groups, groupAuthenticated)
		return User{Name: cert.Subject.CommonName, Groups: groups}
	}
	return User{Name: anonymousUser, Groups: []string{groupUnauthenticated}}
}

// anonymousAllowed lists the paths an unauthenticated client may reach.
func anonymousAllowed(path string) bool {
	for _, p := range []string{"/healthz", "/livez", "/readyz", "/version"} {
		if path == p || path == p+"/" || (p != "/version" && len(path) > len(p) && path[:len(p)+1] == p+"/") {
			return true
		}
	}
	return false
}
