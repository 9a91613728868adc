package containerd

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"text/template"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials/insecure"
	runtimeapi "k8s.io/cri-api/pkg/apis/runtime/v1"
)

// Defaults of Config.
const (
	DefaultBinary       = "/usr/bin/containerd"
	DefaultCtrBinary    = "/usr/bin/ctr"
	DefaultCNIBinDir    = "/usr/lib/cni"
	DefaultSandboxImage = "skiff-test/pause:3.10"
	DefaultStartTimeout = 30 * time.Second
	DefaultStopTimeout  = 10 * time.Second
)

// Namespace is the containerd namespace the CRI keeps its images and
// containers in.
const Namespace = "k8s.io"

// Snapshotters Config.Snapshotter accepts.
const (
	SnapshotterOverlay = "overlayfs"
	SnapshotterNative  = "native"
)

// Layout is where a data dir keeps containerd's files. All paths are
// absolute.
type Layout struct {
	Dir         string // DIR/containerd
	Config      string // DIR/containerd/config.toml
	Root        string // DIR/containerd/root
	State       string // DIR/containerd/state
	Socket      string // DIR/containerd/containerd.sock
	CNIConfDir  string // DIR/containerd/cni/net.d
	Log         string // DIR/containerd/containerd.log
	PIDFile     string // DIR/containerd/containerd.pid
	Snapshotter string // DIR/containerd/snapshotter: the snapshotter chosen, for Import
}

// LayoutOf returns the layout of dataDir. It touches nothing.
func LayoutOf(dataDir string) (Layout, error) {
	abs, err := filepath.Abs(dataDir)
	if err != nil {
		return Layout{}, fmt.Errorf("containerd: data dir %q: %w", dataDir, err)
	}
	d := filepath.Join(abs, "containerd")
	return Layout{
		Dir:         d,
		Config:      filepath.Join(d, "config.toml"),
		Root:        filepath.Join(d, "root"),
		State:       filepath.Join(d, "state"),
		Socket:      filepath.Join(d, "containerd.sock"),
		CNIConfDir:  filepath.Join(d, "cni", "net.d"),
		Log:         filepath.Join(d, "containerd.log"),
		PIDFile:     filepath.Join(d, "containerd.pid"),
		Snapshotter: filepath.Join(d, "snapshotter"),
	}, nil
}

// Config configures a Supervisor. The zero value of every field but DataDir
// means its default.
type Config struct {
	// DataDir is the node's data dir; containerd lives in DataDir/containerd.
	DataDir string
	// Binary and CtrBinary are the containerd and ctr commands.
	Binary, CtrBinary string
	// CNIBinDir holds the CNI plugins.
	CNIBinDir string
	// SandboxImage is the CRI's pause image, as pods would name it.
	SandboxImage string
	// Snapshotter is SnapshotterOverlay, SnapshotterNative, or "" to use
	// overlayfs where an overlay mount works under the root dir and native
	// elsewhere.
	Snapshotter string
	// ImageArchives are imported, in order, each time containerd has
	// started and before Ready is closed; the agent passes the pause
	// image's archive here.
	ImageArchives []string
	// StartTimeout bounds the wait for the CRI to answer; StopTimeout the
	// wait after SIGTERM before SIGKILL.
	StartTimeout, StopTimeout time.Duration
	// Logger receives the supervisor's messages; nil means slog.Default().
	Logger *slog.Logger
}

// Supervisor runs one containerd. Create it with New and drive it with Run.
type Supervisor struct {
	cfg         Config
	layout      Layout
	log         *slog.Logger
	ready       chan struct{}
	readyOnce   sync.Once
	snapshotter string // set once by New
}

// New checks cfg, fills in defaults and returns a Supervisor. It starts
// nothing.
func New(cfg Config) (*Supervisor, error) {
	if cfg.DataDir == "" {
		return nil, errors.New("containerd: no data dir")
	}
	if cfg.Binary == "" {
		cfg.Binary = DefaultBinary
	}
	if cfg.CtrBinary == "" {
		cfg.CtrBinary = DefaultCtrBinary
	}
	if cfg.CNIBinDir == "" {
		cfg.CNIBinDir = DefaultCNIBinDir
	}
	if cfg.SandboxImage == "" {
		cfg.SandboxImage = DefaultSandboxImage
	}
	if cfg.StartTimeout == 0 {
		cfg.StartTimeout = DefaultStartTimeout
	}
	if cfg.StopTimeout == 0 {
		cfg.StopTimeout = DefaultStopTimeout
	}
	switch cfg.Snapshotter {
	case "", SnapshotterOverlay, SnapshotterNative:
	default:
		return nil, fmt.Errorf("containerd: unknown snapshotter %q", cfg.Snapshotter)
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.Default()
	}
	l, err := LayoutOf(cfg.DataDir)
	if err != nil {
		return nil, err
	}
	return &Supervisor{cfg: cfg, layout: l, log: cfg.Logger.With("component", "containerd"), ready: make(chan struct{})}, nil
}

