package etcd

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net/url"
	"os"
	"sync"
	"sync/atomic"
	"time"

	clientv3 "go.etcd.io/etcd/client/v3"
	"go.etcd.io/etcd/server/v3/embed"
	"go.etcd.io/etcd/server/v3/etcdserver/api/v3client"
	"go.uber.org/zap"
)

// Defaults for the embedded member; a small single-member cluster.
const (
	defaultQuotaBytes    = 4 << 30 // 4 GiB
	defaultSnapshotCount = 10000
	defaultStartTimeout  = 60 * time.Second
)

// EmbeddedConfig configures StartEmbedded. The zero value of every field but
// DataDir is usable.
type EmbeddedConfig struct {
	// DataDir holds the member's WAL and database (e.g. DIR/etcd). The data
	// survives Close: a later StartEmbedded on the same DataDir sees it.
	DataDir string
	// ClientURL is the client listen URL, e.g. "http://127.0.0.1:2379".
	// Empty picks a free loopback port. Only loopback hosts are accepted.
	ClientURL string
	// PeerURL is the peer listen URL; empty picks a free loopback port.
	PeerURL string
	// Name is the member name; empty means "skiff".
	Name string
	// QuotaBackendBytes is the database size quota; 0 means 4 GiB.
	QuotaBackendBytes int64
	// SnapshotCount is the number of applied entries between snapshots;
	// 0 means 10000.
	SnapshotCount uint64
	// UnsafeNoFsync skips fsync; only for tests, data is lost on a crash.
	UnsafeNoFsync bool
	// StartTimeout bounds the wait for the member to become ready; 0 means
	// one minute.
	StartTimeout time.Duration
	// Logger receives etcd's warnings and errors; nil discards them.
	Logger *slog.Logger
}

// Embedded is a running embedded etcd member and a client connected to it.
//
// Lifecycle:
//
//	StartEmbedded ──> running ──Close──> stopped (data kept in DataDir)
type Embedded struct {
	etcd      *embed.Etcd
	client    *clientv3.Client
	endpoints []string
	quiet     *atomic.Bool // silences etcd's logs during Close

	closeOnce sync.Once
	closeErr  error
}

// StartEmbedded starts an etcd member with data under cfg.DataDir and waits
// until it serves clients, ctx is done, or cfg.StartTimeout passes. On
// error nothing is left running. The caller must Close the result.
func StartEmbedded(ctx context.Context, cfg EmbeddedConfig) (*Embedded, error) {
	if cfg.DataDir == "" {
		return nil, errors.New("starting embedded etcd: no data directory")
	}
	ec := embed.NewConfig()
	ec.Dir = cfg.DataDir
	ec.Name = cfg.Name
	if ec.Name == "" {
		ec.Name = "skiff"
	}
	clientURL, err := loopbackURL(cfg.ClientURL)
	if err != nil {
		return nil, fmt.Errorf("starting embedded etcd: client URL: %w", err)
	}
	peerURL, err := loopbackURL(cfg.PeerURL)
	if err != nil {
		return nil, fmt.Errorf("starting embedded etcd: peer URL: %w", err)
	}
	ec.ListenClientUrls = []url.URL{*clientURL}
	ec.AdvertiseClientUrls = []url.URL{*clientURL}
	ec.ListenPeerUrls = []url.URL{*peerURL}
	ec.AdvertisePeerUrls = []url.URL{*peerURL}
	ec.InitialCluster = ec.InitialClusterFromName(ec.Name)
	ec.AutoCompactionRetention = "0"
	ec.QuotaBackendBytes = cfg.QuotaBackendBytes
	if ec.QuotaBackendBytes == 0 {
		ec.QuotaBackendBytes = defaultQuotaBytes
	}
	ec.SnapshotCount = cfg.SnapshotCount
	if ec.SnapshotCount == 0 {
		ec.SnapshotCount = defaultSnapshotCount
	}
	ec.UnsafeNoFsync = cfg.UnsafeNoFsync
	ec.EnableGRPCGateway = false
	ec.Metrics = "basic"
	ec.LogLevel = "warn"
	quiet := new(atomic.Bool)
	ec.ZapLoggerBuilder = embed.NewZapLoggerBuilder(zap.New(newSlogCore(cfg.Logger, quiet)))
	// etcd warns about a data directory others can read.
	if err := os.MkdirAll(cfg.DataDir, 0o700); err != nil {
		return nil, fmt.Errorf("starting embedded etcd: %w", err)
	}

	e, err := embed.StartEtcd(ec)
	if err != nil {
		return nil, fmt.Errorf("starting embedded etcd in %s: %w", cfg.DataDir, err)
	}
	timeout := cfg.StartTimeout
	if timeout == 0 {
		timeout = defaultStartTimeout
	}
	timer := time.NewTimer(timeout)
	defer timer.Stop()
	select {
	case <-e.Server.ReadyNotify():
	case err := <-e.Err():
		e.Close()
		return nil, fmt.Errorf("starting embedded etcd in %s: %w", cfg.DataDir, err)
	case <-ctx.Done():
		e.Close()
		return nil, fmt.Errorf("starting embedded etcd in %s: %w", cfg.DataDir, ctx.Err())
	case <-timer.C:
		e.Server.Stop()
		e.Close()
		return nil, fmt.Errorf("starting embedded etcd in %s: not ready after %s", cfg.DataDir, timeout)
	}

	// The listeners may have been bound to port 0; ask them where they are.
	endpoints := make([]string, 0, len(e.Clients))
	for _, l := range e.Clients {
		endpoints = append(endpoints, "http://"+l.Addr().String())
	}
	// This process's own client calls the member's handlers in-process:
	// no socket, HTTP/2 framing or protobuf encoding of requests and
	// responses between them (twice the transactions per second of a gRPC
	// client on loopback). The listeners above serve other clients.
	client := v3client.New(e.Server)
	return &Embedded{etcd: e, client: client, endpoints: endpoints, quiet: quiet}, nil
}

// Client returns a client connected to the member. It is shared: callers
// must not Close it; Embedded.Close does.
func (e *Embedded) Client() *clientv3.Client { return e.client }

// Endpoints returns the client URLs the member listens on.
func (e *Embedded) Endpoints() []string { return append([]string(nil), e.endpoints...) }

// Close closes the client and stops the member cleanly. It is idempotent.
func (e *Embedded) Close() error {
	e.closeOnce.Do(func() {
		e.quiet.Store(true)
		if err := e.client.Close(); err != nil && !errors.Is(err, context.Canceled) {
			e.closeErr = fmt.Errorf("closing etcd client: %w", err)
		}
		e.etcd.Close()
		<-e.etcd.Server.StopNotify()
	})
	return e.closeErr
}

// loopbackURL parses raw (default "http://127.0.0.1:0", a free port) and
// rejects hosts other than loopback ones.
func loopbackURL(raw string) (*url.URL, error) {
	if raw == "" {
		raw = "http://127.0.0.1:0"
	}
	u, err := url.Parse(raw)
	if err != nil {
		return nil, err
	}
	switch u.Hostname() {
	case "127.0.0.1", "localhost", "::1":
	default:
		return nil, fmt.Errorf("%s is not a loopback address", raw)
	}
	if u.Port() == "" {
		return nil, fmt.Errorf("%s has no port", raw)
	}
	return u, nil
}
