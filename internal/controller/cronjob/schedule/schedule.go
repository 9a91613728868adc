package schedule

import (
	"errors"
	"fmt"
	"strconv"
	"strings"
	"time"
)

// Schedule is a parsed schedule. The zero value is not useful; use Parse.
// A Schedule is immutable and safe for concurrent use.
type Schedule struct {
	// Bit i of each field is set when value i matches.
	minute, hour, dom, month, dow uint64
	// domAny and dowAny record a day field written as "*" or "?" (also
	// with a step): then both day fields must match, otherwise either.
	domAny, dowAny bool
	// every is the delay of an "@every" schedule (0 otherwise).
	every time.Duration
	// loc is the zone of a CRON_TZ=/TZ= prefix; nil means the zone of the
	// time passed to Next.
	loc *time.Location
}

type field struct {
	min, max int
	names    map[string]int
}

var (
	minuteField = field{min: 0, max: 59}
	hourField   = field{min: 0, max: 23}
	domField    = field{min: 1, max: 31}
	monthField  = field{min: 1, max: 12, names: map[string]int{
		"jan": 1, "feb": 2, "mar": 3, "apr": 4, "may": 5, "jun": 6,
		"jul": 7, "aug": 8, "sep": 9, "oct": 10, "nov": 11, "dec": 12,
	}}
	dowField = field{min: 0, max: 6, names: map[string]int{
		"sun": 0, "mon": 1, "tue": 2, "wed": 3, "thu": 4, "fri": 5, "sat": 6,
	}}
)

// Parse parses spec. Errors name the offending part.
func Parse(spec string) (*Schedule, error) {
	spec = strings.TrimSpace(spec)
	var loc *time.Location
	for _, prefix := range []string{"CRON_TZ=", "TZ="} {
		rest, ok := strings.CutPrefix(spec, prefix)
		if !ok {
			continue
		}
		name, fields, ok := strings.Cut(rest, " ")
		if !ok {
			return nil, fmt.Errorf("schedule %q: missing fields after the time zone", spec)
		}
		l, err := time.LoadLocation(name)
		if err != nil {
			return nil, fmt.Errorf("schedule %q: loading time zone %q: %w", spec, name, err)
		}
		loc, spec = l, strings.TrimSpace(fields)
		break
	}
	if spec == "" {
		return nil, errors.New("empty schedule")
	}
	if strings.HasPrefix(spec, "@") {
		s, err := parseDescriptor(spec)
		if err != nil {
			return nil, err
		}
		s.loc = loc
		return s, nil
	}
	parts := strings.Fields(spec)
	if len(parts) != 5 {
		return nil, fmt.Errorf("schedule %q: expected exactly 5 fields, found %d", spec, len(parts))
	}
	s := &Schedule{loc: loc}
	var err error
	var any bool
	if s.minute, _, err = parseField(parts[0], minuteField); err != nil {
		return nil, fmt.Errorf("minute: %w", err)
	}
	if s.hour, _, err = parseField(parts[1], hourField); err != nil {
		return nil, fmt.Errorf("hour: %w", err)
	}
	if s.dom, s.domAny, err = parseField(parts[2], domField); err != nil {
		return nil, fmt.Errorf("day of month: %w", err)
	}
	if s.month, _, err = parseField(parts[3], monthField); err != nil {
		return nil, fmt.Errorf("month: %w", err)
	}
	if s.dow, any, err = parseField(parts[4], dowField); err != nil {
		return nil, fmt.Errorf("day of week: %w", err)
	}
	s.dowAny = any
	return s, nil
}

func parseDescriptor(spec string) (*Schedule, error) {
	all := func(f field) uint64 { return bits(f.min, f.max, 1) }
	switch spec {
	case "@yearly", "@annually":
		return &Schedule{minute: 1, hour: 1, dom: 1 << 1, month: 1 << 1, dow: all(dowField), dowAny: true}, nil
	case "@monthly":
		return &Schedule{minute: 1, hour: 1, dom: 1 << 1, month: all(monthField), dow: all(dowField), dowAny: true}, nil
	case "@weekly":
		return &Schedule{minute: 1, hour: 1, dom: all(domField), domAny: true, month: all(monthField), dow: 1}, nil
	case "@daily", "@midnight":
		return &Schedule{minute: 1, hour: 1, dom: all(domField), domAny: true, month: all(monthField), dow: all(dowField), dowAny: true}, nil
	case "@hourly":
		return &Schedule{minute: 1, hour: all(hourField), dom: all(domField), domAny: true, month: all(monthField), dow: all(dowField), dowAny: true}, nil
	}
	if rest, ok := strings.CutPrefix(spec, "@every "); ok {
		d, err := time.ParseDuration(strings.TrimSpace(rest))
		if err != nil {
			return nil, fmt.Errorf("schedule %q: %w", spec, err)
		}
		// Whole seconds, at least one, as upstream's cron library does.
		d = max(d.Truncate(time.Second), time.Second)
		return &Schedule{every: d}, nil
	}
	return nil, fmt.Errorf("unrecognized descriptor %q", spec)
}

