package e2e

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/base64"
	"encoding/pem"
	"fmt"
	"math/big"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// webhookCerts returns a CA (PEM) and a serving certificate and key
// (PEM) for dnsName, signed by it.
func webhookCerts(t *testing.T, dnsName string) (caPEM, certPEM, keyPEM []byte) {
	t.Helper()
	caKey, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	caTmpl := &x509.Certificate{
		SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: "e2e webhook CA"},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(24 * time.Hour),
		IsCA: true, BasicConstraintsValid: true, KeyUsage: x509.KeyUsageCertSign,
	}
	caDER, err := x509.CreateCertificate(rand.Reader, caTmpl, caTmpl, &caKey.PublicKey, caKey)
	if err != nil {
		t.Fatal(err)
	}
	ca, err := x509.ParseCertificate(caDER)
	if err != nil {
		t.Fatal(err)
	}
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{
		SerialNumber: big.NewInt(2), Subject: pkix.Name{CommonName: dnsName}, DNSNames: []string{dnsName},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(24 * time.Hour),
		KeyUsage: x509.KeyUsageDigitalSignature, ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, ca, &key.PublicKey, caKey)
	if err != nil {
		t.Fatal(err)
	}
	keyDER, err := x509.MarshalECPrivateKey(key)
	if err != nil {
		t.Fatal(err)
	}
	return pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: caDER}),
		pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}),
		pem.EncodeToMemory(&pem.Block{Type: "EC PRIVATE KEY", Bytes: keyDER})
}

// exerciseWebhookService runs the test server as a validating admission
// webhook behind a Service (HTTPS, its own CA) and checks that the API
// server calls it, through the service's endpoints, for the namespace it
// selects: a config map with the key "forbidden" is refused there and
// nowhere else.
func exerciseWebhookService(t *testing.T, k kubectl) {
	caPEM, certPEM, keyPEM := webhookCerts(t, "hook.webhook-e2e.svc")
	dir := t.TempDir()
	certFile, keyFile := filepath.Join(dir, "tls.crt"), filepath.Join(dir, "tls.key")
	if err := os.WriteFile(certFile, certPEM, 0o600); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(keyFile, keyPEM, 0o600); err != nil {
		t.Fatal(err)
	}
	k.ok(t, "create", "namespace", "webhook-e2e")
	k.ok(t, "label", "namespace", "webhook-e2e", "webhook-e2e=on")
	k.ok(t, "create", "secret", "tls", "hook-tls", "-n", "webhook-e2e", "--cert", certFile, "--key", keyFile)
	k.okStdin(t, `apiVersion: v1
kind: Pod
metadata: {name: hook, namespace: webhook-e2e, labels: {app: hook}}
spec:
  terminationGracePeriodSeconds: 1
  containers:
  - name: hook
    image: skiff-test/testserver:1
    imagePullPolicy: Never
    args: [--tls-port=8443, --tls-cert=/tls/tls.crt, --tls-key=/tls/tls.key]
    ports: [{containerPort: 8443, name: https}]
    readinessProbe: {httpGet: {path: /healthz, port: 8080}, periodSeconds: 1}
    volumeMounts: [{name: tls, mountPath: /tls}]
  volumes:
  - name: tls
    secret: {secretName: hook-tls}
---
apiVersion: v1
kind: Service
metadata: {name: hook, namespace: webhook-e2e}
spec:
  selector: {app: hook}
  ports: [{port: 443, targetPort: https}]
`, "apply", "-f", "-")
	k.ok(t, "wait", "-n", "webhook-e2e", "--for=condition=Ready", "pod/hook", "--timeout", "60s")
	k.okStdin(t, fmt.Sprintf(`apiVersion: admissionregistration.k8s.io/v1
kind: ValidatingWebhookConfiguration
metadata: {name: e2e-deny-forbidden}
webhooks:
- name: deny-forbidden.e2e.skiff.dev
  clientConfig:
    service: {namespace: webhook-e2e, name: hook, path: /admission/deny-forbidden}
    caBundle: %s
  rules:
  - operations: [CREATE, UPDATE]
    apiGroups: [""]
    apiVersions: [v1]
    resources: [configmaps]
  namespaceSelector: {matchLabels: {webhook-e2e: "on"}}
  sideEffects: None
  admissionReviewVersions: [v1]
  timeoutSeconds: 5
`, base64.StdEncoding.EncodeToString(caPEM)), "apply", "-f", "-")
	defer k.run(t, "", "delete", "validatingwebhookconfiguration", "e2e-deny-forbidden")
	if out := k.ok(t, "get", "validatingwebhookconfigurations"); !strings.Contains(out, "e2e-deny-forbidden") {
		t.Errorf("kubectl get validatingwebhookconfigurations:\n%s", out)
	}

	// The configuration reaches the API server's informer within moments.
	eventually(t, 30*time.Second, func() error {
		r := k.run(t, "", "create", "configmap", "refused", "-n", "webhook-e2e", "--from-literal=forbidden=x")
		if r.code == 0 {
			k.run(t, "", "delete", "configmap", "refused", "-n", "webhook-e2e")
			return fmt.Errorf("a config map with the key forbidden was admitted")
		}
		if !strings.Contains(r.stderr, `admission webhook "deny-forbidden.e2e.skiff.dev" denied the request: the testserver webhook refuses key forbidden`) {
			return fmt.Errorf("refusal: %v", r)
		}
		return nil
	})
	k.ok(t, "create", "configmap", "fine", "-n", "webhook-e2e", "--from-literal=ok=x")
	k.ok(t, "create", "configmap", "elsewhere", "-n", "default", "--from-literal=forbidden=x")
	k.ok(t, "delete", "configmap", "elsewhere", "-n", "default")
	k.ok(t, "delete", "namespace", "webhook-e2e", "--wait=false")
}
