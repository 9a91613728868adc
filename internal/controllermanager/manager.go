package controllermanager

import (
	"github.com/skiff-dev/skiff/internal/cachetrim"
	"github.com/skiff-dev/skiff/internal/controller/csrsigning"
	"github.com/skiff-dev/skiff/internal/lazyclient"

	"context"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"strings"
	"sync"
	"time"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/util/uuid"
	"k8s.io/client-go/informers"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/kubernetes/scheme"
	typedcorev1 "k8s.io/client-go/kubernetes/typed/core/v1"
	"k8s.io/client-go/rest"
	"k8s.io/client-go/tools/leaderelection"
	"k8s.io/client-go/tools/leaderelection/resourcelock"
	"k8s.io/client-go/tools/record"

	"github.com/skiff-dev/skiff/internal/controller"
)

// Lease and timings of leader election, as upstream's
// kube-controller-manager.
const (
	LeaseNamespace = "kube-system"
	LeaseName      = "skiff-controller-manager"

	leaseDuration = 15 * time.Second
	renewDeadline = 10 * time.Second
	retryPeriod   = 2 * time.Second
)

// resyncPeriod is the shared informers' resync: a safety net that
// re-delivers every cached object now and then.
const resyncPeriod = 12 * time.Hour

// userAgent prefixes the user agent of every request the manager sends;
// each controller appends its name.
const userAgent = "skiff-controller-manager"

// Config configures Run.
type Config struct {
	// RestConfig is the API server and the identity the controllers act
	// as. Required.
	RestConfig *rest.Config
	// Logger receives the manager's and the controllers' logs; nil
	// discards them.
	Logger *slog.Logger
	// LeaderElection makes Run take the Lease
	// kube-system/skiff-controller-manager before running any controller
	// and keep renewing it.
	LeaderElection bool
	// Identity is the lease holder identity; empty means
	// "<hostname>_<random uuid>".
	Identity string
	// Controllers selects what to run: nil or empty means all (Names());
	// "*" all, "name" one, "-name" all but that one.
	Controllers []string
	// Workers is the number of workers per controller; 0 means each
	// controller's upstream default (5 for the replica controllers).
	Workers int
	// Signer signs approved CertificateSigningRequests with the cluster
	// CA (the csrsigning controller); nil leaves CSRs unsigned.
	Signer csrsigning.Signer
	// NewInformers, when set, gives each term of the controllers its
	// informer factory (in the server: a scope of the process's shared
	// informers, see internal/informerhub); Shutdown at the term's end
	// must detach the term's handlers. Nil: a factory of their own on
	// RestConfig, resynced every resyncPeriod.
	NewInformers func() informers.SharedInformerFactory

	// lease overrides the leader-election timings (tests only; nil means
	// upstream's 15s/10s/2s).
	lease *leaseTimings
}

type leaseTimings struct{ duration, renew, retry time.Duration }

// Names returns the names of the controllers Run knows, in start order.
func Names() []string {
	var names []string
	for _, e := range controllers() {
		names = append(names, e.name)
	}
	return names
}

// ErrLeaseLost is returned by Run when the manager stopped holding the
// leader lease while its context was still live.
var ErrLeaseLost = errors.New("controllermanager: lost the leader lease")

// Run runs the selected controllers until ctx is done and returns nil then.
// With LeaderElection it first waits to hold the lease and, when ctx is
// done, stops the controllers before it releases the lease. It returns an
// error when the configuration is invalid, when the lease is lost
// (ErrLeaseLost), or when a controller fails or stops on its own; the
// caller should then shut the process down.
func Run(ctx context.Context, cfg Config) error {
	if cfg.RestConfig == nil {
		return errors.New("controllermanager: no RestConfig")
	}
	logger := cfg.Logger
	if logger == nil {
		logger = slog.New(slog.DiscardHandler)
	}
	selected, err := selectControllers(cfg.Controllers)
	if err != nil {
		return err
	}
	client, err := lazyclient.New(withUserAgent(cfg.RestConfig, "shared-informers"))
	if err != nil {
		return fmt.Errorf("controllermanager: building client: %w", err)
	}

	// The broadcaster outlives ctx until the controllers have stopped (the
	// deferred Shutdown), so events they record while stopping are not
	// refused with errors.
	broadcaster := record.NewBroadcaster(record.WithContext(context.WithoutCancel(ctx)))
	defer broadcaster.Shutdown()
	eventClient, err := lazyclient.New(withUserAgent(cfg.RestConfig, "events"))
	if err != nil {
		return fmt.Errorf("controllermanager: building events client: %w", err)
	}
	broadcaster.StartRecordingToSink(&typedcorev1.EventSinkImpl{Interface: eventClient.CoreV1().Events("")})
	eventLog := broadcaster.StartEventWatcher(func(e *corev1.Event) {
		logger.Debug("event", "object", e.InvolvedObject.Kind+" "+e.InvolvedObject.Namespace+"/"+e.InvolvedObject.Name,
			"type", e.Type, "reason", e.Reason, "message", e.Message, "source", e.Source.Component)
	})
	defer eventLog.Stop()

	m := &manager{
		cfg:         cfg,
		log:         logger,
		client:      client,
		broadcaster: broadcaster,
		selected:    selected,
	}
	if !cfg.LeaderElection {
		return m.runControllers(ctx)
	}
	return m.runElected(ctx)
}

