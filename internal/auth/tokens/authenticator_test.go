package tokens

import (
	"context"
	"encoding/base64"
	"encoding/json"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/types"
	corelisters "k8s.io/client-go/listers/core/v1"
	"k8s.io/client-go/tools/cache"

	"github.com/skiff-dev/skiff/internal/auth"
)

var t0 = time.Date(2026, 11, 22, 8, 0, 0, 0, time.UTC)

func newTestIssuer(t *testing.T, dir string) *Issuer {
	t.Helper()
	if dir == "" {
		dir = t.TempDir()
	}
	iss, err := NewIssuer(dir, "", []string{"https://kubernetes.default.svc.cluster.local", "skiff"})
	if err != nil {
		t.Fatalf("NewIssuer: %v", err)
	}
	iss.Clock = func() time.Time { return t0 }
	return iss
}

func newIndexer() cache.Indexer {
	return cache.NewIndexer(cache.MetaNamespaceKeyFunc, cache.Indexers{cache.NamespaceIndex: cache.MetaNamespaceIndexFunc})
}

// lookupsOf builds real client-go listers over indexers holding objs, as
// an informer's cache would.
func lookupsOf(t testing.TB, objs ...runtime.Object) Lookups {
	t.Helper()
	sas, pods, secrets, nodes := newIndexer(), newIndexer(), newIndexer(), newIndexer()
	for _, o := range objs {
		var err error
		switch o.(type) {
		case *corev1.ServiceAccount:
			err = sas.Add(o)
		case *corev1.Pod:
			err = pods.Add(o)
		case *corev1.Secret:
			err = secrets.Add(o)
		case *corev1.Node:
			err = nodes.Add(o)
		default:
			t.Fatalf("lookupsOf: unexpected %T", o)
		}
		if err != nil {
			t.Fatalf("lookupsOf: %v", err)
		}
	}
	return Lookups{
		ServiceAccounts: corelisters.NewServiceAccountLister(sas),
		Pods:            corelisters.NewPodLister(pods),
		Secrets:         corelisters.NewSecretLister(secrets),
		Nodes:           corelisters.NewNodeLister(nodes),
	}
}

func testSA(uid string) *corev1.ServiceAccount {
	return &corev1.ServiceAccount{ObjectMeta: metav1.ObjectMeta{Namespace: "ns1", Name: "builder", UID: types.UID(uid)}}
}

func testPod(uid string) *corev1.Pod {
	return &corev1.Pod{
		ObjectMeta: metav1.ObjectMeta{Namespace: "ns1", Name: "web", UID: types.UID(uid)},
		Spec:       corev1.PodSpec{ServiceAccountName: "builder", NodeName: "node-a"},
	}
}

func testSecret(name, uid string) *corev1.Secret {
	return &corev1.Secret{ObjectMeta: metav1.ObjectMeta{Namespace: "ns1", Name: name, UID: types.UID(uid)}}
}

func testNode(uid string) *corev1.Node {
	return &corev1.Node{ObjectMeta: metav1.ObjectMeta{Name: "node-a", UID: types.UID(uid)}}
}

func deleting[T metav1.Object](o T, at time.Time) T {
	ts := metav1.NewTime(at)
	o.SetDeletionTimestamp(&ts)
	return o
}

func saUser(extra map[string][]string) auth.User {
	return auth.User{
		Name:   "system:serviceaccount:ns1:builder",
		UID:    "sa-uid",
		Groups: []string{"system:serviceaccounts", "system:serviceaccounts:ns1", "system:authenticated"},
		Extra:  extra,
	}
}

// jti extracts the jti claim of a token, for the expected credential id.
func jti(t *testing.T, token string) string {
	t.Helper()
	j, err := parseJWS(token)
	if err != nil {
		t.Fatalf("parsing own token: %v", err)
	}
	var c claims
	if err := json.Unmarshal(j.payload, &c); err != nil {
		t.Fatalf("decoding own claims: %v", err)
	}
	return c.ID
}

// resign replaces a token's payload by edit(claims) keeping the header
// and signature: a forgery.
func tamper(t *testing.T, token string, edit func(map[string]any)) string {
	t.Helper()
	parts := strings.Split(token, ".")
	raw, err := base64.RawURLEncoding.DecodeString(parts[1])
	if err != nil {
		t.Fatal(err)
	}
	var m map[string]any
	if err := json.Unmarshal(raw, &m); err != nil {
		t.Fatal(err)
	}
	edit(m)
	raw, err = json.Marshal(m)
	if err != nil {
		t.Fatal(err)
	}
	return parts[0] + "." + base64.RawURLEncoding.EncodeToString(raw) + "." + parts[2]
}

