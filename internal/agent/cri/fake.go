package cri

import (
	"context"
	"fmt"
	"maps"
	"slices"
	"strings"
	"sync"
	"time"
)

// Fake is an in-memory Runtime for the agent's unit tests. It enforces the
// invariants containerd's CRI does (checked against it by
// TestRuntimeWithContainerd), so that code passing with the Fake behaves on
// a node:
//
//   - a sandbox's (namespace, name, uid, attempt) and a container's (name,
//     attempt) within its sandbox are unique until removed;
//   - a sandbox runs with the default runtime handler ("") or one of
//     Handlers, like containerd with the runtimes of its config;
//   - containers are created only in a Ready sandbox, from a present image;
//   - only a Created container starts; stopping a sandbox stops its
//     containers; removing a sandbox, even a Ready one, removes its
//     containers;
//   - Stop and Remove of a missing object succeed; other calls on one
//     return an error for which IsNotFound is true.
//
// Processes do not run: a started container stays Running until the test
// calls Exit or stops it (exit code 137, as after SIGKILL). ExecSync calls
// Exec. IDs are sequential ("sandbox-1", "container-2") and times come from
// Now, so that Dump is deterministic. Safe for concurrent use.
type Fake struct {
	// Now is the clock; nil means time.Now. Set it before use.
	Now func() time.Time
	// Exec answers ExecSync in a running container; nil answers exit 0
	// with no output. Called without the lock held.
	Exec func(containerID string, cmd []string) ExecResult
	// Handlers are the runtime handlers RunSandbox accepts besides the
	// default ""; nil means runcHandler alone. Set it before use.
	Handlers []string

	mu         sync.Mutex
	next       int                       // guarded by mu; last ID number handed out
	images     map[string]Image          // guarded by mu; keyed by the name pods use
	sandboxes  map[string]*fakeSandbox   // guarded by mu
	containers map[string]*fakeContainer // guarded by mu
}

var _ Runtime = (*Fake)(nil)

// runcHandler is the one runtime handler of skiff's containerd config
// (internal/agent/containerd), which a Fake accepts by default.
const runcHandler = "runc"

type fakeSandbox struct {
	sb  Sandbox
	cfg SandboxConfig
}

type fakeContainer struct {
	c      Container
	target string // ContainerConfig.TargetContainerID
}

// NewFake returns an empty Fake holding the given images.
func NewFake(images ...string) *Fake {
	f := &Fake{images: map[string]Image{}, sandboxes: map[string]*fakeSandbox{}, containers: map[string]*fakeContainer{}}
	for _, img := range images {
		f.AddImage(img)
	}
	return f
}

// AddImage makes image present, as an import would.
func (f *Fake) AddImage(image string) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.images[image] = Image{ID: "sha256:" + image, RepoTags: []string{image}}
}

func (f *Fake) now() time.Time {
	if f.Now != nil {
		return f.Now()
	}
	return time.Now()
}

func (f *Fake) idLocked(kind string) string {
	f.next++
	return fmt.Sprintf("%s-%d", kind, f.next)
}

func notFound(what, id string) error {
	return fmt.Errorf("cri: %s %q: %w", what, id, ErrNotFound)
}

// RunSandbox implements Runtime.
func (f *Fake) RunSandbox(_ context.Context, cfg SandboxConfig) (string, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if cfg.HostNetwork && cfg.Hostname != "" {
		return "", fmt.Errorf("cri: running sandbox %q: unable to set hostname without a private UTS namespace", cfg.Namespace+"/"+cfg.Name)
	}
	handlers := f.Handlers
	if handlers == nil {
		handlers = []string{runcHandler}
	}
	if cfg.RuntimeHandler != "" && !slices.Contains(handlers, cfg.RuntimeHandler) {
		// containerd's words.
		return "", fmt.Errorf("cri: running sandbox %q: failed to get sandbox runtime: no runtime for %q is configured", cfg.Namespace+"/"+cfg.Name, cfg.RuntimeHandler)
	}
	for _, s := range f.sandboxes {
		if s.sb.Namespace == cfg.Namespace && s.sb.Name == cfg.Name && s.sb.UID == cfg.UID && s.sb.Attempt == cfg.Attempt {
			return "", fmt.Errorf("cri: running sandbox %q: name is reserved by %s", cfg.Namespace+"/"+cfg.Name, s.sb.ID)
		}
	}
	id := f.idLocked("sandbox")
	f.sandboxes[id] = &fakeSandbox{cfg: cfg, sb: Sandbox{
		ID: id, Name: cfg.Name, Namespace: cfg.Namespace, UID: cfg.UID, Attempt: cfg.Attempt,
		State: SandboxReady, CreatedAt: f.now(),
		Labels: maps.Clone(cfg.Labels), Annotations: maps.Clone(cfg.Annotations),
		RuntimeHandler: cfg.RuntimeHandler,
	}}
	if !cfg.HostNetwork {
		f.sandboxes[id].sb.IP = fmt.Sprintf("10.88.0.%d", f.next%250+2)
	}
	return id, nil
}

