package pods

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strconv"
	"sync"
	"time"

	v1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"

	"github.com/skiff-dev/skiff/internal/agent/cri"
)

// Upstream's limits on termination messages.
const (
	maxTerminationMessage = 4096
	fallbackLogLines      = 80
	fallbackLogBytes      = 2048
)

// syncTerminating kills and cleans up a pod that is being deleted, is gone
// from the API, or is unknown (pod nil: only the runtime knows it):
// preStop hooks and the stop signal within the grace period, sandboxes
// stopped and removed, volumes torn down, pod and log dirs removed. A pod
// still in the API is then deleted for good; the informer's delete event
// brings it back here to be forgotten.
func (m *Manager) syncTerminating(ctx context.Context, ps *podState, pod *v1.Pod, gone bool, rt *podRuntime) error {
	uid := ps.uid
	var running []cri.Container
	for _, c := range rt.all() {
		if c.State == cri.ContainerRunning {
			running = append(running, c)
		}
	}
	var grace int64
	if pod != nil {
		grace = gracePeriod(pod)
	} else {
		for _, c := range running {
			grace = max(grace, graceFromAnnotations(c.Annotations))
		}
	}
	if len(running) > 0 {
		m.log.Debug("killing pod", "uid", uid, "containers", len(running), "grace", grace)
	}
	if err := m.killContainers(ctx, pod, running, grace, ""); err != nil {
		return err
	}
	for _, sb := range rt.sandboxes {
		if sb.State == cri.SandboxReady {
			if err := m.cfg.Runtime.StopSandbox(ctx, sb.ID); err != nil {
				return err
			}
		}
	}
	m.cfg.Prober.StopPod(uid)
	ps.probing = map[string]bool{}
	m.stopped(ps)
	if pod != nil && !gone {
		// The final status: every container terminated.
		final, err := m.observe(ctx, uid, pod)
		if err != nil {
			return fmt.Errorf("observing pod %s: %w", uid, err)
		}
		obs := m.observed(pod, final, nil)
		if t := ps.terminal; t != nil {
			obs.Phase, obs.Reason, obs.Message = t.Phase, t.Reason, t.Message
		} else if p := pod.Status.Phase; p == v1.PodSucceeded || p == v1.PodFailed {
			obs.Phase, obs.Reason, obs.Message = p, pod.Status.Reason, pod.Status.Message
		}
		m.cfg.Writer.Set(pod, m.cfg.Status.Compute(pod, obs, m.cfg.Prober, m.cfg.Now()))
	}
	for _, c := range rt.all() {
		if err := m.removeContainer(ctx, uid, c); err != nil {
			return err
		}
	}
	for _, sb := range rt.sandboxes {
		if err := m.cfg.Runtime.RemoveSandbox(ctx, sb.ID); err != nil {
			return err
		}
	}
	if err := m.cfg.Volumes.Teardown(ctx, uid); err != nil {
		return fmt.Errorf("tearing down volumes of pod %s: %w", uid, err)
	}
	// Only once the volumes are unmounted: RemoveAll would reach into them.
	if err := os.RemoveAll(m.podDir(uid)); err != nil {
		return fmt.Errorf("removing pod dir: %w", err)
	}
	logs, _ := filepath.Glob(filepath.Join(m.cfg.RootDir, "logs", "*_"+string(uid)))
	for _, d := range logs {
		if err := os.RemoveAll(d); err != nil {
			return fmt.Errorf("removing pod logs: %w", err)
		}
	}
	m.noteSeen(uid, &podRuntime{})
	if pod != nil && !gone && pod.DeletionTimestamp != nil {
		err := m.cfg.Client.CoreV1().Pods(pod.Namespace).Delete(ctx, pod.Name, metav1.DeleteOptions{
			GracePeriodSeconds: new(int64),
			Preconditions:      &metav1.Preconditions{UID: &pod.UID},
		})
		if err != nil && !apierrors.IsNotFound(err) && !apierrors.IsConflict(err) {
			return fmt.Errorf("deleting pod %s/%s: %w", pod.Namespace, pod.Name, err)
		}
		m.log.Debug("pod terminated and deleted", "pod", pod.Namespace+"/"+pod.Name, "uid", uid)
		return nil
	}
	if pod != nil && !gone {
		return nil // not deleted: nothing else to do until it is
	}
	if pod != nil {
		m.cfg.Writer.Forget(uid)
	}
	m.forget(uid)
	return nil
}

// killContainers kills containers with killContainer within grace
// seconds: sidecars last, as upstream, once the others have stopped (with
// what is left of grace), and the others in parallel.
func (m *Manager) killContainers(ctx context.Context, pod *v1.Pod, cs []cri.Container, grace int64, message string) error {
	var first, sidecars []cri.Container
	for _, c := range cs {
		if spec := containerSpec(pod, c.Name); spec != nil && isSidecar(spec) {
			sidecars = append(sidecars, c)
		} else {
			first = append(first, c)
		}
	}
	start := time.Now()
	if err := m.killParallel(ctx, pod, first, grace, message); err != nil {
		return err
	}
	left := grace - int64(time.Since(start)/time.Second)
	return m.killParallel(ctx, pod, sidecars, left, message)
}

