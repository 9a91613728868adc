package main

import (
	"context"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"os"
	"os/exec"
	"os/signal"
	"path/filepath"
	"strings"
	"syscall"
	"text/tabwriter"
	"time"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/rest"

	"github.com/skiff-dev/skiff/bench/benchserver"
	"github.com/skiff-dev/skiff/internal/etcd"
)

// options are the command-line flags.
type options struct {
	bin      string
	duration time.Duration
	pods     int
	listRuns int
	watchers int
	keep     bool
	// onlyList skips the start-up, create, put and watch measurements;
	// backgroundPods are then created first (in another namespace) so that
	// the server's heap resembles a full run's.
	onlyList       bool
	heapProfile    string
	backgroundPods int
}

func main() {
	var o options
	fs := flag.NewFlagSet("apiserver", flag.ExitOnError)
	fs.StringVar(&o.bin, "bin", "", "the skiff binary; empty builds ./cmd/skiff into a temporary directory")
	fs.DurationVar(&o.duration, "duration", 5*time.Second, "how long each create and put measurement runs")
	fs.IntVar(&o.pods, "pods", 10000, "pods in the listed namespace")
	fs.IntVar(&o.listRuns, "list-runs", 20, "LIST requests timed per kind")
	fs.IntVar(&o.watchers, "watchers", 1000, "concurrent watchers")
	fs.BoolVar(&o.keep, "keep", false, "keep the temporary directory (data and server logs)")
	fs.StringVar(&o.heapProfile, "heap-profile", "", "save the load server's heap profile (/debug/pprof/heap) at the end of the load to this file")
	fs.BoolVar(&o.onlyList, "only-list", false, "measure only the LISTs (after creating -background-pods pods elsewhere)")
	fs.IntVar(&o.backgroundPods, "background-pods", 35000, "with -only-list: pods created in another namespace first, about as many as a full run's create measurements leave")
	fs.Parse(os.Args[1:])

	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	if err := run(ctx, o, os.Stdout); err != nil {
		fmt.Fprintln(os.Stderr, "bench/apiserver:", err)
		os.Exit(1)
	}
}

// results collects every measurement for the report.
type results struct {
	readyFresh, readyRestart time.Duration
	// selfFresh and selfRestart are what the server printed ("ready in").
	selfFresh, selfRestart    string
	idleRSS, loadRSS, peakRSS int64 // KiB
	// idleAnon and idleFile split the highest idle reading (KiB).
	idleAnon, idleFile int64
	podSize            int
	podKey             string
	creates            []rateRow
	// floor and floorPB are the creates/s at floorClients clients against
	// a server that only stores each body (see floorRate).
	floor, floorPB            float64
	listCache, listConsistent []time.Duration
	listProtobuf              []time.Duration
	listBytes, listPBBytes    int
	watch                     []time.Duration
}

type rateRow struct {
	clients int
	// creates are JSON bodies, createsPB protobuf (client-go's typed
	// clients' default).
	creates, createsPB, puts float64
	// cpu and cpuPB are the server's CPU time (user + system) per create.
	cpu, cpuPB time.Duration
}

// progress prints what the benchmark is doing, to stderr.
func progress(format string, args ...any) {
	fmt.Fprintf(os.Stderr, "%s "+format+"\n", append([]any{time.Now().Format("15:04:05")}, args...)...)
}

func run(ctx context.Context, o options, out io.Writer) error {
	tmp, err := os.MkdirTemp("", "skiff-bench-")
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

	var r results
	if !o.onlyList {
		if err := measureStartup(ctx, o, filepath.Join(tmp, "startup"), &r); err != nil {
			return err
		}
	}
	if err := measureLoad(ctx, o, filepath.Join(tmp, "load"), &r); err != nil {
		return err
	}
	report(out, o, &r)
	return nil
}

// floorClients is the concurrency of the floor measurement: the target's.
const floorClients = 64

// idleSamples is how many times (a second apart) the idle RSS is read.
const idleSamples = 10

