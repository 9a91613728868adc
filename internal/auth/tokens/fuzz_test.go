package tokens

import (
	"context"
	"strings"
	"testing"
	"time"

	authenticationv1 "k8s.io/api/authentication/v1"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
)

// FuzzAuthenticateToken feeds arbitrary bearer tokens to the service
// account and bootstrap authenticators (everything they could refer to
// exists) and checks that nothing panics and that only a token whose
// signed part we issued, or the one bootstrap token, authenticates.
//
//	go test -run '^$' -fuzz FuzzAuthenticateToken -fuzztime 20s ./internal/auth/tokens/
func FuzzAuthenticateToken(f *testing.F) {
	iss, err := NewIssuer(f.TempDir(), "", nil)
	if err != nil {
		f.Fatal(err)
	}
	iss.Clock = func() time.Time { return t0 }
	sa := testSA("sa-uid")
	legacySecret := &corev1.Secret{
		ObjectMeta: metav1.ObjectMeta{Namespace: "ns1", Name: "builder-token-x", UID: "legacy-uid",
			Annotations: map[string]string{corev1.ServiceAccountNameKey: "builder"}},
		Type: corev1.SecretTypeServiceAccountToken,
	}
	legacy, err := iss.LegacyToken(sa, legacySecret)
	if err != nil {
		f.Fatal(err)
	}
	legacySecret.Data = map[string][]byte{"token": []byte(legacy)}
	l := lookupsOf(f, sa, testPod("pod-uid"), testSecret("bound", "secret-uid"), testNode("node-uid"),
		legacySecret, bootstrapSecret("abcdef", nil))
	boot := NewBootstrapAuthenticator(l.Secrets)
	boot.Clock = iss.Clock
	authn := Union(iss.Authenticator(l), boot)

	const bootstrapToken = "abcdef.0123456789abcdef"
	valid := []string{legacy}
	for _, b := range []*BoundObject{nil,
		{Kind: KindPod, Name: "web", UID: "pod-uid", NodeName: "node-a", NodeUID: "node-uid"},
		{Kind: KindSecret, Name: "bound", UID: "secret-uid"},
		{Kind: KindNode, Name: "node-a", UID: "node-uid"}} {
		tok, _, err := iss.Issue(sa, nil, time.Hour, b)
		if err != nil {
			f.Fatal(err)
		}
		valid = append(valid, tok)
	}
	var signed []string // header.payload of every token we issued
	for _, tok := range valid {
		signed = append(signed, tok[:strings.LastIndex(tok, ".")])
		f.Add(tok)
		f.Add(tok + "=")
		f.Add(tok[:len(tok)-1])
		f.Add(strings.Replace(tok, ".", "..", 1))
	}
	for _, s := range []string{"", ".", "..", "a.b.c", bootstrapToken, "abcdef.0123456789abcdeg",
		"eyJhbGciOiJub25lIn0.eyJpc3MiOiJrdWJlcm5ldGVzL3NlcnZpY2VhY2NvdW50In0.",
		"eyJhbGciOiJFUzI1NiJ9.eyJleHAiOjFlMzA4fQ.AAAA",
		"eyJhbGciOiJFUzI1NiJ9.eyJhdWQiOnt9fQ.AAAA", "\x00\xff.\x00.\x00"} {
		f.Add(s)
	}

	f.Fuzz(func(t *testing.T, token string) {
		u, ok, err := authn.AuthenticateToken(context.Background(), token)
		if ok {
			known := token == bootstrapToken
			for _, s := range signed {
				known = known || strings.HasPrefix(token, s+".")
			}
			if !known {
				t.Fatalf("authenticated %q as %v", token, u)
			}
		}
		if err != nil {
			t.Fatalf("error for %q: %v (all lookups are in memory)", token, err)
		}
		r := Review(context.Background(), authn, &authenticationv1.TokenReview{Spec: authenticationv1.TokenReviewSpec{Token: token}})
		if r.Status.Authenticated != ok {
			t.Fatalf("Review says authenticated=%v, AuthenticateToken %v", r.Status.Authenticated, ok)
		}
	})
}
