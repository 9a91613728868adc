package scheduler

import (
	"context"
	"errors"
	"fmt"
	"os"
	"sync/atomic"
	"time"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/util/uuid"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/tools/leaderelection"
	"k8s.io/client-go/tools/leaderelection/resourcelock"
)

// Leader election timings (upstream defaults).
const (
	leaseDuration = 15 * time.Second
	renewDeadline = 10 * time.Second
	retryPeriod   = 2 * time.Second
	leaseNS       = "kube-system"
)

// errLostLease is returned by Run when the lease is lost.
var errLostLease = errors.New("scheduler: lost the leader lease")

// runWithLeaderElection runs the scheduler while holding the Lease
// kube-system/<SchedulerName>; losing it ends Run with errLostLease.
func runWithLeaderElection(ctx context.Context, cfg Config, client kubernetes.Interface) error {
	host, _ := os.Hostname()
	id := host + "_" + string(uuid.NewUUID())
	lock := &resourcelock.LeaseLock{
		LeaseMeta:  metav1.ObjectMeta{Namespace: leaseNS, Name: cfg.SchedulerName},
		Client:     client.CoordinationV1(),
		LockConfig: resourcelock.ResourceLockConfig{Identity: id},
	}
	var runErr error
	var led atomic.Bool
	done := make(chan struct{})
	lctx, cancel := context.WithCancel(ctx)
	defer cancel()
	le, err := leaderelection.NewLeaderElector(leaderelection.LeaderElectionConfig{
		Lock:            lock,
		LeaseDuration:   leaseDuration,
		RenewDeadline:   renewDeadline,
		RetryPeriod:     retryPeriod,
		ReleaseOnCancel: true,
		Name:            cfg.SchedulerName,
		Callbacks: leaderelection.LeaderCallbacks{
			OnStartedLeading: func(c context.Context) {
				defer close(done)
				led.Store(true)
				cfg.Logger.Info("leader lease acquired", "identity", id)
				runErr = run(c, cfg, client)
				cancel()
			},
			OnStoppedLeading: func() {},
		},
	})
	if err != nil {
		return fmt.Errorf("scheduler: leader election: %w", err)
	}
	le.Run(lctx)
	if !led.Load() {
		return nil
	}
	<-done
	if runErr != nil {
		return runErr
	}
	if ctx.Err() == nil {
		return errLostLease
	}
	return nil
}
