package main

import (
	"context"
	"crypto/x509"
	"encoding/pem"
	"errors"
	"flag"
	"fmt"
	"io"
	"net"
	"net/url"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"text/tabwriter"
	"time"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/fields"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/tools/clientcmd"

	"github.com/skiff-dev/skiff/internal/agent/bootstrap"
	"github.com/skiff-dev/skiff/internal/auth/tokens"
)

// defaultTokenGroup is the extra group of the tokens "skiff token create"
// makes, as kubeadm's system:bootstrappers:kubeadm:default-node-token.
const defaultTokenGroup = "system:bootstrappers:skiff:default-node-token"

const tokenUsage = `Usage:
  skiff token create --data-dir DIR [--ttl 24h] [--description TEXT] [--server URL]
      create a bootstrap token and print the command that joins a node with it
  skiff token list --data-dir DIR
      list the bootstrap tokens (ids, expiry, description; not the secrets)

DIR is the server's data directory (its admin kubeconfig and pki/ca.crt).
`

// runToken runs "skiff token" and returns the exit code.
func runToken(args []string, stdout, stderr io.Writer) int {
	if len(args) == 0 {
		fmt.Fprint(stderr, tokenUsage)
		return exitUsage
	}
	switch args[0] {
	case "create":
		return runTokenCreate(args[1:], stdout, stderr)
	case "list":
		return runTokenList(args[1:], stdout, stderr)
	case "-h", "-help", "--help", "help":
		fmt.Fprint(stdout, tokenUsage)
		return exitOK
	default:
		fmt.Fprintf(stderr, "skiff token: unknown command %q\n\n%s", args[0], tokenUsage)
		return exitUsage
	}
}

// tokenCreateFlags are the flags of "skiff token create".
type tokenCreateFlags struct {
	dataDir, description, server string
	ttl                          time.Duration
}

func parseTokenCreateFlags(args []string, stderr io.Writer) (tokenCreateFlags, error) {
	var f tokenCreateFlags
	fs := flag.NewFlagSet("skiff token create", flag.ContinueOnError)
	fs.SetOutput(stderr)
	fs.Usage = func() {
		fmt.Fprint(stderr, "Usage: skiff token create --data-dir DIR [flags]\n\nCreates a bootstrap token (a kube-system secret) and prints it and the join command:\n  skiff agent --server URL --token K10<CA hash>::<id>.<secret> --data-dir DIR\n\nFlags:\n")
		fs.PrintDefaults()
	}
	fs.StringVar(&f.dataDir, "data-dir", "", "the server's data directory, with kubeconfig and pki/ca.crt (required)")
	fs.DurationVar(&f.ttl, "ttl", 24*time.Hour, "how long the token authenticates (0: forever)")
	fs.StringVar(&f.description, "description", "", "what the token is for (stored in the secret)")
	fs.StringVar(&f.server, "server", "", "API server URL for the join command (default: the admin kubeconfig's, which may be a loopback address other machines cannot reach)")
	if err := fs.Parse(args); err != nil {
		return f, err
	}
	var problems []string
	if f.dataDir == "" {
		problems = append(problems, "--data-dir is required")
	}
	if f.ttl < 0 {
		problems = append(problems, "--ttl must not be negative")
	}
	if f.server != "" {
		if u, err := url.Parse(f.server); err != nil || u.Scheme != "https" || u.Host == "" {
			problems = append(problems, fmt.Sprintf("--server: %q is not an https URL", f.server))
		}
	}
	return f, checkFlags(fs, stderr, problems)
}

func runTokenCreate(args []string, stdout, stderr io.Writer) int {
	f, err := parseTokenCreateFlags(args, stderr)
	if err != nil {
		return parseExit(err)
	}
	ctx, stop := signalContext()
	defer stop()
	join, server, err := createJoinToken(ctx, f)
	if err != nil {
		fmt.Fprintf(stderr, "skiff token create: %v\n", err)
		return exitError
	}
	fmt.Fprintf(stdout, "%s\n\nJoin a node (as root, on the node) with:\n\n  skiff agent --server %s --token %s --data-dir /var/lib/skiff-agent\n", join, server, join)
	if isLoopbackURL(server) {
		fmt.Fprintf(stderr, "skiff token create: warning: %s is a loopback address; other machines need --server https://<this machine's address>:<port> (and the server listening there)\n", server)
	}
	return exitOK
}

