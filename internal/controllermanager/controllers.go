package controllermanager

import (
	"context"
	"fmt"

	"k8s.io/client-go/discovery"
	"k8s.io/client-go/metadata"
	"k8s.io/client-go/rest"

	"github.com/skiff-dev/skiff/internal/controller"
	"github.com/skiff-dev/skiff/internal/controller/clusterroleaggregation"
	"github.com/skiff-dev/skiff/internal/controller/cronjob"
	"github.com/skiff-dev/skiff/internal/controller/csrapproving"
	"github.com/skiff-dev/skiff/internal/controller/csrsigning"
	"github.com/skiff-dev/skiff/internal/controller/daemonset"
	"github.com/skiff-dev/skiff/internal/controller/deployment"
	"github.com/skiff-dev/skiff/internal/controller/disruption"
	"github.com/skiff-dev/skiff/internal/controller/endpoints"
	"github.com/skiff-dev/skiff/internal/controller/endpointslice"
	"github.com/skiff-dev/skiff/internal/controller/endpointslicemirroring"
	"github.com/skiff-dev/skiff/internal/controller/ephemeral"
	"github.com/skiff-dev/skiff/internal/controller/garbagecollector"
	"github.com/skiff-dev/skiff/internal/controller/job"
	"github.com/skiff-dev/skiff/internal/controller/namespace"
	"github.com/skiff-dev/skiff/internal/controller/nodeipam"
	"github.com/skiff-dev/skiff/internal/controller/nodelifecycle"
	"github.com/skiff-dev/skiff/internal/controller/persistentvolume"
	"github.com/skiff-dev/skiff/internal/controller/podautoscaler"
	"github.com/skiff-dev/skiff/internal/controller/pvcprotection"
	"github.com/skiff-dev/skiff/internal/controller/replicaset"
	"github.com/skiff-dev/skiff/internal/controller/resourcequota"
	"github.com/skiff-dev/skiff/internal/controller/rootcacert"
	"github.com/skiff-dev/skiff/internal/controller/serviceaccount"
	"github.com/skiff-dev/skiff/internal/controller/statefulset"
)

// controllers lists every controller the manager knows, in start order.
// Adding one is one line; most use standard().
func controllers() []entry {
	return []entry{
		{"namespace", "namespace-controller", 10, newNamespace},
		{"replicaset", "replicaset-controller", 5, standard(replicaset.New)},
		{"replicationcontroller", "replication-controller", 5, standard(replicaset.NewReplicationController)},
		{"deployment", "deployment-controller", 5, standard(deployment.New)},
		{"statefulset", "statefulset-controller", 5, standard(statefulset.New)},
		{"daemonset", "daemonset-controller", 2, standard(daemonset.New)},
		{"job", "job-controller", 5, standard(job.New)},
		{"cronjob", "cronjob-controller", 5, standard(cronjob.New)},
		{"endpoint", "endpoint-controller", 5, standard(endpoints.New)},
		{"endpointslice", "endpointslice-controller", 5, standard(endpointslice.New)},
		{"endpointslicemirroring", endpointslicemirroring.Name, 5, standard(endpointslicemirroring.New)},
		{"serviceaccount", "serviceaccount-controller", 1, standard(serviceaccount.New)},
		{"root-ca-cert-publisher", rootcacert.Name, 1, withConfig(rootcacert.NewForConfig)},
		{"clusterrole-aggregation", clusterroleaggregation.Name, 1, standard(clusterroleaggregation.New)},
		{"csrapproving", csrapproving.Name, 1, standard(csrapproving.New)},
		{"csrsigning", csrsigning.Name, 2, withSigner},
		{"garbagecollector", "garbage-collector-controller", 20, withMetadata(garbagecollector.New)},
		{"horizontalpodautoscaling", "horizontal-pod-autoscaler", 5, withConfig(podautoscaler.NewForConfig)},
		{"resourcequota", "resource-quota-controller", 5, withConfig(resourcequota.NewForConfig)},
		{"disruption", "controllermanager", 1, withConfig(disruption.NewForConfig)},
		{"nodelifecycle", "node-lifecycle-controller", 1, standard(nodelifecycle.New)},
		{"nodeipam", "node-ipam-controller", 1, standard(nodeipam.New)},
		{"persistentvolume-binder", "persistentvolume-controller", 1, standard(persistentvolume.New)},
		{"pvc-protection", "pvc-protection-controller", 1, standard(pvcprotection.NewPVC)},
		{"pv-protection", "pv-protection-controller", 1, standard(pvcprotection.NewPV)},
		{"ephemeral-volume", "ephemeral_volume", 1, standard(ephemeral.New)},
	}
}

