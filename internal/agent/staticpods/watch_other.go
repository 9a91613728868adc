//go:build !linux

package staticpods

import "log/slog"

// dirWatcher does nothing outside Linux: the periodic pass notices every
// change, only later.
type dirWatcher struct {
	dir    string
	notify func()
	log    *slog.Logger
}

func (w *dirWatcher) ensure() {}
func (w *dirWatcher) close()  {}
