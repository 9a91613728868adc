package csrapproving

import (
	"context"
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
const Name = "csrapproving-controller"

// ReasonAutoApproved is the reason of the Approved condition it sets.
const ReasonAutoApproved = "AutoApproved"

// Controller approves node client CSRs (see Decide). Run it once.
type Controller struct {
	client kubernetes.Interface
	csrs   certlisters.CertificateSigningRequestLister
	synced cache.InformerSynced
	now    func() time.Time
	log    *slog.Logger
	loop   *reconcile.Loop
}

// New returns an approving controller and registers the
// certificatesigningrequests informer on deps.Informers; start the factory
// after calling it, then call Run.
func New(deps controller.Deps) *Controller {
	log := deps.Log()
	inf := deps.Informers.Certificates().V1().CertificateSigningRequests()
	c := &Controller{
		client: deps.Client,
		csrs:   inf.Lister(),
		synced: inf.Informer().HasSynced,
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

// sync approves the CSR named key when Decide says so. Idempotent: an
// approved CSR is not approved again.
func (c *Controller) sync(ctx context.Context, key string) (time.Duration, error) {
	cached, err := c.csrs.Get(key)
	if apierrors.IsNotFound(err) {
		return 0, nil
	}
	if err != nil {
		return 0, fmt.Errorf("getting certificatesigningrequest %s: %w", key, err)
	}
	if len(cached.Status.Certificate) > 0 {
		return 0, nil
	}
	d := Decide(cached)
	if !d.Approve {
		c.log.Debug("not approving certificatesigningrequest", "name", key, "why", d.Message)
		return 0, nil
	}
	csr := cached.DeepCopy()
	now := metav1.NewTime(c.now())
	csr.Status.Conditions = append(csr.Status.Conditions, certificatesv1.CertificateSigningRequestCondition{
		Type: certificatesv1.CertificateApproved, Status: corev1.ConditionTrue,
		Reason: ReasonAutoApproved, Message: d.Message,
		LastUpdateTime: now, LastTransitionTime: now,
	})
	if err := c.approve(ctx, csr); err != nil {
		if apierrors.IsNotFound(err) {
			return 0, nil
		}
		return 0, fmt.Errorf("approving certificatesigningrequest %s: %w", key, err)
	}
	c.log.Info("approved certificatesigningrequest", "name", key, "user", csr.Spec.Username)
	return 0, nil
}

// approve writes csr's conditions through the /approval subresource, as
// upstream does.
func (c *Controller) approve(ctx context.Context, csr *certificatesv1.CertificateSigningRequest) error {
	_, err := c.client.CertificatesV1().CertificateSigningRequests().UpdateApproval(ctx, csr.Name, csr, metav1.UpdateOptions{})
	return err
}
