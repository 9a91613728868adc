// Package controllermanager runs the controllers of "skiff
// controller-manager": one shared informer factory, one event broadcaster,
// and each selected controller's reconcile loop, optionally behind a
// leader-election Lease so that only one manager of a cluster acts at a
// time.
//
// Reads and writes: only through the API server, as the identity of
// Config.RestConfig (reads through Config.NewInformers instead when set:
// in skiff server, the process's shared informers); whatever its controllers read and write, plus the
// Lease kube-system/skiff-controller-manager (leader election) and Events
// (recorded by the controllers, each under its upstream component name such
// as "replicaset-controller").
//
// Never: it holds no package-level state and registers nothing in init();
// the controllers it knows are the entries returned by controllers(). It
// never runs a controller while it does not hold the lease (when leader
// election is on), and it stops every controller before releasing the
// lease.
//
// # Usage
//
//	err := controllermanager.Run(ctx, controllermanager.Config{
//		RestConfig:     cfg,
//		Logger:         logger,
//		LeaderElection: true,
//	}) // blocks until ctx is done; an error when the lease is lost or a controller fails
//
// # Lifecycle
//
//	            ┌──────────── ctx done ─────────────┐
//	            │                                   v
//	start ─> acquiring ─> leading: informers + controllers ─> stopping ─> release lease ─> return nil
//	                          │
//	                          └─ lease lost / controller error ─> stopping ─> return error
//
// # Adding a controller
//
// Add one line to controllers(): its --controllers name, its event
// component and default workers, and its constructor adapted with
// standard() when it has the usual shape
// New(controller.Deps) *Controller with Run(ctx, workers) error, or with
// withMetadata() when New also takes a metadata client and discovery.
package controllermanager
