package cri

import (
	"context"
	"errors"
	"time"
)

// Runtime is what the node agent needs from a container runtime. Client
// implements it over the CRI; an in-memory fake for the agent's unit tests
// will implement it too (TODO(issue 5)).
//
// All methods are safe for concurrent use. Stop and Remove methods are
// idempotent: stopping a stopped sandbox or container, or removing a missing
// one, returns nil. Methods on one missing object return an error for which
// IsNotFound is true.
type Runtime interface {
	// RunSandbox creates and starts a pod sandbox (its namespaces, network
	// and pause process) and returns its ID.
	RunSandbox(ctx context.Context, cfg SandboxConfig) (string, error)
	// StopSandbox stops every container of the sandbox and the sandbox,
	// and tears down its network.
	StopSandbox(ctx context.Context, id string) error
	// RemoveSandbox removes a sandbox and its containers.
	RemoveSandbox(ctx context.Context, id string) error
	// SandboxStatus inspects one sandbox.
	SandboxStatus(ctx context.Context, id string) (Sandbox, error)
	// ListSandboxes lists the sandboxes whose labels include every pair of
	// labels (nil: all).
	ListSandboxes(ctx context.Context, labels map[string]string) ([]Sandbox, error)

	// CreateContainer creates a container in sandbox sandboxID, which was
	// run with sandbox, and returns its ID. The image must be present.
	CreateContainer(ctx context.Context, sandboxID string, sandbox SandboxConfig, cfg ContainerConfig) (string, error)
	// StartContainer starts a created container.
	StartContainer(ctx context.Context, id string) error
	// StopContainer sends the stop signal, then SIGKILL after grace.
	StopContainer(ctx context.Context, id string, grace time.Duration) error
	// RemoveContainer removes a container, stopping it first if needed.
	RemoveContainer(ctx context.Context, id string) error
	// ContainerStatus inspects one container.
	ContainerStatus(ctx context.Context, id string) (Container, error)
	// ListContainers lists the containers matching f.
	ListContainers(ctx context.Context, f ContainerFilter) ([]Container, error)

	// PullImage makes image present and returns its reference (image ID).
	PullImage(ctx context.Context, image string) (string, error)
	// ImageStatus returns the image, or nil and no error when it is absent.
	ImageStatus(ctx context.Context, image string) (*Image, error)

	// ExecSync runs cmd in a running container and waits for it, at most
	// timeout (0: no limit but ctx's). A non-zero exit is not an error.
	ExecSync(ctx context.Context, id string, cmd []string, timeout time.Duration) (ExecResult, error)
}

// ErrNotFound is wrapped by the errors of calls on a sandbox, container or
// image the runtime does not know.
var ErrNotFound = errors.New("cri: not found")

// IsNotFound reports whether err says the object does not exist.
func IsNotFound(err error) bool { return errors.Is(err, ErrNotFound) }

// SandboxConfig describes a pod sandbox.
type SandboxConfig struct {
	// Name, Namespace and UID are the pod's; Attempt counts sandboxes
	// created for the same pod.
	Name, Namespace, UID string
	Attempt              uint32
	// Hostname must be "" with HostNetwork (the node's UTS namespace).
	Hostname string
	// LogDir is where container logs go (LogPath of containers is relative
	// to it); "" means no logs.
	LogDir string
	// HostNetwork, HostPID and HostIPC share the node's namespaces.
	HostNetwork, HostPID, HostIPC bool
	// ShareProcessNamespace puts the sandbox's containers in one PID
	// namespace (pod.spec.shareProcessNamespace); otherwise each
	// container has its own, its process PID 1, unless HostPID.
	ShareProcessNamespace bool
	DNS                   *DNSConfig
	Ports                 []PortMapping
	Labels, Annotations   map[string]string
	// CgroupParent is the pod's cgroup (cgroupfs path); "" means the
	// runtime's default.
	CgroupParent string
	// Sysctls are namespaced sysctls for the sandbox.
	Sysctls map[string]string
	// Privileged is set when any container of the pod is privileged:
	// containerd refuses a privileged container in an unprivileged
	// sandbox.
	Privileged bool
	// RuntimeHandler selects the runtime configuration the sandbox and its
	// containers run with (a RuntimeClass's handler; containerd's
	// runtimes.<handler>); "" is the runtime's default. Only RunSandbox
	// reads it: a sandbox keeps the handler it was created with.
	RuntimeHandler string
}

// DNSConfig is the resolv.conf of a sandbox.
type DNSConfig struct {
	Servers, Searches, Options []string
}

