package audit

import (
	"bufio"
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
)

// TestEventJSON pins the JSON shape to upstream's audit.k8s.io/v1 Event.
func TestEventJSON(t *testing.T) {
	t.Parallel()
	received := time.Date(2026, 11, 22, 9, 56, 32, 123456000, time.UTC)
	cases := []struct {
		name string
		ev   Event
		want string
	}{
		{
			name: "metadata level create",
			ev: Event{
				TypeMeta: TypeMeta, Level: LevelMetadata, AuditID: "0b5e1bd6-1c1b-4c53-9d3a-7c5d9d2c6c11",
				Stage: StageResponseComplete, RequestURI: "/api/v1/namespaces/default/pods?fieldManager=kubectl-run",
				Verb: "create", User: UserInfo{Username: "admin", Groups: []string{"system:masters", "system:authenticated"}},
				SourceIPs: []string{"127.0.0.1"}, UserAgent: "kubectl/v1.33.0",
				ObjectRef:                &ObjectReference{Resource: "pods", Namespace: "default", Name: "nginx", APIVersion: "v1"},
				ResponseStatus:           &metav1.Status{Code: 201},
				RequestReceivedTimestamp: metav1.NewMicroTime(received),
				StageTimestamp:           metav1.NewMicroTime(received.Add(2500 * time.Microsecond)),
				Annotations:              map[string]string{AnnotationDecision: "allow", AnnotationReason: ""},
			},
			want: `{"kind":"Event","apiVersion":"audit.k8s.io/v1","level":"Metadata","auditID":"0b5e1bd6-1c1b-4c53-9d3a-7c5d9d2c6c11",` +
				`"stage":"ResponseComplete","requestURI":"/api/v1/namespaces/default/pods?fieldManager=kubectl-run","verb":"create",` +
				`"user":{"username":"admin","groups":["system:masters","system:authenticated"]},"sourceIPs":["127.0.0.1"],` +
				`"userAgent":"kubectl/v1.33.0","objectRef":{"resource":"pods","namespace":"default","name":"nginx","apiVersion":"v1"},` +
				`"responseStatus":{"metadata":{},"code":201},"requestReceivedTimestamp":"2026-11-22T09:56:32.123456Z",` +
				`"stageTimestamp":"2026-11-22T09:56:32.125956Z","annotations":{"authorization.k8s.io/decision":"allow","authorization.k8s.io/reason":""}}`,
		},
		{
			name: "request response level failure",
			ev: Event{
				TypeMeta: TypeMeta, Level: LevelRequestResponse, AuditID: "id", Stage: StageResponseComplete,
				RequestURI: "/apis/apps/v1/namespaces/dev/deployments/web/scale", Verb: "update", User: UserInfo{},
				ObjectRef: &ObjectReference{Resource: "deployments", Namespace: "dev", Name: "web", APIGroup: "apps", APIVersion: "v1", Subresource: "scale"},
				ResponseStatus: &metav1.Status{Status: metav1.StatusFailure, Message: "denied", Reason: metav1.StatusReasonForbidden,
					Details: &metav1.StatusDetails{Name: "web", Group: "apps", Kind: "deployments"}, Code: 403},
				RequestObject:            json.RawMessage(`{"spec":{"replicas":2}}`),
				ResponseObject:           json.RawMessage(`{"kind":"Status"}`),
				RequestReceivedTimestamp: metav1.NewMicroTime(received),
				StageTimestamp:           metav1.NewMicroTime(received),
			},
			want: `{"kind":"Event","apiVersion":"audit.k8s.io/v1","level":"RequestResponse","auditID":"id","stage":"ResponseComplete",` +
				`"requestURI":"/apis/apps/v1/namespaces/dev/deployments/web/scale","verb":"update","user":{},` +
				`"objectRef":{"resource":"deployments","namespace":"dev","name":"web","apiGroup":"apps","apiVersion":"v1","subresource":"scale"},` +
				`"responseStatus":{"metadata":{},"status":"Failure","message":"denied","reason":"Forbidden","details":{"name":"web","group":"apps","kind":"deployments"},"code":403},` +
				`"requestObject":{"spec":{"replicas":2}},"responseObject":{"kind":"Status"},` +
				`"requestReceivedTimestamp":"2026-11-22T09:56:32.123456Z","stageTimestamp":"2026-11-22T09:56:32.123456Z"}`,
		},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			got, err := appendJSON(nil, &tc.ev)
			if err != nil {
				t.Fatal(err)
			}
			if diff := cmp.Diff(tc.want, string(got)); diff != "" {
				t.Errorf("JSON mismatch (-want +got):\n%s", diff)
			}
			var back Event
			if err := json.Unmarshal(got, &back); err != nil {
				t.Fatal(err)
			}
			if diff := cmp.Diff(tc.ev.AuditID, back.AuditID); diff != "" {
				t.Errorf("round trip (-want +got):\n%s", diff)
			}
		})
	}
}

