package agent

import (
	"context"
	"crypto/x509"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"net/netip"
	"os"
	"path/filepath"
	"strconv"
	"strings"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/prometheus/client_golang/prometheus/promhttp"
	"golang.org/x/sync/errgroup"
	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/client-go/kubernetes/scheme"
	typedcorev1 "k8s.io/client-go/kubernetes/typed/core/v1"
	"k8s.io/client-go/rest"
	"k8s.io/client-go/tools/record"

	"github.com/skiff-dev/skiff/internal/agent/cni"
	"github.com/skiff-dev/skiff/internal/agent/containerd"
	"github.com/skiff-dev/skiff/internal/agent/cri"
	"github.com/skiff-dev/skiff/internal/agent/eviction"
	"github.com/skiff-dev/skiff/internal/agent/kubeletserver"
	"github.com/skiff-dev/skiff/internal/agent/nodestatus"
	"github.com/skiff-dev/skiff/internal/agent/pods"
	"github.com/skiff-dev/skiff/internal/agent/podstatus"
	"github.com/skiff-dev/skiff/internal/agent/prober"
	"github.com/skiff-dev/skiff/internal/agent/pull"
	"github.com/skiff-dev/skiff/internal/agent/staticpods"
	"github.com/skiff-dev/skiff/internal/agent/stats"
	"github.com/skiff-dev/skiff/internal/agent/volumes"
	"github.com/skiff-dev/skiff/internal/images"
	"github.com/skiff-dev/skiff/internal/ingress"
	"github.com/skiff-dev/skiff/internal/lazyclient"
	"github.com/skiff-dev/skiff/internal/netpol"
	"github.com/skiff-dev/skiff/internal/nodeaddr"
	"github.com/skiff-dev/skiff/internal/proxy"
)

// Defaults of Config.
const (
	DefaultKubeletPort   = 10250
	DefaultClusterDomain = "cluster.local"
	DefaultClusterCIDR   = "10.42.0.0/16"
	// SandboxImage is the pause image the agent builds and loads into its
	// own containerd.
	SandboxImage = "skiff/pause:3.10"
)

// Config configures one node agent. DataDir and Kube are required.
type Config struct {
	// DataDir holds the agent's state (DataDir/agent) and, unless
	// RuntimeEndpoint is set, its containerd (DataDir/containerd).
	DataDir string
	// NodeName is the Node's name; "" means the host name, lower-cased.
	NodeName string
	// NodeIP is the node's address; "" means detected.
	NodeIP string
	// KubeletPort is the kubelet API's port; 0 means DefaultKubeletPort.
	KubeletPort int32
	// KubeletAddress is the address the kubelet API listens on; "" means
	// all addresses.
	KubeletAddress string
	// RuntimeEndpoint is the socket of a running CRI runtime to use
	// instead of starting containerd.
	RuntimeEndpoint string
	// Kube is the agent's identity towards the API server.
	Kube *rest.Config
	// ClientCAs verifies the API server's client certificate on the
	// kubelet API; nil means the CA in Kube.
	ClientCAs *x509.CertPool
	// ClusterDNS are the nameservers of pods with dnsPolicy ClusterFirst;
	// empty means they get the node's resolv.conf.
	ClusterDNS []string
	// ClusterDomain is the cluster's DNS domain; "" means cluster.local.
	ClusterDomain string
	// NodeLabels are added to the Node's labels; Taints are registered.
	NodeLabels map[string]string
	Taints     []corev1.Taint
	// EvictionHard are the hard eviction thresholds; nil means
	// eviction.DefaultThresholds, empty means none.
	EvictionHard []eviction.Threshold
	// ImageArchives are imported into the agent's own containerd at every
	// start (ignored with RuntimeEndpoint).
	ImageArchives []string
	// ClusterCIDR is every pod's range (the node IPAM controller's);
	// "" means DefaultClusterCIDR.
	ClusterCIDR string
	// DisableServiceProxy turns off the node's service networking: the
	// nftables service proxy, the routes to other nodes' pods and
	// NetworkPolicy enforcement.
	DisableServiceProxy bool
	// IngressHTTPPort and IngressHTTPSPort are where the node serves
	// Ingresses (class skiff); 0 means no Ingress on this node.
	IngressHTTPPort, IngressHTTPSPort int
	// PodManifestPath is a directory of static pod manifests; "" means
	// none.
	PodManifestPath string
	// Version is reported as the kubelet version.
	Version string
	// Logger receives the agent's logs; nil discards them.
	Logger *slog.Logger
	// Progress receives one short line per start-up stage; nil discards.
	Progress func(format string, args ...any)
}

