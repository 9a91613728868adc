package cri

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/credentials/insecure"
	"google.golang.org/grpc/status"
	runtimeapi "k8s.io/cri-api/pkg/apis/runtime/v1"
)

// Defaults of Config.
const (
	DefaultTimeout     = 2 * time.Minute
	DefaultPullTimeout = 10 * time.Minute
	// maxMsgSize matches containerd's default gRPC message limit.
	maxMsgSize = 16 << 20
)

// Config configures a Client.
type Config struct {
	// Socket is the path of the CRI's unix socket.
	Socket string
	// Timeout bounds every call but image pulls; 0 means DefaultTimeout.
	Timeout time.Duration
	// PullTimeout bounds PullImage; 0 means DefaultPullTimeout.
	PullTimeout time.Duration
}

// Client is the Runtime over a CRI v1 gRPC connection. It is safe for
// concurrent use; Close it when done.
type Client struct {
	cfg     Config
	conn    *grpc.ClientConn
	runtime runtimeapi.RuntimeServiceClient
	images  runtimeapi.ImageServiceClient
}

var _ Runtime = (*Client)(nil)

// Dial returns a Client for the CRI on cfg.Socket. It does not wait for the
// runtime to answer: the first call does (see Version).
func Dial(cfg Config) (*Client, error) {
	if cfg.Socket == "" {
		return nil, errors.New("cri: no socket")
	}
	if cfg.Timeout == 0 {
		cfg.Timeout = DefaultTimeout
	}
	if cfg.PullTimeout == 0 {
		cfg.PullTimeout = DefaultPullTimeout
	}
	conn, err := grpc.NewClient("unix://"+strings.TrimPrefix(cfg.Socket, "unix://"),
		grpc.WithTransportCredentials(insecure.NewCredentials()),
		grpc.WithDefaultCallOptions(grpc.MaxCallRecvMsgSize(maxMsgSize), grpc.MaxCallSendMsgSize(maxMsgSize)))
	if err != nil {
		return nil, fmt.Errorf("cri: dialing %s: %w", cfg.Socket, err)
	}
	return &Client{
		cfg:     cfg,
		conn:    conn,
		runtime: runtimeapi.NewRuntimeServiceClient(conn),
		images:  runtimeapi.NewImageServiceClient(conn),
	}, nil
}

// Close closes the connection. The runtime and its containers go on.
func (c *Client) Close() error {
	if err := c.conn.Close(); err != nil {
		return fmt.Errorf("cri: closing: %w", err)
	}
	return nil
}

// Version returns the runtime's name and version ("containerd",
// "1.6.20~ds1"). Use it to check that the runtime answers.
func (c *Client) Version(ctx context.Context) (name, version string, err error) {
	ctx, cancel := context.WithTimeout(ctx, c.cfg.Timeout)
	defer cancel()
	r, err := c.runtime.Version(ctx, &runtimeapi.VersionRequest{})
	if err != nil {
		return "", "", wrap("version", "", err)
	}
	return r.GetRuntimeName(), r.GetRuntimeVersion(), nil
}

// wrap turns a gRPC error into ours: NotFound wraps ErrNotFound.
func wrap(op, id string, err error) error {
	what := op
	if id != "" {
		what = fmt.Sprintf("%s %q", op, id)
	}
	if status.Code(err) == codes.NotFound {
		return fmt.Errorf("cri: %s: %w: %w", what, ErrNotFound, err)
	}
	return fmt.Errorf("cri: %s: %w", what, err)
}

func (c *Client) ctx(ctx context.Context) (context.Context, context.CancelFunc) {
	return context.WithTimeout(ctx, c.cfg.Timeout)
}

// RunSandbox implements Runtime.
func (c *Client) RunSandbox(ctx context.Context, cfg SandboxConfig) (string, error) {
	ctx, cancel := c.ctx(ctx)
	defer cancel()
	r, err := c.runtime.RunPodSandbox(ctx, &runtimeapi.RunPodSandboxRequest{Config: sandboxConfig(cfg), RuntimeHandler: cfg.RuntimeHandler})
	if err != nil {
		return "", wrap("running sandbox", cfg.Namespace+"/"+cfg.Name, err)
	}
	return r.GetPodSandboxId(), nil
}