// StopSandbox implements Runtime.
func (f *Fake) StopSandbox(_ context.Context, id string) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	s, ok := f.sandboxes[id]
	if !ok {
		return nil
	}
	for _, c := range f.containers {
		if c.c.SandboxID == id && c.c.State == ContainerRunning {
			f.exitLocked(c, 137, "Error")
		}
	}
	s.sb.State = SandboxNotReady
	return nil
}

// RemoveSandbox implements Runtime.
func (f *Fake) RemoveSandbox(_ context.Context, id string) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	if _, ok := f.sandboxes[id]; !ok {
		return nil
	}
	for cid, c := range f.containers {
		if c.c.SandboxID == id {
			delete(f.containers, cid)
		}
	}
	delete(f.sandboxes, id)
	return nil
}

// SandboxStatus implements Runtime.
func (f *Fake) SandboxStatus(_ context.Context, id string) (Sandbox, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	s, ok := f.sandboxes[id]
	if !ok {
		return Sandbox{}, notFound("sandbox status", id)
	}
	return cloneSandbox(s.sb), nil
}

// ListSandboxes implements Runtime. Like the CRI's list, it leaves IP out.
func (f *Fake) ListSandboxes(_ context.Context, labels map[string]string) ([]Sandbox, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	out := []Sandbox{}
	for _, id := range slices.Sorted(maps.Keys(f.sandboxes)) {
		s := f.sandboxes[id]
		if matches(s.sb.Labels, labels) {
			sb := cloneSandbox(s.sb)
			sb.IP, sb.AdditionalIPs = "", nil
			out = append(out, sb)
		}
	}
	return out, nil
}

// CreateContainer implements Runtime.
func (f *Fake) CreateContainer(_ context.Context, sandboxID string, _ SandboxConfig, cfg ContainerConfig) (string, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	what := cfg.Name + " in sandbox " + sandboxID
	s, ok := f.sandboxes[sandboxID]
	if !ok {
		return "", notFound("creating container", what)
	}
	if s.sb.State != SandboxReady {
		return "", fmt.Errorf("cri: creating container %q: sandbox is not ready", what)
	}
	img, ok := f.images[cfg.Image]
	if !ok {
		return "", fmt.Errorf("cri: creating container %q: image %q: %w", what, cfg.Image, ErrNotFound)
	}
	for _, c := range f.containers {
		if c.c.SandboxID == sandboxID && c.c.Name == cfg.Name && c.c.Attempt == cfg.Attempt {
			return "", fmt.Errorf("cri: creating container %q: name is reserved by %s", what, c.c.ID)
		}
	}
	id := f.idLocked("container")
	logPath := ""
	if s.cfg.LogDir != "" && cfg.LogPath != "" {
		logPath = s.cfg.LogDir + "/" + cfg.LogPath
	}
	f.containers[id] = &fakeContainer{c: Container{
		ID: id, SandboxID: sandboxID, Name: cfg.Name, Attempt: cfg.Attempt,
		Image: cfg.Image, ImageRef: img.ID, State: ContainerCreated, CreatedAt: f.now(),
		Labels: maps.Clone(cfg.Labels), Annotations: maps.Clone(cfg.Annotations), LogPath: logPath,
	}, target: cfg.TargetContainerID}
	return id, nil
}

// Target returns the TargetContainerID container id was created with.
func (f *Fake) Target(id string) string {
	f.mu.Lock()
	defer f.mu.Unlock()
	if c, ok := f.containers[id]; ok {
		return c.target
	}
	return ""
}

// StartContainer implements Runtime.
func (f *Fake) StartContainer(_ context.Context, id string) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	c, ok := f.containers[id]
	if !ok {
		return notFound("starting container", id)
	}
	if c.c.State != ContainerCreated {
		return fmt.Errorf("cri: starting container %q: container is %s, not Created", id, c.c.State)
	}
	c.c.State, c.c.StartedAt = ContainerRunning, f.now()
	return nil
}

// StopContainer implements Runtime.
func (f *Fake) StopContainer(_ context.Context, id string, _ time.Duration) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	if c, ok := f.containers[id]; ok && c.c.State == ContainerRunning {
		f.exitLocked(c, 137, "Error")
	}
	return nil
}

// Exit makes a running container's process exit with code; reason "" means
// "Completed" for 0 and "Error" otherwise ("OOMKilled" is also what
// containerd reports). It reports whether the container was running.
func (f *Fake) Exit(id string, code int32, reason string) bool {
	f.mu.Lock()
	defer f.mu.Unlock()
	c, ok := f.containers[id]
	if !ok || c.c.State != ContainerRunning {
		return false
	}
	if reason == "" {
		reason = "Error"
		if code == 0 {
			reason = "Completed"
		}
	}
	f.exitLocked(c, code, reason)
	return true
}

