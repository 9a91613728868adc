package tokens

import (
	"context"
	"errors"

	authenticationv1 "k8s.io/api/authentication/v1"

	"github.com/skiff-dev/skiff/internal/auth"
)

// TokenAuthenticator authenticates a bearer token. (zero, false, nil)
// means the token is not valid (or not this authenticator's kind); an
// error means it could not be checked. Either way the request is not
// authenticated by it.
type TokenAuthenticator interface {
	AuthenticateToken(ctx context.Context, token string) (auth.User, bool, error)
}

// AudienceTokenAuthenticator is the optional ability of authenticators
// whose tokens carry audiences (service account tokens) to authenticate a
// token for explicitly requested audiences, as TokenReview's
// spec.audiences asks, and to say which of them the token is valid for.
// No audiences means the API audiences. Review and Union check for it at
// run time.
type AudienceTokenAuthenticator interface {
	TokenAuthenticator
	AuthenticateTokenFor(ctx context.Context, token string, audiences []string) (user auth.User, valid []string, ok bool, err error)
}

// Union returns an authenticator that asks each of a in order and
// succeeds with the first that authenticates the token. If none does, it
// returns the errors of those that failed (joined), or (zero, false, nil).
// Nil members are skipped.
func Union(a ...TokenAuthenticator) TokenAuthenticator {
	var u union
	for _, x := range a {
		if x != nil {
			u = append(u, x)
		}
	}
	return u
}

type union []TokenAuthenticator

var _ AudienceTokenAuthenticator = union(nil)

func (u union) AuthenticateToken(ctx context.Context, token string) (auth.User, bool, error) {
	usr, _, ok, err := u.AuthenticateTokenFor(ctx, token, nil)
	return usr, ok, err
}

// AuthenticateTokenFor asks the members for audiences. A member without
// audiences (bootstrap tokens) is only asked when no audiences are
// requested: its tokens are good for the API server alone.
func (u union) AuthenticateTokenFor(ctx context.Context, token string, audiences []string) (auth.User, []string, bool, error) {
	var errs []error
	for _, a := range u {
		var (
			usr   auth.User
			valid []string
			ok    bool
			err   error
		)
		if aa, isAud := a.(AudienceTokenAuthenticator); isAud {
			usr, valid, ok, err = aa.AuthenticateTokenFor(ctx, token, audiences)
		} else if len(audiences) == 0 {
			usr, ok, err = a.AuthenticateToken(ctx, token)
		}
		if ok {
			return usr, valid, true, nil
		}
		if err != nil {
			errs = append(errs, err)
		}
	}
	return auth.User{}, nil, false, errors.Join(errs...)
}

// Review answers a TokenReview with authn: it returns a copy of tr with
// status filled (authenticated, user, audiences, or error). Request
// audiences (spec.audiences) are honoured by authenticators that have
// them (AudienceTokenAuthenticator); the others authenticate only for
// requests without audiences. The caller (the API server's tokenreviews
// handler) should refuse an empty spec.token with 400 first, as upstream;
// Review reports it in status.error. Never panics on any input.
func Review(ctx context.Context, authn TokenAuthenticator, tr *authenticationv1.TokenReview) *authenticationv1.TokenReview {
	out := tr.DeepCopy()
	if out == nil {
		out = &authenticationv1.TokenReview{}
	}
	out.Status = authenticationv1.TokenReviewStatus{}
	if out.Spec.Token == "" {
		out.Status.Error = "token is required for TokenReview"
		return out
	}
	if authn == nil {
		return out
	}
	var (
		usr   auth.User
		valid []string
		ok    bool
		err   error
	)
	if aa, isAud := authn.(AudienceTokenAuthenticator); isAud {
		usr, valid, ok, err = aa.AuthenticateTokenFor(ctx, out.Spec.Token, out.Spec.Audiences)
	} else if len(out.Spec.Audiences) == 0 {
		usr, ok, err = authn.AuthenticateToken(ctx, out.Spec.Token)
	}
	if err != nil {
		out.Status.Error = err.Error()
	}
	if !ok {
		return out
	}
	out.Status.Authenticated = true
	out.Status.Audiences = valid
	out.Status.User = authenticationv1.UserInfo{
		Username: usr.Name,
		UID:      usr.UID,
		Groups:   append([]string(nil), usr.Groups...),
	}
	if len(usr.Extra) > 0 {
		out.Status.User.Extra = make(map[string]authenticationv1.ExtraValue, len(usr.Extra))
		for k, v := range usr.Extra {
			out.Status.User.Extra[k] = append(authenticationv1.ExtraValue(nil), v...)
		}
	}
	return out
}
