package e2e

import (
	"bytes"
	"crypto/rand"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"io/fs"
	"net/http"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"

	"github.com/skiff-dev/skiff/internal/auth/tokens"
)

// securityManifests are what the admin sets up for TestSecurity: a user
// bound to view in one namespace, a service account bound to reading
// config maps, a node with a pod that mounts one of two secrets, a
// namespace enforcing the restricted Pod Security Standard and one with a
// quota of two pods. No node agent runs, so pods stay Pending; what is
// checked is the API server's decisions.
const securityManifests = `
apiVersion: v1
kind: Namespace
metadata: {name: team}
---
apiVersion: v1
kind: Namespace
metadata: {name: other}
---
apiVersion: rbac.authorization.k8s.io/v1
kind: RoleBinding
metadata: {name: alice-view, namespace: team}
roleRef: {apiGroup: rbac.authorization.k8s.io, kind: ClusterRole, name: view}
subjects:
- {apiGroup: rbac.authorization.k8s.io, kind: User, name: alice}
---
apiVersion: v1
kind: Pod
metadata: {name: victim, namespace: team}
spec:
  containers: [{name: c, image: skiff-test/busybox:1.35, command: [sleep, '3600']}]
---
apiVersion: v1
kind: Pod
metadata: {name: bystander, namespace: other}
spec:
  containers: [{name: c, image: skiff-test/busybox:1.35, command: [sleep, '3600']}]
---
apiVersion: v1
kind: Namespace
metadata: {name: robots}
---
apiVersion: v1
kind: ServiceAccount
metadata: {name: reader, namespace: robots}
---
apiVersion: rbac.authorization.k8s.io/v1
kind: Role
metadata: {name: read-configmaps, namespace: robots}
rules:
- {apiGroups: [""], resources: [configmaps], verbs: [get, list, watch]}
---
apiVersion: rbac.authorization.k8s.io/v1
kind: RoleBinding
metadata: {name: reader, namespace: robots}
roleRef: {apiGroup: rbac.authorization.k8s.io, kind: Role, name: read-configmaps}
subjects:
- {kind: ServiceAccount, name: reader, namespace: robots}
---
apiVersion: v1
kind: ConfigMap
metadata: {name: settings, namespace: robots}
data: {color: blue}
---
apiVersion: v1
kind: Secret
metadata: {name: hidden, namespace: robots}
stringData: {password: not-for-readers}
---
apiVersion: v1
kind: Node
metadata: {name: sec-node}
---
apiVersion: v1
kind: Namespace
metadata: {name: nodesec}
---
apiVersion: v1
kind: Secret
metadata: {name: mounted, namespace: nodesec}
stringData: {key: mounted-value}
---
apiVersion: v1
kind: Secret
metadata: {name: unmounted, namespace: nodesec}
stringData: {key: unmounted-value}
---
apiVersion: v1
kind: Pod
metadata: {name: mounter, namespace: nodesec}
spec:
  nodeName: sec-node
  containers: [{name: c, image: skiff-test/busybox:1.35, command: [sleep, '3600'], volumeMounts: [{name: s, mountPath: /s}]}]
  volumes: [{name: s, secret: {secretName: mounted}}]
---
apiVersion: v1
kind: Namespace
metadata:
  name: locked
  labels: {pod-security.kubernetes.io/enforce: restricted}
---
apiVersion: v1
kind: Namespace
metadata: {name: quota}
---
apiVersion: v1
kind: ResourceQuota
metadata: {name: two-pods, namespace: quota}
spec:
  hard: {pods: "2"}
`

