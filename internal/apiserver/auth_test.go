package apiserver

import (
	"context"
	"errors"
	"slices"
	"strings"
	"sync"
	"testing"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/skiff-dev/skiff/internal/admission"
	"github.com/skiff-dev/skiff/internal/auth"
)

// fakeTokens knows one token.
type fakeTokens map[string]auth.User

func (f fakeTokens) AuthenticateToken(_ context.Context, token string) (auth.User, bool, error) {
	if u, ok := f[token]; ok {
		return u, true, nil
	}
	if token == "expired" {
		return auth.User{}, false, errors.New("token has expired")
	}
	return auth.User{}, false, nil
}

// fakeAuthz allows what allow says and records what it was asked.
type fakeAuthz struct {
	mu    sync.Mutex
	asked []auth.Attributes
	allow func(a auth.Attributes) bool
}

func (f *fakeAuthz) Authorize(_ context.Context, a auth.Attributes) (auth.Decision, string, error) {
	f.mu.Lock()
	f.asked = append(f.asked, a)
	f.mu.Unlock()
	if f.allow(a) {
		return auth.Allow, "", nil
	}
	return auth.NoOpinion, "", nil
}

func (f *fakeAuthz) last() auth.Attributes {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.asked[len(f.asked)-1]
}

func TestAuthenticationAndAuthorization(t *testing.T) {
	authz := &fakeAuthz{allow: func(a auth.Attributes) bool {
		switch {
		case !a.ResourceRequest:
			return a.Path == "/version" || a.User.Name != auth.Anonymous
		case a.User.Name == "bob":
			return a.Namespace == "team" && (a.Verb == "get" || a.Verb == "list")
		case a.User.Name == "alice":
			return a.Verb == "list" && a.Resource == "configmaps" && a.Name == "one"
		}
		return false
	}}
	tokens := fakeTokens{"bob-token": {Name: "bob", Groups: []string{"devs"}}}
	e := newTestEnv(t, func(c *Config) { c.Authorizer = authz; c.Authenticator = tokens })
	cs := e.clientset(t)
	for _, ns := range []string{"team", "other"} {
		if _, err := cs.CoreV1().Namespaces().Create(context.Background(), &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: ns}}, metav1.CreateOptions{}); err != nil {
			t.Fatal(err)
		}
	}
	bearer := func(tok string) map[string]string { return map[string]string{"Authorization": "Bearer " + tok} }

	tests := []struct {
		name     string
		do       func() (int, string)
		wantCode int
		wantMsg  string
	}{
		{"admin is not asked", func() (int, string) {
			code, _, body := e.do(t, "GET", "/api/v1/namespaces/other/pods", nil, "")
			return code, body
		}, 200, ""},
		{"bearer token reads where allowed", func() (int, string) {
			code, _, body := doWith(t, e.anon, "GET", e.ts.URL+"/api/v1/namespaces/team/pods", bearer("bob-token"), "")
			return code, body
		}, 200, ""},
		{"bearer token refused elsewhere names user, verb and resource", func() (int, string) {
			code, _, body := doWith(t, e.anon, "DELETE", e.ts.URL+"/api/v1/namespaces/team/pods/web", bearer("bob-token"), "")
			return code, body
		}, 403, `pods \"web\" is forbidden: User \"bob\" cannot delete resource \"pods\" in API group \"\" in the namespace \"team\"`},
		{"cluster scope", func() (int, string) {
			code, _, body := doWith(t, e.anon, "GET", e.ts.URL+"/api/v1/nodes", bearer("bob-token"), "")
			return code, body
		}, 403, `User \"bob\" cannot list resource \"nodes\" in API group \"\" at the cluster scope`},
		{"profiles for whom /debug/pprof is allowed", func() (int, string) {
			code, _, body := e.do(t, "GET", "/debug/pprof/heap?debug=1", nil, "")
			return code, body
		}, 200, "heap profile"},
		{"profiles refused to anonymous", func() (int, string) {
			code, _, body := doWith(t, e.anon, "GET", e.ts.URL+"/debug/pprof/", nil, "")
			return code, body
		}, 403, `forbidden: User \"system:anonymous\" cannot get path \"/debug/pprof/\"`},
		{"unknown token is 401, not anonymous", func() (int, string) {
			code, _, body := doWith(t, e.anon, "GET", e.ts.URL+"/version", bearer("nope"), "")
			return code, body
		}, 401, "Unauthorized"},
		{"expired token is 401", func() (int, string) {
			code, _, body := doWith(t, e.anon, "GET", e.ts.URL+"/version", bearer("expired"), "")
			return code, body
		}, 401, "Unauthorized"},
		{"malformed authorization header is 401", func() (int, string) {
			code, _, body := doWith(t, e.anon, "GET", e.ts.URL+"/version", map[string]string{"Authorization": "Basic Ym9iOmJvYg=="}, "")
			return code, body
		}, 401, "Unauthorized"},
		{"anonymous reaches what the authorizer grants", func() (int, string) {
			code, _, body := doWith(t, e.anon, "GET", e.ts.URL+"/version", nil, "")
			return code, body
		}, 200, ""},
		{"anonymous is refused the rest with 403", func() (int, string) {
			code, _, body := doWith(t, e.anon, "GET", e.ts.URL+"/api", nil, "")
			return code, body
		}, 403, `forbidden: User \"system:anonymous\" cannot get path \"/api\"`},
		{"a certificate user is authorized too", func() (int, string) {
			code, _, body := doWith(t, e.user, "GET", e.ts.URL+"/api/v1/namespaces/team/configmaps", nil, "")
			return code, body
		}, 403, `User \"alice\" cannot list resource \"configmaps\"`},
		{"a list of one name by field selector is authorized as that name", func() (int, string) {
			code, _, body := doWith(t, e.user, "GET", e.ts.URL+"/api/v1/namespaces/team/configmaps?fieldSelector=metadata.name%3Done", nil, "")
			return code, body
		}, 200, ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			code, body := tt.do()
			if code != tt.wantCode || !strings.Contains(body, tt.wantMsg) {
				t.Errorf("got %d %s\nwant %d containing %s", code, body, tt.wantCode, tt.wantMsg)
			}
		})
	}

	// The attributes of a namespace name the namespace itself; a
	// subresource is carried.
	doWith(t, e.anon, "GET", e.ts.URL+"/api/v1/namespaces/other", bearer("bob-token"), "")
	if a := authz.last(); a.Namespace != "other" || a.Name != "other" || a.Resource != "namespaces" {
		t.Errorf("namespace get attributes = %+v", a)
	}
	doWith(t, e.anon, "GET", e.ts.URL+"/api/v1/namespaces/team/pods/web/log", bearer("bob-token"), "")
	if a := authz.last(); a.Subresource != "log" || a.Name != "web" || a.Verb != "get" {
		t.Errorf("pods/log attributes = %+v", a)
	}
}

