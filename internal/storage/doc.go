// Package storage is the etcd-backed store of one resource and its watch
// cache: Store implements Interface.
//
// Inputs: an etcd client, the resource's key prefix, codec and selector
// attributes (Config). Outputs: objects with metadata.resourceVersion set
// from etcd's mod revision, lists, and watch streams. It reads and writes
// only keys under Config.Prefix, every write in one etcd transaction, and it
// never applies API semantics (defaults, validation, uid, finalizers): that
// is the registry's job.
//
// Each Store keeps one etcd watch on its prefix. The watch cache built from
// it holds the decoded current objects, sorted by key (a B-tree), and a
// bounded ring of recent events; LIST (without a limit) and WATCH are served from it, and a
// thousand API watchers cost one etcd watch. A consistent LIST (no
// resourceVersion) waits until the cache has reached etcd's current
// revision (past Config.FreshnessTimeout it reads etcd instead); on a
// quiet prefix etcd's progress notifications move the cache there.
// A notification at or below the revision at which etcd registered the
// cache's watch counts only once the cache has reached that revision:
// etcd may deliver one made before the watch existed ahead of the watch's
// first events. Objects handed out by the cache
// (list items, watch event objects) are shared and must never be mutated:
// deep-copy them first. Get and Create go to etcd; GuaranteedUpdate and
// Delete start from a deep copy of the cached object and let the
// compare-and-swap (or, before failing, a fresh etcd read) catch staleness.
//
// An optional Config.Transformer (encryption at rest: package encryption)
// turns every encoded object into the stored value on every write (Create,
// GuaranteedUpdate) and back on every read (Get, etcd lists, the cache's
// list and watch, compare-and-swap re-reads). Values are compared and
// cached in their decoded form, so no-op updates stay no-ops; a value that
// does not decrypt is a 500 naming its etcd key (the watch cache logs and
// skips it). Reencrypt rewrites stale values (old key, plaintext) after a
// key change. Stores without a Transformer pay one nil check.
//
// With Config.TTL (events) every Create and GuaranteedUpdate attaches an
// etcd lease, shared by the writes of a short window (leases), so etcd
// deletes the object between TTL and TTL plus 5% (at most a minute) after
// its last write; the cache sees the deletion like any other.
//
// A List or Watch prefix is "" (everything), "ns/" (one namespace) or, for
// anything not ending in "/", a single key ("ns/name").
//
// A compacted continue token gets 410 with upstream's "inconsistent
// continue" token: the same start key at the newest revision (rv -1).
//
// Cache lifecycle:
//
//	New ──initial list──> synced ──watch fails──> re-watch from rev+1
//	                        ^                          │ compacted
//	                        └──── re-list, watchers ───┘
//	                              closed, ring reset
//	ctx done ──> stopped (all watchers closed)
//
// # Usage
//
//	st, err := storage.New(ctx, storage.Config{
//		Client: client, Prefix: "/registry/pods/",
//		Resource: schema.GroupResource{Resource: "pods"},
//		Codec: storage.ProtobufCodec(scheme, corev1.SchemeGroupVersion),
//		NewFunc: func() runtime.Object { return &corev1.Pod{} },
//		NewListFunc: func() runtime.Object { return &corev1.PodList{} },
//		Attrs: podAttrs,
//	})
//	// ... st.Create(ctx, "default/web", pod) ... st.Watch(ctx, "default/", opts)
//
// RunCompactor compacts etcd history for all resources; run one per etcd
// cluster next to the API server.
package storage