// TestSecurity checks issue 7's promises that need no node agent against a
// "skiff server --disable-agent" with stock kubectl: RBAC for a user
// certificate (and can-i, whoami), service account tokens, expired and
// tampered tokens, the node authorizer, Pod Security admission, quota,
// and secrets encrypted at rest (last: it stops the server).
func TestSecurity(t *testing.T) {
	if testing.Short() {
		t.Skip("end-to-end test: skipped with -short")
	}
	dir := t.TempDir()
	srv := startServer(t, dir, freeAddr(t))
	admin := findKubectl(t, "1.33", srv.kubeconfig)
	admin.okStdin(t, securityManifests, "apply", "-f", "-")

	t.Run("user certificate bound to view", func(t *testing.T) {
		cfg := certKubeconfig(t, srv, "alice", []string{"developers"})
		alice := findKubectl(t, "1.33", cfg)

		if out := mustAllow(t, alice, "get", "pods", "-n", "team", "-o", "name"); !slices.Contains(lines(out), "pod/victim") {
			t.Errorf("alice's pods in team = %q, want pod/victim", out)
		}
		mustRefuse(t, alice, []string{"forbidden", `User "alice" cannot delete resource "pods" in API group "" in the namespace "team"`},
			"delete", "pod", "victim", "-n", "team", "--wait=false")
		mustRefuse(t, alice, []string{"forbidden", `User "alice" cannot list resource "pods" in API group "" in the namespace "other"`},
			"get", "pods", "-n", "other")
		mustRefuse(t, alice, []string{"forbidden", `User "alice" cannot get resource "pods" in API group "" in the namespace "other"`},
			"get", "pod", "bystander", "-n", "other")
		mustRefuse(t, alice, []string{"forbidden", `User "alice" cannot list resource "secrets" in API group "" in the namespace "team"`},
			"get", "secrets", "-n", "team")
		// The pod is still there.
		admin.ok(t, "get", "pod", "victim", "-n", "team")

		for _, v := range kubectlVersions {
			t.Run("kubectl "+v, func(t *testing.T) {
				k := findKubectl(t, v, cfg)
				if got := whoami(t, k); got != "alice" {
					t.Errorf("kubectl %s auth whoami = %q, want alice", v, got)
				}
				checkCanIList(t, k)
				if r := k.run(t, "", "auth", "can-i", "list", "pods", "-n", "team"); r.code != 0 || strings.TrimSpace(r.stdout) != "yes" {
					t.Errorf("can-i list pods -n team: %v", r)
				}
				for _, args := range [][]string{
					{"delete", "pods", "-n", "team"},
					{"list", "pods", "-n", "other"},
					{"get", "secrets", "-n", "team"},
				} {
					r := k.run(t, "", append([]string{"auth", "can-i"}, args...)...)
					if r.code == 0 || strings.TrimSpace(r.stdout) != "no" {
						t.Errorf("can-i %s: %v, want no", strings.Join(args, " "), r)
					}
				}
			})
		}
	})

	t.Run("service account token", func(t *testing.T) {
		token := strings.TrimSpace(admin.ok(t, "create", "token", "reader", "-n", "robots"))
		robot := findKubectl(t, "1.33", tokenKubeconfig(t, srv, token))
		const user = "system:serviceaccount:robots:reader"

		if got := whoami(t, robot); got != user {
			t.Errorf("auth whoami with the token = %q, want %q", got, user)
		}
		if out := mustAllow(t, robot, "get", "configmap", "settings", "-n", "robots", "-o", "jsonpath={.data.color}"); out != "blue" {
			t.Errorf("configmap settings through the token = %q, want blue", out)
		}
		mustAllow(t, robot, "get", "configmaps", "-n", "robots")
		mustRefuse(t, robot, []string{"forbidden", `User "` + user + `" cannot get resource "secrets" in API group "" in the namespace "robots"`},
			"get", "secret", "hidden", "-n", "robots")
		mustRefuse(t, robot, []string{"forbidden", `User "` + user + `" cannot list resource "configmaps" in API group "" in the namespace "default"`},
			"get", "configmaps", "-n", "default")
		mustRefuse(t, robot, []string{"forbidden", `User "` + user + `" cannot create resource "configmaps"`},
			"create", "configmap", "mine", "-n", "robots", "--from-literal=a=b")
		mustRefuse(t, robot, []string{"forbidden", `cannot list resource "pods"`}, "get", "pods", "-n", "robots")

		// The same token, one byte changed, is nobody.
		for name, bad := range map[string]string{
			"tampered signature": tamper(token, len(token)-3),
			"tampered payload":   tamper(token, strings.Index(token, ".")+5),
			"truncated":          token[:len(token)-10],
		} {
			if code, body := apiStatus(t, srv, bad, "/api/v1/namespaces/robots/configmaps/settings"); code != http.StatusUnauthorized {
				t.Errorf("%s token: status %d, want 401: %s", name, code, body)
			}
		}
		// No token at all is anonymous, which may not read it either.
		if code, body := apiStatus(t, srv, "", "/api/v1/namespaces/robots/configmaps/settings"); code != http.StatusForbidden && code != http.StatusUnauthorized {
			t.Errorf("anonymous: status %d, want 401 or 403: %s", code, body)
		}
	})

	t.Run("expired token", func(t *testing.T) {
		var sa corev1.ServiceAccount
		if err := json.Unmarshal([]byte(admin.ok(t, "get", "serviceaccount", "reader", "-n", "robots", "-o", "json")), &sa); err != nil {
			t.Fatal(err)
		}
		// Sign with the cluster's own service account key (DATA/pki/sa.key),
		// once now (which must work, so the signature is right) and once
		// with a clock two hours back (expired 110 minutes ago).
		iss, err := tokens.NewIssuer(filepath.Join(srv.dir, "pki"), "", nil)
		if err != nil {
			t.Fatal(err)
		}
		fresh, _, err := iss.Issue(&sa, nil, 10*time.Minute, nil)
		if err != nil {
			t.Fatal(err)
		}
		const path = "/api/v1/namespaces/robots/configmaps/settings"
		if code, body := apiStatus(t, srv, fresh, path); code != http.StatusOK {
			t.Errorf("a token signed now with DATA/pki/sa.key: status %d, want 200: %s", code, body)
		}
		iss.Clock = func() time.Time { return time.Now().Add(-2 * time.Hour) }
		expired, exp, err := iss.Issue(&sa, nil, 10*time.Minute, nil)
		if err != nil {
			t.Fatal(err)
		}
		if !exp.Before(time.Now()) {
			t.Fatalf("forged expiry %v is not in the past", exp)
		}
		if code, body := apiStatus(t, srv, expired, path); code != http.StatusUnauthorized {
			t.Errorf("expired token: status %d, want 401: %s", code, body)
		}
		k := findKubectl(t, "1.33", tokenKubeconfig(t, srv, expired))
		mustRefuse(t, k, []string{"Unauthorized"}, "get", "configmaps", "-n", "robots")
	})

	t.Run("node credential", func(t *testing.T) {
		node := findKubectl(t, "1.33", certKubeconfig(t, srv, "system:node:sec-node", []string{"system:nodes"}))
		if out := mustAllow(t, node, "get", "secret", "mounted", "-n", "nodesec", "-o", "jsonpath={.data.key}"); out != base64.StdEncoding.EncodeToString([]byte("mounted-value")) {
			t.Errorf("node's read of the secret its pod mounts = %q", out)
		}
		mustRefuse(t, node, []string{"forbidden", `User "system:node:sec-node" cannot get resource "secrets" in API group "" in the namespace "nodesec"`},
			"get", "secret", "unmounted", "-n", "nodesec")
		mustRefuse(t, node, []string{"forbidden", `cannot get resource "secrets"`}, "get", "secret", "hidden", "-n", "robots")
		mustRefuse(t, node, []string{"forbidden", `cannot list resource "secrets"`}, "get", "secrets", "-n", "nodesec")
		// Another node's credential cannot read the mounted one either.
		stranger := findKubectl(t, "1.33", certKubeconfig(t, srv, "system:node:other-node", []string{"system:nodes"}))
		mustRefuse(t, stranger, []string{"forbidden", `User "system:node:other-node" cannot get resource "secrets"`},
			"get", "secret", "mounted", "-n", "nodesec")
	})

	t.Run("pod security restricted", func(t *testing.T) {
		r := admin.run(t, privilegedPod, "create", "-f", "-")
		if r.code == 0 {
			t.Errorf("a privileged pod in a restricted namespace was admitted: %v", r)
		}
		for _, w := range []string{"forbidden", `violates PodSecurity "restricted`, `container "priv"`, "securityContext.privileged"} {
			if !strings.Contains(r.stderr, w) {
				t.Errorf("privileged pod's refusal lacks %q: %v", w, r)
			}
		}
		admin.okStdin(t, restrictedPod, "create", "-f", "-")
	})

	t.Run("quota of two pods", func(t *testing.T) {
		for i := 1; i <= 2; i++ {
			admin.okStdin(t, quotaPod(i), "create", "-f", "-")
		}
		r := admin.run(t, quotaPod(3), "create", "-f", "-")
		if r.code == 0 {
			t.Errorf("a third pod under a quota of 2 was admitted: %v", r)
		}
		for _, w := range []string{"forbidden", "exceeded quota: two-pods", "limited: pods=2"} {
			if !strings.Contains(r.stderr, w) {
				t.Errorf("third pod's refusal lacks %q: %v", w, r)
			}
		}
		if out := admin.ok(t, "get", "pods", "-n", "quota", "-o", "name"); len(lines(out)) != 2 {
			t.Errorf("pods in quota = %q, want 2", out)
		}
	})

	t.Run("secrets encrypted at rest", func(t *testing.T) {
		canary, control := "skiff-canary-"+randomHex(t), "skiff-control-"+randomHex(t)
		admin.ok(t, "create", "secret", "generic", "canary", "-n", "default", "--from-literal=value="+canary)
		if out := admin.ok(t, "get", "secret", "canary", "-n", "default", "-o", "jsonpath={.data.value}"); out != base64.StdEncoding.EncodeToString([]byte(canary)) {
			t.Fatalf("secret read back through the API = %q", out)
		}
		// A config map's value is stored in plaintext: finding it proves
		// the scan would find a value that is there.
		admin.ok(t, "create", "configmap", "canary", "-n", "default", "--from-literal=value="+control)
		srv.stop(t)

		found := scanFiles(t, filepath.Join(dir, "etcd"), canary, base64.StdEncoding.EncodeToString([]byte(canary)))
		if len(found) > 0 {
			t.Errorf("the secret's value is in plaintext in etcd's files: %s", strings.Join(found, ", "))
		}
		if found := scanFiles(t, filepath.Join(dir, "etcd"), control); len(found) == 0 {
			t.Errorf("the control config map's value is nowhere in %s: the scan is blind", filepath.Join(dir, "etcd"))
		}
	})
}