// measureStartup starts a server with embedded etcd on a fresh directory
// and records the time to ready, restarts it on the same directory and
// records the time to ready again (both on a warm disk), then starts one
// more on another fresh directory from a binary read from disk and
// records its idle RSS.
func measureStartup(ctx context.Context, o options, dir string, r *results) error {
	timed := []struct {
		what       string
		ready      *time.Duration
		serverSaid *string
	}{
		{"fresh data dir", &r.readyFresh, &r.selfFresh},
		{"restart on the same data dir", &r.readyRestart, &r.selfRestart},
	}
	for _, t := range timed {
		progress("start-up: " + t.what)
		c, err := benchserver.Start(ctx, o.bin, dir)
		if err != nil {
			return fmt.Errorf("start-up, %s: %w", t.what, err)
		}
		*t.ready, *t.serverSaid = c.Ready, c.ReportedReady()
		if err := c.Stop(); err != nil {
			return fmt.Errorf("start-up, %s: stopping: %w", t.what, err)
		}
	}

	progress("start-up: idle memory (fresh data dir, binary read from disk)")
	// From disk, as after a reboot: see EvictFromPageCache. Not for the
	// timed starts above: the ready target is for a warm disk.
	if err := benchserver.EvictFromPageCache(o.bin); err != nil {
		return fmt.Errorf("idle: %w", err)
	}
	c, err := benchserver.Start(ctx, o.bin, dir+"-idle")
	if err != nil {
		return fmt.Errorf("idle: %w", err)
	}
	// Let start-up work (bootstrap, first compaction, GC) settle, then read
	// the idle memory once a second for idleSamples seconds and keep the
	// highest: an idle server still renews its leaders' leases and
	// collects garbage, and a single reading can fall in a trough.
	select {
	case <-time.After(3 * time.Second):
	case <-ctx.Done():
		c.Kill()
		return ctx.Err()
	}
	for i := range idleSamples {
		if i > 0 {
			select {
			case <-time.After(time.Second):
			case <-ctx.Done():
				c.Kill()
				return ctx.Err()
			}
		}
		rss, _, err := c.Memory()
		if err != nil {
			c.Kill()
			return err
		}
		if rss > r.idleRSS {
			r.idleRSS = rss
			if r.idleAnon, r.idleFile, err = c.MemoryParts(); err != nil {
				c.Kill()
				return err
			}
		}
	}
	return c.Stop()
}

// measureLoad starts etcd in this process and a server using it, and runs
// the create, put, list and watch measurements.
func measureLoad(ctx context.Context, o options, dir string, r *results) error {
	progress("load: starting etcd and the server")
	e, err := etcd.StartEmbedded(ctx, etcd.EmbeddedConfig{DataDir: filepath.Join(dir, "etcd"), Logger: slog.New(slog.DiscardHandler)})
	if err != nil {
		return fmt.Errorf("starting etcd: %w", err)
	}
	defer e.Close()
	// The raw puts go through gRPC on loopback, as the load server's own
	// requests do (e.Client() calls the member in-process, which no
	// server started with --etcd-servers can).
	grpcClient, err := etcd.NewClient(ctx, e.Endpoints(), nil)
	if err != nil {
		return fmt.Errorf("load: %w", err)
	}
	defer grpcClient.Close()
	c, err := benchserver.Start(ctx, o.bin, filepath.Join(dir, "server"), "--etcd-servers", strings.Join(e.Endpoints(), ","),
		// The API server alone: a scheduler would add a status write and
		// an event for every pod created here (there are no nodes).
		"--disable-scheduler", "--disable-controller-manager")
	if err != nil {
		return fmt.Errorf("load: %w", err)
	}
	defer c.Kill()
	pid, err := serverPID(filepath.Join(dir, "server"))
	if err != nil {
		return fmt.Errorf("load: %w", err)
	}
	// JSON set explicitly: client-go's typed clients default to protobuf
	// (since v0.32) when the config names no content type.
	jsonConfig := rest.CopyConfig(c.Config)
	jsonConfig.ContentType = contentJSON
	jsonConfig.AcceptContentTypes = contentJSON
	cs, err := kubernetes.NewForConfig(jsonConfig)
	if err != nil {
		return fmt.Errorf("building clientset: %w", err)
	}
	pbConfig := rest.CopyConfig(c.Config)
	pbConfig.ContentType = contentProtobuf
	pbConfig.AcceptContentTypes = contentProtobuf + "," + contentJSON
	csPB, err := kubernetes.NewForConfig(pbConfig)
	if err != nil {
		return fmt.Errorf("building protobuf clientset: %w", err)
	}
	for _, ns := range []string{"bench", "bench-list", "bench-watch"} {
		if err := benchserver.EnsureNamespace(ctx, cs, ns); err != nil {
			return err
		}
	}
	if o.onlyList {
		progress("load: creating %d background pods", o.backgroundPods)
		if err := fillPods(ctx, cs, "bench", o.backgroundPods); err != nil {
			return err
		}
		if err := measureLists(ctx, o, cs, r); err != nil {
			return err
		}
		if r.loadRSS, r.peakRSS, err = c.Memory(); err != nil {
			return err
		}
		if err := saveHeapProfile(ctx, cs, o.heapProfile); err != nil {
			return err
		}
		return c.Stop()
	}
	// One pod first, to learn its stored size.
	if _, err := cs.CoreV1().Pods("bench").Create(ctx, benchPod("probe"), metav1.CreateOptions{}); err != nil {
		return fmt.Errorf("creating the probe pod: %w", err)
	}
	if r.podSize, r.podKey, err = storedPodSize(ctx, e.Client(), "bench"); err != nil {
		return err
	}
	for _, clients := range []int{1, 8, 64} {
		progress("load: pod creates with %d clients", clients)
		creates, cpu, err := createRate(ctx, cs, pid, "bench", "json", clients, o.duration)
		if err != nil {
			return err
		}
		progress("load: pod creates with %d clients, protobuf", clients)
		createsPB, cpuPB, err := createRate(ctx, csPB, pid, "bench", "pb", clients, o.duration)
		if err != nil {
			return err
		}
		progress("load: etcd puts of %d bytes with %d clients", r.podSize, clients)
		puts, err := putRate(ctx, grpcClient, r.podSize, clients, o.duration)
		if err != nil {
			return err
		}
		r.creates = append(r.creates, rateRow{clients: clients, creates: creates, createsPB: createsPB, puts: puts, cpu: cpu, cpuPB: cpuPB})
	}
	progress("load: the floor, creates with %d clients against a server that only stores them", floorClients)
	if r.floor, err = floorRate(ctx, grpcClient, r.podSize, floorClients, contentJSON, o.duration); err != nil {
		return err
	}
	if r.floorPB, err = floorRate(ctx, grpcClient, r.podSize, floorClients, contentProtobuf, o.duration); err != nil {
		return err
	}

	if err := measureLists(ctx, o, cs, r); err != nil {
		return err
	}

	progress("load: %d watchers", o.watchers)
	if r.watch, err = watchFanout(ctx, cs, "bench-watch", o.watchers); err != nil {
		return err
	}
	if r.loadRSS, r.peakRSS, err = c.Memory(); err != nil {
		return err
	}
	if err := saveHeapProfile(ctx, cs, o.heapProfile); err != nil {
		return err
	}
	return c.Stop()
}

