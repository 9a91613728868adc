package bootstrap

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"encoding/pem"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"os"
	"path/filepath"
	"sync"
	"testing"
	"time"

	certificatesv1 "k8s.io/api/certificates/v1"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/informers"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/rest"
	"k8s.io/client-go/tools/clientcmd"
	"k8s.io/client-go/tools/record"

	"github.com/skiff-dev/skiff/internal/controller"
	"github.com/skiff-dev/skiff/internal/controller/csrsigning"
	"github.com/skiff-dev/skiff/internal/pki"
	"github.com/skiff-dev/skiff/internal/server"
)

type testWriter struct{ t testing.TB }

func (w testWriter) Write(p []byte) (int, error) { w.t.Log(string(p)); return len(p), nil }

func testLogger(t testing.TB) *slog.Logger {
	return slog.New(slog.NewTextHandler(testWriter{t}, &slog.HandlerOptions{Level: slog.LevelDebug}))
}

func eventually(t *testing.T, f func() error) {
	t.Helper()
	deadline := time.Now().Add(20 * time.Second)
	for {
		err := f()
		if err == nil {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("condition not met before deadline: %v", err)
		}
		select {
		case <-time.After(20 * time.Millisecond):
		case <-t.Context().Done():
			t.Fatalf("test ended: %v", err)
		}
	}
}

// cluster is a real server whose data dir (and so CA key) the test knows,
// with the signing controller running on the cluster CA.
type cluster struct {
	url    string
	admin  *rest.Config
	client kubernetes.Interface
	dir    string
	signer csrsigning.Signer
}

// startCluster runs server.Run like testserver.Start, but keeps the data
// dir so that the signing controller can use the cluster CA.
func startCluster(t *testing.T) *cluster {
	t.Helper()
	dir := t.TempDir()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	listen := ln.Addr().String()
	_ = ln.Close()
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() {
		done <- server.Run(ctx, server.Config{DataDir: dir, Listen: listen, Logger: slog.New(slog.DiscardHandler), Progress: io.Discard})
	}()
	t.Cleanup(func() {
		cancel()
		select {
		case err := <-done:
			if err != nil {
				t.Errorf("server stopped with: %v", err)
			}
		case <-time.After(30 * time.Second):
			t.Errorf("server did not stop within 30s")
		}
	})
	kubeconfig := filepath.Join(dir, "kubeconfig")
	eventually(t, func() error {
		select {
		case err := <-done:
			t.Fatalf("server exited: %v", err)
		default:
		}
		_, err := os.Stat(kubeconfig)
		return err
	})
	admin, err := clientcmd.BuildConfigFromFlags("", kubeconfig)
	if err != nil {
		t.Fatal(err)
	}
	admin.QPS = -1
	signer, err := csrsigning.FileSigner(filepath.Join(dir, "pki", "ca.crt"), filepath.Join(dir, "pki", "ca.key"))
	if err != nil {
		t.Fatal(err)
	}
	c := &cluster{url: admin.Host, admin: admin, client: kubernetes.NewForConfigOrDie(admin), dir: dir, signer: signer}

	factory := informers.NewSharedInformerFactory(c.client, 0)
	sctx, scancel := context.WithCancel(context.Background())
	sc := csrsigning.New(controller.Deps{Client: c.client, Informers: factory, Recorder: record.NewFakeRecorder(10), Logger: testLogger(t)}, signer)
	factory.StartWithContext(sctx)
	sdone := make(chan error, 1)
	go func() { sdone <- sc.Run(sctx, 1) }()
	t.Cleanup(func() {
		scancel()
		if err := <-sdone; err != nil {
			t.Errorf("signing controller: %v", err)
		}
		factory.Shutdown()
	})
	return c
}

// config returns a bootstrap Config for node that authenticates with the
// admin certificate instead of the token (TestJoinWithBootstrapToken uses
// a real bootstrap token).
func (c *cluster) config(t *testing.T, node string) Config {
	return Config{
		Server: c.url, Token: "abcdef.0123456789abcdef", CAHash: CAHash(c.signer.CA()),
		NodeName: node, Dir: filepath.Join(t.TempDir(), "agent"), Logger: testLogger(t),
		bootstrapAuth: func(rc *rest.Config) {
			rc.BearerToken = ""
			rc.CertData, rc.KeyData = c.admin.CertData, c.admin.KeyData
		},
	}
}