// StopSandbox implements Runtime.
func (c *Client) StopSandbox(ctx context.Context, id string) error {
	ctx, cancel := c.ctx(ctx)
	defer cancel()
	_, err := c.runtime.StopPodSandbox(ctx, &runtimeapi.StopPodSandboxRequest{PodSandboxId: id})
	return ignoreNotFound("stopping sandbox", id, err)
}

// RemoveSandbox implements Runtime.
func (c *Client) RemoveSandbox(ctx context.Context, id string) error {
	ctx, cancel := c.ctx(ctx)
	defer cancel()
	_, err := c.runtime.RemovePodSandbox(ctx, &runtimeapi.RemovePodSandboxRequest{PodSandboxId: id})
	return ignoreNotFound("removing sandbox", id, err)
}

// SandboxStatus implements Runtime.
func (c *Client) SandboxStatus(ctx context.Context, id string) (Sandbox, error) {
	ctx, cancel := c.ctx(ctx)
	defer cancel()
	r, err := c.runtime.PodSandboxStatus(ctx, &runtimeapi.PodSandboxStatusRequest{PodSandboxId: id})
	if err != nil {
		return Sandbox{}, wrap("sandbox status", id, err)
	}
	s := r.GetStatus()
	sb := Sandbox{
		ID:             s.GetId(),
		State:          sandboxState(s.GetState()),
		CreatedAt:      fromNanos(s.GetCreatedAt()),
		IP:             s.GetNetwork().GetIp(),
		Labels:         s.GetLabels(),
		Annotations:    s.GetAnnotations(),
		RuntimeHandler: s.GetRuntimeHandler(),
	}
	for _, ip := range s.GetNetwork().GetAdditionalIps() {
		sb.AdditionalIPs = append(sb.AdditionalIPs, ip.GetIp())
	}
	setSandboxMeta(&sb, s.GetMetadata())
	return sb, nil
}

// ListSandboxes implements Runtime.
func (c *Client) ListSandboxes(ctx context.Context, labels map[string]string) ([]Sandbox, error) {
	ctx, cancel := c.ctx(ctx)
	defer cancel()
	r, err := c.runtime.ListPodSandbox(ctx, &runtimeapi.ListPodSandboxRequest{Filter: &runtimeapi.PodSandboxFilter{LabelSelector: labels}})
	if err != nil {
		return nil, wrap("listing sandboxes", "", err)
	}
	out := make([]Sandbox, 0, len(r.GetItems()))
	for _, s := range r.GetItems() {
		sb := Sandbox{
			ID:             s.GetId(),
			State:          sandboxState(s.GetState()),
			CreatedAt:      fromNanos(s.GetCreatedAt()),
			Labels:         s.GetLabels(),
			Annotations:    s.GetAnnotations(),
			RuntimeHandler: s.GetRuntimeHandler(),
		}
		setSandboxMeta(&sb, s.GetMetadata())
		out = append(out, sb)
	}
	return out, nil
}

// CreateContainer implements Runtime.
func (c *Client) CreateContainer(ctx context.Context, sandboxID string, sandbox SandboxConfig, cfg ContainerConfig) (string, error) {
	ctx, cancel := c.ctx(ctx)
	defer cancel()
	r, err := c.runtime.CreateContainer(ctx, &runtimeapi.CreateContainerRequest{
		PodSandboxId:  sandboxID,
		Config:        containerConfig(cfg, sandbox),
		SandboxConfig: sandboxConfig(sandbox),
	})
	if err != nil {
		return "", wrap("creating container", cfg.Name+" in sandbox "+sandboxID, err)
	}
	return r.GetContainerId(), nil
}

// StartContainer implements Runtime.
func (c *Client) StartContainer(ctx context.Context, id string) error {
	ctx, cancel := c.ctx(ctx)
	defer cancel()
	if _, err := c.runtime.StartContainer(ctx, &runtimeapi.StartContainerRequest{ContainerId: id}); err != nil {
		return wrap("starting container", id, err)
	}
	return nil
}

