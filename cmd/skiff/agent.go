package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/netip"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"time"

	corev1 "k8s.io/api/core/v1"
	"k8s.io/client-go/rest"
	"k8s.io/client-go/tools/clientcmd"

	"github.com/skiff-dev/skiff/internal/agent"
	"github.com/skiff-dev/skiff/internal/agent/bootstrap"
	"github.com/skiff-dev/skiff/internal/agent/eviction"
	"github.com/skiff-dev/skiff/internal/gctune"
	"github.com/skiff-dev/skiff/internal/pki"
	"github.com/skiff-dev/skiff/internal/server"
)

// nodeFlags are the node agent's flags, shared by "skiff agent" and
// "skiff server" (which runs an agent for its own machine).
type nodeFlags struct {
	nodeName, nodeIP          string
	kubeletPort               int
	kubeletAddress            string
	runtimeEndpoint           string
	clusterDNS, clusterDomain string
	labels, taints            string
	imageArchives             string
	podManifestPath           string
	clusterCIDR               string
	disableProxy              bool
	ingressHTTP, ingressHTTPS int
	evictionHard              string
}

// defaultEvictionHard is eviction.DefaultThresholds in the flag's syntax.
const defaultEvictionHard = "memory.available<100Mi,nodefs.available<5%,nodefs.inodesFree<5%,imagefs.available<5%"

// defaultClusterDNS is the cluster DNS service's address with the default
// service CIDR (its 10th address, as upstream clusters use).
const defaultClusterDNS = "10.96.0.10"

func (f *nodeFlags) register(fs *flag.FlagSet) {
	fs.StringVar(&f.nodeName, "node-name", "", "name of this machine's Node (default: the host name)")
	fs.StringVar(&f.nodeIP, "node-ip", "", "this node's IP address (default: the address of the default route's interface)")
	fs.IntVar(&f.kubeletPort, "kubelet-port", agent.DefaultKubeletPort, "port of the node agent's kubelet API")
	fs.StringVar(&f.kubeletAddress, "kubelet-address", "", "address the kubelet API listens on (default: all)")
	fs.StringVar(&f.runtimeEndpoint, "container-runtime-endpoint", "", "socket of a running CRI runtime to use instead of starting containerd under DIR/containerd")
	fs.StringVar(&f.clusterDNS, "cluster-dns", "", "comma-separated DNS server IPs for pods with dnsPolicy ClusterFirst; \"none\" gives them the node's resolv.conf (default: the cluster DNS service, "+defaultClusterDNS+" with the default service CIDR)")
	fs.StringVar(&f.clusterCIDR, "cluster-cidr", agent.DefaultClusterCIDR, "range of every pod IP in the cluster (the node IPAM controller's)")
	fs.BoolVar(&f.disableProxy, "disable-service-proxy", false, "do not program services, routes to other nodes' pods and network policies on this node (nftables)")
	fs.IntVar(&f.ingressHTTP, "ingress-http-port", 80, "port this node serves Ingresses on over HTTP (0: none)")
	fs.IntVar(&f.ingressHTTPS, "ingress-https-port", 443, "port this node serves Ingresses on over HTTPS (0: none)")
	fs.StringVar(&f.clusterDomain, "cluster-domain", agent.DefaultClusterDomain, "the cluster's DNS domain")
	fs.StringVar(&f.labels, "node-labels", "", "comma-separated key=value labels to add to the Node")
	fs.StringVar(&f.taints, "register-with-taints", "", "comma-separated key=value:Effect taints to register the Node with")
	fs.StringVar(&f.podManifestPath, "pod-manifest-path", "", "directory of static pod manifests (YAML or JSON Pods) the agent runs and mirrors into the API")
	fs.StringVar(&f.evictionHard, "eviction-hard", defaultEvictionHard, "hard eviction thresholds, as upstream's kubelet flag: comma-separated signal<quantity or signal<percent% (memory.available, nodefs.available, nodefs.inodesFree, imagefs.available, pid.available); the node reports pressure and evicts pods below them (upstream's kubelet defaults: memory.available<100Mi,nodefs.available<10%,nodefs.inodesFree<5%,imagefs.available<15%)")
	fs.StringVar(&f.imageArchives, "image-archives", "", "comma-separated OCI or Docker image archives to import into the node's containerd at start (e.g. from skiff images build-test)")
}

