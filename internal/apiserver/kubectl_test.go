package apiserver

import (
	"bytes"
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/skiff-dev/skiff/internal/discovery"
	"github.com/skiff-dev/skiff/internal/openapi"
	"github.com/skiff-dev/skiff/internal/registry"
)

// kubectlBinaries finds stock kubectl builds next to the kubectl on PATH.
func kubectlBinaries(t *testing.T) []string {
	path, err := exec.LookPath("kubectl")
	if err != nil {
		t.Skip("kubectl not on PATH")
	}
	if p, err := filepath.EvalSymlinks(path); err == nil {
		path = p
	}
	var out []string
	for _, v := range []string{"1.27", "1.30", "1.33"} {
		p := filepath.Join(filepath.Dir(path), "kubectl."+v)
		if _, err := os.Stat(p); err == nil {
			out = append(out, p)
		}
	}
	if len(out) == 0 {
		out = []string{path}
	}
	return out
}

func TestKubectl(t *testing.T) {
	if testing.Short() {
		t.Skip("runs kubectl binaries")
	}
	bins := kubectlBinaries(t)
	env := newTestEnv(t, func(c *Config) {
		var resources []*registry.Resource
		for _, st := range c.Stores {
			resources = append(resources, st.Resource)
		}
		c.Discovery = discovery.New(resources)
		oa, err := openapi.New(resources)
		if err != nil {
			t.Fatalf("openapi: %v", err)
		}
		c.OpenAPI = oa
	})
	kubeconfig := env.adminKubeconfig(t)

	for i, bin := range bins {
		t.Run(filepath.Base(bin), func(t *testing.T) {
			cacheDir := t.TempDir()
			run := func(stdin string, timeout time.Duration, args ...string) (string, error) {
				ctx, cancel := context.WithTimeout(context.Background(), timeout)
				defer cancel()
				cmd := exec.CommandContext(ctx, bin, append([]string{"--kubeconfig", kubeconfig, "--cache-dir", cacheDir}, args...)...)
				cmd.Stdin = strings.NewReader(stdin)
				var out bytes.Buffer
				cmd.Stdout, cmd.Stderr = &out, &out
				err := cmd.Run()
				return out.String(), err
			}
			must := func(stdin string, want string, args ...string) string {
				t.Helper()
				out, err := run(stdin, 30*time.Second, args...)
				if err != nil {
					t.Fatalf("kubectl %s: %v\n%s", strings.Join(args, " "), err, out)
				}
				if !strings.Contains(out, want) {
					t.Fatalf("kubectl %s: output lacks %q:\n%s", strings.Join(args, " "), want, out)
				}
				return out
			}
			n := fmt.Sprint(i)
			manifest := fmt.Sprintf(`apiVersion: apps/v1
kind: Deployment
metadata: {name: web%[1]s}
spec:
  selector: {matchLabels: {app: web%[1]s}}
  template:
    metadata: {labels: {app: web%[1]s}}
    spec: {containers: [{name: c, image: nginx}]}
---
apiVersion: v1
kind: ConfigMap
metadata: {name: cm%[1]s}
data: {a: "1"}
`, n)
			must(manifest, "deployment.apps/web"+n+" created", "create", "-f", "-")
			must("", "web"+n, "get", "deployments")
			must("", "cm"+n, "get", "cm", "-o", "wide")
			must("", "kind: ConfigMap", "get", "cm", "cm"+n, "-o", "yaml")
			must("", "scaled", "scale", "deployment", "web"+n, "--replicas=3")
			must("", "3", "get", "deployment", "web"+n, "-o", "jsonpath={.spec.replicas}")
			must("", "patched", "patch", "cm", "cm"+n, "-p", `{"data":{"b":"2"}}`)
			must("", "patched", "patch", "cm", "cm"+n, "--type=json", "-p", `[{"op":"add","path":"/data/c","value":"3"}]`)
			must("", "labeled", "label", "cm", "cm"+n, "x=y")
			must("", "annotate", "annotate", "cm", "cm"+n, "note=hi")
			must("", "cm"+n, "get", "cm", "-l", "x=y")
			must("", "cm"+n, "get", "cm", "--chunk-size=1")
			must(strings.Replace(manifest, `a: "1"`, `a: "9"`, 1), "configured", "apply", "-f", "-")
			must("", "9", "get", "cm", "cm"+n, "-o", "jsonpath={.data.a}")
			must(strings.Replace(manifest, `a: "1"`, `a: "7"`, 1), "serverside-applied", "apply", "--server-side", "--force-conflicts", "-f", "-")
			must("", "7", "get", "cm", "cm"+n, "-o", "jsonpath={.data.a}")
			out, err := run("apiVersion: v1\nkind: ConfigMap\nmetadata: {name: bad"+n+"}\nbogus: 1\n", 30*time.Second, "create", "-f", "-")
			if err == nil || !strings.Contains(out, `unknown field "bogus"`) {
				t.Errorf("create with unknown field: %v\n%s", err, out)
			}
			// get -w prints the existing objects, then each change.
			wctx, wcancel := context.WithTimeout(context.Background(), 20*time.Second)
			defer wcancel()
			wcmd := exec.CommandContext(wctx, bin, "--kubeconfig", kubeconfig, "--cache-dir", cacheDir, "get", "cm", "cm"+n, "-w")
			var wout syncBuffer
			wcmd.Stdout, wcmd.Stderr = &wout, &wout
			if err := wcmd.Start(); err != nil {
				t.Fatal(err)
			}
			poll(t, 10*time.Second, func() error {
				if !strings.Contains(wout.String(), "cm"+n) {
					return fmt.Errorf("get -w printed %q", wout.String())
				}
				return nil
			})
			must("", "labeled", "label", "cm", "cm"+n, "z=1")
			poll(t, 10*time.Second, func() error {
				if lines := strings.Split(strings.TrimSpace(wout.String()), "\n"); len(lines) != 3 || !strings.HasPrefix(lines[0], "NAME") {
					return fmt.Errorf("get -w printed %q", wout.String())
				}
				return nil
			})
			wcancel()
			_ = wcmd.Wait()
			must("", "deleted", "delete", "cm", "cm"+n)
			must("", "deleted", "delete", "deployment", "web"+n)
			out, err = run("", 30*time.Second, "get", "cm", "cm"+n)
			if err == nil || !strings.Contains(out, "NotFound") {
				t.Errorf("get after delete: %v\n%s", err, out)
			}
			must("", "Client Version", "version")
		})
	}
}

// syncBuffer is a bytes.Buffer safe for one writer and concurrent readers.
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
