package main

import (
	"bufio"
	"context"
	"errors"
	"flag"
	"fmt"
	"log/slog"
	"os"
	"os/exec"
	"os/signal"
	"path/filepath"
	"slices"
	"sort"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/watch"
	"k8s.io/client-go/kubernetes"

	"github.com/skiff-dev/skiff/bench/benchserver"
	"github.com/skiff-dev/skiff/internal/agent"
	"github.com/skiff-dev/skiff/internal/agent/cni"
	"github.com/skiff-dev/skiff/internal/agent/containerd"
	"github.com/skiff-dev/skiff/internal/agent/cri"
	"github.com/skiff-dev/skiff/internal/images"
)

type options struct {
	bin     string
	pods    int
	singles int
	timeout time.Duration
	keep    bool
}

const (
	// createConcurrency is how many pod creates the benchmark has in
	// flight.
	createConcurrency = 32
	namespace         = "bench"
	nodeName          = "bench-node"
	podCIDR           = "10.42.0.0/24" // what the node IPAM controller gives the first node
)

func main() {
	var o options
	fs := flag.NewFlagSet("podstartup", flag.ExitOnError)
	fs.StringVar(&o.bin, "bin", "", "the skiff binary (required; run.sh builds bin/skiff)")
	fs.IntVar(&o.pods, "pods", 100, "pods created at once in the batch phase")
	fs.IntVar(&o.singles, "singles", 3, "single-pod runs (the median is the result)")
	fs.DurationVar(&o.timeout, "timeout", 5*time.Minute, "limit on each phase")
	fs.BoolVar(&o.keep, "keep", false, "keep the temporary directory (logs, data dirs)")
	_ = fs.Parse(os.Args[1:])
	if o.bin == "" {
		fmt.Fprintln(os.Stderr, "podstartup: -bin is required (use bench/podstartup/run.sh)")
		os.Exit(2)
	}
	if os.Geteuid() != 0 {
		fmt.Fprintln(os.Stderr, "podstartup: must run as root (containers, CNI)")
		os.Exit(2)
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	if err := run(ctx, o); err != nil {
		fmt.Fprintln(os.Stderr, "podstartup:", err)
		os.Exit(1)
	}
}

// phase is one measured set of pods.
type phase struct {
	perPod []time.Duration // each pod, sorted
	all    time.Duration   // start of the phase until the last pod
}

func (p phase) p(q float64) time.Duration {
	if len(p.perPod) == 0 {
		return 0
	}
	i := int(float64(len(p.perPod))*q+0.999999) - 1 // nearest rank
	return p.perPod[max(0, min(i, len(p.perPod)-1))]
}

func run(ctx context.Context, o options) error {
	tmp, err := os.MkdirTemp("", "skiff-podstartup-")
	if err != nil {
		return err
	}
	defer func() {
		cleanupDir(tmp)
		if o.keep {
			fmt.Println("kept", tmp)
			return
		}
		os.RemoveAll(tmp)
	}()

	bb, err := images.BusyboxImageSpec("/bin/busybox")
	if err != nil {
		return err
	}
	busybox := filepath.Join(tmp, "busybox.tar")
	if err := images.WriteArchiveFile(busybox, bb); err != nil {
		return err
	}

	fmt.Println("machine:", benchserver.Machine())
	fmt.Println("bare containerd ...")
	bareOne, bareN, barePaced, err := runBare(ctx, filepath.Join(tmp, "bare"), busybox, o)
	if err != nil {
		return fmt.Errorf("bare containerd: %w", err)
	}
	fmt.Println("skiff ...")
	one, n, cpu, err := runSkiff(ctx, tmp, busybox, o)
	if err != nil {
		return fmt.Errorf("skiff: %w", err)
	}

	fmt.Printf("\n%-40s %12s %12s %12s\n", "", "p50", "p99", "all")
	row := func(name string, p phase) {
		fmt.Printf("%-40s %12v %12v %12v\n", name, benchserver.Round(p.p(0.5)), benchserver.Round(p.p(0.99)), benchserver.Round(p.all))
	}
	row("bare containerd, 1 pod", bareOne)
	row("skiff, 1 pod (create → Ready)", one)
	row(fmt.Sprintf("bare containerd, %d pods at once", o.pods), bareN)
	row(fmt.Sprintf("bare containerd, %d pods, %d at a time", o.pods, createConcurrency), barePaced)
	row(fmt.Sprintf("skiff, %d pods (create → Ready)", o.pods), n)
	// The target is against the faster of the two bare runs.
	best := min(bareN.all, barePaced.all)
	ratio := float64(n.all) / float64(best)
	perHundred := cpu.Seconds() * 100 / float64(o.pods)
	fmt.Println()
	fmt.Printf("one pod Ready (median of %d): %v, target < 500ms: %s\n", o.singles, benchserver.Round(one.p(0.5)), benchserver.Verdict(one.p(0.5) < 500*time.Millisecond))
	fmt.Printf("%d pods all Ready / bare containerd (the faster run): %.2f, target ≤ 1.10: %s\n", o.pods, ratio, benchserver.Verdict(ratio <= 1.10))
	fmt.Printf("agent CPU: %.2f s for %d pods = %.2f s per 100 pods, target < 1: %s\n", cpu.Seconds(), o.pods, perHundred, benchserver.Verdict(perHundred < 1))
	return nil
}

// runBare runs sandboxes and containers straight through the CRI on a
// containerd of its own.
func runBare(ctx context.Context, dir, busybox string, o options) (one, batch, paced phase, err error) {
	pauseBin, err := images.PauseBinary()
	if err != nil {
		return phase{}, phase{}, phase{}, err
	}
	pause := filepath.Join(dir, "pause.tar")
	if err := images.WriteArchiveFile(pause, images.SandboxImageSpec(agent.SandboxImage, pauseBin)); err != nil {
		return phase{}, phase{}, phase{}, err
	}
	sup, err := containerd.New(containerd.Config{
		DataDir:       dir,
		SandboxImage:  agent.SandboxImage,
		ImageArchives: []string{pause, busybox},
		Logger:        slog.New(slog.DiscardHandler),
	})
	if err != nil {
		return phase{}, phase{}, phase{}, err
	}
	if _, err := cni.WriteConfig(sup.Layout().CNIConfDir, podCIDR, filepath.Join(dir, "cni")); err != nil {
		return phase{}, phase{}, phase{}, err
	}
	cctx, stopContainerd := context.WithCancel(ctx)
	done := make(chan error, 1)
	go func() { done <- sup.Run(cctx) }()
	defer func() { stopContainerd(); <-done }()
	select {
	case <-sup.Ready():
	case err := <-done:
		return phase{}, phase{}, phase{}, fmt.Errorf("containerd did not start: %v", err)
	}
	rt, err := cri.Dial(cri.Config{Socket: sup.Socket()})
	if err != nil {
		return phase{}, phase{}, phase{}, err
	}
	defer rt.Close()
	// The CRI picks the CNI config up asynchronously; wait until a
	// sandbox gets an IP before measuring.
	deadline := time.Now().Add(30 * time.Second)
	for {
		id, err := runBarePod(ctx, rt, dir, "warmup", 0)
		if err == nil {
			_ = rt.StopSandbox(ctx, id)
			_ = rt.RemoveSandbox(ctx, id)
			break
		}
		if time.Now().After(deadline) {
			return phase{}, phase{}, phase{}, fmt.Errorf("no working pod network: %w", err)
		}
		time.Sleep(200 * time.Millisecond)
	}

	// measure runs n pods, at most limit at a time (0: all at once).
	measure := func(name string, n, limit int) (phase, error) {
		if limit <= 0 {
			limit = n
		}
		sem := make(chan struct{}, limit)
		var mu sync.Mutex
		var p phase
		var firstErr error
		var ids []string
		var wg sync.WaitGroup
		start := time.Now()
		for i := range n {
			wg.Add(1)
			go func() {
				defer wg.Done()
				sem <- struct{}{}
				defer func() { <-sem }()
				t0 := time.Now()
				id, err := runBarePod(ctx, rt, dir, name, i)
				d := time.Since(t0)
				mu.Lock()
				defer mu.Unlock()
				if err != nil && firstErr == nil {
					firstErr = err
				}
				ids = append(ids, id)
				p.perPod = append(p.perPod, d)
			}()
		}
		wg.Wait()
		p.all = time.Since(start)
		slices.Sort(p.perPod)
		for _, id := range ids {
			if id != "" {
				_ = rt.StopSandbox(ctx, id)
				_ = rt.RemoveSandbox(ctx, id)
			}
		}
		return p, firstErr
	}
	for i := range o.singles {
		p, err := measure("single"+strconv.Itoa(i), 1, 0)
		if err != nil {
			return phase{}, phase{}, phase{}, err
		}
		one.perPod = append(one.perPod, p.perPod...)
	}
	slices.Sort(one.perPod)
	one.all = one.p(0.5)
	if batch, err = measure("batch", o.pods, 0); err != nil {
		return phase{}, phase{}, phase{}, err
	}
	// As many at a time as the benchmark creates pods through the API: a
	// fairer pace for containerd on few cores than all at once.
	paced, err = measure("paced", o.pods, createConcurrency)
	return one, batch, paced, err
}

// runBarePod runs one sandbox with one busybox container and returns the
// sandbox's ID once the container has started.
func runBarePod(ctx context.Context, rt *cri.Client, dir, prefix string, i int) (string, error) {
	name := fmt.Sprintf("%s-%d", prefix, i)
	sb := cri.SandboxConfig{
		Name: name, Namespace: "bare", UID: fmt.Sprintf("bare-%s-%d", prefix, i),
		Hostname: name,
		LogDir:   filepath.Join(dir, "logs", name),
		Labels:   map[string]string{"bench": "bare"},
	}
	id, err := rt.RunSandbox(ctx, sb)
	if err != nil {
		return "", err
	}
	cid, err := rt.CreateContainer(ctx, id, sb, cri.ContainerConfig{
		Name:    "c",
		Image:   images.BusyboxRef,
		Command: []string{"sleep", "3600"},
		LogPath: "c/0.log",
	})
	if err != nil {
		return id, err
	}
	return id, rt.StartContainer(ctx, cid)
}

// runSkiff measures the same work through skiff: the API, the scheduler
// and the agent.
func runSkiff(ctx context.Context, tmp, busybox string, o options) (one, batch phase, cpu time.Duration, err error) {
	srv, err := benchserver.Start(ctx, o.bin, filepath.Join(tmp, "server"))
	if err != nil {
		return
	}
	defer srv.Stop()
	kubeletPort, err := benchserver.FreePort()
	if err != nil {
		return
	}
	nodeDir := filepath.Join(tmp, "node")
	logFile, err := os.Create(filepath.Join(tmp, "agent.log"))
	if err != nil {
		return
	}
	defer logFile.Close()
	agentCmd := exec.Command(o.bin, "agent", "--data-dir", nodeDir, "--kubeconfig", filepath.Join(tmp, "server", "kubeconfig"),
		"--node-name", nodeName, "--node-ip", "127.0.0.1", "--kubelet-port", strconv.Itoa(kubeletPort))
	agentCmd.Stdout, agentCmd.Stderr = logFile, logFile
	if err = agentCmd.Start(); err != nil {
		return
	}
	agentDone := make(chan struct{})
	go func() { _ = agentCmd.Wait(); close(agentDone) }()
	defer func() {
		_ = agentCmd.Process.Signal(syscall.SIGTERM)
		select {
		case <-agentDone:
		case <-time.After(20 * time.Second):
			_ = agentCmd.Process.Kill()
			<-agentDone
		}
		// The agent leaves pods running by design; stop what is left.
		if out, err := exec.Command(o.bin, "reset", "--data-dir", nodeDir).CombinedOutput(); err != nil {
			fmt.Fprintf(os.Stderr, "skiff reset: %v\n%s", err, out)
		}
	}()

	client, err := kubernetes.NewForConfig(srv.Config)
	if err != nil {
		return
	}
	if err = waitNodeReady(ctx, client, o.timeout); err != nil {
		err = fmt.Errorf("%w; agent log:\n%s", err, benchserver.Tail(logFile.Name()))
		return
	}
	if out, ierr := exec.CommandContext(ctx, o.bin, "images", "import", "--data-dir", nodeDir, busybox).CombinedOutput(); ierr != nil {
		err = fmt.Errorf("importing busybox: %v: %s", ierr, out)
		return
	}
	if _, err = client.CoreV1().Namespaces().Create(ctx, &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: namespace}}, metav1.CreateOptions{}); err != nil {
		return
	}
	for i := range o.singles {
		var p phase
		if p, err = createAndWait(ctx, client, fmt.Sprintf("single-%d", i), 1, o.timeout); err != nil {
			err = fmt.Errorf("%w; agent log:\n%s", err, benchserver.Tail(logFile.Name()))
			return
		}
		one.perPod = append(one.perPod, p.perPod...)
	}
	slices.Sort(one.perPod)
	one.all = one.p(0.5)

	before, err := cpuTime(agentCmd.Process.Pid)
	if err != nil {
		return
	}
	if batch, err = createAndWait(ctx, client, "batch", o.pods, o.timeout); err != nil {
		err = fmt.Errorf("%w; agent log:\n%s", err, benchserver.Tail(logFile.Name()))
		return
	}
	after, err := cpuTime(agentCmd.Process.Pid)
	if err != nil {
		return
	}
	cpu = after - before

	// Stop the pods through the agent, so nothing is left running.
	grace := int64(0)
	_ = client.CoreV1().Pods(namespace).DeleteCollection(ctx, metav1.DeleteOptions{GracePeriodSeconds: &grace}, metav1.ListOptions{})
	deadline := time.Now().Add(o.timeout)
	for time.Now().Before(deadline) {
		l, lerr := client.CoreV1().Pods(namespace).List(ctx, metav1.ListOptions{})
		if lerr == nil && len(l.Items) == 0 {
			break
		}
		time.Sleep(200 * time.Millisecond)
	}
	return
}

