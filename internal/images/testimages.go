package images

import (
	"bytes"
	"context"
	"fmt"
	"io/fs"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
)

// The test images, as pods name them, and fully qualified as containerd
// stores them.
const (
	BusyboxImage    = "skiff-test/busybox:1.35"
	PauseImage      = "skiff-test/pause:3.10"
	TestServerImage = "skiff-test/testserver:1"

	BusyboxRef    = "docker.io/" + BusyboxImage
	PauseRef      = "docker.io/" + PauseImage
	TestServerRef = "docker.io/" + TestServerImage
)

// Archive file names BuildTest writes in its output directory.
const (
	BusyboxArchive    = "busybox.tar"
	PauseArchive      = "pause.tar"
	TestServerArchive = "testserver.tar"
)

// Go packages of the two binaries BuildTest compiles.
const (
	pausePackage      = "github.com/skiff-dev/skiff/internal/images/pause"
	testServerPackage = "github.com/skiff-dev/skiff/test/images/testserver"
)

// defaultPath is the PATH of every test image.
const defaultPath = "PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"

// BuildOptions says where BuildTest reads from and writes to.
type BuildOptions struct {
	// OutDir receives the archives; it is created when missing.
	OutDir string
	// BusyboxPath is a static busybox binary; "" means /bin/busybox.
	BusyboxPath string
	// SourceDir is a directory inside the skiff module, where "go build"
	// runs; "" means the current directory.
	SourceDir string
	// GoBin is the go command; "" means "go" from PATH.
	GoBin string
}

// BuildTest builds the three test images into opts.OutDir and returns the
// archive paths keyed by short image name (BusyboxImage, PauseImage,
// TestServerImage). It needs a static busybox and the Go toolchain; it
// overwrites existing archives. Not safe to call concurrently on one OutDir.
func BuildTest(ctx context.Context, opts BuildOptions) (map[string]string, error) {
	if opts.OutDir == "" {
		return nil, fmt.Errorf("images: building test images: no output directory")
	}
	if err := os.MkdirAll(opts.OutDir, 0o755); err != nil {
		return nil, fmt.Errorf("images: building test images: %w", err)
	}
	bb, err := BusyboxImageSpec(opts.BusyboxPath)
	if err != nil {
		return nil, err
	}
	pauseBin, err := goBuild(ctx, opts, pausePackage)
	if err != nil {
		return nil, err
	}
	tsBin, err := goBuild(ctx, opts, testServerPackage)
	if err != nil {
		return nil, err
	}
	imgs := []struct {
		name, file string
		img        Image
	}{
		{BusyboxImage, BusyboxArchive, bb},
		{PauseImage, PauseArchive, PauseImageSpec(pauseBin)},
		{TestServerImage, TestServerArchive, TestServerImageSpec(tsBin)},
	}
	out := map[string]string{}
	for _, i := range imgs {
		p := filepath.Join(opts.OutDir, i.file)
		if err := WriteArchiveFile(p, i.img); err != nil {
			return nil, err
		}
		out[i.name] = p
	}
	return out, nil
}

// WriteArchiveFile writes img's archive to p through a temporary file so a
// reader never sees half an archive. It creates p's directory when missing.
func WriteArchiveFile(p string, img Image) error {
	if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
		return fmt.Errorf("images: writing %s: %w", p, err)
	}
	tmp, err := os.CreateTemp(filepath.Dir(p), ".tmp-"+filepath.Base(p))
	if err != nil {
		return fmt.Errorf("images: writing %s: %w", p, err)
	}
	defer os.Remove(tmp.Name())
	if err := img.WriteArchive(tmp); err != nil {
		tmp.Close()
		return err
	}
	if err := tmp.Close(); err != nil {
		return fmt.Errorf("images: writing %s: %w", p, err)
	}
	if err := os.Chmod(tmp.Name(), 0o644); err != nil {
		return fmt.Errorf("images: writing %s: %w", p, err)
	}
	if err := os.Rename(tmp.Name(), p); err != nil {
		return fmt.Errorf("images: writing %s: %w", p, err)
	}
	return nil
}

