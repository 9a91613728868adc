package pki

import (
	"crypto/tls"
	"crypto/x509"
	"encoding/pem"
	"os"
	"path/filepath"
	"slices"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"k8s.io/client-go/tools/clientcmd"
)

func TestEnsureCreates(t *testing.T) {
	t.Parallel()
	dir := filepath.Join(t.TempDir(), "pki")
	b, err := Ensure(Options{Dir: dir, Hostname: "node-a", Hosts: []string{"10.1.2.3", "api.example.com", "0.0.0.0", ""}})
	if err != nil {
		t.Fatalf("Ensure: %v", err)
	}
	if diff := cmp.Diff([]string{caCertFile, servingCertFile, adminCertFile}, b.Issued); diff != "" {
		t.Errorf("Issued (-want +got):\n%s", diff)
	}

	modes := map[string]os.FileMode{}
	for _, f := range []string{caCertFile, caKeyFile, servingCertFile, servingKeyFile, adminCertFile, adminKeyFile} {
		st, err := os.Stat(filepath.Join(dir, f))
		if err != nil {
			t.Fatalf("stat %s: %v", f, err)
		}
		modes[f] = st.Mode().Perm()
	}
	wantModes := map[string]os.FileMode{
		caCertFile: 0o644, caKeyFile: 0o600,
		servingCertFile: 0o644, servingKeyFile: 0o600,
		adminCertFile: 0o644, adminKeyFile: 0o600,
	}
	if diff := cmp.Diff(wantModes, modes); diff != "" {
		t.Errorf("file modes (-want +got):\n%s", diff)
	}

	if !b.CA.IsCA || b.CA.NotAfter.Sub(b.CA.NotBefore) < 9*365*24*time.Hour {
		t.Errorf("CA: IsCA=%v validity=%v, want a CA valid ~10 years", b.CA.IsCA, b.CA.NotAfter.Sub(b.CA.NotBefore))
	}

	leaf := b.Serving.Leaf
	var ips []string
	for _, ip := range leaf.IPAddresses {
		ips = append(ips, ip.String())
	}
	slices.Sort(ips)
	if diff := cmp.Diff([]string{"10.1.2.3", "127.0.0.1", "::1"}, ips); diff != "" {
		t.Errorf("serving IP SANs (-want +got):\n%s", diff)
	}
	dns := slices.Clone(leaf.DNSNames)
	slices.Sort(dns)
	wantDNS := []string{"api.example.com", "kubernetes", "kubernetes.default", "kubernetes.default.svc",
		"kubernetes.default.svc.cluster.local", "localhost", "node-a"}
	if diff := cmp.Diff(wantDNS, dns); diff != "" {
		t.Errorf("serving DNS SANs (-want +got):\n%s", diff)
	}

	adm := parsePEM(t, b.AdminCertPEM)
	got := []string{adm.Subject.CommonName}
	got = append(got, adm.Subject.Organization...)
	if diff := cmp.Diff([]string{AdminUser, AdminGroup}, got); diff != "" {
		t.Errorf("admin subject (-want +got):\n%s", diff)
	}
}