func (f *nodeFlags) problems() []string {
	var out []string
	if f.nodeIP != "" && net.ParseIP(f.nodeIP) == nil {
		out = append(out, fmt.Sprintf("--node-ip: %q is not an IP address", f.nodeIP))
	}
	if f.kubeletPort <= 0 || f.kubeletPort > 65535 {
		out = append(out, fmt.Sprintf("--kubelet-port must be within 1-65535, not %d", f.kubeletPort))
	}
	if _, err := netip.ParsePrefix(f.clusterCIDR); err != nil {
		out = append(out, fmt.Sprintf("--cluster-cidr: %v", err))
	}
	for _, p := range []int{f.ingressHTTP, f.ingressHTTPS} {
		if p < 0 || p > 65535 {
			out = append(out, fmt.Sprintf("--ingress-http(s)-port must be within 0-65535, not %d", p))
		}
	}
	for _, ip := range splitList(f.clusterDNS) {
		if ip == "none" {
			continue
		}
		if net.ParseIP(ip) == nil {
			out = append(out, fmt.Sprintf("--cluster-dns: %q is not an IP address", ip))
		}
	}
	for _, a := range splitList(f.imageArchives) {
		if _, err := os.Stat(a); err != nil {
			out = append(out, fmt.Sprintf("--image-archives: %v", err))
		}
	}
	if _, err := eviction.ParseThresholds(f.evictionHard); err != nil {
		out = append(out, "--eviction-hard: "+err.Error())
	}
	if _, err := parseLabels(f.labels); err != nil {
		out = append(out, "--node-labels: "+err.Error())
	}
	if _, err := parseTaints(f.taints); err != nil {
		out = append(out, "--register-with-taints: "+err.Error())
	}
	return out
}

// config builds the agent's configuration; problems() has vetted f.
func (f *nodeFlags) config(dataDir string, kube *rest.Config, logger *slog.Logger, progress io.Writer) agent.Config {
	labels, _ := parseLabels(f.labels)
	taints, _ := parseTaints(f.taints)
	thresholds, _ := eviction.ParseThresholds(f.evictionHard)
	manifests := f.podManifestPath
	if manifests != "" {
		if abs, err := filepath.Abs(manifests); err == nil {
			manifests = abs
		}
	}
	var archives []string
	for _, a := range splitList(f.imageArchives) {
		if abs, err := filepath.Abs(a); err == nil {
			a = abs
		}
		archives = append(archives, a)
	}
	return agent.Config{
		DataDir:             dataDir,
		NodeName:            f.nodeName,
		NodeIP:              f.nodeIP,
		KubeletPort:         int32(f.kubeletPort),
		KubeletAddress:      f.kubeletAddress,
		RuntimeEndpoint:     f.runtimeEndpoint,
		Kube:                kube,
		ClusterDNS:          clusterDNS(f.clusterDNS, defaultClusterDNS),
		ClusterCIDR:         f.clusterCIDR,
		DisableServiceProxy: f.disableProxy,
		IngressHTTPPort:     f.ingressHTTP,
		IngressHTTPSPort:    f.ingressHTTPS,
		ClusterDomain:       f.clusterDomain,
		NodeLabels:          labels,
		Taints:              taints,
		EvictionHard:        thresholds,
		ImageArchives:       archives,
		PodManifestPath:     manifests,
		Version:             server.KubernetesVersion,
		Logger:              logger,
		Progress:            func(format string, args ...any) { fmt.Fprintf(progress, format+"\n", args...) },
	}
}

// nodeName returns the node name the agent will use.
func (f *nodeFlags) resolvedNodeName() (string, error) {
	if f.nodeName != "" {
		return f.nodeName, nil
	}
	h, err := os.Hostname()
	if err != nil {
		return "", fmt.Errorf("no --node-name and no host name: %w", err)
	}
	return strings.ToLower(h), nil
}

