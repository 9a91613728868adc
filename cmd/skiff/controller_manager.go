package main

import (
	"flag"
	"fmt"
	"io"
	"strings"

	"k8s.io/client-go/tools/clientcmd"

	"github.com/skiff-dev/skiff/internal/controller/csrsigning"
	"github.com/skiff-dev/skiff/internal/controllermanager"
	"github.com/skiff-dev/skiff/internal/gctune"
)

// controllerManagerFlags are the flags of "skiff controller-manager".
type controllerManagerFlags struct {
	kubeconfig  string
	leaderElect bool
	controllers string
	workers     int
	signingCert string
	signingKey  string
	log         logFlags
}

func parseControllerManagerFlags(args []string, stderr io.Writer) (controllerManagerFlags, error) {
	var f controllerManagerFlags
	fs := flag.NewFlagSet("skiff controller-manager", flag.ContinueOnError)
	fs.SetOutput(stderr)
	fs.Usage = func() {
		fmt.Fprint(stderr, "Usage: skiff controller-manager --kubeconfig FILE [flags]\n\n"+
			"Runs the controllers (replicasets, namespaces, …) against an API server.\n\nFlags:\n")
		fs.PrintDefaults()
	}
	fs.StringVar(&f.kubeconfig, "kubeconfig", "", "kubeconfig file with the API server and the identity the controllers act as (required)")
	fs.BoolVar(&f.leaderElect, "leader-elect", true, "run only while holding the Lease "+
		controllermanager.LeaseNamespace+"/"+controllermanager.LeaseName+" (for running several managers)")
	fs.StringVar(&f.controllers, "controllers", "*", "comma-separated controllers to run: '*' for all, 'name' to enable, '-name' to disable; known: "+
		strings.Join(controllermanager.Names(), ", "))
	fs.IntVar(&f.workers, "workers", 0, "workers per controller (0: each controller's default)")
	fs.StringVar(&f.signingCert, "cluster-signing-cert-file", "", "the cluster CA certificate that signs approved certificate signing requests (with --cluster-signing-key-file; e.g. DIR/pki/ca.crt)")
	fs.StringVar(&f.signingKey, "cluster-signing-key-file", "", "the cluster CA key (e.g. DIR/pki/ca.key)")
	f.log.register(fs)
	if err := fs.Parse(args); err != nil {
		return f, err
	}
	var problems []string
	if f.kubeconfig == "" {
		problems = append(problems, "--kubeconfig is required")
	}
	problems = append(problems, f.log.problems()...)
	known := map[string]bool{"*": true}
	for _, n := range controllermanager.Names() {
		known[n] = true
	}
	for _, n := range splitList(f.controllers) {
		if !known[strings.TrimPrefix(n, "-")] {
			problems = append(problems, fmt.Sprintf("--controllers: unknown controller %q", n))
		}
	}
	if (f.signingCert == "") != (f.signingKey == "") {
		problems = append(problems, "--cluster-signing-cert-file and --cluster-signing-key-file go together")
	}
	if f.workers < 0 {
		problems = append(problems, fmt.Sprintf("--workers must not be negative, not %d", f.workers))
	}
	return f, checkFlags(fs, stderr, problems)
}

// runControllerManager runs "skiff controller-manager" until SIGTERM or
// SIGINT and returns the process exit code.
func runControllerManager(args []string, stderr io.Writer) int {
	f, err := parseControllerManagerFlags(args, stderr)
	if err != nil {
		return parseExit(err)
	}
	restConfig, err := clientcmd.BuildConfigFromFlags("", f.kubeconfig)
	if err != nil {
		fmt.Fprintf(stderr, "skiff controller-manager: reading --kubeconfig: %v\n", err)
		return exitError
	}
	cfg := controllermanager.Config{
		RestConfig:     restConfig,
		Logger:         f.log.logger(stderr),
		LeaderElection: f.leaderElect,
		Controllers:    splitList(f.controllers),
		Workers:        f.workers,
	}
	if f.signingCert != "" {
		if cfg.Signer, err = csrsigning.FileSigner(f.signingCert, f.signingKey); err != nil {
			fmt.Fprintf(stderr, "skiff controller-manager: %v\n", err)
			return exitError
		}
	}

	ctx, stop := signalContext()
	defer stop()
	gctune.Start(ctx)
	if err := controllermanager.Run(ctx, cfg); err != nil {
		fmt.Fprintf(stderr, "skiff controller-manager: %v\n", err)
		return exitError
	}
	return exitOK
}