// Ready is closed once containerd first answers on its CRI socket and the
// archives are imported. It stays closed across restarts.
func (s *Supervisor) Ready() <-chan struct{} { return s.ready }

// Socket is the path of containerd's gRPC socket (CRI and containerd API).
func (s *Supervisor) Socket() string { return s.layout.Socket }

// Layout returns where the supervisor keeps its files.
func (s *Supervisor) Layout() Layout { return s.layout }

// Snapshotter is the snapshotter in use; it is known once Ready is closed.
func (s *Supervisor) Snapshotter() string {
	<-s.ready
	return s.snapshotter
}

// Run prepares the directories and configuration, starts containerd, waits
// for its CRI socket, imports the archives, closes Ready, and restarts
// containerd with backoff whenever it exits. When ctx ends it stops
// containerd (SIGTERM, then SIGKILL after StopTimeout) and returns nil; the
// containers keep running. It returns an error only when containerd cannot
// be set up at all (config, directories, first start or import). Call it
// once.
func (s *Supervisor) Run(ctx context.Context) error {
	if err := s.prepare(); err != nil {
		return err
	}
	s.stopStale()
	backoff := time.Second
	for first := true; ; first = false {
		started := time.Now()
		err := s.runOnce(ctx)
		if ctx.Err() != nil {
			return nil
		}
		if first {
			select {
			case <-s.ready:
			default:
				return err
			}
		}
		if time.Since(started) > time.Minute {
			backoff = time.Second
		}
		s.log.Info("containerd exited; restarting", "err", err, "backoff", backoff)
		select {
		case <-ctx.Done():
			return nil
		case <-time.After(backoff):
		}
		backoff = min(2*backoff, 30*time.Second)
	}
}

// prepare creates the directories and writes config.toml.
func (s *Supervisor) prepare() error {
	l := s.layout
	for _, d := range []string{l.Dir, l.Root, l.State, l.CNIConfDir} {
		if err := os.MkdirAll(d, 0o711); err != nil {
			return fmt.Errorf("containerd: creating %s: %w", d, err)
		}
	}
	snap := s.cfg.Snapshotter
	if snap == "" {
		snap = SnapshotterNative
		if err := overlaySupported(l.Root); err != nil {
			s.log.Info("overlay mounts fail; using the native snapshotter", "err", err)
		} else {
			snap = SnapshotterOverlay
		}
	}
	s.snapshotter = snap
	conf, err := RenderConfig(ConfigValues{
		Root:         l.Root,
		State:        l.State,
		Socket:       l.Socket,
		OptDir:       filepath.Join(l.Dir, "opt"),
		CNIConfDir:   l.CNIConfDir,
		CNIBinDir:    s.cfg.CNIBinDir,
		SandboxImage: s.cfg.SandboxImage,
		Snapshotter:  snap,
	})
	if err != nil {
		return err
	}
	if err := writeFile(l.Config, conf); err != nil {
		return err
	}
	return writeFile(l.Snapshotter, []byte(snap+"\n"))
}

func writeFile(p string, b []byte) error {
	tmp := p + ".tmp"
	if err := os.WriteFile(tmp, b, 0o600); err != nil {
		return fmt.Errorf("containerd: writing %s: %w", p, err)
	}
	if err := os.Rename(tmp, p); err != nil {
		return fmt.Errorf("containerd: writing %s: %w", p, err)
	}
	return nil
}

// stopStale stops a containerd a previous, crashed run of ours left behind
// on this data dir: it holds the root's lock and socket.
func (s *Supervisor) stopStale() {
	b, err := os.ReadFile(s.layout.PIDFile)
	if err != nil {
		return
	}
	pid, err := strconv.Atoi(strings.TrimSpace(string(b)))
	if err != nil || pid <= 0 {
		return
	}
	cmdline, err := os.ReadFile(fmt.Sprintf("/proc/%d/cmdline", pid))
	if err != nil || !bytes.Contains(cmdline, []byte(s.layout.Config)) {
		return
	}
	s.log.Info("stopping a containerd left from an earlier run", "pid", pid)
	p, err := os.FindProcess(pid)
	if err != nil {
		return
	}
	_ = p.Signal(syscall.SIGTERM)
	deadline := time.Now().Add(s.cfg.StopTimeout)
	for time.Now().Before(deadline) {
		if err := p.Signal(syscall.Signal(0)); err != nil {
			return
		}
		time.Sleep(50 * time.Millisecond)
	}
	_ = p.Signal(syscall.SIGKILL)
}

