package apiserver

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"net/http/httptest"
	"reflect"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
	"github.com/google/go-cmp/cmp/cmpopts"
	authenticationv1 "k8s.io/api/authentication/v1"
	authenticationv1alpha1 "k8s.io/api/authentication/v1alpha1"
	authenticationv1beta1 "k8s.io/api/authentication/v1beta1"
	authorizationv1 "k8s.io/api/authorization/v1"
	rbacv1 "k8s.io/api/rbac/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/runtime/serializer"
	clientgoscheme "k8s.io/client-go/kubernetes/scheme"
	"sigs.k8s.io/yaml"

	"github.com/skiff-dev/skiff/internal/auth"
)

// reviewUsers are the bearer tokens reviewTokens knows.
var reviewUsers = map[string]auth.User{
	"admin-token": {Name: "admin", Groups: []string{auth.SystemMasters}},
	"alice-token": {Name: "alice", UID: "u-1", Groups: []string{"devs"}, Extra: map[string][]string{"scopes": {"a", "b"}}},
}

// reviewTokens authenticates the tokens of reviewUsers; "broken-token" is
// an error.
type reviewTokens struct{}

func (reviewTokens) AuthenticateToken(_ context.Context, token string) (auth.User, bool, error) {
	if token == "broken-token" {
		return auth.User{}, false, errors.New("token signature is invalid")
	}
	u, ok := reviewUsers[token]
	return u, ok, nil
}

// reviewAuthorizer allows creating reviews, get pods in dev, get /healthz
// and discovery;
// denies deletes; fails on secrets. Its reason describes the attributes
// it was asked about, so that tests see the conversion.
type reviewAuthorizer struct{}

func (reviewAuthorizer) Authorize(_ context.Context, a auth.Attributes) (auth.Decision, string, error) {
	reason := reviewDescribe(a)
	switch {
	case a.ResourceRequest && a.Verb == "create" && strings.HasSuffix(a.APIGroup, ".k8s.io") && strings.HasSuffix(a.Resource, "reviews"):
		return auth.Allow, "", nil
	case a.ResourceRequest && a.Resource == "pods" && a.Verb == "get" && a.Namespace == "dev":
		return auth.Allow, reason, nil
	case !a.ResourceRequest && a.Path == "/healthz" && a.Verb == "get":
		return auth.Allow, reason, nil
	case !a.ResourceRequest && a.Verb == "get" && (strings.HasPrefix(a.Path, "/api") || strings.HasPrefix(a.Path, "/openapi")):
		return auth.Allow, "", nil // discovery, for kubectl
	case a.Verb == "delete":
		return auth.Deny, reason, nil
	case a.Resource == "secrets":
		return auth.NoOpinion, "", errors.New("secrets backend down")
	}
	return auth.NoOpinion, reason, nil
}

func reviewDescribe(a auth.Attributes) string {
	if !a.ResourceRequest {
		return fmt.Sprintf("%s%v %s %s", a.User.Name, a.User.Groups, a.Verb, a.Path)
	}
	return fmt.Sprintf("%s%v %s ns=%s %s/%s %s/%s name=%s", a.User.Name, a.User.Groups, a.Verb, a.Namespace,
		a.APIGroup, a.APIVersion, a.Resource, a.Subresource, a.Name)
}

// reviewRules holds one resource and one non-resource rule everywhere;
// namespace "broken" is incomplete.
type reviewRules struct{}

func (reviewRules) RulesFor(_ auth.User, namespace string) ([]rbacv1.PolicyRule, []rbacv1.PolicyRule, bool) {
	return []rbacv1.PolicyRule{{Verbs: []string{"get", "list"}, APIGroups: []string{""}, Resources: []string{"pods"}, ResourceNames: []string{"web"}}},
		[]rbacv1.PolicyRule{{Verbs: []string{"get"}, NonResourceURLs: []string{"/healthz"}}},
		namespace == "broken"
}