func waitNodeReady(ctx context.Context, client kubernetes.Interface, timeout time.Duration) error {
	deadline := time.Now().Add(timeout)
	for time.Now().Before(deadline) {
		n, err := client.CoreV1().Nodes().Get(ctx, nodeName, metav1.GetOptions{})
		if err == nil {
			for _, c := range n.Status.Conditions {
				if c.Type == corev1.NodeReady && c.Status == corev1.ConditionTrue {
					return nil
				}
			}
		} else if !apierrors.IsNotFound(err) {
			return err
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(100 * time.Millisecond):
		}
	}
	return errors.New("node not Ready in time")
}

// createAndWait creates n busybox pods at once and times each from just
// before its create request to the watch event that shows it Ready.
func createAndWait(ctx context.Context, client kubernetes.Interface, prefix string, n int, timeout time.Duration) (phase, error) {
	ctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	list, err := client.CoreV1().Pods(namespace).List(ctx, metav1.ListOptions{})
	if err != nil {
		return phase{}, err
	}
	w, err := client.CoreV1().Pods(namespace).Watch(ctx, metav1.ListOptions{ResourceVersion: list.ResourceVersion, LabelSelector: "phase=" + prefix})
	if err != nil {
		return phase{}, err
	}
	defer w.Stop()

	var mu sync.Mutex
	started := map[string]time.Time{}
	var wg sync.WaitGroup
	errc := make(chan error, n)
	sem := make(chan struct{}, createConcurrency)
	start := time.Now()
	for i := range n {
		wg.Add(1)
		go func() {
			defer wg.Done()
			sem <- struct{}{}
			defer func() { <-sem }()
			name := fmt.Sprintf("%s-%d", prefix, i)
			pod := benchPod(name, prefix)
			mu.Lock()
			started[name] = time.Now()
			mu.Unlock()
			if _, err := client.CoreV1().Pods(namespace).Create(ctx, pod, metav1.CreateOptions{}); err != nil {
				errc <- err
			}
		}()
	}
	ready := map[string]time.Duration{}
	for len(ready) < n {
		select {
		case err := <-errc:
			return phase{}, err
		case ev, ok := <-w.ResultChan():
			if !ok {
				return phase{}, errors.New("watch ended")
			}
			if ev.Type == watch.Error {
				return phase{}, fmt.Errorf("watch error: %v", ev.Object)
			}
			pod, ok := ev.Object.(*corev1.Pod)
			if !ok || !podReady(pod) {
				continue
			}
			if _, seen := ready[pod.Name]; seen {
				continue
			}
			mu.Lock()
			t0 := started[pod.Name]
			mu.Unlock()
			ready[pod.Name] = time.Since(t0)
		case <-ctx.Done():
			return phase{}, fmt.Errorf("%d of %d pods Ready after %v", len(ready), n, timeout)
		}
	}
	var p phase
	p.all = time.Since(start)
	wg.Wait()
	for _, d := range ready {
		p.perPod = append(p.perPod, d)
	}
	sort.Slice(p.perPod, func(i, j int) bool { return p.perPod[i] < p.perPod[j] })
	return p, nil
}