func (cfg *Config) defaults() error {
	if cfg.DataDir == "" {
		return errors.New("agent: no data dir")
	}
	if cfg.Kube == nil {
		return errors.New("agent: no API server configuration")
	}
	if cfg.RuntimeEndpoint == "" && os.Geteuid() != 0 {
		return errors.New("the node agent needs root (it runs containerd, mounts volumes and sets up the pod network): run it as root, or pass --disable-agent to run the control plane alone")
	}
	dir, err := filepath.Abs(cfg.DataDir)
	if err != nil {
		return fmt.Errorf("agent: data dir %q: %w", cfg.DataDir, err)
	}
	cfg.DataDir = dir
	if cfg.NodeName == "" {
		h, err := os.Hostname()
		if err != nil {
			return fmt.Errorf("agent: no node name given and the host name is unknown: %w", err)
		}
		cfg.NodeName = strings.ToLower(h)
	}
	if cfg.KubeletPort == 0 {
		cfg.KubeletPort = DefaultKubeletPort
	}
	if cfg.ClusterDomain == "" {
		cfg.ClusterDomain = DefaultClusterDomain
	}
	if cfg.ClusterCIDR == "" {
		cfg.ClusterCIDR = DefaultClusterCIDR
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.New(slog.DiscardHandler)
	}
	if cfg.Progress == nil {
		cfg.Progress = func(string, ...any) {}
	}
	if cfg.NodeIP == "" {
		ip, err := nodeaddr.DetectNodeIP()
		if err != nil {
			return fmt.Errorf("agent: detecting the node IP (set --node-ip): %w", err)
		}
		cfg.NodeIP = ip
	}
	if cfg.ClientCAs == nil {
		pool, err := caPool(cfg.Kube)
		if err != nil {
			return err
		}
		cfg.ClientCAs = pool
	}
	return nil
}

// caPool returns the CA that kube trusts for the API server, which also
// signs the API server's client certificate.
func caPool(kube *rest.Config) (*x509.CertPool, error) {
	data := kube.TLSClientConfig.CAData
	if len(data) == 0 && kube.TLSClientConfig.CAFile != "" {
		b, err := os.ReadFile(kube.TLSClientConfig.CAFile)
		if err != nil {
			return nil, fmt.Errorf("agent: reading CA file: %w", err)
		}
		data = b
	}
	pool := x509.NewCertPool()
	if len(data) == 0 || !pool.AppendCertsFromPEM(data) {
		return nil, errors.New("agent: the kubeconfig holds no CA certificate to verify the API server's client certificate with")
	}
	return pool, nil
}