// newReviewServer builds a server with no stores (the reviews need none).
func newReviewServer(t *testing.T, opts ...envOption) *Server {
	t.Helper()
	scheme := runtime.NewScheme()
	if err := clientgoscheme.AddToScheme(scheme); err != nil {
		t.Fatal(err)
	}
	cfg := Config{Scheme: scheme, Authenticator: reviewTokens{}, Authorizer: reviewAuthorizer{}, Rules: reviewRules{}}
	for _, o := range opts {
		o(&cfg)
	}
	s, err := New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	return s
}

// serveReviewRequest sends one request to s's handler.
func serveReviewRequest(t *testing.T, s *Server, method, path, token, body string, header map[string]string) *httptest.ResponseRecorder {
	t.Helper()
	r := httptest.NewRequest(method, path, strings.NewReader(body))
	if body != "" {
		r.Header.Set("Content-Type", "application/json")
	}
	if token != "" {
		r.Header.Set("Authorization", "Bearer "+token)
	}
	for k, v := range header {
		r.Header.Set(k, v)
	}
	w := httptest.NewRecorder()
	s.Handler().ServeHTTP(w, r)
	return w
}

const (
	ssarPath = "/apis/authorization.k8s.io/v1/selfsubjectaccessreviews"
	sarPath  = "/apis/authorization.k8s.io/v1/subjectaccessreviews"
	lsarPath = "/apis/authorization.k8s.io/v1/namespaces/dev/localsubjectaccessreviews"
	ssrrPath = "/apis/authorization.k8s.io/v1/selfsubjectrulesreviews"
	trPath   = "/apis/authentication.k8s.io/v1/tokenreviews"
)

