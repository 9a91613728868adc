package e2e

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"fmt"
	"io"
	"math/big"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

const networkManifests = `
apiVersion: v1
kind: Namespace
metadata: {name: shop}
---
apiVersion: apps/v1
kind: Deployment
metadata: {name: web, namespace: shop}
spec:
  replicas: 3
  selector: {matchLabels: {app: web}}
  template:
    metadata: {labels: {app: web}}
    spec:
      containers:
      - name: web
        image: skiff-test/testserver:1
        imagePullPolicy: Never
        ports: [{containerPort: 8080, name: http}]
        readinessProbe: {httpGet: {path: /healthz, port: http}, periodSeconds: 1}
---
apiVersion: apps/v1
kind: Deployment
metadata: {name: other, namespace: shop}
spec:
  replicas: 1
  selector: {matchLabels: {app: other}}
  template:
    metadata: {labels: {app: other}}
    spec:
      containers:
      - name: other
        image: skiff-test/testserver:1
        imagePullPolicy: Never
        ports: [{containerPort: 8080, name: http}]
        readinessProbe: {httpGet: {path: /healthz, port: http}, periodSeconds: 1}
---
apiVersion: v1
kind: Service
metadata: {name: web, namespace: shop}
spec:
  selector: {app: web}
  ports: [{name: http, port: 80, targetPort: http}]
---
apiVersion: v1
kind: Service
metadata: {name: other, namespace: shop}
spec:
  selector: {app: other}
  ports: [{name: http, port: 80, targetPort: http}]
---
apiVersion: v1
kind: Service
metadata: {name: web-np, namespace: shop}
spec:
  type: NodePort
  selector: {app: web}
  ports: [{name: http, port: 80, targetPort: http}]
---
apiVersion: v1
kind: Service
metadata: {name: db, namespace: shop}
spec:
  clusterIP: None
  selector: {app: db}
  ports: [{name: tcp, port: 9000}]
---
apiVersion: apps/v1
kind: StatefulSet
metadata: {name: db, namespace: shop}
spec:
  serviceName: db
  replicas: 2
  selector: {matchLabels: {app: db}}
  template:
    metadata: {labels: {app: db}}
    spec:
      terminationGracePeriodSeconds: 1
      containers:
      - name: db
        image: skiff-test/busybox:1.35
        imagePullPolicy: Never
        command: [sleep, "3600"]
---
apiVersion: v1
kind: Pod
metadata: {name: client, namespace: shop, labels: {role: client}}
spec:
  terminationGracePeriodSeconds: 1
  containers:
  - name: c
    image: skiff-test/busybox:1.35
    imagePullPolicy: Never
    command: [sleep, "3600"]
`