// Run runs the agent until ctx is done, then stops it leaving every
// container running. It returns nil after ctx ends, and the first failure
// otherwise.
func Run(ctx context.Context, cfg Config) error {
	if err := cfg.defaults(); err != nil {
		return err
	}
	log := cfg.Logger
	root := filepath.Join(cfg.DataDir, "agent")
	unlock, err := lockRoot(root)
	if err != nil {
		return err
	}
	defer unlock()
	g, ctx := errgroup.WithContext(ctx)

	// The runtime first: nothing works without it.
	socket := cfg.RuntimeEndpoint
	cniConfDir := ""
	if socket == "" {
		if err := checkCgroups("/proc/self/mountinfo"); err != nil {
			return err
		}
		pauseArchive, err := writePauseArchive(root)
		if err != nil {
			return err
		}
		sup, err := containerd.New(containerd.Config{
			DataDir:       cfg.DataDir,
			SandboxImage:  SandboxImage,
			ImageArchives: append([]string{pauseArchive}, cfg.ImageArchives...),
			Logger:        log,
		})
		if err != nil {
			return fmt.Errorf("agent: %w", err)
		}
		supErr := make(chan error, 1)
		g.Go(func() error {
			err := sup.Run(ctx)
			supErr <- err
			if err != nil {
				return fmt.Errorf("containerd: %w", err)
			}
			return nil
		})
		select {
		case <-sup.Ready():
		case err := <-supErr:
			if err == nil {
				err = ctx.Err()
			}
			_ = g.Wait()
			return fmt.Errorf("agent: starting containerd: %w", err)
		case <-ctx.Done():
			return g.Wait()
		}
		socket = sup.Socket()
		cniConfDir = sup.Layout().CNIConfDir
		cfg.Progress("containerd ready")
	}
	rt, err := cri.Dial(cri.Config{Socket: socket})
	if err != nil {
		return fmt.Errorf("agent: %w", err)
	}
	defer rt.Close()

	client, err := lazyclient.New(cfg.Kube)
	if err != nil {
		return fmt.Errorf("agent: building API client: %w", err)
	}
	broadcaster := record.NewBroadcaster(record.WithContext(ctx))
	broadcaster.StartRecordingToSink(&typedcorev1.EventSinkImpl{Interface: client.CoreV1().Events("")})
	defer broadcaster.Shutdown()
	recorder := broadcaster.NewRecorder(scheme.Scheme, corev1.EventSource{Component: "kubelet", Host: cfg.NodeName})

	statsProvider := stats.New(stats.Config{NodeName: cfg.NodeName, Runtime: rt, RootFS: root, Logger: log.With("component", "stats")})
	g.Go(func() error { return statsProvider.Run(ctx) })

	// The pods: the manager is built first because eviction and the
	// prober call into it; it runs once everything it uses exists.
	var mgr *pods.Manager
	vols, err := volumes.New(volumes.Config{
		RootDir: filepath.Join(root, "pods"), Client: client, NodeName: cfg.NodeName, Logger: log.With("component", "volumes"),
		// Config maps and secrets are watched only once a pod's sync
		// sets up its volumes: mgr exists by then.
		Changed: func(uid types.UID) { mgr.Resync(uid) },
	})
	if err != nil {
		return fmt.Errorf("agent: %w", err)
	}
	g.Go(func() error { return vols.Run(ctx) })
	writer := podstatus.NewWriter(client, log.With("component", "podstatus"))
	g.Go(func() error { return writer.Run(ctx) })
	probes := prober.New(prober.Config{
		Runtime:  rt,
		Recorder: recorder,
		Logger:   log.With("component", "prober"),
		OnChange: func(uid types.UID) { mgr.Resync(uid) },
	})
	mgr, err = pods.New(pods.Config{
		Client:        client,
		NodeName:      cfg.NodeName,
		NodeIP:        cfg.NodeIP,
		Runtime:       rt,
		Volumes:       vols,
		Prober:        probes,
		Images:        pull.New(rt, client, recorder, log.With("component", "pull")),
		Status:        podstatus.Computer{},
		Writer:        writer,
		Recorder:      recorder,
		RootDir:       root,
		ClusterDNS:    cfg.ClusterDNS,
		ClusterDomain: cfg.ClusterDomain,
		ForgetNeighbor: func(ip netip.Addr) error {
			return cni.ForgetNeighbor(cni.BridgeName, ip)
		},
		Logger: log,
	})
	if err != nil {
		return fmt.Errorf("agent: %w", err)
	}

	evict, err := eviction.New(eviction.Config{
		Usage:      eviction.HostUsage(root, root),
		Pods:       mgr.ActivePods,
		PodUsage:   podUsage(statsProvider),
		Evict:      mgr.Evict,
		Thresholds: cfg.EvictionHard,
		Logger:     log,
	})
	if err != nil {
		return fmt.Errorf("agent: %w", err)
	}

	reporter, err := nodestatus.New(nodestatus.Config{
		Client:      client,
		NodeName:    cfg.NodeName,
		NodeIP:      cfg.NodeIP,
		KubeletPort: cfg.KubeletPort,
		Version:     cfg.Version,
		Labels:      cfg.NodeLabels,
		Taints:      cfg.Taints,
		Runtime:     rt,
		Usage:       evict.Pressure,
		Held:        evict.Held,
		RootDir:     root,
		Recorder:    recorder,
		Logger:      log,
	})
	if err != nil {
		return fmt.Errorf("agent: %w", err)
	}
	if cniConfDir == "" {
		reporter.SetNetworkReady(true, "")
	} else if _, err := os.Stat(filepath.Join(cniConfDir, cni.ConfFile)); err == nil {
		// A restart: the pod network is there already.
		reporter.SetNetworkReady(true, "")
	}
	g.Go(func() error { return reporter.Run(ctx) })

	// The kubelet API.
	cert, err := kubeletserver.SelfSignedCert(filepath.Join(root, "pki"), []string{cfg.NodeName, cfg.NodeIP, "localhost", "127.0.0.1"})
	if err != nil {
		return fmt.Errorf("agent: %w", err)
	}
	srv, err := kubeletserver.New(kubeletserver.Config{
		Runtime:         rt,
		ClientCAs:       cfg.ClientCAs,
		Summary:         func(ctx context.Context) (any, error) { return statsProvider.Summary(ctx) },
		Pods:            mgr.ActivePods,
		Metrics:         kubeletMetrics(cfg.NodeName, mgr.ActivePods),
		ResourceMetrics: resourceMetrics(statsProvider),
		Logger:          log.With("component", "kubeletserver"),
	})
	if err != nil {
		return fmt.Errorf("agent: %w", err)
	}
	addr := net.JoinHostPort(cfg.KubeletAddress, strconv.Itoa(int(cfg.KubeletPort)))
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		return fmt.Errorf("agent: kubelet API cannot listen on %s (another agent? pick --kubelet-port): %w", addr, err)
	}
	g.Go(func() error { return srv.Serve(ctx, ln, cert) })

	// The pod network, once the node has its pod CIDR.
	if cniConfDir != "" {
		g.Go(func() error {
			cidr, err := reporter.PodCIDR(ctx)
			if err != nil {
				if ctx.Err() != nil {
					return nil
				}
				return fmt.Errorf("waiting for the pod CIDR: %w", err)
			}
			// Pods reach other nodes' pods without NAT when the node
			// masquerades egress itself; without nftables the bridge
			// plugin does it (NATing cross-node pod traffic too).
			ipMasq := true
			if !cfg.DisableServiceProxy {
				if err := cni.Masquerade(ctx, nil, cidr, cfg.ClusterCIDR); err != nil {
					log.Warn("pod egress masquerade through the bridge plugin instead of nftables", "err", err)
				} else {
					ipMasq = false
				}
			}
			changed, err := cni.WriteConfigMasq(cniConfDir, cidr, filepath.Join(root, "cni"), ipMasq)
			if err != nil {
				return fmt.Errorf("writing the CNI config: %w", err)
			}
			reporter.SetNetworkReady(true, "")
			if changed {
				cfg.Progress("pod network %s ready", cidr)
			}
			if cfg.DisableServiceProxy {
				return nil
			}
			// Service networking; each part is optional: a node without
			// nftables still runs pods.
			g.Go(optional(ctx, log, cfg.Progress, "service proxy", func(ctx context.Context) error {
				return proxy.Run(ctx, proxy.Config{Client: client, NodeName: cfg.NodeName, NodeIPs: []string{cfg.NodeIP}, PodCIDR: cidr, ClusterCIDR: cfg.ClusterCIDR, Logger: log.With("component", "proxy")})
			}))
			g.Go(optional(ctx, log, cfg.Progress, "pod routes", func(ctx context.Context) error {
				return proxy.RunRoutes(ctx, client, cfg.NodeName, log.With("component", "routes"))
			}))
			g.Go(optional(ctx, log, cfg.Progress, "network policy", func(ctx context.Context) error {
				return netpol.Run(ctx, netpol.Config{Client: client, NodeName: cfg.NodeName, Logger: log.With("component", "netpol")})
			}))
			return nil
		})
	}
	if cfg.IngressHTTPPort > 0 || cfg.IngressHTTPSPort > 0 {
		g.Go(optional(ctx, log, cfg.Progress, "ingress", func(ctx context.Context) error {
			ic, err := ingress.New(ingress.Config{
				Client:    client,
				HTTPAddr:  portAddr(cfg.IngressHTTPPort),
				HTTPSAddr: portAddr(cfg.IngressHTTPSPort),
				StatusIPs: []string{cfg.NodeIP},
				Logger:    log.With("component", "ingress"),
			})
			if err != nil {
				return err
			}
			return ic.Run(ctx)
		}))
	}

	g.Go(func() error { return probes.Run(ctx) })
	g.Go(func() error { return mgr.Run(ctx) })
	g.Go(func() error { return evict.Run(ctx) })
	if cfg.PodManifestPath != "" {
		g.Go(func() error {
			return staticpods.Run(ctx, staticpods.Config{Client: client, NodeName: cfg.NodeName, Dir: cfg.PodManifestPath, Recorder: recorder, Logger: log.With("component", "staticpods")})
		})
	}
	cfg.Progress("node %s (%s) agent running, kubelet API on %s", cfg.NodeName, cfg.NodeIP, ln.Addr())
	log.Info("agent running", "node", cfg.NodeName, "nodeIP", cfg.NodeIP, "kubeletAPI", ln.Addr().String(), "runtime", socket)

	err = g.Wait()
	if ctx.Err() != nil && errors.Is(err, context.Canceled) {
		err = nil
	}
	return err
}