func TestReviews(t *testing.T) {
	t.Parallel()
	s := newReviewServer(t)
	ssar := func(status authorizationv1.SubjectAccessReviewStatus, ra *authorizationv1.ResourceAttributes, nra *authorizationv1.NonResourceAttributes) *authorizationv1.SelfSubjectAccessReview {
		return &authorizationv1.SelfSubjectAccessReview{
			TypeMeta: metav1.TypeMeta{APIVersion: "authorization.k8s.io/v1", Kind: "SelfSubjectAccessReview"},
			Spec:     authorizationv1.SelfSubjectAccessReviewSpec{ResourceAttributes: ra, NonResourceAttributes: nra},
			Status:   status,
		}
	}
	getPodsDev := &authorizationv1.ResourceAttributes{Namespace: "dev", Verb: "get", Resource: "pods", Name: "web"}
	userInfo := func(name, uid string, groups []string, extra map[string]authenticationv1.ExtraValue) authenticationv1.UserInfo {
		return authenticationv1.UserInfo{Username: name, UID: uid, Groups: groups, Extra: extra}
	}
	alice := userInfo("alice", "u-1", []string{"devs", auth.AllAuthenticated}, map[string]authenticationv1.ExtraValue{"scopes": {"a", "b"}})
	for _, tc := range []struct {
		name         string
		method, path string
		token, body  string
		wantCode     int
		// want is the decoded answer for 201, else wantMsg is in the body.
		want    any
		wantMsg string
	}{
		{
			name: "ssar system:masters allowed without asking", method: "POST", path: ssarPath, token: "admin-token",
			body:     `{"spec":{"resourceAttributes":{"verb":"delete","resource":"nodes"}}}`,
			wantCode: 201,
			want:     ssar(authorizationv1.SubjectAccessReviewStatus{Allowed: true}, &authorizationv1.ResourceAttributes{Verb: "delete", Resource: "nodes"}, nil),
		},
		{
			name: "ssar allowed, empty version matches all", method: "POST", path: ssarPath, token: "alice-token",
			body:     `{"spec":{"resourceAttributes":{"namespace":"dev","verb":"get","resource":"pods","name":"web"}}}`,
			wantCode: 201,
			want: ssar(authorizationv1.SubjectAccessReviewStatus{Allowed: true,
				Reason: "alice[devs system:authenticated] get ns=dev /* pods/ name=web"}, getPodsDev, nil),
		},
		{
			name: "ssar denied", method: "POST", path: ssarPath, token: "alice-token",
			body:     `{"spec":{"resourceAttributes":{"namespace":"dev","verb":"delete","group":"apps","version":"v1","resource":"deployments","subresource":"scale"}}}`,
			wantCode: 201,
			want: ssar(authorizationv1.SubjectAccessReviewStatus{Denied: true,
				Reason: "alice[devs system:authenticated] delete ns=dev apps/v1 deployments/scale name="},
				&authorizationv1.ResourceAttributes{Namespace: "dev", Verb: "delete", Group: "apps", Version: "v1", Resource: "deployments", Subresource: "scale"}, nil),
		},
		{
			name: "ssar evaluation error", method: "POST", path: ssarPath, token: "alice-token",
			body:     `{"spec":{"resourceAttributes":{"verb":"get","resource":"secrets"}}}`,
			wantCode: 201,
			want: ssar(authorizationv1.SubjectAccessReviewStatus{EvaluationError: "secrets backend down"},
				&authorizationv1.ResourceAttributes{Verb: "get", Resource: "secrets"}, nil),
		},
		{
			name: "ssar non-resource", method: "POST", path: ssarPath, token: "alice-token",
			body:     `{"spec":{"nonResourceAttributes":{"verb":"get","path":"/healthz"}}}`,
			wantCode: 201,
			want: ssar(authorizationv1.SubjectAccessReviewStatus{Allowed: true, Reason: "alice[devs system:authenticated] get /healthz"},
				nil, &authorizationv1.NonResourceAttributes{Verb: "get", Path: "/healthz"}),
		},
		{
			name: "ssar needs attributes", method: "POST", path: ssarPath, token: "alice-token", body: `{"spec":{}}`,
			wantCode: 422, wantMsg: "spec.resourceAttributes: Invalid value",
		},
		{
			name: "ssar not both attributes", method: "POST", path: ssarPath, token: "alice-token",
			body:     `{"spec":{"resourceAttributes":{"verb":"get"},"nonResourceAttributes":{"verb":"get","path":"/"}}}`,
			wantCode: 422, wantMsg: "spec.nonResourceAttributes: Invalid value",
		},
		{
			name: "ssar metadata must be empty", method: "POST", path: ssarPath, token: "alice-token",
			body:     `{"metadata":{"name":"x"},"spec":{"resourceAttributes":{"verb":"get"}}}`,
			wantCode: 422, wantMsg: "metadata: Invalid value",
		},
		{
			name: "ssar wrong kind", method: "POST", path: ssarPath, token: "alice-token",
			body:     `{"apiVersion":"authorization.k8s.io/v1","kind":"SubjectAccessReview","spec":{}}`,
			wantCode: 400, wantMsg: "SelfSubjectAccessReview",
		},
		{
			name: "ssar only create", method: "GET", path: ssarPath, token: "admin-token",
			wantCode: 405,
		},
		{
			name: "ssar is cluster-scoped", method: "POST", path: "/apis/authorization.k8s.io/v1/namespaces/dev/selfsubjectaccessreviews", token: "alice-token",
			body: `{"spec":{"resourceAttributes":{"verb":"get"}}}`, wantCode: 404,
		},
		{
			name: "ssar has no names", method: "POST", path: ssarPath + "/x", token: "alice-token",
			body: `{"spec":{"resourceAttributes":{"verb":"get"}}}`, wantCode: 404,
		},
		{
			name: "ssar dry run answered alike", method: "POST", path: ssarPath + "?dryRun=All", token: "admin-token",
			body:     `{"spec":{"resourceAttributes":{"verb":"delete","resource":"nodes"}}}`,
			wantCode: 201,
			want:     ssar(authorizationv1.SubjectAccessReviewStatus{Allowed: true}, &authorizationv1.ResourceAttributes{Verb: "delete", Resource: "nodes"}, nil),
		},
		{
			name: "ssar bad dry run", method: "POST", path: ssarPath + "?dryRun=Some", token: "admin-token",
			body:     `{"spec":{"resourceAttributes":{"verb":"delete","resource":"nodes"}}}`,
			wantCode: 422, wantMsg: "dryRun",
		},
		{
			name: "sar asks about the spec's user", method: "POST", path: sarPath, token: "admin-token",
			body:     `{"spec":{"user":"bob","groups":["g1"],"uid":"7","resourceAttributes":{"namespace":"dev","verb":"get","resource":"pods"}}}`,
			wantCode: 201,
			want: &authorizationv1.SubjectAccessReview{
				TypeMeta: metav1.TypeMeta{APIVersion: "authorization.k8s.io/v1", Kind: "SubjectAccessReview"},
				Spec: authorizationv1.SubjectAccessReviewSpec{User: "bob", Groups: []string{"g1"}, UID: "7",
					ResourceAttributes: &authorizationv1.ResourceAttributes{Namespace: "dev", Verb: "get", Resource: "pods"}},
				Status: authorizationv1.SubjectAccessReviewStatus{Allowed: true, Reason: "bob[g1] get ns=dev /* pods/ name="},
			},
		},
		{
			name: "sar for system:masters", method: "POST", path: sarPath, token: "admin-token",
			body:     `{"spec":{"groups":["system:masters"],"nonResourceAttributes":{"verb":"post","path":"/x"}}}`,
			wantCode: 201,
			want: &authorizationv1.SubjectAccessReview{
				TypeMeta: metav1.TypeMeta{APIVersion: "authorization.k8s.io/v1", Kind: "SubjectAccessReview"},
				Spec: authorizationv1.SubjectAccessReviewSpec{Groups: []string{"system:masters"},
					NonResourceAttributes: &authorizationv1.NonResourceAttributes{Verb: "post", Path: "/x"}},
				Status: authorizationv1.SubjectAccessReviewStatus{Allowed: true},
			},
		},
		{
			name: "sar needs a subject", method: "POST", path: sarPath, token: "admin-token",
			body:     `{"spec":{"resourceAttributes":{"verb":"get"}}}`,
			wantCode: 422, wantMsg: "spec.user: Invalid value",
		},
		{
			name: "lsar in its namespace", method: "POST", path: lsarPath, token: "admin-token",
			body:     `{"spec":{"user":"bob","resourceAttributes":{"namespace":"dev","verb":"delete","resource":"pods"}}}`,
			wantCode: 201,
			want: &authorizationv1.LocalSubjectAccessReview{
				TypeMeta:   metav1.TypeMeta{APIVersion: "authorization.k8s.io/v1", Kind: "LocalSubjectAccessReview"},
				ObjectMeta: metav1.ObjectMeta{Namespace: "dev"},
				Spec: authorizationv1.SubjectAccessReviewSpec{User: "bob",
					ResourceAttributes: &authorizationv1.ResourceAttributes{Namespace: "dev", Verb: "delete", Resource: "pods"}},
				Status: authorizationv1.SubjectAccessReviewStatus{Denied: true, Reason: "bob[] delete ns=dev /* pods/ name="},
			},
		},
		{
			name: "lsar namespace must match the URL's", method: "POST", path: lsarPath, token: "admin-token",
			body:     `{"spec":{"user":"bob","resourceAttributes":{"namespace":"prod","verb":"get","resource":"pods"}}}`,
			wantCode: 422, wantMsg: `spec.resourceAttributes.namespace: Invalid value: \"prod\": must match metadata.namespace`,
		},
		{
			name: "lsar no non-resource attributes", method: "POST", path: lsarPath, token: "admin-token",
			body:     `{"spec":{"user":"bob","nonResourceAttributes":{"verb":"get","path":"/"}}}`,
			wantCode: 422, wantMsg: "spec.nonResourceAttributes: Invalid value",
		},
		{
			name: "lsar body namespace differs", method: "POST", path: lsarPath, token: "admin-token",
			body:     `{"metadata":{"namespace":"prod"},"spec":{"user":"bob","resourceAttributes":{"namespace":"prod","verb":"get"}}}`,
			wantCode: 400, wantMsg: "does not match the namespace",
		},
		{
			name: "lsar is namespaced", method: "POST", path: "/apis/authorization.k8s.io/v1/localsubjectaccessreviews", token: "admin-token",
			body: `{"spec":{"user":"bob","resourceAttributes":{"verb":"get"}}}`, wantCode: 404,
		},
		{
			name: "ssrr lists the rules", method: "POST", path: ssrrPath, token: "alice-token",
			body:     `{"spec":{"namespace":"dev"}}`,
			wantCode: 201,
			want: &authorizationv1.SelfSubjectRulesReview{
				TypeMeta: metav1.TypeMeta{APIVersion: "authorization.k8s.io/v1", Kind: "SelfSubjectRulesReview"},
				Status: authorizationv1.SubjectRulesReviewStatus{
					ResourceRules:    []authorizationv1.ResourceRule{{Verbs: []string{"get", "list"}, APIGroups: []string{""}, Resources: []string{"pods"}, ResourceNames: []string{"web"}}},
					NonResourceRules: []authorizationv1.NonResourceRule{{Verbs: []string{"get"}, NonResourceURLs: []string{"/healthz"}}},
				},
			},
		},
		{
			name: "ssrr incomplete", method: "POST", path: ssrrPath, token: "alice-token",
			body:     `{"spec":{"namespace":"broken"}}`,
			wantCode: 201,
			want: &authorizationv1.SelfSubjectRulesReview{
				TypeMeta: metav1.TypeMeta{APIVersion: "authorization.k8s.io/v1", Kind: "SelfSubjectRulesReview"},
				Status: authorizationv1.SubjectRulesReviewStatus{
					ResourceRules:    []authorizationv1.ResourceRule{{Verbs: []string{"get", "list"}, APIGroups: []string{""}, Resources: []string{"pods"}, ResourceNames: []string{"web"}}},
					NonResourceRules: []authorizationv1.NonResourceRule{{Verbs: []string{"get"}, NonResourceURLs: []string{"/healthz"}}},
					Incomplete:       true,
				},
			},
		},
		{
			name: "ssrr needs a namespace", method: "POST", path: ssrrPath, token: "alice-token", body: `{"spec":{}}`,
			wantCode: 400, wantMsg: "no namespace on request",
		},
		{
			name: "tokenreview authenticates", method: "POST", path: trPath, token: "admin-token",
			body:     `{"spec":{"token":"alice-token"}}`,
			wantCode: 201,
			want: &authenticationv1.TokenReview{
				TypeMeta: metav1.TypeMeta{APIVersion: "authentication.k8s.io/v1", Kind: "TokenReview"},
				Spec:     authenticationv1.TokenReviewSpec{Token: "alice-token"},
				Status:   authenticationv1.TokenReviewStatus{Authenticated: true, User: alice},
			},
		},
		{
			name: "tokenreview unknown token", method: "POST", path: trPath, token: "admin-token",
			body:     `{"spec":{"token":"nobody"}}`,
			wantCode: 201,
			want: &authenticationv1.TokenReview{
				TypeMeta: metav1.TypeMeta{APIVersion: "authentication.k8s.io/v1", Kind: "TokenReview"},
				Spec:     authenticationv1.TokenReviewSpec{Token: "nobody"},
			},
		},
		{
			name: "tokenreview invalid token", method: "POST", path: trPath, token: "admin-token",
			body:     `{"spec":{"token":"broken-token"}}`,
			wantCode: 201,
			want: &authenticationv1.TokenReview{
				TypeMeta: metav1.TypeMeta{APIVersion: "authentication.k8s.io/v1", Kind: "TokenReview"},
				Spec:     authenticationv1.TokenReviewSpec{Token: "broken-token"},
				Status:   authenticationv1.TokenReviewStatus{Error: "token signature is invalid"},
			},
		},
		{
			name: "tokenreview needs a token", method: "POST", path: trPath, token: "admin-token", body: `{"spec":{}}`,
			wantCode: 400, wantMsg: "token is required",
		},
		{
			name: "selfsubjectreview v1", method: "POST", path: "/apis/authentication.k8s.io/v1/selfsubjectreviews", token: "alice-token",
			body:     `{}`,
			wantCode: 201,
			want: &authenticationv1.SelfSubjectReview{
				TypeMeta: metav1.TypeMeta{APIVersion: "authentication.k8s.io/v1", Kind: "SelfSubjectReview"},
				Status:   authenticationv1.SelfSubjectReviewStatus{UserInfo: alice},
			},
		},
		{
			name: "selfsubjectreview v1beta1 (kubectl 1.27)", method: "POST", path: "/apis/authentication.k8s.io/v1beta1/selfsubjectreviews", token: "admin-token",
			body:     `{"apiVersion":"authentication.k8s.io/v1beta1","kind":"SelfSubjectReview"}`,
			wantCode: 201,
			want: &authenticationv1beta1.SelfSubjectReview{
				TypeMeta: metav1.TypeMeta{APIVersion: "authentication.k8s.io/v1beta1", Kind: "SelfSubjectReview"},
				Status: authenticationv1beta1.SelfSubjectReviewStatus{UserInfo: userInfo("admin", "",
					[]string{auth.SystemMasters, auth.AllAuthenticated}, map[string]authenticationv1.ExtraValue{})},
			},
		},
		{
			name: "selfsubjectreview v1alpha1", method: "POST", path: "/apis/authentication.k8s.io/v1alpha1/selfsubjectreviews", token: "admin-token",
			body:     `{}`,
			wantCode: 201,
			want: &authenticationv1alpha1.SelfSubjectReview{
				TypeMeta: metav1.TypeMeta{APIVersion: "authentication.k8s.io/v1alpha1", Kind: "SelfSubjectReview"},
				Status: authenticationv1alpha1.SelfSubjectReviewStatus{UserInfo: userInfo("admin", "",
					[]string{auth.SystemMasters, auth.AllAuthenticated}, map[string]authenticationv1.ExtraValue{})},
			},
		},
		{
			name: "no tokenreviews in v1beta1", method: "POST", path: "/apis/authentication.k8s.io/v1beta1/tokenreviews", token: "admin-token",
			body: `{"spec":{"token":"x"}}`, wantCode: 404,
		},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			w := serveReviewRequest(t, s, tc.method, tc.path, tc.token, tc.body, nil)
			if w.Code != tc.wantCode {
				t.Fatalf("%s %s: code %d, want %d; body:\n%s", tc.method, tc.path, w.Code, tc.wantCode, w.Body)
			}
			if tc.want == nil {
				if !strings.Contains(w.Body.String(), tc.wantMsg) {
					t.Errorf("body lacks %q:\n%s", tc.wantMsg, w.Body)
				}
				return
			}
			got := reflect.New(reflect.TypeOf(tc.want).Elem()).Interface()
			if err := json.Unmarshal(w.Body.Bytes(), got); err != nil {
				t.Fatalf("decoding %s: %v", w.Body, err)
			}
			if diff := cmp.Diff(tc.want, got, cmpopts.IgnoreFields(metav1.ObjectMeta{}, "CreationTimestamp"), cmpopts.EquateEmpty()); diff != "" {
				t.Errorf("answer (-want +got):\n%s", diff)
			}
		})
	}
}

