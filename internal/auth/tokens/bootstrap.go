package tokens

import (
	"context"
	"crypto/rand"
	"crypto/sha256"
	"crypto/subtle"
	"crypto/x509"
	"encoding/hex"
	"fmt"
	"log/slog"
	"math/big"
	"regexp"
	"strings"
	"time"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes"
	corelisters "k8s.io/client-go/listers/core/v1"

	"github.com/skiff-dev/skiff/internal/auth"
)

// Bootstrap token secrets, as upstream (k8s.io/cluster-bootstrap).
const (
	BootstrapTokenNamespace    = metav1.NamespaceSystem
	BootstrapTokenSecretPrefix = "bootstrap-token-"
	BootstrapUserPrefix        = "system:bootstrap:"

	BootstrapTokenIDKey          = "token-id"
	BootstrapTokenSecretKey      = "token-secret"
	BootstrapTokenExpirationKey  = "expiration"
	BootstrapTokenDescriptionKey = "description"
	BootstrapTokenExtraGroupsKey = "auth-extra-groups"
	BootstrapTokenUsageAuthKey   = "usage-bootstrap-authentication"
	BootstrapTokenUsageSignKey   = "usage-bootstrap-signing"
)

var (
	bootstrapTokenRE = regexp.MustCompile(`\A([a-z0-9]{6})\.([a-z0-9]{16})\z`)
	bootstrapGroupRE = regexp.MustCompile(`\Asystem:bootstrappers:[a-z0-9:-]{0,255}[a-z0-9]\z`)
)

// BootstrapAuthenticator authenticates bootstrap tokens
// "<id>.<secret>" against kube-system secrets "bootstrap-token-<id>" of
// type bootstrap.kubernetes.io/token, read through a lister. Safe for
// concurrent use; set the exported fields before the first call.
type BootstrapAuthenticator struct {
	// Logger receives refusal reasons at Debug; nil discards.
	Logger *slog.Logger
	// Clock is "now" for expiry; nil is time.Now.
	Clock func() time.Time

	secrets corelisters.SecretLister
}

var _ TokenAuthenticator = (*BootstrapAuthenticator)(nil)

// NewBootstrapAuthenticator returns an authenticator reading token
// secrets through secrets (a lister that sees kube-system).
func NewBootstrapAuthenticator(secrets corelisters.SecretLister) *BootstrapAuthenticator {
	return &BootstrapAuthenticator{secrets: secrets}
}

// AuthenticateToken authenticates a bootstrap token. The user is
// system:bootstrap:<id> in groups system:bootstrappers, the secret's
// auth-extra-groups, and system:authenticated. A token that is not of
// the bootstrap form is (zero, false, nil) silently; a bootstrap-form
// token that does not match a usable secret is (zero, false, nil) with
// the reason at Debug.
func (b *BootstrapAuthenticator) AuthenticateToken(ctx context.Context, token string) (auth.User, bool, error) {
	m := bootstrapTokenRE.FindStringSubmatch(token)
	if m == nil {
		return auth.User{}, false, nil
	}
	id, secretPart := m[1], m[2]
	name := BootstrapTokenSecretPrefix + id
	reject := func(reason string) (auth.User, bool, error) {
		b.log().DebugContext(ctx, "bootstrap token refused", "id", id, "reason", reason)
		return auth.User{}, false, nil
	}
	if b.secrets == nil {
		return reject("no secret lookup")
	}
	secret, err := b.secrets.Secrets(BootstrapTokenNamespace).Get(name)
	switch {
	case apierrors.IsNotFound(err):
		return reject("no secret " + name)
	case err != nil:
		return auth.User{}, false, fmt.Errorf("looking up bootstrap token secret %s: %w", name, err)
	}
	if secret.DeletionTimestamp != nil {
		return reject("secret is being deleted")
	}
	if secret.Type != corev1.SecretTypeBootstrapToken {
		return reject(fmt.Sprintf("secret has type %q", secret.Type))
	}
	if subtle.ConstantTimeCompare(secret.Data[BootstrapTokenSecretKey], []byte(secretPart)) != 1 {
		return reject("token secret does not match")
	}
	if string(secret.Data[BootstrapTokenIDKey]) != id {
		return reject("token id does not match")
	}
	if exp, ok := secret.Data[BootstrapTokenExpirationKey]; ok {
		t, err := time.Parse(time.RFC3339, string(exp))
		if err != nil {
			return reject(fmt.Sprintf("unparseable expiration %q", exp))
		}
		if !b.now().Before(t) {
			return reject("expired at " + t.UTC().Format(time.RFC3339))
		}
	}
	if string(secret.Data[BootstrapTokenUsageAuthKey]) != "true" {
		return reject(BootstrapTokenUsageAuthKey + " is not \"true\"")
	}
	groups, err := bootstrapGroups(string(secret.Data[BootstrapTokenExtraGroupsKey]))
	if err != nil {
		return reject(err.Error())
	}
	return auth.User{Name: BootstrapUserPrefix + id, Groups: append(groups, auth.AllAuthenticated)}, true, nil
}