// writePauseArchive writes the sandbox image's archive under root/images
// (when missing or different) and returns its path.
func writePauseArchive(root string) (string, error) {
	bin, err := images.PauseBinary()
	if err != nil {
		return "", fmt.Errorf("agent: %w", err)
	}
	p := filepath.Join(root, "images", "pause.tar")
	if err := images.WriteArchiveFile(p, images.SandboxImageSpec(SandboxImage, bin)); err != nil {
		return "", fmt.Errorf("agent: writing the pause image: %w", err)
	}
	return p, nil
}

// optional runs a part of the agent that the node can do without: its
// failure is logged and reported, and the agent goes on.
func optional(ctx context.Context, log *slog.Logger, progress func(string, ...any), name string, run func(context.Context) error) func() error {
	return func() error {
		if err := run(ctx); err != nil && ctx.Err() == nil {
			log.Error("node part failed; the agent goes on without it", "part", name, "err", err)
			progress("%s disabled: %v", name, err)
		}
		return nil
	}
}

// portAddr is ":port", or "" (the component's default) for port 0.
func portAddr(port int) string {
	if port <= 0 {
		return "127.0.0.1:0"
	}
	return ":" + strconv.Itoa(port)
}

// podUsage adapts the stats provider's summary to eviction's per-pod
// usage.
func podUsage(p *stats.Provider) func(ctx context.Context) (map[types.UID]eviction.PodUsage, error) {
	return func(ctx context.Context) (map[types.UID]eviction.PodUsage, error) {
		sum, err := p.Summary(ctx)
		if err != nil {
			return nil, err
		}
		out := make(map[types.UID]eviction.PodUsage, len(sum.Pods))
		for _, ps := range sum.Pods {
			var u eviction.PodUsage
			if ps.Memory != nil && ps.Memory.WorkingSetBytes != nil {
				u.MemoryWorkingSetBytes = *ps.Memory.WorkingSetBytes
			}
			if ps.EphemeralStorage != nil && ps.EphemeralStorage.UsedBytes != nil {
				u.EphemeralStorageBytes = *ps.EphemeralStorage.UsedBytes
			}
			out[types.UID(ps.PodRef.UID)] = u
		}
		return out, nil
	}
}