// TestReviewsWithoutAuthConfig checks the answers of a server without an
// authorizer, rule resolver or token authenticator: everything is allowed,
// the rules are incomplete, and tokens are not authenticated.
func TestReviewsWithoutAuthConfig(t *testing.T) {
	t.Parallel()
	s := newReviewServer(t, func(c *Config) { c.Authenticator, c.Authorizer, c.Rules = nil, nil, nil })
	// Without an authenticator, requests come with a client certificate;
	// a context user stands in for it here.
	user := auth.User{Name: "carol", Groups: []string{auth.AllAuthenticated}}
	post := func(path, body string) *httptest.ResponseRecorder {
		r := httptest.NewRequest("POST", path, strings.NewReader(body))
		r.Header.Set("Content-Type", "application/json")
		w := httptest.NewRecorder()
		ri := parseRequestInfo(r)
		s.reviewHandler(ri)(w, r.WithContext(WithUser(r.Context(), user)), ri)
		return w
	}
	for _, tc := range []struct {
		name, path, body string
		want             any
	}{
		{
			name: "access allowed", path: sarPath, body: `{"spec":{"user":"x","resourceAttributes":{"verb":"delete","resource":"nodes"}}}`,
			want: &authorizationv1.SubjectAccessReview{
				TypeMeta: metav1.TypeMeta{APIVersion: "authorization.k8s.io/v1", Kind: "SubjectAccessReview"},
				Spec: authorizationv1.SubjectAccessReviewSpec{User: "x",
					ResourceAttributes: &authorizationv1.ResourceAttributes{Verb: "delete", Resource: "nodes"}},
				Status: authorizationv1.SubjectAccessReviewStatus{Allowed: true},
			},
		},
		{
			name: "rules incomplete", path: ssrrPath, body: `{"spec":{"namespace":"default"}}`,
			want: &authorizationv1.SelfSubjectRulesReview{
				TypeMeta: metav1.TypeMeta{APIVersion: "authorization.k8s.io/v1", Kind: "SelfSubjectRulesReview"},
				Status:   authorizationv1.SubjectRulesReviewStatus{Incomplete: true},
			},
		},
		{
			name: "token not authenticated", path: trPath, body: `{"spec":{"token":"t"}}`,
			want: &authenticationv1.TokenReview{
				TypeMeta: metav1.TypeMeta{APIVersion: "authentication.k8s.io/v1", Kind: "TokenReview"},
				Spec:     authenticationv1.TokenReviewSpec{Token: "t"},
				Status:   authenticationv1.TokenReviewStatus{Error: errNoAuthenticator},
			},
		},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			w := post(tc.path, tc.body)
			if w.Code != http.StatusCreated {
				t.Fatalf("code %d, want 201; body:\n%s", w.Code, w.Body)
			}
			got := reflect.New(reflect.TypeOf(tc.want).Elem()).Interface()
			if err := json.Unmarshal(w.Body.Bytes(), got); err != nil {
				t.Fatalf("decoding %s: %v", w.Body, err)
			}
			if diff := cmp.Diff(tc.want, got, cmpopts.EquateEmpty()); diff != "" {
				t.Errorf("answer (-want +got):\n%s", diff)
			}
		})
	}
}

