package kubeletserver

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"os"
	"strconv"
	"time"

	"github.com/skiff-dev/skiff/internal/agent/cri"
	"github.com/skiff-dev/skiff/internal/agent/logs"
)

// logRequest is a parsed /containerLogs query.
type logRequest struct {
	previous bool
	opts     logs.Options
}

// parseLogQuery reads the v1.PodLogOptions query parameters; now turns
// sinceSeconds into a time.
func parseLogQuery(q map[string][]string, now time.Time) (logRequest, error) {
	get := func(k string) string {
		if v := q[k]; len(v) > 0 {
			return v[0]
		}
		return ""
	}
	flag := func(k string) (bool, error) {
		v := get(k)
		if v == "" {
			return false, nil
		}
		b, err := strconv.ParseBool(v)
		if err != nil {
			return false, fmt.Errorf("invalid %s %q: %w", k, v, err)
		}
		return b, nil
	}
	num := func(k string, lowest int64) (*int64, error) {
		v := get(k)
		if v == "" {
			return nil, nil
		}
		n, err := strconv.ParseInt(v, 10, 64)
		if err != nil {
			return nil, fmt.Errorf("invalid %s %q: %w", k, v, err)
		}
		if n < lowest {
			return nil, fmt.Errorf("%s must be at least %d", k, lowest)
		}
		return &n, nil
	}
	var lr logRequest
	var err error
	if lr.opts.Follow, err = flag("follow"); err != nil {
		return lr, err
	}
	if lr.previous, err = flag("previous"); err != nil {
		return lr, err
	}
	if lr.opts.Timestamps, err = flag("timestamps"); err != nil {
		return lr, err
	}
	if lr.opts.TailLines, err = num("tailLines", 0); err != nil {
		return lr, err
	}
	if lr.opts.LimitBytes, err = num("limitBytes", 1); err != nil {
		return lr, err
	}
	sinceSeconds, err := num("sinceSeconds", 1)
	if err != nil {
		return lr, err
	}
	if v := get("sinceTime"); v != "" {
		if sinceSeconds != nil {
			return lr, errors.New("at most one of sinceTime or sinceSeconds may be specified")
		}
		t, err := time.Parse(time.RFC3339, v)
		if err != nil {
			return lr, fmt.Errorf("invalid sinceTime %q: %w", v, err)
		}
		lr.opts.SinceTime = &t
	}
	if sinceSeconds != nil {
		t := now.Add(-time.Duration(*sinceSeconds) * time.Second)
		lr.opts.SinceTime = &t
	}
	return lr, nil
}

// containerLogs serves GET /containerLogs/{ns}/{pod}/{container}.
func (s *Server) containerLogs(w http.ResponseWriter, r *http.Request) {
	ctx := r.Context()
	ns, pod, name := r.PathValue("ns"), r.PathValue("pod"), r.PathValue("container")
	lr, err := parseLogQuery(r.URL.Query(), time.Now())
	if err != nil {
		s.writeError(w, r, errorf(http.StatusBadRequest, "%v", err))
		return
	}
	c, err := s.logContainer(ctx, ns, pod, name, lr.previous)
	if err != nil {
		s.writeError(w, r, err)
		return
	}
	if c.LogPath == "" {
		s.writeError(w, r, errorf(http.StatusNotFound, "container %q in pod %q has no log file", name, pod))
		return
	}
	if _, err := os.Stat(c.LogPath); err != nil {
		s.writeError(w, r, errorf(http.StatusNotFound, "log of container %q in pod %q: %v", name, pod, err))
		return
	}
	var stillRunning func() bool
	if lr.opts.Follow && c.State == cri.ContainerRunning {
		stillRunning = func() bool {
			st, err := s.cfg.Runtime.ContainerStatus(ctx, c.ID)
			return err == nil && (st.State == cri.ContainerRunning || st.State == cri.ContainerCreated)
		}
	}
	lr.opts.PollInterval = s.cfg.LogPollInterval
	w.Header().Set("Content-Type", "text/plain")
	w.WriteHeader(http.StatusOK)
	out := io.Writer(w)
	if f, ok := w.(http.Flusher); ok {
		out = flushWriter{w: w, f: f}
	}
	if err := logs.Read(ctx, c.LogPath, lr.opts, out, stillRunning); err != nil && !errors.Is(err, context.Canceled) {
		s.log.Debug("streaming container log ended", "pod", ns+"/"+pod, "container", name, "err", err)
	}
}

// logContainer finds the container whose log a request wants, with its
// status (which has the log path).
func (s *Server) logContainer(ctx context.Context, ns, pod, name string, previous bool) (cri.Container, error) {
	cs, err := s.containers(ctx, ns, pod, "", name)
	if err != nil {
		return cri.Container{}, err
	}
	var c cri.Container
	switch {
	case previous && len(cs) > 0 && cs[0].State == cri.ContainerExited:
		// Waiting to be restarted (CrashLoopBackOff): the run that just
		// ended is the pod's last terminated one, as upstream shows it.
		c = cs[0]
	case previous && len(cs) < 2:
		return cri.Container{}, errorf(http.StatusBadRequest, "previous terminated container %q in pod %q not found", name, pod)
	case previous:
		c = cs[1]
	case len(cs) == 0 || cs[0].State == cri.ContainerCreated && len(cs) == 1:
		return cri.Container{}, errorf(http.StatusBadRequest, "container %q in pod %q is waiting to start: ContainerCreating", name, pod)
	case cs[0].State == cri.ContainerCreated:
		// A restart not yet started: the last run's log, as upstream.
		c = cs[1]
	default:
		c = cs[0]
	}
	st, err := s.cfg.Runtime.ContainerStatus(ctx, c.ID)
	if err != nil {
		if cri.IsNotFound(err) { // removed since the list
			return cri.Container{}, errorf(http.StatusNotFound, "container %q in pod %q not found", name, pod)
		}
		return cri.Container{}, err
	}
	return st, nil
}

// flushWriter sends every write to the client at once (logs.Read buffers
// and writes at the end of the file, so this does not mean a flush a line).
type flushWriter struct {
	w io.Writer
	f http.Flusher
}

func (fw flushWriter) Write(p []byte) (int, error) {
	n, err := fw.w.Write(p)
	fw.f.Flush()
	return n, err
}
