package stats

import "time"

// MinRateWindow is the shortest interval a CPU rate is computed over;
// a reading closer than that to the previous one reuses the last rate, so
// that two requests in quick succession do not divide jiffy-sized noise by
// a tiny interval.
const MinRateWindow = time.Second

// cpuRate turns successive readings of a cumulative CPU counter into a
// rate. The zero value has no reading. Not safe for concurrent use.
type cpuRate struct {
	baseTime time.Time // zero: no reading yet
	baseCum  uint64
	rate     *uint64 // nanocores over the last window; nil until computed
}

// observe records a reading of cum at t and returns the current rate (nil
// while unknown). A reading older than the base is ignored; a counter that
// went backwards (a restarted container reusing an ID cannot happen, but a
// reset counter can) restarts the computation.
func (r *cpuRate) observe(t time.Time, cum uint64) *uint64 {
	switch {
	case r.baseTime.IsZero():
		r.baseTime, r.baseCum = t, cum
	case cum < r.baseCum:
		r.baseTime, r.baseCum, r.rate = t, cum, nil
	case t.Sub(r.baseTime) >= MinRateWindow:
		dt := t.Sub(r.baseTime)
		v := uint64(float64(cum-r.baseCum) / dt.Seconds())
		r.rate = &v
		r.baseTime, r.baseCum = t, cum
	}
	return r.rate
}

// seed gives a counter that started at zero at start a base, so that the
// first reading already yields the average since start.
func (r *cpuRate) seed(start time.Time) {
	if r.baseTime.IsZero() && !start.IsZero() {
		r.baseTime, r.baseCum = start, 0
	}
}