func TestEnsureReusesAndRenews(t *testing.T) {
	t.Parallel()
	start := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	tests := []struct {
		name       string
		now        time.Time
		hosts      []string
		wantIssued []string
	}{
		{name: "restart reuses everything", now: start.Add(time.Hour), hosts: []string{"10.0.0.1"}},
		{name: "fewer hosts still covered", now: start.Add(time.Hour)},
		{name: "new listen host renews serving", now: start.Add(time.Hour), hosts: []string{"10.0.0.2"}, wantIssued: []string{servingCertFile}},
		{name: "near expiry renews leaves", now: start.Add(LeafValidity - RenewBefore + time.Hour), hosts: []string{"10.0.0.1"}, wantIssued: []string{servingCertFile, adminCertFile}},
		{name: "after expiry renews leaves", now: start.Add(2 * LeafValidity), hosts: []string{"10.0.0.1"}, wantIssued: []string{servingCertFile, adminCertFile}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			dir := t.TempDir()
			first, err := Ensure(Options{Dir: dir, Hostname: "h", Hosts: []string{"10.0.0.1"}, Now: func() time.Time { return start }})
			if err != nil {
				t.Fatalf("first Ensure: %v", err)
			}
			second, err := Ensure(Options{Dir: dir, Hostname: "h", Hosts: tc.hosts, Now: func() time.Time { return tc.now }})
			if err != nil {
				t.Fatalf("second Ensure: %v", err)
			}
			if diff := cmp.Diff(tc.wantIssued, second.Issued); diff != "" {
				t.Errorf("Issued (-want +got):\n%s", diff)
			}
			if !first.CA.Equal(second.CA) {
				t.Errorf("CA was replaced")
			}
			servingSame := first.Serving.Leaf.Equal(second.Serving.Leaf)
			if want := !slices.Contains(tc.wantIssued, servingCertFile); servingSame != want {
				t.Errorf("serving certificate kept = %v, want %v", servingSame, want)
			}
			adminSame := string(first.AdminCertPEM) == string(second.AdminCertPEM)
			if want := !slices.Contains(tc.wantIssued, adminCertFile); adminSame != want {
				t.Errorf("admin certificate kept = %v, want %v", adminSame, want)
			}
			if !leafUsable(second.Serving.Leaf, second.CA, tc.now) {
				t.Errorf("serving certificate not usable at %v (NotAfter %v)", tc.now, second.Serving.Leaf.NotAfter)
			}
		})
	}
}

func TestEnsureRefusesHalfCA(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	if _, err := Ensure(Options{Dir: dir}); err != nil {
		t.Fatalf("Ensure: %v", err)
	}
	if err := os.Remove(filepath.Join(dir, caKeyFile)); err != nil {
		t.Fatal(err)
	}
	if _, err := Ensure(Options{Dir: dir}); err == nil {
		t.Fatalf("Ensure with ca.crt but no ca.key succeeded; want an error")
	}
}

// TestHandshake runs a real TLS handshake: the client verifies the serving
// chain against the CA by name, the server verifies the admin certificate.
func TestHandshake(t *testing.T) {
	t.Parallel()
	b, err := Ensure(Options{Dir: t.TempDir(), Hostname: "h"})
	if err != nil {
		t.Fatalf("Ensure: %v", err)
	}
	ln, err := tls.Listen("tcp", "127.0.0.1:0", b.ServerTLSConfig())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { ln.Close() })
	peer := make(chan []string, 2)
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return // listener closed
			}
			tc := c.(*tls.Conn)
			_ = tc.SetDeadline(time.Now().Add(10 * time.Second))
			if err := tc.Handshake(); err != nil {
				peer <- []string{"server handshake: " + err.Error()}
				c.Close()
				continue
			}
			var got []string
			for _, ch := range tc.ConnectionState().VerifiedChains {
				got = append(got, ch[0].Subject.CommonName)
			}
			peer <- got
			c.Close()
		}
	}()

	clientCfg, err := b.AdminTLSConfig()
	if err != nil {
		t.Fatal(err)
	}
	clientCfg.ServerName = "kubernetes.default.svc"
	conn, err := tls.Dial("tcp", ln.Addr().String(), clientCfg)
	if err != nil {
		t.Fatalf("dial: %v", err)
	}
	if diff := cmp.Diff([]string{AdminUser}, <-peer); diff != "" {
		t.Errorf("server saw client chains (-want +got):\n%s", diff)
	}
	conn.Close()

	// A client that does not trust the CA must fail.
	c, err := tls.Dial("tcp", ln.Addr().String(), &tls.Config{ServerName: "localhost", RootCAs: x509.NewCertPool()})
	if err == nil {
		c.Close()
		t.Fatalf("handshake with an untrusting client succeeded")
	}
}

