package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"os"
	"os/exec"
	"os/signal"
	"path/filepath"
	"runtime/debug"
	"runtime/pprof"
	"strconv"
	"strings"
	"syscall"
	"text/tabwriter"
	"time"

	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/rest"

	"github.com/skiff-dev/skiff/bench/benchserver"
	"github.com/skiff-dev/skiff/internal/scheduler"
)

// benchSchedulerName is the schedulerName of pods the in-process
// scheduler (-scheduler inproc) places; the server's own scheduler
// leaves them alone.
const benchSchedulerName = "skiff-bench"

// options are the command-line flags.
type options struct {
	bin     string
	nodes   []int
	pods    int
	clients int
	// contentType is "protobuf" or "json".
	contentType string
	kinds       []string
	schedMode   string
	cpuProfile  string
	timeout     time.Duration
	keep        bool
}

func main() {
	var o options
	var nodes, kinds string
	fs := flag.NewFlagSet("scheduler", flag.ExitOnError)
	fs.StringVar(&o.bin, "bin", "", "the skiff binary; empty builds ./cmd/skiff into a temporary directory")
	fs.StringVar(&nodes, "nodes", "100,1000,5000", "comma-separated node counts; one fresh server each")
	fs.IntVar(&o.pods, "pods", 10000, "pods created per run")
	fs.IntVar(&o.clients, "clients", 64, "concurrent clients creating pods and nodes (64, as bench/apiserver's create measurement: enough that the clients' round trips do not leave the cores idle)")
	fs.StringVar(&o.contentType, "content-type", "protobuf", "what the benchmark's clients send and ask for: protobuf (client-go's typed clients' default, as the server's own components speak) or json")
	fs.StringVar(&kinds, "kinds", "plain,constrained", "which pods to run, in order: plain, constrained (hostname spread maxSkew 1 + preferred anti-affinity)")
	fs.StringVar(&o.schedMode, "scheduler", "server", "which scheduler places the pods: server (the one `skiff server` runs) or inproc (scheduler.Run in this process, pods with schedulerName "+benchSchedulerName+")")
	fs.StringVar(&o.cpuProfile, "cpuprofile", "", "write a CPU profile of this process to the file (useful with -scheduler inproc)")
	fs.DurationVar(&o.timeout, "timeout", 5*time.Minute, "give up on a run after this long")
	fs.BoolVar(&o.keep, "keep", false, "keep the temporary directory (data and server logs)")
	fs.Parse(os.Args[1:])
	if o.contentType != "protobuf" && o.contentType != "json" {
		fmt.Fprintf(os.Stderr, "bench/scheduler: bad -content-type %q (protobuf or json)\n", o.contentType)
		os.Exit(2)
	}
	if o.schedMode == "server" && os.Getenv("GOGC") == "" {
		// The instrument's garbage collection is not what is measured:
		// keep it out of the server's way (see the package comment).
		debug.SetGCPercent(400)
	}
	for _, s := range strings.Split(nodes, ",") {
		n, err := strconv.Atoi(strings.TrimSpace(s))
		if err != nil || n < 1 {
			fmt.Fprintf(os.Stderr, "bench/scheduler: bad -nodes %q\n", nodes)
			os.Exit(2)
		}
		o.nodes = append(o.nodes, n)
	}
	for _, k := range strings.Split(kinds, ",") {
		if k = strings.TrimSpace(k); k != "plain" && k != "constrained" {
			fmt.Fprintf(os.Stderr, "bench/scheduler: bad -kinds %q\n", kinds)
			os.Exit(2)
		}
		o.kinds = append(o.kinds, strings.TrimSpace(k))
	}
	if o.schedMode != "server" && o.schedMode != "inproc" {
		fmt.Fprintf(os.Stderr, "bench/scheduler: bad -scheduler %q\n", o.schedMode)
		os.Exit(2)
	}

	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	if err := run(ctx, o, os.Stdout); err != nil {
		fmt.Fprintln(os.Stderr, "bench/scheduler:", err)
		os.Exit(1)
	}
}

// row is one line of the report.
type row struct {
	nodes int
	kind  string
	m     measurement
}

// progress prints what the benchmark is doing, to stderr.
func progress(format string, args ...any) {
	fmt.Fprintf(os.Stderr, "%s "+format+"\n", append([]any{time.Now().Format("15:04:05")}, args...)...)
}

func run(ctx context.Context, o options, out io.Writer) error {
	tmp, err := os.MkdirTemp("", "skiff-bench-sched-")
	if err != nil {
		return fmt.Errorf("creating temporary directory: %w", err)
	}
	if o.keep {
		progress("keeping %s", tmp)
	} else {
		defer os.RemoveAll(tmp)
	}
	if o.bin == "" {
		o.bin = filepath.Join(tmp, "skiff")
		progress("building %s", o.bin)
		build := exec.CommandContext(ctx, "go", "build", "-o", o.bin, "./cmd/skiff")
		build.Stdout, build.Stderr = os.Stderr, os.Stderr
		if err := build.Run(); err != nil {
			return fmt.Errorf("building skiff (run from the module root or pass -bin): %w", err)
		}
	}
	if o.cpuProfile != "" {
		f, err := os.Create(o.cpuProfile)
		if err != nil {
			return fmt.Errorf("creating CPU profile: %w", err)
		}
		defer f.Close()
		if err := pprof.StartCPUProfile(f); err != nil {
			return fmt.Errorf("starting CPU profile: %w", err)
		}
		defer pprof.StopCPUProfile()
	}
	var rows []row
	for _, n := range o.nodes {
		rs, err := runCluster(ctx, o, filepath.Join(tmp, fmt.Sprintf("n%d", n)), n)
		if err != nil {
			return fmt.Errorf("%d nodes: %w", n, err)
		}
		rows = append(rows, rs...)
	}
	report(out, o, rows)
	return nil
}

