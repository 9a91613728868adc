package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"os/signal"
	"strings"
	"syscall"

	"k8s.io/klog/v2"
)

// logFlags are the logging flags every long-running command takes.
type logFlags struct {
	format  string
	verbose bool
}

func (l *logFlags) register(fs *flag.FlagSet) {
	fs.StringVar(&l.format, "log-format", "text", "log format: text or json")
	fs.BoolVar(&l.verbose, "v", false, "log debug messages")
}

// problems lists what is wrong with the parsed values.
func (l logFlags) problems() []string {
	if l.format != "text" && l.format != "json" {
		return []string{fmt.Sprintf("--log-format must be text or json, not %q", l.format)}
	}
	return nil
}

// logger builds the structured logger the flags ask for, writing to w.
// It also becomes the sink of klog, which client-go libraries (leader
// election, informers) log through: the process has one log, and their
// chatter goes out at Debug. This is the one process-wide setting the
// binary makes, here in main where it belongs.
func (l logFlags) logger(w io.Writer) *slog.Logger {
	level := slog.LevelInfo
	if l.verbose {
		level = slog.LevelDebug
	}
	opts := &slog.HandlerOptions{Level: level}
	var h slog.Handler = slog.NewTextHandler(w, opts)
	if l.format == "json" {
		h = slog.NewJSONHandler(w, opts)
	}
	klog.SetSlogLogger(slog.New(debugOnly{h.WithAttrs([]slog.Attr{slog.String("source", "client-go")})}))
	return slog.New(h)
}

// debugOnly lowers every record below Warn to Debug.
type debugOnly struct{ slog.Handler }

func (d debugOnly) Enabled(ctx context.Context, level slog.Level) bool {
	if level < slog.LevelWarn {
		level = slog.LevelDebug
	}
	return d.Handler.Enabled(ctx, level)
}

func (d debugOnly) Handle(ctx context.Context, r slog.Record) error {
	if r.Level < slog.LevelWarn {
		r.Level = slog.LevelDebug
	}
	return d.Handler.Handle(ctx, r)
}

func (d debugOnly) WithAttrs(attrs []slog.Attr) slog.Handler {
	return debugOnly{d.Handler.WithAttrs(attrs)}
}

func (d debugOnly) WithGroup(name string) slog.Handler { return debugOnly{d.Handler.WithGroup(name)} }

// checkFlags turns the problems found after fs was parsed (unexpected
// arguments are added here) into one error, printed with the usage, named
// after the command ("skiff server: --data-dir is required"). It returns
// nil when there are none.
func checkFlags(fs *flag.FlagSet, stderr io.Writer, problems []string) error {
	if fs.NArg() > 0 {
		problems = append([]string{fmt.Sprintf("unexpected argument %q", fs.Arg(0))}, problems...)
	}
	if len(problems) == 0 {
		return nil
	}
	err := errors.New(fs.Name() + ": " + strings.Join(problems, "; "))
	fmt.Fprintln(stderr, err)
	fmt.Fprintln(stderr)
	fs.Usage()
	return err
}

// signalContext is cancelled by SIGTERM or SIGINT. After the first signal
// the default handling is restored, so a second one kills the process at
// once.
func signalContext() (context.Context, context.CancelFunc) {
	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGTERM, syscall.SIGINT)
	go func() {
		<-ctx.Done()
		stop()
	}()
	return ctx, stop
}
