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
	"runtime/pprof"
	"strings"
	"syscall"
	"text/tabwriter"
	"time"

	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/api/resource"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/informers"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/rest"
	"k8s.io/client-go/tools/clientcmd"

	"github.com/skiff-dev/skiff/bench/benchserver"
	"github.com/skiff-dev/skiff/internal/controllermanager"
	"github.com/skiff-dev/skiff/internal/scheduler"
	"github.com/skiff-dev/skiff/internal/server"
)

// options are the command-line flags.
type options struct {
	bin            string
	replicas       int
	nodes          int
	kubeletWorkers int
	timeout        time.Duration
	inProcess      bool
	cpuProfile     string
	keep           bool
	serverDebug    bool
}

const namespace = "bench"

func main() {
	var o options
	fs := flag.NewFlagSet("controllers", flag.ExitOnError)
	fs.StringVar(&o.bin, "bin", "", "the skiff binary; empty builds ./cmd/skiff into a temporary directory")
	fs.IntVar(&o.replicas, "replicas", 3000, "replicas of the Deployment")
	fs.IntVar(&o.nodes, "nodes", 10, "Node objects the fake kubelet plays")
	fs.IntVar(&o.kubeletWorkers, "kubelet-workers", 128, "concurrent status writers of the fake kubelet")
	fs.DurationVar(&o.timeout, "timeout", 10*time.Minute, "limit on each phase")
	fs.BoolVar(&o.inProcess, "inprocess", false, "run the API server, scheduler and controller manager in this process (for -cpuprofile) instead of a skiff server child")
	fs.StringVar(&o.cpuProfile, "cpuprofile", "", "write a CPU profile of this process over both phases to this file (useful with -inprocess)")
	fs.BoolVar(&o.keep, "keep", false, "keep the temporary directory (data and server log)")
	fs.BoolVar(&o.serverDebug, "server-v", false, "run the server with -v: every reconcile and its duration in the server log (see -keep)")
	fs.Parse(os.Args[1:])

	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	if err := run(ctx, o, os.Stdout); err != nil {
		fmt.Fprintln(os.Stderr, "bench/controllers:", err)
		os.Exit(1)
	}
}

// results collects every measurement for the report.
type results struct {
	create, rollout       map[string]time.Duration
	kubeCreate, kubeRoll  kubeletStats
	serverRSS, serverPeak int64 // KiB; 0 in-process
}

// Goal names, in report order.
const (
	goalCreated   = "pods created"
	goalBound     = "pods bound (scheduled)"
	goalReady     = "pods Running+Ready (fake kubelet)"
	goalAvailable = "Deployment available (observed, all available)"
	goalNewReady  = "new pods created and Ready"
	goalComplete  = "rollout complete (updated = available = replicas, observed)"
	goalOldGone   = "old pods all deleted"
)

// progress prints what the benchmark is doing, to stderr.
func progress(format string, args ...any) {
	fmt.Fprintf(os.Stderr, "%s "+format+"\n", append([]any{time.Now().Format("15:04:05")}, args...)...)
}

