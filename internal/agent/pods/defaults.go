package pods

import (
	"context"
	"time"

	v1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/client-go/tools/record"

	"github.com/skiff-dev/skiff/internal/agent/cri"
	"github.com/skiff-dev/skiff/internal/agent/pull"
)

// The stand-ins New uses for the optional parts of Config.

// noVolumes has no volumes; a container's environment is its literal
// values only.
type noVolumes struct{}

var _ VolumeManager = noVolumes{}

func (noVolumes) Setup(context.Context, *v1.Pod) (map[string]string, error) { return nil, nil }
func (noVolumes) Mounts(*v1.Pod, *v1.Container, map[string]string) ([]cri.Mount, error) {
	return nil, nil
}
func (noVolumes) Teardown(context.Context, types.UID) error { return nil }
func (noVolumes) Env(_ context.Context, _ *v1.Pod, c *v1.Container) ([]cri.EnvVar, error) {
	var env []cri.EnvVar
	for _, e := range c.Env {
		if e.ValueFrom == nil {
			env = append(env, cri.EnvVar{Name: e.Name, Value: e.Value})
		}
	}
	return env, nil
}

// noProber runs no probes and no hooks: every container is started and
// ready.
type noProber struct{}

var _ Prober = noProber{}

func (noProber) Start(*v1.Pod, *v1.Container, string, time.Time) {}
func (noProber) Stop(string)                                     {}
func (noProber) StopPod(types.UID)                               {}
func (noProber) Ready(string) bool                               { return true }
func (noProber) Started(string) bool                             { return true }
func (noProber) Liveness(string) (bool, string)                  { return false, "" }
func (noProber) RunHook(context.Context, *v1.Pod, *v1.Container, string, *v1.LifecycleHandler) error {
	return nil
}

// runtimePuller pulls an absent image through the runtime, ignoring
// imagePullPolicy and pull secrets.
type runtimePuller struct{ rt cri.Runtime }

var _ ImagePuller = runtimePuller{}

func (p runtimePuller) Ensure(ctx context.Context, _ *v1.Pod, c *v1.Container) (string, error) {
	img, err := p.rt.ImageStatus(ctx, c.Image)
	if err != nil {
		return "", err
	}
	if img != nil {
		return img.ID, nil
	}
	ref, err := p.rt.PullImage(ctx, c.Image)
	if err != nil {
		return "", &pull.Error{Reason: "ErrImagePull", Message: err.Error()}
	}
	return ref, nil
}

// noEvents drops events.
type noEvents struct{}

var _ record.EventRecorder = noEvents{}

func (noEvents) Event(runtime.Object, string, string, string)                                      {}
func (noEvents) Eventf(runtime.Object, string, string, string, ...any)                             {}
func (noEvents) AnnotatedEventf(runtime.Object, map[string]string, string, string, string, ...any) {}
