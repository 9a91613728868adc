package tokens

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	authenticationv1 "k8s.io/api/authentication/v1"

	"github.com/skiff-dev/skiff/internal/auth"
)

// stubAuthenticator answers every token the same way.
type stubAuthenticator struct {
	user auth.User
	ok   bool
	err  error
}

func (s stubAuthenticator) AuthenticateToken(context.Context, string) (auth.User, bool, error) {
	return s.user, s.ok, s.err
}

func TestReview(t *testing.T) {
	t.Parallel()
	iss := newTestIssuer(t, "")
	sa := testSA("sa-uid")
	l := lookupsOf(t, sa, bootstrapSecret("abcdef", nil))
	boot := NewBootstrapAuthenticator(l.Secrets)
	boot.Clock = iss.Clock
	authn := Union(iss.Authenticator(l), boot)
	apiTok, _, err := iss.Issue(sa, nil, time.Hour, nil)
	if err != nil {
		t.Fatal(err)
	}
	vaultTok, _, err := iss.Issue(sa, []string{"vault"}, time.Hour, nil)
	if err != nil {
		t.Fatal(err)
	}
	saStatus := func(tok string, auds ...string) authenticationv1.TokenReviewStatus {
		return authenticationv1.TokenReviewStatus{
			Authenticated: true,
			Audiences:     auds,
			User: authenticationv1.UserInfo{
				Username: "system:serviceaccount:ns1:builder",
				UID:      "sa-uid",
				Groups:   []string{"system:serviceaccounts", "system:serviceaccounts:ns1", "system:authenticated"},
				Extra:    map[string]authenticationv1.ExtraValue{ExtraCredentialID: {"JTI=" + jti(t, tok)}},
			},
		}
	}
	bootStatus := authenticationv1.TokenReviewStatus{
		Authenticated: true,
		User: authenticationv1.UserInfo{
			Username: "system:bootstrap:abcdef",
			Groups:   []string{"system:bootstrappers", "system:bootstrappers:skiff:default-node-token", "system:authenticated"},
		},
	}
	tests := []struct {
		name  string
		authn TokenAuthenticator
		spec  authenticationv1.TokenReviewSpec
		want  authenticationv1.TokenReviewStatus
	}{
		{name: "service account token", authn: authn, spec: authenticationv1.TokenReviewSpec{Token: apiTok},
			want: saStatus(apiTok, "https://kubernetes.default.svc.cluster.local", "skiff")},
		{name: "service account token for a requested audience", authn: authn,
			spec: authenticationv1.TokenReviewSpec{Token: vaultTok, Audiences: []string{"vault", "other"}},
			want: saStatus(vaultTok, "vault")},
		{name: "service account token for another audience", authn: authn,
			spec: authenticationv1.TokenReviewSpec{Token: vaultTok}},
		{name: "bootstrap token", authn: authn, spec: authenticationv1.TokenReviewSpec{Token: "abcdef.0123456789abcdef"}, want: bootStatus},
		{name: "bootstrap token with requested audiences", authn: authn,
			spec: authenticationv1.TokenReviewSpec{Token: "abcdef.0123456789abcdef", Audiences: []string{"skiff"}}},
		{name: "bootstrap authenticator alone", authn: boot, spec: authenticationv1.TokenReviewSpec{Token: "abcdef.0123456789abcdef"}, want: bootStatus},
		{name: "garbage", authn: authn, spec: authenticationv1.TokenReviewSpec{Token: "garbage"}},
		{name: "empty token", authn: authn, want: authenticationv1.TokenReviewStatus{Error: "token is required for TokenReview"}},
		{name: "nil authenticator", spec: authenticationv1.TokenReviewSpec{Token: apiTok}},
		{name: "failing authenticator", authn: Union(stubAuthenticator{err: errors.New("cache down")}),
			spec: authenticationv1.TokenReviewSpec{Token: apiTok}, want: authenticationv1.TokenReviewStatus{Error: "cache down"}},
		{name: "failure then success", authn: Union(stubAuthenticator{err: errors.New("cache down")}, nil, authn),
			spec: authenticationv1.TokenReviewSpec{Token: apiTok}, want: saStatus(apiTok, "https://kubernetes.default.svc.cluster.local", "skiff")},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			in := &authenticationv1.TokenReview{Spec: tc.spec}
			got := Review(context.Background(), tc.authn, in)
			if diff := cmp.Diff(tc.want, got.Status); diff != "" {
				t.Errorf("status (-want +got):\n%s", diff)
			}
			if diff := cmp.Diff(tc.spec, got.Spec); diff != "" {
				t.Errorf("spec changed (-want +got):\n%s", diff)
			}
			if in.Status.Authenticated {
				t.Errorf("Review modified its input")
			}
		})
	}
}

func TestUnionFirstSuccessWins(t *testing.T) {
	t.Parallel()
	a := stubAuthenticator{user: auth.User{Name: "a"}, ok: true}
	b := stubAuthenticator{user: auth.User{Name: "b"}, ok: true}
	errA := errors.New("a failed")
	tests := []struct {
		name    string
		members []TokenAuthenticator
		want    auth.User
		wantOK  bool
		wantErr bool
	}{
		{name: "none"},
		{name: "first", members: []TokenAuthenticator{a, b}, want: auth.User{Name: "a"}, wantOK: true},
		{name: "skips refusals", members: []TokenAuthenticator{stubAuthenticator{}, b}, want: auth.User{Name: "b"}, wantOK: true},
		{name: "skips errors", members: []TokenAuthenticator{stubAuthenticator{err: errA}, b}, want: auth.User{Name: "b"}, wantOK: true},
		{name: "reports errors", members: []TokenAuthenticator{stubAuthenticator{err: errA}, stubAuthenticator{}}, wantErr: true},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			got, ok, err := Union(tc.members...).AuthenticateToken(context.Background(), "t")
			if (err != nil) != tc.wantErr || ok != tc.wantOK {
				t.Fatalf("Union = %v, %v, %v; want ok=%v err=%v", got, ok, err, tc.wantOK, tc.wantErr)
			}
			if tc.wantErr && !errors.Is(err, errA) {
				t.Errorf("error %v does not wrap %v", err, errA)
			}
			if diff := cmp.Diff(tc.want, got); diff != "" {
				t.Errorf("user (-want +got):\n%s", diff)
			}
		})
	}
}
