package pki

import (
	"crypto"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"errors"
	"fmt"
	"io/fs"
	"math/big"
	"net"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"time"
)

const (
	// CAValidity is the lifetime of a new cluster CA.
	CAValidity = 10 * 365 * 24 * time.Hour
	// LeafValidity is the lifetime of a new serving or client certificate.
	LeafValidity = 365 * 24 * time.Hour
	// RenewBefore is how long before expiry a leaf certificate is re-issued.
	RenewBefore = 30 * 24 * time.Hour

	// AdminUser and AdminGroup are the identity of the admin certificate.
	AdminUser  = "skiff-admin"
	AdminGroup = "system:masters"

	// KubeletClientUser is the API server's identity towards node agents
	// (in group AdminGroup), as upstream's apiserver-kubelet-client.
	KubeletClientUser = "kube-apiserver-kubelet-client"
	// NodesGroup is the group of node agents' identities
	// ("system:node:<name>").
	NodesGroup = "system:nodes"
)

// File names inside Options.Dir.
const (
	caCertFile      = "ca.crt"
	caKeyFile       = "ca.key"
	servingCertFile = "serving.crt"
	servingKeyFile  = "serving.key"
	adminCertFile   = "admin.crt"
	adminKeyFile    = "admin.key"

	frontProxyCACertFile = "front-proxy-ca.crt"
	frontProxyCAKeyFile  = "front-proxy-ca.key"
	frontProxyCertFile   = "front-proxy-client.crt"
	frontProxyKeyFile    = "front-proxy-client.key"
)

// defaultServingNames are always in the serving certificate, besides
// Options.Hosts and the machine's host name.
func defaultServingNames() []string {
	return []string{
		"127.0.0.1", "::1", "localhost",
		"kubernetes", "kubernetes.default", "kubernetes.default.svc",
		"kubernetes.default.svc.cluster.local",
	}
}

// Options configure Ensure.
type Options struct {
	// Dir holds the files; it is created (0700) when missing.
	Dir string
	// Hosts are extra names or IP addresses the serving certificate must
	// cover (e.g. the --listen host). Empty strings and unspecified
	// addresses (0.0.0.0, ::) are ignored.
	Hosts []string
	// Hostname is the machine's host name; empty means os.Hostname().
	Hostname string
	// Now is the clock; nil means time.Now.
	Now func() time.Time
}

// Bundle is the parsed certificate material of one data dir. It is
// read-only after Ensure returns and safe for concurrent use.
type Bundle struct {
	CA    *x509.Certificate
	CAPEM []byte

	// Serving is the API server's certificate and key.
	Serving    tls.Certificate
	ServingPEM []byte

	// AdminCertPEM and AdminKeyPEM are the admin client identity.
	AdminCertPEM []byte
	AdminKeyPEM  []byte

	// Issued lists the files (re)written by this Ensure call, for logging.
	Issued []string

	// dir, caKey and now let ClientCert issue more client certificates.
	dir   string
	caKey crypto.Signer
	now   func() time.Time
}

// ClientCAs returns a pool holding the cluster CA.
func (b *Bundle) ClientCAs() *x509.CertPool {
	p := x509.NewCertPool()
	p.AddCert(b.CA)
	return p
}

// ServerTLSConfig returns a TLS configuration serving the serving
// certificate and verifying client certificates, when given, against the
// cluster CA. Whether a request without one is allowed is the API server's
// decision.
func (b *Bundle) ServerTLSConfig() *tls.Config {
	return &tls.Config{
		Certificates: []tls.Certificate{b.Serving},
		ClientCAs:    b.ClientCAs(),
		ClientAuth:   tls.VerifyClientCertIfGiven,
		MinVersion:   tls.VersionTLS12,
		NextProtos:   []string{"h2", "http/1.1"},
	}
}