// decider approves (or denies) every pending CSR for node through
// /approval, as a human would (TestJoinWithBootstrapToken runs the real
// csrapproving controller with a real token).
func (c *cluster) decider(t *testing.T, node string, deny bool) (stop func()) {
	ctx, cancel := context.WithCancel(t.Context())
	var wg sync.WaitGroup
	wg.Go(func() {
		api := c.client.CertificatesV1().CertificateSigningRequests()
		for ctx.Err() == nil {
			list, err := api.List(ctx, metav1.ListOptions{})
			if err == nil {
				for i := range list.Items {
					csr := &list.Items[i]
					if len(csr.Status.Conditions) > 0 || requestCN(csr) != nodeUserPrefix+node {
						continue
					}
					typ := certificatesv1.CertificateApproved
					if deny {
						typ = certificatesv1.CertificateDenied
					}
					csr.Status.Conditions = append(csr.Status.Conditions, certificatesv1.CertificateSigningRequestCondition{
						Type: typ, Status: corev1.ConditionTrue, Reason: "TestDecision", Message: "decided by test",
					})
					if _, err := api.UpdateApproval(ctx, csr.Name, csr, metav1.UpdateOptions{}); err != nil && ctx.Err() == nil {
						t.Logf("deciding %s: %v", csr.Name, err)
					}
				}
			}
			select {
			case <-ctx.Done():
			case <-time.After(20 * time.Millisecond):
			}
		}
	})
	return func() { cancel(); wg.Wait() }
}

func requestCN(csr *certificatesv1.CertificateSigningRequest) string {
	blk, _ := pem.Decode(csr.Spec.Request)
	if blk == nil {
		return ""
	}
	req, err := x509.ParseCertificateRequest(blk.Bytes)
	if err != nil {
		return ""
	}
	return req.Subject.CommonName
}

func (c *cluster) csrCount(t *testing.T) int {
	t.Helper()
	list, err := c.client.CertificatesV1().CertificateSigningRequests().List(t.Context(), metav1.ListOptions{})
	if err != nil {
		t.Fatal(err)
	}
	return len(list.Items)
}

// nodeCert reads the client certificate of the kubeconfig at path and
// checks that the kubeconfig reaches the server.
func nodeCert(t *testing.T, path string) *x509.Certificate {
	t.Helper()
	rc, err := clientcmd.BuildConfigFromFlags("", path)
	if err != nil {
		t.Fatal(err)
	}
	pair, err := tls.X509KeyPair(rc.CertData, rc.KeyData)
	if err != nil {
		t.Fatal(err)
	}
	cert, err := x509.ParseCertificate(pair.Certificate[0])
	if err != nil {
		t.Fatal(err)
	}
	if _, err := kubernetes.NewForConfigOrDie(rc).CoreV1().Namespaces().Get(t.Context(), "default", metav1.GetOptions{}); err != nil {
		t.Errorf("the node kubeconfig does not work: %v", err)
	}
	return cert
}