// saveHeapProfile writes the server's heap profile to file ("" saves
// none).
func saveHeapProfile(ctx context.Context, cs *kubernetes.Clientset, file string) error {
	if file == "" {
		return nil
	}
	b, err := cs.CoreV1().RESTClient().Get().AbsPath("/debug/pprof/heap").DoRaw(ctx)
	if err != nil {
		return fmt.Errorf("fetching the heap profile: %w", err)
	}
	if err := os.WriteFile(file, b, 0o644); err != nil {
		return fmt.Errorf("saving the heap profile: %w", err)
	}
	progress("load: heap profile saved to %s", file)
	return nil
}

// measureLists fills a namespace with o.pods pods and times LISTs of it.
func measureLists(ctx context.Context, o options, cs *kubernetes.Clientset, r *results) error {
	progress("load: creating %d pods to list", o.pods)
	if err := fillPods(ctx, cs, "bench-list", o.pods); err != nil {
		return err
	}
	progress("load: listing %d pods", o.pods)
	// The consistent read first: a resourceVersion=0 list may be served
	// from a cache still catching up with the creates just made.
	var err error
	if r.listConsistent, _, err = listLatencies(ctx, cs, "bench-list", "", contentJSON, o.listRuns, o.pods); err != nil {
		return err
	}
	if r.listCache, r.listBytes, err = listLatencies(ctx, cs, "bench-list", "0", contentJSON, o.listRuns, o.pods); err != nil {
		return err
	}
	if r.listProtobuf, r.listPBBytes, err = listLatencies(ctx, cs, "bench-list", "0", contentProtobuf, o.listRuns, o.pods); err != nil {
		return err
	}
	return nil
}

