package e2e

import (
	"context"
	"crypto"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/json"
	"encoding/pem"
	"errors"
	"fmt"
	"io"
	"math/big"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"k8s.io/client-go/tools/clientcmd"
	clientcmdapi "k8s.io/client-go/tools/clientcmd/api"

	"github.com/skiff-dev/skiff/internal/pki"
)

// The credentials the security tests hand to stock kubectl: client
// certificates signed by the cluster CA in DATA/pki, and kubeconfigs
// carrying them or a bearer token.

// serverURL is the API server's address as clients dial it.
func (s *serverProc) serverURL() string { return "https://" + s.listen }

// clusterCA reads the cluster CA's certificate (and its PEM) and key from
// DATA/pki, as an operator issuing a user certificate would.
func clusterCA(t *testing.T, dataDir string) (*x509.Certificate, []byte, crypto.Signer) {
	t.Helper()
	certPEM, err := os.ReadFile(filepath.Join(dataDir, "pki", "ca.crt"))
	if err != nil {
		t.Fatal(err)
	}
	block, _ := pem.Decode(certPEM)
	if block == nil {
		t.Fatalf("ca.crt: no PEM block")
	}
	cert, err := x509.ParseCertificate(block.Bytes)
	if err != nil {
		t.Fatalf("ca.crt: %v", err)
	}
	keyPEM, err := os.ReadFile(filepath.Join(dataDir, "pki", "ca.key"))
	if err != nil {
		t.Fatal(err)
	}
	key, err := parseKey(keyPEM)
	if err != nil {
		t.Fatalf("ca.key: %v", err)
	}
	return cert, certPEM, key
}

func parseKey(data []byte) (crypto.Signer, error) {
	block, _ := pem.Decode(data)
	if block == nil {
		return nil, errors.New("no PEM block")
	}
	if k, err := x509.ParseECPrivateKey(block.Bytes); err == nil {
		return k, nil
	}
	if k, err := x509.ParsePKCS1PrivateKey(block.Bytes); err == nil {
		return k, nil
	}
	k, err := x509.ParsePKCS8PrivateKey(block.Bytes)
	if err != nil {
		return nil, fmt.Errorf("parsing %s: %w", block.Type, err)
	}
	s, ok := k.(crypto.Signer)
	if !ok {
		return nil, fmt.Errorf("%T is not a signer", k)
	}
	return s, nil
}

// issueUserCert returns a client certificate and key (PEM) for user cn in
// groups orgs, signed by the cluster CA of dataDir and valid for an hour.
func issueUserCert(t *testing.T, dataDir, cn string, orgs []string) (certPEM, keyPEM []byte) {
	t.Helper()
	ca, _, caKey := clusterCA(t, dataDir)
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	serial, err := rand.Int(rand.Reader, new(big.Int).Lsh(big.NewInt(1), 120))
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{
		SerialNumber: serial,
		Subject:      pkix.Name{CommonName: cn, Organization: orgs},
		NotBefore:    time.Now().Add(-5 * time.Minute),
		NotAfter:     time.Now().Add(time.Hour),
		KeyUsage:     x509.KeyUsageDigitalSignature,
		ExtKeyUsage:  []x509.ExtKeyUsage{x509.ExtKeyUsageClientAuth},
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, ca, &key.PublicKey, caKey)
	if err != nil {
		t.Fatal(err)
	}
	kb, err := x509.MarshalECPrivateKey(key)
	if err != nil {
		t.Fatal(err)
	}
	return pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}),
		pem.EncodeToMemory(&pem.Block{Type: "EC PRIVATE KEY", Bytes: kb})
}

// certKubeconfig writes a kubeconfig for user cn (groups orgs) holding a
// fresh certificate and returns its path.
func certKubeconfig(t *testing.T, s *serverProc, cn string, orgs []string) string {
	t.Helper()
	certPEM, keyPEM := issueUserCert(t, s.dir, cn, orgs)
	_, caPEM, _ := clusterCA(t, s.dir)
	path := filepath.Join(t.TempDir(), "kubeconfig")
	if err := pki.WriteKubeconfig(path, s.serverURL(), caPEM, certPEM, keyPEM); err != nil {
		t.Fatal(err)
	}
	return path
}

