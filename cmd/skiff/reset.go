package main

import (
	"flag"
	"fmt"
	"io"

	"github.com/skiff-dev/skiff/internal/agent"
)

// runReset runs "skiff reset --data-dir DIR" and returns the exit code.
func runReset(args []string, stdout, stderr io.Writer) int {
	fs := flag.NewFlagSet("skiff reset", flag.ContinueOnError)
	fs.SetOutput(stderr)
	var dataDir string
	var log logFlags
	fs.Usage = func() {
		fmt.Fprint(stderr, "Usage: skiff reset --data-dir DIR\n\nStops and removes every pod the node agent of DIR runs (containers, sandboxes,\npod networks) through its containerd, and deletes the node's nftables tables.\nThe agent (or the server running it) must be stopped first; the cluster's data\nis not touched.\n\nFlags:\n")
		fs.PrintDefaults()
	}
	fs.StringVar(&dataDir, "data-dir", "", "the node's data dir (required)")
	log.register(fs)
	if err := fs.Parse(args); err != nil {
		return parseExit(err)
	}
	var problems []string
	if dataDir == "" {
		problems = append(problems, "--data-dir is required")
	}
	problems = append(problems, log.problems()...)
	if err := checkFlags(fs, stderr, problems); err != nil {
		return parseExit(err)
	}
	ctx, stop := signalContext()
	defer stop()
	if err := agent.Reset(ctx, dataDir, log.logger(stderr)); err != nil {
		fmt.Fprintf(stderr, "skiff reset: %v\n", err)
		return exitError
	}
	fmt.Fprintf(stdout, "node in %s reset: no pods left running\n", dataDir)
	return exitOK
}