// clusterDNS is the --cluster-dns value as the agent takes it: "" means
// def, "none" means no cluster DNS (the node's resolv.conf).
func clusterDNS(flag, def string) []string {
	switch flag {
	case "":
		return []string{def}
	case "none":
		return nil
	}
	return splitList(flag)
}

func parseLabels(s string) (map[string]string, error) {
	out := map[string]string{}
	for _, kv := range splitList(s) {
		k, v, ok := strings.Cut(kv, "=")
		if !ok || k == "" {
			return nil, fmt.Errorf("%q is not key=value", kv)
		}
		out[k] = v
	}
	return out, nil
}

func parseTaints(s string) ([]corev1.Taint, error) {
	var out []corev1.Taint
	for _, t := range splitList(s) {
		kv, effect, ok := strings.Cut(t, ":")
		if !ok {
			return nil, fmt.Errorf("%q is not key=value:Effect", t)
		}
		k, v, _ := strings.Cut(kv, "=")
		switch corev1.TaintEffect(effect) {
		case corev1.TaintEffectNoSchedule, corev1.TaintEffectPreferNoSchedule, corev1.TaintEffectNoExecute:
		default:
			return nil, fmt.Errorf("%q: effect must be NoSchedule, PreferNoSchedule or NoExecute", t)
		}
		if k == "" {
			return nil, fmt.Errorf("%q: empty key", t)
		}
		out = append(out, corev1.Taint{Key: k, Value: v, Effect: corev1.TaintEffect(effect)})
	}
	return out, nil
}

// agentComponent is the node agent "skiff server" runs for its own
// machine, as the node's identity (system:node:<name>).
func agentComponent(dataDir string, f nodeFlags, dnsIP string, progress io.Writer) (server.Component, error) {
	name, err := f.resolvedNodeName()
	if err != nil {
		return server.Component{}, err
	}
	return server.Component{
		Name:     "agent",
		Identity: &server.Identity{CertName: "node-" + name, User: "system:node:" + name, Groups: []string{pki.NodesGroup}},
		// The agent keeps informers of its own: it reads as the node, as
		// on any other machine.
		Run: func(ctx context.Context, env server.Env) error {
			ac := f.config(dataDir, env.Config, env.Logger, progress)
			ac.NodeName = name
			ac.ClusterDNS = clusterDNS(f.clusterDNS, dnsIP)
			return agent.Run(ctx, ac)
		},
	}, nil
}

// agentFlags are the flags of "skiff agent".
type agentFlags struct {
	dataDir, kubeconfig string
	// server, token and caCertHash join with a bootstrap token instead of
	// a given kubeconfig (see internal/agent/bootstrap).
	server, token, caCertHash string
	node                      nodeFlags
	log                       logFlags
}

func parseAgentFlags(args []string, stderr io.Writer) (agentFlags, error) {
	var f agentFlags
	fs := flag.NewFlagSet("skiff agent", flag.ContinueOnError)
	fs.SetOutput(stderr)
	fs.Usage = func() {
		fmt.Fprint(stderr, `Usage:
  skiff agent --data-dir DIR --kubeconfig FILE [flags]
  skiff agent --data-dir DIR --server URL --token TOKEN [--ca-cert-hash sha256:HEX] [flags]

Runs the node agent: registers this machine as a Node and runs its pods under containerd.
With --server and --token it first joins the cluster: it checks the server's CA against the
token's hash, asks for a node certificate with the token (kept in DIR/agent and renewed before
it expires), and runs with it. "skiff token create" on a server prints the command.

Flags:
`)
		fs.PrintDefaults()
	}
	fs.StringVar(&f.dataDir, "data-dir", "", "directory for the agent's state and its containerd (required; e.g. /var/lib/skiff-agent)")
	fs.StringVar(&f.kubeconfig, "kubeconfig", "", "kubeconfig of the API server, with this node's credentials (or use --server and --token)")
	fs.StringVar(&f.server, "server", "", "https URL of the API server to join (with --token)")
	fs.StringVar(&f.token, "token", "", "join token K10<CA hash>::<id>.<secret> from skiff token create, or a bootstrap token <id>.<secret> with --ca-cert-hash; needed until the node has a certificate")
	fs.StringVar(&f.caCertHash, "ca-cert-hash", "", "sha256:<hex> of the cluster CA's public key, for a plain <id>.<secret> --token")
	f.node.register(fs)
	f.log.register(fs)
	if err := fs.Parse(args); err != nil {
		return f, err
	}
	var problems []string
	if f.dataDir == "" {
		problems = append(problems, "--data-dir is required")
	}
	problems = append(problems, f.joinProblems()...)
	problems = append(problems, f.node.problems()...)
	problems = append(problems, f.log.problems()...)
	return f, checkFlags(fs, stderr, problems)
}

