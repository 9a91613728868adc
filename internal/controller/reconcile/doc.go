// Package reconcile runs a controller's level-triggered reconcile loop: a
// rate-limited work queue of object keys ("namespace/name" or "name") fed
// by informer events, drained by workers that call a Func.
//
// It reads nothing and writes nothing itself; the Func does. It never
// branches on event type: every add, update and delete only enqueues the
// key, and the Func reads the current state.
//
// # Usage
//
//	loop := reconcile.New("replicaset", c.sync, logger)
//	rsInformer.AddEventHandler(loop.Handler())           // enqueue the object's key
//	podInformer.AddEventHandler(loop.HandlerFor(ownerKey)) // enqueue a related key
//	return loop.Run(ctx, workers, rsInformer.HasSynced, podInformer.HasSynced)
//
// Func returns (requeueAfter, err): an error requeues the key with
// exponential back-off; requeueAfter > 0 requeues it after that delay; both
// zero forget the key until its next event.
package reconcile