// TestReviewsContentTypes checks YAML and protobuf requests and answers.
func TestReviewsContentTypes(t *testing.T) {
	t.Parallel()
	s := newReviewServer(t)
	codecs := serializer.NewCodecFactory(s.scheme)
	req := &authorizationv1.SelfSubjectAccessReview{
		TypeMeta: metav1.TypeMeta{APIVersion: "authorization.k8s.io/v1", Kind: "SelfSubjectAccessReview"},
		Spec:     authorizationv1.SelfSubjectAccessReviewSpec{ResourceAttributes: &authorizationv1.ResourceAttributes{Namespace: "dev", Verb: "get", Resource: "pods"}},
	}
	want := req.DeepCopy()
	want.Status = authorizationv1.SubjectAccessReviewStatus{Allowed: true, Reason: "alice[devs system:authenticated] get ns=dev /* pods/ name="}
	for _, mediaType := range []string{runtime.ContentTypeYAML, runtime.ContentTypeProtobuf} {
		t.Run(mediaType, func(t *testing.T) {
			t.Parallel()
			info, ok := runtime.SerializerInfoForMediaType(codecs.SupportedMediaTypes(), mediaType)
			if !ok {
				t.Fatalf("no serializer for %s", mediaType)
			}
			var body strings.Builder
			if mediaType == runtime.ContentTypeYAML {
				b, err := yaml.Marshal(req)
				if err != nil {
					t.Fatal(err)
				}
				body.Write(b)
			} else if err := info.Serializer.Encode(req, &body); err != nil {
				t.Fatal(err)
			}
			w := serveReviewRequest(t, s, "POST", ssarPath, "alice-token", body.String(), map[string]string{"Content-Type": mediaType, "Accept": mediaType})
			if w.Code != http.StatusCreated {
				t.Fatalf("code %d, want 201; body:\n%s", w.Code, w.Body)
			}
			if ct := w.Header().Get("Content-Type"); ct != mediaType {
				t.Errorf("Content-Type %q, want %q", ct, mediaType)
			}
			got := &authorizationv1.SelfSubjectAccessReview{}
			if _, _, err := info.Serializer.Decode(w.Body.Bytes(), nil, got); err != nil {
				t.Fatalf("decoding answer: %v", err)
			}
			if diff := cmp.Diff(want, got, cmpopts.EquateEmpty()); diff != "" {
				t.Errorf("answer (-want +got):\n%s", diff)
			}
		})
	}
}
