package main

import (
	"context"
	"io"
	"log/slog"
	"net"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/skiff-dev/skiff/internal/agent/bootstrap"
	"github.com/skiff-dev/skiff/internal/auth/tokens"
	"github.com/skiff-dev/skiff/internal/server"
)

// startServerDir runs a server with the controller manager (as "skiff
// server --disable-agent --disable-scheduler" does) on a data dir the test
// knows and returns it once its admin kubeconfig is written.
func startServerDir(t *testing.T) string {
	t.Helper()
	dir := t.TempDir()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	listen := ln.Addr().String()
	_ = ln.Close()
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() {
		done <- server.Run(ctx, server.Config{DataDir: dir, Listen: listen, Logger: slog.New(slog.DiscardHandler), Progress: io.Discard,
			Components: controlPlaneComponents(dir, false, true)})
	}()
	t.Cleanup(func() {
		cancel()
		select {
		case err := <-done:
			if err != nil {
				t.Errorf("server stopped with: %v", err)
			}
		case <-time.After(30 * time.Second):
			t.Errorf("server did not stop within 30s")
		}
	})
	deadline := time.Now().Add(60 * time.Second)
	for {
		if _, err := os.Stat(filepath.Join(dir, "kubeconfig")); err == nil {
			return dir
		}
		select {
		case err := <-done:
			t.Fatalf("server exited: %v", err)
		case <-time.After(20 * time.Millisecond):
		}
		if time.Now().After(deadline) {
			t.Fatal("server not ready within 60s")
		}
	}
}