func (m *Manager) killParallel(ctx context.Context, pod *v1.Pod, cs []cri.Container, grace int64, message string) error {
	errs := make([]error, len(cs))
	var wg sync.WaitGroup
	for i, c := range cs {
		wg.Go(func() {
			errs[i] = m.killContainer(ctx, pod, containerSpec(pod, c.Name), c.ID, grace, message)
		})
	}
	wg.Wait()
	return errors.Join(errs...)
}

// killContainer runs c's preStop hook (when pod and c are known), then
// stops the container with what is left of grace seconds (2s at least).
// message is the Killing event's ("" for the usual one).
func (m *Manager) killContainer(ctx context.Context, pod *v1.Pod, c *v1.Container, id string, grace int64, message string) error {
	start := time.Now()
	total := time.Duration(grace) * time.Second
	if pod != nil && c != nil {
		if message == "" {
			message = "Stopping container " + c.Name
		}
		m.cfg.Recorder.Eventf(pod, v1.EventTypeNormal, "Killing", "%s", message)
		if c.Lifecycle != nil && c.Lifecycle.PreStop != nil {
			hctx, cancel := context.WithTimeout(ctx, total)
			err := m.cfg.Prober.RunHook(hctx, pod, c, id, c.Lifecycle.PreStop)
			cancel()
			if err != nil {
				m.cfg.Recorder.Eventf(pod, v1.EventTypeWarning, "FailedPreStopHook", "PreStopHook failed: %v", err)
			}
		}
	}
	left := max(total-time.Since(start), 2*time.Second)
	if err := m.cfg.Runtime.StopContainer(ctx, id, left); err != nil {
		return err
	}
	return nil
}

// removeContainer removes a container and its termination message file.
func (m *Manager) removeContainer(ctx context.Context, uid types.UID, c cri.Container) error {
	if err := m.cfg.Runtime.RemoveContainer(ctx, c.ID); err != nil {
		return err
	}
	m.statusMu.Lock()
	delete(m.statuses, c.ID)
	m.statusMu.Unlock()
	if err := os.Remove(m.terminationFile(uid, c.Name, c.Attempt)); err != nil && !os.IsNotExist(err) {
		return fmt.Errorf("removing termination message file: %w", err)
	}
	return nil
}

// terminationFile is the host file bind-mounted at a container's
// terminationMessagePath: ROOT/pods/<uid>/containers/<name>/<attempt>.
func (m *Manager) terminationFile(uid types.UID, name string, attempt uint32) string {
	return filepath.Join(m.podDir(uid), "containers", name, strconv.FormatUint(uint64(attempt), 10))
}

// terminationMessage reads an exited container's termination message: its
// file, or with FallbackToLogsOnError and a failure, the end of its log.
func (m *Manager) terminationMessage(pod *v1.Pod, c cri.Container) string {
	uid := types.UID(c.Labels[LabelPodUID])
	if uid == "" {
		return ""
	}
	msg, _ := readTail(m.terminationFile(uid, c.Name, c.Attempt), maxTerminationMessage)
	if len(msg) > 0 {
		return string(msg)
	}
	spec := containerSpec(pod, c.Name)
	if spec == nil || spec.TerminationMessagePolicy != v1.TerminationMessageFallbackToLogsOnError || c.ExitCode == 0 || c.LogPath == "" {
		return ""
	}
	return logTail(c.LogPath)
}

// readTail reads at most the last n bytes of a file.
func readTail(path string, n int64) ([]byte, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	st, err := f.Stat()
	if err != nil {
		return nil, err
	}
	if st.Size() > n {
		if _, err := f.Seek(st.Size()-n, io.SeekStart); err != nil {
			return nil, err
		}
	}
	return io.ReadAll(io.LimitReader(f, n))
}

// logTail returns the text of the last lines of a CRI log file
// ("<time> <stream> <F|P> <text>"), at most fallbackLogLines lines and
// fallbackLogBytes bytes.
func logTail(path string) string {
	b, err := readTail(path, 64*1024)
	if err != nil {
		return ""
	}
	var out []byte
	for _, line := range bytes.Split(b, []byte("\n")) {
		f := bytes.SplitN(line, []byte(" "), 4)
		if len(f) < 3 {
			continue
		}
		text := []byte{}
		if len(f) == 4 {
			text = f[3]
		}
		out = append(out, text...)
		if string(f[2]) != "P" {
			out = append(out, '\n')
		}
	}
	lines := bytes.SplitAfter(out, []byte("\n"))
	if len(lines) > 0 && len(lines[len(lines)-1]) == 0 {
		lines = lines[:len(lines)-1]
	}
	if len(lines) > fallbackLogLines {
		lines = lines[len(lines)-fallbackLogLines:]
	}
	out = bytes.Join(lines, nil)
	if len(out) > fallbackLogBytes {
		out = out[len(out)-fallbackLogBytes:]
	}
	return string(out)
}
