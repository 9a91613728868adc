package e2e

import (
	"bytes"
	"crypto/x509"
	"encoding/json"
	"encoding/pem"
	"fmt"
	"net/netip"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	certificatesv1 "k8s.io/api/certificates/v1"
	corev1 "k8s.io/api/core/v1"

	"github.com/skiff-dev/skiff/internal/pki"
)

// The join test's addresses: a veth pair between the host, where the
// server and its own node agent run, and the second node's namespace.
const (
	joinNetns    = "skiff-e2e-join"
	joinHostCIDR = "10.203.0.1/24"
	joinNodeCIDR = "10.203.0.2/24"
	joinNode     = "n2"
)

// TestJoin checks issue 7's join: a second node agent on the same machine,
// with its own data dir and network namespace, joins the cluster with a
// token from "skiff token create" (TLS bootstrap: CA pinned by hash, a
// CSR approved and signed by the controllers), becomes Ready and runs a
// pod, whose logs and exec reach its kubelet through the API server.
func TestJoin(t *testing.T) {
	testJoin(t, joinWithToken)
}

// TestJoinWithKubeconfig is TestJoin with the node's credentials made by
// hand: a client certificate for system:node:n2 from the cluster CA, in a
// kubeconfig given to "skiff agent --kubeconfig" (the way without tokens).
func TestJoinWithKubeconfig(t *testing.T) {
	testJoin(t, joinWithKubeconfig)
}

// joinMode returns the credential flags of "skiff agent" for node name
// joining the server of dataDir at listen, and a check to run once the
// node is Ready (nil: none); dir2 is the agent's data dir.
type joinMode func(t *testing.T, dataDir, listen, name, dir2 string) (args []string, check func(*testing.T, kubectl))

// joinWithToken makes a join token with "skiff token create" and returns
// the --server and --token of the join command it prints.
func joinWithToken(t *testing.T, dataDir, listen, name, dir2 string) ([]string, func(*testing.T, kubectl)) {
	t.Helper()
	var stderr bytes.Buffer
	cmd := exec.Command(skiffBin, "token", "create", "--data-dir", dataDir)
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	if err != nil {
		t.Fatalf("skiff token create --data-dir %s: %v\n%s%s", dataDir, err, out, stderr.Bytes())
	}
	server, token := flagValue(string(out), "--server"), flagValue(string(out), "--token")
	if server == "" || token == "" {
		t.Fatalf("skiff token create printed no join command with --server and --token:\n%s", out)
	}
	if server != "https://"+listen {
		t.Errorf("join command's --server = %q, want https://%s", server, listen)
	}
	return []string{"--server", server, "--token", token}, func(t *testing.T, k kubectl) {
		// The node's certificate came from an approved and signed CSR.
		var csrs certificatesv1.CertificateSigningRequestList
		if err := json.Unmarshal([]byte(k.ok(t, "get", "csr", "-o", "json")), &csrs); err != nil {
			t.Fatal(err)
		}
		issued := 0
		for _, c := range csrs.Items {
			if !strings.HasPrefix(c.Spec.Username, "system:bootstrap:") || c.Spec.SignerName != certificatesv1.KubeAPIServerClientKubeletSignerName {
				continue
			}
			approved := false
			for _, cond := range c.Status.Conditions {
				approved = approved || (cond.Type == certificatesv1.CertificateApproved && cond.Status == corev1.ConditionTrue)
			}
			if approved && len(c.Status.Certificate) > 0 {
				issued++
			}
		}
		if issued != 1 {
			t.Errorf("%d approved and issued kubelet client CSRs from a bootstrap token, want 1:\n%s", issued, k.ok(t, "get", "csr"))
		}
		b, err := os.ReadFile(filepath.Join(dir2, "agent", "node.crt"))
		if err != nil {
			t.Fatal(err)
		}
		blk, _ := pem.Decode(b)
		if blk == nil {
			t.Fatalf("%s/agent/node.crt holds no PEM", dir2)
		}
		cert, err := x509.ParseCertificate(blk.Bytes)
		if err != nil {
			t.Fatal(err)
		}
		if got, want := cert.Subject.CommonName, "system:node:"+name; got != want || !slices.Equal(cert.Subject.Organization, []string{pki.NodesGroup}) {
			t.Errorf("node certificate subject %v, want CN=%s O=%s", cert.Subject, want, pki.NodesGroup)
		}
	}
}

// joinWithKubeconfig issues the node's certificate from the cluster CA
// and returns --kubeconfig.
func joinWithKubeconfig(t *testing.T, dataDir, listen, name, dir2 string) ([]string, func(*testing.T, kubectl)) {
	t.Helper()
	return []string{"--kubeconfig", nodeKubeconfig(t, dataDir, listen, name)}, nil
}