// TestServiceNetworking checks issue 6's scenarios on one real node:
// services by DNS name spread over their endpoints, NodePorts, headless
// StatefulSet names, Ingress by host with TLS, and NetworkPolicy.
func TestServiceNetworking(t *testing.T) {
	requireNode(t)
	if _, err := os.Stat("/usr/sbin/nft"); err != nil {
		t.Skip("skipping: nft is absent (apt-get install nftables)")
	}
	archives := buildTestImages(t)
	dir := t.TempDir()
	cleanupNode(t, dir)
	httpPort, httpsPort := freePort(t), freePort(t)
	// No --node-ip: pods must reach the node's real address (cluster DNS
	// listens there).
	srv, k := startNodeArgs(t, dir, freeAddr(t), "net-node", archives, "--kubelet-port", freePort(t),
		"--ingress-http-port", httpPort, "--ingress-https-port", httpsPort)
	nodeIP := strings.TrimSpace(k.ok(t, "get", "node", "net-node", "-o", `jsonpath={.status.addresses[?(@.type=="InternalIP")].address}`))

	k.okStdin(t, networkManifests, "apply", "-f", "-")
	k.ok(t, "rollout", "status", "-n", "shop", "deployment/web", "--timeout", "90s")
	k.ok(t, "rollout", "status", "-n", "shop", "deployment/other", "--timeout", "90s")
	k.ok(t, "rollout", "status", "-n", "shop", "statefulset/db", "--timeout", "90s")
	k.ok(t, "wait", "-n", "shop", "--for=condition=Ready", "pod/client", "--timeout", "60s")

	// fetch runs wget n times from the client pod and returns the bodies.
	fetch := func(t *testing.T, url string, n int) []string {
		t.Helper()
		script := fmt.Sprintf(`for i in $(seq %d); do timeout 5 wget -qO- %s || echo FAILED; echo; done`, n, url)
		out := k.ok(t, "exec", "-n", "shop", "client", "--", "sh", "-c", script)
		var bodies []string
		for _, l := range lines(out) {
			if l = strings.TrimSpace(l); l != "" {
				bodies = append(bodies, l)
			}
		}
		return bodies
	}

	t.Run("service by DNS name spreads over replicas", func(t *testing.T) {
		eventually(t, 30*time.Second, func() error {
			seen := map[string]int{}
			for _, b := range fetch(t, "http://web.shop.svc.cluster.local/", 30) {
				seen[b]++
			}
			if seen["FAILED"] > 0 || len(seen) != 3 {
				return fmt.Errorf("answers by backend: %v, want 3 backends and no failures", seen)
			}
			return nil
		})
	})

	t.Run("NodePort on the node address", func(t *testing.T) {
		port := strings.TrimSpace(k.ok(t, "get", "svc", "-n", "shop", "web-np", "-o", "jsonpath={.spec.ports[0].nodePort}"))
		body := httpGet(t, "http://"+net.JoinHostPort(nodeIP, port)+"/")
		if !strings.HasPrefix(body, "web-") {
			t.Errorf("NodePort answer = %q", body)
		}
	})

	t.Run("headless StatefulSet names", func(t *testing.T) {
		ip := strings.TrimSpace(k.ok(t, "get", "pod", "-n", "shop", "db-0", "-o", "jsonpath={.status.podIP}"))
		eventually(t, 30*time.Second, func() error {
			r := k.run(t, "", "exec", "-n", "shop", "client", "--", "nslookup", "db-0.db.shop.svc.cluster.local")
			if r.code != 0 || !strings.Contains(r.stdout, ip) {
				return fmt.Errorf("nslookup db-0.db: %v (want %s)", r, ip)
			}
			return nil
		})
	})

	t.Run("scaling down removes endpoints", func(t *testing.T) {
		k.ok(t, "scale", "-n", "shop", "deployment/web", "--replicas", "1")
		eventually(t, 60*time.Second, func() error {
			seen := map[string]int{}
			for _, b := range fetch(t, "http://web.shop.svc.cluster.local/", 10) {
				seen[b]++
			}
			if len(seen) != 1 || seen["FAILED"] > 0 {
				return fmt.Errorf("answers by backend: %v, want the one replica left", seen)
			}
			return nil
		})
	})

	t.Run("ingress by host with TLS", func(t *testing.T) {
		certPEM, keyPEM := selfSigned(t, "a.example.com")
		certFile := filepath.Join(t.TempDir(), "tls.crt")
		keyFile := filepath.Join(filepath.Dir(certFile), "tls.key")
		if err := os.WriteFile(certFile, certPEM, 0o600); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(keyFile, keyPEM, 0o600); err != nil {
			t.Fatal(err)
		}
		k.ok(t, "create", "secret", "tls", "a-tls", "-n", "shop", "--cert", certFile, "--key", keyFile)
		k.okStdin(t, `
apiVersion: networking.k8s.io/v1
kind: Ingress
metadata: {name: shop, namespace: shop}
spec:
  tls: [{hosts: [a.example.com], secretName: a-tls}]
  rules:
  - host: a.example.com
    http: {paths: [{path: /, pathType: Prefix, backend: {service: {name: web, port: {name: http}}}}]}
  - host: b.example.com
    http: {paths: [{path: /, pathType: Prefix, backend: {service: {name: other, port: {number: 80}}}}]}
`, "apply", "-f", "-")
		get := func(client *http.Client, url, host string) (string, error) {
			req, err := http.NewRequest(http.MethodGet, url, nil)
			if err != nil {
				return "", err
			}
			req.Host = host
			resp, err := client.Do(req)
			if err != nil {
				return "", err
			}
			defer resp.Body.Close()
			b, err := io.ReadAll(resp.Body)
			if resp.StatusCode != http.StatusOK {
				return "", fmt.Errorf("%s %s: %s", host, resp.Status, b)
			}
			return string(b), err
		}
		plain := &http.Client{Timeout: 5 * time.Second}
		eventually(t, 30*time.Second, func() error {
			a, err := get(plain, "http://127.0.0.1:"+httpPort+"/", "a.example.com")
			if err != nil || !strings.HasPrefix(a, "web-") {
				return fmt.Errorf("a.example.com: %q, %v", a, err)
			}
			b, err := get(plain, "http://127.0.0.1:"+httpPort+"/", "b.example.com")
			if err != nil || !strings.HasPrefix(b, "other-") {
				return fmt.Errorf("b.example.com: %q, %v", b, err)
			}
			return nil
		})
		roots := x509.NewCertPool()
		roots.AppendCertsFromPEM(certPEM)
		secure := &http.Client{Timeout: 5 * time.Second, Transport: &http.Transport{TLSClientConfig: &tls.Config{RootCAs: roots, ServerName: "a.example.com"}}}
		eventually(t, 30*time.Second, func() error {
			a, err := get(secure, "https://127.0.0.1:"+httpsPort+"/", "a.example.com")
			if err != nil || !strings.HasPrefix(a, "web-") {
				return fmt.Errorf("https a.example.com: %q, %v", a, err)
			}
			return nil
		})
	})

	t.Run("network policy", func(t *testing.T) {
		k.okStdin(t, `
apiVersion: networking.k8s.io/v1
kind: NetworkPolicy
metadata: {name: deny-all, namespace: shop}
spec:
  podSelector: {matchLabels: {app: web}}
  policyTypes: [Ingress]
`, "apply", "-f", "-")
		eventually(t, 30*time.Second, func() error {
			if got := fetch(t, "http://web.shop.svc.cluster.local/", 1); len(got) != 1 || got[0] != "FAILED" {
				return fmt.Errorf("with deny-all: %v, want FAILED", got)
			}
			return nil
		})
		k.okStdin(t, `
apiVersion: networking.k8s.io/v1
kind: NetworkPolicy
metadata: {name: allow-clients, namespace: shop}
spec:
  podSelector: {matchLabels: {app: web}}
  policyTypes: [Ingress]
  ingress:
  - from: [{podSelector: {matchLabels: {role: client}}}]
`, "apply", "-f", "-")
		eventually(t, 30*time.Second, func() error {
			if got := fetch(t, "http://web.shop.svc.cluster.local/", 1); len(got) != 1 || !strings.HasPrefix(got[0], "web-") {
				return fmt.Errorf("with allow-clients: %v", got)
			}
			return nil
		})
	})

	k.ok(t, "delete", "namespace", "shop", "--timeout", "90s")
	srv.stop(t)
}

// selfSigned returns a self-signed certificate and key for host.
func selfSigned(t *testing.T, host string) (certPEM, keyPEM []byte) {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{
		SerialNumber: big.NewInt(1),
		Subject:      pkix.Name{CommonName: host},
		DNSNames:     []string{host},
		NotBefore:    time.Now().Add(-time.Hour),
		NotAfter:     time.Now().Add(time.Hour),
		KeyUsage:     x509.KeyUsageDigitalSignature,
		ExtKeyUsage:  []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		t.Fatal(err)
	}
	kb, err := x509.MarshalECPrivateKey(key)
	if err != nil {
		t.Fatal(err)
	}
	return pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}), pem.EncodeToMemory(&pem.Block{Type: "EC PRIVATE KEY", Bytes: kb})
}