// runOnce starts containerd and returns when it exits or ctx ends (then
// after stopping it).
func (s *Supervisor) runOnce(ctx context.Context) error {
	logf, err := os.OpenFile(s.layout.Log, os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o600)
	if err != nil {
		return fmt.Errorf("containerd: opening log: %w", err)
	}
	defer logf.Close()
	// A socket file left by a killed containerd makes the next one fail.
	_ = os.Remove(s.layout.Socket)
	cmd := exec.Command(s.cfg.Binary, "--config", s.layout.Config)
	cmd.Stdout, cmd.Stderr = logf, logf
	// Its own process group: a Ctrl-C at the terminal goes to the agent,
	// which stops containerd in order.
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	if err := cmd.Start(); err != nil {
		return fmt.Errorf("containerd: starting %s: %w", s.cfg.Binary, err)
	}
	s.log.Info("containerd started", "pid", cmd.Process.Pid, "socket", s.layout.Socket, "snapshotter", s.snapshotter, "log", s.layout.Log)
	_ = os.WriteFile(s.layout.PIDFile, []byte(strconv.Itoa(cmd.Process.Pid)+"\n"), 0o600)
	exited := make(chan error, 1)
	go func() { exited <- cmd.Wait() }()
	defer os.Remove(s.layout.PIDFile)

	if err := s.waitServing(ctx, exited); err != nil {
		s.stop(cmd, exited)
		return err
	}
	for _, a := range s.cfg.ImageArchives {
		if err := Import(ctx, s.cfg.CtrBinary, s.layout.Socket, s.snapshotter, a); err != nil {
			s.stop(cmd, exited)
			return err
		}
	}
	s.readyOnce.Do(func() {
		close(s.ready)
	})
	s.log.Info("containerd ready", "socket", s.layout.Socket)
	select {
	case err := <-exited:
		return fmt.Errorf("containerd: exited: %w (see %s)", errOrExit(err), s.layout.Log)
	case <-ctx.Done():
		s.stop(cmd, exited)
		return nil
	}
}

func errOrExit(err error) error {
	if err == nil {
		return errors.New("exit status 0")
	}
	return err
}

// waitServing polls the CRI's Version until it answers, the process exits
// or StartTimeout passes.
func (s *Supervisor) waitServing(ctx context.Context, exited <-chan error) error {
	deadline := time.Now().Add(s.cfg.StartTimeout)
	var last error
	for {
		select {
		case err := <-exited:
			return fmt.Errorf("containerd: exited while starting: %w (see %s)", errOrExit(err), s.layout.Log)
		case <-ctx.Done():
			return ctx.Err()
		default:
		}
		if last = ProbeCRI(ctx, s.layout.Socket); last == nil {
			return nil
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("containerd: CRI not answering after %v: %w (see %s)", s.cfg.StartTimeout, last, s.layout.Log)
		}
		select {
		case err := <-exited:
			return fmt.Errorf("containerd: exited while starting: %w (see %s)", errOrExit(err), s.layout.Log)
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(100 * time.Millisecond):
		}
	}
}

// stop sends SIGTERM, waits StopTimeout for the exit, then SIGKILL.
func (s *Supervisor) stop(cmd *exec.Cmd, exited <-chan error) {
	_ = cmd.Process.Signal(syscall.SIGTERM)
	select {
	case <-exited:
		s.log.Info("containerd stopped")
		return
	case <-time.After(s.cfg.StopTimeout):
	}
	_ = cmd.Process.Kill()
	<-exited
	s.log.Info("containerd killed", "after", s.cfg.StopTimeout)
}

// ProbeCRI asks the CRI runtime service on socket for its version and
// returns nil when it answers.
func ProbeCRI(ctx context.Context, socket string) error {
	ctx, cancel := context.WithTimeout(ctx, 2*time.Second)
	defer cancel()
	conn, err := grpc.NewClient("unix://"+socket, grpc.WithTransportCredentials(insecure.NewCredentials()))
	if err != nil {
		return fmt.Errorf("dialing %s: %w", socket, err)
	}
	defer conn.Close()
	if _, err := runtimeapi.NewRuntimeServiceClient(conn).Version(ctx, &runtimeapi.VersionRequest{}); err != nil {
		return fmt.Errorf("CRI version on %s: %w", socket, err)
	}
	return nil
}

// Import imports an image archive (oci-archive or docker-archive) into the
// CRI's namespace of the containerd on socket, unpacked for snapshotter,
// with "ctr images import". ctrBin "" means DefaultCtrBinary. Importing the
// same archive again is harmless.
func Import(ctx context.Context, ctrBin, socket, snapshotter, archive string) error {
	if ctrBin == "" {
		ctrBin = DefaultCtrBinary
	}
	args := []string{"-a", socket, "-n", Namespace, "images", "import"}
	if snapshotter != "" {
		args = append(args, "--snapshotter", snapshotter)
	}
	args = append(args, archive)
	cmd := exec.CommandContext(ctx, ctrBin, args...)
	out, err := cmd.CombinedOutput()
	if err != nil {
		return fmt.Errorf("containerd: importing %s: %w: %s", archive, err, strings.TrimSpace(string(out)))
	}
	return nil
}

