package main

import (
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/skiff-dev/skiff/internal/agent/eviction"
)

func TestRunCommandLine(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name       string
		args       []string
		wantCode   int
		wantStdout string // substring
		wantStderr string // substring
	}{
		{name: "no command", args: nil, wantCode: exitUsage, wantStderr: "Usage:"},
		{name: "unknown command", args: []string{"kubelet"}, wantCode: exitUsage, wantStderr: `unknown command "kubelet"`},
		{name: "help", args: []string{"--help"}, wantCode: exitOK, wantStdout: "skiff server --data-dir DIR"},
		{name: "version", args: []string{"version"}, wantCode: exitOK, wantStdout: "skiff 0.1.0-dev (Kubernetes API v1.33.0)"},
		{name: "version extra arg", args: []string{"version", "x"}, wantCode: exitUsage, wantStderr: `unexpected argument "x"`},
		{name: "server without data dir", args: []string{"server"}, wantCode: exitUsage, wantStderr: "--data-dir is required"},
		{name: "server bad flag", args: []string{"server", "--nope"}, wantCode: exitUsage, wantStderr: "flag provided but not defined: -nope"},
		{name: "server bad log format", args: []string{"server", "--data-dir", "/x", "--log-format", "xml"}, wantCode: exitUsage, wantStderr: `--log-format must be text or json, not "xml"`},
		{name: "server help", args: []string{"server", "-h"}, wantCode: exitOK, wantStderr: "-etcd-servers"},
		{name: "server bad node ip", args: []string{"server", "--data-dir", "/x", "--node-ip", "nope"}, wantCode: exitUsage, wantStderr: `--node-ip: "nope" is not an IP address`},
		{name: "server bad taint", args: []string{"server", "--data-dir", "/x", "--register-with-taints", "k=v:Sometimes"}, wantCode: exitUsage, wantStderr: "effect must be NoSchedule"},
		{name: "agent without kubeconfig", args: []string{"agent", "--data-dir", "/x"}, wantCode: exitUsage, wantStderr: "--kubeconfig is required"},
		{name: "bad eviction threshold", args: []string{"server", "--data-dir", "/x", "--eviction-hard", "memory.available=1Gi"}, wantCode: exitUsage, wantStderr: "--eviction-hard: "},
		{name: "agent help", args: []string{"agent", "-h"}, wantCode: exitOK, wantStderr: "-kubelet-port"},
		{name: "event ttl too short", args: []string{"server", "--data-dir", "/x", "--event-ttl", "10ms"}, wantCode: exitUsage, wantStderr: "--event-ttl: 10ms is shorter than a second"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			var stdout, stderr strings.Builder
			code := run(tc.args, &stdout, &stderr)
			if code != tc.wantCode {
				t.Errorf("exit code = %d, want %d\nstderr:\n%s", code, tc.wantCode, stderr.String())
			}
			if !strings.Contains(stdout.String(), tc.wantStdout) {
				t.Errorf("stdout lacks %q:\n%s", tc.wantStdout, stdout.String())
			}
			if !strings.Contains(stderr.String(), tc.wantStderr) {
				t.Errorf("stderr lacks %q:\n%s", tc.wantStderr, stderr.String())
			}
		})
	}
}

func TestParseServerFlags(t *testing.T) {
	t.Parallel()
	var stderr strings.Builder
	got, err := parseServerFlags([]string{
		"--data-dir", "/d", "--listen", "0.0.0.0:7443", "--etcd-servers", "http://a:2379, http://b:2379,",
		"--disable-agent", "--log-format", "json", "-v", "--node-name", "n1", "--node-ip", "10.0.0.5",
		"--node-labels", "a=b,c=", "--register-with-taints", "k=v:NoSchedule",
		"--eviction-hard", "memory.available<1Gi,imagefs.available<15%", "--event-ttl", "30m",
	}, &stderr)
	if err != nil {
		t.Fatalf("parse: %v\n%s", err, stderr.String())
	}
	want := serverFlags{dataDir: "/d", listen: "0.0.0.0:7443", etcdServers: "http://a:2379, http://b:2379,", disableAgent: true, serviceCIDR: "10.96.0.0/12", eventTTL: 30 * time.Minute, log: logFlags{format: "json", verbose: true},
		node: nodeFlags{nodeName: "n1", nodeIP: "10.0.0.5", kubeletPort: 10250, clusterDomain: "cluster.local", labels: "a=b,c=", taints: "k=v:NoSchedule",
			clusterCIDR: "10.42.0.0/16", ingressHTTP: 80, ingressHTTPS: 443, evictionHard: "memory.available<1Gi,imagefs.available<15%"}}
	if diff := cmp.Diff(want, got, cmp.AllowUnexported(serverFlags{}, logFlags{}, nodeFlags{})); diff != "" {
		t.Errorf("flags (-want +got):\n%s", diff)
	}
	if diff := cmp.Diff([]string{"http://a:2379", "http://b:2379"}, splitList(got.etcdServers)); diff != "" {
		t.Errorf("splitList (-want +got):\n%s", diff)
	}
}

func TestDefaultEvictionHardIsTheDefaults(t *testing.T) {
	t.Parallel()
	got, err := eviction.ParseThresholds(defaultEvictionHard)
	if err != nil {
		t.Fatal(err)
	}
	if !slices.Equal(got, eviction.DefaultThresholds()) {
		t.Errorf("--eviction-hard default parses to %+v, want eviction.DefaultThresholds() %+v", got, eviction.DefaultThresholds())
	}
}
