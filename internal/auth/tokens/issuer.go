package tokens

import (
	"crypto/ecdsa"
	"crypto/rand"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"time"

	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/types"

	"github.com/skiff-dev/skiff/internal/auth"
)

// DefaultIssuer is the "iss" of bound service account tokens unless
// NewIssuer is given another.
const DefaultIssuer = "https://kubernetes.default.svc.cluster.local"

// DefaultMaxExpiration caps TokenRequest lifetimes unless
// Issuer.MaxExpiration says otherwise. Upstream has no cap by default
// (--service-account-max-token-expiration is optional); skiff caps at 48h
// so that a leaked token dies within two days.
const DefaultMaxExpiration = 48 * time.Hour

// Bound object kinds a token can be bound to.
const (
	KindPod    = "Pod"
	KindSecret = "Secret"
	KindNode   = "Node"
)

// Issuer signs service account tokens (ES256 JWTs) with the key pair kept
// in its key directory, and verifies them (Authenticator). It is safe for
// concurrent use once its exported fields are set; set them before the
// first call and do not change them after.
type Issuer struct {
	// Logger receives the reasons tokens are refused, at Debug. Nil
	// discards.
	Logger *slog.Logger
	// Clock is "now" for iat/nbf/exp and for verification. Nil is
	// time.Now.
	Clock func() time.Time
	// MaxExpiration caps TokenRequest lifetimes (not Issue's). Zero is
	// DefaultMaxExpiration; negative means no cap beyond upstream's 2^32
	// seconds.
	MaxExpiration time.Duration

	issuer       string
	apiAudiences []string
	key          *ecdsa.PrivateKey
	kid          string
}

// BoundObject is what a token is bound to: the token is valid only while
// that object exists with that UID. Kind is KindPod or KindSecret (in the
// service account's namespace) or KindNode.
type BoundObject struct {
	Kind string
	Name string
	UID  types.UID
	// NodeName and NodeUID, for Kind Pod, name the node the pod is
	// bound to (empty when unscheduled, NodeUID empty when unknown); they
	// go into the token (kubernetes.io.node) and the user's extra, so a
	// node authorizer can tell which node's pod holds the token. They
	// are informational and not verified against the node.
	NodeName string
	NodeUID  types.UID
}

// NewIssuer loads the signing key from keyDir, creating the directory and
// a P-256 key pair (sa.key, sa.pub; PEM) on first use and reusing them
// after. issuer is the "iss" claim ("" is DefaultIssuer); apiAudiences
// are the audiences the API server accepts tokens for ("" entries are
// dropped; none means {issuer}, as upstream defaults --api-audiences to
// the issuer).
func NewIssuer(keyDir, issuer string, apiAudiences []string) (*Issuer, error) {
	if issuer == "" {
		issuer = DefaultIssuer
	}
	if issuer == LegacyIssuer {
		return nil, fmt.Errorf("service account issuer %q is reserved for legacy tokens", issuer)
	}
	var auds []string
	for _, a := range apiAudiences {
		if a != "" {
			auds = append(auds, a)
		}
	}
	if len(auds) == 0 {
		auds = []string{issuer}
	}
	key, err := loadOrCreateKey(keyDir)
	if err != nil {
		return nil, err
	}
	kid, err := keyID(&key.PublicKey)
	if err != nil {
		return nil, err
	}
	return &Issuer{issuer: issuer, apiAudiences: auds, key: key, kid: kid}, nil
}

// APIAudiences returns the audiences the API server accepts (a copy).
func (i *Issuer) APIAudiences() []string { return append([]string(nil), i.apiAudiences...) }

// PublicKey returns the verification key, for a discovery document or for
// other verifiers.
func (i *Issuer) PublicKey() *ecdsa.PublicKey { return &i.key.PublicKey }

func (i *Issuer) now() time.Time {
	if i.Clock != nil {
		return i.Clock()
	}
	return time.Now()
}

func (i *Issuer) log() *slog.Logger {
	if i.Logger != nil {
		return i.Logger
	}
	return slog.New(slog.DiscardHandler)
}

