package etcd

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"time"

	clientv3 "go.etcd.io/etcd/client/v3"
	"go.uber.org/zap"
)

// NewClient connects to an external etcd cluster at endpoints (with tlsCfg
// when not nil) and checks that one member answers a Status call within
// ctx's deadline (or 10 seconds). The caller owns and must Close the
// client.
func NewClient(ctx context.Context, endpoints []string, tlsCfg *tls.Config) (*clientv3.Client, error) {
	if len(endpoints) == 0 {
		return nil, errors.New("connecting to etcd: no endpoints")
	}
	client, err := clientv3.New(clientv3.Config{
		Endpoints:          endpoints,
		TLS:                tlsCfg,
		DialTimeout:        10 * time.Second,
		Logger:             zap.NewNop(),
		MaxCallRecvMsgSize: 1 << 30,
	})
	if err != nil {
		return nil, fmt.Errorf("connecting to etcd at %v: %w", endpoints, err)
	}
	if _, ok := ctx.Deadline(); !ok {
		var cancel context.CancelFunc
		ctx, cancel = context.WithTimeout(ctx, 10*time.Second)
		defer cancel()
	}
	var errs []error
	for _, ep := range endpoints {
		if _, err := client.Status(ctx, ep); err != nil {
			errs = append(errs, fmt.Errorf("%s: %w", ep, err))
			continue
		}
		return client, nil
	}
	client.Close()
	return nil, fmt.Errorf("connecting to etcd: no endpoint answers: %w", errors.Join(errs...))
}
