package bootstrap

import (
	"context"
	"crypto/x509"
	"encoding/pem"
	"errors"
	"fmt"
	"path/filepath"
	"testing"
	"time"

	certificatesv1 "k8s.io/api/certificates/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/informers"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/rest"
	"k8s.io/client-go/tools/record"

	"github.com/skiff-dev/skiff/internal/auth/tokens"
	"github.com/skiff-dev/skiff/internal/controller"
	"github.com/skiff-dev/skiff/internal/controller/csrapproving"
	"github.com/skiff-dev/skiff/internal/pki"
)

// runApprover runs the CSR approving controller against c.
func (c *cluster) runApprover(t *testing.T) {
	factory := informers.NewSharedInformerFactory(c.client, 0)
	ac := csrapproving.New(controller.Deps{Client: c.client, Informers: factory, Recorder: record.NewFakeRecorder(10), Logger: testLogger(t)})
	ctx, cancel := context.WithCancel(context.Background())
	factory.StartWithContext(ctx)
	done := make(chan error, 1)
	go func() { done <- ac.Run(ctx, 1) }()
	t.Cleanup(func() {
		cancel()
		if err := <-done; err != nil {
			t.Errorf("approving controller: %v", err)
		}
		factory.Shutdown()
	})
}

// TestJoinWithBootstrapToken is the join flow with nothing faked: a token
// from CreateBootstrapToken in a join token, the server's CA checked
// against its hash, the CSR made with the token as bearer, approved by
// csrapproving (the requester is a bootstrapper) and signed by csrsigning;
// then a renewal with the node's own certificate, approved as the node's.
func TestJoinWithBootstrapToken(t *testing.T) {
	c := startCluster(t)
	c.runApprover(t)
	ctx, cancel := context.WithTimeout(t.Context(), 60*time.Second)
	defer cancel()

	tok, err := tokens.CreateBootstrapToken(ctx, c.client, time.Hour, "test join", []string{"system:bootstrappers:skiff:default-node-token"})
	if err != nil {
		t.Fatal(err)
	}
	join, err := FormatJoinToken(tok, CAHash(c.signer.CA()))
	if err != nil {
		t.Fatal(err)
	}
	token, hash, err := ResolveToken(join, "")
	if err != nil {
		t.Fatal(err)
	}

	// Bearer tokens authenticate only once the server is wired for them
	// (issue 7's "security: wire"); the bootstrap authenticator also needs
	// its cache to see the new secret.
	caPEM := pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: c.signer.CA().Raw})
	probe := kubernetes.NewForConfigOrDie(&rest.Config{Host: c.url, BearerToken: token, TLSClientConfig: rest.TLSClientConfig{CAData: caPEM}})
	deadline := time.Now().Add(10 * time.Second)
	for {
		_, err := probe.CertificatesV1().CertificateSigningRequests().List(ctx, metav1.ListOptions{})
		if err == nil {
			break
		}
		if !apierrors.IsUnauthorized(err) {
			t.Fatalf("listing CSRs with the bootstrap token: %v", err)
		}
		if time.Now().After(deadline) {
			t.Skipf("the API server refuses bootstrap tokens as bearer tokens (%v): not wired yet", err)
		}
		select {
		case <-time.After(50 * time.Millisecond):
		case <-ctx.Done():
			t.Fatal(ctx.Err())
		}
	}

	cfg := Config{Server: c.url, Token: token, CAHash: hash, NodeName: "joined", Dir: filepath.Join(t.TempDir(), "agent"), Logger: testLogger(t)}
	path, err := Kubeconfig(ctx, cfg)
	if err != nil {
		t.Fatalf("Kubeconfig: %v", err)
	}
	cert := nodeCert(t, path)
	if got, want := fmt.Sprint(cert.Subject.CommonName, cert.Subject.Organization), fmt.Sprint("system:node:joined", []string{"system:nodes"}); got != want {
		t.Errorf("subject = %s, want %s", got, want)
	}
	id := tok[:6]
	csrs, err := c.client.CertificatesV1().CertificateSigningRequests().List(ctx, metav1.ListOptions{})
	if err != nil {
		t.Fatal(err)
	}
	found := false
	for _, csr := range csrs.Items {
		if csr.Spec.Username != tokens.BootstrapUserPrefix+id {
			continue
		}
		found = true
		if !approvedBy(&csr, csrapproving.ReasonAutoApproved) {
			t.Errorf("CSR %s conditions %+v, want Approved by %s", csr.Name, csr.Status.Conditions, csrapproving.ReasonAutoApproved)
		}
	}
	if !found {
		t.Errorf("no CSR recorded as requested by %s%s", tokens.BootstrapUserPrefix, id)
	}

	// Renewal: a certificate 90% through its life is renewed with itself
	// (no token), and csrapproving approves the node's own request.
	key := newKey(t)
	now := time.Now()
	der, err := c.signer.Sign(&x509.Certificate{
		Subject: subject("joined"), NotBefore: now.Add(-9 * time.Minute), NotAfter: now.Add(time.Minute),
		KeyUsage: x509.KeyUsageDigitalSignature, ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageClientAuth},
	}, &key.PublicKey)
	if err != nil {
		t.Fatal(err)
	}
	keyDER, err := x509.MarshalECPrivateKey(key)
	if err != nil {
		t.Fatal(err)
	}
	if err := pki.WriteKubeconfig(path, c.url, caPEM, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}),
		pem.EncodeToMemory(&pem.Block{Type: "EC PRIVATE KEY", Bytes: keyDER})); err != nil {
		t.Fatal(err)
	}
	cfg.Token = ""
	rotated := make(chan struct{}, 10)
	rctx, rcancel := context.WithCancel(ctx)
	rdone := make(chan error, 1)
	go func() { rdone <- Rotate(rctx, cfg, func() { rotated <- struct{}{} }) }()
	select {
	case <-rotated:
	case err := <-rdone:
		t.Fatalf("Rotate returned early: %v", err)
	case <-ctx.Done():
		t.Fatalf("no rotation: %v", ctx.Err())
	}
	rcancel()
	if err := <-rdone; err != nil && !errors.Is(err, context.Canceled) {
		t.Errorf("Rotate: %v", err)
	}
	if renewed := nodeCert(t, path); !fresh(renewed, time.Now()) {
		t.Errorf("renewed certificate is not fresh: %v – %v", renewed.NotBefore, renewed.NotAfter)
	}
	csrs, err = c.client.CertificatesV1().CertificateSigningRequests().List(ctx, metav1.ListOptions{})
	if err != nil {
		t.Fatal(err)
	}
	for _, csr := range csrs.Items {
		if csr.Spec.Username == "system:node:joined" && approvedBy(&csr, csrapproving.ReasonAutoApproved) {
			return
		}
	}
	t.Errorf("no renewal CSR requested by system:node:joined and auto-approved")
}

func approvedBy(csr *certificatesv1.CertificateSigningRequest, reason string) bool {
	for _, c := range csr.Status.Conditions {
		if c.Type == certificatesv1.CertificateApproved && c.Reason == reason {
			return true
		}
	}
	return false
}