func run(ctx context.Context, o options, out io.Writer) error {
	if o.replicas < 1 || o.nodes < 1 || o.kubeletWorkers < 1 {
		return fmt.Errorf("-replicas (%d), -nodes (%d) and -kubelet-workers (%d) must be at least 1", o.replicas, o.nodes, o.kubeletWorkers)
	}
	tmp, err := os.MkdirTemp("", "skiff-bench-controllers-")
	if err != nil {
		return fmt.Errorf("creating temporary directory: %w", err)
	}
	if o.keep {
		progress("keeping %s", tmp)
	} else {
		defer os.RemoveAll(tmp)
	}
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()

	var cfg *rest.Config
	var c *benchserver.Server
	if o.inProcess {
		progress("starting the server in this process")
		var stopServer func() error
		cfg, stopServer, err = startInProcess(ctx, filepath.Join(tmp, "server"))
		if err != nil {
			return err
		}
		defer func() {
			if err := stopServer(); err != nil {
				progress("stopping the server: %v", err)
			}
		}()
	} else {
		if o.bin == "" {
			o.bin = filepath.Join(tmp, "skiff")
			progress("building %s", o.bin)
			build := exec.CommandContext(ctx, "go", "build", "-o", o.bin, "./cmd/skiff")
			build.Stdout, build.Stderr = os.Stderr, os.Stderr
			if err := build.Run(); err != nil {
				return fmt.Errorf("building skiff (run from the module root or pass -bin): %w", err)
			}
		}
		progress("starting %s server", o.bin)
		// The benchmark plays every node: no agent registers this machine.
		args := []string{"--disable-agent"}
		if o.serverDebug {
			args = append(args, "-v")
		}
		if c, err = benchserver.Start(ctx, o.bin, filepath.Join(tmp, "server"), args...); err != nil {
			return err
		}
		defer c.Kill()
		cfg = c.Config
	}

	cs, err := kubernetes.NewForConfig(cfg)
	if err != nil {
		return fmt.Errorf("building clientset: %w", err)
	}
	if _, err := cs.CoreV1().Namespaces().Create(ctx, &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: namespace}}, metav1.CreateOptions{}); err != nil {
		return fmt.Errorf("creating namespace: %w", err)
	}
	// Room for the surge of the rollout and then some.
	podsPerNode := 2*o.replicas/o.nodes + 110
	progress("registering %d nodes (%d pods each)", o.nodes, podsPerNode)
	nodes, err := registerNodes(ctx, cs, o.nodes, podsPerNode)
	if err != nil {
		return err
	}

	if err := heartbeat(ctx, cs, nodes, func(err error) { progress("heartbeat: %v", err) }); err != nil {
		return err
	}

	// The fake kubelet writes with its own clientset (its own connection),
	// as kubelets on other machines would.
	kubeletCS, err := kubernetes.NewForConfig(rest.CopyConfig(cfg))
	if err != nil {
		return fmt.Errorf("building kubelet clientset: %w", err)
	}
	factory := informers.NewSharedInformerFactoryWithOptions(cs, 0, informers.WithNamespace(namespace))
	podInformer := factory.Core().V1().Pods()
	k := newKubelet(kubeletCS, podInformer.Lister(), nodes)
	r := newRecorder()
	if _, err := podInformer.Informer().AddEventHandler(k.handler()); err != nil {
		return fmt.Errorf("adding kubelet handler: %w", err)
	}
	if _, err := podInformer.Informer().AddEventHandler(r.podHandler()); err != nil {
		return fmt.Errorf("adding recorder handler: %w", err)
	}
	if _, err := factory.Apps().V1().Deployments().Informer().AddEventHandler(r.deploymentHandler()); err != nil {
		return fmt.Errorf("adding deployment handler: %w", err)
	}
	factory.Start(ctx.Done())
	defer factory.Shutdown()
	for typ, ok := range factory.WaitForCacheSync(ctx.Done()) {
		if !ok {
			return fmt.Errorf("informer for %v did not sync", typ)
		}
	}
	kubeletDone := make(chan struct{})
	go func() {
		defer close(kubeletDone)
		k.run(ctx, o.kubeletWorkers)
	}()
	defer func() { cancel(); <-kubeletDone }()

	if o.cpuProfile != "" {
		f, err := os.Create(o.cpuProfile)
		if err != nil {
			return fmt.Errorf("creating profile: %w", err)
		}
		defer f.Close()
		if err := pprof.StartCPUProfile(f); err != nil {
			return fmt.Errorf("starting CPU profile: %w", err)
		}
		defer pprof.StopCPUProfile()
	}

	var res results
	n := o.replicas
	deploy := benchDeployment(int32(n))

	progress("phase 1: creating Deployment %s/%s with %d replicas", namespace, deploy.Name, n)
	r.begin([]goal{
		{goalCreated, func(r *recorder) bool { return r.sumLocked(anyHash).created >= n }},
		{goalBound, func(r *recorder) bool { return r.sumLocked(anyHash).bound >= n }},
		{goalReady, func(r *recorder) bool { return r.sumLocked(anyHash).ready >= n }},
		{goalAvailable, func(r *recorder) bool { return deploymentDone(r.deploy, 1, n, false) }},
	})
	if deploy, err = cs.AppsV1().Deployments(namespace).Create(ctx, deploy, metav1.CreateOptions{}); err != nil {
		return fmt.Errorf("creating deployment: %w", err)
	}
	if res.create, err = r.wait(ctx, o.timeout, phaseStatus); err != nil {
		return fmt.Errorf("phase 1: %w", err)
	}
	res.kubeCreate = k.stats()
	r.mu.Lock()
	oldHash := r.onlyHashLocked()
	r.mu.Unlock()
	if oldHash == "" {
		return errors.New("phase 1: the pods do not share one pod-template-hash")
	}
	progress("phase 1 done in %v", benchserver.Round(res.create[goalAvailable]))

	progress("phase 2: changing the pod template (rolling update, 25%%/25%%)")
	isNew := func(h string) bool { return h != oldHash }
	var gen int64
	r.begin([]goal{
		{goalNewReady, func(r *recorder) bool { return r.sumLocked(isNew).ready >= n }},
		{goalComplete, func(r *recorder) bool { return gen > 0 && deploymentDone(r.deploy, gen, n, false) }},
		{goalOldGone, func(r *recorder) bool {
			c := r.byHash[oldHash]
			return c.gone >= c.created && gen > 0 && deploymentDone(r.deploy, gen, n, true)
		}},
	})
	updated, err := updateTemplate(ctx, cs, deploy.Name)
	if err != nil {
		return err
	}
	r.mu.Lock()
	gen = updated.Generation
	r.mu.Unlock()
	if res.rollout, err = r.wait(ctx, o.timeout, phaseStatus); err != nil {
		return fmt.Errorf("phase 2: %w", err)
	}
	res.kubeRoll = k.stats()
	progress("phase 2 done in %v", benchserver.Round(res.rollout[goalComplete]))
	if o.cpuProfile != "" {
		pprof.StopCPUProfile()
		progress("CPU profile written to %s", o.cpuProfile)
	}
	// Stop our watches before the server, so that they do not complain.
	cancel()
	<-kubeletDone
	factory.Shutdown()
	if c != nil {
		if res.serverRSS, res.serverPeak, err = c.Memory(); err != nil {
			return err
		}
		if err := c.Stop(); err != nil {
			return err
		}
	}
	report(out, o, &res)
	return nil
}

