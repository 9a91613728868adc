package etcd

import (
	"bytes"
	"log/slog"
	"strings"
	"sync/atomic"
	"testing"

	"github.com/google/go-cmp/cmp"
	"go.uber.org/zap"
)

func TestSlogCore(t *testing.T) {
	for _, tc := range []struct {
		name  string
		log   func(*zap.Logger)
		quiet bool
		want  []string
	}{
		{"info dropped", func(l *zap.Logger) { l.Info("chatty") }, false, nil},
		{"warn at debug", func(l *zap.Logger) { l.Warn("careful", zap.String("k", "v")) }, false, []string{"level=DEBUG msg=careful component=etcd k=v"}},
		{"error at info", func(l *zap.Logger) { l.With(zap.Int("n", 1)).Error("broken") }, false, []string{"level=INFO msg=broken component=etcd n=1"}},
		{"quiet", func(l *zap.Logger) { l.Error("closing") }, true, nil},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var buf bytes.Buffer
			h := slog.NewTextHandler(&buf, &slog.HandlerOptions{
				Level: slog.LevelDebug,
				ReplaceAttr: func(_ []string, a slog.Attr) slog.Attr {
					if a.Key == slog.TimeKey {
						return slog.Attr{}
					}
					return a
				},
			})
			quiet := new(atomic.Bool)
			quiet.Store(tc.quiet)
			tc.log(zap.New(newSlogCore(slog.New(h), quiet)))
			var got []string
			for _, line := range strings.Split(strings.TrimSpace(buf.String()), "\n") {
				if line != "" {
					got = append(got, line)
				}
			}
			if diff := cmp.Diff(tc.want, got); diff != "" {
				t.Errorf("log lines (-want +got):\n%s", diff)
			}
		})
	}
}