// checkCanIList checks "kubectl auth can-i --list -n team" for alice: pods
// get/list/watch, no delete, and no secrets.
func checkCanIList(t *testing.T, k kubectl) {
	t.Helper()
	r := k.run(t, "", "auth", "can-i", "--list", "-n", "team")
	if r.code != 0 {
		t.Errorf("can-i --list -n team: %v", r)
		return
	}
	var podVerbs string
	for _, l := range lines(r.stdout) {
		f := strings.Fields(l)
		if len(f) == 0 {
			continue
		}
		if f[0] == "secrets" {
			t.Errorf("can-i --list -n team lists secrets: %q", l)
		}
		if f[0] == "pods" {
			podVerbs = l[strings.LastIndex(l, "["):]
		}
	}
	for _, v := range []string{"get", "list", "watch"} {
		if !slices.Contains(strings.Fields(strings.Trim(podVerbs, "[]")), v) {
			t.Errorf("can-i --list -n team: pods verbs %q lack %s:\n%s", podVerbs, v, r.stdout)
		}
	}
	if slices.ContainsFunc(strings.Fields(strings.Trim(podVerbs, "[]")), func(v string) bool { return v == "delete" || v == "*" }) {
		t.Errorf("can-i --list -n team: pods verbs %q include delete:\n%s", podVerbs, r.stdout)
	}
}

