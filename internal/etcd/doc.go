// Package etcd owns skiff's connection to etcd: it runs an embedded
// single-member etcd (StartEmbedded) for the all-in-one server, or connects
// to an external cluster (NewClient, for --etcd-servers).
//
// Inputs: a data directory and listen URLs (embedded), or endpoints and TLS
// settings (external). Outputs: a ready *clientv3.Client (for the embedded
// member, one that calls its handlers in-process rather than over gRPC). The
// embedded member listens on loopback only (for other clients), has
// auto-compaction off (storage.RunCompactor compacts) and forwards etcd's
// own warnings (at Debug) and errors (at Info) to the injected *slog.Logger.
//
// It never reads or writes keys itself; what lives under which key is the
// storage package's business.
//
// # Usage
//
//	e, err := etcd.StartEmbedded(ctx, etcd.EmbeddedConfig{DataDir: dir + "/etcd", Logger: log})
//	if err != nil { ... }
//	defer e.Close()
//	client := e.Client() // shared; closed by e.Close
package etcd
