// Package schedule parses CronJob schedules and computes their activation
// times.
//
// It accepts what the CronJob API accepts: five fields (minute, hour, day
// of month, month, day of week) of numbers, month and weekday names,
// ranges, lists, steps, "*" and "?"; the descriptors @yearly, @annually,
// @monthly, @weekly, @daily, @midnight and @hourly; "@every <duration>";
// and a "CRON_TZ=<zone> " or "TZ=<zone> " prefix naming the time zone the
// fields are read in.
//
// Semantics are those of standard (Vixie) cron as the upstream controller
// uses it: when both day of month and day of week are restricted, a day
// matching either runs; a wall-clock time skipped by a daylight-saving
// change does not run that day; a wall-clock time that happens twice runs
// twice.
//
// It is pure: no clock, no I/O. The caller passes the current time.
//
// # Usage
//
//	s, err := schedule.Parse("CRON_TZ=Europe/Paris 30 6 * * 1-5")
//	next := s.Next(now) // the first activation strictly after now
package schedule
