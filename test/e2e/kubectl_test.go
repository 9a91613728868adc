package e2e

import (
	"context"
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	appsv1 "k8s.io/api/apps/v1"
)

// kubectlVersions are the stock kubectl releases the suite drives, newest
// first (the oldest we promise to support last).
var kubectlVersions = []string{"1.33", "1.27"}

// TestKubectl starts one server and drives it with every kubectl version in
// turn, each in its own namespace, then restarts the server on the same
// data dir and checks that what was stored survived.
func TestKubectl(t *testing.T) {
	if testing.Short() {
		t.Skip("end-to-end test: skipped with -short")
	}
	dir := t.TempDir()
	srv := startServer(t, dir, freeAddr(t))

	for _, v := range kubectlVersions {
		t.Run("kubectl-"+v, func(t *testing.T) {
			k := findKubectl(t, v, srv.kubeconfig)
			exercise(t, k, "e2e-"+strings.ReplaceAll(v, ".", ""))
		})
	}

	t.Run("restart", func(t *testing.T) {
		var k kubectl
		for _, v := range kubectlVersions {
			bin := filepath.Join(kubectlDir(), "kubectl."+v)
			if _, err := os.Stat(bin); err == nil {
				k = kubectl{bin: bin, kubeconfig: srv.kubeconfig}
				break
			}
		}
		if k.bin == "" {
			t.Skipf("no kubectl.{%s} found (set SKIFF_KUBECTL_DIR)", strings.Join(kubectlVersions, ","))
		}
		k.okStdin(t, keepManifest, "apply", "-f", "-")
		uid := k.ok(t, "get", "configmap", "kept", "-n", "keep", "-o", "jsonpath={.metadata.uid}")

		srv.stop(t)
		if out := srv.output.String(); !strings.Contains(out, "stopped") {
			t.Errorf("server output after SIGTERM lacks %q:\n%s", "stopped", out)
		}
		srv2 := startServer(t, dir, srv.listen)
		// The ready line follows the kubeconfig's appearance closely.
		eventually(t, 10*time.Second, func() error {
			if out := srv2.output.String(); !regexp.MustCompile(`(?m)^ready in \d+ms$`).MatchString(out) {
				return fmt.Errorf("restarted server did not print its ready time:\n%s", out)
			}
			return nil
		})
		got := k.ok(t, "get", "configmap", "kept", "-n", "keep", "-o", "jsonpath={.metadata.uid} {.data.color}")
		if diff := cmp.Diff(uid+" blue", got); diff != "" {
			t.Errorf("configmap after restart (-want +got):\n%s", diff)
		}
		names := k.ok(t, "get", "namespaces", "-o", "name")
		for _, ns := range []string{"namespace/default", "namespace/keep", "namespace/kube-system", "namespace/kube-public", "namespace/kube-node-lease"} {
			if !slices.Contains(lines(names), ns) {
				t.Errorf("after restart, namespaces lack %s:\n%s", ns, names)
			}
		}
		srv2.stop(t)
	})
}

const keepManifest = `apiVersion: v1
kind: Namespace
metadata:
  name: keep
---
apiVersion: v1
kind: ConfigMap
metadata:
  name: kept
  namespace: keep
data:
  color: blue
`

// appManifest is a namespace with a config map, a deployment and a
// service, as a newcomer would apply it.
func appManifest(ns, greeting string) string {
	return fmt.Sprintf(`apiVersion: v1
kind: Namespace
metadata:
  name: %[1]s
---
apiVersion: v1
kind: ConfigMap
metadata:
  name: cfg
  namespace: %[1]s
  labels:
    app: web
    tier: config
data:
  greeting: %[2]s
---
apiVersion: apps/v1
kind: Deployment
metadata:
  name: web
  namespace: %[1]s
  labels:
    app: web
spec:
  replicas: 1
  selector:
    matchLabels:
      app: web
  template:
    metadata:
      labels:
        app: web
    spec:
      containers:
      - name: nginx
        image: nginx:1.27
        ports:
        - containerPort: 80
---
apiVersion: v1
kind: Service
metadata:
  name: web
  namespace: %[1]s
  labels:
    app: web
spec:
  selector:
    app: web
  ports:
  - port: 80
    targetPort: 80
`, ns, greeting)
}