// entry describes one controller.
type entry struct {
	// name is the controller's name in --controllers and in logs.
	name string
	// component is the source of the events it records (upstream's name,
	// e.g. "replicaset-controller").
	component string
	// workers is the default number of workers (upstream's
	// --concurrent-*-syncs default), used when Config.Workers is 0.
	workers int
	// build constructs the controller; it must register the informers it
	// needs on env.deps.Informers and not start anything.
	build func(env) (runner, error)
}

// runner is a constructed controller.
type runner interface {
	// Run blocks until ctx is done and returns nil then; an error (or an
	// early return) stops the whole manager.
	Run(ctx context.Context, workers int) error
}

// env is what a controller's constructor receives.
type env struct {
	deps controller.Deps
	// config is the controller's own client configuration (its user agent
	// names it), for clients Deps does not carry (metadata, dynamic).
	config *rest.Config
	// signer is Config.Signer.
	signer csrsigning.Signer
}

// idle is a controller with nothing to do (for example csrsigning without
// a CA key): it waits for the end.
type idle struct{}

func (idle) Run(ctx context.Context, _ int) error { <-ctx.Done(); return nil }

// withSigner adapts the CSR signing controller, which needs the CA.
func withSigner(e env) (runner, error) {
	if e.signer == nil {
		e.deps.Logger.Info("no cluster signing key: certificate signing requests stay unsigned")
		return idle{}, nil
	}
	return csrsigning.New(e.deps, e.signer), nil
}

// standard adapts a constructor of the usual shape.
func standard[T runner](newController func(controller.Deps) T) func(env) (runner, error) {
	return func(e env) (runner, error) { return newController(e.deps), nil }
}

// withConfig adapts a constructor that builds its own clients (scale,
// metrics, metadata) from the controller's client configuration.
func withConfig[T runner](newController func(controller.Deps, *rest.Config) (T, error)) func(env) (runner, error) {
	return func(e env) (runner, error) { return newController(e.deps, e.config) }
}

// withMetadata adapts a constructor that also needs a metadata client and
// discovery (for example the garbage collector's
// New(controller.Deps, metadata.Interface, discovery.DiscoveryInterface)).
func withMetadata[T runner](newController func(controller.Deps, metadata.Interface, discovery.DiscoveryInterface) T) func(env) (runner, error) {
	return func(e env) (runner, error) {
		meta, err := metadata.NewForConfig(e.config)
		if err != nil {
			return nil, fmt.Errorf("building metadata client: %w", err)
		}
		return newController(e.deps, meta, e.deps.Client.Discovery()), nil
	}
}

// namespaceRunner adapts the namespace controller, which owns its
// informer and its workers.
type namespaceRunner struct{ c *namespace.Controller }

func (r namespaceRunner) Run(ctx context.Context, _ int) error { return r.c.Run(ctx) }

func newNamespace(e env) (runner, error) {
	meta, err := metadata.NewForConfig(e.config)
	if err != nil {
		return nil, fmt.Errorf("building metadata client: %w", err)
	}
	return namespaceRunner{namespace.New(e.deps.Client, meta, e.deps.Client.Discovery(), e.deps.Logger)}, nil
}
