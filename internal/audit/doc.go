// Package audit writes the API server's audit log: one JSON line per
// audit.k8s.io/v1 Event, as upstream's log backend writes them, so that
// tools that read upstream audit logs read skiff's.
//
// It owns the log file (and its rotated backups) and one writer
// goroutine. It reads nothing from the cluster: the API server builds
// each Event (internal/apiserver/audit.go) and hands it to Logger.Log.
// It must never block a request for long: Log only queues, and a full
// queue drops the event and counts it (see Logger.Dropped and
// Logger.Collectors) instead of waiting.
//
// # Levels and policy
//
// The level decides how much of a request is recorded: None (nothing),
// Metadata (who, what, when, the response code), Request (also the
// request body) and RequestResponse (also the response body). The
// policy is fixed (upstream's is a file; skiff has one rule set):
//
//   - /healthz, /livez, /readyz (and below) and /metrics: None, as they
//     are polled every few seconds and change nothing;
//   - secrets, configmaps, tokenreviews, serviceaccounts/token and
//     certificatesigningrequests: at most Metadata, so that credentials
//     never reach the log (upstream's recommended policy does the same);
//   - everything else: the configured level (Metadata by default).
//
// # Usage
//
//	l, err := audit.New(audit.Config{Path: "/var/lib/skiff/audit.log", Level: audit.LevelMetadata, MaxSizeMB: 100, MaxBackups: 3})
//	...
//	lvl := l.LevelFor(path, verb, ref) // per request
//	l.Log(&ev)                         // once per stage, never blocks
//	...
//	l.Close()                          // after the API server has stopped
package audit