func anyHash(string) bool { return true }

// deploymentDone reports whether d's controller observed generation gen and
// reports n replicas updated and available; with all, also no other pods
// (status.replicas == n).
func deploymentDone(d *appsv1.Deployment, gen int64, n int, all bool) bool {
	if d == nil || d.Status.ObservedGeneration < gen || d.Status.ObservedGeneration < d.Generation {
		return false
	}
	s := d.Status
	ok := int(s.UpdatedReplicas) == n && int(s.AvailableReplicas) == n
	if all {
		ok = ok && int(s.Replicas) == n
	}
	return ok
}

// phaseStatus is the progress line: pod counts by template hash and the
// Deployment's status. Called with r.mu held.
func phaseStatus(r *recorder) string {
	var b strings.Builder
	for h, c := range r.byHash {
		fmt.Fprintf(&b, "hash %s: created %d bound %d ready %d deleted %d; ", h, c.created, c.bound, c.ready, c.gone)
	}
	if d := r.deploy; d != nil {
		fmt.Fprintf(&b, "deployment gen %d observed %d replicas %d updated %d ready %d available %d",
			d.Generation, d.Status.ObservedGeneration, d.Status.Replicas, d.Status.UpdatedReplicas, d.Status.ReadyReplicas, d.Status.AvailableReplicas)
	}
	return b.String()
}

// benchDeployment is the Deployment under test: default strategy (rolling
// update, 25% surge and unavailable), a small pod.
func benchDeployment(replicas int32) *appsv1.Deployment {
	labels := map[string]string{"app": "bench"}
	return &appsv1.Deployment{
		ObjectMeta: metav1.ObjectMeta{Name: "bench"},
		Spec: appsv1.DeploymentSpec{
			Replicas: &replicas,
			Selector: &metav1.LabelSelector{MatchLabels: labels},
			Template: corev1.PodTemplateSpec{
				ObjectMeta: metav1.ObjectMeta{Labels: labels},
				Spec: corev1.PodSpec{Containers: []corev1.Container{{
					Name:  "app",
					Image: "registry.example/bench/app:1.0",
					Ports: []corev1.ContainerPort{{Name: "http", ContainerPort: 8080}},
					Env:   []corev1.EnvVar{{Name: "MODE", Value: "bench"}},
					Resources: corev1.ResourceRequirements{Requests: corev1.ResourceList{
						corev1.ResourceCPU:    resource.MustParse("10m"),
						corev1.ResourceMemory: resource.MustParse("16Mi"),
					}},
				}}},
			},
		},
	}
}

// updateTemplate changes the image of the Deployment's pod template, as
// `kubectl set image` does, and returns the updated object.
func updateTemplate(ctx context.Context, cs kubernetes.Interface, name string) (*appsv1.Deployment, error) {
	for {
		d, err := cs.AppsV1().Deployments(namespace).Get(ctx, name, metav1.GetOptions{})
		if err != nil {
			return nil, fmt.Errorf("getting deployment: %w", err)
		}
		d.Spec.Template.Spec.Containers[0].Image = "registry.example/bench/app:2.0"
		updated, err := cs.AppsV1().Deployments(namespace).Update(ctx, d, metav1.UpdateOptions{})
		if err == nil {
			return updated, nil
		}
		if !apierrors.IsConflict(err) {
			return nil, fmt.Errorf("updating deployment: %w", err)
		}
	}
}