func (b *BootstrapAuthenticator) now() time.Time {
	if b.Clock != nil {
		return b.Clock()
	}
	return time.Now()
}

func (b *BootstrapAuthenticator) log() *slog.Logger {
	if b.Logger != nil {
		return b.Logger
	}
	return slog.New(slog.DiscardHandler)
}

// bootstrapGroups returns system:bootstrappers followed by the
// comma-separated extra groups, each of which must be
// system:bootstrappers:<something>, without duplicates.
func bootstrapGroups(extra string) ([]string, error) {
	groups := []string{auth.BootstrappersGroup}
	if strings.TrimSpace(extra) == "" {
		return groups, nil
	}
	for _, g := range strings.Split(extra, ",") {
		g = strings.TrimSpace(g)
		if !bootstrapGroupRE.MatchString(g) {
			return nil, fmt.Errorf("extra group %q does not match %s", g, bootstrapGroupRE)
		}
		dup := false
		for _, x := range groups {
			dup = dup || x == g
		}
		if !dup {
			groups = append(groups, g)
		}
	}
	return groups, nil
}

// CreateBootstrapToken creates a bootstrap token for joining nodes: it
// writes the kube-system secret bootstrap-token-<id> (usable for
// authentication and signing, expiring after ttl, never if ttl <= 0,
// with description and extra groups, each of which must be
// system:bootstrappers:…) and returns the token "<id>.<secret>". An id
// collision (AlreadyExists) is retried with a new id. Called by `skiff
// token create`.
func CreateBootstrapToken(ctx context.Context, client kubernetes.Interface, ttl time.Duration, description string, groups []string) (string, error) {
	extra, err := bootstrapGroups(strings.Join(groups, ","))
	if err != nil {
		return "", fmt.Errorf("creating bootstrap token: %w", err)
	}
	for attempt := 0; ; attempt++ {
		id, err := randomToken(6)
		if err != nil {
			return "", fmt.Errorf("creating bootstrap token: %w", err)
		}
		secretPart, err := randomToken(16)
		if err != nil {
			return "", fmt.Errorf("creating bootstrap token: %w", err)
		}
		data := map[string]string{
			BootstrapTokenIDKey:        id,
			BootstrapTokenSecretKey:    secretPart,
			BootstrapTokenUsageAuthKey: "true",
			BootstrapTokenUsageSignKey: "true",
		}
		if description != "" {
			data[BootstrapTokenDescriptionKey] = description
		}
		if len(extra) > 1 {
			data[BootstrapTokenExtraGroupsKey] = strings.Join(extra[1:], ",")
		}
		if ttl > 0 {
			data[BootstrapTokenExpirationKey] = time.Now().Add(ttl).UTC().Format(time.RFC3339)
		}
		secret := &corev1.Secret{
			ObjectMeta: metav1.ObjectMeta{Name: BootstrapTokenSecretPrefix + id, Namespace: BootstrapTokenNamespace},
			Type:       corev1.SecretTypeBootstrapToken,
			StringData: data,
		}
		_, err = client.CoreV1().Secrets(BootstrapTokenNamespace).Create(ctx, secret, metav1.CreateOptions{})
		if apierrors.IsAlreadyExists(err) && attempt < 5 {
			continue
		}
		if err != nil {
			return "", fmt.Errorf("creating bootstrap token secret %s: %w", secret.Name, err)
		}
		return id + "." + secretPart, nil
	}
}

const tokenAlphabet = "abcdefghijklmnopqrstuvwxyz0123456789"

func randomToken(n int) (string, error) {
	b := make([]byte, n)
	max := big.NewInt(int64(len(tokenAlphabet)))
	for i := range b {
		x, err := rand.Int(rand.Reader, max)
		if err != nil {
			return "", fmt.Errorf("reading randomness: %w", err)
		}
		b[i] = tokenAlphabet[x.Int64()]
	}
	return string(b), nil
}

// CAHash returns "sha256:<hex>" of ca's SubjectPublicKeyInfo, the pin a
// joining agent checks the server's CA against (kubeadm's
// --discovery-token-ca-cert-hash).
func CAHash(ca *x509.Certificate) string {
	sum := sha256.Sum256(ca.RawSubjectPublicKeyInfo)
	return "sha256:" + hex.EncodeToString(sum[:])
}