func TestWriteKubeconfig(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	b, err := Ensure(Options{Dir: filepath.Join(dir, "pki")})
	if err != nil {
		t.Fatalf("Ensure: %v", err)
	}
	path := filepath.Join(dir, "kubeconfig")
	for range 2 { // overwriting works too
		if err := WriteKubeconfig(path, "https://127.0.0.1:6443", b.CAPEM, b.AdminCertPEM, b.AdminKeyPEM); err != nil {
			t.Fatalf("WriteKubeconfig: %v", err)
		}
	}
	st, err := os.Stat(path)
	if err != nil {
		t.Fatal(err)
	}
	if st.Mode().Perm() != 0o600 {
		t.Errorf("kubeconfig mode = %v, want 0600", st.Mode().Perm())
	}
	entries, _ := os.ReadDir(dir)
	var names []string
	for _, e := range entries {
		names = append(names, e.Name())
	}
	if diff := cmp.Diff([]string{"kubeconfig", "pki"}, names); diff != "" {
		t.Errorf("leftover files (-want +got):\n%s", diff)
	}

	rc, err := clientcmd.BuildConfigFromFlags("", path)
	if err != nil {
		t.Fatalf("loading kubeconfig: %v", err)
	}
	got := map[string]string{
		"host": rc.Host,
		"ca":   string(rc.CAData),
		"cert": string(rc.CertData),
		"key":  string(rc.KeyData),
	}
	want := map[string]string{
		"host": "https://127.0.0.1:6443",
		"ca":   string(b.CAPEM),
		"cert": string(b.AdminCertPEM),
		"key":  string(b.AdminKeyPEM),
	}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("kubeconfig (-want +got):\n%s", diff)
	}
	raw, err := clientcmd.LoadFromFile(path)
	if err != nil {
		t.Fatal(err)
	}
	if raw.CurrentContext != "skiff" || raw.Contexts["skiff"] == nil || raw.Contexts["skiff"].Cluster != "skiff" || raw.Contexts["skiff"].AuthInfo != "skiff" {
		t.Errorf("kubeconfig context = %q %+v, want skiff/skiff/skiff", raw.CurrentContext, raw.Contexts["skiff"])
	}
}

func TestServingNames(t *testing.T) {
	t.Parallel()
	got := servingNames("Node-A", []string{"::ffff:10.0.0.1", "LOCALHOST", "::"})
	want := append(defaultServingNames(), "node-a", "10.0.0.1")
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("servingNames (-want +got):\n%s", diff)
	}
}

func parsePEM(t *testing.T, p []byte) *x509.Certificate {
	t.Helper()
	blk, _ := pem.Decode(p)
	if blk == nil {
		t.Fatalf("no PEM block in %q", p)
	}
	c, err := x509.ParseCertificate(blk.Bytes)
	if err != nil {
		t.Fatalf("parsing certificate: %v", err)
	}
	return c
}

func TestClientCert(t *testing.T) {
	dir := t.TempDir()
	b, err := Ensure(Options{Dir: dir})
	if err != nil {
		t.Fatal(err)
	}
	certPEM, keyPEM, err := b.ClientCert("node-a", "system:node:a", []string{NodesGroup})
	if err != nil {
		t.Fatal(err)
	}
	pair, err := tls.X509KeyPair(certPEM, keyPEM)
	if err != nil {
		t.Fatal(err)
	}
	leaf, err := x509.ParseCertificate(pair.Certificate[0])
	if err != nil {
		t.Fatal(err)
	}
	if leaf.Subject.CommonName != "system:node:a" || len(leaf.Subject.Organization) != 1 || leaf.Subject.Organization[0] != NodesGroup {
		t.Errorf("subject = %v", leaf.Subject)
	}
	if _, err := leaf.Verify(x509.VerifyOptions{Roots: b.ClientCAs(), KeyUsages: []x509.ExtKeyUsage{x509.ExtKeyUsageClientAuth}}); err != nil {
		t.Errorf("not verified by the CA: %v", err)
	}

	// Reused while valid for the same identity; re-issued for another.
	again, _, err := b.ClientCert("node-a", "system:node:a", []string{NodesGroup})
	if err != nil {
		t.Fatal(err)
	}
	if string(again) != string(certPEM) {
		t.Error("same identity: certificate re-issued")
	}
	other, _, err := b.ClientCert("node-a", "system:node:b", []string{NodesGroup})
	if err != nil {
		t.Fatal(err)
	}
	if string(other) == string(certPEM) {
		t.Error("other identity: certificate reused")
	}
	for _, bad := range []string{"", "../x", "a/b", ".hidden"} {
		if _, _, err := b.ClientCert(bad, "x", nil); err == nil {
			t.Errorf("name %q accepted", bad)
		}
	}
}

