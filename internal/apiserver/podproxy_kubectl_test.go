package apiserver

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"io"
	"net"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/skiff-dev/skiff/internal/discovery"
	"github.com/skiff-dev/skiff/internal/openapi"
	"github.com/skiff-dev/skiff/internal/registry"
)

// TestKubectlConnect runs stock kubectl logs, exec and port-forward (SPDY
// in 1.27, websockets in 1.30 and 1.33) against the fake kubelet.
func TestKubectlConnect(t *testing.T) {
	if testing.Short() {
		t.Skip("runs kubectl binaries")
	}
	bins := kubectlBinaries(t)
	e := newConnectEnv(t, func(c *Config) {
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
	kubeconfig := e.adminKubeconfig(t)
	for _, bin := range bins {
		t.Run(filepath.Base(bin), func(t *testing.T) {
			cacheDir := t.TempDir()
			kubectl := func(ctx context.Context, args ...string) *exec.Cmd {
				return exec.CommandContext(ctx, bin, append([]string{"--kubeconfig", kubeconfig, "--cache-dir", cacheDir}, args...)...)
			}
			run := func(stdin string, args ...string) (string, int) {
				t.Helper()
				ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
				defer cancel()
				cmd := kubectl(ctx, args...)
				cmd.Stdin = strings.NewReader(stdin)
				var out bytes.Buffer
				cmd.Stdout, cmd.Stderr = &out, &out
				err := cmd.Run()
				var exitErr *exec.ExitError
				switch {
				case errors.As(err, &exitErr):
					return out.String(), exitErr.ExitCode()
				case err != nil:
					t.Fatalf("kubectl %s: %v\n%s", strings.Join(args, " "), err, out.String())
				}
				return out.String(), 0
			}
			tests := []struct {
				name     string
				stdin    string
				args     []string
				wantOut  []string // each in the output; stdout and stderr interleave freely
				wantExit int
			}{
				{"logs", "", []string{"logs", "one", "--tail=3"}, []string{"default/one/app tailLines=3\n"}, 0},
				{"logs of a pod without node", "", []string{"logs", "pending"}, []string{"pod pending does not have a host assigned"}, 1},
				{"exec with stdin", "hi\n", []string{"exec", "-i", "one", "--", "echo"}, []string{"hi\n", "bye\n"}, 0},
				{"exec exit code", "", []string{"exec", "two", "-c", "a", "--", "exit3"}, []string{"partial\n"}, 3},
				{"attach", "", []string{"attach", "two", "-c", "b"}, []string{"/attach/default/two/b error=1&output=1&stderr=1&stdout=1\n"}, 0},
			}
			for _, tc := range tests {
				t.Run(tc.name, func(t *testing.T) {
					out, code := run(tc.stdin, tc.args...)
					ok := code == tc.wantExit
					for _, w := range tc.wantOut {
						ok = ok && strings.Contains(out, w)
					}
					if !ok {
						t.Errorf("kubectl %s = exit %d, output:\n%s\nwant exit %d and output containing %q", strings.Join(tc.args, " "), code, out, tc.wantExit, tc.wantOut)
					}
				})
			}
			t.Run("port-forward", func(t *testing.T) {
				ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
				defer cancel()
				cmd := kubectl(ctx, "port-forward", "pod/one", ":8080")
				stdout, err := cmd.StdoutPipe()
				if err != nil {
					t.Fatal(err)
				}
				var stderr syncBuffer
				cmd.Stderr = &stderr
				if err := cmd.Start(); err != nil {
					t.Fatal(err)
				}
				defer func() {
					cancel()
					_ = cmd.Wait()
				}()
				line, err := bufio.NewReader(stdout).ReadString('\n')
				m := regexp.MustCompile(`Forwarding from (127\.0\.0\.1:\d+)`).FindStringSubmatch(line)
				if m == nil {
					t.Fatalf("port-forward printed %q (%v); stderr %s", line, err, stderr.String())
				}
				go func() { _, _ = io.Copy(io.Discard, stdout) }()
				conn, err := net.Dial("tcp", m[1])
				if err != nil {
					t.Fatal(err)
				}
				defer conn.Close()
				if _, err := io.WriteString(conn, "over kubectl"); err != nil {
					t.Fatal(err)
				}
				_ = conn.(*net.TCPConn).CloseWrite()
				_ = conn.SetReadDeadline(time.Now().Add(30 * time.Second))
				got, err := io.ReadAll(conn)
				if err != nil || string(got) != "over kubectl" {
					t.Errorf("echo through kubectl port-forward = %q, %v; stderr %s", got, err, stderr.String())
				}
			})
		})
	}
}