// StopContainer implements Runtime. The call may take grace plus the
// client's timeout.
func (c *Client) StopContainer(ctx context.Context, id string, grace time.Duration) error {
	ctx, cancel := context.WithTimeout(ctx, c.cfg.Timeout+grace)
	defer cancel()
	secs := int64((grace + time.Second - 1) / time.Second)
	_, err := c.runtime.StopContainer(ctx, &runtimeapi.StopContainerRequest{ContainerId: id, Timeout: secs})
	return ignoreNotFound("stopping container", id, err)
}

// RemoveContainer implements Runtime.
func (c *Client) RemoveContainer(ctx context.Context, id string) error {
	ctx, cancel := c.ctx(ctx)
	defer cancel()
	_, err := c.runtime.RemoveContainer(ctx, &runtimeapi.RemoveContainerRequest{ContainerId: id})
	return ignoreNotFound("removing container", id, err)
}

// ContainerStatus implements Runtime.
func (c *Client) ContainerStatus(ctx context.Context, id string) (Container, error) {
	ctx, cancel := c.ctx(ctx)
	defer cancel()
	r, err := c.runtime.ContainerStatus(ctx, &runtimeapi.ContainerStatusRequest{ContainerId: id})
	if err != nil {
		return Container{}, wrap("container status", id, err)
	}
	s := r.GetStatus()
	ctr := Container{
		ID:          s.GetId(),
		Name:        s.GetMetadata().GetName(),
		Attempt:     s.GetMetadata().GetAttempt(),
		Image:       s.GetImage().GetImage(),
		ImageRef:    s.GetImageRef(),
		State:       containerState(s.GetState()),
		CreatedAt:   fromNanos(s.GetCreatedAt()),
		StartedAt:   fromNanos(s.GetStartedAt()),
		FinishedAt:  fromNanos(s.GetFinishedAt()),
		ExitCode:    s.GetExitCode(),
		Reason:      s.GetReason(),
		Message:     s.GetMessage(),
		Labels:      s.GetLabels(),
		Annotations: s.GetAnnotations(),
		LogPath:     s.GetLogPath(),
	}
	return ctr, nil
}

// ListContainers implements Runtime.
func (c *Client) ListContainers(ctx context.Context, f ContainerFilter) ([]Container, error) {
	ctx, cancel := c.ctx(ctx)
	defer cancel()
	filter := &runtimeapi.ContainerFilter{PodSandboxId: f.SandboxID, LabelSelector: f.Labels}
	if f.State != "" {
		filter.State = &runtimeapi.ContainerStateValue{State: toContainerState(f.State)}
	}
	r, err := c.runtime.ListContainers(ctx, &runtimeapi.ListContainersRequest{Filter: filter})
	if err != nil {
		return nil, wrap("listing containers", "", err)
	}
	out := make([]Container, 0, len(r.GetContainers()))
	for _, s := range r.GetContainers() {
		out = append(out, Container{
			ID:          s.GetId(),
			SandboxID:   s.GetPodSandboxId(),
			Name:        s.GetMetadata().GetName(),
			Attempt:     s.GetMetadata().GetAttempt(),
			Image:       s.GetImage().GetImage(),
			ImageRef:    s.GetImageRef(),
			State:       containerState(s.GetState()),
			CreatedAt:   fromNanos(s.GetCreatedAt()),
			Labels:      s.GetLabels(),
			Annotations: s.GetAnnotations(),
		})
	}
	return out, nil
}

// PullImage implements Runtime.
func (c *Client) PullImage(ctx context.Context, image string) (string, error) {
	ctx, cancel := context.WithTimeout(ctx, c.cfg.PullTimeout)
	defer cancel()
	r, err := c.images.PullImage(ctx, &runtimeapi.PullImageRequest{Image: &runtimeapi.ImageSpec{Image: image}})
	if err != nil {
		return "", wrap("pulling image", image, err)
	}
	return r.GetImageRef(), nil
}

// ImageStatus implements Runtime.
func (c *Client) ImageStatus(ctx context.Context, image string) (*Image, error) {
	ctx, cancel := c.ctx(ctx)
	defer cancel()
	r, err := c.images.ImageStatus(ctx, &runtimeapi.ImageStatusRequest{Image: &runtimeapi.ImageSpec{Image: image}})
	if err != nil {
		return nil, wrap("image status", image, err)
	}
	img := r.GetImage()
	if img == nil {
		return nil, nil
	}
	return &Image{ID: img.GetId(), RepoTags: img.GetRepoTags(), RepoDigests: img.GetRepoDigests(), Size: img.GetSize()}, nil
}