// parseField parses a comma-separated list; any reports that the first
// item is "*" or "?" (with or without a step).
func parseField(expr string, f field) (set uint64, any bool, err error) {
	for i, item := range strings.Split(expr, ",") {
		b, star, err := parseItem(item, f)
		if err != nil {
			return 0, false, err
		}
		if i == 0 {
			any = star
		}
		set |= b
	}
	return set, any, nil
}

// parseItem parses "*", "?", "N", "N-M", each optionally with "/step"
// ("N/step" runs from N to the field's maximum).
func parseItem(item string, f field) (uint64, bool, error) {
	rng, stepStr, hasStep := strings.Cut(item, "/")
	if strings.Contains(stepStr, "/") {
		return 0, false, fmt.Errorf("too many slashes in %q", item)
	}
	star := rng == "*" || rng == "?"
	var lo, hi int
	switch {
	case star:
		lo, hi = f.min, f.max
	default:
		first, last, isRange := strings.Cut(rng, "-")
		var err error
		if lo, err = value(first, f); err != nil {
			return 0, false, err
		}
		hi = lo
		if isRange {
			if strings.Contains(last, "-") {
				return 0, false, fmt.Errorf("too many hyphens in %q", item)
			}
			if hi, err = value(last, f); err != nil {
				return 0, false, err
			}
		} else if hasStep {
			hi = f.max
		}
	}
	step := 1
	if hasStep {
		var err error
		if step, err = strconv.Atoi(stepStr); err != nil || step <= 0 {
			return 0, false, fmt.Errorf("step of %q must be a positive number", item)
		}
	}
	switch {
	case lo < f.min:
		return 0, false, fmt.Errorf("%q: %d is below the minimum %d", item, lo, f.min)
	case hi > f.max:
		return 0, false, fmt.Errorf("%q: %d is above the maximum %d", item, hi, f.max)
	case lo > hi:
		return 0, false, fmt.Errorf("%q: range starts after it ends", item)
	}
	return bits(lo, hi, step), star, nil
}

func value(s string, f field) (int, error) {
	if n, ok := f.names[strings.ToLower(s)]; ok {
		return n, nil
	}
	n, err := strconv.Atoi(s)
	if err != nil || n < 0 {
		return 0, fmt.Errorf("%q is not a valid value", s)
	}
	return n, nil
}

func bits(lo, hi, step int) uint64 {
	var b uint64
	for i := lo; i <= hi; i += step {
		b |= 1 << uint(i)
	}
	return b
}

// searchYears bounds the search for an activation (a schedule such as
// "0 0 30 2 *" never runs).
const searchYears = 5

// Next returns the first activation strictly after t, in the schedule's
// zone (t's own zone without a prefix), or the zero time if there is none
// within five years.
func (s *Schedule) Next(t time.Time) time.Time {
	if s.every > 0 {
		return t.Add(s.every - time.Duration(t.Nanosecond())).Truncate(time.Second)
	}
	if s.loc != nil {
		t = t.In(s.loc)
	}
	loc := t.Location()
	// Activations are on whole minutes: start at the next one.
	t = t.Truncate(time.Minute).Add(time.Minute)
	limit := t.Year() + searchYears

	// Each step moves t to the start of the next candidate of the largest
	// unit that does not match (month, day, hour, minute) and checks again.
	for t.Year() <= limit {
		var next time.Time
		switch {
		case s.month&(1<<uint(t.Month())) == 0:
			next = time.Date(t.Year(), t.Month()+1, 1, 0, 0, 0, 0, loc)
		case !s.dayMatches(t):
			next = nextDay(t)
		case s.hour&(1<<uint(t.Hour())) == 0:
			// Absolute arithmetic, so that an hour that happens twice
			// (daylight saving ends) is left forwards.
			next = t.Add(time.Hour - time.Duration(t.Minute())*time.Minute - time.Duration(t.Second())*time.Second)
			if next.Day() != t.Day() {
				next = nextDay(t)
			}
		case s.minute&(1<<uint(t.Minute())) == 0:
			next = t.Add(time.Minute)
		default:
			return t
		}
		// time.Date may resolve a wall-clock time skipped by a zone change
		// backwards; never let the search go back.
		if !next.After(t) {
			next = t.Add(time.Minute)
		}
		t = next
	}
	return time.Time{}
}

// nextDay is midnight of the day after t (or, where midnight does not
// exist because of a daylight-saving change, the first instant of that
// day).
func nextDay(t time.Time) time.Time {
	d := time.Date(t.Year(), t.Month(), t.Day()+1, 0, 0, 0, 0, t.Location())
	if d.Hour() != 0 { // midnight skipped: time.Date moved forward into the day
		d = d.Add(-time.Duration(d.Minute()) * time.Minute)
	}
	return d
}

func (s *Schedule) dayMatches(t time.Time) bool {
	dom := s.dom&(1<<uint(t.Day())) != 0
	dow := s.dow&(1<<uint(t.Weekday())) != 0
	if s.domAny || s.dowAny {
		return dom && dow
	}
	return dom || dow
}
