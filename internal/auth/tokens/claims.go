package tokens

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"math"
	"time"
)

// LegacyIssuer is the "iss" of secret-based (legacy) service account
// tokens, as upstream.
const LegacyIssuer = "kubernetes/serviceaccount"

// claims is the JWT payload of a service account token: the registered
// claims, upstream's private "kubernetes.io" claim for bound tokens and
// the flat claims of legacy tokens.
type claims struct {
	Issuer    string       `json:"iss,omitempty"`
	Subject   string       `json:"sub,omitempty"`
	Audience  audience     `json:"aud,omitempty"`
	Expiry    *numericDate `json:"exp,omitempty"`
	IssuedAt  *numericDate `json:"iat,omitempty"`
	NotBefore *numericDate `json:"nbf,omitempty"`
	ID        string       `json:"jti,omitempty"`

	Kubernetes *kubernetesClaims `json:"kubernetes.io,omitempty"`

	LegacyNamespace  string `json:"kubernetes.io/serviceaccount/namespace,omitempty"`
	LegacySecretName string `json:"kubernetes.io/serviceaccount/secret.name,omitempty"`
	LegacySAName     string `json:"kubernetes.io/serviceaccount/service-account.name,omitempty"`
	LegacySAUID      string `json:"kubernetes.io/serviceaccount/service-account.uid,omitempty"`
}

type kubernetesClaims struct {
	Namespace      string       `json:"namespace,omitempty"`
	ServiceAccount ref          `json:"serviceaccount"`
	Pod            *ref         `json:"pod,omitempty"`
	Secret         *ref         `json:"secret,omitempty"`
	Node           *ref         `json:"node,omitempty"`
	WarnAfter      *numericDate `json:"warnafter,omitempty"`
}

type ref struct {
	Name string `json:"name,omitempty"`
	UID  string `json:"uid,omitempty"`
}

// audience is "aud": written as an array (as upstream), read as an array
// or a single string (RFC 7519 allows both).
type audience []string

func (a *audience) UnmarshalJSON(b []byte) error {
	if bytes.HasPrefix(bytes.TrimSpace(b), []byte(`"`)) {
		var s string
		if err := json.Unmarshal(b, &s); err != nil {
			return err
		}
		*a = audience{s}
		return nil
	}
	var l []string
	if err := json.Unmarshal(b, &l); err != nil {
		return err
	}
	*a = l
	return nil
}

// numericDate is a JWT NumericDate: seconds since the epoch, written as
// an integer, read as any JSON number in a sane range.
type numericDate int64

func newNumericDate(t time.Time) *numericDate {
	d := numericDate(t.Unix())
	return &d
}

func (d numericDate) time() time.Time { return time.Unix(int64(d), 0) }

func (d *numericDate) UnmarshalJSON(b []byte) error {
	var f float64
	if err := json.Unmarshal(b, &f); err != nil {
		return err
	}
	// Year ~ 1 to ~ 9999 keeps time arithmetic away from overflow.
	if math.IsNaN(f) || f < -62135596800 || f > 253402300799 {
		return errors.New("numeric date out of range")
	}
	*d = numericDate(f)
	return nil
}

// leeway is the clock skew tolerated on exp and nbf, as upstream's
// (go-jose's DefaultLeeway).
const leeway = 60 * time.Second

// checkTime validates exp, nbf and iat against now with leeway. Bound
// tokens must carry exp; legacy tokens carry none and never expire.
func (c *claims) checkTime(now time.Time, requireExp bool) error {
	if c.Expiry == nil {
		if requireExp {
			return errors.New("token has no expiry")
		}
	} else if now.Add(-leeway).After(c.Expiry.time()) {
		return fmt.Errorf("token expired at %s", c.Expiry.time().UTC().Format(time.RFC3339))
	}
	if c.NotBefore != nil && now.Add(leeway).Before(c.NotBefore.time()) {
		return fmt.Errorf("token not valid before %s", c.NotBefore.time().UTC().Format(time.RFC3339))
	}
	if c.IssuedAt != nil && now.Add(leeway).Before(c.IssuedAt.time()) {
		return fmt.Errorf("token issued in the future (%s)", c.IssuedAt.time().UTC().Format(time.RFC3339))
	}
	return nil
}

// intersect returns the members of a that are also in b, in a's order,
// without duplicates.
func intersect(a, b []string) []string {
	var out []string
	for _, x := range a {
		for _, y := range b {
			if x == y {
				dup := false
				for _, o := range out {
					dup = dup || o == x
				}
				if !dup {
					out = append(out, x)
				}
				break
			}
		}
	}
	return out
}