func TestAuthenticateServiceAccountTokens(t *testing.T) {
	t.Parallel()
	iss := newTestIssuer(t, "")
	other := newTestIssuer(t, "") // same issuer name, another key
	sa := testSA("sa-uid")
	apiAuds := []string(nil)
	node := &BoundObject{Kind: KindNode, Name: "node-a", UID: "node-uid"}
	pod := &BoundObject{Kind: KindPod, Name: "web", UID: "pod-uid", NodeName: "node-a", NodeUID: "node-uid"}
	secret := &BoundObject{Kind: KindSecret, Name: "bound", UID: "secret-uid"}
	all := []runtime.Object{sa, testPod("pod-uid"), testSecret("bound", "secret-uid"), testNode("node-uid")}

	issue := func(i *Issuer, auds []string, exp time.Duration, b *BoundObject) string {
		tok, gotExp, err := i.Issue(sa, auds, exp, b)
		if err != nil {
			t.Fatalf("Issue: %v", err)
		}
		if want := t0.Add(exp); !gotExp.Equal(want) {
			t.Fatalf("Issue expiry = %v, want %v", gotExp, want)
		}
		return tok
	}
	unbound := issue(iss, apiAuds, time.Hour, nil)
	podTok := issue(iss, apiAuds, time.Hour, pod)
	secretTok := issue(iss, apiAuds, time.Hour, secret)
	nodeTok := issue(iss, apiAuds, time.Hour, node)
	vaultTok := issue(iss, []string{"vault"}, time.Hour, nil)

	legacySecret := &corev1.Secret{
		ObjectMeta: metav1.ObjectMeta{Namespace: "ns1", Name: "builder-token-x", UID: "legacy-uid",
			Annotations: map[string]string{corev1.ServiceAccountNameKey: "builder", corev1.ServiceAccountUIDKey: "sa-uid"}},
		Type: corev1.SecretTypeServiceAccountToken,
	}
	legacy, err := iss.LegacyToken(sa, legacySecret)
	if err != nil {
		t.Fatalf("LegacyToken: %v", err)
	}
	legacySecret.Data = map[string][]byte{"token": []byte(legacy)}
	legacyOtherData := legacySecret.DeepCopy()
	legacyOtherData.Data["token"] = []byte("something else")

	tests := []struct {
		name      string
		token     string
		objs      []runtime.Object
		noNodes   bool
		now       time.Time
		audiences []string
		want      auth.User
		wantAuds  []string
		wantOK    bool
	}{
		{name: "unbound", token: unbound, objs: all, wantOK: true,
			want:     saUser(map[string][]string{ExtraCredentialID: {"JTI=" + jti(t, unbound)}}),
			wantAuds: []string{"https://kubernetes.default.svc.cluster.local", "skiff"}},
		{name: "pod bound", token: podTok, objs: all, wantOK: true,
			want: saUser(map[string][]string{
				ExtraCredentialID: {"JTI=" + jti(t, podTok)},
				ExtraPodName:      {"web"}, ExtraPodUID: {"pod-uid"},
				ExtraNodeName: {"node-a"}, ExtraNodeUID: {"node-uid"},
			}),
			wantAuds: []string{"https://kubernetes.default.svc.cluster.local", "skiff"}},
		{name: "secret bound", token: secretTok, objs: all, wantOK: true,
			want:     saUser(map[string][]string{ExtraCredentialID: {"JTI=" + jti(t, secretTok)}}),
			wantAuds: []string{"https://kubernetes.default.svc.cluster.local", "skiff"}},
		{name: "node bound", token: nodeTok, objs: all, wantOK: true,
			want: saUser(map[string][]string{
				ExtraCredentialID: {"JTI=" + jti(t, nodeTok)},
				ExtraNodeName:     {"node-a"}, ExtraNodeUID: {"node-uid"},
			}),
			wantAuds: []string{"https://kubernetes.default.svc.cluster.local", "skiff"}},
		{name: "node bound without a node lister", token: nodeTok, objs: all, noNodes: true},
		{name: "requested audience subset", token: unbound, objs: all, audiences: []string{"skiff", "x"}, wantOK: true,
			want:     saUser(map[string][]string{ExtraCredentialID: {"JTI=" + jti(t, unbound)}}),
			wantAuds: []string{"skiff"}},
		{name: "token for another audience", token: vaultTok, objs: all},
		{name: "token for another audience, reviewed for it", token: vaultTok, objs: all, audiences: []string{"vault"}, wantOK: true,
			want:     saUser(map[string][]string{ExtraCredentialID: {"JTI=" + jti(t, vaultTok)}}),
			wantAuds: []string{"vault"}},
		{name: "api token reviewed for another audience", token: unbound, objs: all, audiences: []string{"vault"}},
		{name: "expired within leeway", token: unbound, objs: all, now: t0.Add(time.Hour + 59*time.Second), wantOK: true,
			want:     saUser(map[string][]string{ExtraCredentialID: {"JTI=" + jti(t, unbound)}}),
			wantAuds: []string{"https://kubernetes.default.svc.cluster.local", "skiff"}},
		{name: "expired", token: unbound, objs: all, now: t0.Add(time.Hour + 61*time.Second)},
		{name: "not yet valid", token: unbound, objs: all, now: t0.Add(-61 * time.Second)},
		{name: "signed with another key", token: issue(other, apiAuds, time.Hour, nil), objs: all},
		{name: "tampered subject", token: tamper(t, unbound, func(m map[string]any) { m["sub"] = "system:serviceaccount:kube-system:admin" }), objs: all},
		{name: "tampered expiry", token: tamper(t, unbound, func(m map[string]any) { m["exp"] = t0.Add(1000 * time.Hour).Unix() }), objs: all, now: t0.Add(2 * time.Hour)},
		{name: "tampered signature", token: unbound[:len(unbound)-4] + "AAAA", objs: all},
		{name: "alg none", token: func() string {
			p := strings.Split(unbound, ".")
			return base64.RawURLEncoding.EncodeToString([]byte(`{"alg":"none"}`)) + "." + p[1] + "."
		}(), objs: all},
		{name: "foreign issuer", token: tamper(t, unbound, func(m map[string]any) { m["iss"] = "https://accounts.example.com" }), objs: all},
		{name: "service account deleted", token: unbound, objs: []runtime.Object{testPod("pod-uid")}},
		{name: "service account recreated", token: unbound, objs: []runtime.Object{testSA("sa-uid-2")}},
		{name: "service account being deleted", token: unbound, objs: []runtime.Object{deleting(testSA("sa-uid"), t0.Add(-2*time.Minute))}},
		{name: "bound pod deleted", token: podTok, objs: []runtime.Object{sa}},
		{name: "bound pod recreated with another UID", token: podTok, objs: []runtime.Object{sa, testPod("pod-uid-2")}},
		{name: "bound pod terminating, within grace", token: podTok, objs: []runtime.Object{sa, deleting(testPod("pod-uid"), t0.Add(30*time.Second))}, wantOK: true,
			want: saUser(map[string][]string{
				ExtraCredentialID: {"JTI=" + jti(t, podTok)},
				ExtraPodName:      {"web"}, ExtraPodUID: {"pod-uid"},
				ExtraNodeName: {"node-a"}, ExtraNodeUID: {"node-uid"},
			}),
			wantAuds: []string{"https://kubernetes.default.svc.cluster.local", "skiff"}},
		{name: "bound pod deleted long ago", token: podTok, objs: []runtime.Object{sa, deleting(testPod("pod-uid"), t0.Add(-2*time.Minute))}},
		{name: "bound secret deleted", token: secretTok, objs: []runtime.Object{sa}},
		{name: "bound secret recreated", token: secretTok, objs: []runtime.Object{sa, testSecret("bound", "secret-uid-2")}},
		{name: "bound node deleted", token: nodeTok, objs: []runtime.Object{sa}},
		{name: "legacy", token: legacy, objs: []runtime.Object{sa, legacySecret}, wantOK: true,
			want:     saUser(nil),
			wantAuds: []string{"https://kubernetes.default.svc.cluster.local", "skiff"}},
		{name: "legacy long after issue", token: legacy, objs: []runtime.Object{sa, legacySecret}, now: t0.Add(10 * 365 * 24 * time.Hour), wantOK: true,
			want:     saUser(nil),
			wantAuds: []string{"https://kubernetes.default.svc.cluster.local", "skiff"}},
		{name: "legacy secret deleted", token: legacy, objs: []runtime.Object{sa}},
		{name: "legacy secret being deleted", token: legacy, objs: []runtime.Object{sa, deleting(legacySecret.DeepCopy(), t0.Add(time.Minute))}},
		{name: "legacy secret holds another token", token: legacy, objs: []runtime.Object{sa, legacyOtherData}},
		{name: "legacy service account recreated", token: legacy, objs: []runtime.Object{testSA("sa-uid-2"), legacySecret}},
		{name: "legacy with audience", token: tamper(t, legacy, func(m map[string]any) { m["aud"] = []string{"skiff"} }), objs: []runtime.Object{sa, legacySecret}},
		{name: "empty", token: "", objs: all},
		{name: "bootstrap token", token: "abcdef.0123456789abcdef", objs: all},
		{name: "three garbage parts", token: "a.b.c", objs: all},
		{name: "bad base64", token: "!!.??.**", objs: all},
		{name: "header not JSON", token: base64.RawURLEncoding.EncodeToString([]byte("[")) + "." + strings.Split(unbound, ".")[1] + "." + strings.Split(unbound, ".")[2], objs: all},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			i := *iss
			now := tc.now
			if now.IsZero() {
				now = t0
			}
			i.Clock = func() time.Time { return now }
			i.Logger = testLogger(t)
			l := lookupsOf(t, tc.objs...)
			if tc.noNodes {
				l.Nodes = nil
			}
			a := i.Authenticator(l)
			got, auds, ok, err := a.AuthenticateTokenFor(context.Background(), tc.token, tc.audiences)
			if err != nil {
				t.Fatalf("AuthenticateTokenFor error: %v", err)
			}
			if ok != tc.wantOK {
				t.Fatalf("authenticated = %v, want %v", ok, tc.wantOK)
			}
			if diff := cmp.Diff(tc.want, got); diff != "" {
				t.Errorf("user (-want +got):\n%s", diff)
			}
			if diff := cmp.Diff(tc.wantAuds, auds); diff != "" {
				t.Errorf("audiences (-want +got):\n%s", diff)
			}
			if tc.audiences == nil {
				u2, ok2, err := a.AuthenticateToken(context.Background(), tc.token)
				if err != nil || ok2 != ok || !cmp.Equal(u2, got) {
					t.Errorf("AuthenticateToken = %v, %v, %v; want AuthenticateTokenFor's answer", u2, ok2, err)
				}
			}
		})
	}
}