// tokenKubeconfig writes a kubeconfig that authenticates with the bearer
// token and returns its path.
func tokenKubeconfig(t *testing.T, s *serverProc, token string) string {
	t.Helper()
	_, caPEM, _ := clusterCA(t, s.dir)
	cfg := clientcmdapi.NewConfig()
	cluster := clientcmdapi.NewCluster()
	cluster.Server = s.serverURL()
	cluster.CertificateAuthorityData = caPEM
	cfg.Clusters["skiff"] = cluster
	user := clientcmdapi.NewAuthInfo()
	user.Token = token
	cfg.AuthInfos["token"] = user
	kctx := clientcmdapi.NewContext()
	kctx.Cluster, kctx.AuthInfo = "skiff", "token"
	cfg.Contexts["token"] = kctx
	cfg.CurrentContext = "token"
	path := filepath.Join(t.TempDir(), "kubeconfig")
	if err := clientcmd.WriteToFile(*cfg, path); err != nil {
		t.Fatal(err)
	}
	return path
}

// apiStatus sends GET path with the bearer token (none when empty) and no
// client certificate, and returns the status code and body.
func apiStatus(t *testing.T, s *serverProc, token, path string) (int, string) {
	t.Helper()
	_, caPEM, _ := clusterCA(t, s.dir)
	roots := x509.NewCertPool()
	roots.AppendCertsFromPEM(caPEM)
	tr := &http.Transport{TLSClientConfig: &tls.Config{RootCAs: roots, MinVersion: tls.VersionTLS12}}
	defer tr.CloseIdleConnections()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, s.serverURL()+path, nil)
	if err != nil {
		t.Fatal(err)
	}
	if token != "" {
		req.Header.Set("Authorization", "Bearer "+token)
	}
	resp, err := (&http.Client{Transport: tr}).Do(req)
	if err != nil {
		t.Fatalf("GET %s: %v", path, err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(io.LimitReader(resp.Body, 1<<20))
	if err != nil {
		t.Fatalf("GET %s: reading body: %v", path, err)
	}
	return resp.StatusCode, string(b)
}

// whoami runs "kubectl auth whoami -o json" and returns the user name.
func whoami(t *testing.T, k kubectl) string {
	t.Helper()
	r := k.run(t, "", "auth", "whoami", "-o", "json")
	if r.code != 0 {
		t.Errorf("kubectl auth whoami: %v", r)
		return ""
	}
	var review struct {
		Status struct {
			UserInfo struct {
				Username string   `json:"username"`
				Groups   []string `json:"groups"`
			} `json:"userInfo"`
		} `json:"status"`
	}
	if err := json.Unmarshal([]byte(r.stdout), &review); err != nil {
		t.Errorf("kubectl auth whoami -o json: %v\n%s", err, r.stdout)
		return ""
	}
	return review.Status.UserInfo.Username
}

// mustRefuse runs kubectl and requires it to fail with a message containing
// every one of want (kubectl prints the server's message on stderr).
func mustRefuse(t *testing.T, k kubectl, want []string, args ...string) {
	t.Helper()
	r := k.run(t, "", args...)
	if r.code == 0 {
		t.Errorf("kubectl %s succeeded, want a refusal: %v", strings.Join(args, " "), r)
		return
	}
	for _, w := range want {
		if !strings.Contains(r.stderr, w) {
			t.Errorf("kubectl %s: stderr lacks %q: %v", strings.Join(args, " "), w, r)
		}
	}
}

// mustAllow runs kubectl and requires it to succeed; it returns stdout.
func mustAllow(t *testing.T, k kubectl, args ...string) string {
	t.Helper()
	r := k.run(t, "", args...)
	if r.code != 0 {
		t.Errorf("kubectl %s: %v", strings.Join(args, " "), r)
	}
	return r.stdout
}