// AdminTLSConfig returns a client TLS configuration that presents the admin
// certificate and trusts only the cluster CA.
func (b *Bundle) AdminTLSConfig() (*tls.Config, error) {
	cert, err := tls.X509KeyPair(b.AdminCertPEM, b.AdminKeyPEM)
	if err != nil {
		return nil, fmt.Errorf("pki: loading admin key pair: %w", err)
	}
	roots := x509.NewCertPool()
	roots.AddCert(b.CA)
	return &tls.Config{Certificates: []tls.Certificate{cert}, RootCAs: roots, MinVersion: tls.VersionTLS12}, nil
}

// Ensure loads the certificates in opts.Dir, creating or renewing what is
// missing or due (see the package documentation). It is safe to call on
// every start; it must not run concurrently with itself on the same Dir.
func Ensure(opts Options) (*Bundle, error) {
	if opts.Dir == "" {
		return nil, errors.New("pki: no directory given")
	}
	now := time.Now
	if opts.Now != nil {
		now = opts.Now
	}
	if err := os.MkdirAll(opts.Dir, 0o700); err != nil {
		return nil, fmt.Errorf("pki: creating %s: %w", opts.Dir, err)
	}
	hostname := opts.Hostname
	if hostname == "" {
		hostname, _ = os.Hostname() // best effort: the other names still work
	}
	names := servingNames(hostname, opts.Hosts)

	b := &Bundle{}
	caCert, caKey, err := loadOrCreateCA(opts.Dir, now(), b)
	if err != nil {
		return nil, err
	}
	b.CA = caCert
	b.CAPEM = encodeCert(caCert)
	b.dir, b.caKey, b.now = opts.Dir, caKey, now

	// Serving certificate.
	servCert, servKey, err := loadPair(opts.Dir, servingCertFile, servingKeyFile)
	if err != nil || !leafUsable(servCert, caCert, now()) || !covers(servCert, names) {
		servCert, servKey, err = issue(opts.Dir, servingCertFile, servingKeyFile, caCert, caKey, now(), leafTemplate{
			cn: "skiff-apiserver", names: names, usage: x509.ExtKeyUsageServerAuth,
		})
		if err != nil {
			return nil, err
		}
		b.Issued = append(b.Issued, servingCertFile)
	}
	b.ServingPEM = encodeCert(servCert)
	b.Serving = tls.Certificate{
		Certificate: [][]byte{servCert.Raw, caCert.Raw},
		PrivateKey:  servKey,
		Leaf:        servCert,
	}

	// Admin client certificate.
	admCert, admKey, issued, err := clientLeaf(opts.Dir, adminCertFile, adminKeyFile, caCert, caKey, now(), AdminUser, []string{AdminGroup})
	if err != nil {
		return nil, err
	}
	if issued {
		b.Issued = append(b.Issued, adminCertFile)
	}
	b.AdminCertPEM = encodeCert(admCert)
	b.AdminKeyPEM, err = encodeKey(admKey)
	if err != nil {
		return nil, err
	}
	return b, nil
}

// ClientCert returns a client certificate and key (PEM) for user cn in
// groups orgs, kept as name.crt and name.key in the directory: reused while
// it is valid for the same identity, issued by the cluster CA otherwise.
// The server uses it for its own identities towards node agents
// (KubeletClientUser) and for the node agent it runs itself.
func (b *Bundle) ClientCert(name, cn string, orgs []string) (certPEM, keyPEM []byte, err error) {
	if b.caKey == nil {
		return nil, nil, errors.New("pki: bundle cannot issue certificates (not from Ensure)")
	}
	if name == "" || strings.ContainsAny(name, "/\\") || strings.HasPrefix(name, ".") {
		return nil, nil, fmt.Errorf("pki: invalid certificate name %q", name)
	}
	cert, key, _, err := clientLeaf(b.dir, name+".crt", name+".key", b.CA, b.caKey, b.now(), cn, orgs)
	if err != nil {
		return nil, nil, err
	}
	keyPEM, err = encodeKey(key)
	if err != nil {
		return nil, nil, err
	}
	return encodeCert(cert), keyPEM, nil
}

// FrontProxyClientUser is the common name of the front-proxy client
// certificate: the name extension API servers allow
// (requestheader-allowed-names).
const FrontProxyClientUser = "front-proxy-client"

