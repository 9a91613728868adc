package storage

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"strconv"
	"time"

	"go.etcd.io/etcd/api/v3/v3rpc/rpctypes"
	clientv3 "go.etcd.io/etcd/client/v3"
)

// compactRevKey records the last compaction so that several API servers
// sharing one etcd compact only once per interval (upstream's key name).
const compactRevKey = "compact_rev_key"

// RunCompactor compacts etcd history every interval (upstream: 5 minutes),
// keeping the revisions written during the previous interval so watches
// and paged lists in flight can still resume. It blocks until ctx is done
// and then returns nil. Safe to run in several processes on one cluster:
// a compare-and-swap on compactRevKey elects one per interval.
func RunCompactor(ctx context.Context, client *clientv3.Client, interval time.Duration, logger *slog.Logger) error {
	if logger == nil {
		logger = slog.New(slog.DiscardHandler)
	}
	var version, rev int64 // compactRevKey's version we expect; revision to compact next
	t := time.NewTicker(interval)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return nil
		case <-t.C:
		}
		var err error
		version, rev, err = compactOnce(ctx, client, version, rev)
		if err != nil && ctx.Err() == nil {
			logger.Info("compacting etcd failed", "err", err)
		}
	}
}

// compactOnce records the current revision under compactRevKey if nobody
// else did since version, then compacts prevRev. It returns the version and
// revision to use next time.
func compactOnce(ctx context.Context, client *clientv3.Client, version, prevRev int64) (int64, int64, error) {
	resp, err := client.Txn(ctx).
		If(clientv3.Compare(clientv3.Version(compactRevKey), "=", version)).
		Then(clientv3.OpPut(compactRevKey, strconv.FormatInt(version+1, 10))).
		Else(clientv3.OpGet(compactRevKey)).
		Commit()
	if err != nil {
		return version, prevRev, fmt.Errorf("recording compaction: %w", err)
	}
	cur := resp.Header.Revision
	if !resp.Succeeded {
		// Another server compacts this interval; follow its key's version.
		if kvs := resp.Responses[0].GetResponseRange().Kvs; len(kvs) > 0 {
			return kvs[0].Version, cur, nil
		}
		return 0, cur, nil
	}
	if prevRev > 0 {
		if _, err := client.Compact(ctx, prevRev); err != nil && !errors.Is(err, rpctypes.ErrCompacted) {
			return version + 1, cur, fmt.Errorf("compacting etcd at revision %d: %w", prevRev, err)
		}
	}
	return version + 1, cur, nil
}
