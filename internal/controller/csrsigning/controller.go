package csrsigning

import (
	"context"
	"encoding/pem"
	"fmt"
	"log/slog"
	"time"

	certificatesv1 "k8s.io/api/certificates/v1"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes"
	certlisters "k8s.io/client-go/listers/certificates/v1"
	"k8s.io/client-go/tools/cache"

	"github.com/skiff-dev/skiff/internal/controller"
	"github.com/skiff-dev/skiff/internal/controller/reconcile"
)

// Name is the controller's name in logs and the work queue.
const Name = "csrsigning-controller"

// ReasonValidationFailure is the reason of the Failed condition set on an
// approved request that does not fit its signer (upstream's reason).
const ReasonValidationFailure = "SignerValidationFailure"

// Controller signs approved CSRs of the built-in signers. Run it once.
type Controller struct {
	client kubernetes.Interface
	csrs   certlisters.CertificateSigningRequestLister
	synced cache.InformerSynced
	signer Signer
	now    func() time.Time
	log    *slog.Logger
	loop   *reconcile.Loop
}

// New returns a signing controller issuing with signer and registers the
// certificatesigningrequests informer on deps.Informers; start the factory
// after calling it, then call Run.
func New(deps controller.Deps, signer Signer) *Controller {
	log := deps.Log()
	inf := deps.Informers.Certificates().V1().CertificateSigningRequests()
	c := &Controller{
		client: deps.Client,
		csrs:   inf.Lister(),
		synced: inf.Informer().HasSynced,
		signer: signer,
		now:    deps.Clock(),
		log:    log,
	}
	c.loop = reconcile.New(Name, c.sync, log)
	if _, err := inf.Informer().AddEventHandler(c.loop.Handler()); err != nil {
		log.Info("cannot add event handler", "err", err)
	}
	return c
}

// Run waits for the cache, runs workers workers and blocks until ctx is
// done. It returns nil on cancellation.
func (c *Controller) Run(ctx context.Context, workers int) error {
	return c.loop.Run(ctx, workers, c.synced)
}

// sync signs the CSR named key when it is approved, not denied or failed,
// has no certificate yet and names one of our signers. Idempotent: a CSR
// that already holds a certificate is left alone.
func (c *Controller) sync(ctx context.Context, key string) (time.Duration, error) {
	cached, err := c.csrs.Get(key)
	if apierrors.IsNotFound(err) {
		return 0, nil
	}
	if err != nil {
		return 0, fmt.Errorf("getting certificatesigningrequest %s: %w", key, err)
	}
	if !Handles(cached.Spec.SignerName) || len(cached.Status.Certificate) > 0 ||
		!hasCondition(cached, certificatesv1.CertificateApproved) ||
		hasCondition(cached, certificatesv1.CertificateDenied) || hasCondition(cached, certificatesv1.CertificateFailed) {
		return 0, nil
	}
	csr := cached.DeepCopy()
	certPEM, invalid := c.issue(csr)
	if invalid != nil {
		c.log.Info("refusing certificatesigningrequest", "name", csr.Name, "signer", csr.Spec.SignerName, "reason", invalid.Error())
		now := metav1.NewTime(c.now())
		csr.Status.Conditions = append(csr.Status.Conditions, certificatesv1.CertificateSigningRequestCondition{
			Type: certificatesv1.CertificateFailed, Status: corev1.ConditionTrue,
			Reason: ReasonValidationFailure, Message: invalid.Error(),
			LastUpdateTime: now, LastTransitionTime: now,
		})
	} else {
		csr.Status.Certificate = certPEM
	}
	_, err = c.client.CertificatesV1().CertificateSigningRequests().UpdateStatus(ctx, csr, metav1.UpdateOptions{})
	switch {
	case err == nil:
		if invalid == nil {
			c.log.Debug("signed certificatesigningrequest", "name", csr.Name, "signer", csr.Spec.SignerName)
		}
		return 0, nil
	case apierrors.IsNotFound(err):
		return 0, nil
	default:
		// A conflict is retried from the newer version the informer brings.
		return 0, fmt.Errorf("updating certificatesigningrequest %s status: %w", key, err)
	}
}

// issue returns the PEM certificate for csr, or why the request is invalid
// (which becomes the Failed condition's message). A signing failure is
// reported as invalid too: it is not retryable with the same CA.
func (c *Controller) issue(csr *certificatesv1.CertificateSigningRequest) ([]byte, error) {
	req, err := ParseRequest(csr.Spec.Request)
	if err != nil {
		return nil, err
	}
	if err := Validate(csr.Spec.SignerName, req, csr.Spec.Usages); err != nil {
		return nil, err
	}
	tmpl, err := Template(req, csr.Spec.Usages, csr.Spec.ExpirationSeconds, c.signer.CA(), c.now())
	if err != nil {
		return nil, err
	}
	der, err := c.signer.Sign(tmpl, req.PublicKey)
	if err != nil {
		return nil, err
	}
	return pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}), nil
}

// hasCondition reports whether csr has condition t with status True (or no
// status, which older clients leave empty and upstream treats as True).
func hasCondition(csr *certificatesv1.CertificateSigningRequest, t certificatesv1.RequestConditionType) bool {
	for _, c := range csr.Status.Conditions {
		if c.Type == t && (c.Status == "" || c.Status == corev1.ConditionTrue) {
			return true
		}
	}
	return false
}
