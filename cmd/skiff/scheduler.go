package main

import (
	"flag"
	"fmt"
	"io"

	"k8s.io/client-go/tools/clientcmd"

	"github.com/skiff-dev/skiff/internal/gctune"
	"github.com/skiff-dev/skiff/internal/scheduler"
)

// schedulerFlags are the flags of "skiff scheduler".
type schedulerFlags struct {
	kubeconfig    string
	leaderElect   bool
	percentage    int
	schedulerName string
	log           logFlags
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
	f.log.register(fs)
	if err := fs.Parse(args); err != nil {
		return f, err
	}
	var problems []string
	if f.kubeconfig == "" {
		problems = append(problems, "--kubeconfig is required")
	}
	if f.percentage < 0 || f.percentage > 100 {
		problems = append(problems, fmt.Sprintf("--percentage-of-nodes-to-score must be within 0-100, not %d", f.percentage))
	}
	problems = append(problems, f.log.problems()...)
	return f, checkFlags(fs, stderr, problems)
}

// runScheduler runs "skiff scheduler" and returns the exit code.
func runScheduler(args []string, stderr io.Writer) int {
	f, err := parseSchedulerFlags(args, stderr)
	if err != nil {
		return parseExit(err)
	}
	rc, err := clientcmd.BuildConfigFromFlags("", f.kubeconfig)
	if err != nil {
		fmt.Fprintf(stderr, "skiff scheduler: reading kubeconfig: %v\n", err)
		return exitError
	}
	ctx, stop := signalContext()
	defer stop()
	gctune.Start(ctx)
	err = scheduler.Run(ctx, scheduler.Config{
		RestConfig:               rc,
		Logger:                   f.log.logger(stderr).With("component", "scheduler"),
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