// denyPods refuses pods named "bad" and labels the others.
type denyPods struct {
	mu    sync.Mutex
	calls []string
}

func (d *denyPods) Mutate(_ context.Context, r *admission.Request) error {
	d.record("mutate", r)
	if p, ok := r.Object.(*corev1.Pod); ok {
		if p.Labels == nil {
			p.Labels = map[string]string{}
		}
		p.Labels["admitted"] = "yes"
	}
	return nil
}

func (d *denyPods) Validate(_ context.Context, r *admission.Request) error {
	d.record("validate", r)
	r.AddWarning("looked at " + r.Name)
	if r.Name == "bad" {
		return apierrors.NewForbidden(r.Resource.GroupResource(), r.Name, errors.New("bad pods are not allowed"))
	}
	return nil
}

// ValidateDelete refuses deleting pods labelled x=y.
func (d *denyPods) ValidateDelete(_ context.Context, r *admission.Request) error {
	d.record("delete", r)
	if p, ok := r.OldObject.(*corev1.Pod); ok && p.Labels["x"] == "y" && r.Object == nil {
		return apierrors.NewForbidden(r.Resource.GroupResource(), r.Name, errors.New("labelled pods stay"))
	}
	return nil
}

func (d *denyPods) AdmitConnect(_ context.Context, r *admission.Request) error {
	d.record("connect", r)
	return nil
}

func (d *denyPods) record(phase string, r *admission.Request) {
	d.mu.Lock()
	defer d.mu.Unlock()
	d.calls = append(d.calls, phase+" "+string(r.Operation)+" "+r.Resource.Resource+"/"+r.Subresource+" "+r.Name+" by "+r.User.Name)
}