// startInProcess runs internal/server in this process with the scheduler
// and the controller manager, as `skiff server` does, each under a pprof
// label, and returns an admin config and a stop function.
func startInProcess(ctx context.Context, dir string) (*rest.Config, func() error, error) {
	ctx, cancel := context.WithCancel(ctx)
	labeled := func(name string, run func(ctx context.Context, env server.Env) error) server.Component {
		return server.Component{Name: name, Run: func(ctx context.Context, env server.Env) (err error) {
			pprof.Do(ctx, pprof.Labels("component", name), func(ctx context.Context) { err = run(ctx, env) })
			return err
		}}
	}
	port, err := benchserver.FreePort()
	if err != nil {
		cancel()
		return nil, nil, err
	}
	done := make(chan error, 1)
	go pprof.Do(ctx, pprof.Labels("component", "apiserver"), func(ctx context.Context) {
		done <- server.Run(ctx, server.Config{
			DataDir: dir,
			Listen:  fmt.Sprintf("127.0.0.1:%d", port),
			Logger:  slog.New(slog.DiscardHandler),
			Components: []server.Component{
				labeled("scheduler", func(ctx context.Context, env server.Env) error {
					return scheduler.Run(ctx, scheduler.Config{RestConfig: env.Config, Logger: env.Logger, LeaderElection: true,
						NewInformers: env.Informers.Scope})
				}),
				labeled("controller-manager", func(ctx context.Context, env server.Env) error {
					return controllermanager.Run(ctx, controllermanager.Config{RestConfig: env.Config, Logger: env.Logger, LeaderElection: true,
						NewInformers: env.Informers.Scope})
				}),
			},
			Progress: io.Discard,
		})
	})
	stop := func() error {
		cancel()
		select {
		case err := <-done:
			return err
		case <-time.After(30 * time.Second):
			return errors.New("server did not stop within 30s")
		}
	}
	kubeconfig := filepath.Join(dir, "kubeconfig")
	deadline := time.Now().Add(60 * time.Second)
	for {
		if _, err := os.Stat(kubeconfig); err == nil {
			break
		}
		select {
		case err := <-done:
			cancel()
			return nil, nil, fmt.Errorf("server exited before it was ready: %v", err)
		case <-time.After(10 * time.Millisecond):
		}
		if time.Now().After(deadline) {
			stop()
			return nil, nil, errors.New("server not ready within 60s")
		}
	}
	cfg, err := clientcmd.BuildConfigFromFlags("", kubeconfig)
	if err != nil {
		stop()
		return nil, nil, fmt.Errorf("reading kubeconfig: %w", err)
	}
	cfg.QPS, cfg.Burst = -1, 0
	return cfg, stop, nil
}

// report prints the machine, the command and the results table.
func report(w io.Writer, o options, r *results) {
	fmt.Fprintf(w, "date:    %s\n", time.Now().UTC().Format(time.RFC3339))
	fmt.Fprintf(w, "machine: %s\n", benchserver.Machine())
	fmt.Fprintf(w, "command: go run ./bench/controllers %s\n", strings.Join(os.Args[1:], " "))
	where := "skiff server child process"
	if o.inProcess {
		where = "in-process server"
	}
	fmt.Fprintf(w, "setup:   %s; Deployment of %d replicas on %d nodes; fake kubelet with %d workers\n\n", where, o.replicas, o.nodes, o.kubeletWorkers)

	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
	fmt.Fprintln(tw, "phase\tmilestone\ttime\trate\t")
	for _, g := range []string{goalCreated, goalBound, goalReady, goalAvailable} {
		d := r.create[g]
		fmt.Fprintf(tw, "create\t%s\t%v\t%.0f pods/s\t\n", g, benchserver.Round(d), float64(o.replicas)/d.Seconds())
	}
	for _, g := range []string{goalNewReady, goalComplete, goalOldGone} {
		d := r.rollout[g]
		fmt.Fprintf(tw, "rollout\t%s\t%v\t%.0f pods/s\t\n", g, benchserver.Round(d), float64(o.replicas)/d.Seconds())
	}
	tw.Flush()
	fmt.Fprintln(w)

	tw = tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
	fmt.Fprintln(tw, "fake kubelet\tstatus updates\tdeletes\tconflicts\twrites/s (first to last)\tbound→Ready written p50, p99\t")
	for _, row := range []struct {
		name string
		s    kubeletStats
	}{{"create", r.kubeCreate}, {"rollout", r.kubeRoll}} {
		fmt.Fprintf(tw, "%s\t%d\t%d\t%d\t%.0f\t%v, %v\t\n", row.name, row.s.statusUpdates, row.s.deletes, row.s.conflicts, row.s.rate, benchserver.Round(row.s.p50), benchserver.Round(row.s.p99))
	}
	tw.Flush()
	if r.serverRSS > 0 {
		fmt.Fprintf(w, "\nserver RSS at the end: %.1f MiB (peak %.1f MiB)\n", float64(r.serverRSS)/1024, float64(r.serverPeak)/1024)
	}
}