func TestParseLevel(t *testing.T) {
	t.Parallel()
	cases := []struct {
		in      string
		want    Level
		wantErr bool
	}{
		{"", LevelMetadata, false},
		{"None", LevelNone, false},
		{"metadata", LevelMetadata, false},
		{"REQUEST", LevelRequest, false},
		{"RequestResponse", LevelRequestResponse, false},
		{"Everything", "", true},
	}
	for _, tc := range cases {
		t.Run(tc.in, func(t *testing.T) {
			got, err := ParseLevel(tc.in)
			if (err != nil) != tc.wantErr {
				t.Fatalf("ParseLevel(%q) error = %v, want error %v", tc.in, err, tc.wantErr)
			}
			if got != tc.want {
				t.Errorf("ParseLevel(%q) = %q, want %q", tc.in, got, tc.want)
			}
		})
	}
}

func TestLevelFor(t *testing.T) {
	t.Parallel()
	pods := &ObjectReference{Resource: "pods", Namespace: "default", APIVersion: "v1"}
	secrets := &ObjectReference{Resource: "secrets", Namespace: "default", APIVersion: "v1"}
	token := &ObjectReference{Resource: "serviceaccounts", Subresource: "token", Namespace: "default", APIVersion: "v1"}
	sa := &ObjectReference{Resource: "serviceaccounts", Namespace: "default", APIVersion: "v1"}
	csr := &ObjectReference{Resource: "certificatesigningrequests", APIGroup: "certificates.k8s.io", APIVersion: "v1"}
	cases := []struct {
		name  string
		level Level
		path  string
		ref   *ObjectReference
		want  Level
	}{
		{"pods at metadata", LevelMetadata, "/api/v1/namespaces/default/pods", pods, LevelMetadata},
		{"pods at request response", LevelRequestResponse, "/api/v1/namespaces/default/pods", pods, LevelRequestResponse},
		{"secrets capped", LevelRequestResponse, "/api/v1/namespaces/default/secrets", secrets, LevelMetadata},
		{"token subresource capped", LevelRequest, "/api/v1/namespaces/default/serviceaccounts/x/token", token, LevelMetadata},
		{"service accounts not capped", LevelRequest, "/api/v1/namespaces/default/serviceaccounts/x", sa, LevelRequest},
		{"csr capped", LevelRequest, "/apis/certificates.k8s.io/v1/certificatesigningrequests", csr, LevelMetadata},
		{"secrets at none", LevelNone, "/api/v1/namespaces/default/secrets", secrets, LevelNone},
		{"healthz quiet", LevelRequestResponse, "/healthz", nil, LevelNone},
		{"readyz below quiet", LevelMetadata, "/readyz/etcd", nil, LevelNone},
		{"metrics quiet", LevelMetadata, "/metrics", nil, LevelNone},
		{"healthzz not quiet", LevelMetadata, "/healthzz", nil, LevelMetadata},
		{"version logged", LevelMetadata, "/version", nil, LevelMetadata},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			l := &Logger{level: tc.level}
			if got := l.LevelFor(tc.path, tc.ref); got != tc.want {
				t.Errorf("LevelFor(%q) at %s = %s, want %s", tc.path, tc.level, got, tc.want)
			}
		})
	}
	var nilLogger *Logger
	if got := nilLogger.LevelFor("/api", nil); got != LevelNone {
		t.Errorf("nil Logger LevelFor = %s, want None", got)
	}
}

func event(id string) *Event {
	return &Event{TypeMeta: TypeMeta, Level: LevelMetadata, AuditID: id, Stage: StageResponseComplete, Verb: "get"}
}

// readIDs returns the auditIDs of the JSON lines in path.
func readIDs(t *testing.T, path string) []string {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	return idsOf(t, b)
}

func idsOf(t *testing.T, b []byte) []string {
	t.Helper()
	var ids []string
	sc := bufio.NewScanner(bytes.NewReader(b))
	for sc.Scan() {
		var ev Event
		if err := json.Unmarshal(sc.Bytes(), &ev); err != nil {
			t.Fatalf("line %q: %v", sc.Text(), err)
		}
		ids = append(ids, ev.AuditID)
	}
	return ids
}

func TestLogWritesLinesAndCloses(t *testing.T) {
	t.Parallel()
	path := filepath.Join(t.TempDir(), "sub", "audit.log")
	l, err := New(Config{Path: path})
	if err != nil {
		t.Fatal(err)
	}
	for i := range 3 {
		l.Log(event(fmt.Sprint(i)))
	}
	if err := l.Close(); err != nil {
		t.Fatal(err)
	}
	if err := l.Close(); err != nil {
		t.Fatalf("second Close: %v", err)
	}
	l.Log(event("after close")) // must not panic nor write
	if diff := cmp.Diff([]string{"0", "1", "2"}, readIDs(t, path)); diff != "" {
		t.Errorf("ids (-want +got):\n%s", diff)
	}
	st, err := os.Stat(path)
	if err != nil {
		t.Fatal(err)
	}
	if st.Mode().Perm() != 0o600 {
		t.Errorf("mode = %v, want 0600", st.Mode().Perm())
	}
	if l.Level() != LevelMetadata {
		t.Errorf("default level = %s, want Metadata", l.Level())
	}
}