// exercise runs the kubectl workflow in namespace ns. Steps depend on the
// ones before; a failed step stops the rest.
func exercise(t *testing.T, k kubectl, ns string) {
	step := func(name string, fn func(t *testing.T)) {
		t.Helper()
		if !t.Run(name, fn) {
			t.FailNow()
		}
	}
	nsArg := "--namespace=" + ns

	step("apply", func(t *testing.T) {
		out := k.okStdin(t, appManifest(ns, "hello"), "apply", "-f", "-")
		want := []string{
			"namespace/" + ns + " created",
			"configmap/cfg created",
			"deployment.apps/web created",
			"service/web created",
		}
		if diff := cmp.Diff(want, lines(out)); diff != "" {
			t.Errorf("first apply (-want +got):\n%s", diff)
		}
	})

	step("apply again is unchanged", func(t *testing.T) {
		out := k.okStdin(t, appManifest(ns, "hello"), "apply", "-f", "-")
		want := []string{
			"namespace/" + ns + " unchanged",
			"configmap/cfg unchanged",
			"deployment.apps/web unchanged",
			"service/web unchanged",
		}
		if diff := cmp.Diff(want, lines(out)); diff != "" {
			t.Errorf("second apply (-want +got):\n%s", diff)
		}
	})

	step("get with label selector", func(t *testing.T) {
		tests := []struct {
			selector string
			want     []string
		}{
			{"app=web", []string{"configmap/cfg", "deployment.apps/web", "service/web"}},
			{"tier=config", []string{"configmap/cfg"}},
			{"app=web,tier!=config", []string{"deployment.apps/web", "service/web"}},
			{"app=nothing", nil},
		}
		for _, tc := range tests {
			out := k.ok(t, "get", "configmaps,deployments,services", nsArg, "-l", tc.selector, "-o", "name")
			if diff := cmp.Diff(tc.want, lines(out)); diff != "" {
				t.Errorf("-l %s (-want +got):\n%s", tc.selector, diff)
			}
		}
	})

	step("get with field selector", func(t *testing.T) {
		out := k.ok(t, "get", "configmaps", nsArg, "--field-selector", "metadata.name=cfg", "-o", "name")
		if diff := cmp.Diff([]string{"configmap/cfg"}, lines(out)); diff != "" {
			t.Errorf("configmaps by name (-want +got):\n%s", diff)
		}
		out = k.ok(t, "get", "namespaces", "--field-selector", "metadata.name="+ns, "-o", "name")
		if diff := cmp.Diff([]string{"namespace/" + ns}, lines(out)); diff != "" {
			t.Errorf("namespaces by name (-want +got):\n%s", diff)
		}
		r := k.run(t, "", "get", "configmaps", nsArg, "--field-selector", "spec.nothing=x")
		if r.code == 0 || !strings.Contains(r.stderr, "not supported") {
			t.Errorf("unsupported field selector: want a failure naming it, got %v", r)
		}
	})

	step("get -o json", func(t *testing.T) {
		out := k.ok(t, "get", "deployment", "web", nsArg, "-o", "json")
		var d appsv1.Deployment
		if err := json.Unmarshal([]byte(out), &d); err != nil {
			t.Fatalf("decoding -o json: %v\n%s", err, out)
		}
		got := map[string]any{
			"kind": d.Kind, "apiVersion": d.APIVersion, "name": d.Name, "namespace": d.Namespace,
			"replicas": *d.Spec.Replicas, "strategy": string(d.Spec.Strategy.Type), "generation": d.Generation,
			"hasUID": d.UID != "", "hasRV": d.ResourceVersion != "",
			"lastApplied": d.Annotations["kubectl.kubernetes.io/last-applied-configuration"] != "",
		}
		want := map[string]any{
			"kind": "Deployment", "apiVersion": "apps/v1", "name": "web", "namespace": ns,
			"replicas": int32(1), "strategy": "RollingUpdate", "generation": int64(1),
			"hasUID": true, "hasRV": true, "lastApplied": true,
		}
		if diff := cmp.Diff(want, got); diff != "" {
			t.Errorf("deployment -o json (-want +got):\n%s", diff)
		}
	})

	step("get -o wide", func(t *testing.T) {
		out := k.ok(t, "get", "deployments", nsArg, "-o", "wide")
		rows := lines(out)
		if len(rows) != 2 {
			t.Fatalf("want a header and one row, got:\n%s", out)
		}
		header := strings.Fields(rows[0])
		wantHeader := []string{"NAME", "READY", "UP-TO-DATE", "AVAILABLE", "AGE", "CONTAINERS", "IMAGES", "SELECTOR"}
		if diff := cmp.Diff(wantHeader, header); diff != "" {
			t.Errorf("deployments -o wide header (-want +got):\n%s", diff)
		}
		row := strings.Fields(rows[1])
		if len(row) != len(wantHeader) || row[0] != "web" || row[5] != "nginx" || row[6] != "nginx:1.27" || row[7] != "app=web" {
			t.Errorf("deployments -o wide row = %q, want web ... nginx nginx:1.27 app=web", row)
		}

		out = k.ok(t, "get", "services", nsArg, "-o", "wide")
		if h := strings.Fields(firstLine(out)); !slices.Contains(h, "SELECTOR") || h[0] != "NAME" {
			t.Errorf("services -o wide header = %q, want NAME ... SELECTOR", h)
		}
	})

	step("get -o yaml", func(t *testing.T) {
		out := k.ok(t, "get", "configmap", "cfg", nsArg, "-o", "yaml")
		for _, want := range []string{"apiVersion: v1\n", "kind: ConfigMap\n", "  greeting: hello\n", "  name: cfg\n", "  namespace: " + ns + "\n", "  resourceVersion: \"", "  uid: "} {
			if !strings.Contains(out, want) {
				t.Errorf("configmap -o yaml lacks %q:\n%s", want, out)
			}
		}
	})

	step("get --chunk-size=1", func(t *testing.T) {
		var b strings.Builder
		var want []string
		for i := 1; i <= 5; i++ {
			fmt.Fprintf(&b, "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: chunk-%d\n  namespace: %s\n  labels:\n    chunk: \"yes\"\ndata:\n  i: \"%d\"\n---\n", i, ns, i)
			want = append(want, fmt.Sprintf("configmap/chunk-%d", i))
		}
		k.okStdin(t, b.String(), "apply", "-f", "-")

		r := k.run(t, "", "get", "configmaps", nsArg, "-l", "chunk=yes", "--chunk-size=1", "-o", "name", "-v=6")
		if r.code != 0 {
			t.Fatalf("get --chunk-size=1: %v", r)
		}
		if diff := cmp.Diff(want, lines(r.stdout)); diff != "" {
			t.Errorf("paged list (-want +got):\n%s", diff)
		}
		// Four follow-ups, or five when keys after the last match (such as
		// the namespace's kube-root-ca.crt) make the server, like
		// upstream's, hand out one more continue token that finds nothing.
		if n := strings.Count(r.stderr, "continue="); n != 4 && n != 5 {
			t.Errorf("want 4 or 5 follow-up requests with continue=, saw %d:\n%s", n, r.stderr)
		}

		out := k.ok(t, "get", "configmaps", nsArg, "-l", "chunk=yes", "--chunk-size=2")
		rows := lines(out)
		if len(rows) != 6 || !strings.HasPrefix(rows[0], "NAME") || strings.Count(out, "NAME") != 1 {
			t.Errorf("paged table: want one header and 5 rows, got:\n%s", out)
		}
	})

	step("patch", func(t *testing.T) {
		tests := []struct {
			name, resource, typ, patch, jsonpath, want string
		}{
			{"json", "configmap/cfg", "json", `[{"op":"add","path":"/data/viaJSON","value":"yes"}]`, "{.data.viaJSON}", "yes"},
			{"merge", "configmap/cfg", "merge", `{"data":{"viaMerge":"yes"}}`, "{.data.viaMerge} {.data.viaJSON}", "yes yes"},
			{"strategic adds to the container list", "deployment/web", "strategic",
				`{"spec":{"template":{"spec":{"containers":[{"name":"sidecar","image":"busybox:1.36"}]}}}}`,
				// Upstream's strategic merge puts the patch's new
				// items before the ones only the server had.
				"{.spec.template.spec.containers[*].name}", "sidecar nginx"},
		}
		for _, tc := range tests {
			out := k.ok(t, "patch", tc.resource, nsArg, "--type="+tc.typ, "-p", tc.patch)
			kind := strings.Split(tc.resource, "/")
			if !strings.HasSuffix(strings.TrimSpace(out), kind[1]+" patched") {
				t.Errorf("patch %s: output %q, want ... patched", tc.name, out)
			}
			got := k.ok(t, "get", tc.resource, nsArg, "-o", "jsonpath="+tc.jsonpath)
			if got != tc.want {
				t.Errorf("after %s patch: %s = %q, want %q", tc.name, tc.jsonpath, got, tc.want)
			}
		}
		gen := k.ok(t, "get", "deployment/web", nsArg, "-o", "jsonpath={.metadata.generation}")
		if gen != "2" {
			t.Errorf("deployment generation after a spec patch = %s, want 2", gen)
		}
	})

	step("scale", func(t *testing.T) {
		out := k.ok(t, "scale", "deployment", "web", nsArg, "--replicas=3")
		if diff := cmp.Diff([]string{"deployment.apps/web scaled"}, lines(out)); diff != "" {
			t.Errorf("scale output (-want +got):\n%s", diff)
		}
		got := k.ok(t, "get", "deployment", "web", nsArg, "-o", "jsonpath={.spec.replicas}")
		if got != "3" {
			t.Errorf("spec.replicas after scale = %q, want 3", got)
		}
	})

	step("get -w sees a change", func(t *testing.T) {
		k.ok(t, "create", "configmap", "watched", nsArg, "--from-literal=a=1")
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		defer cancel()
		out := &lockedBuffer{}
		cmd := exec.CommandContext(ctx, k.bin, "--kubeconfig", k.kubeconfig, "get", "configmap", "watched", nsArg, "-w")
		cmd.Stdout, cmd.Stderr = out, out
		if err := cmd.Start(); err != nil {
			t.Fatal(err)
		}
		defer func() {
			cancel()
			_ = cmd.Wait()
		}()
		before := regexp.MustCompile(`(?m)^watched\s+1\s`)
		after := regexp.MustCompile(`(?m)^watched\s+2\s`)
		eventually(t, 20*time.Second, func() error {
			if !before.MatchString(out.String()) {
				return fmt.Errorf("no initial row yet:\n%s", out.String())
			}
			return nil
		})
		k.ok(t, "patch", "configmap", "watched", nsArg, "--type=merge", "-p", `{"data":{"b":"2"}}`)
		eventually(t, 20*time.Second, func() error {
			if !after.MatchString(out.String()) {
				return fmt.Errorf("watch did not print the change:\n%s", out.String())
			}
			return nil
		})
	})

	step("diff", func(t *testing.T) {
		r := k.run(t, appManifest(ns, "bonjour"), "diff", "-f", "-")
		if r.code != 1 {
			t.Fatalf("kubectl diff: want exit 1 (differences found), got %v", r)
		}
		for _, want := range []string{"-  greeting: hello", "+  greeting: bonjour"} {
			if !strings.Contains(r.stdout, want) {
				t.Errorf("diff output lacks %q:\n%s", want, r.stdout)
			}
		}
		if got := k.ok(t, "get", "configmap", "cfg", nsArg, "-o", "jsonpath={.data.greeting}"); got != "hello" {
			t.Errorf("diff changed the object: greeting = %q, want hello", got)
		}
	})

	step("explain", func(t *testing.T) {
		out := k.ok(t, "explain", "deployment.spec.strategy")
		for _, want := range []string{
			`(?m)^GROUP:\s+apps$`, `(?m)^KIND:\s+Deployment$`, `(?m)^VERSION:\s+v1$`,
			`(?m)^FIELD:\s+strategy <DeploymentStrategy>$`, `(?m)^DESCRIPTION:$`, `(?m)^FIELDS:$`,
			`(?m)^\s+rollingUpdate\s+<RollingUpdateDeployment>$`, `(?m)^\s+type\s+<string>$`,
		} {
			if !regexp.MustCompile(want).MatchString(out) {
				t.Errorf("explain output does not match %s:\n%s", want, out)
			}
		}
	})

	step("api-resources", func(t *testing.T) {
		out := k.ok(t, "api-resources")
		rows := map[string][]string{}
		for _, l := range lines(out) {
			f := strings.Fields(l)
			rows[f[0]] = f
		}
		for _, want := range [][]string{
			{"NAME", "SHORTNAMES", "APIVERSION", "NAMESPACED", "KIND"},
			{"configmaps", "cm", "v1", "true", "ConfigMap"},
			{"namespaces", "ns", "v1", "false", "Namespace"},
			{"services", "svc", "v1", "true", "Service"},
			{"deployments", "deploy", "apps/v1", "true", "Deployment"},
		} {
			if diff := cmp.Diff(want, rows[want[0]]); diff != "" {
				t.Errorf("api-resources row %s (-want +got):\n%s", want[0], diff)
			}
		}
	})

	step("invalid objects are 422 naming the field", func(t *testing.T) {
		tests := []struct {
			name, manifest string
			want           []string
		}{
			{"negative replicas", fmt.Sprintf(`{"apiVersion":"apps/v1","kind":"Deployment","metadata":{"name":"bad","namespace":%q},
"spec":{"replicas":-1,"selector":{"matchLabels":{"a":"b"}},"template":{"metadata":{"labels":{"a":"b"}},"spec":{"containers":[{"name":"c","image":"i"}]}}}}`, ns),
				[]string{`"bad" is invalid`, "spec.replicas"}},
			{"bad name", fmt.Sprintf(`{"apiVersion":"v1","kind":"ConfigMap","metadata":{"name":"Bad_Name","namespace":%q}}`, ns),
				[]string{`"Bad_Name" is invalid`, "metadata.name"}},
		}
		for _, tc := range tests {
			r := k.run(t, tc.manifest, "create", "-f", "-", "-v=6")
			if r.code == 0 {
				t.Errorf("%s: create succeeded, want 422", tc.name)
				continue
			}
			want := append([]string{"422 Unprocessable Entity"}, tc.want...)
			for _, w := range want {
				if !strings.Contains(r.stderr, w) {
					t.Errorf("%s: stderr lacks %q:\n%s", tc.name, w, r.stderr)
				}
			}
		}
	})

	step("delete namespace removes its objects", func(t *testing.T) {
		out := k.ok(t, "delete", "namespace", ns, "--timeout=60s")
		if diff := cmp.Diff([]string{fmt.Sprintf("namespace %q deleted", ns)}, lines(out)); diff != "" {
			t.Errorf("delete output (-want +got):\n%s", diff)
		}
		eventually(t, 30*time.Second, func() error {
			r := k.run(t, "", "get", "namespace", ns)
			if r.code == 0 || !strings.Contains(r.stderr, "NotFound") {
				return fmt.Errorf("namespace still there: %v", r)
			}
			return nil
		})
		out = k.ok(t, "get", "configmaps,deployments,services", "-A", "--field-selector", "metadata.namespace="+ns, "-o", "name")
		if out != "" {
			t.Errorf("objects of the deleted namespace remain:\n%s", out)
		}
	})
}

// lines splits output into its non-empty lines.
func lines(s string) []string {
	var out []string
	for _, l := range strings.Split(s, "\n") {
		if strings.TrimSpace(l) != "" {
			out = append(out, l)
		}
	}
	return out
}

func firstLine(s string) string {
	l, _, _ := strings.Cut(s, "\n")
	return l
}