// flagValue returns the value of flag (as "--flag value" or
// "--flag=value") in the text of a command line, or "".
func flagValue(text, flag string) string {
	f := strings.Fields(text)
	for i, w := range f {
		w = strings.Trim(w, "'\"")
		if w == flag && i+1 < len(f) {
			return strings.Trim(f[i+1], "'\"")
		}
		if v, ok := strings.CutPrefix(w, flag+"="); ok {
			return v
		}
	}
	return ""
}

func testJoin(t *testing.T, join joinMode) {
	requireNode(t)
	requireNetns(t)
	if join == nil {
		t.Fatal("no join mode")
	}
	archives := buildTestImages(t)

	// Cleanups run last-in first-out: the check that nothing is left
	// behind is registered first so that it runs last.
	before := readHostNet(t)
	t.Cleanup(func() {
		removeNodeNetwork(t, before)
		after := readHostNet(t)
		for what, d := range map[string][]string{
			"routes":          added(before.routes, after.routes),
			"netns":           added(before.netns, after.netns),
			"nftables tables": added(before.tables, after.tables),
			"links":           added(before.links, after.links),
		} {
			if len(d) > 0 {
				t.Errorf("left behind on the host: %s %q", what, d)
			}
		}
	})
	ns := newNetns(t, joinNetns, joinHostCIDR, joinNodeCIDR)

	// The first node: the server's own agent, on the host end of the
	// veth, so that each node reaches the other's address directly (the
	// agents route each other's pod CIDRs through it).
	dir1 := t.TempDir()
	cleanupNode(t, dir1)
	listen := ns.hostIP + ":" + freePort(t)
	_, k := startNodeArgs(t, dir1, listen, "join-n1", nil,
		"--node-ip", ns.hostIP, "--kubelet-port", freePort(t),
		"--ingress-http-port", "0", "--ingress-https-port", "0")

	// The second node, in the namespace.
	dir2 := t.TempDir()
	joinArgs, check := join(t, dir1, listen, joinNode, dir2)
	args := append([]string{skiffBin, "agent", "--data-dir", dir2}, joinArgs...)
	agent := startAgent(t, ns.command(append(args,
		"--node-name", joinNode, "--node-ip", ns.nsIP,
		"--image-archives", archives[0],
		"--ingress-http-port", "0", "--ingress-https-port", "0")...))
	t.Cleanup(func() {
		agent.stop(t)
		if out, err := ns.command(skiffBin, "reset", "--data-dir", dir2).CombinedOutput(); err != nil {
			t.Errorf("skiff reset --data-dir %s in %s: %v\n%s", dir2, ns.name, err, out)
		}
		killUnder(dir2)
		if t.Failed() || os.Getenv("SKIFF_E2E_AGENT_LOG") != "" {
			t.Logf("agent %s output:\n%s", joinNode, agent.output.String())
		}
	})

	eventually(t, 90*time.Second, func() error {
		if err := agent.exited(); err != nil {
			t.Fatal(err)
		}
		r := k.run(t, "", "get", "node", joinNode, "-o", `jsonpath={.status.conditions[?(@.type=="Ready")].status}`)
		if r.code != 0 || r.stdout != "True" {
			return fmt.Errorf("node %s not Ready: %v", joinNode, r)
		}
		return nil
	})
	if got := strings.TrimSpace(k.ok(t, "get", "node", joinNode, "-o", `jsonpath={.status.addresses[?(@.type=="InternalIP")].address}`)); got != ns.nsIP {
		t.Errorf("node %s InternalIP = %q, want %q", joinNode, got, ns.nsIP)
	}
	if check != nil {
		check(t, k)
	}
	podCIDR := strings.TrimSpace(k.ok(t, "get", "node", joinNode, "-o", "jsonpath={.spec.podCIDR}"))

	k.okStdin(t, fmt.Sprintf(`
apiVersion: v1
kind: Namespace
metadata: {name: join}
---
apiVersion: v1
kind: Pod
metadata: {name: on-n2, namespace: join}
spec:
  nodeSelector: {kubernetes.io/hostname: %s}
  terminationGracePeriodSeconds: 1
  containers:
  - name: c
    image: skiff-test/busybox:1.35
    imagePullPolicy: Never
    command: [sh, -c, 'echo hello-from-%s; exec sleep 3600']
`, joinNode, joinNode), "apply", "-f", "-")
	// The agent imports the image archive before it reports; still, the
	// first sandbox can take a while.
	k.ok(t, "wait", "-n", "join", "--for=condition=Ready", "pod/on-n2", "--timeout", "90s")

	p := getPod(t, k, "join", "on-n2")
	if p.Spec.NodeName != joinNode || p.Status.Phase != "Running" {
		t.Fatalf("pod on-n2: node %q, phase %q; want %s, Running", p.Spec.NodeName, p.Status.Phase, joinNode)
	}
	if prefix, err := netip.ParsePrefix(podCIDR); err != nil {
		t.Errorf("node %s pod CIDR %q: %v", joinNode, podCIDR, err)
	} else if ip, err := netip.ParseAddr(p.Status.PodIP); err != nil || !prefix.Contains(ip) {
		t.Errorf("pod IP %q is not in %s's pod CIDR %s", p.Status.PodIP, joinNode, podCIDR)
	}

	t.Run("routes between the nodes' pod CIDRs", func(t *testing.T) {
		// Each agent routes the other node's pod CIDR through its address.
		n1CIDR := strings.TrimSpace(k.ok(t, "get", "node", "join-n1", "-o", "jsonpath={.spec.podCIDR}"))
		eventually(t, 30*time.Second, func() error {
			if err := hasRoute(exec.Command("ip", "route", "show", podCIDR), "via "+ns.nsIP); err != nil {
				return fmt.Errorf("host: %w", err)
			}
			if err := hasRoute(ns.command("ip", "route", "show", n1CIDR), "via "+ns.hostIP); err != nil {
				return fmt.Errorf("namespace %s: %w", ns.name, err)
			}
			return nil
		})
		// The host reaches the pod on the other node by its pod IP.
		eventually(t, 30*time.Second, func() error {
			if out, err := exec.Command("/bin/busybox", "ping", "-c", "1", "-W", "1", p.Status.PodIP).CombinedOutput(); err != nil {
				return fmt.Errorf("busybox ping %s: %v: %s", p.Status.PodIP, err, out)
			}
			return nil
		})
	})

	t.Run("logs through the API server", func(t *testing.T) {
		eventually(t, 20*time.Second, func() error {
			r := k.run(t, "", "logs", "-n", "join", "on-n2")
			if r.code != 0 || !strings.Contains(r.stdout, "hello-from-"+joinNode) {
				return fmt.Errorf("kubectl logs: %v", r)
			}
			return nil
		})
	})
	t.Run("exec through the API server", func(t *testing.T) {
		if out := k.ok(t, "exec", "-n", "join", "on-n2", "--", "sh", "-c", "echo hi from $(hostname)"); out != "hi from on-n2\n" {
			t.Errorf("exec output = %q", out)
		}
		if out := k.okStdin(t, "from-stdin\n", "exec", "-i", "-n", "join", "on-n2", "--", "cat"); out != "from-stdin\n" {
			t.Errorf("exec -i cat = %q", out)
		}
	})

	k.ok(t, "delete", "namespace", "join", "--timeout", "60s")
}