// FrontProxy is the identity the API server proxies requests to extension
// API servers with (upstream's --proxy-client-cert-file), from a CA of its
// own: extension servers trust its CA for the X-Remote-* headers only, so
// no certificate the cluster CA signs (a CSR's, say) can assert them.
type FrontProxy struct {
	// CAPEM is the front-proxy CA (requestheader-client-ca-file).
	CAPEM []byte
	// Client is the client certificate (CN FrontProxyClientUser).
	Client tls.Certificate
}

// FrontProxy loads or creates front-proxy-ca.crt/.key and the client
// certificate front-proxy-client.crt/.key (renewed like the others).
func (b *Bundle) FrontProxy() (*FrontProxy, error) {
	if b.caKey == nil {
		return nil, errors.New("pki: bundle cannot issue certificates (not from Ensure)")
	}
	ca, caKey, err := loadOrCreateCAFiles(b.dir, frontProxyCACertFile, frontProxyCAKeyFile, "skiff-front-proxy-ca", b.now(), b)
	if err != nil {
		return nil, err
	}
	cert, key, _, err := clientLeaf(b.dir, frontProxyCertFile, frontProxyKeyFile, ca, caKey, b.now(), FrontProxyClientUser, nil)
	if err != nil {
		return nil, err
	}
	return &FrontProxy{
		CAPEM:  encodeCert(ca),
		Client: tls.Certificate{Certificate: [][]byte{cert.Raw}, PrivateKey: key, Leaf: cert},
	}, nil
}

// clientLeaf loads the client certificate certFile/keyFile from dir, or
// issues it from ca when it is missing, expiring, signed by another CA or
// for another identity (common name cn, organizations orgs). issued
// reports a new one.
func clientLeaf(dir, certFile, keyFile string, ca *x509.Certificate, caKey crypto.Signer, now time.Time, cn string, orgs []string) (cert *x509.Certificate, key crypto.Signer, issued bool, err error) {
	cert, key, err = loadPair(dir, certFile, keyFile)
	if err == nil && leafUsable(cert, ca, now) && cert.Subject.CommonName == cn && slices.Equal(cert.Subject.Organization, orgs) {
		return cert, key, false, nil
	}
	cert, key, err = issue(dir, certFile, keyFile, ca, caKey, now, leafTemplate{cn: cn, org: orgs, usage: x509.ExtKeyUsageClientAuth})
	if err != nil {
		return nil, nil, false, err
	}
	return cert, key, true, nil
}

// servingNames returns the de-duplicated SANs for the serving certificate.
func servingNames(hostname string, hosts []string) []string {
	var out []string
	add := func(n string) {
		n = strings.TrimSpace(n)
		if n == "" {
			return
		}
		if ip := net.ParseIP(n); ip != nil {
			if ip.IsUnspecified() {
				return
			}
			n = ip.String()
		} else {
			n = strings.ToLower(n)
		}
		if !slices.Contains(out, n) {
			out = append(out, n)
		}
	}
	for _, n := range defaultServingNames() {
		add(n)
	}
	add(hostname)
	for _, h := range hosts {
		add(h)
	}
	return out
}

// covers reports whether cert's SANs include every name.
func covers(cert *x509.Certificate, names []string) bool {
	for _, n := range names {
		if ip := net.ParseIP(n); ip != nil {
			if !slices.ContainsFunc(cert.IPAddresses, ip.Equal) {
				return false
			}
			continue
		}
		if !slices.Contains(cert.DNSNames, n) {
			return false
		}
	}
	return true
}

// leafUsable reports whether cert chains to ca and stays valid for more than
// RenewBefore.
func leafUsable(cert, ca *x509.Certificate, now time.Time) bool {
	if cert == nil {
		return false
	}
	if cert.CheckSignatureFrom(ca) != nil {
		return false
	}
	return now.After(cert.NotBefore.Add(-time.Minute)) && now.Add(RenewBefore).Before(cert.NotAfter)
}

func loadOrCreateCA(dir string, now time.Time, b *Bundle) (*x509.Certificate, crypto.Signer, error) {
	return loadOrCreateCAFiles(dir, caCertFile, caKeyFile, "skiff-ca", now, b)
}