// goBuild compiles pkg as a static binary and returns its bytes.
func goBuild(ctx context.Context, opts BuildOptions, pkg string) ([]byte, error) {
	goBin := opts.GoBin
	if goBin == "" {
		goBin = "go"
	}
	dir, err := os.MkdirTemp("", "skiff-images-")
	if err != nil {
		return nil, fmt.Errorf("images: building %s: %w", pkg, err)
	}
	defer os.RemoveAll(dir)
	out := filepath.Join(dir, "bin")
	cmd := exec.CommandContext(ctx, goBin, "build", "-buildvcs=false", "-ldflags=-s -w", "-o", out, pkg)
	cmd.Dir = opts.SourceDir
	cmd.Env = append(os.Environ(), "CGO_ENABLED=0", "GOOS=linux")
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	if err := cmd.Run(); err != nil {
		return nil, fmt.Errorf("images: building %s: %w: %s", pkg, err, strings.TrimSpace(stderr.String()))
	}
	b, err := os.ReadFile(out)
	if err != nil {
		return nil, fmt.Errorf("images: building %s: %w", pkg, err)
	}
	return b, nil
}

// minimalEtc is the /etc of every test image.
func minimalEtc() []File {
	return []File{
		{Path: "etc/passwd", Data: []byte("root:x:0:0:root:/root:/bin/sh\nnobody:x:65534:65534:nobody:/nonexistent:/bin/false\n")},
		{Path: "etc/group", Data: []byte("root:x:0:\nnogroup:x:65534:\n")},
		{Path: "etc/hosts", Data: []byte("127.0.0.1\tlocalhost\n::1\tlocalhost ip6-localhost ip6-loopback\n")},
		{Path: "etc/nsswitch.conf", Data: []byte("hosts: files dns\n")},
		{Path: "tmp", Dir: true, Mode: 0o777 | fs.ModeSticky},
		{Path: "root", Dir: true, Mode: 0o700},
	}
}

// BusyboxImageSpec describes skiff-test/busybox:1.35 from the static busybox
// at bbPath ("" means /bin/busybox): the binary at /bin/busybox, a link per
// applet at the path "busybox --list-full" names, and a minimal /etc. Its
// command is "sh".
func BusyboxImageSpec(bbPath string) (Image, error) {
	if bbPath == "" {
		bbPath = "/bin/busybox"
	}
	bin, err := os.ReadFile(bbPath)
	if err != nil {
		return Image{}, fmt.Errorf("images: reading busybox (install busybox-static): %w", err)
	}
	out, err := exec.Command(bbPath, "--list-full").Output()
	if err != nil {
		return Image{}, fmt.Errorf("images: listing busybox applets of %s: %w", bbPath, err)
	}
	files := append(minimalEtc(), File{Path: "bin/busybox", Mode: 0o755, Data: bin})
	for _, a := range strings.Fields(string(out)) {
		a = strings.TrimPrefix(a, "/")
		if a == "bin/busybox" || a == "" {
			continue
		}
		files = append(files, File{Path: a, Linkname: "/bin/busybox"})
	}
	return Image{
		Ref:    BusyboxRef,
		Layers: []Layer{{Files: files}},
		Config: Config{Cmd: []string{"sh"}, Env: []string{defaultPath}, WorkingDir: "/"},
	}, nil
}

// PauseImageSpec describes skiff-test/pause:3.10 around the pause binary.
func PauseImageSpec(pauseBin []byte) Image {
	return Image{
		Ref: PauseRef,
		Layers: []Layer{{Files: append(minimalEtc(),
			File{Path: "pause", Mode: 0o755, Data: pauseBin})}},
		Config: Config{Entrypoint: []string{"/pause"}, Env: []string{defaultPath}, WorkingDir: "/", StopSignal: "SIGINT"},
	}
}

// SandboxImageSpec describes the node's sandbox image ref (as pods would
// name it, e.g. "skiff/pause:3.10") around pauseBin (see PauseBinary).
func SandboxImageSpec(ref string, pauseBin []byte) Image {
	img := PauseImageSpec(pauseBin)
	img.Ref = qualify(ref)
	return img
}

// qualify returns ref as containerd stores it: with a registry host
// ("docker.io/" when the first path element is not one) and "library/" for
// single-element names.
func qualify(ref string) string {
	first, rest, found := strings.Cut(ref, "/")
	if !found {
		return "docker.io/library/" + ref
	}
	if strings.ContainsAny(first, ".:") || first == "localhost" {
		return ref
	}
	return "docker.io/" + first + "/" + rest
}

// TestServerImageSpec describes skiff-test/testserver:1 around the test
// server binary. It listens on 8080 (HTTP) and 9000 (TCP echo).
func TestServerImageSpec(serverBin []byte) Image {
	return Image{
		Ref: TestServerRef,
		Layers: []Layer{{Files: append(minimalEtc(),
			File{Path: "testserver", Mode: 0o755, Data: serverBin})}},
		Config: Config{
			Entrypoint:   []string{"/testserver"},
			Env:          []string{defaultPath},
			WorkingDir:   "/",
			ExposedPorts: map[string]struct{}{"8080/tcp": {}, "9000/tcp": {}},
		},
	}
}
