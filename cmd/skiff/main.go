// Command skiff is the skiff binary: every component behind a subcommand.
//
// It only parses flags, builds configurations and starts components; see
// the server package for what "skiff server" runs.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"net/netip"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/skiff-dev/skiff/internal/audit"
	"github.com/skiff-dev/skiff/internal/controller/csrsigning"
	"github.com/skiff-dev/skiff/internal/controllermanager"
	"github.com/skiff-dev/skiff/internal/gctune"
	"github.com/skiff-dev/skiff/internal/scheduler"
	"github.com/skiff-dev/skiff/internal/server"
)

func main() {
	os.Exit(run(os.Args[1:], os.Stdout, os.Stderr))
}

// Exit codes.
const (
	exitOK    = 0
	exitError = 1
	exitUsage = 2
)

const usage = `skiff is a container orchestrator that speaks the Kubernetes API.

Usage:
  skiff server --data-dir DIR [flags]            run the control plane (etcd, API server, scheduler, controllers) and a node agent
  skiff agent --data-dir DIR --kubeconfig FILE   run the node agent: this machine becomes a Node running pods
  skiff agent --data-dir DIR --server URL --token TOKEN   join this machine to a cluster with a bootstrap token, then run the node agent
  skiff reset --data-dir DIR                     stop and remove every pod of a stopped node (containers, networks)
  skiff token create --data-dir DIR [--ttl 24h]  create a bootstrap token and print the command that joins a node
  skiff scheduler --kubeconfig FILE [flags]      run only the scheduler against an API server
  skiff controller-manager --kubeconfig FILE     run only the controllers against an API server
  skiff images build-test --out DIR              build the test images (busybox, pause, testserver) as OCI archives
  skiff images import --data-dir DIR FILE.tar    load an image archive into the node's containerd
  skiff secrets rotate-key --data-dir DIR        encrypt secrets at rest with a new key (re-encrypts them)
  skiff version                                  print the version

Run "skiff <command> -h" for a command's flags.
`

// run executes one command line and returns the process exit code.
func run(args []string, stdout, stderr io.Writer) int {
	if len(args) == 0 {
		fmt.Fprint(stderr, usage)
		return exitUsage
	}
	switch args[0] {
	case "server":
		return runServer(args[1:], stderr)
	case "agent":
		return runAgent(args[1:], stderr)
	case "reset":
		return runReset(args[1:], stdout, stderr)
	case "scheduler":
		return runScheduler(args[1:], stderr)
	case "controller-manager":
		return runControllerManager(args[1:], stderr)
	case "images":
		return runImages(args[1:], stdout, stderr)
	case "token":
		return runToken(args[1:], stdout, stderr)
	case "secrets":
		return runSecrets(args[1:], stdout, stderr)
	case "version":
		return runVersion(args[1:], stdout, stderr)
	case "-h", "-help", "--help", "help":
		fmt.Fprint(stdout, usage)
		return exitOK
	default:
		fmt.Fprintf(stderr, "skiff: unknown command %q\n\n%s", args[0], usage)
		return exitUsage
	}
}

func runVersion(args []string, stdout, stderr io.Writer) int {
	fs := flag.NewFlagSet("skiff version", flag.ContinueOnError)
	fs.SetOutput(stderr)
	if err := fs.Parse(args); err != nil {
		return parseExit(err)
	}
	if fs.NArg() > 0 {
		fmt.Fprintf(stderr, "skiff version: unexpected argument %q\n", fs.Arg(0))
		return exitUsage
	}
	fmt.Fprintf(stdout, "skiff %s (Kubernetes API %s)\n", server.Version, server.KubernetesVersion)
	return exitOK
}

// serverFlags are the flags of "skiff server".
type serverFlags struct {
	dataDir      string
	listen       string
	advertise    string
	etcdServers  string
	disableAgent bool
	node         nodeFlags
	// disableScheduler and disableControllers leave those components to
	// be run elsewhere (skiff scheduler, skiff controller-manager).
	disableScheduler   bool
	disableControllers bool
	serviceCIDR        string
	log                logFlags
	// audit is the audit log (--audit-log-*).
	audit server.AuditConfig
	// eventTTL is how long events are kept (--event-ttl).
	eventTTL time.Duration
}

func parseServerFlags(args []string, stderr io.Writer) (serverFlags, error) {
	var f serverFlags
	fs := flag.NewFlagSet("skiff server", flag.ContinueOnError)
	fs.SetOutput(stderr)
	fs.Usage = func() {
		fmt.Fprint(stderr, "Usage: skiff server --data-dir DIR [flags]\n\nRuns the API server on etcd (embedded unless --etcd-servers is given).\n\nFlags:\n")
		fs.PrintDefaults()
	}
	fs.StringVar(&f.dataDir, "data-dir", "", "directory for etcd data, certificates and the admin kubeconfig (required; e.g. /var/lib/skiff)")
	fs.StringVar(&f.listen, "listen", server.DefaultListen, "host:port the API serves HTTPS on")
	fs.StringVar(&f.advertise, "advertise-address", "", "IP pods reach the API at (the kubernetes Service's endpoint; default: the --listen IP when it is a network address, else the node's IP; a loopback-only server then also listens there)")
	fs.StringVar(&f.etcdServers, "etcd-servers", "", "comma-separated client URLs of an external etcd cluster (default: embedded etcd under DIR/etcd)")
	fs.BoolVar(&f.disableAgent, "disable-agent", false, "do not run the node agent on this machine (a control plane without pods of its own)")
	fs.BoolVar(&f.disableScheduler, "disable-scheduler", false, "do not run the scheduler (run skiff scheduler elsewhere)")
	fs.BoolVar(&f.disableControllers, "disable-controller-manager", false, "do not run the controllers (run skiff controller-manager elsewhere)")
	fs.StringVar(&f.serviceCIDR, "service-cidr", "10.96.0.0/12", "range of Services' cluster IPs; its first address is the kubernetes Service's")
	fs.DurationVar(&f.eventTTL, "event-ttl", server.DefaultEventTTL, "how long events are kept after their last update")
	f.node.register(fs)
	f.log.register(fs)
	registerAuditFlags(fs, &f.audit)
	if err := fs.Parse(args); err != nil {
		return f, err
	}
	var problems []string
	if f.dataDir == "" {
		problems = append(problems, "--data-dir is required")
	}
	if _, err := netip.ParsePrefix(f.serviceCIDR); err != nil {
		problems = append(problems, fmt.Sprintf("--service-cidr: %v", err))
	}
	if f.eventTTL < time.Second {
		problems = append(problems, fmt.Sprintf("--event-ttl: %v is shorter than a second", f.eventTTL))
	}
	problems = append(problems, f.node.problems()...)
	problems = append(problems, f.log.problems()...)
	return f, checkFlags(fs, stderr, problems)
}

