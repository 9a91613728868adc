package prober

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strings"
	"time"

	v1 "k8s.io/api/core/v1"
)

// RunHook runs a postStart or preStop handler h of container c of pod,
// running as containerID, and returns its error, nil on success. It blocks
// until the handler finished or ctx is done; the caller bounds it (the
// grace period for preStop). It records no event of its own: the caller
// records FailedPostStartHook or FailedPreStopHook with the error's text.
//
//   - exec: the command runs in the container with no timeout but ctx's; a
//     non-zero exit is an error carrying the output.
//   - httpGet: a GET to the action's host (default the pod IP), port and
//     path; any response is success (the status is not checked, as
//     upstream); an HTTPS request answered in plain HTTP is retried over
//     HTTP (a LifecycleHTTPFallback warning event).
//   - sleep: waits the seconds; ctx done first is an error.
//   - tcpSocket (deprecated) or nothing: an error, as upstream, which never
//     ran it.
//
// A nil h is a no-op.
func (m *Manager) RunHook(ctx context.Context, pod *v1.Pod, c *v1.Container, containerID string, h *v1.LifecycleHandler) error {
	if h == nil {
		return nil
	}
	t := target{pod: pod, container: c, containerID: containerID}
	podName := pod.Namespace + "/" + pod.Name
	switch {
	case h.Exec != nil:
		r, err := m.cfg.Runtime.ExecSync(ctx, containerID, h.Exec.Command, 0)
		if err == nil && r.ExitCode != 0 {
			err = fmt.Errorf("command '%s' exited with %d: %s", strings.Join(h.Exec.Command, " "), r.ExitCode, r.Stderr)
		}
		if err != nil {
			return fmt.Errorf("exec lifecycle hook (%v) for container %q in pod %q failed - error: %w, message: %q", h.Exec.Command, c.Name, podName, err, string(r.Stdout)+string(r.Stderr))
		}
		return nil
	case h.HTTPGet != nil:
		if err := m.runHTTPHook(ctx, t, h.HTTPGet); err != nil {
			return fmt.Errorf("HTTP lifecycle hook (%s) for container %q in pod %q failed - error: %w", h.HTTPGet.Path, c.Name, podName, err)
		}
		return nil
	case h.Sleep != nil:
		tm := time.NewTimer(time.Duration(h.Sleep.Seconds) * m.second)
		defer tm.Stop()
		select {
		case <-ctx.Done():
			return fmt.Errorf("sleep lifecycle hook (%d) for container %q in pod %q failed - error: container terminated before sleep hook finished", h.Sleep.Seconds, c.Name, podName)
		case <-tm.C:
			return nil
		}
	default:
		return fmt.Errorf("running lifecycle hook for container %q in pod %q: invalid handler: %v", c.Name, podName, h)
	}
}

// runHTTPHook sends the GET of an httpGet hook and discards the answer.
func (m *Manager) runHTTPHook(ctx context.Context, t target, a *v1.HTTPGetAction) error {
	if a.Host == "" && !t.hasIP() {
		return errors.New("failed to find networking container: the pod has no IP")
	}
	req, err := newHTTPRequest(ctx, a, t, "lifecycle")
	if err != nil {
		return err
	}
	resp, err := m.http.Do(req)
	discard(resp)
	var uerr *url.Error
	if err != nil && errors.As(err, &uerr) && strings.Contains(uerr.Err.Error(), "server gave HTTP response to HTTPS client") {
		req = req.Clone(ctx)
		req.URL.Scheme = "http"
		req.Header.Del("Authorization")
		resp, herr := m.http.Do(req)
		discard(resp)
		if herr == nil {
			if m.cfg.Recorder != nil {
				m.cfg.Recorder.Event(t.pod, v1.EventTypeWarning, "LifecycleHTTPFallback",
					fmt.Sprintf("request to HTTPS lifecycle hook %s got HTTP response, retry with HTTP succeeded", req.URL.Host))
			}
			err = nil
		}
	}
	return err
}

// discard reads at most maxOutput of resp's body and closes it.
func discard(resp *http.Response) {
	if resp == nil {
		return
	}
	_, _ = io.Copy(io.Discard, io.LimitReader(resp.Body, maxOutput))
	_ = resp.Body.Close()
}