// privilegedPod breaks the restricted (and the baseline) standard.
const privilegedPod = `
apiVersion: v1
kind: Pod
metadata: {name: priv, namespace: locked}
spec:
  containers:
  - name: priv
    image: skiff-test/busybox:1.35
    command: [sleep, '3600']
    securityContext: {privileged: true}
`

// restrictedPod satisfies the restricted Pod Security Standard.
const restrictedPod = `
apiVersion: v1
kind: Pod
metadata: {name: compliant, namespace: locked}
spec:
  securityContext: {runAsNonRoot: true, runAsUser: 1000, seccompProfile: {type: RuntimeDefault}}
  containers:
  - name: c
    image: skiff-test/busybox:1.35
    command: [sleep, '3600']
    securityContext:
      allowPrivilegeEscalation: false
      capabilities: {drop: [ALL]}
`

func quotaPod(i int) string {
	return fmt.Sprintf(`
apiVersion: v1
kind: Pod
metadata: {name: p%d, namespace: quota}
spec:
  containers: [{name: c, image: skiff-test/busybox:1.35, command: [sleep, '3600']}]
`, i)
}

// randomHex returns 24 random hex digits.
func randomHex(t *testing.T) string {
	t.Helper()
	b := make([]byte, 12)
	if _, err := rand.Read(b); err != nil {
		t.Fatal(err)
	}
	return hex.EncodeToString(b)
}

