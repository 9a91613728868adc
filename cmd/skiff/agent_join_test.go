package main

import (
	"context"
	"errors"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/skiff-dev/skiff/internal/agent/bootstrap"
)

func TestParseAgentJoinFlags(t *testing.T) {
	t.Parallel()
	hash := "sha256:" + strings.Repeat("0f", 32)
	join := "K10" + strings.Repeat("0f", 32) + "::abcdef.0123456789abcdef"
	joined := t.TempDir() // a data dir whose node already has a certificate
	if err := os.MkdirAll(filepath.Join(joined, "agent"), 0o700); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(joined, "agent", bootstrap.KubeconfigFile), []byte("x"), 0o600); err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name    string
		args    []string
		wantErr string // "" means valid
	}{
		{name: "kubeconfig", args: []string{"--data-dir", "/d", "--kubeconfig", "/k"}},
		{name: "join token", args: []string{"--data-dir", "/d", "--server", "https://10.0.0.1:6443", "--token", join}},
		{name: "plain token and hash", args: []string{"--data-dir", "/d", "--server", "https://cp:6443", "--token", "abcdef.0123456789abcdef", "--ca-cert-hash", hash}},
		{name: "nothing", args: []string{"--data-dir", "/d"}, wantErr: "--kubeconfig is required (or --server and --token"},
		{name: "both", args: []string{"--data-dir", "/d", "--kubeconfig", "/k", "--token", join}, wantErr: "cannot be combined"},
		{name: "token without server", args: []string{"--data-dir", "/d", "--token", join}, wantErr: "--server is required"},
		{name: "http server", args: []string{"--data-dir", "/d", "--server", "http://cp:6443", "--token", join}, wantErr: "not an https URL"},
		{name: "plain token without hash", args: []string{"--data-dir", "/d", "--server", "https://cp:6443", "--token", "abcdef.0123456789abcdef"}, wantErr: "needs --ca-cert-hash"},
		{name: "malformed token", args: []string{"--data-dir", "/d", "--server", "https://cp:6443", "--token", "nope"}, wantErr: "--token: bootstrap: malformed token"},
		{name: "hash mismatch", args: []string{"--data-dir", "/d", "--server", "https://cp:6443", "--token", join, "--ca-cert-hash", "sha256:" + strings.Repeat("ee", 32)}, wantErr: "differs"},
		{name: "server without token, not joined", args: []string{"--data-dir", t.TempDir(), "--server", "https://cp:6443"}, wantErr: "--token is required to join"},
		{name: "server without token, joined before", args: []string{"--data-dir", joined, "--server", "https://cp:6443"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var stderr strings.Builder
			_, err := parseAgentFlags(tt.args, &stderr)
			if tt.wantErr == "" {
				if err != nil {
					t.Fatalf("parse: %v\n%s", err, stderr.String())
				}
				return
			}
			if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
				t.Fatalf("parse error = %v, want one containing %q", err, tt.wantErr)
			}
		})
	}
}

func TestSuperviseAgentRestartsOnRotation(t *testing.T) {
	t.Parallel()
	var starts atomic.Int32
	running := make(chan struct{}, 10)
	run := func(ctx context.Context) error {
		starts.Add(1)
		running <- struct{}{}
		<-ctx.Done()
		return nil
	}
	rotateNow := make(chan struct{})
	rotate := func(ctx context.Context, _ bootstrap.Config, onRotate func()) error {
		for {
			select {
			case <-ctx.Done():
				return nil
			case <-rotateNow:
				onRotate()
			}
		}
	}
	ctx, cancel := context.WithCancel(t.Context())
	done := make(chan error, 1)
	go func() { done <- superviseAgent(ctx, bootstrap.Config{}, run, rotate, slog.New(slog.DiscardHandler)) }()
	wait := func() {
		t.Helper()
		select {
		case <-running:
		case <-time.After(10 * time.Second):
			t.Fatal("agent run loop not (re)started")
		}
	}
	wait()
	rotateNow <- struct{}{}
	wait()
	rotateNow <- struct{}{}
	wait()
	cancel()
	if err := <-done; err != nil {
		t.Errorf("superviseAgent = %v, want nil after cancel", err)
	}
	if n := starts.Load(); n != 3 {
		t.Errorf("run started %d times, want 3", n)
	}
}

func TestSuperviseAgentReportsFailures(t *testing.T) {
	t.Parallel()
	idleRotate := func(ctx context.Context, _ bootstrap.Config, _ func()) error { <-ctx.Done(); return nil }
	boom := errors.New("boom")
	err := superviseAgent(t.Context(), bootstrap.Config{}, func(context.Context) error { return boom }, idleRotate, slog.New(slog.DiscardHandler))
	if !errors.Is(err, boom) {
		t.Errorf("run failure: superviseAgent = %v, want %v", err, boom)
	}
	blockRun := func(ctx context.Context) error { <-ctx.Done(); return nil }
	failRotate := func(context.Context, bootstrap.Config, func()) error { return boom }
	err = superviseAgent(t.Context(), bootstrap.Config{}, blockRun, failRotate, slog.New(slog.DiscardHandler))
	if !errors.Is(err, boom) || !strings.Contains(err.Error(), "certificate rotation") {
		t.Errorf("rotation failure: superviseAgent = %v, want certificate rotation: %v", err, boom)
	}
}

func TestJoinWithRetry(t *testing.T) {
	t.Parallel()
	transient := errors.New("connection refused")
	tests := []struct {
		name      string
		errs      []error // returned by successive calls; then success
		wantErr   error
		wantCalls int
	}{
		{name: "at once", wantCalls: 1},
		{name: "after a transient failure", errs: []error{transient}, wantCalls: 2},
		{name: "wrong CA is final", errs: []error{bootstrap.ErrCAHashMismatch}, wantErr: bootstrap.ErrCAHashMismatch, wantCalls: 1},
		{name: "denied is final", errs: []error{bootstrap.ErrDenied}, wantErr: bootstrap.ErrDenied, wantCalls: 1},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			calls := 0
			obtain := func(context.Context, bootstrap.Config) (string, error) {
				calls++
				if calls <= len(tt.errs) {
					return "", tt.errs[calls-1]
				}
				return "/k", nil
			}
			path, err := joinWithRetry(t.Context(), bootstrap.Config{}, obtain, slog.New(slog.DiscardHandler))
			if !errors.Is(err, tt.wantErr) || (err == nil && path != "/k") {
				t.Errorf("joinWithRetry = %q, %v; want /k, %v", path, err, tt.wantErr)
			}
			if calls != tt.wantCalls {
				t.Errorf("%d calls, want %d", calls, tt.wantCalls)
			}
		})
	}
}