// Issue signs a token for sa, valid for audiences (none means the API
// audiences) from now until now+expiration, bound to bound (nil: bound to
// the service account only). It does not check that sa or bound exist:
// TokenRequest does that for API callers. It returns the token and its
// expiry.
func (i *Issuer) Issue(sa *corev1.ServiceAccount, audiences []string, expiration time.Duration, bound *BoundObject) (token string, exp time.Time, err error) {
	if sa == nil || sa.Name == "" || sa.Namespace == "" {
		return "", time.Time{}, errors.New("issuing token: service account needs a name and a namespace")
	}
	if expiration < time.Second {
		return "", time.Time{}, fmt.Errorf("issuing token for %s/%s: expiration %s is below one second", sa.Namespace, sa.Name, expiration)
	}
	if len(audiences) == 0 {
		audiences = i.apiAudiences
	}
	now := i.now()
	exp = now.Add(expiration).Truncate(time.Second)
	k := &kubernetesClaims{
		Namespace:      sa.Namespace,
		ServiceAccount: ref{Name: sa.Name, UID: string(sa.UID)},
	}
	if bound != nil {
		r := &ref{Name: bound.Name, UID: string(bound.UID)}
		if r.Name == "" || r.UID == "" {
			return "", time.Time{}, fmt.Errorf("issuing token for %s/%s: bound %s needs a name and a UID", sa.Namespace, sa.Name, bound.Kind)
		}
		switch bound.Kind {
		case KindPod:
			k.Pod = r
			if bound.NodeName != "" {
				k.Node = &ref{Name: bound.NodeName, UID: string(bound.NodeUID)}
			}
		case KindSecret:
			k.Secret = r
		case KindNode:
			k.Node = r
		default:
			return "", time.Time{}, fmt.Errorf("issuing token for %s/%s: cannot bind to kind %q", sa.Namespace, sa.Name, bound.Kind)
		}
	}
	jti, err := newUUID()
	if err != nil {
		return "", time.Time{}, fmt.Errorf("issuing token: %w", err)
	}
	c := claims{
		Issuer:     i.issuer,
		Subject:    ServiceAccountUsername(sa.Namespace, sa.Name),
		Audience:   audiences,
		Expiry:     newNumericDate(exp),
		IssuedAt:   newNumericDate(now),
		NotBefore:  newNumericDate(now),
		ID:         jti,
		Kubernetes: k,
	}
	token, err = i.sign(&c)
	if err != nil {
		return "", time.Time{}, fmt.Errorf("issuing token for %s/%s: %w", sa.Namespace, sa.Name, err)
	}
	return token, exp, nil
}

// LegacyToken signs a never-expiring legacy token for sa, to be stored by
// the token controller as data["token"] of secret, a
// kubernetes.io/service-account-token secret annotated with sa's name and
// UID. The token is valid only while that secret exists and holds it.
func (i *Issuer) LegacyToken(sa *corev1.ServiceAccount, secret *corev1.Secret) (string, error) {
	if sa == nil || secret == nil || sa.Name == "" || sa.Namespace == "" || sa.UID == "" || secret.Name == "" {
		return "", errors.New("issuing legacy token: service account (name, namespace, UID) and secret name needed")
	}
	if secret.Namespace != sa.Namespace {
		return "", fmt.Errorf("issuing legacy token: secret %s/%s is not in namespace %q", secret.Namespace, secret.Name, sa.Namespace)
	}
	c := claims{
		Issuer:           LegacyIssuer,
		Subject:          ServiceAccountUsername(sa.Namespace, sa.Name),
		LegacyNamespace:  sa.Namespace,
		LegacySecretName: secret.Name,
		LegacySAName:     sa.Name,
		LegacySAUID:      string(sa.UID),
	}
	token, err := i.sign(&c)
	if err != nil {
		return "", fmt.Errorf("issuing legacy token for %s/%s: %w", sa.Namespace, sa.Name, err)
	}
	return token, nil
}

func (i *Issuer) sign(c *claims) (string, error) {
	payload, err := json.Marshal(c)
	if err != nil {
		return "", fmt.Errorf("encoding claims: %w", err)
	}
	return signES256(i.key, i.kid, payload)
}

// ServiceAccountUsername is "system:serviceaccount:<namespace>:<name>".
func ServiceAccountUsername(namespace, name string) string {
	return auth.ServiceAccountPrefix + namespace + ":" + name
}

// newUUID returns a random (version 4) UUID, the token's jti.
func newUUID() (string, error) {
	var b [16]byte
	if _, err := rand.Read(b[:]); err != nil {
		return "", fmt.Errorf("reading randomness: %w", err)
	}
	b[6] = b[6]&0x0f | 0x40
	b[8] = b[8]&0x3f | 0x80
	return fmt.Sprintf("%x-%x-%x-%x-%x", b[0:4], b[4:6], b[6:8], b[8:10], b[10:16]), nil
}
