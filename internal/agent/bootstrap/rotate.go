package bootstrap

import (
	"bytes"
	"context"
	"fmt"
	"time"
)

// Retry delays after a failed renewal.
const (
	retryMin = time.Second
	retryMax = 5 * time.Minute
)

// Rotate runs until ctx ends, renewing the node certificate when 80% of its
// life has passed (a new key and a new CSR authenticated with the current
// certificate; with the token when the certificate expired meanwhile) and
// rewriting the kubeconfig; onRotate (may be nil) is called after each new
// kubeconfig is in place, from Rotate's goroutine. Failed renewals are
// logged and retried with backoff (1s doubling up to 5m). It returns nil
// when ctx ends, and an error only when there is no kubeconfig to renew
// (call Kubeconfig first). Run one Rotate per Dir, not concurrently with
// Kubeconfig.
func Rotate(ctx context.Context, cfg Config, onRotate func()) error {
	log := cfg.logger()
	path := cfg.path(KubeconfigFile)
	retry := retryMin
	for {
		cur, err := loadCurrent(path, cfg.NodeName, cfg.CAHash)
		if err != nil {
			return fmt.Errorf("bootstrap: rotating: %w", err)
		}
		wait := renewTime(cur.cert).Sub(cfg.now())
		log.Debug("node certificate renewal scheduled", "at", renewTime(cur.cert), "in", wait)
		if !sleep(ctx, wait) {
			return nil
		}
		if _, err := Kubeconfig(ctx, cfg); err != nil {
			if ctx.Err() != nil {
				return nil
			}
			log.Info("node certificate renewal failed; retrying", "in", retry, "err", err)
			if !sleep(ctx, retry) {
				return nil
			}
			retry = min(2*retry, retryMax)
			continue
		}
		retry = retryMin
		next, err := loadCurrent(path, cfg.NodeName, cfg.CAHash)
		if err != nil {
			return fmt.Errorf("bootstrap: rotating: %w", err)
		}
		if !bytes.Equal(next.cert.Raw, cur.cert.Raw) {
			log.Info("node certificate rotated", "notAfter", next.cert.NotAfter)
			if onRotate != nil {
				onRotate()
			}
		}
	}
}

// sleep waits d (nothing when d <= 0); false means ctx ended first.
func sleep(ctx context.Context, d time.Duration) bool {
	if d <= 0 {
		return ctx.Err() == nil
	}
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-ctx.Done():
		return false
	case <-t.C:
		return true
	}
}