// createJoinToken creates a bootstrap token with the data dir's admin
// credentials and returns the join token and the server URL to join.
func createJoinToken(ctx context.Context, f tokenCreateFlags) (join, server string, err error) {
	client, host, err := adminClient(f.dataDir)
	if err != nil {
		return "", "", err
	}
	if f.server != "" {
		host = f.server
	}
	hash, err := caHashOf(filepath.Join(f.dataDir, "pki", "ca.crt"))
	if err != nil {
		return "", "", err
	}
	tok, err := tokens.CreateBootstrapToken(ctx, client, f.ttl, f.description, []string{defaultTokenGroup})
	if err != nil {
		return "", "", err
	}
	join, err = bootstrap.FormatJoinToken(tok, hash)
	if err != nil {
		return "", "", err
	}
	return join, host, nil
}

// adminClient builds a client from DIR/kubeconfig and returns it and the
// server URL.
func adminClient(dataDir string) (kubernetes.Interface, string, error) {
	path := filepath.Join(dataDir, "kubeconfig")
	rc, err := clientcmd.BuildConfigFromFlags("", path)
	if err != nil {
		if errors.Is(err, os.ErrNotExist) {
			return nil, "", fmt.Errorf("no admin kubeconfig %s: is a skiff server running with --data-dir %s?", path, dataDir)
		}
		return nil, "", fmt.Errorf("reading %s: %w", path, err)
	}
	rc.Timeout = 30 * time.Second
	client, err := kubernetes.NewForConfig(rc)
	if err != nil {
		return nil, "", fmt.Errorf("building a client: %w", err)
	}
	return client, rc.Host, nil
}

// caHashOf returns "sha256:<hex>" of the CA certificate in path.
func caHashOf(path string) (string, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return "", fmt.Errorf("reading the cluster CA: %w", err)
	}
	blk, _ := pem.Decode(data)
	if blk == nil || blk.Type != "CERTIFICATE" {
		return "", fmt.Errorf("%s holds no PEM certificate", path)
	}
	ca, err := x509.ParseCertificate(blk.Bytes)
	if err != nil {
		return "", fmt.Errorf("parsing %s: %w", path, err)
	}
	return bootstrap.CAHash(ca), nil
}

func isLoopbackURL(s string) bool {
	u, err := url.Parse(s)
	if err != nil {
		return false
	}
	if u.Hostname() == "localhost" {
		return true
	}
	ip := net.ParseIP(u.Hostname())
	return ip != nil && ip.IsLoopback()
}

func runTokenList(args []string, stdout, stderr io.Writer) int {
	fs := flag.NewFlagSet("skiff token list", flag.ContinueOnError)
	fs.SetOutput(stderr)
	dataDir := fs.String("data-dir", "", "the server's data directory, with kubeconfig (required)")
	if err := fs.Parse(args); err != nil {
		return parseExit(err)
	}
	var problems []string
	if *dataDir == "" {
		problems = append(problems, "--data-dir is required")
	}
	if err := checkFlags(fs, stderr, problems); err != nil {
		return parseExit(err)
	}
	client, _, err := adminClient(*dataDir)
	if err != nil {
		fmt.Fprintf(stderr, "skiff token list: %v\n", err)
		return exitError
	}
	ctx, stop := signalContext()
	defer stop()
	list, err := client.CoreV1().Secrets(tokens.BootstrapTokenNamespace).List(ctx, metav1.ListOptions{
		FieldSelector: fields.OneTermEqualSelector("type", string(corev1.SecretTypeBootstrapToken)).String(),
	})
	if err != nil {
		fmt.Fprintf(stderr, "skiff token list: %v\n", err)
		return exitError
	}
	writeTokenList(stdout, list.Items, time.Now())
	return exitOK
}

// writeTokenList prints one line per bootstrap token secret: its id,
// expiry, usages, description and extra groups (never the secret).
func writeTokenList(w io.Writer, secrets []corev1.Secret, now time.Time) {
	tw := tabwriter.NewWriter(w, 0, 8, 3, ' ', 0)
	fmt.Fprintln(tw, "ID\tEXPIRES\tDESCRIPTION\tEXTRA GROUPS")
	sort.Slice(secrets, func(i, j int) bool { return secrets[i].Name < secrets[j].Name })
	for _, s := range secrets {
		id := string(s.Data[tokens.BootstrapTokenIDKey])
		if id == "" || !strings.HasPrefix(s.Name, tokens.BootstrapTokenSecretPrefix) {
			continue
		}
		expires := "<never>"
		if exp := string(s.Data[tokens.BootstrapTokenExpirationKey]); exp != "" {
			expires = exp
			if t, err := time.Parse(time.RFC3339, exp); err == nil && !now.Before(t) {
				expires += " (expired)"
			}
		}
		desc := string(s.Data[tokens.BootstrapTokenDescriptionKey])
		if desc == "" {
			desc = "<none>"
		}
		groups := string(s.Data[tokens.BootstrapTokenExtraGroupsKey])
		if groups == "" {
			groups = "<none>"
		}
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\n", id, expires, desc, groups)
	}
	_ = tw.Flush()
}
