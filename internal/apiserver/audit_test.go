package apiserver

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/tools/remotecommand"

	"github.com/skiff-dev/skiff/internal/audit"
	"github.com/skiff-dev/skiff/internal/auth"
)

// withAudit returns an option that logs to a new file at level, and the
// file's path.
func withAudit(t *testing.T, level audit.Level) (envOption, string) {
	t.Helper()
	path := filepath.Join(t.TempDir(), "audit.log")
	l, err := audit.New(audit.Config{Path: path, Level: level})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if err := l.Close(); err != nil {
			t.Errorf("closing the audit log: %v", err)
		}
	})
	return func(c *Config) { c.Audit = l }, path
}

// readEvents parses the audit log at path.
func readEvents(t *testing.T, path string) []audit.Event {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	var out []audit.Event
	sc := bufio.NewScanner(bytes.NewReader(b))
	sc.Buffer(nil, 16<<20)
	for sc.Scan() {
		var ev audit.Event
		if err := json.Unmarshal(sc.Bytes(), &ev); err != nil {
			t.Fatalf("audit line %q: %v", sc.Text(), err)
		}
		out = append(out, ev)
	}
	return out
}

// waitEvents polls the log until it holds n events that match, and
// returns them in order. It fails after 10s, or if more than n match.
func waitEvents(t *testing.T, path string, n int, match func(audit.Event) bool) []audit.Event {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for {
		var got []audit.Event
		for _, ev := range readEvents(t, path) {
			if match(ev) {
				got = append(got, ev)
			}
		}
		if len(got) >= n {
			if len(got) > n {
				t.Fatalf("%d matching audit events, want %d: %+v", len(got), n, got)
			}
			return got
		}
		if time.Now().After(deadline) {
			t.Fatalf("%d matching audit events after 10s, want %d: %+v", len(got), n, got)
		}
		time.Sleep(10 * time.Millisecond) // polling the file
	}
}

func byID(id string) func(audit.Event) bool {
	return func(ev audit.Event) bool { return ev.AuditID == id }
}

// summary is what the tests compare of an event: everything but the
// timestamps, the user agent and the source address.
type summary struct {
	Stage       audit.Stage
	Level       audit.Level
	Verb        string
	RequestURI  string
	User        audit.UserInfo
	ObjectRef   *audit.ObjectReference
	Status      metav1.Status
	Annotations map[string]string
	HasRequest  bool
	HasResponse bool
}

func summarize(t *testing.T, evs []audit.Event) []summary {
	t.Helper()
	var out []summary
	for _, ev := range evs {
		if ev.Kind != "Event" || ev.APIVersion != "audit.k8s.io/v1" {
			t.Errorf("event type = %s %s, want audit.k8s.io/v1 Event", ev.APIVersion, ev.Kind)
		}
		if ev.StageTimestamp.Before(&ev.RequestReceivedTimestamp) {
			t.Errorf("stageTimestamp %v before requestReceivedTimestamp %v", ev.StageTimestamp, ev.RequestReceivedTimestamp)
		}
		if len(ev.SourceIPs) == 0 || ev.SourceIPs[len(ev.SourceIPs)-1] != "127.0.0.1" {
			t.Errorf("sourceIPs = %v, want the peer 127.0.0.1 last", ev.SourceIPs)
		}
		s := summary{Stage: ev.Stage, Level: ev.Level, Verb: ev.Verb, RequestURI: ev.RequestURI, User: ev.User,
			ObjectRef: ev.ObjectRef, Annotations: ev.Annotations, HasRequest: ev.RequestObject != nil, HasResponse: ev.ResponseObject != nil}
		if ev.ResponseStatus != nil {
			s.Status = *ev.ResponseStatus
			s.Status.Details = nil
		}
		out = append(out, s)
	}
	return out
}

var adminUser = audit.UserInfo{Username: "admin", Groups: []string{"system:masters", "system:authenticated"}}