// tamper returns token with the byte at i changed to another base64url
// character.
func tamper(token string, i int) string {
	b := []byte(token)
	if b[i] == 'A' {
		b[i] = 'B'
	} else {
		b[i] = 'A'
	}
	return string(b)
}

// scanFiles returns the files under root that contain any of needles.
func scanFiles(t *testing.T, root string, needles ...string) []string {
	t.Helper()
	var found []string
	err := filepath.WalkDir(root, func(path string, d fs.DirEntry, err error) error {
		if err != nil || d.IsDir() {
			return err
		}
		data, err := os.ReadFile(path)
		if err != nil {
			return err
		}
		for _, n := range needles {
			if bytes.Contains(data, []byte(n)) {
				found = append(found, fmt.Sprintf("%s (%q)", path, n))
			}
		}
		return nil
	})
	if err != nil {
		t.Fatalf("scanning %s: %v", root, err)
	}
	return found
}

// podTokenManifests run a pod under a service account allowed to read one
// config map, mounting one of two secrets, on the agent's node.
const podTokenManifests = `
apiVersion: v1
kind: Namespace
metadata: {name: podsec}
---
apiVersion: v1
kind: ServiceAccount
metadata: {name: app, namespace: podsec}
---
apiVersion: rbac.authorization.k8s.io/v1
kind: Role
metadata: {name: read-settings, namespace: podsec}
rules:
- {apiGroups: [""], resources: [configmaps], resourceNames: [settings], verbs: [get]}
---
apiVersion: rbac.authorization.k8s.io/v1
kind: RoleBinding
metadata: {name: app, namespace: podsec}
roleRef: {apiGroup: rbac.authorization.k8s.io, kind: Role, name: read-settings}
subjects:
- {kind: ServiceAccount, name: app, namespace: podsec}
---
apiVersion: v1
kind: ConfigMap
metadata: {name: settings, namespace: podsec}
data: {color: green}
---
apiVersion: v1
kind: ConfigMap
metadata: {name: private, namespace: podsec}
data: {color: red}
---
apiVersion: v1
kind: Secret
metadata: {name: mounted, namespace: podsec}
stringData: {key: mounted-value}
---
apiVersion: v1
kind: Secret
metadata: {name: unmounted, namespace: podsec}
stringData: {key: unmounted-value}
---
apiVersion: v1
kind: Pod
metadata: {name: app, namespace: podsec}
spec:
  serviceAccountName: app
  terminationGracePeriodSeconds: 1
  containers:
  - name: app
    image: skiff-test/busybox:1.35
    imagePullPolicy: Never
    command: [sleep, '3600']
    volumeMounts: [{name: s, mountPath: /etc/s}]
  volumes: [{name: s, secret: {secretName: mounted}}]
`