// runCluster starts a fresh server, registers n nodes and runs each kind
// of pods in its own namespace, one after the other.
func runCluster(ctx context.Context, o options, dir string, n int) ([]row, error) {
	progress("%d nodes: starting the server", n)
	c, err := benchserver.Start(ctx, o.bin, dir)
	if err != nil {
		return nil, err
	}
	defer c.Kill()
	cfg := rest.CopyConfig(c.Config)
	switch o.contentType {
	case "protobuf": // what typed clients pick anyway when nothing is set
		cfg.ContentType = runtime.ContentTypeProtobuf
		cfg.AcceptContentTypes = runtime.ContentTypeProtobuf + "," + runtime.ContentTypeJSON
	case "json":
		cfg.ContentType = runtime.ContentTypeJSON
		cfg.AcceptContentTypes = runtime.ContentTypeJSON
	}
	cs, err := kubernetes.NewForConfig(cfg)
	if err != nil {
		return nil, fmt.Errorf("building clientset: %w", err)
	}
	schedName := scheduler.DefaultSchedulerName
	schedDone := make(chan error, 1)
	if o.schedMode == "inproc" {
		schedName = benchSchedulerName
		sctx, cancel := context.WithCancel(ctx)
		defer func() {
			cancel()
			<-schedDone
		}()
		go func() {
			schedDone <- scheduler.Run(sctx, scheduler.Config{
				RestConfig: rest.CopyConfig(c.Config), SchedulerName: benchSchedulerName,
				Logger: slog.New(slog.DiscardHandler),
			})
		}()
	}

	progress("%d nodes: registering nodes", n)
	start := time.Now()
	marker, err := registerNodes(ctx, cs, o.clients, n)
	if err != nil {
		return nil, err
	}
	progress("%d nodes: registered in %v", n, time.Since(start).Round(time.Millisecond))

	var rows []row
	for _, kind := range o.kinds {
		ns := "bench-" + kind
		if err := benchserver.EnsureNamespace(ctx, cs, ns); err != nil {
			return nil, err
		}
		if err := warmUp(ctx, cs, ns, schedName, marker); err != nil {
			return nil, err
		}
		progress("%d nodes: %d %s pods", n, o.pods, kind)
		m, err := schedulePods(ctx, cs, ns, schedName, kind == "constrained", o.clients, o.pods, o.timeout)
		if err != nil {
			return nil, fmt.Errorf("%s pods: %w", kind, err)
		}
		progress("%d nodes: %s: %.0f pods/s, p50 %v, p99 %v", n, kind, m.rate(), benchserver.Round(percentile(m.latency, 50)), benchserver.Round(percentile(m.latency, 99)))
		rows = append(rows, row{nodes: n, kind: kind, m: m})
	}
	select {
	case err := <-schedDone:
		return nil, fmt.Errorf("in-process scheduler stopped early: %v", err)
	default:
	}
	if err := c.Stop(); err != nil && !errors.Is(err, context.Canceled) {
		return nil, err
	}
	return rows, nil
}

// report prints the machine, the command and the results table.
func report(w io.Writer, o options, rows []row) {
	fmt.Fprintf(w, "date:      %s\n", time.Now().UTC().Format(time.RFC3339))
	fmt.Fprintf(w, "machine:   %s\n", benchserver.Machine())
	fmt.Fprintf(w, "command:   go run ./bench/scheduler %s\n", strings.Join(os.Args[1:], " "))
	fmt.Fprintf(w, "scheduler: %s, %d creating clients (%s)\n\n", o.schedMode, o.clients, o.contentType)

	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
	fmt.Fprintln(tw, "nodes\tpods\tkind\tcreates/s\tscheduled/s\tp50\tp99\tmax\tnodes used, pods/node\ttarget\t")
	for _, r := range rows {
		target := ""
		if r.nodes == 5000 {
			want := 1000.0
			if r.kind == "constrained" {
				want = 300
			}
			target = fmt.Sprintf(">= %.0f/s: %s", want, benchserver.Verdict(r.m.rate() >= want))
		}
		fmt.Fprintf(tw, "%d\t%d\t%s\t%.0f\t%.0f\t%v\t%v\t%v\t%d, %d-%d\t%s\t\n",
			r.nodes, len(r.m.latency), r.kind, float64(len(r.m.latency))/r.m.created.Seconds(), r.m.rate(),
			benchserver.Round(percentile(r.m.latency, 50)), benchserver.Round(percentile(r.m.latency, 99)), benchserver.Round(percentile(r.m.latency, 100)),
			r.m.nodes, r.m.minPer, r.m.maxPer, target)
	}
	tw.Flush()
}
