package apiserver

import (
	"bytes"
	"context"
	"errors"
	"io"
	"net/http"
	"net/url"
	"strings"
	"testing"
	"time"

	"golang.org/x/net/http/httpguts"
	corev1 "k8s.io/api/core/v1"
	rbacv1 "k8s.io/api/rbac/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/informers"
	"k8s.io/client-go/kubernetes/fake"

	"github.com/skiff-dev/skiff/internal/auth/rbac"
	"github.com/skiff-dev/skiff/internal/auth/tokens"
)

// fuzzEnv is one API server with the real RBAC authorizer and the real
// service account token authenticator, where exactly one identity (the
// service account fuzz/robot, through robotToken) is allowed anything;
// alice's certificate, anonymous requests and any other bearer token are
// allowed nothing.
type fuzzEnv struct {
	*testEnv
	robotToken string
	// robot is a client with no certificate; requests set the token.
	robot *http.Client
}

// newFuzzEnv builds the server. The authorizer's and authenticator's
// policy objects come from informers over a fake clientset: the test
// server does not serve RBAC, and the policy is fixed for the whole run.
func newFuzzEnv(t testing.TB) *fuzzEnv {
	t.Helper()
	sa := &corev1.ServiceAccount{ObjectMeta: metav1.ObjectMeta{Namespace: "fuzz", Name: "robot", UID: "2b1f3c5e-0000-4000-8000-000000000001"}}
	cs := fake.NewSimpleClientset(
		sa,
		&rbacv1.ClusterRole{
			ObjectMeta: metav1.ObjectMeta{Name: "everything"},
			Rules: []rbacv1.PolicyRule{
				{APIGroups: []string{"*"}, Resources: []string{"*"}, Verbs: []string{"*"}},
				{NonResourceURLs: []string{"*"}, Verbs: []string{"*"}},
			},
		},
		&rbacv1.ClusterRoleBinding{
			ObjectMeta: metav1.ObjectMeta{Name: "robot-everything"},
			RoleRef:    rbacv1.RoleRef{APIGroup: rbacv1.GroupName, Kind: "ClusterRole", Name: "everything"},
			Subjects:   []rbacv1.Subject{{Kind: rbacv1.ServiceAccountKind, Namespace: "fuzz", Name: "robot"}},
		},
	)
	factory := informers.NewSharedInformerFactory(cs, 0)
	authz := rbac.New(factory)
	iss, err := tokens.NewIssuer(t.TempDir(), "", nil)
	if err != nil {
		t.Fatal(err)
	}
	core := factory.Core().V1()
	authn := iss.Authenticator(tokens.Lookups{
		ServiceAccounts: core.ServiceAccounts().Lister(),
		Pods:            core.Pods().Lister(),
		Secrets:         core.Secrets().Lister(),
	})
	ctx, cancel := context.WithCancel(context.Background())
	t.Cleanup(func() {
		cancel()
		factory.Shutdown() // waits for the informers, which end with ctx
	})
	factory.StartWithContext(ctx)
	for typ, ok := range factory.WaitForCacheSync(ctx.Done()) {
		if !ok {
			t.Fatalf("informer for %v did not sync", typ)
		}
	}
	token, _, err := iss.Issue(sa, nil, time.Hour, nil)
	if err != nil {
		t.Fatal(err)
	}

	env := newTestEnv(t, func(c *Config) {
		c.Authenticator = authn
		c.Authorizer = authz
		c.Rules = authz
	})
	noRedirect := func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }
	env.user.CheckRedirect = noRedirect
	env.anon.CheckRedirect = noRedirect
	robot := &http.Client{Transport: env.anon.Transport.(*http.Transport).Clone(), CheckRedirect: noRedirect}
	t.Cleanup(robot.CloseIdleConnections)

	// The one allowed identity is allowed, and the others are not: else
	// the fuzz invariants would hold vacuously.
	fe := &fuzzEnv{testEnv: env, robotToken: token, robot: robot}
	for _, c := range []struct {
		name   string
		client *http.Client
		token  string
		want   int
	}{
		{"robot", robot, token, http.StatusOK},
		{"alice", env.user, "", http.StatusForbidden},
		{"anonymous", env.anon, "", http.StatusForbidden},
		{"junk token", env.anon, "junk", http.StatusUnauthorized},
	} {
		req, err := http.NewRequest(http.MethodGet, env.ts.URL+"/api/v1/namespaces/default/configmaps", nil)
		if err != nil {
			t.Fatal(err)
		}
		if c.token != "" {
			req.Header.Set("Authorization", "Bearer "+c.token)
		}
		resp, err := c.client.Do(req)
		if err != nil {
			t.Fatalf("%s listing configmaps: %v", c.name, err)
		}
		body, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		if resp.StatusCode != c.want {
			t.Fatalf("%s listing configmaps: %d, want %d: %s", c.name, resp.StatusCode, c.want, body)
		}
	}
	return fe
}