// manager holds what Run builds once.
type manager struct {
	cfg         Config
	log         *slog.Logger
	client      kubernetes.Interface
	broadcaster record.EventBroadcaster
	selected    []entry
}

// runElected runs the controllers while holding the lease.
//
// The elector runs on a context that is cancelled only after the
// controllers have stopped, so the lease is released (ReleaseOnCancel)
// only once nothing acts any more; a successor then takes over within a
// retry period instead of waiting for the lease to expire.
func (m *manager) runElected(ctx context.Context) error {
	identity := m.cfg.Identity
	if identity == "" {
		host, err := os.Hostname()
		if err != nil {
			return fmt.Errorf("controllermanager: leader election identity: %w", err)
		}
		identity = host + "_" + string(uuid.NewUUID())
	}
	timings := leaseTimings{leaseDuration, renewDeadline, retryPeriod}
	if m.cfg.lease != nil {
		timings = *m.cfg.lease
	}
	leConfig := withUserAgent(m.cfg.RestConfig, "leader-election")
	leConfig.Timeout = timings.renew
	leClient, err := lazyclient.New(leConfig)
	if err != nil {
		return fmt.Errorf("controllermanager: building leader election client: %w", err)
	}
	lock := &resourcelock.LeaseLock{
		LeaseMeta: metav1.ObjectMeta{Namespace: LeaseNamespace, Name: LeaseName},
		Client:    leClient.CoordinationV1(),
		LockConfig: resourcelock.ResourceLockConfig{
			Identity:      identity,
			EventRecorder: m.broadcaster.NewRecorder(scheme.Scheme, corev1.EventSource{Component: userAgent, Host: identity}),
		},
	}

	leading := make(chan struct{})
	ctrlDone := make(chan error, 1)
	electorCtx, stopElector := context.WithCancel(context.WithoutCancel(ctx))
	defer stopElector()
	elector, err := leaderelection.NewLeaderElector(leaderelection.LeaderElectionConfig{
		Lock:            lock,
		LeaseDuration:   timings.duration,
		RenewDeadline:   timings.renew,
		RetryPeriod:     timings.retry,
		ReleaseOnCancel: true,
		Name:            LeaseName,
		Callbacks: leaderelection.LeaderCallbacks{
			OnStartedLeading: func(leaseCtx context.Context) {
				close(leading)
				if ctx.Err() != nil {
					ctrlDone <- nil
					return
				}
				m.log.Info("leading", "lease", LeaseNamespace+"/"+LeaseName, "identity", identity)
				runCtx, cancel := context.WithCancel(leaseCtx)
				defer cancel()
				stop := context.AfterFunc(ctx, cancel)
				defer stop()
				ctrlDone <- m.runControllers(runCtx)
			},
			OnStoppedLeading: func() {},
		},
	})
	if err != nil {
		return fmt.Errorf("controllermanager: leader election: %w", err)
	}
	m.log.Info("waiting for the leader lease", "lease", LeaseNamespace+"/"+LeaseName, "identity", identity)
	electorDone := make(chan struct{})
	go func() {
		defer close(electorDone)
		elector.Run(electorCtx)
	}()

	isLeading := func() bool {
		select {
		case <-leading:
			return true
		default:
			return false
		}
	}
	var runErr error
	select {
	case <-ctx.Done():
		if isLeading() {
			runErr = <-ctrlDone
		}
	case runErr = <-ctrlDone:
		// The controllers stopped: ctx is done, the lease was lost, or one
		// of them failed.
	case <-electorDone:
		// The lease was lost; the controllers are stopping.
		if isLeading() {
			runErr = <-ctrlDone
		}
	}
	stopElector()
	<-electorDone
	switch {
	case runErr != nil:
		return runErr
	case ctx.Err() != nil:
		m.log.Info("stopped; lease released")
		return nil
	default:
		return ErrLeaseLost
	}
}

