package pods

import "time"

// Container restart back-off, as upstream: the first restart is immediate,
// then 10s, doubling up to 5 minutes; a container that ran for 10 minutes,
// or whose previous exit is more than 10 minutes old, starts over at 10s.
const (
	backoffInitial = 10 * time.Second
	backoffMax     = 5 * time.Minute
	backoffReset   = 2 * backoffMax
)

// backoff is one container's restart back-off. The zero value (or nil) has
// never restarted.
type backoff struct {
	delay time.Duration // current delay, 0 before the first restart
	last  time.Time     // the exit the delay was computed for
}

// wait returns how much longer a container that exited at finished must
// wait before its restart at now (0: restart now).
func (b *backoff) wait(finished, now time.Time) time.Duration {
	if b == nil || b.delay == 0 || finished.Sub(b.last) > backoffReset {
		return 0
	}
	if left := b.delay - now.Sub(finished); left > 0 {
		return left
	}
	return 0
}

// restarted records a restart after the exit at finished of a container
// that had run for ran, and returns the delay the next restart will wait.
func (b *backoff) restarted(finished time.Time, ran time.Duration) {
	switch {
	case b.delay == 0 || finished.Sub(b.last) > backoffReset || ran >= backoffReset:
		b.delay = backoffInitial
	default:
		b.delay = min(2*b.delay, backoffMax)
	}
	b.last = finished
}
