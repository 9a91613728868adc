package podstatus

import (
	v1 "k8s.io/api/core/v1"

	"github.com/skiff-dev/skiff/internal/agent/cri"
)

// Waiting says why a container that should run is not running.
type Waiting struct {
	// Reason is upstream's waiting reason: ContainerCreating,
	// PodInitializing, CrashLoopBackOff, ErrImagePull, ImagePullBackOff,
	// CreateContainerConfigError, CreateContainerError, …
	Reason, Message string
}

// Observed is what the runtime shows of one pod at a sync, plus the sync's
// own decisions.
type Observed struct {
	// Sandbox is the newest sandbox of the pod; nil if none yet.
	Sandbox *cri.Sandbox
	// Containers holds, per container name (init and app), the runtime's
	// containers of the pod, newest first (by Attempt, then CreatedAt),
	// with every ContainerStatus field filled.
	Containers map[string][]cri.Container
	// Waiting holds, per container name, why it is not running.
	Waiting map[string]Waiting
	// NodeIP is the node's IP (hostIP; podIP of host-network pods).
	NodeIP string
	// Phase, Reason and Message are set when the sync decided the pod is
	// terminal (for example Failed/DeadlineExceeded or Failed/Evicted).
	Phase           v1.PodPhase
	Reason, Message string
}

// Probes reports probe results by container ID (without "containerd://").
type Probes interface {
	Ready(containerID string) bool
	Started(containerID string) bool
}
