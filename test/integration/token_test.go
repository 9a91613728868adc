package integration

import (
	"encoding/base64"
	"encoding/json"
	"strings"
	"testing"
	"time"

	authenticationv1 "k8s.io/api/authentication/v1"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/utils/ptr"
)

// TestTokenRequest issues service account tokens through
// serviceaccounts/token, as kubectl create token and the node agent's
// projected volumes do.
func TestTokenRequest(t *testing.T) {
	t.Parallel()
	cs := sharedServer.clientset(t)
	ns := newNamespace(t, cs)
	ctx := testContext(t, 60*time.Second)
	sa, err := cs.CoreV1().ServiceAccounts(ns).Create(ctx, &corev1.ServiceAccount{ObjectMeta: metav1.ObjectMeta{Name: "robot"}}, metav1.CreateOptions{})
	if err != nil {
		t.Fatal(err)
	}
	pod, err := cs.CoreV1().Pods(ns).Create(ctx, &corev1.Pod{
		ObjectMeta: metav1.ObjectMeta{Name: "p"},
		Spec:       corev1.PodSpec{ServiceAccountName: "robot", Containers: []corev1.Container{{Name: "c", Image: "busybox"}}},
	}, metav1.CreateOptions{})
	if err != nil {
		t.Fatal(err)
	}
	tr, err := cs.CoreV1().ServiceAccounts(ns).CreateToken(ctx, "robot", &authenticationv1.TokenRequest{Spec: authenticationv1.TokenRequestSpec{
		Audiences:         []string{"vault"},
		ExpirationSeconds: ptr.To[int64](3600),
		BoundObjectRef:    &authenticationv1.BoundObjectReference{Kind: "Pod", APIVersion: "v1", Name: pod.Name, UID: pod.UID},
	}}, metav1.CreateOptions{})
	if err != nil {
		t.Fatal(err)
	}
	parts := strings.Split(tr.Status.Token, ".")
	if len(parts) != 3 {
		t.Fatalf("token %q is not a JWS", tr.Status.Token)
	}
	payload, err := base64.RawURLEncoding.DecodeString(parts[1])
	if err != nil {
		t.Fatal(err)
	}
	var claims struct {
		Sub string   `json:"sub"`
		Aud []string `json:"aud"`
		K8s struct {
			Pod struct{ Name, UID string } `json:"pod"`
			SA  struct{ UID string }       `json:"serviceaccount"`
		} `json:"kubernetes.io"`
	}
	if err := json.Unmarshal(payload, &claims); err != nil {
		t.Fatal(err)
	}
	if claims.Sub != "system:serviceaccount:"+ns+":robot" || len(claims.Aud) != 1 || claims.Aud[0] != "vault" ||
		claims.K8s.Pod.UID != string(pod.UID) || claims.K8s.SA.UID != string(sa.UID) {
		t.Errorf("claims = %+v", claims)
	}
	if until := time.Until(tr.Status.ExpirationTimestamp.Time); until < 50*time.Minute || until > 61*time.Minute {
		t.Errorf("expires in %v, want about an hour", until)
	}

	// Errors: a missing account is 404, a bad duration 422 naming the field.
	if _, err := cs.CoreV1().ServiceAccounts(ns).CreateToken(ctx, "nobody", &authenticationv1.TokenRequest{}, metav1.CreateOptions{}); !isNotFound(err) {
		t.Errorf("missing account: %v, want 404", err)
	}
	_, err = cs.CoreV1().ServiceAccounts(ns).CreateToken(ctx, "robot", &authenticationv1.TokenRequest{Spec: authenticationv1.TokenRequestSpec{ExpirationSeconds: ptr.To[int64](60)}}, metav1.CreateOptions{})
	if statusCode(err) != 422 || !strings.Contains(err.Error(), "spec.expirationSeconds") {
		t.Errorf("short token: %v, want 422 naming spec.expirationSeconds", err)
	}
}
