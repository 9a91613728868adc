package tokens_test

import (
	"context"
	"log/slog"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	authenticationv1 "k8s.io/api/authentication/v1"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/informers"
	"k8s.io/client-go/kubernetes"

	"github.com/skiff-dev/skiff/internal/auth"
	"github.com/skiff-dev/skiff/internal/auth/tokens"
	"github.com/skiff-dev/skiff/internal/testserver"
)

// informerLookups starts informers on a real API server, as the API
// server itself will, and returns their listers once synced.
func informerLookups(t *testing.T, client kubernetes.Interface) tokens.Lookups {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	f := informers.NewSharedInformerFactory(client, 0)
	t.Cleanup(func() {
		cancel() // before Shutdown, which waits for the informers to stop
		f.Shutdown()
	})
	l := tokens.Lookups{
		ServiceAccounts: f.Core().V1().ServiceAccounts().Lister(),
		Pods:            f.Core().V1().Pods().Lister(),
		Secrets:         f.Core().V1().Secrets().Lister(),
		Nodes:           f.Core().V1().Nodes().Lister(),
	}
	f.StartWithContext(ctx)
	for typ, ok := range f.WaitForCacheSync(ctx.Done()) {
		if !ok {
			t.Fatalf("informer for %v did not sync", typ)
		}
	}
	return l
}

// eventually polls cond until it returns nil or 30 s pass, then fails
// with its last error.
func eventually(t *testing.T, what string, cond func() error) {
	t.Helper()
	deadline := time.Now().Add(30 * time.Second)
	for {
		err := cond()
		if err == nil {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("%s: still failing after 30s: %v", what, err)
		}
		select {
		case <-time.After(20 * time.Millisecond):
		case <-t.Context().Done():
			t.Fatalf("%s: %v", what, t.Context().Err())
		}
	}
}

type errString string

func (e errString) Error() string { return string(e) }

