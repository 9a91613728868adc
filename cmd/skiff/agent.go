package main

import (
	"context"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/netip"
	"os"
	"path/filepath"
	"strings"

	corev1 "k8s.io/api/core/v1"
	"k8s.io/client-go/rest"
	"k8s.io/client-go/tools/clientcmd"

	"github.com/skiff-dev/skiff/internal/agent"
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
}

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
		Run: func(ctx context.Context, cfg *rest.Config, log *slog.Logger) error {
			ac := f.config(dataDir, cfg, log, progress)
			ac.NodeName = name
			ac.ClusterDNS = clusterDNS(f.clusterDNS, dnsIP)
			return agent.Run(ctx, ac)
		},
	}, nil
}

// agentFlags are the flags of "skiff agent".
type agentFlags struct {
	dataDir, kubeconfig string
	node                nodeFlags
	log                 logFlags
}

func parseAgentFlags(args []string, stderr io.Writer) (agentFlags, error) {
	var f agentFlags
	fs := flag.NewFlagSet("skiff agent", flag.ContinueOnError)
	fs.SetOutput(stderr)
	fs.Usage = func() {
		fmt.Fprint(stderr, "Usage: skiff agent --data-dir DIR --kubeconfig FILE [flags]\n\nRuns the node agent: registers this machine as a Node and runs its pods under containerd.\n\nFlags:\n")
		fs.PrintDefaults()
	}
	fs.StringVar(&f.dataDir, "data-dir", "", "directory for the agent's state and its containerd (required; e.g. /var/lib/skiff-agent)")
	fs.StringVar(&f.kubeconfig, "kubeconfig", "", "kubeconfig of the API server, with this node's credentials (required)")
	f.node.register(fs)
	f.log.register(fs)
	if err := fs.Parse(args); err != nil {
		return f, err
	}
	var problems []string
	if f.dataDir == "" {
		problems = append(problems, "--data-dir is required")
	}
	if f.kubeconfig == "" {
		problems = append(problems, "--kubeconfig is required")
	}
	problems = append(problems, f.node.problems()...)
	problems = append(problems, f.log.problems()...)
	return f, checkFlags(fs, stderr, problems)
}

// runAgent runs "skiff agent" and returns the exit code.
func runAgent(args []string, stderr io.Writer) int {
	f, err := parseAgentFlags(args, stderr)
	if err != nil {
		return parseExit(err)
	}
	rc, err := clientcmd.BuildConfigFromFlags("", f.kubeconfig)
	if err != nil {
		fmt.Fprintf(stderr, "skiff agent: reading kubeconfig: %v\n", err)
		return exitError
	}
	rc.QPS, rc.Burst = 50, 100
	ctx, stop := signalContext()
	defer stop()
	if err := agent.Run(ctx, f.node.config(f.dataDir, rc, f.log.logger(stderr).With("component", "agent"), stderr)); err != nil {
		fmt.Fprintf(stderr, "skiff agent: %v\n", err)
		return exitError
	}
	return exitOK
}
