package bootstrap

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"time"

	"k8s.io/client-go/rest"
	"k8s.io/client-go/tools/clientcmd"

	"github.com/skiff-dev/skiff/internal/pki"
)

// File names inside Config.Dir.
const (
	KubeconfigFile = "kubeconfig"
	CertFile       = "node.crt"
	KeyFile        = "node.key"
)

// Node identity, as internal/auth names it.
const (
	nodeUserPrefix = "system:node:"
	nodesGroup     = "system:nodes"
)

// renewAt is the fraction of a certificate's life after which it is
// renewed (Kubeconfig renews when less than 1-renewAt is left).
const renewAt = 0.8

// Config configures Kubeconfig and Rotate.
type Config struct {
	Server   string // https://host:port
	Token    string // bootstrap token; only needed while there is no valid certificate
	CAHash   string // "sha256:<hex>"; needed with Token
	NodeName string
	Dir      string // where kubeconfig, node.key, node.crt live (DIR/agent)
	Logger   *slog.Logger
	// RequestedDuration, when > 0, is asked for as the CSR's
	// spec.expirationSeconds; 0 leaves the lifetime to the signer.
	RequestedDuration time.Duration
	// Now is the clock; nil means time.Now.
	Now func() time.Time

	// bootstrapAuth, when set, replaces the bearer token on the bootstrap
	// client (tests authenticate with the admin certificate while bearer
	// tokens are not accepted by the API server).
	bootstrapAuth func(*rest.Config)
}

func (c Config) now() time.Time {
	if c.Now == nil {
		return time.Now()
	}
	return c.Now()
}

func (c Config) logger() *slog.Logger {
	if c.Logger == nil {
		return slog.New(slog.DiscardHandler)
	}
	return c.Logger
}

func (c Config) path(name string) string { return filepath.Join(c.Dir, name) }

// Kubeconfig returns the path of a kubeconfig with a valid node
// certificate: the existing one when its certificate is valid for more
// than 20% of its life; otherwise it obtains a new certificate (renewing
// with the current certificate while that is valid, else bootstrapping
// with the token: Discover → CSR → wait for approval and signing) and
// writes it atomically (0600). It blocks until the CSR is signed, denied or
// failed (ErrDenied, ErrFailed), or ctx ends. Not safe to call
// concurrently for the same Dir.
func Kubeconfig(ctx context.Context, cfg Config) (string, error) {
	if cfg.Server == "" || cfg.NodeName == "" || cfg.Dir == "" {
		return "", errors.New("bootstrap: Server, NodeName and Dir are required")
	}
	log := cfg.logger()
	path := cfg.path(KubeconfigFile)
	now := cfg.now()
	cur, loadErr := loadCurrent(path, cfg.NodeName, cfg.CAHash)
	if loadErr == nil && fresh(cur.cert, now) {
		return path, nil
	}

	var renewErr error
	if loadErr == nil && now.Before(cur.cert.NotAfter) {
		log.Info("renewing node certificate", "node", cfg.NodeName, "notAfter", cur.cert.NotAfter)
		rc := &rest.Config{Host: cfg.Server}
		rc.CAData, rc.CertData, rc.KeyData = cur.caPEM, cur.certPEM, cur.keyPEM
		if renewErr = obtain(ctx, cfg, rc, cur.caPEM); renewErr == nil {
			return path, nil
		}
		if ctx.Err() != nil || cfg.Token == "" {
			return "", renewErr
		}
		log.Info("renewal with the current certificate failed; bootstrapping with the token", "err", renewErr)
	}
	if cfg.Token == "" || cfg.CAHash == "" {
		err := errors.New("bootstrap: no valid node certificate, and no token and CA hash to bootstrap with")
		if loadErr != nil && !errors.Is(loadErr, os.ErrNotExist) {
			err = fmt.Errorf("%w (current kubeconfig: %w)", err, loadErr)
		}
		return "", errors.Join(err, renewErr)
	}
	log.Info("bootstrapping node certificate", "node", cfg.NodeName, "server", cfg.Server)
	caPEM, err := Discover(ctx, cfg.Server, cfg.CAHash)
	if err != nil {
		return "", err
	}
	rc := &rest.Config{Host: cfg.Server, BearerToken: cfg.Token}
	rc.CAData = caPEM
	if cfg.bootstrapAuth != nil {
		cfg.bootstrapAuth(rc)
	}
	if err := obtain(ctx, cfg, rc, caPEM); err != nil {
		return "", err
	}
	return path, nil
}