// hasRoute runs cmd (an "ip route show PREFIX") and requires a route
// whose line contains want.
func hasRoute(cmd *exec.Cmd, want string) error {
	out, err := cmd.CombinedOutput()
	if err != nil {
		return fmt.Errorf("%s: %v: %s", strings.Join(cmd.Args, " "), err, out)
	}
	if !strings.Contains(string(out), want) {
		return fmt.Errorf("%s = %q, want a route %s", strings.Join(cmd.Args, " "), out, want)
	}
	return nil
}

// nodeKubeconfig writes a kubeconfig for node name to the server of
// dataDir (listening on listen), with a client certificate for
// system:node:<name> issued by the cluster CA, and returns its path.
func nodeKubeconfig(t *testing.T, dataDir, listen, name string) string {
	t.Helper()
	host, _, _ := strings.Cut(listen, ":")
	b, err := pki.Ensure(pki.Options{Dir: filepath.Join(dataDir, "pki"), Hosts: []string{host}})
	if err != nil {
		t.Fatal(err)
	}
	if len(b.Issued) > 0 {
		t.Fatalf("the server's certificates do not cover %s: re-issued %v", host, b.Issued)
	}
	certPEM, keyPEM, err := b.ClientCert("e2e-node-"+name, "system:node:"+name, []string{pki.NodesGroup})
	if err != nil {
		t.Fatal(err)
	}
	path := filepath.Join(t.TempDir(), "kubeconfig")
	if err := pki.WriteKubeconfig(path, "https://"+listen, b.CAPEM, certPEM, keyPEM); err != nil {
		t.Fatal(err)
	}
	return path
}