// PortMapping maps a host port to a sandbox port.
type PortMapping struct {
	// Protocol is "TCP", "UDP" or "SCTP"; "" means TCP.
	Protocol      string
	ContainerPort int32
	HostPort      int32
	HostIP        string
}

// ContainerConfig describes a container.
type ContainerConfig struct {
	Name    string
	Attempt uint32
	Image   string
	// Command replaces the image's entrypoint, Args its command.
	Command, Args []string
	WorkingDir    string
	Env           []EnvVar
	Mounts        []Mount
	Labels        map[string]string
	Annotations   map[string]string
	// LogPath is relative to the sandbox's LogDir.
	LogPath    string
	Stdin, TTY bool
	// StdinOnce closes the container's stdin when the first attached
	// client's stdin ends (kubectl run -i): without it the runtime ends
	// the attach session there, output and all.
	StdinOnce bool
	Resources *Resources
	// RunAsUser and RunAsGroup override the image's user.
	RunAsUser, RunAsGroup *int64
	// SupplementalGroups are added to the process's groups (the pod's
	// supplementalGroups and fsGroup).
	SupplementalGroups []int64
	Privileged         bool
	ReadOnlyRootFS     bool
	// TargetContainerID, for an ephemeral container, is the container
	// whose PID namespace it joins (kubectl debug --target); ignored when
	// the pod shares one PID namespace or the node's.
	TargetContainerID string
}

// AnnotationTTY marks, with "true", a container the agent created with a
// TTY: an attach must use the container's setting whatever the client
// asks (kubectl run -it without a terminal asks for none), as upstream's
// kubelet does, and the CRI does not report it.
const AnnotationTTY = "io.skiff.container.tty"

// EnvVar is one environment variable.
type EnvVar struct {
	Name, Value string
}

// Mount bind-mounts a host path into a container.
type Mount struct {
	ContainerPath, HostPath string
	ReadOnly                bool
}

// Resources are a container's Linux resource limits; zero fields are unset.
type Resources struct {
	CPUShares, CPUQuota, CPUPeriod int64
	MemoryLimitBytes               int64
	OOMScoreAdj                    int64
}

// SandboxState is the state of a sandbox.
type SandboxState string

// Sandbox states.
const (
	SandboxReady    SandboxState = "Ready"
	SandboxNotReady SandboxState = "NotReady"
)

// Sandbox is a sandbox as the runtime reports it.
type Sandbox struct {
	ID                   string
	Name, Namespace, UID string
	Attempt              uint32
	State                SandboxState
	CreatedAt            time.Time
	// IP is the sandbox's primary IP; "" for host network or before it is
	// known, and in lists.
	IP                  string
	AdditionalIPs       []string
	Labels, Annotations map[string]string
	// RuntimeHandler is the handler the sandbox was created with ("" for
	// the default).
	RuntimeHandler string
}

// ContainerState is the state of a container.
type ContainerState string

// Container states.
const (
	ContainerCreated ContainerState = "Created"
	ContainerRunning ContainerState = "Running"
	ContainerExited  ContainerState = "Exited"
	ContainerUnknown ContainerState = "Unknown"
)

// Container is a container as the runtime reports it. Lists fill ID,
// SandboxID, Name, Attempt, Image, ImageRef, State, CreatedAt, Labels and
// Annotations; ContainerStatus fills every field.
type Container struct {
	ID, SandboxID string
	Name          string
	Attempt       uint32
	// Image is the image as requested; ImageRef the image ID it resolved to.
	Image, ImageRef string
	State           ContainerState
	// CreatedAt, StartedAt, FinishedAt: containerd records StartedAt after
	// the process started, so a process that exits at once may show a
	// FinishedAt slightly before its StartedAt.
	CreatedAt, StartedAt, FinishedAt time.Time
	// ExitCode, Reason ("Completed", "Error", "OOMKilled") and Message
	// are set once the container has exited.
	ExitCode            int32
	Reason, Message     string
	Labels, Annotations map[string]string
	// LogPath is the container's log file on the node.
	LogPath string
}

// ContainerFilter selects containers in ListContainers; zero fields match
// everything.
type ContainerFilter struct {
	SandboxID string
	// State, when set, selects containers in that state.
	State  ContainerState
	Labels map[string]string
}

// Image is an image present on the node.
type Image struct {
	ID                    string
	RepoTags, RepoDigests []string
	Size                  uint64
}

// ExecResult is the outcome of ExecSync.
type ExecResult struct {
	Stdout, Stderr []byte
	ExitCode       int32
}