// obtain requests a node certificate through rc and writes the key, the
// certificate and (last) the kubeconfig.
func obtain(ctx context.Context, cfg Config, rc *rest.Config, caPEM []byte) error {
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return fmt.Errorf("bootstrap: generating key: %w", err)
	}
	certPEM, err := requestCertificate(ctx, rc, key, cfg.NodeName, cfg.RequestedDuration, cfg.logger())
	if err != nil {
		return err
	}
	keyDER, err := x509.MarshalECPrivateKey(key)
	if err != nil {
		return fmt.Errorf("bootstrap: encoding key: %w", err)
	}
	keyPEM := pem.EncodeToMemory(&pem.Block{Type: "EC PRIVATE KEY", Bytes: keyDER})
	if _, err := tls.X509KeyPair(certPEM, keyPEM); err != nil {
		return fmt.Errorf("bootstrap: issued certificate does not match the key: %w", err)
	}
	if err := os.MkdirAll(cfg.Dir, 0o700); err != nil {
		return fmt.Errorf("bootstrap: creating %s: %w", cfg.Dir, err)
	}
	// Key, then certificate, then the kubeconfig readers use: a crash in
	// between leaves the old kubeconfig, still self-consistent.
	if err := pki.WriteFileAtomic(cfg.path(KeyFile), keyPEM, 0o600); err != nil {
		return fmt.Errorf("bootstrap: %w", err)
	}
	if err := pki.WriteFileAtomic(cfg.path(CertFile), certPEM, 0o644); err != nil {
		return fmt.Errorf("bootstrap: %w", err)
	}
	if err := pki.WriteKubeconfig(cfg.path(KubeconfigFile), cfg.Server, caPEM, certPEM, keyPEM); err != nil {
		return fmt.Errorf("bootstrap: %w", err)
	}
	return nil
}

// current is the credential in an existing kubeconfig.
type current struct {
	caPEM, certPEM, keyPEM []byte
	cert                   *x509.Certificate
}

// loadCurrent reads the kubeconfig at path and checks that its client
// certificate matches its key, is node's and was issued by its CA, and,
// when caHash is not empty, that the CA has that hash (a kubeconfig of
// another cluster is not current).
func loadCurrent(path, node, caHash string) (*current, error) {
	kc, err := clientcmd.LoadFromFile(path)
	if err != nil {
		return nil, fmt.Errorf("bootstrap: reading %s: %w", path, err)
	}
	kctx, ok := kc.Contexts[kc.CurrentContext]
	if !ok {
		return nil, fmt.Errorf("bootstrap: %s has no current context", path)
	}
	user, cluster := kc.AuthInfos[kctx.AuthInfo], kc.Clusters[kctx.Cluster]
	if user == nil || cluster == nil || len(user.ClientCertificateData) == 0 || len(user.ClientKeyData) == 0 || len(cluster.CertificateAuthorityData) == 0 {
		return nil, fmt.Errorf("bootstrap: %s lacks embedded CA, certificate or key", path)
	}
	pair, err := tls.X509KeyPair(user.ClientCertificateData, user.ClientKeyData)
	if err != nil {
		return nil, fmt.Errorf("bootstrap: %s: %w", path, err)
	}
	cert, err := x509.ParseCertificate(pair.Certificate[0])
	if err != nil {
		return nil, fmt.Errorf("bootstrap: %s: %w", path, err)
	}
	if cert.Subject.CommonName != nodeUserPrefix+node {
		return nil, fmt.Errorf("bootstrap: %s holds a certificate for %q, not node %q", path, cert.Subject.CommonName, node)
	}
	ca, err := firstCert(cluster.CertificateAuthorityData)
	if err != nil {
		return nil, fmt.Errorf("bootstrap: CA of %s: %w", path, err)
	}
	if err := cert.CheckSignatureFrom(ca); err != nil {
		return nil, fmt.Errorf("bootstrap: certificate in %s is not issued by its CA: %w", path, err)
	}
	if caHash != "" && CAHash(ca) != caHash {
		return nil, fmt.Errorf("bootstrap: %s is for a cluster with CA %s, not %s", path, CAHash(ca), caHash)
	}
	return &current{
		caPEM: cluster.CertificateAuthorityData, certPEM: user.ClientCertificateData,
		keyPEM: user.ClientKeyData, cert: cert,
	}, nil
}

// fresh reports whether cert is valid at now for more than 1-renewAt of
// its life.
func fresh(cert *x509.Certificate, now time.Time) bool {
	return now.After(cert.NotBefore) && now.Before(renewTime(cert))
}

// renewTime is when renewAt of cert's life has passed.
func renewTime(cert *x509.Certificate) time.Time {
	life := cert.NotAfter.Sub(cert.NotBefore)
	return cert.NotBefore.Add(time.Duration(float64(life) * renewAt))
}

// subject is the node's certificate subject.
func subject(node string) pkix.Name {
	return pkix.Name{CommonName: nodeUserPrefix + node, Organization: []string{nodesGroup}}
}
