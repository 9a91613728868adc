package main

import (
	"flag"
	"fmt"
	"io"
	"strings"

	"github.com/skiff-dev/skiff/internal/agent/containerd"
	"github.com/skiff-dev/skiff/internal/images"
)

const imagesUsage = `Usage:
  skiff images build-test --out DIR             build the test image archives (busybox, pause, testserver) into DIR
  skiff images import --data-dir DIR FILE.tar   import image archives into the node's containerd under DIR

build-test needs busybox-static and the Go toolchain, and runs in the skiff
source tree; import needs a running agent (its containerd) on DIR.
`

// runImages runs "skiff images SUBCOMMAND".
func runImages(args []string, stdout, stderr io.Writer) int {
	if len(args) == 0 {
		fmt.Fprint(stderr, imagesUsage)
		return exitUsage
	}
	switch args[0] {
	case "build-test":
		return runImagesBuildTest(args[1:], stdout, stderr)
	case "import":
		return runImagesImport(args[1:], stdout, stderr)
	case "-h", "-help", "--help", "help":
		fmt.Fprint(stdout, imagesUsage)
		return exitOK
	default:
		fmt.Fprintf(stderr, "skiff images: unknown command %q\n\n%s", args[0], imagesUsage)
		return exitUsage
	}
}

// imagesBuildTestFlags are the flags of "skiff images build-test".
type imagesBuildTestFlags struct {
	out, busybox, src string
}

func parseImagesBuildTestFlags(args []string, stderr io.Writer) (imagesBuildTestFlags, error) {
	var f imagesBuildTestFlags
	fs := flag.NewFlagSet("skiff images build-test", flag.ContinueOnError)
	fs.SetOutput(stderr)
	fs.Usage = func() {
		fmt.Fprint(stderr, "Usage: skiff images build-test --out DIR [flags]\n\nBuilds the OCI archives of "+
			images.BusyboxImage+", "+images.PauseImage+" and "+images.TestServerImage+" into DIR.\n\nFlags:\n")
		fs.PrintDefaults()
	}
	fs.StringVar(&f.out, "out", "", "directory to write the archives to (required)")
	fs.StringVar(&f.busybox, "busybox", "/bin/busybox", "static busybox binary to package")
	fs.StringVar(&f.src, "src", ".", "a directory inside the skiff source tree, where the Go binaries are built")
	if err := fs.Parse(args); err != nil {
		return f, err
	}
	var problems []string
	if f.out == "" {
		problems = append(problems, "--out is required")
	}
	return f, checkFlags(fs, stderr, problems)
}

func runImagesBuildTest(args []string, stdout, stderr io.Writer) int {
	f, err := parseImagesBuildTestFlags(args, stderr)
	if err != nil {
		return parseExit(err)
	}
	ctx, stop := signalContext()
	defer stop()
	paths, err := images.BuildTest(ctx, images.BuildOptions{OutDir: f.out, BusyboxPath: f.busybox, SourceDir: f.src})
	if err != nil {
		fmt.Fprintf(stderr, "skiff images build-test: %v\n", err)
		return exitError
	}
	for _, img := range []string{images.BusyboxImage, images.PauseImage, images.TestServerImage} {
		fmt.Fprintf(stdout, "%s\t%s\n", img, paths[img])
	}
	return exitOK
}

// imagesImportFlags are the flags of "skiff images import".
type imagesImportFlags struct {
	dataDir  string
	archives []string
}

func parseImagesImportFlags(args []string, stderr io.Writer) (imagesImportFlags, error) {
	var f imagesImportFlags
	fs := flag.NewFlagSet("skiff images import", flag.ContinueOnError)
	fs.SetOutput(stderr)
	fs.Usage = func() {
		fmt.Fprint(stderr, "Usage: skiff images import --data-dir DIR FILE.tar...\n\nImports image archives (oci-archive or docker-archive) into the containerd the node agent runs under DIR.\n\nFlags:\n")
		fs.PrintDefaults()
	}
	fs.StringVar(&f.dataDir, "data-dir", "", "the node's data dir (required)")
	if err := fs.Parse(args); err != nil {
		return f, err
	}
	f.archives = fs.Args()
	var problems []string
	if f.dataDir == "" {
		problems = append(problems, "--data-dir is required")
	}
	if len(f.archives) == 0 {
		problems = append(problems, "no archive to import")
	}
	if len(problems) > 0 {
		err := fmt.Errorf("skiff images import: %s", strings.Join(problems, "; "))
		fmt.Fprintln(stderr, err)
		fmt.Fprintln(stderr)
		fs.Usage()
		return f, err
	}
	return f, nil
}

func runImagesImport(args []string, stdout, stderr io.Writer) int {
	f, err := parseImagesImportFlags(args, stderr)
	if err != nil {
		return parseExit(err)
	}
	ctx, stop := signalContext()
	defer stop()
	for _, a := range f.archives {
		if err := containerd.ImportInto(ctx, f.dataDir, a); err != nil {
			fmt.Fprintf(stderr, "skiff images import: %v\n", err)
			return exitError
		}
		fmt.Fprintf(stdout, "imported %s\n", a)
	}
	return exitOK
}
