package openapi

import (
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"

	apiextensionsv1 "k8s.io/apiextensions-apiserver/pkg/apis/apiextensions/v1"
	"k8s.io/apimachinery/pkg/runtime/schema"

	"github.com/skiff-dev/skiff/internal/discovery"
	"github.com/skiff-dev/skiff/internal/registry/builtin"
)

// kubectlBinaries returns kubectl and, if present, the kubectl.1.27
// binary next to it; it skips the test when kubectl is not installed.
func kubectlBinaries(t *testing.T) []string {
	t.Helper()
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
	return bins
}

// kubectlServer serves discovery, the OpenAPI handler oa, /version and
// whatever more adds, and returns a kubeconfig for it.
func kubectlServer(t *testing.T, oa http.Handler, disc http.Handler, more func(*http.ServeMux)) string {
	t.Helper()
	mux := http.NewServeMux()
	for _, p := range []string{"/api", "/api/", "/apis", "/apis/"} {
		mux.Handle(p, disc)
	}
	mux.Handle("/openapi/", oa)
	mux.HandleFunc("/version", func(w http.ResponseWriter, _ *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		_, _ = w.Write([]byte(`{"major":"1","minor":"33","gitVersion":"v1.33.0"}`))
	})
	if more != nil {
		more(mux)
	}
	srv := httptest.NewServer(mux)
	t.Cleanup(srv.Close)

	kubeconfig := filepath.Join(t.TempDir(), "kubeconfig")
	cfg := "apiVersion: v1\nkind: Config\nclusters: [{name: c, cluster: {server: " + srv.URL + "}}]\n" +
		"users: [{name: u, user: {}}]\ncontexts: [{name: c, context: {cluster: c, user: u}}]\ncurrent-context: c\n"
	if err := os.WriteFile(kubeconfig, []byte(cfg), 0o600); err != nil {
		t.Fatalf("writing kubeconfig: %v", err)
	}
	return kubeconfig
}

type kubectlCase struct {
	name string
	args []string
	want []string
}

