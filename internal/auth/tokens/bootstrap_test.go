package tokens

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/sha256"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/hex"
	"math/big"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"

	"github.com/skiff-dev/skiff/internal/auth"
)

func bootstrapSecret(id string, edit func(s *corev1.Secret)) *corev1.Secret {
	s := &corev1.Secret{
		ObjectMeta: metav1.ObjectMeta{Namespace: "kube-system", Name: "bootstrap-token-" + id},
		Type:       corev1.SecretTypeBootstrapToken,
		Data: map[string][]byte{
			"token-id":                       []byte(id),
			"token-secret":                   []byte("0123456789abcdef"),
			"expiration":                     []byte(t0.Add(time.Hour).Format(time.RFC3339)),
			"usage-bootstrap-authentication": []byte("true"),
			"auth-extra-groups":              []byte("system:bootstrappers:skiff:default-node-token"),
		},
	}
	if edit != nil {
		edit(s)
	}
	return s
}

func TestBootstrapAuthenticator(t *testing.T) {
	t.Parallel()
	wantUser := auth.User{
		Name:   "system:bootstrap:abcdef",
		Groups: []string{"system:bootstrappers", "system:bootstrappers:skiff:default-node-token", "system:authenticated"},
	}
	tests := []struct {
		name   string
		token  string
		secret *corev1.Secret
		now    time.Time
		want   auth.User
		wantOK bool
	}{
		{name: "valid", token: "abcdef.0123456789abcdef", secret: bootstrapSecret("abcdef", nil), want: wantUser, wantOK: true},
		{name: "no expiration", token: "abcdef.0123456789abcdef",
			secret: bootstrapSecret("abcdef", func(s *corev1.Secret) { delete(s.Data, "expiration") }),
			now:    t0.Add(1000 * time.Hour), want: wantUser, wantOK: true},
		{name: "no extra groups", token: "abcdef.0123456789abcdef",
			secret: bootstrapSecret("abcdef", func(s *corev1.Secret) { delete(s.Data, "auth-extra-groups") }),
			want:   auth.User{Name: "system:bootstrap:abcdef", Groups: []string{"system:bootstrappers", "system:authenticated"}}, wantOK: true},
		{name: "extra groups trimmed and deduplicated", token: "abcdef.0123456789abcdef",
			secret: bootstrapSecret("abcdef", func(s *corev1.Secret) {
				s.Data["auth-extra-groups"] = []byte(" system:bootstrappers:a , system:bootstrappers:a,system:bootstrappers:b-1")
			}),
			want: auth.User{Name: "system:bootstrap:abcdef",
				Groups: []string{"system:bootstrappers", "system:bootstrappers:a", "system:bootstrappers:b-1", "system:authenticated"}},
			wantOK: true},
		{name: "bare system:bootstrappers as extra group", token: "abcdef.0123456789abcdef",
			secret: bootstrapSecret("abcdef", func(s *corev1.Secret) { s.Data["auth-extra-groups"] = []byte("system:bootstrappers") })},
		{name: "extra group ending in a colon", token: "abcdef.0123456789abcdef",
			secret: bootstrapSecret("abcdef", func(s *corev1.Secret) { s.Data["auth-extra-groups"] = []byte("system:bootstrappers:a:") })},
		{name: "extra group outside system:bootstrappers", token: "abcdef.0123456789abcdef",
			secret: bootstrapSecret("abcdef", func(s *corev1.Secret) { s.Data["auth-extra-groups"] = []byte("system:masters") })},
		{name: "expired", token: "abcdef.0123456789abcdef", secret: bootstrapSecret("abcdef", nil), now: t0.Add(time.Hour)},
		{name: "unparseable expiration", token: "abcdef.0123456789abcdef",
			secret: bootstrapSecret("abcdef", func(s *corev1.Secret) { s.Data["expiration"] = []byte("tomorrow") })},
		{name: "usage flag missing", token: "abcdef.0123456789abcdef",
			secret: bootstrapSecret("abcdef", func(s *corev1.Secret) { delete(s.Data, "usage-bootstrap-authentication") })},
		{name: "usage flag false", token: "abcdef.0123456789abcdef",
			secret: bootstrapSecret("abcdef", func(s *corev1.Secret) { s.Data["usage-bootstrap-authentication"] = []byte("false") })},
		{name: "wrong secret", token: "abcdef.0123456789abcdee", secret: bootstrapSecret("abcdef", nil)},
		{name: "unknown id", token: "abcdeg.0123456789abcdef", secret: bootstrapSecret("abcdef", nil)},
		{name: "id in secret differs", token: "abcdef.0123456789abcdef",
			secret: bootstrapSecret("abcdef", func(s *corev1.Secret) { s.Data["token-id"] = []byte("zzzzzz") })},
		{name: "wrong type", token: "abcdef.0123456789abcdef",
			secret: bootstrapSecret("abcdef", func(s *corev1.Secret) { s.Type = corev1.SecretTypeOpaque })},
		{name: "wrong namespace", token: "abcdef.0123456789abcdef",
			secret: bootstrapSecret("abcdef", func(s *corev1.Secret) { s.Namespace = "default" })},
		{name: "being deleted", token: "abcdef.0123456789abcdef",
			secret: bootstrapSecret("abcdef", func(s *corev1.Secret) { deleting(s, t0.Add(time.Minute)) })},
		{name: "upper case", token: "ABCDEF.0123456789ABCDEF", secret: bootstrapSecret("abcdef", nil)},
		{name: "short secret", token: "abcdef.0123456789abcde", secret: bootstrapSecret("abcdef", nil)},
		{name: "trailing newline", token: "abcdef.0123456789abcdef\n", secret: bootstrapSecret("abcdef", nil)},
		{name: "empty", token: "", secret: bootstrapSecret("abcdef", nil)},
		{name: "a JWT", token: "eyJhbGciOiJFUzI1NiJ9.e30.AAAA", secret: bootstrapSecret("abcdef", nil)},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			now := tc.now
			if now.IsZero() {
				now = t0
			}
			b := NewBootstrapAuthenticator(lookupsOf(t, []runtime.Object{tc.secret}...).Secrets)
			b.Clock = func() time.Time { return now }
			b.Logger = testLogger(t)
			got, ok, err := b.AuthenticateToken(context.Background(), tc.token)
			if err != nil {
				t.Fatalf("AuthenticateToken error: %v", err)
			}
			if ok != tc.wantOK {
				t.Fatalf("authenticated = %v, want %v", ok, tc.wantOK)
			}
			if diff := cmp.Diff(tc.want, got); diff != "" {
				t.Errorf("user (-want +got):\n%s", diff)
			}
		})
	}
}

func TestCAHash(t *testing.T) {
	t.Parallel()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: "skiff-ca"},
		NotBefore: t0, NotAfter: t0.Add(time.Hour), IsCA: true, BasicConstraintsValid: true}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		t.Fatal(err)
	}
	ca, err := x509.ParseCertificate(der)
	if err != nil {
		t.Fatal(err)
	}
	spki, err := x509.MarshalPKIXPublicKey(&key.PublicKey)
	if err != nil {
		t.Fatal(err)
	}
	sum := sha256.Sum256(spki)
	if got, want := CAHash(ca), "sha256:"+hex.EncodeToString(sum[:]); got != want {
		t.Errorf("CAHash = %q, want %q", got, want)
	}
}