func runServer(args []string, stderr io.Writer) int {
	f, err := parseServerFlags(args, stderr)
	if err != nil {
		return parseExit(err)
	}
	cfg := server.Config{
		DataDir:          f.dataDir,
		Listen:           f.listen,
		AdvertiseAddress: f.advertise,
		EtcdServers:      splitList(f.etcdServers),
		ServiceCIDR:      f.serviceCIDR,
		Logger:           f.log.logger(stderr),
		Progress:         stderr,
		Components:       controlPlaneComponents(f.dataDir, !f.disableScheduler, !f.disableControllers),
		AuditConfig:      f.audit,
		EventTTL:         f.eventTTL,
	}
	dnsIP, err := dnsServiceIP(f.serviceCIDR)
	if err != nil {
		fmt.Fprintf(stderr, "skiff server: %v\n", err)
		return exitError
	}
	net, err := clusterNetworkComponent(f.serviceCIDR, f.node.nodeIP, f.node.clusterDomain, stderr)
	if err != nil {
		fmt.Fprintf(stderr, "skiff server: %v\n", err)
		return exitError
	}
	cfg.Components = append(cfg.Components, net)
	if !f.disableAgent {
		c, err := agentComponent(f.dataDir, f.node, dnsIP, stderr)
		if err != nil {
			fmt.Fprintf(stderr, "skiff server: %v\n", err)
			return exitError
		}
		cfg.Components = append(cfg.Components, c)
	}

	ctx, stop := signalContext()
	defer stop()
	gctune.Start(ctx)
	if err := server.Run(ctx, cfg); err != nil {
		fmt.Fprintf(stderr, "skiff server: %v\n", err)
		return exitError
	}
	return exitOK
}

// parseExit maps a flag parsing error to an exit code: -h is success.
func parseExit(err error) int {
	if errors.Is(err, flag.ErrHelp) {
		return exitOK
	}
	return exitUsage
}

func splitList(s string) []string {
	var out []string
	for _, p := range strings.Split(s, ",") {
		if p = strings.TrimSpace(p); p != "" {
			out = append(out, p)
		}
	}
	return out
}

// controlPlaneComponents are what "skiff server" runs beside the API
// server. Each holds a Lease, so that several servers sharing one etcd run
// one active scheduler and one active controller manager.
func controlPlaneComponents(dataDir string, withScheduler, withControllers bool) []server.Component {
	var out []server.Component
	if withScheduler {
		out = append(out, server.Component{Name: "scheduler", Identity: schedulerIdentity(), Run: func(ctx context.Context, env server.Env) error {
			return scheduler.Run(ctx, scheduler.Config{RestConfig: env.Config, Logger: env.Logger, LeaderElection: true, NewInformers: env.Informers.Scope})
		}})
	}
	if withControllers {
		out = append(out, server.Component{Name: "controller-manager", Identity: controllerManagerIdentity(), Run: func(ctx context.Context, env server.Env) error {
			// The CA is created before components start; it signs approved
			// certificate signing requests.
			signer, err := csrsigning.FileSigner(filepath.Join(dataDir, "pki", "ca.crt"), filepath.Join(dataDir, "pki", "ca.key"))
			if err != nil {
				return fmt.Errorf("cluster signing key: %w", err)
			}
			return controllermanager.Run(ctx, controllermanager.Config{RestConfig: env.Config, Logger: env.Logger, LeaderElection: true, Signer: signer,
				NewInformers: env.Informers.Scope})
		}})
	}
	return out
}

// registerAuditFlags adds the --audit-log-* flags of "skiff server". Unset
// flags leave c's fields zero, which the server reads as its defaults.
func registerAuditFlags(fs *flag.FlagSet, c *server.AuditConfig) {
	fs.StringVar(&c.AuditLogPath, "audit-log-path", "", `audit log file, JSON lines ("-": standard output; default DIR/`+server.AuditLogFileName+`)`)
	fs.Func("audit-log-level", "audit `LEVEL`: None (no log), Metadata, Request (adds request bodies) or RequestResponse (adds response bodies) (default Metadata)", func(v string) error {
		l, err := audit.ParseLevel(v)
		if err != nil {
			return err
		}
		c.AuditLevel = l
		return nil
	})
	fs.IntVar(&c.AuditMaxSizeMB, "audit-log-maxsize", 0, fmt.Sprintf("rotate the audit log at this size in `MB` (default %d; -1: never)", server.DefaultAuditMaxSizeMB))
	fs.IntVar(&c.AuditMaxBackups, "audit-log-maxbackup", 0, fmt.Sprintf("rotated audit logs to keep (default %d; -1: none)", server.DefaultAuditMaxBackups))
}