func TestFrontProxy(t *testing.T) {
	dir := t.TempDir()
	b, err := Ensure(Options{Dir: dir, Hostname: "h"})
	if err != nil {
		t.Fatal(err)
	}
	fp, err := b.FrontProxy()
	if err != nil {
		t.Fatal(err)
	}
	pool := x509.NewCertPool()
	if !pool.AppendCertsFromPEM(fp.CAPEM) {
		t.Fatal("front-proxy CA does not parse")
	}
	leaf := fp.Client.Leaf
	if leaf.Subject.CommonName != FrontProxyClientUser {
		t.Errorf("client CN %q", leaf.Subject.CommonName)
	}
	if _, err := leaf.Verify(x509.VerifyOptions{Roots: pool, KeyUsages: []x509.ExtKeyUsage{x509.ExtKeyUsageClientAuth}}); err != nil {
		t.Errorf("client does not verify against the front-proxy CA: %v", err)
	}
	if _, err := leaf.Verify(x509.VerifyOptions{Roots: b.ClientCAs(), KeyUsages: []x509.ExtKeyUsage{x509.ExtKeyUsageClientAuth}}); err == nil {
		t.Error("front-proxy client verifies against the cluster CA: it must have a CA of its own")
	}
	again, err := b.FrontProxy()
	if err != nil {
		t.Fatal(err)
	}
	if string(again.CAPEM) != string(fp.CAPEM) || !again.Client.Leaf.Equal(leaf) {
		t.Error("a second call issued new material instead of reusing it")
	}
}

// TestClientCertificatesReused: ClientCert and FrontProxy keep a valid
// certificate of the same identity, and issue a new one for another
// identity; the front-proxy client chains to its own CA, not the cluster's.
func TestClientCertificatesReused(t *testing.T) {
	t.Parallel()
	dir := filepath.Join(t.TempDir(), "pki")
	b, err := Ensure(Options{Dir: dir, Hostname: "h"})
	if err != nil {
		t.Fatal(err)
	}
	c1, _, err := b.ClientCert("agent", "system:node:h", []string{"system:nodes"})
	if err != nil {
		t.Fatal(err)
	}
	c2, _, err := b.ClientCert("agent", "system:node:h", []string{"system:nodes"})
	if err != nil {
		t.Fatal(err)
	}
	if string(c1) != string(c2) {
		t.Error("ClientCert issued a new certificate for the same identity")
	}
	c3, _, err := b.ClientCert("agent", "system:node:other", []string{"system:nodes"})
	if err != nil {
		t.Fatal(err)
	}
	if string(c3) == string(c1) {
		t.Error("ClientCert kept the certificate of another identity")
	}

	f1, err := b.FrontProxy()
	if err != nil {
		t.Fatal(err)
	}
	f2, err := b.FrontProxy()
	if err != nil {
		t.Fatal(err)
	}
	if !f1.Client.Leaf.Equal(f2.Client.Leaf) || string(f1.CAPEM) != string(f2.CAPEM) {
		t.Error("FrontProxy issued anew")
	}
	if cn := f1.Client.Leaf.Subject.CommonName; cn != FrontProxyClientUser {
		t.Errorf("front-proxy client CN %q, want %q", cn, FrontProxyClientUser)
	}
	if f1.Client.Leaf.CheckSignatureFrom(b.CA) == nil {
		t.Error("front-proxy client signed by the cluster CA")
	}
}
