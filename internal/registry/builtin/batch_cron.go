package builtin

import (
	"errors"
	"fmt"
	"strconv"
	"strings"
	"time"
)

// cronField is one field of a standard cron schedule: its bounds and the
// names it accepts in place of numbers.
type cronField struct {
	min, max int
	names    map[string]int
}

// cronFields are minute, hour, day of month, month and day of week, the
// five fields of the standard (Vixie) cron syntax CronJob schedules use.
func cronFields() [5]cronField {
	return [5]cronField{
		{min: 0, max: 59},
		{min: 0, max: 23},
		{min: 1, max: 31},
		{min: 1, max: 12, names: map[string]int{
			"jan": 1, "feb": 2, "mar": 3, "apr": 4, "may": 5, "jun": 6,
			"jul": 7, "aug": 8, "sep": 9, "oct": 10, "nov": 11, "dec": 12,
		}},
		{min: 0, max: 6, names: map[string]int{
			"sun": 0, "mon": 1, "tue": 2, "wed": 3, "thu": 4, "fri": 5, "sat": 6,
		}},
	}
}

// parseCronSchedule checks a CronJob schedule: five fields of numbers,
// names, ranges, lists, steps, "*" and "?", or one of the descriptors
// @yearly, @annually, @monthly, @weekly, @daily, @midnight, @hourly and
// "@every <duration>". Errors read as the upstream cron library's do.
func parseCronSchedule(spec string) error {
	spec = strings.TrimSpace(spec)
	if spec == "" {
		return errors.New("empty spec string")
	}
	if strings.HasPrefix(spec, "@") {
		switch spec {
		case "@yearly", "@annually", "@monthly", "@weekly", "@daily", "@midnight", "@hourly":
			return nil
		}
		if rest, ok := strings.CutPrefix(spec, "@every "); ok {
			if _, err := time.ParseDuration(rest); err != nil {
				return fmt.Errorf("failed to parse duration %s: %w", spec, err)
			}
			return nil
		}
		return fmt.Errorf("unrecognized descriptor: %s", spec)
	}
	parts := strings.Fields(spec)
	if len(parts) != 5 {
		return fmt.Errorf("expected exactly 5 fields, found %d: %s", len(parts), parts)
	}
	fields := cronFields()
	for i, p := range parts {
		for _, expr := range strings.Split(p, ",") {
			if err := parseCronRange(expr, fields[i]); err != nil {
				return err
			}
		}
	}
	return nil
}

// parseCronRange checks one list element: "*", "?", "N", "N-M", each
// optionally followed by "/step".
func parseCronRange(expr string, f cronField) error {
	rangeAndStep := strings.Split(expr, "/")
	lowAndHigh := strings.Split(rangeAndStep[0], "-")
	singleDigit := len(lowAndHigh) == 1
	var start, end int
	if lowAndHigh[0] == "*" || lowAndHigh[0] == "?" {
		start, end = f.min, f.max
	} else {
		var err error
		if start, err = parseCronValue(lowAndHigh[0], f.names); err != nil {
			return err
		}
		switch len(lowAndHigh) {
		case 1:
			end = start
		case 2:
			if end, err = parseCronValue(lowAndHigh[1], f.names); err != nil {
				return err
			}
		default:
			return fmt.Errorf("too many hyphens: %s", expr)
		}
	}
	step := 1
	switch len(rangeAndStep) {
	case 1:
	case 2:
		var err error
		if step, err = cronAtoi(rangeAndStep[1]); err != nil {
			return err
		}
		if singleDigit && lowAndHigh[0] != "*" && lowAndHigh[0] != "?" {
			end = f.max // "N/step" means N through the maximum
		}
	default:
		return fmt.Errorf("too many slashes: %s", expr)
	}
	switch {
	case start < f.min:
		return fmt.Errorf("beginning of range (%d) below minimum (%d): %s", start, f.min, expr)
	case end > f.max:
		return fmt.Errorf("end of range (%d) above maximum (%d): %s", end, f.max, expr)
	case start > end:
		return fmt.Errorf("beginning of range (%d) beyond end of range (%d): %s", start, end, expr)
	case step <= 0:
		return fmt.Errorf("step of range should be a positive number: %s", expr)
	}
	return nil
}

func parseCronValue(s string, names map[string]int) (int, error) {
	if n, ok := names[strings.ToLower(s)]; ok {
		return n, nil
	}
	return cronAtoi(s)
}

func cronAtoi(s string) (int, error) {
	n, err := strconv.Atoi(s)
	if err != nil {
		return 0, fmt.Errorf("failed to parse int from %s: %w", s, err)
	}
	if n < 0 {
		return 0, fmt.Errorf("negative number (%d) not allowed: %s", n, s)
	}
	return n, nil
}