// loadOrCreateCAFiles loads the CA in certFile and keyFile, or creates one
// named cn when neither exists.
func loadOrCreateCAFiles(dir, caCertFile, caKeyFile, cn string, now time.Time, b *Bundle) (*x509.Certificate, crypto.Signer, error) {
	cert, key, err := loadPair(dir, caCertFile, caKeyFile)
	switch {
	case err == nil:
		return cert, key, nil
	case !errors.Is(err, fs.ErrNotExist):
		return nil, nil, err
	}
	// Refuse to replace half a CA: a lone ca.crt or ca.key means something
	// went wrong that a person should look at.
	for _, f := range []string{caCertFile, caKeyFile} {
		if _, serr := os.Stat(filepath.Join(dir, f)); serr == nil {
			return nil, nil, fmt.Errorf("pki: %s exists but its pair is missing; remove %s to create a new CA (every issued certificate becomes invalid)", filepath.Join(dir, f), dir)
		}
	}
	key, err = ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return nil, nil, fmt.Errorf("pki: generating CA key: %w", err)
	}
	serial, err := newSerial()
	if err != nil {
		return nil, nil, err
	}
	tmpl := &x509.Certificate{
		SerialNumber:          serial,
		Subject:               pkix.Name{CommonName: cn},
		NotBefore:             now.Add(-time.Hour),
		NotAfter:              now.Add(CAValidity),
		KeyUsage:              x509.KeyUsageCertSign | x509.KeyUsageDigitalSignature | x509.KeyUsageCRLSign,
		BasicConstraintsValid: true,
		IsCA:                  true,
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, key.Public(), key)
	if err != nil {
		return nil, nil, fmt.Errorf("pki: signing CA certificate: %w", err)
	}
	cert, err = x509.ParseCertificate(der)
	if err != nil {
		return nil, nil, fmt.Errorf("pki: parsing new CA certificate: %w", err)
	}
	if err := writePair(dir, caCertFile, caKeyFile, cert, key); err != nil {
		return nil, nil, err
	}
	b.Issued = append(b.Issued, caCertFile)
	return cert, key, nil
}

type leafTemplate struct {
	cn    string
	org   []string
	names []string
	usage x509.ExtKeyUsage
}

func issue(dir, certFile, keyFile string, ca *x509.Certificate, caKey crypto.Signer, now time.Time, t leafTemplate) (*x509.Certificate, crypto.Signer, error) {
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return nil, nil, fmt.Errorf("pki: generating key for %s: %w", certFile, err)
	}
	serial, err := newSerial()
	if err != nil {
		return nil, nil, err
	}
	tmpl := &x509.Certificate{
		SerialNumber: serial,
		Subject:      pkix.Name{CommonName: t.cn, Organization: t.org},
		NotBefore:    now.Add(-time.Hour),
		NotAfter:     now.Add(LeafValidity),
		KeyUsage:     x509.KeyUsageDigitalSignature,
		ExtKeyUsage:  []x509.ExtKeyUsage{t.usage},
	}
	if tmpl.NotAfter.After(ca.NotAfter) {
		tmpl.NotAfter = ca.NotAfter
	}
	for _, n := range t.names {
		if ip := net.ParseIP(n); ip != nil {
			tmpl.IPAddresses = append(tmpl.IPAddresses, ip)
		} else {
			tmpl.DNSNames = append(tmpl.DNSNames, n)
		}
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, ca, key.Public(), caKey)
	if err != nil {
		return nil, nil, fmt.Errorf("pki: signing %s: %w", certFile, err)
	}
	cert, err := x509.ParseCertificate(der)
	if err != nil {
		return nil, nil, fmt.Errorf("pki: parsing new %s: %w", certFile, err)
	}
	if err := writePair(dir, certFile, keyFile, cert, key); err != nil {
		return nil, nil, err
	}
	return cert, key, nil
}

