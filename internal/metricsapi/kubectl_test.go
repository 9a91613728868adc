package metricsapi

import (
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/resource"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/skiff-dev/skiff/internal/discovery"
	"github.com/skiff-dev/skiff/internal/registry/builtin"
)

// TestKubectlTop runs stock kubectl top (oldest and newest supported
// versions present) against discovery with Group, the API, and minimal
// node and pod lists.
func TestKubectlTop(t *testing.T) {
	t.Parallel()
	kubectl, err := exec.LookPath("kubectl")
	if err != nil {
		t.Skip("skipping: no kubectl")
	}
	if p, err := filepath.EvalSymlinks(kubectl); err == nil {
		kubectl = p
	}
	dir := filepath.Dir(kubectl)
	var bins []string
	for _, v := range []string{"1.27", "1.33"} {
		if _, err := os.Stat(filepath.Join(dir, "kubectl."+v)); err == nil {
			bins = append(bins, filepath.Join(dir, "kubectl."+v))
		}
	}
	if len(bins) == 0 {
		bins = []string{kubectl}
	}

	f := newFixture(t)
	for _, n := range f.nodes {
		n.Status.Allocatable = corev1.ResourceList{corev1.ResourceCPU: resource.MustParse("4"), corev1.ResourceMemory: resource.MustParse("8Gi")}
		n.Status.Capacity = n.Status.Allocatable
	}
	mux := http.NewServeMux()
	disc := discovery.New(builtin.Resources(), Group())
	for _, p := range []string{"/api", "/api/", "/apis", "/apis/"} {
		mux.Handle(p, disc)
	}
	mux.Handle("/apis/metrics.k8s.io/v1beta1/", http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if strings.TrimSuffix(r.URL.Path, "/") == "/apis/metrics.k8s.io/v1beta1" {
			disc.ServeHTTP(w, r)
			return
		}
		f.api.ServeHTTP(w, r)
	}))
	writeList := func(w http.ResponseWriter, v any) {
		w.Header().Set("Content-Type", "application/json")
		_ = json.NewEncoder(w).Encode(v)
	}
	mux.HandleFunc("/api/v1/nodes", func(w http.ResponseWriter, r *http.Request) {
		l := corev1.NodeList{TypeMeta: metav1.TypeMeta{Kind: "NodeList", APIVersion: "v1"}}
		for _, n := range f.nodes {
			l.Items = append(l.Items, *n)
		}
		writeList(w, l)
	})
	mux.HandleFunc("/api/v1/nodes/{name}", func(w http.ResponseWriter, r *http.Request) {
		for _, n := range f.nodes {
			if n.Name == r.PathValue("name") {
				n := n.DeepCopy()
				n.TypeMeta = metav1.TypeMeta{Kind: "Node", APIVersion: "v1"}
				writeList(w, n)
				return
			}
		}
		http.NotFound(w, r)
	})
	podList := func(ns string) http.HandlerFunc {
		return func(w http.ResponseWriter, r *http.Request) {
			l := corev1.PodList{TypeMeta: metav1.TypeMeta{Kind: "PodList", APIVersion: "v1"}}
			for _, p := range f.pods {
				if ns == "" || p.Namespace == ns {
					l.Items = append(l.Items, *p)
				}
			}
			writeList(w, l)
		}
	}
	mux.HandleFunc("/api/v1/pods", podList(""))
	mux.HandleFunc("/api/v1/namespaces/default/pods", podList("default"))
	srv := httptest.NewServer(mux)
	t.Cleanup(srv.Close)

	tests := []struct {
		args []string
		want []string // lines, fields separated by single spaces
	}{
		{args: []string{"top", "node"}, want: []string{
			"NAME CPU(cores) CPU", // 1.33 says CPU(%), 1.27 CPU%
			"node-a 250m 6% 1024Mi 12%",
			"node-b 2000m 50% 2048Mi 25%",
		}},
		{args: []string{"top", "node", "node-b"}, want: []string{"node-b 2000m 50% 2048Mi 25%"}},
		{args: []string{"top", "pod", "-A"}, want: []string{
			"NAMESPACE NAME CPU(cores) MEMORY(bytes)",
			"default db 1500m 512Mi",
			"default web-1 105m 80Mi",
			"kube-system dns 3m 20Mi",
		}},
		{args: []string{"top", "pod", "-l", "app=web", "--containers"}, want: []string{
			"POD NAME CPU(cores) MEMORY(bytes)",
			"web-1 app 100m 64Mi",
			"web-1 sidecar 5m 16Mi",
			"web-2 app 300m 100Mi",
		}},
		{args: []string{"top", "pod", "db"}, want: []string{"db 1500m 512Mi"}},
		// Without a Table view kubectl get prints names and ages.
		{args: []string{"get", "nodes.metrics.k8s.io"}, want: []string{"node-a", "node-b"}},
		{args: []string{"get", "podmetrics", "-n", "kube-system", "-o", "name"}, want: []string{"podmetrics.metrics.k8s.io/dns"}},
	}
	for _, bin := range bins {
		for _, tt := range tests {
			args := append([]string{"--server", srv.URL}, tt.args...)
			cmd := exec.Command(bin, args...)
			cmd.Env = append(os.Environ(), "HOME="+t.TempDir(), "KUBECONFIG=")
			out, err := cmd.CombinedOutput()
			if err != nil {
				t.Errorf("%s %s: %v\n%s", filepath.Base(bin), strings.Join(tt.args, " "), err, out)
				continue
			}
			var lines []string
			for _, l := range strings.Split(strings.TrimSpace(string(out)), "\n") {
				lines = append(lines, strings.Join(strings.Fields(l), " "))
			}
			got := strings.Join(lines, "\n")
			for _, w := range tt.want {
				if !strings.Contains(got, w) {
					t.Errorf("%s %s: output lacks %q:\n%s", filepath.Base(bin), strings.Join(tt.args, " "), w, out)
				}
			}
		}
	}
}
