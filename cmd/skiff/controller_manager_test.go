package main

import (
	"bytes"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"k8s.io/client-go/tools/clientcmd"
	clientcmdapi "k8s.io/client-go/tools/clientcmd/api"

	"github.com/skiff-dev/skiff/internal/testserver"
)

func TestParseControllerManagerFlags(t *testing.T) {
	tests := []struct {
		name    string
		args    []string
		want    controllerManagerFlags
		wantErr string
	}{
		{
			name: "defaults",
			args: []string{"--kubeconfig", "/k"},
			want: controllerManagerFlags{kubeconfig: "/k", leaderElect: true, controllers: "*", log: logFlags{format: "text"}},
		},
		{
			name: "everything",
			args: []string{"--kubeconfig=/k", "--leader-elect=false", "--controllers", "replicaset,-namespace", "--workers", "3", "--log-format", "json", "-v"},
			want: controllerManagerFlags{kubeconfig: "/k", controllers: "replicaset,-namespace", workers: 3, log: logFlags{format: "json", verbose: true}},
		},
		{name: "no kubeconfig", args: nil, wantErr: "--kubeconfig is required"},
		{name: "bad format", args: []string{"--kubeconfig", "/k", "--log-format", "xml"}, wantErr: "--log-format must be text or json"},
		{name: "unknown controller", args: []string{"--kubeconfig", "/k", "--controllers", "replicaset,nope"}, wantErr: `unknown controller "nope"`},
		{name: "extra argument", args: []string{"--kubeconfig", "/k", "extra"}, wantErr: `unexpected argument "extra"`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var stderr bytes.Buffer
			got, err := parseControllerManagerFlags(tt.args, &stderr)
			if tt.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
					t.Fatalf("error = %v, want one containing %q", err, tt.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatalf("unexpected error: %v", err)
			}
			if diff := cmp.Diff(tt.want, got, cmp.AllowUnexported(controllerManagerFlags{}, logFlags{})); diff != "" {
				t.Errorf("flags (-want +got):\n%s", diff)
			}
		})
	}
}

func TestRunControllerManagerExitCodes(t *testing.T) {
	tests := []struct {
		name string
		args []string
		want int
	}{
		{name: "help", args: []string{"-h"}, want: exitOK},
		{name: "usage error", args: []string{"--log-format", "xml"}, want: exitUsage},
		{name: "missing kubeconfig file", args: []string{"--kubeconfig", "/nonexistent/kubeconfig"}, want: exitError},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var stderr bytes.Buffer
			if got := runControllerManager(tt.args, &stderr); got != tt.want {
				t.Errorf("exit code = %d, want %d; stderr:\n%s", got, tt.want, stderr.String())
			}
		})
	}
}

// syncBuffer is a bytes.Buffer safe for one writer and one reader.
type syncBuffer struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (b *syncBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.Write(p)
}

func (b *syncBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.String()
}

// TestControllerManagerRunsUntilSIGTERM runs the command against a real API
// server with leader election, and stops it the way a supervisor does.
// Not parallel: it signals the test process itself.
func TestControllerManagerRunsUntilSIGTERM(t *testing.T) {
	cfg := testserver.Start(t, testserver.Options{})
	kubeconfig := filepath.Join(t.TempDir(), "kubeconfig")
	api := clientcmdapi.NewConfig()
	api.Clusters["skiff"] = &clientcmdapi.Cluster{Server: cfg.Host, CertificateAuthorityData: cfg.CAData}
	api.AuthInfos["admin"] = &clientcmdapi.AuthInfo{ClientCertificateData: cfg.CertData, ClientKeyData: cfg.KeyData}
	api.Contexts["skiff"] = &clientcmdapi.Context{Cluster: "skiff", AuthInfo: "admin"}
	api.CurrentContext = "skiff"
	if err := clientcmd.WriteToFile(*api, kubeconfig); err != nil {
		t.Fatalf("writing kubeconfig: %v", err)
	}

	var stderr syncBuffer
	code := make(chan int, 1)
	go func() {
		code <- runControllerManager([]string{"--kubeconfig", kubeconfig, "--controllers", "replicaset"}, &stderr)
	}()
	deadline := time.Now().Add(30 * time.Second)
	for !strings.Contains(stderr.String(), "controllers started") {
		select {
		case c := <-code:
			t.Fatalf("exited with %d before starting; stderr:\n%s", c, stderr.String())
		case <-time.After(20 * time.Millisecond):
		}
		if time.Now().After(deadline) {
			t.Fatalf("controllers not started within 30s; stderr:\n%s", stderr.String())
		}
	}
	if err := syscall.Kill(os.Getpid(), syscall.SIGTERM); err != nil {
		t.Fatalf("signalling: %v", err)
	}
	select {
	case c := <-code:
		if c != exitOK {
			t.Errorf("exit code = %d, want %d; stderr:\n%s", c, exitOK, stderr.String())
		}
	case <-time.After(30 * time.Second):
		t.Fatalf("still running 30s after SIGTERM")
	}
}
