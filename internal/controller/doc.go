// Package controller holds what every reconcile loop of the controller
// manager is given (Deps). The loops themselves live one per package below
// it (replicaset, deployment, job, …), each level-triggered: informers feed
// keys into a reconcile.Loop, and the loop's Func reads the current state
// from the informers' caches and converges it through the API server.
//
// Controllers read and write only through the API server, even when they
// run in the same process as it.
package controller
