package apiserver

import (
	"context"
	"net/http"
	"net/url"
	"slices"
	"strings"

	apierrors "k8s.io/apimachinery/pkg/api/errors"

	"github.com/skiff-dev/skiff/internal/auth"
)

// Impersonation headers, as upstream (kubectl --as, --as-group, --as-uid).
const (
	headerImpersonateUser  = "Impersonate-User"
	headerImpersonateGroup = "Impersonate-Group"
	headerImpersonateUID   = "Impersonate-Uid"
	headerImpersonateExtra = "Impersonate-Extra-"
)

// impersonate returns the user r acts as: u itself without impersonation
// headers, else the requested user once u is allowed the "impersonate"
// verb on each part of it (users or serviceaccounts, groups, uids and
// userextras), as upstream checks. The impersonation headers are removed
// from r. A request naming groups, a uid or extras without a user is 400.
func (s *Server) impersonate(ctx context.Context, r *http.Request, u auth.User) (auth.User, error) {
	name := r.Header.Get(headerImpersonateUser)
	groups := r.Header.Values(headerImpersonateGroup)
	uid := r.Header.Get(headerImpersonateUID)
	extra := map[string][]string{}
	for k, vs := range r.Header {
		if lk := strings.ToLower(k); strings.HasPrefix(lk, strings.ToLower(headerImpersonateExtra)) {
			key, err := url.PathUnescape(lk[len(headerImpersonateExtra):])
			if err != nil {
				return auth.User{}, apierrors.NewBadRequest("invalid impersonation extra key " + k)
			}
			extra[key] = append(extra[key], vs...)
		}
	}
	if name == "" {
		if len(groups) > 0 || uid != "" || len(extra) > 0 {
			return auth.User{}, apierrors.NewBadRequest("requested impersonation of groups, uid or extra without impersonating a user")
		}
		return u, nil
	}
	check := func(a auth.Attributes) error {
		a.User, a.Verb, a.ResourceRequest = u, "impersonate", true
		if slices.Contains(u.Groups, auth.SystemMasters) || s.cfg.Authorizer == nil {
			return nil
		}
		return s.decide(ctx, a)
	}
	target := auth.User{Name: name, UID: uid}
	ns, sa, isSA := serviceAccountUser(name)
	if isSA {
		if err := check(auth.Attributes{Resource: "serviceaccounts", Namespace: ns, Name: sa}); err != nil {
			return auth.User{}, err
		}
	} else if err := check(auth.Attributes{Resource: "users", Name: name}); err != nil {
		return auth.User{}, err
	}
	for _, g := range groups {
		if err := check(auth.Attributes{Resource: "groups", Name: g}); err != nil {
			return auth.User{}, err
		}
	}
	if isSA && len(groups) == 0 {
		// Upstream gives an impersonated account its own groups unasked.
		groups = []string{auth.ServiceAccountsAll, auth.ServiceAccountsAll + ":" + ns}
	}
	if uid != "" {
		if err := check(auth.Attributes{APIGroup: "authentication.k8s.io", Resource: "uids", Name: uid}); err != nil {
			return auth.User{}, err
		}
	}
	for k, vs := range extra {
		for _, v := range vs {
			if err := check(auth.Attributes{APIGroup: "authentication.k8s.io", Resource: "userextras", Subresource: k, Name: v}); err != nil {
				return auth.User{}, err
			}
		}
	}
	target.Groups = slices.Clone(groups)
	if len(extra) > 0 {
		target.Extra = extra
	}
	switch {
	case name == auth.Anonymous:
		if !slices.Contains(target.Groups, auth.AllUnauthenticated) {
			target.Groups = append(target.Groups, auth.AllUnauthenticated)
		}
	case !slices.Contains(target.Groups, auth.AllAuthenticated):
		target.Groups = append(target.Groups, auth.AllAuthenticated)
	}
	for k := range r.Header {
		if strings.HasPrefix(strings.ToLower(k), "impersonate-") {
			r.Header.Del(k)
		}
	}
	return target, nil
}

// serviceAccountUser splits "system:serviceaccount:<ns>:<name>".
func serviceAccountUser(name string) (namespace, sa string, ok bool) {
	rest, found := strings.CutPrefix(name, auth.ServiceAccountPrefix)
	if !found {
		return "", "", false
	}
	namespace, sa, ok = strings.Cut(rest, ":")
	return namespace, sa, ok && namespace != "" && sa != ""
}
