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
func (l logFlags) logger(w io.Writer) *slog.Logger {
	level := slog.LevelInfo
	if l.verbose {
		level = slog.LevelDebug
	}
	opts := &slog.HandlerOptions{Level: level}
	if l.format == "json" {
		return slog.New(slog.NewJSONHandler(w, opts))
	}
	return slog.New(slog.NewTextHandler(w, opts))
}

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