func benchPod(name, prefix string) *corev1.Pod {
	grace := int64(0)
	return &corev1.Pod{
		ObjectMeta: metav1.ObjectMeta{Name: name, Labels: map[string]string{"phase": prefix}},
		Spec: corev1.PodSpec{
			TerminationGracePeriodSeconds: &grace,
			EnableServiceLinks:            new(bool),
			Containers: []corev1.Container{{
				Name:            "c",
				Image:           images.BusyboxImage,
				ImagePullPolicy: corev1.PullNever,
				Command:         []string{"sleep", "3600"},
			}},
		},
	}
}

func podReady(p *corev1.Pod) bool {
	for _, c := range p.Status.Conditions {
		if c.Type == corev1.PodReady {
			return c.Status == corev1.ConditionTrue
		}
	}
	return false
}

// cpuTime returns utime+stime of pid.
func cpuTime(pid int) (time.Duration, error) {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return 0, err
	}
	s := string(b)
	f := strings.Fields(s[strings.LastIndexByte(s, ')')+2:])
	// Fields after "(comm) ": state is f[0]; utime and stime are the 14th
	// and 15th fields of the line, f[11] and f[12] here.
	ut, err1 := strconv.ParseInt(f[11], 10, 64)
	st, err2 := strconv.ParseInt(f[12], 10, 64)
	if err1 != nil || err2 != nil {
		return 0, fmt.Errorf("parsing /proc/%d/stat", pid)
	}
	const ticks = 100 // USER_HZ
	return time.Duration(ut+st) * time.Second / ticks, nil
}