func newSerial() (*big.Int, error) {
	s, err := rand.Int(rand.Reader, new(big.Int).Lsh(big.NewInt(1), 127))
	if err != nil {
		return nil, fmt.Errorf("pki: generating serial number: %w", err)
	}
	return s.Add(s, big.NewInt(1)), nil
}

// loadPair reads a certificate and its key. A missing file yields an error
// matching fs.ErrNotExist.
func loadPair(dir, certFile, keyFile string) (*x509.Certificate, crypto.Signer, error) {
	certPEM, err := os.ReadFile(filepath.Join(dir, certFile))
	if err != nil {
		return nil, nil, fmt.Errorf("pki: reading %s: %w", certFile, err)
	}
	keyPEM, err := os.ReadFile(filepath.Join(dir, keyFile))
	if err != nil {
		return nil, nil, fmt.Errorf("pki: reading %s: %w", keyFile, err)
	}
	blk, _ := pem.Decode(certPEM)
	if blk == nil || blk.Type != "CERTIFICATE" {
		return nil, nil, fmt.Errorf("pki: %s holds no PEM certificate", certFile)
	}
	cert, err := x509.ParseCertificate(blk.Bytes)
	if err != nil {
		return nil, nil, fmt.Errorf("pki: parsing %s: %w", certFile, err)
	}
	pair, err := tls.X509KeyPair(certPEM, keyPEM)
	if err != nil {
		return nil, nil, fmt.Errorf("pki: %s does not match %s: %w", keyFile, certFile, err)
	}
	signer, ok := pair.PrivateKey.(crypto.Signer)
	if !ok {
		return nil, nil, fmt.Errorf("pki: %s is not a signing key", keyFile)
	}
	return cert, signer, nil
}

func writePair(dir, certFile, keyFile string, cert *x509.Certificate, key crypto.Signer) error {
	keyPEM, err := encodeKey(key)
	if err != nil {
		return err
	}
	// Key first: a crash in between leaves a key without a matching
	// certificate, which loadPair rejects and the next start re-issues.
	if err := WriteFileAtomic(filepath.Join(dir, keyFile), keyPEM, 0o600); err != nil {
		return err
	}
	return WriteFileAtomic(filepath.Join(dir, certFile), encodeCert(cert), 0o644)
}

func encodeCert(c *x509.Certificate) []byte {
	return pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: c.Raw})
}

func encodeKey(k crypto.Signer) ([]byte, error) {
	ec, ok := k.(*ecdsa.PrivateKey)
	if !ok {
		der, err := x509.MarshalPKCS8PrivateKey(k)
		if err != nil {
			return nil, fmt.Errorf("pki: encoding key: %w", err)
		}
		return pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: der}), nil
	}
	der, err := x509.MarshalECPrivateKey(ec)
	if err != nil {
		return nil, fmt.Errorf("pki: encoding key: %w", err)
	}
	return pem.EncodeToMemory(&pem.Block{Type: "EC PRIVATE KEY", Bytes: der}), nil
}

// WriteFileAtomic writes data to path through a temporary file in the same
// directory, synced and renamed over path, so readers see either the old or
// the new content, never a part.
func WriteFileAtomic(path string, data []byte, perm fs.FileMode) error {
	dir := filepath.Dir(path)
	f, err := os.CreateTemp(dir, "."+filepath.Base(path)+".tmp-*")
	if err != nil {
		return fmt.Errorf("writing %s: %w", path, err)
	}
	tmp := f.Name()
	ok := false
	defer func() {
		if !ok {
			_ = f.Close()
			_ = os.Remove(tmp)
		}
	}()
	if err := f.Chmod(perm); err != nil {
		return fmt.Errorf("writing %s: %w", path, err)
	}
	if _, err := f.Write(data); err != nil {
		return fmt.Errorf("writing %s: %w", path, err)
	}
	if err := f.Sync(); err != nil {
		return fmt.Errorf("writing %s: %w", path, err)
	}
	if err := f.Close(); err != nil {
		return fmt.Errorf("writing %s: %w", path, err)
	}
	if err := os.Rename(tmp, path); err != nil {
		return fmt.Errorf("writing %s: %w", path, err)
	}
	ok = true
	return nil
}
