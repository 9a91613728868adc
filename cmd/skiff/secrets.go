package main

import (
	"flag"
	"fmt"
	"io"
	"time"

	"github.com/skiff-dev/skiff/internal/server"
)

const secretsUsage = `Usage:
  skiff secrets rotate-key --data-dir DIR [--wait 60s]   add a new primary key for secrets at rest and re-encrypt with it

Secrets are stored in etcd encrypted with AES-GCM under the keys in
DIR/pki/encryption-keys.json; the first key encrypts, the others still decrypt.
`

// runSecrets runs "skiff secrets SUBCOMMAND".
func runSecrets(args []string, stdout, stderr io.Writer) int {
	if len(args) == 0 {
		fmt.Fprint(stderr, secretsUsage)
		return exitUsage
	}
	switch args[0] {
	case "rotate-key":
		return runSecretsRotateKey(args[1:], stdout, stderr)
	case "-h", "-help", "--help", "help":
		fmt.Fprint(stdout, secretsUsage)
		return exitOK
	default:
		fmt.Fprintf(stderr, "skiff secrets: unknown command %q\n\n%s", args[0], secretsUsage)
		return exitUsage
	}
}

// runSecretsRotateKey runs "skiff secrets rotate-key".
func runSecretsRotateKey(args []string, stdout, stderr io.Writer) int {
	fs := flag.NewFlagSet("skiff secrets rotate-key", flag.ContinueOnError)
	fs.SetOutput(stderr)
	var dataDir string
	var wait time.Duration
	fs.Usage = func() {
		fmt.Fprint(stderr, "Usage: skiff secrets rotate-key --data-dir DIR [--wait 60s]\n\n"+
			"Adds a new primary encryption key to DIR/pki/encryption-keys.json, keeping the\n"+
			"old keys for reading. A server running on DIR notices within 5s and re-encrypts\n"+
			"every secret; this waits for that (up to --wait). A stopped server re-encrypts\n"+
			"when it next starts.\n\nFlags:\n")
		fs.PrintDefaults()
	}
	fs.StringVar(&dataDir, "data-dir", "", "the server's data dir (required)")
	fs.DurationVar(&wait, "wait", time.Minute, "how long to wait for a running server to re-encrypt (0: do not wait)")
	if err := fs.Parse(args); err != nil {
		return parseExit(err)
	}
	var problems []string
	if dataDir == "" {
		problems = append(problems, "--data-dir is required")
	}
	if wait < 0 {
		problems = append(problems, "--wait must not be negative")
	}
	if err := checkFlags(fs, stderr, problems); err != nil {
		return parseExit(err)
	}
	ctx, stop := signalContext()
	defer stop()
	r, err := server.RotateEncryptionKey(ctx, dataDir, wait)
	if r.Key != "" {
		fmt.Fprintf(stdout, "new primary encryption key %s added to %s/pki/encryption-keys.json\n", r.Key, dataDir)
	}
	switch {
	case err != nil:
		fmt.Fprintf(stderr, "skiff secrets rotate-key: %v\n", err)
		return exitError
	case !r.ServerRunning:
		fmt.Fprintf(stdout, "no server is running on %s: it re-encrypts every secret with %s when it next starts\n", dataDir, r.Key)
	case r.Reencrypted:
		fmt.Fprintf(stdout, "the server re-encrypted every secret with %s\n", r.Key)
	default:
		fmt.Fprintf(stdout, "the server re-encrypts every secret with %s within a few seconds (see %s/pki/%s)\n", r.Key, dataDir, server.EncryptionStatusFile)
	}
	return exitOK
}