func TestAuditLog(t *testing.T) {
	t.Parallel()
	opt, path := withAudit(t, audit.LevelRequestResponse)
	e := newTestEnv(t, opt)
	podsRef := &audit.ObjectReference{Resource: "pods", Namespace: "default", APIVersion: "v1"}
	pod := `{"apiVersion":"v1","kind":"Pod","metadata":{"name":"web"},"spec":{"containers":[{"name":"app","image":"nginx"}]}}`

	t.Run("create", func(t *testing.T) {
		code, h, _ := e.do(t, http.MethodPost, "/api/v1/namespaces/default/pods", nil, pod)
		if code != http.StatusCreated {
			t.Fatalf("create = %d", code)
		}
		id := h.Get("Audit-Id")
		if len(id) != 36 {
			t.Fatalf("Audit-Id = %q, want a UUID", id)
		}
		evs := waitEvents(t, path, 1, byID(id))
		want := []summary{{Stage: audit.StageResponseComplete, Level: audit.LevelRequestResponse, Verb: "create",
			RequestURI: "/api/v1/namespaces/default/pods", User: adminUser,
			ObjectRef: &audit.ObjectReference{Resource: "pods", Namespace: "default", Name: "web", APIVersion: "v1"},
			Status:    metav1.Status{Code: 201}, HasRequest: true, HasResponse: true}}
		if diff := cmp.Diff(want, summarize(t, evs)); diff != "" {
			t.Errorf("events (-want +got):\n%s", diff)
		}
		var req, resp corev1.Pod
		if err := json.Unmarshal(evs[0].RequestObject, &req); err != nil || req.Name != "web" {
			t.Errorf("requestObject = %s (%v), want the pod sent", evs[0].RequestObject, err)
		}
		if err := json.Unmarshal(evs[0].ResponseObject, &resp); err != nil || resp.UID == "" {
			t.Errorf("responseObject = %s (%v), want the pod created", evs[0].ResponseObject, err)
		}
	})

	t.Run("client-chosen audit ID", func(t *testing.T) {
		const id = "my-audit-id"
		_, h, _ := e.do(t, http.MethodGet, "/api/v1/namespaces/default/pods/web", map[string]string{"Audit-Id": id}, "")
		if got := h.Get("Audit-Id"); got != id {
			t.Errorf("Audit-Id = %q, want %q", got, id)
		}
		waitEvents(t, path, 1, byID(id))
	})

	t.Run("protobuf bodies are omitted", func(t *testing.T) {
		cfg := *e.adminConfig
		cfg.ContentType = runtime.ContentTypeProtobuf
		cfg.UserAgent = "audit-protobuf-test"
		cs, err := kubernetes.NewForConfig(&cfg)
		if err != nil {
			t.Fatal(err)
		}
		p := &corev1.Pod{ObjectMeta: metav1.ObjectMeta{Name: "proto"}, Spec: corev1.PodSpec{Containers: []corev1.Container{{Name: "a", Image: "i"}}}}
		if _, err := cs.CoreV1().Pods("default").Create(context.Background(), p, metav1.CreateOptions{}); err != nil {
			t.Fatal(err)
		}
		evs := waitEvents(t, path, 1, func(ev audit.Event) bool { return ev.UserAgent == cfg.UserAgent })
		want := map[string]string{audit.AnnotationOmitted: "requestObject: protobuf body; responseObject: protobuf body"}
		if diff := cmp.Diff(want, evs[0].Annotations); diff != "" {
			t.Errorf("annotations (-want +got):\n%s", diff)
		}
		if evs[0].ObjectRef == nil || evs[0].ObjectRef.Name != "proto" {
			t.Errorf("objectRef = %+v, want the name read from the protobuf body", evs[0].ObjectRef)
		}
	})

	t.Run("bad token is 401 without a user", func(t *testing.T) {
		code, h, _ := doWith(t, e.anon, http.MethodGet, e.ts.URL+"/api/v1/namespaces/default/pods", map[string]string{"Authorization": "Bearer nope"}, "")
		if code != http.StatusUnauthorized {
			t.Fatalf("code = %d, want 401", code)
		}
		want := []summary{{Stage: audit.StageResponseComplete, Level: audit.LevelRequestResponse, Verb: "list",
			RequestURI: "/api/v1/namespaces/default/pods", ObjectRef: podsRef, HasResponse: true,
			Status: metav1.Status{Status: metav1.StatusFailure, Reason: metav1.StatusReasonUnauthorized, Message: "Unauthorized", Code: 401}}}
		if diff := cmp.Diff(want, summarize(t, waitEvents(t, path, 1, byID(h.Get("Audit-Id"))))); diff != "" {
			t.Errorf("events (-want +got):\n%s", diff)
		}
	})

	t.Run("health checks are not logged", func(t *testing.T) {
		_, h, _ := doWith(t, e.anon, http.MethodGet, e.ts.URL+"/healthz", nil, "")
		id := h.Get("Audit-Id")
		if id == "" {
			t.Fatal("no Audit-Id header on /healthz")
		}
		// A later event proves the log caught up.
		_, h2, _ := e.do(t, http.MethodGet, "/version", nil, "")
		waitEvents(t, path, 1, byID(h2.Get("Audit-Id")))
		waitEvents(t, path, 0, byID(id))
	})

	t.Run("secrets stay at metadata", func(t *testing.T) {
		// secrets are not served here: the 404 still shows the level.
		_, h, _ := e.do(t, http.MethodPost, "/api/v1/namespaces/default/secrets", nil, `{"apiVersion":"v1","kind":"Secret","metadata":{"name":"s"},"data":{"k":"c2VjcmV0"}}`)
		evs := waitEvents(t, path, 1, byID(h.Get("Audit-Id")))
		if evs[0].Level != audit.LevelMetadata || evs[0].RequestObject != nil || evs[0].ResponseObject != nil {
			t.Errorf("secret event level %s, requestObject %s, responseObject %s; want Metadata and no bodies",
				evs[0].Level, evs[0].RequestObject, evs[0].ResponseObject)
		}
	})

	t.Run("watch", func(t *testing.T) {
		code, h, _ := e.do(t, http.MethodGet, "/api/v1/namespaces/default/pods?watch=1&timeoutSeconds=1", nil, "")
		if code != http.StatusOK {
			t.Fatalf("watch = %d", code)
		}
		uri := "/api/v1/namespaces/default/pods?watch=1&timeoutSeconds=1"
		want := []summary{
			{Stage: audit.StageResponseStarted, Level: audit.LevelRequestResponse, Verb: "watch", RequestURI: uri, User: adminUser, ObjectRef: podsRef, Status: metav1.Status{Code: 200}},
			{Stage: audit.StageResponseComplete, Level: audit.LevelRequestResponse, Verb: "watch", RequestURI: uri, User: adminUser, ObjectRef: podsRef, Status: metav1.Status{Code: 200}},
		}
		if diff := cmp.Diff(want, summarize(t, waitEvents(t, path, 2, byID(h.Get("Audit-Id"))))); diff != "" {
			t.Errorf("events (-want +got):\n%s", diff)
		}
	})

	t.Run("client-go watch streams", func(t *testing.T) {
		cs := e.clientset(t)
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		defer cancel()
		w, err := cs.CoreV1().Pods("default").Watch(ctx, metav1.ListOptions{FieldSelector: "metadata.name=streamed"})
		if err != nil {
			t.Fatal(err)
		}
		defer w.Stop()
		p := &corev1.Pod{ObjectMeta: metav1.ObjectMeta{Name: "streamed"}, Spec: corev1.PodSpec{Containers: []corev1.Container{{Name: "a", Image: "i"}}}}
		if _, err := cs.CoreV1().Pods("default").Create(ctx, p, metav1.CreateOptions{}); err != nil {
			t.Fatal(err)
		}
		select {
		case ev := <-w.ResultChan():
			if ev.Type != "ADDED" {
				t.Errorf("watch event %s, want ADDED", ev.Type)
			}
		case <-ctx.Done():
			t.Fatal("no watch event through the audit writer")
		}
		started := func(ev audit.Event) bool {
			return ev.Stage == audit.StageResponseStarted && strings.Contains(ev.RequestURI, "streamed")
		}
		waitEvents(t, path, 1, started)
	})
}

