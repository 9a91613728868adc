package apiserver

import (
	"bytes"
	"context"
	"encoding/base64"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/skiff-dev/skiff/internal/discovery"
	"github.com/skiff-dev/skiff/internal/openapi"
	"github.com/skiff-dev/skiff/internal/registry"
)

// TestReviewsKubectl runs kubectl auth can-i and auth whoami, as alice (a
// bearer token) and as admin (a client certificate in system:masters),
// against a server with the fake authenticator, authorizer and rules of
// reviews_test.go.
func TestReviewsKubectl(t *testing.T) {
	if testing.Short() {
		t.Skip("runs kubectl binaries")
	}
	bins := kubectlBinaries(t)
	env := newTestEnv(t, func(c *Config) {
		var resources []*registry.Resource
		for _, st := range c.Stores {
			resources = append(resources, st.Resource)
		}
		c.Discovery = discovery.New(resources, discovery.ReviewGroups()...)
		oa, err := openapi.New(resources)
		if err != nil {
			t.Fatalf("openapi: %v", err)
		}
		c.OpenAPI = oa
		c.Authenticator, c.Authorizer, c.Rules = reviewTokens{}, reviewAuthorizer{}, reviewRules{}
	})
	kubeconfig := filepath.Join(t.TempDir(), "kubeconfig")
	tlsc := env.adminConfig.TLSClientConfig
	b64 := base64.StdEncoding.EncodeToString
	cfg := fmt.Sprintf(`apiVersion: v1
kind: Config
clusters:
- name: skiff
  cluster:
    server: %s
    certificate-authority-data: %s
users:
- name: admin
  user:
    client-certificate-data: %s
    client-key-data: %s
- name: alice
  user:
    token: alice-token
contexts:
- name: admin
  context: {cluster: skiff, user: admin, namespace: default}
- name: alice
  context: {cluster: skiff, user: alice, namespace: dev}
current-context: alice
`, env.ts.URL, b64(tlsc.CAData), b64(tlsc.CertData), b64(tlsc.KeyData))
	if err := os.WriteFile(kubeconfig, []byte(cfg), 0o600); err != nil {
		t.Fatal(err)
	}
	for _, bin := range bins {
		t.Run(filepath.Base(bin), func(t *testing.T) {
			t.Parallel()
			cacheDir := t.TempDir()
			for _, tc := range []struct {
				name     string
				stdin    string
				args     []string
				wantFail bool // kubectl auth can-i exits 1 for "no"
				want     []string
			}{
				{name: "can-i yes", args: []string{"auth", "can-i", "get", "pods"}, want: []string{"yes"}},
				{name: "can-i denied", args: []string{"auth", "can-i", "delete", "pods"}, wantFail: true,
					want: []string{"no - alice[devs system:authenticated] delete ns=dev /* pods/ name="}},
				{name: "can-i evaluation error", args: []string{"auth", "can-i", "get", "secrets"}, wantFail: true,
					want: []string{"no", "secrets backend down"}},
				{name: "can-i non-resource", args: []string{"auth", "can-i", "get", "/healthz"}, want: []string{"yes"}},
				{name: "can-i list", args: []string{"auth", "can-i", "--list"},
					want: []string{"pods", "[web]", "[get list]", "/healthz"}},
				{name: "whoami", args: []string{"auth", "whoami"}, want: []string{"alice", "u-1", "devs", "system:authenticated", "scopes"}},
				{name: "whoami yaml", args: []string{"auth", "whoami", "-o", "yaml"}, want: []string{"kind: SelfSubjectReview", "username: alice"}},
				{name: "admin can-i anything", args: []string{"--context", "admin", "auth", "can-i", "*", "*"}, want: []string{"yes"}},
				{name: "create from a manifest", args: []string{"create", "-f", "-", "-o", "jsonpath={.status.allowed}"},
					stdin: "apiVersion: authorization.k8s.io/v1\nkind: SelfSubjectAccessReview\nspec: {resourceAttributes: {namespace: dev, verb: get, resource: pods}}\n",
					want:  []string{"true"}},
				{name: "create with an unknown field", args: []string{"create", "-f", "-"}, wantFail: true,
					stdin: "apiVersion: authorization.k8s.io/v1\nkind: SelfSubjectAccessReview\nbogus: 1\nspec: {resourceAttributes: {verb: get}}\n",
					want:  []string{`unknown field "bogus"`}},
				{name: "admin whoami", args: []string{"--context", "admin", "auth", "whoami"}, want: []string{"admin", "system:masters"}},
			} {
				ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
				cmd := exec.CommandContext(ctx, bin, append([]string{"--kubeconfig", kubeconfig, "--cache-dir", cacheDir}, tc.args...)...)
				var out bytes.Buffer
				cmd.Stdin = strings.NewReader(tc.stdin)
				cmd.Stdout, cmd.Stderr = &out, &out
				err := cmd.Run()
				cancel()
				if (err != nil) != tc.wantFail {
					t.Errorf("%s: kubectl %s: err %v, want failure %v\n%s", tc.name, strings.Join(tc.args, " "), err, tc.wantFail, out.String())
					continue
				}
				for _, w := range tc.want {
					if !strings.Contains(out.String(), w) {
						t.Errorf("%s: kubectl %s: output lacks %q:\n%s", tc.name, strings.Join(tc.args, " "), w, out.String())
					}
				}
			}
		})
	}
}