func TestTokenCreateAndList(t *testing.T) {
	dir := startServerDir(t)
	var stdout, stderr strings.Builder
	if code := run([]string{"token", "create", "--data-dir", dir, "--ttl", "2h", "--description", "for n2"}, &stdout, &stderr); code != exitOK {
		t.Fatalf("token create = %d\n%s", code, stderr.String())
	}
	out := stdout.String()
	m := regexp.MustCompile(`(?m)^  skiff agent --server (https://\S+) --token (K10[0-9a-f]{64}::[a-z0-9]{6}\.[a-z0-9]{16}) --data-dir \S+$`).FindStringSubmatch(out)
	if m == nil {
		t.Fatalf("token create printed no join command:\n%s", out)
	}
	if first := strings.SplitN(out, "\n", 2)[0]; first != m[2] {
		t.Errorf("first line %q, want the token %q", first, m[2])
	}
	if !strings.Contains(stderr.String(), "loopback") {
		t.Errorf("no loopback warning for %s: %q", m[1], stderr.String())
	}
	tok, hash, err := bootstrap.ParseJoinToken(m[2])
	if err != nil {
		t.Fatal(err)
	}
	wantHash, err := caHashOf(filepath.Join(dir, "pki", "ca.crt"))
	if err != nil {
		t.Fatal(err)
	}
	if hash != wantHash {
		t.Errorf("token CA hash %s, want %s", hash, wantHash)
	}

	client, _, err := adminClient(dir)
	if err != nil {
		t.Fatal(err)
	}
	id := tok[:6]
	secret, err := client.CoreV1().Secrets("kube-system").Get(t.Context(), tokens.BootstrapTokenSecretPrefix+id, metav1.GetOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if secret.Type != corev1.SecretTypeBootstrapToken || string(secret.Data[tokens.BootstrapTokenSecretKey]) != tok[7:] ||
		string(secret.Data[tokens.BootstrapTokenExtraGroupsKey]) != defaultTokenGroup || string(secret.Data[tokens.BootstrapTokenDescriptionKey]) != "for n2" {
		t.Errorf("secret %+v does not hold the token as expected", secret)
	}
	exp, err := time.Parse(time.RFC3339, string(secret.Data[tokens.BootstrapTokenExpirationKey]))
	if err != nil || exp.Before(time.Now().Add(time.Hour)) || exp.After(time.Now().Add(3*time.Hour)) {
		t.Errorf("expiration %q (%v), want in about 2h", secret.Data[tokens.BootstrapTokenExpirationKey], err)
	}

	// The printed command joins: the controller manager's csrapproving
	// and csrsigning (with their own identity) approve and sign.
	ctx, cancel := context.WithTimeout(t.Context(), 60*time.Second)
	defer cancel()
	token, caHash, err := bootstrap.ResolveToken(m[2], "")
	if err != nil {
		t.Fatal(err)
	}
	path, err := joinWithRetry(ctx, bootstrap.Config{Server: m[1], Token: token, CAHash: caHash, NodeName: "n2", Dir: filepath.Join(t.TempDir(), "agent")},
		bootstrap.Kubeconfig, slog.New(slog.DiscardHandler))
	if err != nil {
		t.Fatalf("joining with the printed token: %v", err)
	}
	if _, err := os.Stat(path); err != nil {
		t.Fatal(err)
	}

	stdout.Reset()
	if code := run([]string{"token", "create", "--data-dir", dir, "--server", "https://10.1.2.3:6443"}, &stdout, &stderr); code != exitOK {
		t.Fatalf("token create --server = %d\n%s", code, stderr.String())
	}
	if !strings.Contains(stdout.String(), "skiff agent --server https://10.1.2.3:6443 --token K10") {
		t.Errorf("--server not used in the join command:\n%s", stdout.String())
	}

	stdout.Reset()
	if code := run([]string{"token", "list", "--data-dir", dir}, &stdout, &stderr); code != exitOK {
		t.Fatalf("token list = %d\n%s", code, stderr.String())
	}
	list := stdout.String()
	if !strings.Contains(list, id) || !strings.Contains(list, "for n2") || strings.Contains(list, tok[7:]) {
		t.Errorf("token list lacks id %s or description, or shows the secret:\n%s", id, list)
	}
	if n := strings.Count(list, "\n"); n != 3 {
		t.Errorf("token list has %d lines, want a header and 2 tokens:\n%s", n, list)
	}
}

func TestTokenCommandErrors(t *testing.T) {
	t.Parallel()
	tests := []struct {
		args     []string
		wantCode int
		wantErr  string
	}{
		{args: []string{"token"}, wantCode: exitUsage, wantErr: "skiff token create"},
		{args: []string{"token", "revoke"}, wantCode: exitUsage, wantErr: `unknown command "revoke"`},
		{args: []string{"token", "create"}, wantCode: exitUsage, wantErr: "--data-dir is required"},
		{args: []string{"token", "create", "--data-dir", "/d", "--ttl", "-1h"}, wantCode: exitUsage, wantErr: "--ttl must not be negative"},
		{args: []string{"token", "create", "--data-dir", "/d", "--server", "cp:6443"}, wantCode: exitUsage, wantErr: "not an https URL"},
		{args: []string{"token", "create", "--data-dir", t.TempDir()}, wantCode: exitError, wantErr: "is a skiff server running"},
		{args: []string{"token", "list"}, wantCode: exitUsage, wantErr: "--data-dir is required"},
	}
	for _, tt := range tests {
		var stdout, stderr strings.Builder
		if code := run(tt.args, &stdout, &stderr); code != tt.wantCode || !strings.Contains(stderr.String(), tt.wantErr) {
			t.Errorf("%q: exit %d, stderr %q; want %d and %q", tt.args, code, stderr.String(), tt.wantCode, tt.wantErr)
		}
	}
}

func TestIsLoopbackURL(t *testing.T) {
	t.Parallel()
	for in, want := range map[string]bool{
		"https://127.0.0.1:6443": true, "https://localhost:6443": true, "https://[::1]:6443": true,
		"https://10.0.0.1:6443": false, "https://cp.example:6443": false,
	} {
		if got := isLoopbackURL(in); got != want {
			t.Errorf("isLoopbackURL(%q) = %v, want %v", in, got, want)
		}
	}
}