// report prints the machine, the command and the results table.
func report(w io.Writer, o options, r *results) {
	fmt.Fprintf(w, "date:    %s\n", time.Now().UTC().Format(time.RFC3339))
	fmt.Fprintf(w, "machine: %s\n", benchserver.Machine())
	fmt.Fprintf(w, "command: go run ./bench/apiserver %s\n", strings.Join(os.Args[1:], " "))
	if o.onlyList {
		fmt.Fprintf(w, "only the LISTs, after %d background pods\n\n", o.backgroundPods)
		tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
		fmt.Fprintln(tw, "measurement\tresult\ttarget\t")
		reportLists(tw, o, r)
		fmt.Fprintf(tw, "RSS after load (server only), peak\t%.1f MiB, peak %.1f MiB\t\t\n", float64(r.loadRSS)/1024, float64(r.peakRSS)/1024)
		tw.Flush()
		return
	}
	fmt.Fprintf(w, "pod stored size: %d bytes (%s)\n\n", r.podSize, r.podKey)

	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
	fmt.Fprintln(tw, "clients\tpod creates/s (JSON)\tpod creates/s (protobuf)\tetcd puts/s\tJSON creates/puts\tserver CPU/create (JSON, protobuf)\ttarget\t")
	for _, row := range r.creates {
		target := ""
		if row.clients == 64 {
			target = fmt.Sprintf(">= 70%%: %s", benchserver.Verdict(row.creates >= 0.7*row.puts))
		}
		fmt.Fprintf(tw, "%d\t%.0f\t%.0f\t%.0f\t%.0f%%\t%v, %v\t%s\t\n", row.clients, row.creates, row.createsPB, row.puts, 100*row.creates/row.puts,
			row.cpu.Round(time.Microsecond), row.cpuPB.Round(time.Microsecond), target)
	}
	tw.Flush()
	if last := r.creates[len(r.creates)-1]; last.clients == floorClients {
		fmt.Fprintf(w, "floor, %d clients (a server that only puts each body to the same etcd): %.0f creates/s JSON (%.0f%% of puts), %.0f protobuf (%.0f%%)\n",
			floorClients, r.floor, 100*r.floor/last.puts, r.floorPB, 100*r.floorPB/last.puts)
	}
	fmt.Fprintln(w)

	tw = tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
	fmt.Fprintln(tw, "measurement\tresult\ttarget\t")
	reportLists(tw, o, r)
	fmt.Fprintf(tw, "%d watchers, update to last watcher\t%v (p50 %v)\t\t\n",
		len(r.watch), benchserver.Round(percentile(r.watch, 100)), benchserver.Round(percentile(r.watch, 50)))
	fmt.Fprintf(tw, "idle RSS (server + embedded etcd), highest of %d s\t%.1f MiB (anonymous %.1f, file %.1f)\t< 100 MiB: %s\t\n", idleSamples,
		float64(r.idleRSS)/1024, float64(r.idleAnon)/1024, float64(r.idleFile)/1024, benchserver.Verdict(r.idleRSS < 100*1024))
	fmt.Fprintf(tw, "RSS after load (server only), peak\t%.1f MiB, peak %.1f MiB\t\t\n", float64(r.loadRSS)/1024, float64(r.peakRSS)/1024)
	fmt.Fprintf(tw, "exec to ready, fresh data dir (server says)\t%v (%s)\t< 2s: %s\t\n", benchserver.Round(r.readyFresh), r.selfFresh, benchserver.Verdict(r.readyFresh < 2*time.Second))
	fmt.Fprintf(tw, "exec to ready, restart (server says)\t%v (%s)\t< 2s: %s\t\n", benchserver.Round(r.readyRestart), r.selfRestart, benchserver.Verdict(r.readyRestart < 2*time.Second))
	tw.Flush()
}

// reportLists prints the LIST rows of the results table.
func reportLists(tw io.Writer, o options, r *results) {
	fmt.Fprintf(tw, "LIST %d pods, resourceVersion=0 (cache), %d runs\tp50 %v, p99 %v (%.1f MiB JSON)\t< 100ms: %s\t\n",
		o.pods, len(r.listCache), benchserver.Round(percentile(r.listCache, 50)), benchserver.Round(percentile(r.listCache, 99)), float64(r.listBytes)/(1<<20),
		benchserver.Verdict(percentile(r.listCache, 99) < 100*time.Millisecond))
	fmt.Fprintf(tw, "LIST %d pods, resourceVersion=0, protobuf, %d runs\tp50 %v, p99 %v (%.1f MiB)\t\t\n",
		o.pods, len(r.listProtobuf), benchserver.Round(percentile(r.listProtobuf, 50)), benchserver.Round(percentile(r.listProtobuf, 99)), float64(r.listPBBytes)/(1<<20))
	fmt.Fprintf(tw, "LIST %d pods, consistent read, %d runs\tp50 %v, p99 %v\t\t\n",
		o.pods, len(r.listConsistent), benchserver.Round(percentile(r.listConsistent, 50)), benchserver.Round(percentile(r.listConsistent, 99)))
}