func TestLogFlushesWithoutClose(t *testing.T) {
	t.Parallel()
	path := filepath.Join(t.TempDir(), "audit.log")
	l, err := New(Config{Path: path})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = l.Close() })
	l.Log(event("x"))
	deadline := time.Now().Add(10 * time.Second)
	for {
		b, _ := os.ReadFile(path)
		if strings.Contains(string(b), `"auditID":"x"`) {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("event not written within 10s; file has %q", b)
		}
		time.Sleep(5 * time.Millisecond) // polling the file, not waiting for an event
	}
}

func TestRotation(t *testing.T) {
	t.Parallel()
	line, _ := json.Marshal(event("00"))
	lineLen := int64(len(line) + 1)
	cases := []struct {
		name    string
		backups int
		// want are the ids in audit.log, audit.log.1, audit.log.2, ...
		want [][]string
	}{
		{"two backups", 2, [][]string{{"06", "07"}, {"04", "05"}, {"02", "03"}}},
		{"no backups", 0, [][]string{{"06", "07"}}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			dir := t.TempDir()
			path := filepath.Join(dir, "audit.log")
			// Two lines fit in a file; the third rotates.
			l, err := newLogger(Config{Path: path, MaxBackups: tc.backups}, nil, 2*lineLen+lineLen/2)
			if err != nil {
				t.Fatal(err)
			}
			for i := range 8 {
				l.Log(event(fmt.Sprintf("%02d", i)))
			}
			if err := l.Close(); err != nil {
				t.Fatal(err)
			}
			var got [][]string
			for i := 0; ; i++ {
				p := path
				if i > 0 {
					p = fmt.Sprintf("%s.%d", path, i)
				}
				if _, err := os.Stat(p); err != nil {
					break
				}
				got = append(got, readIDs(t, p))
			}
			if diff := cmp.Diff(tc.want, got); diff != "" {
				t.Errorf("files (-want +got):\n%s", diff)
			}
		})
	}
}

// blockingWriter holds every Write until release is closed.
type blockingWriter struct {
	entered chan struct{}
	release chan struct{}
	once    sync.Once
	mu      sync.Mutex
	buf     bytes.Buffer
}

func (w *blockingWriter) Write(p []byte) (int, error) {
	w.once.Do(func() { close(w.entered) })
	<-w.release
	w.mu.Lock()
	defer w.mu.Unlock()
	return w.buf.Write(p)
}

func TestQueueFullDrops(t *testing.T) {
	t.Parallel()
	w := &blockingWriter{entered: make(chan struct{}), release: make(chan struct{})}
	l, err := newLogger(Config{QueueSize: 2}, w, 0)
	if err != nil {
		t.Fatal(err)
	}
	// The first event reaches the writer, which blocks in the flush.
	l.Log(event("first"))
	select {
	case <-w.entered:
	case <-time.After(10 * time.Second):
		t.Fatal("writer never wrote")
	}
	start := time.Now()
	for i := range 10 {
		l.Log(event(fmt.Sprint(i)))
	}
	if d := time.Since(start); d > 5*time.Second {
		t.Errorf("Log blocked for %v on a full queue", d)
	}
	if got := l.Dropped(); got != 8 {
		t.Errorf("Dropped() = %d, want 8 (queue of 2, 10 sent while the writer is stuck)", got)
	}
	close(w.release)
	if err := l.Close(); err != nil {
		t.Fatal(err)
	}
	if diff := cmp.Diff([]string{"first", "0", "1"}, idsOf(t, w.buf.Bytes())); diff != "" {
		t.Errorf("written (-want +got):\n%s", diff)
	}
	if n := len(l.Collectors()); n != 2 {
		t.Errorf("Collectors() has %d collectors, want 2", n)
	}
}

func TestNewErrors(t *testing.T) {
	t.Parallel()
	cases := []struct {
		name string
		cfg  Config
	}{
		{"no path", Config{}},
		{"bad level", Config{Path: filepath.Join(t.TempDir(), "a.log"), Level: "Loud"}},
		{"unwritable", Config{Path: "/proc/skiff-audit/audit.log"}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			l, err := New(tc.cfg)
			if err == nil {
				_ = l.Close()
				t.Fatalf("New(%+v) succeeded, want an error", tc.cfg)
			}
		})
	}
}

var _ io.Writer = (*blockingWriter)(nil)
