package volumes

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"sync"
	"time"

	authenticationv1 "k8s.io/api/authentication/v1"
	v1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/client-go/kubernetes"
)

// ErrTokenAPIUnavailable is wrapped by the errors of service account token
// sources when the API server does not serve the serviceaccounts/token
// subresource (TODO(issue 7)).
var ErrTokenAPIUnavailable = errors.New("volumes: the API server does not serve serviceaccounts/token (TokenRequest, issue 7)")

const (
	// defaultTokenExpiration is the API server's default expirationSeconds.
	defaultTokenExpiration = 3600
	// maxTokenAge: a token is refreshed at least daily, as upstream.
	maxTokenAge = 24 * time.Hour
)

// tokenManager requests service account tokens bound to pods and keeps
// them until 80% of their life has passed.
type tokenManager struct {
	client kubernetes.Interface
	now    func() time.Time

	mu sync.Mutex
	// tokens is guarded by mu: per pod, by tokenKey.
	tokens map[types.UID]map[tokenKey]tokenEntry
}

type tokenKey struct {
	volume, serviceAccount, audience string
	expiration                       int64
}

type tokenEntry struct {
	token     string
	refreshAt time.Time
}

func newTokenManager(client kubernetes.Interface, now func() time.Time) *tokenManager {
	return &tokenManager{client: client, now: now, tokens: map[types.UID]map[tokenKey]tokenEntry{}}
}

// token returns a token for pod's service account as src asks, requesting
// a new one when none is cached or the cached one is due for refresh.
func (t *tokenManager) token(ctx context.Context, pod *v1.Pod, volume string, src *v1.ServiceAccountTokenProjection) (string, error) {
	sa := pod.Spec.ServiceAccountName
	if sa == "" {
		sa = "default"
	}
	exp := int64(defaultTokenExpiration)
	if src.ExpirationSeconds != nil {
		exp = *src.ExpirationSeconds
	}
	key := tokenKey{volume: volume, serviceAccount: sa, audience: src.Audience, expiration: exp}
	now := t.now()
	t.mu.Lock()
	e, ok := t.tokens[pod.UID][key]
	t.mu.Unlock()
	if ok && now.Before(e.refreshAt) {
		return e.token, nil
	}

	req := &authenticationv1.TokenRequest{
		Spec: authenticationv1.TokenRequestSpec{
			ExpirationSeconds: &exp,
			BoundObjectRef: &authenticationv1.BoundObjectReference{
				Kind: "Pod", APIVersion: "v1", Name: pod.Name, UID: pod.UID,
			},
		},
	}
	if src.Audience != "" {
		req.Spec.Audiences = []string{src.Audience}
	}
	resp, err := t.client.CoreV1().ServiceAccounts(pod.Namespace).CreateToken(ctx, sa, req, metav1.CreateOptions{})
	if err != nil {
		return "", tokenError(sa, err)
	}
	if resp.Status.Token == "" {
		return "", fmt.Errorf("requesting a token for serviceaccount %q: empty token in the response", sa)
	}
	// The server may shorten the life it was asked for; it says so in
	// the spec it returns. The expiration timestamp is not compared with
	// the local clock, which may be skewed.
	life := time.Duration(exp) * time.Second
	if s := resp.Spec.ExpirationSeconds; s != nil && *s > 0 {
		life = time.Duration(*s) * time.Second
	}
	e = tokenEntry{token: resp.Status.Token, refreshAt: now.Add(min(life*8/10, maxTokenAge))}
	t.mu.Lock()
	if t.tokens[pod.UID] == nil {
		t.tokens[pod.UID] = map[tokenKey]tokenEntry{}
	}
	t.tokens[pod.UID][key] = e
	t.mu.Unlock()
	return e.token, nil
}

// tokenError names a missing service account, and tells a missing token
// subresource apart from it.
func tokenError(sa string, err error) error {
	var st apierrors.APIStatus
	if errors.As(err, &st) {
		s := st.Status()
		if s.Code == http.StatusNotFound && s.Details != nil && s.Details.Name == sa && s.Details.Kind == "serviceaccounts" {
			return fmt.Errorf("serviceaccount %q not found: %w", sa, err)
		}
		switch s.Code {
		case http.StatusNotFound, http.StatusMethodNotAllowed:
			return fmt.Errorf("requesting a token for serviceaccount %q: %w (%w)", sa, ErrTokenAPIUnavailable, err)
		}
	}
	return fmt.Errorf("requesting a token for serviceaccount %q: %w", sa, err)
}

// forget drops the tokens of a pod.
func (t *tokenManager) forget(uid types.UID) {
	t.mu.Lock()
	delete(t.tokens, uid)
	t.mu.Unlock()
}