// runControllers builds the selected controllers on one informer factory,
// starts the informers and the controllers, and blocks until ctx is done or
// a controller stops on its own.
func (m *manager) runControllers(ctx context.Context) error {
	if ctx.Err() != nil {
		return nil
	}
	var factory informers.SharedInformerFactory
	if m.cfg.NewInformers != nil {
		factory = m.cfg.NewInformers()
	} else {
		factory = informers.NewSharedInformerFactoryWithOptions(m.client, resyncPeriod, cachetrim.Option())
	}
	type built struct {
		entry
		r runner
	}
	var runners []built
	for _, e := range m.selected {
		cfg := withUserAgent(m.cfg.RestConfig, e.name)
		// A controller uses two or three API groups: their clients are
		// built on first use (see lazyclient).
		client, err := lazyclient.New(cfg)
		if err != nil {
			return fmt.Errorf("controllermanager: building client for %s: %w", e.name, err)
		}
		r, err := e.build(env{
			deps: controller.Deps{
				Client:    client,
				Informers: factory,
				Recorder:  m.broadcaster.NewRecorder(scheme.Scheme, corev1.EventSource{Component: e.component}),
				Logger:    m.log.With("component", e.component),
			},
			config: cfg,
			signer: m.cfg.Signer,
		})
		if err != nil {
			return fmt.Errorf("controllermanager: starting %s: %w", e.name, err)
		}
		runners = append(runners, built{e, r})
	}

	ctx, cancel := context.WithCancelCause(ctx)
	defer cancel(nil)
	factory.StartWithContext(ctx)
	var wg sync.WaitGroup
	for _, b := range runners {
		workers := m.cfg.Workers
		if workers <= 0 {
			workers = b.workers
		}
		wg.Go(func() {
			err := b.r.Run(ctx, workers)
			if ctx.Err() != nil {
				return
			}
			if err == nil {
				err = errors.New("stopped unexpectedly")
			}
			cancel(fmt.Errorf("controllermanager: controller %s: %w", b.name, err))
		})
	}
	// Informers a controller asks for only once it runs start here.
	factory.StartWithContext(ctx)
	names := make([]string, 0, len(runners))
	for _, b := range runners {
		names = append(names, b.name)
	}
	m.log.Info("controllers started", "controllers", names)
	<-ctx.Done()
	wg.Wait()
	factory.Shutdown()
	if err := context.Cause(ctx); err != nil && !errors.Is(err, context.Canceled) {
		return err
	}
	return nil
}

// selectControllers returns the entries named by names (see
// Config.Controllers), in the order of controllers().
func selectControllers(names []string) ([]entry, error) {
	all := controllers()
	if len(names) == 0 {
		return all, nil
	}
	known := map[string]bool{}
	for _, e := range all {
		known[e.name] = true
	}
	star := false
	on, off := map[string]bool{}, map[string]bool{}
	var unknown []string
	for _, n := range names {
		switch {
		case n == "*":
			star = true
		case strings.HasPrefix(n, "-") && known[n[1:]]:
			off[n[1:]] = true
		case known[n]:
			on[n] = true
		default:
			unknown = append(unknown, n)
		}
	}
	if len(unknown) > 0 {
		return nil, fmt.Errorf("controllermanager: unknown controllers %q (known: %s)", unknown, strings.Join(Names(), ", "))
	}
	var out []entry
	for _, e := range all {
		if !off[e.name] && (star || on[e.name]) {
			out = append(out, e)
		}
	}
	return out, nil
}

func withUserAgent(cfg *rest.Config, name string) *rest.Config {
	c := rest.CopyConfig(cfg)
	c.UserAgent = userAgent + "/" + name
	return c
}