func TestNewIssuerReusesKey(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	first := newTestIssuer(t, dir)
	tok, _, err := first.Issue(testSA("sa-uid"), nil, time.Hour, nil)
	if err != nil {
		t.Fatal(err)
	}
	second := newTestIssuer(t, dir) // as after a restart
	if !first.PublicKey().Equal(second.PublicKey()) {
		t.Fatalf("second NewIssuer on the same dir made a new key")
	}
	_, ok, err := second.Authenticator(lookupsOf(t, testSA("sa-uid"))).AuthenticateToken(context.Background(), tok)
	if err != nil || !ok {
		t.Fatalf("token from before the restart: ok=%v err=%v, want accepted", ok, err)
	}
}

func TestIssueRejectsBadInput(t *testing.T) {
	t.Parallel()
	iss := newTestIssuer(t, "")
	tests := []struct {
		name  string
		sa    *corev1.ServiceAccount
		exp   time.Duration
		bound *BoundObject
	}{
		{name: "nil service account", exp: time.Hour},
		{name: "no namespace", sa: &corev1.ServiceAccount{ObjectMeta: metav1.ObjectMeta{Name: "x"}}, exp: time.Hour},
		{name: "zero expiration", sa: testSA("u"), exp: 0},
		{name: "unknown kind", sa: testSA("u"), exp: time.Hour, bound: &BoundObject{Kind: "ConfigMap", Name: "c", UID: "u"}},
		{name: "bound without UID", sa: testSA("u"), exp: time.Hour, bound: &BoundObject{Kind: KindPod, Name: "p"}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			if tok, _, err := iss.Issue(tc.sa, nil, tc.exp, tc.bound); err == nil {
				t.Errorf("Issue = %q, nil; want an error", tok)
			}
		})
	}
}