func TestWithAPIServer(t *testing.T) {
	t.Parallel()
	cfg := testserver.Start(t, testserver.Options{})
	client := testserver.Client(t, cfg)
	ctx := context.Background()
	l := informerLookups(t, client)

	t.Run("bootstrap token", func(t *testing.T) {
		tok, err := tokens.CreateBootstrapToken(ctx, client, time.Hour, "joining node-b", []string{"system:bootstrappers:skiff:default-node-token"})
		if err != nil {
			t.Fatalf("CreateBootstrapToken: %v", err)
		}
		if !bootstrapTokenForm.MatchString(tok) {
			t.Fatalf("token %q is not of the bootstrap form", tok)
		}
		id, secretPart, _ := strings.Cut(tok, ".")
		s, err := client.CoreV1().Secrets("kube-system").Get(ctx, "bootstrap-token-"+id, metav1.GetOptions{})
		if err != nil {
			t.Fatalf("reading the token secret: %v", err)
		}
		exp, err := time.Parse(time.RFC3339, string(s.Data["expiration"]))
		if err != nil || exp.Before(time.Now().Add(50*time.Minute)) || exp.After(time.Now().Add(61*time.Minute)) {
			t.Errorf("expiration %q (%v), want about an hour from now", s.Data["expiration"], err)
		}
		delete(s.Data, "expiration")
		want := map[string][]byte{
			"token-id": []byte(id), "token-secret": []byte(secretPart), "description": []byte("joining node-b"),
			"usage-bootstrap-authentication": []byte("true"), "usage-bootstrap-signing": []byte("true"),
			"auth-extra-groups": []byte("system:bootstrappers:skiff:default-node-token"),
		}
		if diff := cmp.Diff(want, s.Data); diff != "" || s.Type != corev1.SecretTypeBootstrapToken {
			t.Errorf("secret type %q, data (-want +got):\n%s", s.Type, diff)
		}

		b := tokens.NewBootstrapAuthenticator(l.Secrets)
		b.Logger = integrationLogger(t)
		var got auth.User
		eventually(t, "authenticating the new bootstrap token", func() error {
			u, ok, err := b.AuthenticateToken(ctx, tok)
			if err != nil {
				return err
			}
			if !ok {
				return errString("not authenticated")
			}
			got = u
			return nil
		})
		wantUser := auth.User{Name: "system:bootstrap:" + id,
			Groups: []string{"system:bootstrappers", "system:bootstrappers:skiff:default-node-token", "system:authenticated"}}
		if diff := cmp.Diff(wantUser, got); diff != "" {
			t.Errorf("user (-want +got):\n%s", diff)
		}

		// Without a TTL the token never expires.
		forever, err := tokens.CreateBootstrapToken(ctx, client, 0, "", nil)
		if err != nil {
			t.Fatalf("CreateBootstrapToken without ttl: %v", err)
		}
		id2, _, _ := strings.Cut(forever, ".")
		s2, err := client.CoreV1().Secrets("kube-system").Get(ctx, "bootstrap-token-"+id2, metav1.GetOptions{})
		if err != nil {
			t.Fatal(err)
		}
		for _, k := range []string{"expiration", "auth-extra-groups", "description"} {
			if v, has := s2.Data[k]; has {
				t.Errorf("token without ttl, groups, description has %s=%q", k, v)
			}
		}
		// Deleting the secret revokes the token.
		if err := client.CoreV1().Secrets("kube-system").Delete(ctx, s.Name, metav1.DeleteOptions{}); err != nil {
			t.Fatal(err)
		}
		eventually(t, "refusing the deleted bootstrap token", func() error {
			if _, ok, _ := b.AuthenticateToken(ctx, tok); ok {
				return errString("still authenticated")
			}
			return nil
		})

		if _, err := tokens.CreateBootstrapToken(ctx, client, time.Hour, "", []string{"system:masters"}); err == nil {
			t.Errorf("CreateBootstrapToken with group system:masters succeeded, want an error")
		}
	})

	t.Run("pod-bound token", func(t *testing.T) {
		iss, err := tokens.NewIssuer(t.TempDir(), "", nil)
		if err != nil {
			t.Fatal(err)
		}
		iss.Logger = integrationLogger(t)
		ns := "tokens-e2e"
		if _, err := client.CoreV1().Namespaces().Create(ctx, &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: ns}}, metav1.CreateOptions{}); err != nil {
			t.Fatal(err)
		}
		sa, err := client.CoreV1().ServiceAccounts(ns).Create(ctx, &corev1.ServiceAccount{ObjectMeta: metav1.ObjectMeta{Name: "app"}}, metav1.CreateOptions{})
		if err != nil {
			t.Fatal(err)
		}
		newPod := func() *corev1.Pod {
			p, err := client.CoreV1().Pods(ns).Create(ctx, &corev1.Pod{
				ObjectMeta: metav1.ObjectMeta{Name: "web"},
				Spec: corev1.PodSpec{ServiceAccountName: "app",
					Containers: []corev1.Container{{Name: "c", Image: "busybox"}}},
			}, metav1.CreateOptions{})
			if err != nil {
				t.Fatal(err)
			}
			return p
		}
		pod := newPod()
		var resp *authenticationv1.TokenRequest
		eventually(t, "requesting a pod-bound token", func() error {
			var err error
			resp, err = iss.TokenRequest(ctx, sa, &authenticationv1.TokenRequest{Spec: authenticationv1.TokenRequestSpec{
				BoundObjectRef: &authenticationv1.BoundObjectReference{Kind: "Pod", APIVersion: "v1", Name: "web", UID: pod.UID},
			}}, l)
			return err
		})
		authn := iss.Authenticator(l)
		u, ok, err := authn.AuthenticateToken(ctx, resp.Status.Token)
		if err != nil || !ok {
			t.Fatalf("pod-bound token: ok=%v err=%v", ok, err)
		}
		if u.Name != "system:serviceaccount:tokens-e2e:app" || u.UID != string(sa.UID) || u.Extra[tokens.ExtraPodUID][0] != string(pod.UID) {
			t.Errorf("user = %+v, want the service account with the pod's UID", u)
		}

		if err := client.CoreV1().Pods(ns).Delete(ctx, "web", *metav1.NewDeleteOptions(0)); err != nil {
			t.Fatal(err)
		}
		eventually(t, "pod gone", func() error {
			if _, err := l.Pods.Pods(ns).Get("web"); err == nil {
				return errString("pod still in cache")
			}
			return nil
		})
		if _, ok, _ := authn.AuthenticateToken(ctx, resp.Status.Token); ok {
			t.Errorf("token of a deleted pod still authenticates")
		}
		again := newPod()
		eventually(t, "recreated pod in cache", func() error {
			p, err := l.Pods.Pods(ns).Get("web")
			if err != nil {
				return err
			}
			if p.UID != again.UID {
				return errString("old pod")
			}
			return nil
		})
		if _, ok, _ := authn.AuthenticateToken(ctx, resp.Status.Token); ok {
			t.Errorf("token of a pod recreated with another UID still authenticates")
		}

		if err := client.CoreV1().ServiceAccounts(ns).Delete(ctx, "app", metav1.DeleteOptions{}); err != nil {
			t.Fatal(err)
		}
		unbound, _, err := iss.Issue(sa, nil, time.Hour, nil)
		if err != nil {
			t.Fatal(err)
		}
		eventually(t, "refusing tokens of a deleted service account", func() error {
			if _, ok, _ := authn.AuthenticateToken(ctx, unbound); ok {
				return errString("still authenticated")
			}
			return nil
		})
	})
}

// bootstrapTokenForm is the upstream form of a bootstrap token.
var bootstrapTokenForm = regexp.MustCompile(`^[a-z0-9]{6}\.[a-z0-9]{16}$`)

// integrationLogger sends the code's logs to the test's log.
func integrationLogger(t testing.TB) *slog.Logger {
	return slog.New(slog.NewTextHandler(testLog{t}, &slog.HandlerOptions{Level: slog.LevelDebug}))
}

type testLog struct{ t testing.TB }

func (w testLog) Write(p []byte) (int, error) { w.t.Log(string(p)); return len(p), nil }
