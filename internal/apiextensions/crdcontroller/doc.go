// Package crdcontroller runs the control loops behind every
// CustomResourceDefinition, as upstream's naming, establishing and
// finalizer controllers do:
//
//   - names: it accepts the names a CRD asks for (spec.names) into
//     status.acceptedNames unless another CRD of the same group holds them,
//     and sets NamesAccepted (True "NoConflicts", or False with the
//     conflict: PluralConflict, SingularConflict, ShortNamesConflict,
//     KindConflict, ListKindConflict) and Established=False ("Installing"
//     once the names are accepted, "NotAccepted" before);
//   - Established: once the names are accepted and the API server answers a
//     list of the resource (it serves a CRD within milliseconds of seeing
//     NamesAccepted=True), it sets Established=True "InitialNamesAccepted";
//   - cleanup: a deleted CRD keeps the finalizer
//     customresourcecleanup.apiextensions.k8s.io (added by the CRD
//     resource on the first delete) until every custom resource of it is
//     gone. The controller deletes them through the API server and
//     reports progress in the Terminating condition, then removes the
//     finalizer so that the CRD goes away.
//
// A CRD's life, as its conditions show it:
//
//	created ──names free──▶ NamesAccepted=True, Established=False(Installing)
//	   │                        │ API server serves the resource
//	   │ names taken            ▼
//	   ▼                    Established=True(InitialNamesAccepted)
//	NamesAccepted=False         │ DELETE
//	(…Conflict; retried         ▼
//	 when a name is freed)  Terminating=True(InstanceDeletionPending → InProgress)
//	                            │ every custom resource deleted
//	                            ▼
//	                        Terminating=False(InstanceDeletionCompleted),
//	                        finalizer removed ──▶ gone
//
// Inputs: a CRD informer, and lists of custom resources through the API
// server. Outputs: CRD status (through /status), the removal of the cleanup
// finalizer (through the main resource: skiff's status writes keep
// metadata as it is, unlike upstream's CRD status strategy), and deletes of
// custom resources. It is a client of the API server like any controller:
// it never reads etcd and never serves anything.
//
// # Usage
//
//	err := crdcontroller.Run(ctx, adminConfig, log, nil) // blocks until ctx is done
//
// Run one instance per cluster: name acceptance, like upstream's, assumes a
// single writer.
package crdcontroller