// denyAlice refuses every request of alice and allows the rest.
type denyAlice struct{}

func (denyAlice) Authorize(_ context.Context, a auth.Attributes) (auth.Decision, string, error) {
	if a.User.Name == "alice" {
		return auth.Deny, "", nil
	}
	return auth.Allow, "", nil
}

func TestAuditForbidden(t *testing.T) {
	t.Parallel()
	opt, path := withAudit(t, audit.LevelMetadata)
	e := newTestEnv(t, opt, func(c *Config) { c.Authorizer = denyAlice{} })
	// At Metadata a create still names its object, without the body.
	pod := `{"apiVersion":"v1","kind":"Pod","metadata":{"name":"meta"},"spec":{"containers":[{"name":"app","image":"nginx"}]}}`
	code, h, body := e.do(t, http.MethodPost, "/api/v1/namespaces/default/pods", nil, pod)
	if code != http.StatusCreated {
		t.Fatalf("create = %d %s", code, body)
	}
	wantCreate := []summary{{Stage: audit.StageResponseComplete, Level: audit.LevelMetadata, Verb: "create",
		RequestURI: "/api/v1/namespaces/default/pods", User: adminUser,
		ObjectRef: &audit.ObjectReference{Resource: "pods", Namespace: "default", Name: "meta", APIVersion: "v1"},
		Status:    metav1.Status{Code: 201}}}
	if diff := cmp.Diff(wantCreate, summarize(t, waitEvents(t, path, 1, byID(h.Get("Audit-Id"))))); diff != "" {
		t.Errorf("create events (-want +got):\n%s", diff)
	}

	code, h, body = doWith(t, e.user, http.MethodDelete, e.ts.URL+"/api/v1/namespaces/default/pods/web", nil, "")
	if code != http.StatusForbidden {
		t.Fatalf("delete = %d %s, want 403", code, body)
	}
	want := []summary{{Stage: audit.StageResponseComplete, Level: audit.LevelMetadata, Verb: "delete",
		RequestURI: "/api/v1/namespaces/default/pods/web",
		User:       audit.UserInfo{Username: "alice", Groups: []string{"devs", "system:authenticated"}},
		ObjectRef:  &audit.ObjectReference{Resource: "pods", Namespace: "default", Name: "web", APIVersion: "v1"},
		Status: metav1.Status{Status: metav1.StatusFailure, Reason: metav1.StatusReasonForbidden, Code: 403,
			Message: `pods "web" is forbidden: User "alice" cannot delete resource "pods" in API group "" in the namespace "default"`},
		Annotations: map[string]string{audit.AnnotationDecision: "forbid"}}}
	if diff := cmp.Diff(want, summarize(t, waitEvents(t, path, 1, byID(h.Get("Audit-Id"))))); diff != "" {
		t.Errorf("events (-want +got):\n%s", diff)
	}
}

