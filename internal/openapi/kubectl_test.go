package openapi

import (
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/skiff-dev/skiff/internal/discovery"
)

// TestKubectl runs stock kubectl explain and api-resources against
// discovery and OpenAPI alone, which is all those commands read. It is
// skipped when kubectl is not installed; the kubectl.1.27 binary next to
// it, if present, checks the v2beta1 aggregated discovery path too.
func TestKubectl(t *testing.T) {
	t.Parallel()
	kubectl, err := exec.LookPath("kubectl")
	if err != nil {
		t.Skip("kubectl not installed")
	}
	bins := []string{kubectl}
	if real, err := filepath.EvalSymlinks(kubectl); err == nil {
		if old := filepath.Join(filepath.Dir(real), "kubectl.1.27"); fileExists(old) {
			bins = append(bins, old)
		}
	}

	oa, err := New(testResources())
	if err != nil {
		t.Fatalf("New: %v", err)
	}
	disc := discovery.New(testResources())
	mux := http.NewServeMux()
	for _, p := range []string{"/api", "/api/", "/apis", "/apis/"} {
		mux.Handle(p, disc)
	}
	mux.Handle("/openapi/", oa)
	mux.HandleFunc("/version", func(w http.ResponseWriter, _ *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		_, _ = w.Write([]byte(`{"major":"1","minor":"33","gitVersion":"v1.33.0"}`))
	})
	srv := httptest.NewServer(mux)
	t.Cleanup(srv.Close)

	dir := t.TempDir()
	kubeconfig := filepath.Join(dir, "kubeconfig")
	cfg := "apiVersion: v1\nkind: Config\nclusters: [{name: c, cluster: {server: " + srv.URL + "}}]\n" +
		"users: [{name: u, user: {}}]\ncontexts: [{name: c, context: {cluster: c, user: u}}]\ncurrent-context: c\n"
	if err := os.WriteFile(kubeconfig, []byte(cfg), 0o600); err != nil {
		t.Fatalf("writing kubeconfig: %v", err)
	}

	for _, bin := range bins {
		for _, tc := range []struct {
			name string
			args []string
			want []string
		}{
			{name: "explain containers", args: []string{"explain", "pods.spec.containers"},
				want: []string{"List of containers belonging to the pod", "imagePullPolicy"}},
			{name: "explain deployment v2", args: []string{"explain", "deployments.spec.strategy", "--output=plaintext-openapiv2"},
				want: []string{"rollingUpdate", "Recreate"}},
			{name: "explain clusterroles", args: []string{"explain", "clusterroles.rules"},
				want: []string{"PolicyRule", "verbs"}},
			{name: "api-resources", args: []string{"api-resources", "-o", "wide"},
				want: []string{"deployments", "apps/v1", "clusterroles", "bindings"}},
		} {
			t.Run(filepath.Base(bin)+"/"+tc.name, func(t *testing.T) {
				args := append([]string{"--kubeconfig", kubeconfig, "--cache-dir", filepath.Join(dir, filepath.Base(bin))}, tc.args...)
				out, err := exec.Command(bin, args...).CombinedOutput()
				if err != nil {
					t.Fatalf("kubectl %v: %v\n%s", tc.args, err, out)
				}
				for _, w := range tc.want {
					if !strings.Contains(string(out), w) {
						t.Errorf("kubectl %v output lacks %q:\n%s", tc.args, w, out)
					}
				}
			})
		}
	}
}

func fileExists(p string) bool {
	_, err := os.Stat(p)
	return err == nil
}