// kubeletMetrics is the handler of the kubelet API's /metrics: the
// agent's process and Go runtime metrics and upstream kubelet's
// kubelet_node_name and kubelet_running_pods.
func kubeletMetrics(nodeName string, pods func() []*corev1.Pod) http.Handler {
	reg := prometheus.NewRegistry()
	reg.MustRegister(
		collectors.NewGoCollector(),
		collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}),
		prometheus.NewGaugeFunc(prometheus.GaugeOpts{
			Name: "kubelet_node_name", Help: "[ALPHA] The node's name. The count is always 1.",
			ConstLabels: prometheus.Labels{"node": nodeName},
		}, func() float64 { return 1 }),
		prometheus.NewGaugeFunc(prometheus.GaugeOpts{
			Name: "kubelet_running_pods", Help: "[ALPHA] Number of pods that have a running pod sandbox",
		}, func() float64 { return float64(len(pods())) }),
	)
	return promhttp.HandlerFor(reg, promhttp.HandlerOpts{})
}

// resourceMetrics is the handler of /metrics/resource.
func resourceMetrics(p *stats.Provider) http.Handler {
	reg := prometheus.NewRegistry()
	reg.MustRegister(p.ResourceCollector())
	return promhttp.HandlerFor(reg, promhttp.HandlerOpts{})
}
