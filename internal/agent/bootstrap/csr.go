package bootstrap

import (
	"context"
	"crypto/ecdsa"
	"crypto/x509"
	"encoding/pem"
	"errors"
	"fmt"
	"log/slog"
	"time"

	certificatesv1 "k8s.io/api/certificates/v1"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/fields"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/apimachinery/pkg/watch"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/rest"
	certutil "k8s.io/client-go/util/cert"
)

// Terminal outcomes of a CSR, returned wrapped with its name, reason and
// message.
var (
	ErrDenied = errors.New("bootstrap: certificate signing request denied")
	ErrFailed = errors.New("bootstrap: certificate signing request failed")
)

// rewatchDelay is the pause before watching again after a watch could not
// be opened.
const rewatchDelay = time.Second

// requestCertificate creates a node client CSR for key through rc and
// waits until it is signed; it returns the certificate PEM.
func requestCertificate(ctx context.Context, rc *rest.Config, key *ecdsa.PrivateKey, node string, d time.Duration, log *slog.Logger) ([]byte, error) {
	client, err := kubernetes.NewForConfig(rc)
	if err != nil {
		return nil, fmt.Errorf("bootstrap: building client: %w", err)
	}
	sub := subject(node)
	reqPEM, err := certutil.MakeCSR(key, &sub, nil, nil)
	if err != nil {
		return nil, fmt.Errorf("bootstrap: making certificate request: %w", err)
	}
	csr := &certificatesv1.CertificateSigningRequest{
		ObjectMeta: metav1.ObjectMeta{GenerateName: "node-csr-"},
		Spec: certificatesv1.CertificateSigningRequestSpec{
			Request:    reqPEM,
			SignerName: certificatesv1.KubeAPIServerClientKubeletSignerName,
			Usages:     []certificatesv1.KeyUsage{certificatesv1.UsageDigitalSignature, certificatesv1.UsageClientAuth},
		},
	}
	if d > 0 {
		secs := int32(d / time.Second)
		csr.Spec.ExpirationSeconds = &secs
	}
	created, err := client.CertificatesV1().CertificateSigningRequests().Create(ctx, csr, metav1.CreateOptions{})
	if err != nil {
		return nil, fmt.Errorf("bootstrap: creating certificate signing request: %w", err)
	}
	log.Info("waiting for certificate signing request", "name", created.Name)
	certPEM, err := waitForCertificate(ctx, client, created.Name, created.UID)
	if err != nil {
		return nil, err
	}
	cert, err := firstCert(certPEM)
	if err != nil {
		return nil, fmt.Errorf("bootstrap: certificate of %s: %w", created.Name, err)
	}
	if cert.Subject.CommonName != sub.CommonName {
		return nil, fmt.Errorf("bootstrap: certificate of %s is for %q, not %q", created.Name, cert.Subject.CommonName, sub.CommonName)
	}
	log.Info("node certificate issued", "name", created.Name, "notAfter", cert.NotAfter)
	return certPEM, nil
}

// waitForCertificate gets, then watches, CSR name (with uid) until it holds
// a certificate, or is denied, failed or deleted, or ctx ends.
func waitForCertificate(ctx context.Context, client kubernetes.Interface, name string, uid types.UID) ([]byte, error) {
	api := client.CertificatesV1().CertificateSigningRequests()
	for {
		csr, err := api.Get(ctx, name, metav1.GetOptions{})
		if err != nil {
			return nil, fmt.Errorf("bootstrap: getting certificate signing request %s: %w", name, err)
		}
		if done, cert, err := outcome(csr, uid); done {
			return cert, err
		}
		w, err := api.Watch(ctx, metav1.ListOptions{
			FieldSelector:   fields.OneTermEqualSelector("metadata.name", name).String(),
			ResourceVersion: csr.ResourceVersion,
		})
		if err != nil {
			select {
			case <-ctx.Done():
				return nil, fmt.Errorf("bootstrap: waiting for certificate signing request %s: %w", name, ctx.Err())
			case <-time.After(rewatchDelay):
				continue
			}
		}
		done, cert, err := watchOutcome(ctx, w, name, uid)
		w.Stop()
		if done {
			return cert, err
		}
		if ctx.Err() != nil {
			return nil, fmt.Errorf("bootstrap: waiting for certificate signing request %s: %w", name, ctx.Err())
		}
		// The watch ended (timeout, compaction): get and watch again.
	}
}

// watchOutcome follows w until the CSR reaches an outcome (done) or the
// watch ends (not done).
func watchOutcome(ctx context.Context, w watch.Interface, name string, uid types.UID) (bool, []byte, error) {
	for {
		select {
		case <-ctx.Done():
			return false, nil, nil
		case ev, ok := <-w.ResultChan():
			if !ok {
				return false, nil, nil
			}
			switch ev.Type {
			case watch.Added, watch.Modified:
				csr, ok := ev.Object.(*certificatesv1.CertificateSigningRequest)
				if !ok {
					continue
				}
				if done, cert, err := outcome(csr, uid); done {
					return true, cert, err
				}
			case watch.Deleted:
				return true, nil, fmt.Errorf("bootstrap: certificate signing request %s was deleted before it was signed", name)
			case watch.Error:
				return false, nil, nil
			}
		}
	}
}

// outcome reports whether csr is finished: signed (its certificate),
// denied or failed (ErrDenied/ErrFailed), or replaced by another object of
// the same name.
func outcome(csr *certificatesv1.CertificateSigningRequest, uid types.UID) (bool, []byte, error) {
	if csr.UID != uid {
		return true, nil, fmt.Errorf("bootstrap: certificate signing request %s was replaced (uid %s, want %s)", csr.Name, csr.UID, uid)
	}
	for _, c := range csr.Status.Conditions {
		if c.Status != "" && c.Status != corev1.ConditionTrue {
			continue
		}
		switch c.Type {
		case certificatesv1.CertificateDenied:
			return true, nil, fmt.Errorf("%w: %s: reason %q, message %q", ErrDenied, csr.Name, c.Reason, c.Message)
		case certificatesv1.CertificateFailed:
			return true, nil, fmt.Errorf("%w: %s: reason %q, message %q", ErrFailed, csr.Name, c.Reason, c.Message)
		}
	}
	if len(csr.Status.Certificate) > 0 {
		return true, csr.Status.Certificate, nil
	}
	return false, nil, nil
}

// firstCert parses the first certificate of a PEM bundle.
func firstCert(p []byte) (*x509.Certificate, error) {
	blk, _ := pem.Decode(p)
	if blk == nil || blk.Type != "CERTIFICATE" {
		return nil, errors.New("no PEM certificate")
	}
	return x509.ParseCertificate(blk.Bytes)
}