// ExecSync implements Runtime. The call may take timeout plus the client's
// timeout.
func (c *Client) ExecSync(ctx context.Context, id string, cmd []string, timeout time.Duration) (ExecResult, error) {
	callTimeout := c.cfg.Timeout
	if timeout > 0 {
		callTimeout += timeout
	}
	ctx, cancel := context.WithTimeout(ctx, callTimeout)
	defer cancel()
	secs := int64((timeout + time.Second - 1) / time.Second)
	r, err := c.runtime.ExecSync(ctx, &runtimeapi.ExecSyncRequest{ContainerId: id, Cmd: cmd, Timeout: secs})
	if err != nil {
		return ExecResult{}, wrap("exec in container", id, err)
	}
	return ExecResult{Stdout: r.GetStdout(), Stderr: r.GetStderr(), ExitCode: r.GetExitCode()}, nil
}

func setSandboxMeta(sb *Sandbox, m *runtimeapi.PodSandboxMetadata) {
	sb.Name, sb.Namespace, sb.UID, sb.Attempt = m.GetName(), m.GetNamespace(), m.GetUid(), m.GetAttempt()
}

func fromNanos(n int64) time.Time {
	if n == 0 {
		return time.Time{}
	}
	return time.Unix(0, n)
}

func sandboxState(s runtimeapi.PodSandboxState) SandboxState {
	if s == runtimeapi.PodSandboxState_SANDBOX_READY {
		return SandboxReady
	}
	return SandboxNotReady
}

func containerState(s runtimeapi.ContainerState) ContainerState {
	switch s {
	case runtimeapi.ContainerState_CONTAINER_CREATED:
		return ContainerCreated
	case runtimeapi.ContainerState_CONTAINER_RUNNING:
		return ContainerRunning
	case runtimeapi.ContainerState_CONTAINER_EXITED:
		return ContainerExited
	default:
		return ContainerUnknown
	}
}

func toContainerState(s ContainerState) runtimeapi.ContainerState {
	switch s {
	case ContainerCreated:
		return runtimeapi.ContainerState_CONTAINER_CREATED
	case ContainerRunning:
		return runtimeapi.ContainerState_CONTAINER_RUNNING
	case ContainerExited:
		return runtimeapi.ContainerState_CONTAINER_EXITED
	default:
		return runtimeapi.ContainerState_CONTAINER_UNKNOWN
	}
}

func namespaceMode(host bool) runtimeapi.NamespaceMode {
	if host {
		return runtimeapi.NamespaceMode_NODE
	}
	return runtimeapi.NamespaceMode_POD
}

// namespaceOptions are the namespaces of a sandbox and of its containers:
// the pod's network and IPC namespaces, and a PID namespace per container
// unless the pod shares one (or the node's).
func namespaceOptions(cfg SandboxConfig) *runtimeapi.NamespaceOption {
	pid := runtimeapi.NamespaceMode_CONTAINER
	switch {
	case cfg.HostPID:
		pid = runtimeapi.NamespaceMode_NODE
	case cfg.ShareProcessNamespace:
		pid = runtimeapi.NamespaceMode_POD
	}
	return &runtimeapi.NamespaceOption{
		Network: namespaceMode(cfg.HostNetwork),
		Pid:     pid,
		Ipc:     namespaceMode(cfg.HostIPC),
	}
}

