package etcd

import (
	"context"
	"log/slog"
	"sync/atomic"

	"go.uber.org/zap/zapcore"
)

// slogCore is a zapcore.Core that forwards etcd's warnings (at Debug) and
// errors (at Info) to a *slog.Logger. Everything below warn is dropped:
// etcd is chatty at info. Once quiet is set (the member is shutting down
// and complains about closed listeners) nothing is forwarded.
type slogCore struct {
	logger *slog.Logger
	attrs  []any        // from With, already converted
	quiet  *atomic.Bool // shared by every core derived with With
}

var _ zapcore.Core = (*slogCore)(nil)

// newSlogCore returns a core writing to logger, or discarding when nil.
// Setting quiet (may be nil) silences it.
func newSlogCore(logger *slog.Logger, quiet *atomic.Bool) zapcore.Core {
	if logger == nil {
		return zapcore.NewNopCore()
	}
	if quiet == nil {
		quiet = new(atomic.Bool)
	}
	return &slogCore{logger: logger.With("component", "etcd"), quiet: quiet}
}

func (c *slogCore) Enabled(l zapcore.Level) bool { return l >= zapcore.WarnLevel && !c.quiet.Load() }

func (c *slogCore) With(fields []zapcore.Field) zapcore.Core {
	return &slogCore{logger: c.logger, attrs: append(append([]any(nil), c.attrs...), fieldAttrs(fields)...), quiet: c.quiet}
}

func (c *slogCore) Check(e zapcore.Entry, ce *zapcore.CheckedEntry) *zapcore.CheckedEntry {
	if c.Enabled(e.Level) {
		return ce.AddCore(e, c)
	}
	return ce
}

func (c *slogCore) Write(e zapcore.Entry, fields []zapcore.Field) error {
	level := slog.LevelDebug
	if e.Level >= zapcore.ErrorLevel {
		level = slog.LevelInfo
	}
	args := append(append([]any(nil), c.attrs...), fieldAttrs(fields)...)
	c.logger.Log(context.Background(), level, e.Message, args...)
	return nil
}

func (c *slogCore) Sync() error { return nil }

// fieldAttrs converts zap fields into slog key/value pairs.
func fieldAttrs(fields []zapcore.Field) []any {
	if len(fields) == 0 {
		return nil
	}
	enc := zapcore.NewMapObjectEncoder()
	for _, f := range fields {
		f.AddTo(enc)
	}
	args := make([]any, 0, 2*len(enc.Fields))
	for k, v := range enc.Fields {
		args = append(args, k, v)
	}
	return args
}
