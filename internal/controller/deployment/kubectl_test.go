package deployment

import (
	"context"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/rest"
	"k8s.io/client-go/tools/clientcmd"
	clientcmdapi "k8s.io/client-go/tools/clientcmd/api"
)

// TestKubectlRollout drives `kubectl rollout status|history|undo` and
// `kubectl set image` (the kubectl on PATH) against the controllers. It is
// skipped when there is no kubectl.
func TestKubectlRollout(t *testing.T) {
	bin, err := exec.LookPath("kubectl")
	if err != nil {
		t.Skip("no kubectl on PATH")
	}
	c := startCluster(t)
	kubeconfig := writeKubeconfig(t, c.cfg)
	ctx := context.Background()
	ns := c.namespace(t, "kubectl")
	kubectl := func(args ...string) string {
		t.Helper()
		cmd := exec.CommandContext(t.Context(), bin, append([]string{"--kubeconfig", kubeconfig, "-n", ns}, args...)...)
		out, err := cmd.CombinedOutput()
		if err != nil {
			t.Fatalf("kubectl %s: %v\n%s", strings.Join(args, " "), err, out)
		}
		return string(out)
	}

	d := newDeployment("web", 3, "img:v1")
	if _, err := c.client.AppsV1().Deployments(ns).Create(ctx, d, metav1.CreateOptions{}); err != nil {
		t.Fatalf("creating deployment: %v", err)
	}
	if out := kubectl("rollout", "status", "deployment/web", "--timeout=30s"); !strings.Contains(out, `deployment "web" successfully rolled out`) {
		t.Errorf("rollout status printed %q", out)
	}
	kubectl("set", "image", "deployment/web", "c=img:v2")
	kubectl("annotate", "deployment/web", "kubernetes.io/change-cause=image v2")
	kubectl("rollout", "status", "deployment/web", "--timeout=30s")
	hist := kubectl("rollout", "history", "deployment/web")
	if !strings.Contains(hist, "1 ") || !strings.Contains(hist, "image v2") {
		t.Errorf("rollout history:\n%s\nwant revisions 1 and 2 with change-cause 'image v2'", hist)
	}
	if out := kubectl("rollout", "undo", "deployment/web"); !strings.Contains(out, "rolled back") {
		t.Errorf("rollout undo printed %q", out)
	}
	kubectl("rollout", "status", "deployment/web", "--timeout=30s")
	got, err := c.client.AppsV1().Deployments(ns).Get(ctx, "web", metav1.GetOptions{})
	if err != nil {
		t.Fatalf("getting deployment: %v", err)
	}
	if img, rev := got.Spec.Template.Spec.Containers[0].Image, got.Annotations[RevisionAnnotation]; img != "img:v1" || rev != "3" {
		t.Errorf("after undo image %s revision %s, want img:v1 and 3", img, rev)
	}
	kubectl("rollout", "pause", "deployment/web")
	kubectl("set", "image", "deployment/web", "c=img:v3")
	kubectl("rollout", "resume", "deployment/web")
	kubectl("rollout", "status", "deployment/web", "--timeout=30s")
	if out := kubectl("rollout", "history", "deployment/web", "--revision=4"); !strings.Contains(out, "img:v3") {
		t.Errorf("revision 4:\n%s\nwant image img:v3", out)
	}
}

// writeKubeconfig writes a kubeconfig file for cfg.
func writeKubeconfig(t *testing.T, cfg *rest.Config) string {
	t.Helper()
	load := func(data []byte, file string) []byte {
		if len(data) > 0 || file == "" {
			return data
		}
		b, err := os.ReadFile(file)
		if err != nil {
			t.Fatalf("reading %s: %v", file, err)
		}
		return b
	}
	kc := clientcmdapi.NewConfig()
	kc.Clusters["skiff"] = &clientcmdapi.Cluster{Server: cfg.Host, CertificateAuthorityData: load(cfg.CAData, cfg.CAFile)}
	kc.AuthInfos["admin"] = &clientcmdapi.AuthInfo{
		ClientCertificateData: load(cfg.CertData, cfg.CertFile),
		ClientKeyData:         load(cfg.KeyData, cfg.KeyFile),
		Token:                 cfg.BearerToken,
	}
	kc.Contexts["skiff"] = &clientcmdapi.Context{Cluster: "skiff", AuthInfo: "admin"}
	kc.CurrentContext = "skiff"
	path := filepath.Join(t.TempDir(), "kubeconfig")
	if err := clientcmd.WriteToFile(*kc, path); err != nil {
		t.Fatalf("writing kubeconfig: %v", err)
	}
	return path
}