// Identities a fuzz input can take (its mode's low two bits).
const (
	fuzzAnonymous = iota // no certificate; the fuzzed Authorization header, if any
	fuzzAlice            // alice's certificate (denied everything); the fuzzed header too
	fuzzRobot            // the allowed token, as the Authorization header
	fuzzRobotJunk        // the allowed token's bytes mangled by the fuzzed header
)

// Mode bits besides the identity.
const (
	fuzzHugeHeader = 1 << 2 // repeat the header value to 1 MiB (over the limit)
	fuzzHugeAuth   = 1 << 3 // repeat the Authorization value to 64 KiB
	fuzzHugeBody   = 1 << 4 // repeat the body to 4 MiB (over the body limit)
)

// FuzzRequest sends random requests (method, path, query, one header, an
// Authorization header, a body) to a real server handler with RBAC and
// checks that the server never fails (500, or a broken connection, which
// is what an unrecovered panic looks like) and never answers a request
// that is not the allowed identity's with success (1xx–2xx).
func FuzzRequest(f *testing.F) {
	for _, s := range []struct {
		mode                                  uint8
		method, path, query, hname, hval, atz string
		body                                  string
	}{
		{fuzzAnonymous, "GET", "/api/v1/namespaces/default/pods", "", "", "", "", ""},
		{fuzzAnonymous, "GET", "/api/v1/pods", "watch=true", "", "", "Bearer junk", ""},
		{fuzzAnonymous, "GET", "/api/v1/namespaces/default/configmaps", "", "", "", "Bearer", ""},
		{fuzzAnonymous, "GET", "/api/v1/namespaces/default/configmaps", "", "", "", "Basic YWxpY2U6cGFzcw==", ""},
		{fuzzAnonymous, "GET", "/api/v1/namespaces/default/configmaps", "", "", "", "Bearer a.b.c", ""},
		{fuzzAnonymous, "GET", "/api/v1/namespaces/default/configmaps", "", "", "", "Bearer eyJhbGciOiJub25lIn0.eyJzdWIiOiJzeXN0ZW06c2VydmljZWFjY291bnQ6ZnV6ejpyb2JvdCJ9.", ""},
		{fuzzAnonymous, "GET", "/api/v1/namespaces/default/configmaps", "", "", "", "Bearer x", ""},
		{fuzzAnonymous | fuzzHugeAuth, "GET", "/api/v1/namespaces/default/configmaps", "", "", "", "Bearer AAAAAAAAAAAAAAAA", ""},
		{fuzzAnonymous | fuzzHugeHeader, "GET", "/api/v1/nodes", "", "X-Junk", "y", "", ""},
		{fuzzAnonymous, "POST", "/api/v1/namespaces/default/pods", "", "Content-Type", "application/json", "Bearer junk", `{"apiVersion":"v1","kind":"Pod","metadata":{"name":"p"},"spec":{"containers":[{"name":"c","image":"i"}]}}`},
		{fuzzAlice, "POST", "/api/v1/namespaces/default/configmaps", "", "Content-Type", "application/json", "", `{"apiVersion":"v1","kind":"ConfigMap","metadata":{"name":"x"}}`},
		{fuzzAlice, "DELETE", "/api/v1/namespaces/default/configmaps", "", "", "", "", ""},
		{fuzzAlice, "PATCH", "/api/v1/namespaces/default/configmaps/x", "fieldManager=f", "Content-Type", "application/apply-patch+yaml", "", "apiVersion: v1\nkind: ConfigMap\n"},
		{fuzzAlice, "GET", "/api/v1/namespaces/default/pods/p/exec", "command=sh", "Upgrade", "websocket", "", ""},
		{fuzzAlice, "GET", "/api/v1/namespaces/default/pods/p/log", "follow=true", "", "", "Bearer junk", ""},
		{fuzzAlice, "PUT", "/api/v1/namespaces/default/pods/p/status", "", "Content-Type", "application/vnd.kubernetes.protobuf", "", "k8s\x00\x0a\x02v1"},
		{fuzzAlice, "GET", "/apis/apps/v1/namespaces/default/deployments", "labelSelector=a%3D%3D%3D&fieldSelector=metadata.name%3D", "Accept", "application/json;as=Table;v=v1;g=meta.k8s.io", "", ""},
		{fuzzAlice, "GET", "/api/v1/namespaces/default/pods/../../../nodes", "", "", "", "", ""},
		{fuzzAlice, "GET", "/api/v1/namespaces/%2e%2e/pods", "", "", "", "", ""},
		{fuzzAlice, "GET", "//api//v1/pods", "", "", "", "", ""},
		{fuzzAlice, "GET", "/api/v1/namespaces/default/serviceaccounts/robot/token", "", "Impersonate-User", "system:serviceaccount:fuzz:robot", "", ""},
		{fuzzAlice, "GET", "/api/v1/pods", "", "Impersonate-Group", "system:masters", "", ""},
		{fuzzAnonymous, "GET", "/api/v1/pods", "", "X-Remote-User", "admin", "", ""},
		{fuzzAnonymous, "GET", "/apis/rbac.authorization.k8s.io/v1/clusterroles", "", "", "", "Bearer " + strings.Repeat(".", 100), ""},
		{fuzzRobot, "GET", "/api/v1/namespaces/default/configmaps", "", "", "", "", ""},
		{fuzzRobot, "POST", "/api/v1/namespaces/default/configmaps", "dryRun=All", "Content-Type", "application/json", "", `{"apiVersion":"v1","kind":"ConfigMap","metadata":{"name":"x"}`},
		{fuzzRobot, "GET", "/api/v1/pods", "watch=1&resourceVersion=-1&timeoutSeconds=1", "", "", "", ""},
		{fuzzRobot | fuzzHugeBody, "POST", "/api/v1/namespaces/default/configmaps", "", "Content-Type", "application/json", "", "{"},
		{fuzzRobotJunk, "GET", "/api/v1/namespaces/default/configmaps", "", "", "", "x", ""},
		{fuzzRobotJunk, "GET", "/api/v1/namespaces/default/configmaps", "", "", "", "", ""},
	} {
		f.Add(s.mode, s.method, s.path, s.query, s.hname, s.hval, s.atz, []byte(s.body))
	}
	env := newFuzzEnv(f)
	f.Fuzz(func(t *testing.T, mode uint8, method, path, query, hname, hval, atz string, body []byte) {
		fuzzOne(t, env, mode, method, path, query, hname, hval, atz, body)
	})
}