func TestTokenClaimsAsUpstream(t *testing.T) {
	t.Parallel()
	iss := newTestIssuer(t, "")
	tok, _, err := iss.Issue(testSA("sa-uid"), []string{"a"}, time.Hour,
		&BoundObject{Kind: KindPod, Name: "web", UID: "pod-uid", NodeName: "node-a", NodeUID: "node-uid"})
	if err != nil {
		t.Fatal(err)
	}
	parts := strings.Split(tok, ".")
	hdr, _ := base64.RawURLEncoding.DecodeString(parts[0])
	var h map[string]any
	if err := json.Unmarshal(hdr, &h); err != nil {
		t.Fatal(err)
	}
	if h["alg"] != "ES256" || h["kid"] == "" {
		t.Errorf("header = %v, want alg ES256 and a kid", h)
	}
	raw, _ := base64.RawURLEncoding.DecodeString(parts[1])
	var got map[string]any
	if err := json.Unmarshal(raw, &got); err != nil {
		t.Fatal(err)
	}
	want := map[string]any{
		"iss": "https://kubernetes.default.svc.cluster.local",
		"sub": "system:serviceaccount:ns1:builder",
		"aud": []any{"a"},
		"exp": float64(t0.Add(time.Hour).Unix()),
		"iat": float64(t0.Unix()),
		"nbf": float64(t0.Unix()),
		"jti": got["jti"],
		"kubernetes.io": map[string]any{
			"namespace":      "ns1",
			"serviceaccount": map[string]any{"name": "builder", "uid": "sa-uid"},
			"pod":            map[string]any{"name": "web", "uid": "pod-uid"},
			"node":           map[string]any{"name": "node-a", "uid": "node-uid"},
		},
	}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("claims (-want +got):\n%s", diff)
	}
	if s, _ := got["jti"].(string); len(s) != 36 {
		t.Errorf("jti = %v, want a UUID", got["jti"])
	}
}