// sandboxConfig translates our SandboxConfig into the CRI's.
func sandboxConfig(cfg SandboxConfig) *runtimeapi.PodSandboxConfig {
	out := &runtimeapi.PodSandboxConfig{
		Metadata:     &runtimeapi.PodSandboxMetadata{Name: cfg.Name, Namespace: cfg.Namespace, Uid: cfg.UID, Attempt: cfg.Attempt},
		Hostname:     cfg.Hostname,
		LogDirectory: cfg.LogDir,
		Labels:       cfg.Labels,
		Annotations:  cfg.Annotations,
		Linux: &runtimeapi.LinuxPodSandboxConfig{
			CgroupParent: cfg.CgroupParent,
			Sysctls:      cfg.Sysctls,
			SecurityContext: &runtimeapi.LinuxSandboxSecurityContext{
				NamespaceOptions: namespaceOptions(cfg),
				Privileged:       cfg.Privileged,
			},
		},
	}
	if cfg.DNS != nil {
		out.DnsConfig = &runtimeapi.DNSConfig{Servers: cfg.DNS.Servers, Searches: cfg.DNS.Searches, Options: cfg.DNS.Options}
	}
	for _, p := range cfg.Ports {
		out.PortMappings = append(out.PortMappings, &runtimeapi.PortMapping{
			Protocol:      protocol(p.Protocol),
			ContainerPort: p.ContainerPort,
			HostPort:      p.HostPort,
			HostIp:        p.HostIP,
		})
	}
	return out
}

func protocol(p string) runtimeapi.Protocol {
	switch strings.ToUpper(p) {
	case "UDP":
		return runtimeapi.Protocol_UDP
	case "SCTP":
		return runtimeapi.Protocol_SCTP
	default:
		return runtimeapi.Protocol_TCP
	}
}

// containerConfig translates our ContainerConfig, for a container of
// sandbox, into the CRI's.
func containerConfig(cfg ContainerConfig, sandbox SandboxConfig) *runtimeapi.ContainerConfig {
	out := &runtimeapi.ContainerConfig{
		Metadata:    &runtimeapi.ContainerMetadata{Name: cfg.Name, Attempt: cfg.Attempt},
		Image:       &runtimeapi.ImageSpec{Image: cfg.Image},
		Command:     cfg.Command,
		Args:        cfg.Args,
		WorkingDir:  cfg.WorkingDir,
		Labels:      cfg.Labels,
		Annotations: cfg.Annotations,
		LogPath:     cfg.LogPath,
		Stdin:       cfg.Stdin,
		StdinOnce:   cfg.StdinOnce,
		Tty:         cfg.TTY,
		Linux: &runtimeapi.LinuxContainerConfig{
			SecurityContext: &runtimeapi.LinuxContainerSecurityContext{
				Privileged:       cfg.Privileged,
				ReadonlyRootfs:   cfg.ReadOnlyRootFS,
				NamespaceOptions: namespaceOptions(sandbox),
			},
		},
	}
	if ns := out.Linux.SecurityContext.NamespaceOptions; cfg.TargetContainerID != "" && ns.Pid == runtimeapi.NamespaceMode_CONTAINER {
		ns.Pid, ns.TargetId = runtimeapi.NamespaceMode_TARGET, cfg.TargetContainerID
	}
	for _, e := range cfg.Env {
		out.Envs = append(out.Envs, &runtimeapi.KeyValue{Key: e.Name, Value: []byte(e.Value)})
	}
	for _, m := range cfg.Mounts {
		out.Mounts = append(out.Mounts, &runtimeapi.Mount{ContainerPath: m.ContainerPath, HostPath: m.HostPath, Readonly: m.ReadOnly})
	}
	if r := cfg.Resources; r != nil {
		out.Linux.Resources = &runtimeapi.LinuxContainerResources{
			CpuShares:          r.CPUShares,
			CpuQuota:           r.CPUQuota,
			CpuPeriod:          r.CPUPeriod,
			MemoryLimitInBytes: r.MemoryLimitBytes,
			OomScoreAdj:        r.OOMScoreAdj,
		}
	}
	sc := out.Linux.SecurityContext
	if cfg.RunAsUser != nil {
		sc.RunAsUser = &runtimeapi.Int64Value{Value: *cfg.RunAsUser}
	}
	if cfg.RunAsGroup != nil {
		sc.RunAsGroup = &runtimeapi.Int64Value{Value: *cfg.RunAsGroup}
	}
	sc.SupplementalGroups = cfg.SupplementalGroups
	return out
}

// ignoreNotFound wraps err from op on id, treating NotFound as done: stop
// and remove calls are idempotent.
func ignoreNotFound(op, id string, err error) error {
	if err == nil || status.Code(err) == codes.NotFound {
		return nil
	}
	return wrap(op, id, err)
}
