package auth

import "context"

// Well-known users and groups, as upstream names them.
const (
	Anonymous            = "system:anonymous"
	AllUnauthenticated   = "system:unauthenticated"
	AllAuthenticated     = "system:authenticated"
	SystemMasters        = "system:masters"
	NodesGroup           = "system:nodes"
	NodeUserPrefix       = "system:node:"
	ServiceAccountsAll   = "system:serviceaccounts"
	ServiceAccountPrefix = "system:serviceaccount:"
	BootstrappersGroup   = "system:bootstrappers"
)

// User is an authenticated (or anonymous) requester.
type User struct {
	Name   string
	UID    string
	Groups []string
	Extra  map[string][]string
}

// InGroup reports whether u is in group g.
func (u User) InGroup(g string) bool {
	for _, x := range u.Groups {
		if x == g {
			return true
		}
	}
	return false
}

// Attributes describe one request for authorization and admission.
type Attributes struct {
	User User
	// Verb is the Kubernetes verb for resource requests (get, list, watch,
	// create, update, patch, delete, deletecollection, and impersonate,
	// bind, escalate, approve, sign… for special checks) and the
	// lower-case HTTP method otherwise.
	Verb string
	// ResourceRequest is true for /api and /apis resource paths; then
	// the fields below Path describe it, otherwise Path does.
	ResourceRequest bool
	Path            string
	Namespace       string
	APIGroup        string
	APIVersion      string
	Resource        string
	Subresource     string
	Name            string
}

// Decision is an authorizer's answer.
type Decision int

// Decisions: NoOpinion lets the next authorizer decide; Deny stops.
const (
	NoOpinion Decision = iota
	Allow
	Deny
)

type userKey struct{}

// WithUser returns ctx carrying u, the requester the API server
// authenticated. Registry strategies read it (for example to record the
// requester of a CertificateSigningRequest).
func WithUser(ctx context.Context, u User) context.Context {
	return context.WithValue(ctx, userKey{}, u)
}

// UserFrom returns the user ctx carries; ok is false for contexts that did
// not pass through the API server's authentication.
func UserFrom(ctx context.Context) (u User, ok bool) {
	u, ok = ctx.Value(userKey{}).(User)
	return u, ok
}