// ImportInto imports archive into the containerd of dataDir, which must be
// running (started by a Supervisor), with the snapshotter it chose.
func ImportInto(ctx context.Context, dataDir, archive string) error {
	l, err := LayoutOf(dataDir)
	if err != nil {
		return err
	}
	b, err := os.ReadFile(l.Snapshotter)
	if err != nil {
		return fmt.Errorf("containerd: no containerd set up in %s: %w", dataDir, err)
	}
	if err := ProbeCRI(ctx, l.Socket); err != nil {
		return fmt.Errorf("containerd: not running in %s: %w", dataDir, err)
	}
	return Import(ctx, "", l.Socket, strings.TrimSpace(string(b)), archive)
}

// overlaySupported mounts a small overlay under dir and unmounts it.
func overlaySupported(dir string) error {
	base, err := os.MkdirTemp(dir, "overlay-check-")
	if err != nil {
		return err
	}
	defer os.RemoveAll(base)
	var paths []string
	for _, n := range []string{"lower", "upper", "work", "merged"} {
		p := filepath.Join(base, n)
		if err := os.Mkdir(p, 0o700); err != nil {
			return err
		}
		paths = append(paths, p)
	}
	opts := fmt.Sprintf("lowerdir=%s,upperdir=%s,workdir=%s", paths[0], paths[1], paths[2])
	if err := syscall.Mount("overlay", paths[3], "overlay", 0, opts); err != nil {
		return fmt.Errorf("mounting overlay: %w", err)
	}
	if err := syscall.Unmount(paths[3], 0); err != nil {
		return fmt.Errorf("unmounting overlay: %w", err)
	}
	return nil
}

// ConfigValues fill the config.toml template.
type ConfigValues struct {
	Root, State, Socket, OptDir string
	CNIConfDir, CNIBinDir       string
	SandboxImage, Snapshotter   string
}

// configTemplate is containerd 1.6's configuration (version 2). Strings are
// quoted with printf %q, which TOML basic strings accept for paths.
const configTemplate = `# Written by skiff; rewritten at every agent start.
version = 2
root = {{printf "%q" .Root}}
state = {{printf "%q" .State}}
oom_score = 0
disabled_plugins = ["io.containerd.snapshotter.v1.aufs", "io.containerd.snapshotter.v1.btrfs", "io.containerd.snapshotter.v1.zfs", "io.containerd.snapshotter.v1.devmapper", "io.containerd.internal.v1.tracing"]

[grpc]
  address = {{printf "%q" .Socket}}

[ttrpc]
  address = {{printf "%q" (print .Socket ".ttrpc")}}

[debug]
  address = ""
  level = "info"

[metrics]
  address = ""

[plugins]
  [plugins."io.containerd.internal.v1.opt"]
    path = {{printf "%q" .OptDir}}

  [plugins."io.containerd.grpc.v1.cri"]
    sandbox_image = {{printf "%q" .SandboxImage}}
    restrict_oom_score_adj = true
    disable_apparmor = true
    disable_tcp_service = true
    stream_server_address = "127.0.0.1"
    stream_server_port = "0"
    enable_selinux = false
    systemd_cgroup = false
    tolerate_missing_hugetlb_controller = true
    disable_hugetlb_controller = true

    [plugins."io.containerd.grpc.v1.cri".cni]
      bin_dir = {{printf "%q" .CNIBinDir}}
      conf_dir = {{printf "%q" .CNIConfDir}}
      max_conf_num = 1

    [plugins."io.containerd.grpc.v1.cri".containerd]
      snapshotter = {{printf "%q" .Snapshotter}}
      default_runtime_name = "runc"

      [plugins."io.containerd.grpc.v1.cri".containerd.runtimes.runc]
        runtime_type = "io.containerd.runc.v2"

        [plugins."io.containerd.grpc.v1.cri".containerd.runtimes.runc.options]
          SystemdCgroup = false
`

// RenderConfig renders config.toml from v.
func RenderConfig(v ConfigValues) ([]byte, error) {
	t, err := template.New("config.toml").Parse(configTemplate)
	if err != nil {
		return nil, fmt.Errorf("containerd: parsing config template: %w", err)
	}
	var buf bytes.Buffer
	if err := t.Execute(&buf, v); err != nil {
		return nil, fmt.Errorf("containerd: rendering config: %w", err)
	}
	return buf.Bytes(), nil
}