func runKubectl(t *testing.T, bins []string, kubeconfig string, cases []kubectlCase) {
	t.Helper()
	cacheDir := t.TempDir()
	for _, bin := range bins {
		for _, tc := range cases {
			t.Run(filepath.Base(bin)+"/"+tc.name, func(t *testing.T) {
				args := append([]string{"--kubeconfig", kubeconfig, "--cache-dir", filepath.Join(cacheDir, filepath.Base(bin))}, tc.args...)
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

// TestKubectl runs stock kubectl explain and api-resources against
// discovery and OpenAPI alone, which is all those commands read. It is
// skipped when kubectl is not installed; the kubectl.1.27 binary next to
// it, if present, checks the v2beta1 aggregated discovery path too.
func TestKubectl(t *testing.T) {
	t.Parallel()
	bins := kubectlBinaries(t)
	oa, err := New(testResources())
	if err != nil {
		t.Fatalf("New: %v", err)
	}
	kubeconfig := kubectlServer(t, oa, discovery.New(testResources()), nil)
	runKubectl(t, bins, kubeconfig, []kubectlCase{
		{name: "explain containers", args: []string{"explain", "pods.spec.containers"},
			want: []string{"List of containers belonging to the pod", "imagePullPolicy"}},
		{name: "explain deployment v2", args: []string{"explain", "deployments.spec.strategy", "--output=plaintext-openapiv2"},
			want: []string{"rollingUpdate", "Recreate"}},
		{name: "explain clusterroles", args: []string{"explain", "clusterroles.rules"},
			want: []string{"PolicyRule", "verbs"}},
		{name: "api-resources", args: []string{"api-resources", "-o", "wide"},
			want: []string{"deployments", "apps/v1", "clusterroles", "bindings"}},
	})
}

// TestKubectlCustomResources runs kubectl explain on a custom resource
// (from OpenAPI v3 and v2), and kubectl apply of a changed custom resource
// against a stand-in for its endpoint, to see which patch type kubectl
// picks from the published documents: upstream's custom resources refuse
// strategic merge patch, so it must send a JSON merge patch.
func TestKubectlCustomResources(t *testing.T) {
	t.Parallel()
	bins := kubectlBinaries(t)
	oa, err := New(builtin.Resources())
	if err != nil {
		t.Fatalf("New: %v", err)
	}
	if err := oa.SetCustomResources([]*apiextensionsv1.CustomResourceDefinition{decodeCRD(t, cronTabCRD)}); err != nil {
		t.Fatalf("SetCustomResources: %v", err)
	}
	disc := discovery.New(builtin.Resources(), discovery.ExtraGroup{
		GroupVersion: schema.GroupVersion{Group: "stable.example.com", Version: "v1"},
		Resources: []discovery.ExtraResource{{Name: "crontabs", Singular: "crontab", Kind: "CronTab", Namespaced: true,
			Verbs: []string{"get", "list", "watch", "create", "update", "patch", "delete", "deletecollection"}}},
	})

	const applied = `{"apiVersion":"stable.example.com/v1","kind":"CronTab","metadata":{"name":"c","namespace":"default"},"spec":{"cronSpec":"* * * * *","image":"a"}}`
	var mu sync.Mutex
	var patches []string // "content type: body"
	object := func() map[string]any {
		var obj map[string]any
		_ = json.Unmarshal([]byte(applied), &obj)
		obj["metadata"].(map[string]any)["annotations"] = map[string]any{"kubectl.kubernetes.io/last-applied-configuration": applied}
		obj["metadata"].(map[string]any)["resourceVersion"] = "1"
		return obj
	}
	kubeconfig := kubectlServer(t, oa, disc, func(mux *http.ServeMux) {
		mux.HandleFunc("/apis/stable.example.com/v1/namespaces/default/crontabs/c", func(w http.ResponseWriter, r *http.Request) {
			switch r.Method {
			case http.MethodGet:
			case http.MethodPatch:
				body, _ := io.ReadAll(r.Body)
				mu.Lock()
				patches = append(patches, r.Header.Get("Content-Type")+": "+string(body))
				mu.Unlock()
			default:
				http.Error(w, "unexpected "+r.Method, http.StatusMethodNotAllowed)
				return
			}
			w.Header().Set("Content-Type", "application/json")
			_ = json.NewEncoder(w).Encode(object())
		})
	})
	manifest := filepath.Join(t.TempDir(), "crontab.yaml")
	if err := os.WriteFile(manifest, []byte(strings.Replace(applied, `"image":"a"`, `"image":"b"`, 1)), 0o600); err != nil {
		t.Fatalf("writing manifest: %v", err)
	}
	runKubectl(t, bins, kubeconfig, []kubectlCase{
		{name: "explain kind", args: []string{"explain", "crontabs"},
			want: []string{"CronTab runs an image on a schedule.", "spec\t<Object>", "The desired schedule of the CronTab."}},
		{name: "explain field", args: []string{"explain", "crontabs.spec"},
			want: []string{"The desired schedule of the CronTab.", "cronSpec", "The schedule in cron format.", "-required-"}},
		{name: "explain v2", args: []string{"explain", "crontabs.spec.image", "--output=plaintext-openapiv2"},
			want: []string{"The image to run."}},
		{name: "explain crd", args: []string{"explain", "customresourcedefinitions.spec.versions.schema"},
			want: []string{"openAPIV3Schema", "CustomResourceValidation"}},
		{name: "apply", args: []string{"apply", "-f", manifest},
			want: []string{"crontab.stable.example.com/c configured"}},
	})
	mu.Lock()
	defer mu.Unlock()
	if len(patches) == 0 {
		t.Fatalf("kubectl apply sent no patch")
	}
	for _, p := range patches {
		if !strings.HasPrefix(p, "application/merge-patch+json: ") || !strings.Contains(p, `"image":"b"`) {
			t.Errorf("kubectl apply sent %s, want a JSON merge patch setting the image", p)
		}
	}
}

func fileExists(p string) bool {
	_, err := os.Stat(p)
	return err == nil
}