// joinProblems checks the choice between --kubeconfig and --server/--token.
func (f *agentFlags) joinProblems() []string {
	joining := f.server != "" || f.token != "" || f.caCertHash != ""
	switch {
	case f.kubeconfig != "" && joining:
		return []string{"--kubeconfig cannot be combined with --server, --token or --ca-cert-hash"}
	case f.kubeconfig != "":
		return nil
	case !joining:
		return []string{"--kubeconfig is required (or --server and --token, to join a cluster)"}
	}
	var out []string
	if u, err := url.Parse(f.server); f.server == "" {
		out = append(out, "--server is required with --token")
	} else if err != nil || u.Scheme != "https" || u.Host == "" {
		out = append(out, fmt.Sprintf("--server: %q is not an https URL", f.server))
	}
	if f.token == "" {
		// Without a token only an existing node certificate can be used.
		if f.dataDir != "" && !fileExists(filepath.Join(f.joinDir(), bootstrap.KubeconfigFile)) {
			out = append(out, "--token is required to join (this node has no certificate yet in "+f.joinDir()+")")
		}
		if f.caCertHash != "" {
			if _, _, err := bootstrap.ResolveToken("abcdef.0123456789abcdef", f.caCertHash); err != nil {
				out = append(out, "--ca-cert-hash: "+err.Error())
			}
		}
		return out
	}
	if _, _, err := bootstrap.ResolveToken(f.token, f.caCertHash); err != nil {
		out = append(out, "--token: "+err.Error())
	}
	return out
}

// joinDir is where a joining agent keeps its kubeconfig and certificate.
func (f *agentFlags) joinDir() string { return filepath.Join(f.dataDir, "agent") }

func fileExists(path string) bool {
	_, err := os.Stat(path)
	return err == nil
}

// runAgent runs "skiff agent" and returns the exit code.
func runAgent(args []string, stderr io.Writer) int {
	f, err := parseAgentFlags(args, stderr)
	if err != nil {
		return parseExit(err)
	}
	log := f.log.logger(stderr).With("component", "agent")
	ctx, stop := signalContext()
	defer stop()
	gctune.Start(ctx)
	if f.kubeconfig == "" {
		err = runJoinedAgent(ctx, f, log, stderr)
	} else {
		var rc *rest.Config
		rc, err = clientcmd.BuildConfigFromFlags("", f.kubeconfig)
		if err != nil {
			fmt.Fprintf(stderr, "skiff agent: reading kubeconfig: %v\n", err)
			return exitError
		}
		rc.QPS, rc.Burst = 50, 100
		err = agent.Run(ctx, f.node.config(f.dataDir, rc, log, stderr))
	}
	if err != nil {
		fmt.Fprintf(stderr, "skiff agent: %v\n", err)
		return exitError
	}
	return exitOK
}