func TestAdmissionInTheWritePath(t *testing.T) {
	adm := &denyPods{}
	e := newTestEnv(t, func(c *Config) { c.Admission = adm })
	cs := e.clientset(t)
	ctx := context.Background()
	if _, err := cs.CoreV1().Namespaces().Create(ctx, &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: "a"}}, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	pod := func(name string) *corev1.Pod {
		return &corev1.Pod{ObjectMeta: metav1.ObjectMeta{Name: name}, Spec: corev1.PodSpec{Containers: []corev1.Container{{Name: "c", Image: "busybox"}}}}
	}
	got, err := cs.CoreV1().Pods("a").Create(ctx, pod("good"), metav1.CreateOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if got.Labels["admitted"] != "yes" {
		t.Errorf("mutating admission did not reach the stored object: labels %v", got.Labels)
	}
	_, err = cs.CoreV1().Pods("a").Create(ctx, pod("bad"), metav1.CreateOptions{})
	if !apierrors.IsForbidden(err) || !strings.Contains(err.Error(), "bad pods are not allowed") {
		t.Fatalf("create of a refused pod: %v", err)
	}
	if _, err := cs.CoreV1().Pods("a").Get(ctx, "bad", metav1.GetOptions{}); !apierrors.IsNotFound(err) {
		t.Errorf("a refused pod was stored: %v", err)
	}
	// Updates are admitted with the old object; warnings become headers.
	code, hdr, body := e.do(t, "PATCH", "/api/v1/namespaces/a/pods/good",
		map[string]string{"Content-Type": "application/merge-patch+json"}, `{"metadata":{"labels":{"x":"y"}}}`)
	if code != 200 {
		t.Fatalf("patch: %d %s", code, body)
	}
	if w := hdr.Get("Warning"); !strings.Contains(w, "looked at good") {
		t.Errorf("Warning header = %q", w)
	}
	// Deletes are admitted with the stored object.
	err = cs.CoreV1().Pods("a").Delete(ctx, "good", metav1.DeleteOptions{})
	if !apierrors.IsForbidden(err) || !strings.Contains(err.Error(), "labelled pods stay") {
		t.Errorf("delete refused by admission: %v", err)
	}
	if _, err := cs.CoreV1().Pods("a").Get(ctx, "good", metav1.GetOptions{}); err != nil {
		t.Errorf("a pod whose delete was refused: %v", err)
	}
	adm.mu.Lock()
	calls := strings.Join(adm.calls, "\n")
	adm.mu.Unlock()
	for _, want := range []string{"mutate CREATE pods/ good by admin", "validate CREATE pods/ bad by admin", "validate UPDATE pods/ good by admin", "delete DELETE pods/ good by admin"} {
		if !strings.Contains(calls, want) {
			t.Errorf("admission calls lack %q:\n%s", want, calls)
		}
	}
}

func TestImpersonation(t *testing.T) {
	authz := &fakeAuthz{allow: func(a auth.Attributes) bool {
		switch {
		case a.Verb == "impersonate":
			// alice may act as bob, as the robot account, and in group devs.
			return a.User.Name == "alice" && (a.Resource == "users" && a.Name == "bob" ||
				a.Resource == "serviceaccounts" && a.Namespace == "team" && a.Name == "robot" ||
				a.Resource == "groups" && a.Name == "devs")
		case a.User.Name == "bob":
			return a.Resource == "configmaps"
		case a.User.Name == "system:serviceaccount:team:robot":
			return a.Resource == "pods" && slices.Contains(a.User.Groups, "system:serviceaccounts:team")
		}
		return false
	}}
	e := newTestEnv(t, func(c *Config) { c.Authorizer = authz })
	tests := []struct {
		name     string
		header   map[string]string
		path     string
		wantCode int
		wantMsg  string
	}{
		{"as bob", map[string]string{"Impersonate-User": "bob"}, "/api/v1/namespaces/team/configmaps", 200, ""},
		{"bob's rights, not alice's", map[string]string{"Impersonate-User": "bob"}, "/api/v1/namespaces/team/pods", 403, `User \"bob\" cannot list resource \"pods\"`},
		{"as a service account, with its groups", map[string]string{"Impersonate-User": "system:serviceaccount:team:robot"}, "/api/v1/namespaces/team/pods", 200, ""},
		{"not as carol", map[string]string{"Impersonate-User": "carol"}, "/api/v1/namespaces/team/configmaps", 403,
			`users \"carol\" is forbidden: User \"alice\" cannot impersonate resource \"users\" in API group \"\" at the cluster scope`},
		{"not in group admins", map[string]string{"Impersonate-User": "bob", "Impersonate-Group": "admins"}, "/api/v1/namespaces/team/configmaps", 403,
			`cannot impersonate resource \"groups\"`},
		{"a group without a user is 400", map[string]string{"Impersonate-Group": "devs"}, "/api/v1/namespaces/team/configmaps", 400, "without impersonating a user"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			code, _, body := doWith(t, e.user, "GET", e.ts.URL+tt.path, tt.header, "")
			if code != tt.wantCode || !strings.Contains(body, tt.wantMsg) {
				t.Errorf("got %d %s\nwant %d containing %s", code, body, tt.wantCode, tt.wantMsg)
			}
		})
	}
}