// TestSecurityNode checks the promises that need a running node agent: a
// pod's projected service account token reads what its service account
// is bound to and nothing else (and dies with the pod), and the node's
// credential reads the secret its pod mounts and no other.
func TestSecurityNode(t *testing.T) {
	requireNode(t)
	archives := buildTestImages(t)
	dir := t.TempDir()
	cleanupNode(t, dir)
	srv, admin := startNode(t, dir, freeAddr(t), freePort(t), archives)

	admin.okStdin(t, podTokenManifests, "apply", "-f", "-")
	admin.ok(t, "wait", "-n", "podsec", "--for=condition=Ready", "pod/app", "--timeout", "90s")

	t.Run("projected token", func(t *testing.T) {
		token := admin.ok(t, "exec", "-n", "podsec", "app", "--", "cat", "/var/run/secrets/kubernetes.io/serviceaccount/token")
		if strings.Count(token, ".") != 2 {
			t.Fatalf("projected token %q is not a JWT", token)
		}
		if ns := admin.ok(t, "exec", "-n", "podsec", "app", "--", "cat", "/var/run/secrets/kubernetes.io/serviceaccount/namespace"); ns != "podsec" {
			t.Errorf("projected namespace = %q", ns)
		}
		app := findKubectl(t, "1.33", tokenKubeconfig(t, srv, token))
		const user = "system:serviceaccount:podsec:app"
		if got := whoami(t, app); got != user {
			t.Errorf("auth whoami with the pod's token = %q, want %q", got, user)
		}
		if out := mustAllow(t, app, "get", "configmap", "settings", "-n", "podsec", "-o", "jsonpath={.data.color}"); out != "green" {
			t.Errorf("configmap settings through the pod's token = %q, want green", out)
		}
		mustRefuse(t, app, []string{"forbidden", `User "` + user + `" cannot get resource "configmaps" in API group "" in the namespace "podsec"`},
			"get", "configmap", "private", "-n", "podsec")
		mustRefuse(t, app, []string{"forbidden", `User "` + user + `" cannot list resource "configmaps"`}, "get", "configmaps", "-n", "podsec")
		mustRefuse(t, app, []string{"forbidden", `User "` + user + `" cannot get resource "secrets"`}, "get", "secret", "mounted", "-n", "podsec")
		mustRefuse(t, app, []string{"forbidden", `User "` + user + `" cannot list resource "pods"`}, "get", "pods", "-n", "podsec")
		mustRefuse(t, app, []string{"forbidden", `User "` + user + `" cannot get resource "configmaps" in API group "" in the namespace "default"`},
			"get", "configmap", "kube-root-ca.crt", "-n", "default")
		if code, body := apiStatus(t, srv, tamper(token, len(token)-3), "/api/v1/namespaces/podsec/configmaps/settings"); code != http.StatusUnauthorized {
			t.Errorf("tampered pod token: status %d, want 401: %s", code, body)
		}

		t.Run("node credential", func(t *testing.T) {
			node := findKubectl(t, "1.33", certKubeconfig(t, srv, "system:node:e2e-node", []string{"system:nodes"}))
			if out := mustAllow(t, node, "get", "secret", "mounted", "-n", "podsec", "-o", "jsonpath={.data.key}"); out != base64.StdEncoding.EncodeToString([]byte("mounted-value")) {
				t.Errorf("node's read of the secret its pod mounts = %q", out)
			}
			mustRefuse(t, node, []string{"forbidden", `User "system:node:e2e-node" cannot get resource "secrets" in API group "" in the namespace "podsec"`},
				"get", "secret", "unmounted", "-n", "podsec")
		})

		// The token is bound to the pod: once the pod is gone it is nobody.
		admin.ok(t, "delete", "pod", "app", "-n", "podsec", "--wait=true", "--timeout=60s")
		eventually(t, 30*time.Second, func() error {
			if code, body := apiStatus(t, srv, token, "/api/v1/namespaces/podsec/configmaps/settings"); code != http.StatusUnauthorized {
				return fmt.Errorf("the deleted pod's token: status %d, want 401: %s", code, body)
			}
			return nil
		})
	})
}