func (f *Fake) exitLocked(c *fakeContainer, code int32, reason string) {
	c.c.State, c.c.ExitCode, c.c.Reason, c.c.FinishedAt = ContainerExited, code, reason, f.now()
}

// RemoveContainer implements Runtime.
func (f *Fake) RemoveContainer(_ context.Context, id string) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	delete(f.containers, id)
	return nil
}

// ContainerStatus implements Runtime.
func (f *Fake) ContainerStatus(_ context.Context, id string) (Container, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	c, ok := f.containers[id]
	if !ok {
		return Container{}, notFound("container status", id)
	}
	out := cloneContainer(c.c)
	out.SandboxID = "" // as the CRI's ContainerStatus, which does not say
	return out, nil
}

// ListContainers implements Runtime. Like the CRI's list, it leaves the
// status-only fields out.
func (f *Fake) ListContainers(_ context.Context, filter ContainerFilter) ([]Container, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	out := []Container{}
	for _, id := range slices.Sorted(maps.Keys(f.containers)) {
		c := f.containers[id].c
		if filter.SandboxID != "" && c.SandboxID != filter.SandboxID ||
			filter.State != "" && c.State != filter.State || !matches(c.Labels, filter.Labels) {
			continue
		}
		out = append(out, Container{
			ID: c.ID, SandboxID: c.SandboxID, Name: c.Name, Attempt: c.Attempt, Image: c.Image, ImageRef: c.ImageRef,
			State: c.State, CreatedAt: c.CreatedAt, Labels: maps.Clone(c.Labels), Annotations: maps.Clone(c.Annotations),
		})
	}
	return out, nil
}

// PullImage implements Runtime: there is no registry, so only a present
// image "pulls".
func (f *Fake) PullImage(_ context.Context, image string) (string, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	img, ok := f.images[image]
	if !ok {
		return "", fmt.Errorf("cri: pulling image %q: failed to resolve reference: no registry", image)
	}
	return img.ID, nil
}

// ImageStatus implements Runtime.
func (f *Fake) ImageStatus(_ context.Context, image string) (*Image, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	img, ok := f.images[image]
	if !ok {
		return nil, nil
	}
	img.RepoTags = slices.Clone(img.RepoTags)
	return &img, nil
}

// ExecSync implements Runtime.
func (f *Fake) ExecSync(_ context.Context, id string, cmd []string, _ time.Duration) (ExecResult, error) {
	f.mu.Lock()
	c, ok := f.containers[id]
	running := ok && c.c.State == ContainerRunning
	exec := f.Exec
	f.mu.Unlock()
	if !ok {
		return ExecResult{}, notFound("exec in container", id)
	}
	if !running {
		return ExecResult{}, fmt.Errorf("cri: exec in container %q: container is not running", id)
	}
	if exec == nil {
		return ExecResult{}, nil
	}
	return exec(id, slices.Clone(cmd)), nil
}

// Dump writes the state as crictl's "pods" and "ps -a" tables do, sorted
// by ID, for golden comparisons in tests.
func (f *Fake) Dump() string {
	f.mu.Lock()
	defer f.mu.Unlock()
	var b strings.Builder
	b.WriteString("POD ID\tSTATE\tNAME\tNAMESPACE\tATTEMPT\n")
	for _, id := range slices.Sorted(maps.Keys(f.sandboxes)) {
		s := f.sandboxes[id].sb
		fmt.Fprintf(&b, "%s\t%s\t%s\t%s\t%d\n", s.ID, strings.ToUpper(string(s.State)), s.Name, s.Namespace, s.Attempt)
	}
	b.WriteString("CONTAINER\tIMAGE\tSTATE\tNAME\tATTEMPT\tPOD ID\tEXIT\n")
	for _, id := range slices.Sorted(maps.Keys(f.containers)) {
		c := f.containers[id].c
		exit := ""
		if c.State == ContainerExited {
			exit = fmt.Sprintf("%d %s", c.ExitCode, c.Reason)
		}
		fmt.Fprintf(&b, "%s\t%s\t%s\t%s\t%d\t%s\t%s\n", c.ID, c.Image, c.State, c.Name, c.Attempt, c.SandboxID, exit)
	}
	return b.String()
}

func matches(labels, selector map[string]string) bool {
	for k, v := range selector {
		if got, ok := labels[k]; !ok || got != v {
			return false
		}
	}
	return true
}

func cloneSandbox(s Sandbox) Sandbox {
	s.Labels, s.Annotations = maps.Clone(s.Labels), maps.Clone(s.Annotations)
	s.AdditionalIPs = slices.Clone(s.AdditionalIPs)
	return s
}

func cloneContainer(c Container) Container {
	c.Labels, c.Annotations = maps.Clone(c.Labels), maps.Clone(c.Annotations)
	return c
}