func TestAuditExec(t *testing.T) {
	t.Parallel()
	opt, path := withAudit(t, audit.LevelRequestResponse)
	e := newConnectEnv(t, opt)
	opts := corev1.PodExecOptions{Command: []string{"echo"}, Stdin: true, Stdout: true, Stderr: true}
	for kind, ex := range executors(t, e, execURL(e, "one", "exec", &opts)) {
		if kind == "websocket-v4" {
			continue // it cannot close stdin
		}
		t.Run(kind, func(t *testing.T) {
			ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
			defer cancel()
			var stdout, stderr bytes.Buffer
			err := ex.StreamWithContext(ctx, remotecommand.StreamOptions{Stdin: strings.NewReader("hi\n"), Stdout: &stdout, Stderr: &stderr})
			if err != nil {
				t.Fatalf("exec through the audit writer: %v", err)
			}
			if diff := cmp.Diff("hi\n", stdout.String()); diff != "" {
				t.Errorf("stdout (-want +got):\n%s", diff)
			}
		})
	}
	isExec := func(ev audit.Event) bool { return ev.ObjectRef != nil && ev.ObjectRef.Subresource == "exec" }
	evs := waitEvents(t, path, 4, isExec) // two executors, two stages each
	byStage := map[audit.Stage]int{}
	for _, ev := range evs {
		byStage[ev.Stage]++
		if ev.ResponseStatus == nil || ev.ResponseStatus.Code != http.StatusSwitchingProtocols {
			t.Errorf("%s event status = %+v, want 101", ev.Stage, ev.ResponseStatus)
		}
		if ev.ResponseObject != nil {
			t.Errorf("%s event has a responseObject: %s", ev.Stage, ev.ResponseObject)
		}
	}
	if diff := cmp.Diff(map[audit.Stage]int{audit.StageResponseStarted: 2, audit.StageResponseComplete: 2}, byStage); diff != "" {
		t.Errorf("stages (-want +got):\n%s", diff)
	}
}