func TestKubeconfigEndToEnd(t *testing.T) {
	c := startCluster(t)

	t.Run("bootstrap, reuse, rotate", func(t *testing.T) {
		cfg := c.config(t, "n1")
		stop := c.decider(t, "n1", false)
		defer stop()
		ctx, cancel := context.WithTimeout(t.Context(), 30*time.Second)
		defer cancel()
		path, err := Kubeconfig(ctx, cfg)
		if err != nil {
			t.Fatalf("Kubeconfig: %v", err)
		}
		if want := filepath.Join(cfg.Dir, KubeconfigFile); path != want {
			t.Errorf("path = %s, want %s", path, want)
		}
		for name, mode := range map[string]os.FileMode{KubeconfigFile: 0o600, KeyFile: 0o600, CertFile: 0o644} {
			fi, err := os.Stat(filepath.Join(cfg.Dir, name))
			if err != nil {
				t.Fatal(err)
			}
			if fi.Mode().Perm() != mode {
				t.Errorf("%s mode = %v, want %v", name, fi.Mode().Perm(), mode)
			}
		}
		cert := nodeCert(t, path)
		roots := x509.NewCertPool()
		roots.AddCert(c.signer.CA())
		if _, err := cert.Verify(x509.VerifyOptions{Roots: roots, KeyUsages: []x509.ExtKeyUsage{x509.ExtKeyUsageClientAuth}}); err != nil {
			t.Errorf("node certificate does not verify against the cluster CA: %v", err)
		}
		if got, want := fmt.Sprint(cert.Subject.CommonName, cert.Subject.Organization), fmt.Sprint("system:node:n1", []string{"system:nodes"}); got != want {
			t.Errorf("subject = %s, want %s", got, want)
		}

		// A fresh certificate is reused: no new CSR.
		before := c.csrCount(t)
		if _, err := Kubeconfig(ctx, cfg); err != nil {
			t.Fatalf("second Kubeconfig: %v", err)
		}
		if after := c.csrCount(t); after != before {
			t.Errorf("second Kubeconfig created %d CSRs, want 0", after-before)
		}

		// Replace the certificate by one 90% through its life: Rotate
		// renews it at once, authenticating with it.
		key := newKey(t)
		now := time.Now()
		der, err := c.signer.Sign(&x509.Certificate{
			Subject: subject("n1"), NotBefore: now.Add(-9 * time.Minute), NotAfter: now.Add(time.Minute),
			KeyUsage: x509.KeyUsageDigitalSignature, ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageClientAuth},
		}, &key.PublicKey)
		if err != nil {
			t.Fatal(err)
		}
		keyDER, err := x509.MarshalECPrivateKey(key)
		if err != nil {
			t.Fatal(err)
		}
		old := pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der})
		caPEM := pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: c.signer.CA().Raw})
		if err := pki.WriteKubeconfig(path, c.url, caPEM, old, pem.EncodeToMemory(&pem.Block{Type: "EC PRIVATE KEY", Bytes: keyDER})); err != nil {
			t.Fatal(err)
		}
		cfg.Token = "" // renewal must not need the token
		rotated := make(chan struct{}, 10)
		rctx, rcancel := context.WithCancel(t.Context())
		rdone := make(chan error, 1)
		go func() { rdone <- Rotate(rctx, cfg, func() { rotated <- struct{}{} }) }()
		select {
		case <-rotated:
		case err := <-rdone:
			t.Fatalf("Rotate returned early: %v", err)
		case <-time.After(30 * time.Second):
			t.Fatalf("no rotation within 30s")
		}
		rcancel()
		if err := <-rdone; err != nil {
			t.Errorf("Rotate: %v", err)
		}
		renewed := nodeCert(t, path)
		if renewed.Equal(cert) || string(renewed.Raw) == string(der) {
			t.Errorf("certificate not replaced")
		}
		if !fresh(renewed, time.Now()) {
			t.Errorf("renewed certificate is not fresh: %v – %v", renewed.NotBefore, renewed.NotAfter)
		}
	})

	t.Run("denied", func(t *testing.T) {
		cfg := c.config(t, "n2")
		stop := c.decider(t, "n2", true)
		defer stop()
		ctx, cancel := context.WithTimeout(t.Context(), 30*time.Second)
		defer cancel()
		_, err := Kubeconfig(ctx, cfg)
		if !errors.Is(err, ErrDenied) {
			t.Fatalf("Kubeconfig = %v, want ErrDenied", err)
		}
		t.Logf("error: %v", err)
		if _, err := os.Stat(filepath.Join(cfg.Dir, KubeconfigFile)); !errors.Is(err, os.ErrNotExist) {
			t.Errorf("kubeconfig written after a denial (stat: %v)", err)
		}
	})

	t.Run("wrong CA hash creates nothing", func(t *testing.T) {
		cfg := c.config(t, "n3")
		cfg.CAHash = CAHash(newTestCA(t, "other").cert)
		before := c.csrCount(t)
		_, err := Kubeconfig(t.Context(), cfg)
		if !errors.Is(err, ErrCAHashMismatch) {
			t.Fatalf("Kubeconfig = %v, want ErrCAHashMismatch", err)
		}
		if after := c.csrCount(t); after != before {
			t.Errorf("%d CSRs created", after-before)
		}
	})

	t.Run("no certificate and no token", func(t *testing.T) {
		cfg := c.config(t, "n4")
		cfg.Token = ""
		if _, err := Kubeconfig(t.Context(), cfg); err == nil {
			t.Fatalf("Kubeconfig without token or certificate succeeded")
		}
	})
}