// cleanupDir kills processes and unmounts what containers left under dir.
func cleanupDir(dir string) {
	procs, _ := filepath.Glob("/proc/[0-9]*/cmdline")
	for _, p := range procs {
		b, err := os.ReadFile(p)
		if err != nil {
			continue
		}
		if !strings.Contains(string(b), dir) {
			// A container's process: its root is an overlay under dir.
			mi, err := os.ReadFile(filepath.Join(filepath.Dir(p), "mountinfo"))
			if err != nil {
				continue
			}
			first, _, _ := strings.Cut(string(mi), "\n")
			if !strings.Contains(first, dir) {
				continue
			}
		}
		if pid, err := strconv.Atoi(filepath.Base(filepath.Dir(p))); err == nil && pid != os.Getpid() {
			_ = syscall.Kill(pid, syscall.SIGKILL)
		}
	}
	f, err := os.Open("/proc/self/mountinfo")
	if err != nil {
		return
	}
	defer f.Close()
	var under []string
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		fields := strings.Fields(sc.Text())
		if len(fields) > 4 && strings.HasPrefix(fields[4], dir) {
			under = append(under, fields[4])
		}
	}
	sort.Slice(under, func(i, j int) bool { return len(under[i]) > len(under[j]) })
	for _, m := range under {
		_ = syscall.Unmount(m, syscall.MNT_DETACH)
	}
}
