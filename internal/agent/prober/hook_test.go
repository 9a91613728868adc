package prober

import (
	"context"
	"errors"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	v1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/util/intstr"
	"k8s.io/client-go/tools/record"

	"github.com/skiff-dev/skiff/internal/agent/cri"
)

func TestRunHook(t *testing.T) {
	t.Parallel()
	type request struct{ Path, UserAgent, Header string }
	var mu sync.Mutex
	var got []request
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		mu.Lock()
		got = append(got, request{Path: r.URL.Path, UserAgent: r.UserAgent(), Header: r.Header.Get("X-Hook")})
		mu.Unlock()
		w.WriteHeader(http.StatusInternalServerError) // hooks do not check the status
	}))
	t.Cleanup(srv.Close)
	ip, port := hostPort(t, srv.URL)
	closed := closedPort(t)

	cancelled, cancel := context.WithCancel(context.Background())
	cancel()

	tests := []struct {
		name    string
		h       *v1.LifecycleHandler
		exec    *fakeExec
		ctx     context.Context
		podIP   string
		wantErr string // substring; "" means success
		want    []request
	}{
		{name: "nil handler", h: nil},
		{name: "exec succeeds", h: &v1.LifecycleHandler{Exec: &v1.ExecAction{Command: []string{"sh", "-c", "echo hi"}}},
			exec: exitCode(0, "hi")},
		{name: "exec exits non-zero", h: &v1.LifecycleHandler{Exec: &v1.ExecAction{Command: []string{"false"}}},
			exec: &fakeExec{fn: func(context.Context, string, []string, time.Duration) (cri.ExecResult, error) {
				return cri.ExecResult{ExitCode: 2, Stderr: []byte("bad")}, nil
			}},
			wantErr: `exec lifecycle hook ([false]) for container "app" in pod "ns/web" failed - error: command 'false' exited with 2: bad, message: "bad"`},
		{name: "exec runtime error", h: &v1.LifecycleHandler{Exec: &v1.ExecAction{Command: []string{"x"}}},
			exec: &fakeExec{fn: func(context.Context, string, []string, time.Duration) (cri.ExecResult, error) {
				return cri.ExecResult{}, errors.New("no such container")
			}},
			wantErr: "no such container"},
		{name: "httpGet to the pod IP with a named port", podIP: ip,
			h: &v1.LifecycleHandler{HTTPGet: &v1.HTTPGetAction{Path: "/shutdown", Port: intstr.FromString("web"),
				HTTPHeaders: []v1.HTTPHeader{{Name: "X-Hook", Value: "pre"}}}},
			want: []request{{Path: "/shutdown", UserAgent: "kube-lifecycle/1.33", Header: "pre"}}},
		{name: "httpGet to an explicit host", podIP: "192.0.2.1",
			h:    &v1.LifecycleHandler{HTTPGet: &v1.HTTPGetAction{Host: ip, Path: "/start", Port: intstr.FromInt(port)}},
			want: []request{{Path: "/start", UserAgent: "kube-lifecycle/1.33"}}},
		{name: "httpGet refused", podIP: ip,
			h:       &v1.LifecycleHandler{HTTPGet: &v1.HTTPGetAction{Path: "/x", Port: intstr.FromInt(closed)}},
			wantErr: "connection refused"},
		{name: "httpGet without pod IP",
			h:       &v1.LifecycleHandler{HTTPGet: &v1.HTTPGetAction{Path: "/x", Port: intstr.FromInt(port)}},
			wantErr: "failed to find networking container"},
		{name: "https answered in http falls back to http", podIP: ip,
			h:    &v1.LifecycleHandler{HTTPGet: &v1.HTTPGetAction{Path: "/tls", Port: intstr.FromInt(port), Scheme: v1.URISchemeHTTPS}},
			want: []request{{Path: "/tls", UserAgent: "kube-lifecycle/1.33"}}},
		{name: "sleep", h: &v1.LifecycleHandler{Sleep: &v1.SleepAction{Seconds: 2}}},
		{name: "sleep cut short", h: &v1.LifecycleHandler{Sleep: &v1.SleepAction{Seconds: 1000}}, ctx: cancelled,
			wantErr: "container terminated before sleep hook finished"},
		{name: "tcpSocket is not run", h: &v1.LifecycleHandler{TCPSocket: &v1.TCPSocketAction{Port: intstr.FromInt(port)}},
			wantErr: "invalid handler"},
		{name: "empty handler", h: &v1.LifecycleHandler{}, wantErr: "invalid handler"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			exec := tt.exec
			if exec == nil {
				exec = &fakeExec{}
			}
			rec := record.NewFakeRecorder(10)
			m := New(Config{Runtime: exec, Recorder: rec, Logger: testLogger(t)})
			m.second = 5 * time.Millisecond
			pod, c := testPod(tt.podIP, v1.ContainerPort{Name: "web", ContainerPort: int32(port)})
			ctx := tt.ctx
			if ctx == nil {
				ctx = context.Background()
			}
			mu.Lock()
			got = nil
			mu.Unlock()
			err := m.RunHook(ctx, pod, c, "c1", tt.h)
			switch {
			case tt.wantErr == "" && err != nil:
				t.Errorf("RunHook: %v", err)
			case tt.wantErr != "" && (err == nil || !strings.Contains(err.Error(), tt.wantErr)):
				t.Errorf("RunHook error %v, want one containing %q", err, tt.wantErr)
			}
			mu.Lock()
			defer mu.Unlock()
			if diff := cmp.Diff(tt.want, got); diff != "" {
				t.Errorf("requests (-want +got):\n%s", diff)
			}
			if tt.name == "https answered in http falls back to http" {
				if len(rec.Events) != 1 || !strings.HasPrefix(<-rec.Events, "Warning LifecycleHTTPFallback") {
					t.Error("no LifecycleHTTPFallback event")
				}
			}
			if exec.count() == 0 && tt.h != nil && tt.h.Exec != nil {
				t.Error("exec hook did not exec")
			}
		})
	}
}