// TestAuditPanic drives auditBegin directly: the end of a panicked request
// logs a Panic event.
func TestAuditPanic(t *testing.T) {
	t.Parallel()
	path := filepath.Join(t.TempDir(), "audit.log")
	l, err := audit.New(audit.Config{Path: path})
	if err != nil {
		t.Fatal(err)
	}
	s, err := New(Config{Scheme: runtime.NewScheme(), Audit: l})
	if err != nil {
		t.Fatal(err)
	}
	r := httptest.NewRequest(http.MethodGet, "/api/v1/nodes", nil)
	rec := httptest.NewRecorder()
	w, _, end := s.auditBegin(&responseWriter{ResponseWriter: rec}, r, parseRequestInfo(r), auth.User{Name: "bob"})
	auditPanicked(&responseWriter{ResponseWriter: w}, "boom")
	end(http.StatusInternalServerError)
	if err := l.Close(); err != nil {
		t.Fatal(err)
	}
	evs := readEvents(t, path)
	if len(evs) != 1 {
		t.Fatalf("%d events, want 1", len(evs))
	}
	want := metav1.Status{Status: metav1.StatusFailure, Reason: metav1.StatusReasonInternalError, Message: "APIServer panic'd: boom", Code: 500}
	if evs[0].Stage != audit.StagePanic || evs[0].ResponseStatus == nil {
		t.Fatalf("event = %+v, want a Panic stage", evs[0])
	}
	if diff := cmp.Diff(want, *evs[0].ResponseStatus); diff != "" {
		t.Errorf("responseStatus (-want +got):\n%s", diff)
	}
	if got := rec.Header().Get("Audit-Id"); got != evs[0].AuditID {
		t.Errorf("Audit-Id header %q, event auditID %q", got, evs[0].AuditID)
	}
}

func TestAuditJSON(t *testing.T) {
	t.Parallel()
	cases := []struct {
		name, contentType, body string
		limit                   int
		want, why               string
	}{
		{"json", "application/json", "{\n \"a\": 1}", 100, "{\n \"a\": 1}", ""},
		{"merge patch", "application/merge-patch+json", `{"a":1}`, 100, `{"a":1}`, ""},
		{"apply yaml", "application/apply-patch+yaml", "a: 1\nb: [x]\n", 100, `{"a":1,"b":["x"]}`, ""},
		{"protobuf", "application/vnd.kubernetes.protobuf", "k8s\x00...", 100, "", "protobuf body"},
		{"too large", "application/json", `{"a":"long"}`, 4, "", "body too large"},
		{"not json", "text/plain", "hello", 100, "", "body is not JSON"},
		{"empty", "application/json", "", 100, "", ""},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			b := &cappedBuffer{limit: tc.limit}
			_, _ = io.WriteString(b, tc.body)
			raw, why := auditJSON(b, tc.contentType)
			if diff := cmp.Diff(tc.want, string(raw)); diff != "" {
				t.Errorf("raw (-want +got):\n%s", diff)
			}
			if why != tc.why {
				t.Errorf("why = %q, want %q", why, tc.why)
			}
		})
	}
}

func TestSourceIPs(t *testing.T) {
	t.Parallel()
	r := httptest.NewRequest(http.MethodGet, "/", nil)
	r.RemoteAddr = "10.0.0.9:5555"
	r.Header.Set("X-Forwarded-For", "1.2.3.4, bogus, 10.0.0.9")
	r.Header.Set("X-Real-Ip", "5.6.7.8")
	if diff := cmp.Diff([]string{"1.2.3.4", "10.0.0.9", "5.6.7.8"}, sourceIPs(r)); diff != "" {
		t.Errorf("sourceIPs (-want +got):\n%s", diff)
	}
}

func TestAuditImpersonation(t *testing.T) {
	t.Parallel()
	opt, path := withAudit(t, audit.LevelMetadata)
	e := newTestEnv(t, opt)
	code, h, body := e.do(t, http.MethodGet, "/api/v1/namespaces/default/pods", map[string]string{"Impersonate-User": "bob", "Impersonate-Group": "devs"}, "")
	if code != http.StatusOK {
		t.Fatalf("list as bob = %d %s", code, body)
	}
	evs := waitEvents(t, path, 1, byID(h.Get("Audit-Id")))
	got := evs[0].ImpersonatedUser
	if evs[0].User.Username != adminUser.Username || got == nil || got.Username != "bob" ||
		!slices.Equal(got.Groups, []string{"devs", "system:authenticated"}) {
		t.Errorf("user %+v, impersonated %+v; want the admin acting as bob in devs", evs[0].User, got)
	}
}
