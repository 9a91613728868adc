package apiserver_test

import (
	"bytes"
	"context"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"k8s.io/client-go/rest"
	"k8s.io/client-go/tools/clientcmd"
	clientcmdapi "k8s.io/client-go/tools/clientcmd/api"

	"github.com/skiff-dev/skiff/internal/testserver"
)

// TestReviewsOnServer runs kubectl auth can-i and auth whoami (oldest and
// newest kubectl) as the admin of a real server (internal/testserver).
func TestReviewsOnServer(t *testing.T) {
	if testing.Short() {
		t.Skip("starts a server and runs kubectl")
	}
	path, err := exec.LookPath("kubectl")
	if err != nil {
		t.Skip("kubectl not on PATH")
	}
	if p, err := filepath.EvalSymlinks(path); err == nil {
		path = p
	}
	var bins []string
	for _, v := range []string{"1.27", "1.33"} {
		if p := filepath.Join(filepath.Dir(path), "kubectl."+v); reviewFileExists(p) {
			bins = append(bins, p)
		}
	}
	if len(bins) == 0 {
		bins = []string{path}
	}
	kubeconfig := reviewKubeconfig(t, testserver.Start(t, testserver.Options{}))
	for _, bin := range bins {
		t.Run(filepath.Base(bin), func(t *testing.T) {
			t.Parallel()
			cacheDir := t.TempDir()
			for _, tc := range []struct {
				args []string
				want []string
			}{
				{args: []string{"auth", "can-i", "get", "pods"}, want: []string{"yes"}},
				{args: []string{"auth", "can-i", "delete", "nodes", "--all-namespaces"}, want: []string{"yes"}},
				{args: []string{"auth", "can-i", "get", "/healthz"}, want: []string{"yes"}},
				// cluster-admin, bound to system:masters: every verb on
				// every resource and URL.
				{args: []string{"auth", "can-i", "--list"}, want: []string{"Resources", "*.*", "[*]"}},
				{args: []string{"auth", "whoami"}, want: []string{"Username", "system:masters", "system:authenticated"}},
				{args: []string{"auth", "whoami", "-o", "json"}, want: []string{`"kind": "SelfSubjectReview"`}},
			} {
				ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
				cmd := exec.CommandContext(ctx, bin, append([]string{"--kubeconfig", kubeconfig, "--cache-dir", cacheDir}, tc.args...)...)
				var out bytes.Buffer
				cmd.Stdout, cmd.Stderr = &out, &out
				err := cmd.Run()
				cancel()
				if err != nil {
					t.Errorf("kubectl %s: %v\n%s", strings.Join(tc.args, " "), err, out.String())
					continue
				}
				for _, w := range tc.want {
					if !strings.Contains(out.String(), w) {
						t.Errorf("kubectl %s: output lacks %q:\n%s", strings.Join(tc.args, " "), w, out.String())
					}
				}
			}
		})
	}
}

func reviewFileExists(p string) bool {
	_, err := os.Stat(p)
	return err == nil
}

// reviewKubeconfig writes a kubeconfig for cfg (TLS client credentials,
// files or data) and returns its path.
func reviewKubeconfig(t *testing.T, cfg *rest.Config) string {
	t.Helper()
	kc := clientcmdapi.NewConfig()
	kc.Clusters["skiff"] = &clientcmdapi.Cluster{
		Server:                   cfg.Host,
		CertificateAuthority:     cfg.CAFile,
		CertificateAuthorityData: cfg.CAData,
	}
	kc.AuthInfos["admin"] = &clientcmdapi.AuthInfo{
		ClientCertificate: cfg.CertFile, ClientCertificateData: cfg.CertData,
		ClientKey: cfg.KeyFile, ClientKeyData: cfg.KeyData,
		Token: cfg.BearerToken,
	}
	kc.Contexts["skiff"] = &clientcmdapi.Context{Cluster: "skiff", AuthInfo: "admin", Namespace: "default"}
	kc.CurrentContext = "skiff"
	p := filepath.Join(t.TempDir(), "kubeconfig")
	if err := clientcmd.WriteToFile(*kc, p); err != nil {
		t.Fatal(err)
	}
	return p
}