// runJoinedAgent obtains a node certificate with the bootstrap token (or
// uses the one obtained before), runs the agent with it, and renews it in
// the background: after each renewal the agent's run loop is restarted
// with the new kubeconfig (its pods keep running meanwhile).
func runJoinedAgent(ctx context.Context, f agentFlags, log *slog.Logger, progress io.Writer) error {
	name, err := f.node.resolvedNodeName()
	if err != nil {
		return err
	}
	var token, hash string
	if f.token != "" {
		if token, hash, err = bootstrap.ResolveToken(f.token, f.caCertHash); err != nil {
			return err
		}
	}
	bc := bootstrap.Config{
		Server: f.server, Token: token, CAHash: hash, NodeName: name,
		Dir: f.joinDir(), Logger: log.With("component", "bootstrap"),
	}
	fmt.Fprintf(progress, "joining %s as node %s\n", f.server, name)
	path, err := joinWithRetry(ctx, bc, bootstrap.Kubeconfig, log)
	if err != nil {
		if ctx.Err() != nil {
			return nil
		}
		return fmt.Errorf("joining %s: %w", f.server, err)
	}
	fmt.Fprintf(progress, "node certificate in %s\n", path)
	return superviseAgent(ctx, bc, func(ctx context.Context) error {
		rc, err := clientcmd.BuildConfigFromFlags("", path)
		if err != nil {
			return fmt.Errorf("reading %s: %w", path, err)
		}
		rc.QPS, rc.Burst = 50, 100
		ac := f.node.config(f.dataDir, rc, log, progress)
		ac.NodeName = name
		return agent.Run(ctx, ac)
	}, bootstrap.Rotate, log)
}

// Join retry delays: a server that is not up yet, or has not yet seen a
// token just created, is retried; a refusal that retrying cannot change
// (wrong CA, denied or failed request) is not.
const (
	joinRetryMin = time.Second
	joinRetryMax = 30 * time.Second
)

// joinWithRetry calls obtain until it succeeds, fails for good, or ctx
// ends.
func joinWithRetry(ctx context.Context, bc bootstrap.Config, obtain func(context.Context, bootstrap.Config) (string, error), log *slog.Logger) (string, error) {
	wait := joinRetryMin
	for {
		path, err := obtain(ctx, bc)
		if err == nil || ctx.Err() != nil || errors.Is(err, bootstrap.ErrCAHashMismatch) ||
			errors.Is(err, bootstrap.ErrDenied) || errors.Is(err, bootstrap.ErrFailed) {
			return path, err
		}
		log.Warn("joining failed; retrying", "in", wait, "err", err)
		select {
		case <-ctx.Done():
			return "", ctx.Err()
		case <-time.After(wait):
		}
		wait = min(2*wait, joinRetryMax)
	}
}

// superviseAgent runs run until ctx ends, and rotate beside it; each time
// rotate reports a new certificate, run is cancelled, waited for and
// started again (so that it builds its clients from the new kubeconfig).
// It returns run's failure or rotate's, nil when ctx ends.
func superviseAgent(ctx context.Context, bc bootstrap.Config, run func(context.Context) error,
	rotate func(context.Context, bootstrap.Config, func()) error, log *slog.Logger) error {
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	rotated := make(chan struct{}, 1)
	rotateErr := make(chan error, 1)
	go func() {
		rotateErr <- rotate(ctx, bc, func() {
			select {
			case rotated <- struct{}{}:
			default: // a restart is pending already
			}
		})
	}()
	defer func() { cancel(); <-rotateErr }()
	for {
		runCtx, stopRun := context.WithCancel(ctx)
		done := make(chan error, 1)
		go func() { done <- run(runCtx) }()
		select {
		case err := <-done:
			stopRun()
			if ctx.Err() != nil {
				return nil
			}
			if err == nil {
				err = errors.New("node agent stopped")
			}
			return err
		case err := <-rotateErr:
			stopRun()
			<-done
			rotateErr <- err // for the deferred wait
			if err != nil && ctx.Err() == nil {
				return fmt.Errorf("certificate rotation: %w", err)
			}
			return nil
		case <-rotated:
			log.Info("node certificate renewed; restarting the agent with it")
			stopRun()
			if err := <-done; err != nil && !errors.Is(err, context.Canceled) && ctx.Err() == nil {
				return err
			}
			if ctx.Err() != nil {
				return nil
			}
		}
	}
}