func fuzzOne(t *testing.T, env *fuzzEnv, mode uint8, method, path, query, hname, hval, atz string, body []byte) {
	if method == "" {
		method = http.MethodGet
	}
	if !httpguts.ValidHeaderFieldName(method) || (hname != "" && !httpguts.ValidHeaderFieldName(hname)) ||
		!httpguts.ValidHeaderFieldValue(hval) || !httpguts.ValidHeaderFieldValue(atz) {
		return // the client would refuse to send it
	}
	if strings.EqualFold(method, http.MethodConnect) {
		return // a proxy request, not an API call
	}
	if !strings.HasPrefix(path, "/") {
		path = "/" + path
	}
	u, err := url.Parse(env.ts.URL + path)
	if err != nil || u.Host != strings.TrimPrefix(env.ts.URL, "https://") {
		return
	}
	u.RawQuery = query
	if mode&fuzzHugeHeader != 0 && hval != "" {
		hval = strings.Repeat(hval, (1<<20)/len(hval)+1)
	}
	if mode&fuzzHugeAuth != 0 && atz != "" {
		atz = strings.Repeat(atz, (64<<10)/len(atz)+1)
	}
	if mode&fuzzHugeBody != 0 && len(body) > 0 {
		body = bytes.Repeat(body, (4<<20)/len(body)+1)
	}

	client := env.anon
	granted := false // whether the request may be allowed
	switch mode & 3 {
	case fuzzAlice:
		client = env.user // a certificate outranks any Authorization header
	case fuzzRobot:
		client, atz, granted = env.robot, "Bearer "+env.robotToken, true
	case fuzzRobotJunk:
		atz = "Bearer " + mangle(env.robotToken, atz)
	}
	if mode&3 != fuzzAlice && (strings.Contains(atz, env.robotToken) || strings.Contains(hval, env.robotToken)) {
		granted = true
	}

	// The allowed identity may open a watch that stays open: give up on
	// it soon. A refusal must come whatever the request; allow for a
	// loaded machine.
	timeout := 20 * time.Second
	if granted {
		timeout = 3 * time.Second
	}
	ctx, cancel := context.WithTimeout(context.Background(), timeout)
	defer cancel()
	var rd io.Reader
	if body != nil {
		rd = bytes.NewReader(body)
	}
	req, err := http.NewRequestWithContext(ctx, method, u.String(), rd)
	if err != nil {
		return
	}
	if hname != "" {
		req.Header.Set(hname, hval)
	}
	if atz != "" {
		req.Header.Set("Authorization", atz)
	}
	resp, err := client.Do(req)
	if err != nil {
		if errors.Is(err, context.DeadlineExceeded) || ctx.Err() != nil {
			if !granted {
				t.Errorf("%s %s (mode %d): no answer in %v to a request that is not allowed", method, u, mode, timeout)
			}
			return // a watch or a follow that the allowed user may keep open
		}
		if mode&(fuzzHugeBody|fuzzHugeHeader) != 0 {
			return // the server may close the connection on an oversized request
		}
		t.Fatalf("%s %s (mode %d): %v (did the handler panic?)", method, u, mode, err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(io.LimitReader(resp.Body, 4<<10))
	if resp.StatusCode == http.StatusInternalServerError {
		t.Fatalf("%s %s (mode %d): 500: %s", method, u, mode, b)
	}
	if !granted && resp.StatusCode < 300 && !publicPath(u.Path) {
		t.Fatalf("%s %s (mode %d, identity %d): %d for a request that is not allowed: %s", method, u, mode, mode&3, resp.StatusCode, b)
	}
}

// publicPath reports whether p is served to anyone: the health checks.
func publicPath(p string) bool {
	for _, pre := range []string{"/healthz", "/livez", "/readyz"} {
		if p == pre || strings.HasPrefix(p, pre+"/") {
			return true
		}
	}
	return false
}

// mangle changes token by junk: it overwrites bytes from a position
// derived from junk with junk itself, and never returns token unchanged.
func mangle(token, junk string) string {
	if junk == "" {
		return token[:len(token)-1]
	}
	b := []byte(token)
	at := int(junk[0]) % len(b)
	n := copy(b[at:], junk)
	if n == 0 || string(b) == token {
		return token[:at]
	}
	return string(b)
}
