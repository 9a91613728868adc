package main

import (
	"context"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"os/signal"
	"strings"
	"syscall"

	"k8s.io/client-go/tools/clientcmd"

	"github.com/skiff-dev/skiff/internal/scheduler"
)

// schedulerFlags are the flags of "skiff scheduler".
type schedulerFlags struct {
	kubeconfig    string
	leaderElect   bool
	percentage    int
	schedulerName string
	logFormat     string
	verbose       bool
}

func parseSchedulerFlags(args []string, stderr io.Writer) (schedulerFlags, error) {
	var f schedulerFlags
	fs := flag.NewFlagSet("skiff scheduler", flag.ContinueOnError)
	fs.SetOutput(stderr)
	fs.Usage = func() {
		fmt.Fprint(stderr, "Usage: skiff scheduler --kubeconfig FILE [flags]\n\nRuns the scheduler against an API server.\n\nFlags:\n")
		fs.PrintDefaults()
	}
	fs.StringVar(&f.kubeconfig, "kubeconfig", "", "kubeconfig file of the API server (required)")
	fs.BoolVar(&f.leaderElect, "leader-elect", false, "run only while holding the kube-system Lease named after the scheduler")
	fs.IntVar(&f.percentage, "percentage-of-nodes-to-score", 0, "share of nodes (0-100) to find feasible nodes in before scoring; 0 adapts to the cluster size")
	fs.StringVar(&f.schedulerName, "scheduler-name", scheduler.DefaultSchedulerName, "spec.schedulerName of the pods to schedule")
	fs.StringVar(&f.logFormat, "log-format", "text", "log format: text or json")
	fs.BoolVar(&f.verbose, "v", false, "log debug messages")
	if err := fs.Parse(args); err != nil {
		return f, err
	}
	var problems []string
	if fs.NArg() > 0 {
		problems = append(problems, fmt.Sprintf("unexpected argument %q", fs.Arg(0)))
	}
	if f.kubeconfig == "" {
		problems = append(problems, "--kubeconfig is required")
	}
	if f.percentage < 0 || f.percentage > 100 {
		problems = append(problems, fmt.Sprintf("--percentage-of-nodes-to-score must be within 0-100, not %d", f.percentage))
	}
	if f.logFormat != "text" && f.logFormat != "json" {
		problems = append(problems, fmt.Sprintf("--log-format must be text or json, not %q", f.logFormat))
	}
	if len(problems) > 0 {
		err := fmt.Errorf("skiff scheduler: %s", strings.Join(problems, "; "))
		fmt.Fprintln(stderr, err)
		fmt.Fprintln(stderr)
		fs.Usage()
		return f, err
	}
	return f, nil
}

// runScheduler runs "skiff scheduler" and returns the exit code.
func runScheduler(args []string, stderr io.Writer) int {
	f, err := parseSchedulerFlags(args, stderr)
	if err != nil {
		return parseExit(err)
	}
	level := slog.LevelInfo
	if f.verbose {
		level = slog.LevelDebug
	}
	opts := &slog.HandlerOptions{Level: level}
	var handler slog.Handler = slog.NewTextHandler(stderr, opts)
	if f.logFormat == "json" {
		handler = slog.NewJSONHandler(stderr, opts)
	}
	rc, err := clientcmd.BuildConfigFromFlags("", f.kubeconfig)
	if err != nil {
		fmt.Fprintf(stderr, "skiff scheduler: reading kubeconfig: %v\n", err)
		return exitError
	}
	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGTERM, syscall.SIGINT)
	defer stop()
	go func() {
		<-ctx.Done()
		stop()
	}()
	err = scheduler.Run(ctx, scheduler.Config{
		RestConfig:               rc,
		Logger:                   slog.New(handler).With("component", "scheduler"),
		SchedulerName:            f.schedulerName,
		PercentageOfNodesToScore: int32(f.percentage),
		LeaderElection:           f.leaderElect,
	})
	if err != nil {
		fmt.Fprintf(stderr, "skiff scheduler: %v\n", err)
		return exitError
	}
	return exitOK
}
