package pods

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"net/netip"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"time"

	v1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/types"

	"github.com/skiff-dev/skiff/internal/agent/cri"
	"github.com/skiff-dev/skiff/internal/agent/podstatus"
	"github.com/skiff-dev/skiff/internal/agent/pull"
)

// Upstream's waiting reasons and messages the sync sets.
const (
	reasonContainerCreating = "ContainerCreating"
	reasonPodInitializing   = "PodInitializing"
	reasonCrashLoopBackOff  = "CrashLoopBackOff"
	reasonConfigError       = "CreateContainerConfigError"
	reasonCreateError       = "CreateContainerError"
	reasonRunError          = "RunContainerError"
	reasonErrImagePull      = "ErrImagePull"

	deadlineMessage = "Pod was active on the node longer than the specified deadline"
	// imageRetry is how often a pod whose image is not there yet is synced
	// again (the puller keeps its own back-off).
	imageRetry = 5 * time.Second
)

// podRuntime is what the runtime holds of one pod.
type podRuntime struct {
	// sandboxes, newest first (by Attempt, then CreatedAt); the IP is
	// filled for Ready ones.
	sandboxes []cri.Sandbox
	// containers per name, newest first, with every status field filled
	// and Message holding the termination message of exited ones.
	containers map[string][]cri.Container
}

// ready returns the newest sandbox if it is Ready, else nil.
func (r *podRuntime) ready() *cri.Sandbox {
	if len(r.sandboxes) > 0 && r.sandboxes[0].State == cri.SandboxReady {
		return &r.sandboxes[0]
	}
	return nil
}

// newest returns the current container of name (nil: none).
func (r *podRuntime) newest(name string) *cri.Container {
	if cs := r.containers[name]; len(cs) > 0 {
		return &cs[0]
	}
	return nil
}

// all returns every container, in no particular order.
func (r *podRuntime) all() []cri.Container {
	var out []cri.Container
	for _, cs := range r.containers {
		out = append(out, cs...)
	}
	return out
}

func newerContainer(a, b cri.Container) int {
	if c := cmp.Compare(b.Attempt, a.Attempt); c != 0 {
		return c
	}
	return b.CreatedAt.Compare(a.CreatedAt)
}

// observe reads the pod's sandboxes and containers from the runtime: two
// list calls, plus status calls only for objects whose state changed since
// they were last inspected.
func (m *Manager) observe(ctx context.Context, uid types.UID, pod *v1.Pod) (*podRuntime, error) {
	sel := map[string]string{LabelPodUID: string(uid)}
	sbs, err := m.cfg.Runtime.ListSandboxes(ctx, sel)
	if err != nil {
		return nil, err
	}
	ctrs, err := m.cfg.Runtime.ListContainers(ctx, cri.ContainerFilter{Labels: sel})
	if err != nil {
		return nil, err
	}
	slices.SortFunc(sbs, func(a, b cri.Sandbox) int {
		if c := cmp.Compare(b.Attempt, a.Attempt); c != 0 {
			return c
		}
		return b.CreatedAt.Compare(a.CreatedAt)
	})
	for i := range sbs {
		if sbs[i].State != cri.SandboxReady {
			continue
		}
		m.statusMu.Lock()
		ip, ok := m.sandboxIPs[sbs[i].ID]
		m.statusMu.Unlock()
		if !ok {
			st, err := m.cfg.Runtime.SandboxStatus(ctx, sbs[i].ID)
			if cri.IsNotFound(err) {
				continue
			}
			if err != nil {
				return nil, err
			}
			ip = st.IP
			m.statusMu.Lock()
			m.sandboxIPs[sbs[i].ID] = ip
			m.statusMu.Unlock()
		}
		sbs[i].IP = ip
	}
	rt := &podRuntime{sandboxes: sbs, containers: map[string][]cri.Container{}}
	for _, listed := range ctrs {
		c, ok, err := m.fullStatus(ctx, listed, pod)
		if err != nil {
			return nil, err
		}
		if ok {
			rt.containers[c.Name] = append(rt.containers[c.Name], c)
		}
	}
	for _, cs := range rt.containers {
		slices.SortFunc(cs, newerContainer)
	}
	return rt, nil
}

// fullStatus returns the full status of a listed container, from the cache
// while its state is unchanged; false if it is gone.
func (m *Manager) fullStatus(ctx context.Context, listed cri.Container, pod *v1.Pod) (cri.Container, bool, error) {
	m.statusMu.Lock()
	c, ok := m.statuses[listed.ID]
	m.statusMu.Unlock()
	if ok && c.State == listed.State && listed.State != cri.ContainerCreated {
		return c, true, nil
	}
	c, err := m.cfg.Runtime.ContainerStatus(ctx, listed.ID)
	if cri.IsNotFound(err) {
		return cri.Container{}, false, nil
	}
	if err != nil {
		return cri.Container{}, false, err
	}
	c.SandboxID = listed.SandboxID
	if c.Name == "" {
		c.Name = listed.Name
	}
	if c.State == cri.ContainerExited {
		if msg := m.terminationMessage(pod, c); msg != "" {
			c.Message = msg
		}
	}
	m.statusMu.Lock()
	m.statuses[c.ID] = c
	m.statusMu.Unlock()
	return c, true, nil
}

// podSync is one sync of a pod that should run.
type podSync struct {
	m   *Manager
	ps  *podState
	pod *v1.Pod // from the informer: read-only
	rt  *podRuntime
	now time.Time
	sb  *cri.Sandbox
	sbc cri.SandboxConfig
	// waiting holds why containers that should run do not.
	waiting map[string]podstatus.Waiting
	// changed says the sync changed the runtime: observe again before
	// computing the status.
	changed bool
	// requeue is the soonest the pod wants another sync (0: no need).
	requeue   time.Duration
	hostsPath string // "" when /etc/hosts is not ours to mount
	paths     map[string]string
	ipPod     *v1.Pod // see withIPs; made on first use
}

func (s *podSync) after(d time.Duration) {
	if d > 0 && (s.requeue == 0 || d < s.requeue) {
		s.requeue = d
	}
}

func (s *podSync) event(typ, reason, format string, args ...any) {
	s.m.cfg.Recorder.Eventf(s.pod, typ, reason, format, args...)
}

// syncPod converges one pod: the level-triggered heart of the agent.
func (m *Manager) syncPod(ctx context.Context, uid types.UID) (time.Duration, error) {
	ps, pod, gone := m.state(uid)
	rt := &podRuntime{containers: map[string][]cri.Container{}}
	if ps.observed || !m.unseen(uid) {
		// Skipped only for a pod new to the node: only this Manager
		// creates its objects, and the relist found none.
		var err error
		if rt, err = m.observe(ctx, uid, pod); err != nil {
			return 0, fmt.Errorf("observing pod %s: %w", uid, err)
		}
	}
	ps.observed = true
	if pod == nil || gone || pod.DeletionTimestamp != nil {
		return 0, m.syncTerminating(ctx, ps, pod, gone, rt)
	}
	s := &podSync{m: m, ps: ps, pod: pod, rt: rt, now: m.cfg.Now(), waiting: map[string]podstatus.Waiting{}}
	if ps.firstSeen.IsZero() {
		ps.firstSeen = s.now
	}
	err := s.converge(ctx)
	if gcErr := s.gc(ctx); err == nil {
		err = gcErr
	}
	if repErr := s.report(ctx); err == nil {
		err = repErr
	}
	return s.requeue, err
}

// converge makes the runtime match the pod: sandbox, volumes, init
// containers in order, app containers.
func (s *podSync) converge(ctx context.Context) error {
	if s.terminal() {
		err := s.stopAll(ctx)
		if err == nil {
			s.m.stopped(s.ps)
		}
		return err
	}
	if err := s.ensureSandbox(ctx); err != nil {
		s.waitAll(reasonContainerCreating, "")
		return err
	}
	paths, err := s.m.cfg.Volumes.Setup(ctx, s.pod)
	if err != nil {
		s.event(v1.EventTypeWarning, "FailedMount", "MountVolume.SetUp failed: %v", err)
		s.waitAll(reasonContainerCreating, "")
		return fmt.Errorf("setting up volumes: %w", err)
	}
	s.paths = paths

	// Once an app container was created in this sandbox, the pod is
	// initialized: init containers do not run again, and sidecars are
	// kept running without holding up the app containers.
	initialized := false
	for i := range s.pod.Spec.Containers {
		if cur := s.rt.newest(s.pod.Spec.Containers[i].Name); cur != nil && cur.SandboxID == s.sb.ID {
			initialized = true
		}
	}
	var errs []error
	initDone := true
	for i := range s.pod.Spec.InitContainers {
		c := &s.pod.Spec.InitContainers[i]
		if isSidecar(c) {
			id, running, err := s.ensure(ctx, c, v1.RestartPolicyAlways)
			errs = append(errs, err)
			if !initialized && (!running || !s.m.cfg.Prober.Started(id)) {
				initDone = false
				break
			}
			continue
		}
		if initialized {
			continue
		}
		cur := s.rt.newest(c.Name)
		if cur != nil && cur.SandboxID == s.sb.ID && cur.State == cri.ContainerExited && cur.ExitCode == 0 {
			continue
		}
		initDone = false
		if cur != nil && cur.SandboxID == s.sb.ID && cur.State == cri.ContainerRunning {
			// Init containers are often quick: look again sooner than the
			// relist would notice the exit.
			s.after(initPoll(s.now.Sub(cur.StartedAt)))
			break
		}
		// Never run in this sandbox, or failed (a pod that does not
		// restart failed containers is terminal and does not get here).
		_, _, err := s.ensure(ctx, c, v1.RestartPolicyAlways)
		errs = append(errs, err)
		break
	}
	// Ephemeral containers (kubectl debug) start even before the pod is
	// initialized, as upstream's, and run once: never restarted.
	for i := range s.pod.Spec.EphemeralContainers {
		errs = append(errs, s.ensureEphemeral(ctx, &s.pod.Spec.EphemeralContainers[i]))
	}
	if !initDone {
		for _, c := range allContainers(s.pod) {
			if _, ok := s.waiting[c.Name]; !ok && s.rt.newest(c.Name) == nil {
				s.waiting[c.Name] = podstatus.Waiting{Reason: reasonPodInitializing}
			}
		}
		return errors.Join(errs...)
	}
	for i := range s.pod.Spec.Containers {
		_, _, err := s.ensure(ctx, &s.pod.Spec.Containers[i], s.pod.Spec.RestartPolicy)
		errs = append(errs, err)
	}
	return errors.Join(errs...)
}

// ensureEphemeral starts ephemeral container ec unless it ever ran in
// this pod: its state, running or exited, stays as it is.
func (s *podSync) ensureEphemeral(ctx context.Context, ec *v1.EphemeralContainer) error {
	if s.rt.newest(ec.Name) != nil {
		return nil
	}
	c := v1.Container(ec.EphemeralContainerCommon)
	_, err := s.start(ctx, &c, 0)
	return err
}

// initPoll is when to look again at an init container that has run for
// ran: soon at first, then at half its age, until the relist's period.
func initPoll(ran time.Duration) time.Duration {
	return min(max(ran/2, 50*time.Millisecond), time.Second)
}

func isSidecar(c *v1.Container) bool {
	return c.RestartPolicy != nil && *c.RestartPolicy == v1.ContainerRestartPolicyAlways
}

// shouldRestart says whether a container that exited with code is started
// again under policy.
func shouldRestart(policy v1.RestartPolicy, code int32) bool {
	switch policy {
	case v1.RestartPolicyNever:
		return false
	case v1.RestartPolicyOnFailure:
		return code != 0
	default:
		return true
	}
}

// waitAll sets a waiting reason for every container without one that has
// no running container.
func (s *podSync) waitAll(reason, message string) {
	for _, c := range allContainers(s.pod) {
		if _, ok := s.waiting[c.Name]; ok {
			continue
		}
		if cur := s.rt.newest(c.Name); cur == nil || cur.State != cri.ContainerExited {
			s.waiting[c.Name] = podstatus.Waiting{Reason: reason, Message: message}
		}
	}
}

// terminal decides whether the pod is done: failed or succeeded in the
// API, past its active deadline, or finished under its restart policy.
func (s *podSync) terminal() bool {
	if s.ps.terminal == nil {
		s.m.mu.Lock()
		s.ps.terminal = s.ps.evict
		s.m.mu.Unlock()
	}
	if s.ps.terminal != nil {
		return true
	}
	if p := s.pod.Status.Phase; p == v1.PodSucceeded || p == v1.PodFailed {
		return true
	}
	if ok, reason, message := s.m.admit(s.ps, s.pod, len(s.rt.sandboxes) > 0); !ok {
		s.ps.terminal = &podstatus.Observed{Phase: v1.PodFailed, Reason: reason, Message: message}
		s.event(v1.EventTypeWarning, reason, "%s", message)
		return true
	}
	if d := s.pod.Spec.ActiveDeadlineSeconds; d != nil {
		start := s.ps.firstSeen
		if st := s.pod.Status.StartTime; st != nil {
			start = st.Time
		}
		left := start.Add(time.Duration(*d) * time.Second).Sub(s.now)
		if left <= 0 {
			s.ps.terminal = &podstatus.Observed{Phase: v1.PodFailed, Reason: "DeadlineExceeded", Message: deadlineMessage}
			s.event(v1.EventTypeNormal, "DeadlineExceeded", "%s", deadlineMessage)
			return true
		}
		s.after(left)
	}
	policy := s.pod.Spec.RestartPolicy
	if policy == v1.RestartPolicyAlways || policy == "" {
		return false
	}
	for i := range s.pod.Spec.InitContainers {
		c := &s.pod.Spec.InitContainers[i]
		cur := s.rt.newest(c.Name)
		if !isSidecar(c) && policy == v1.RestartPolicyNever && cur != nil && cur.State == cri.ContainerExited && cur.ExitCode != 0 {
			return true
		}
	}
	for i := range s.pod.Spec.Containers {
		cur := s.rt.newest(s.pod.Spec.Containers[i].Name)
		if cur == nil || cur.State != cri.ContainerExited || shouldRestart(policy, cur.ExitCode) {
			return false
		}
	}
	return true
}

// stopAll stops a terminal pod: its containers (preStop hooks first) and
// its sandboxes, keeping them for status and logs.
func (s *podSync) stopAll(ctx context.Context) error {
	var running []cri.Container
	for _, c := range s.rt.all() {
		if c.State == cri.ContainerRunning || c.State == cri.ContainerCreated {
			running = append(running, c)
		}
	}
	err := s.m.killContainers(ctx, s.pod, running, gracePeriod(s.pod), "")
	s.changed = s.changed || len(running) > 0
	for _, sb := range s.rt.sandboxes {
		if sb.State == cri.SandboxReady {
			err = errors.Join(err, s.m.cfg.Runtime.StopSandbox(ctx, sb.ID))
			s.changed = true
		}
	}
	return err
}

// ensureSandbox makes s.sb the pod's Ready sandbox, creating one (Attempt
// one more than the last) when there is none.
func (s *podSync) ensureSandbox(ctx context.Context) error {
	if sb := s.rt.ready(); sb != nil {
		s.sb = sb
		cfg, err := s.m.sandboxConfig(s.pod, sb.Attempt)
		if err != nil {
			return err
		}
		s.sbc = cfg
		return s.writeHosts()
	}
	var attempt uint32
	if len(s.rt.sandboxes) > 0 {
		attempt = s.rt.sandboxes[0].Attempt + 1
		s.event(v1.EventTypeNormal, "SandboxChanged", "Pod sandbox changed, it will be killed and re-created.")
		// The old sandbox stopped; its containers must not outlive it.
		if err := s.m.cfg.Runtime.StopSandbox(ctx, s.rt.sandboxes[0].ID); err != nil {
			return err
		}
		s.changed = true
	}
	cfg, err := s.m.sandboxConfig(s.pod, attempt)
	if err != nil {
		return err
	}
	if err := os.MkdirAll(cfg.LogDir, 0o755); err != nil {
		return fmt.Errorf("creating log dir: %w", err)
	}
	var id string
	if cfg.RuntimeHandler, err = s.m.runtimeHandler(s.pod); err == nil {
		id, err = s.m.cfg.Runtime.RunSandbox(ctx, cfg)
	}
	if err != nil {
		s.event(v1.EventTypeWarning, "FailedCreatePodSandBox", "Failed to create pod sandbox: %v", err)
		return err
	}
	// What the sync creates goes into s.rt in place: no new observation
	// is needed for it.
	sb, err := s.m.cfg.Runtime.SandboxStatus(ctx, id)
	if err != nil {
		s.changed = true
		return err
	}
	s.m.statusMu.Lock()
	s.m.sandboxIPs[id] = sb.IP
	s.m.statusMu.Unlock()
	s.forgetNeighbor(sb.IP)
	s.rt.sandboxes = append([]cri.Sandbox{sb}, s.rt.sandboxes...)
	s.sb, s.sbc = &s.rt.sandboxes[0], cfg
	return s.writeHosts()
}

// forgetNeighbor drops the node's neighbor entry for a new sandbox's
// address, which host-local may have handed out before (see
// Config.ForgetNeighbor).
func (s *podSync) forgetNeighbor(ip string) {
	if s.m.cfg.ForgetNeighbor == nil || s.pod.Spec.HostNetwork || ip == "" {
		return
	}
	addr, err := netip.ParseAddr(ip)
	if err != nil {
		return
	}
	if err := s.m.cfg.ForgetNeighbor(addr); err != nil {
		s.m.log.Warn("forgetting a stale neighbor entry failed", "pod", s.pod.Namespace+"/"+s.pod.Name, "ip", ip, "err", err)
	}
}

// podIP is the pod's IP: the sandbox's, or the node's with host network.
func (s *podSync) podIP() string {
	if s.pod.Spec.HostNetwork {
		return s.m.cfg.NodeIP
	}
	return s.sb.IP
}

// writeHosts writes ROOT/pods/<uid>/etc-hosts when its content changed.
// Host-network pods use the node's /etc/hosts unless they have host
// aliases.
func (s *podSync) writeHosts() error {
	if s.pod.Spec.HostNetwork && len(s.pod.Spec.HostAliases) == 0 {
		return nil
	}
	s.hostsPath = filepath.Join(s.m.podDir(s.pod.UID), "etc-hosts")
	content := s.m.hostsFile(s.pod, s.podIP())
	if string(content) == string(s.ps.hosts) {
		return nil
	}
	if err := os.MkdirAll(filepath.Dir(s.hostsPath), 0o755); err != nil {
		return fmt.Errorf("writing etc-hosts: %w", err)
	}
	// In place, not renamed: running containers bind-mount this inode.
	if err := os.WriteFile(s.hostsPath, content, 0o644); err != nil {
		return fmt.Errorf("writing etc-hosts: %w", err)
	}
	s.ps.hosts = content
	return nil
}

// ensure keeps container c running in the current sandbox under policy:
// it leaves a running one alone (unless its liveness probe failed), and
// starts a new one when there is none or the last exited and policy says
// restart, after the back-off. It returns the running container's ID.
func (s *podSync) ensure(ctx context.Context, c *v1.Container, policy v1.RestartPolicy) (string, bool, error) {
	cur := s.rt.newest(c.Name)
	attempt := uint32(0)
	if cur != nil {
		attempt = cur.Attempt + 1
	}
	if cur != nil && cur.State != cri.ContainerExited && cur.SandboxID != s.sb.ID {
		// A leftover of an older sandbox: it must not run beside the new one.
		if err := s.m.cfg.Runtime.StopContainer(ctx, cur.ID, 0); err != nil {
			return "", false, err
		}
		s.changed = true
		cur = nil
	}
	if cur != nil && cur.State == cri.ContainerCreated {
		// Created but never started (the agent stopped in between): start
		// afresh under the same attempt.
		if err := s.m.cfg.Runtime.RemoveContainer(ctx, cur.ID); err != nil {
			return "", false, err
		}
		s.rt.containers[c.Name] = s.rt.containers[c.Name][1:]
		s.changed = true
		attempt, cur = cur.Attempt, nil
	}
	if cur != nil && cur.State == cri.ContainerUnknown {
		// The runtime lost track of it: make sure it is stopped before
		// another one starts.
		if err := s.stopAndRefresh(ctx, c, cur, ""); err != nil {
			return "", false, err
		}
	}
	if cur != nil && cur.State == cri.ContainerRunning {
		if img, ok := cur.Annotations[annotationImage]; ok && img != c.Image {
			// The pod's image changed (the one mutable field of a
			// container): replace the container, without back-off.
			m := fmt.Sprintf("Container %s definition changed, will be restarted", c.Name)
			if err := s.stopAndRefresh(ctx, c, cur, m); err != nil {
				return "", false, err
			}
			id, err := s.start(ctx, c, attempt)
			return id, id != "", err
		}
		s.ps.probing[cur.ID] = true
		s.m.cfg.Prober.Start(s.probePod(), c, cur.ID, cur.StartedAt)
		// The prober records the Unhealthy event with the probe's message.
		if failed, _ := s.m.cfg.Prober.Liveness(cur.ID); !failed {
			return cur.ID, true, nil
		}
		m := fmt.Sprintf("Container %s failed liveness probe, will be restarted", c.Name)
		if err := s.stopAndRefresh(ctx, c, cur, m); err != nil {
			return "", false, err
		}
	}
	if cur != nil { // exited
		if !shouldRestart(policy, cur.ExitCode) {
			return "", false, nil
		}
		if cur.SandboxID == s.sb.ID {
			b := s.ps.backoff[c.Name]
			if wait := b.wait(cur.FinishedAt, s.now); wait > 0 {
				s.waiting[c.Name] = podstatus.Waiting{
					Reason:  reasonCrashLoopBackOff,
					Message: fmt.Sprintf("back-off %s restarting failed container=%s pod=%s", b.delay, c.Name, podRef(s.pod)),
				}
				s.event(v1.EventTypeWarning, "BackOff", "Back-off restarting failed container %s in pod %s", c.Name, podRef(s.pod))
				s.after(wait)
				return "", false, nil
			}
			if b == nil {
				b = &backoff{}
				s.ps.backoff[c.Name] = b
			}
			b.restarted(cur.FinishedAt, cur.FinishedAt.Sub(cur.StartedAt))
		}
	}
	id, err := s.start(ctx, c, attempt)
	return id, id != "", err
}

// stopAndRefresh kills container cur of c (preStop hook, grace period:
// the liveness probe's if it sets one, else the pod's) and reads its
// state back into cur, which must then be Exited. message is the Killing
// event's; "" kills without hook or event.
func (s *podSync) stopAndRefresh(ctx context.Context, c *v1.Container, cur *cri.Container, message string) error {
	var err error
	if message == "" {
		err = s.m.cfg.Runtime.StopContainer(ctx, cur.ID, time.Duration(gracePeriod(s.pod))*time.Second)
	} else {
		grace := gracePeriod(s.pod)
		if p := c.LivenessProbe; p != nil && p.TerminationGracePeriodSeconds != nil {
			grace = max(*p.TerminationGracePeriodSeconds, 2)
		}
		err = s.m.killContainer(ctx, s.pod, c, cur.ID, grace, message)
	}
	if err != nil {
		return err
	}
	s.m.cfg.Prober.Stop(cur.ID)
	delete(s.ps.probing, cur.ID)
	s.changed = true
	st, err := s.m.cfg.Runtime.ContainerStatus(ctx, cur.ID)
	if err != nil {
		return err
	}
	cur.State, cur.ExitCode, cur.StartedAt, cur.FinishedAt = st.State, st.ExitCode, st.StartedAt, st.FinishedAt
	if cur.State != cri.ContainerExited {
		return fmt.Errorf("container %s still %s after being stopped", c.Name, cur.State)
	}
	return nil
}

// podRef names a pod in messages as upstream does: name_namespace(uid).
func podRef(pod *v1.Pod) string {
	return fmt.Sprintf("%s_%s(%s)", pod.Name, pod.Namespace, pod.UID)
}

// start creates and starts container c (attempt attempt) in the current
// sandbox and runs its postStart hook. It returns the container's ID, or
// "" with the reason in s.waiting when it is not running.
func (s *podSync) start(ctx context.Context, c *v1.Container, attempt uint32) (string, error) {
	s.waiting[c.Name] = podstatus.Waiting{Reason: reasonContainerCreating}
	if _, err := s.m.cfg.Images.Ensure(ctx, s.pod, c); err != nil {
		if pe := (*pull.Error)(nil); errors.As(err, &pe) {
			s.waiting[c.Name] = podstatus.Waiting{Reason: pe.Reason, Message: pe.Message}
			s.after(imageRetry)
			return "", nil
		}
		s.waiting[c.Name] = podstatus.Waiting{Reason: reasonErrImagePull, Message: err.Error()}
		return "", fmt.Errorf("image for container %s: %w", c.Name, err)
	}
	cfg, err := s.containerConfig(ctx, c, attempt)
	if err != nil {
		s.waiting[c.Name] = podstatus.Waiting{Reason: reasonConfigError, Message: err.Error()}
		s.event(v1.EventTypeWarning, "Failed", "Error: %v", err)
		return "", fmt.Errorf("configuring container %s: %w", c.Name, err)
	}
	id, err := s.m.cfg.Runtime.CreateContainer(ctx, s.sb.ID, s.sbc, cfg)
	if err != nil {
		s.waiting[c.Name] = podstatus.Waiting{Reason: reasonCreateError, Message: err.Error()}
		s.event(v1.EventTypeWarning, "Failed", "Error: %v", err)
		return "", err
	}
	s.event(v1.EventTypeNormal, "Created", "Created container %s", c.Name)
	if err := s.m.cfg.Runtime.StartContainer(ctx, id); err != nil {
		s.changed = true
		s.waiting[c.Name] = podstatus.Waiting{Reason: reasonRunError, Message: err.Error()}
		s.event(v1.EventTypeWarning, "Failed", "Error: %v", err)
		return "", err
	}
	s.event(v1.EventTypeNormal, "Started", "Started container %s", c.Name)
	delete(s.waiting, c.Name)
	startedAt := s.m.cfg.Now()
	if st, found, err := s.m.fullStatus(ctx, cri.Container{ID: id, SandboxID: s.sb.ID, Name: c.Name, State: cri.ContainerCreated}, s.pod); err == nil && found {
		s.rt.containers[c.Name] = append([]cri.Container{st}, s.rt.containers[c.Name]...)
		startedAt = st.StartedAt
	} else {
		s.changed = true
	}
	s.ps.probing[id] = true
	s.m.cfg.Prober.Start(s.probePod(), c, id, startedAt)
	if c.Lifecycle != nil && c.Lifecycle.PostStart != nil {
		if err := s.m.cfg.Prober.RunHook(ctx, s.probePod(), c, id, c.Lifecycle.PostStart); err != nil {
			s.event(v1.EventTypeWarning, "FailedPostStartHook", "%v", err)
			if err := s.m.killContainer(ctx, s.pod, c, id, gracePeriod(s.pod), "FailedPostStartHook"); err != nil {
				return "", err
			}
			s.m.cfg.Prober.Stop(id)
			delete(s.ps.probing, id)
			s.changed = true
			// The next sync restarts it per the restart policy.
			s.after(time.Millisecond)
			return "", nil
		}
	}
	return id, nil
}

// withIPs returns the pod with the node's and the sandbox's addresses in
// its status, which the API object may not show yet.
func (s *podSync) withIPs() *v1.Pod {
	if s.ipPod == nil {
		s.ipPod = s.pod.DeepCopy()
		ip := s.podIP()
		s.ipPod.Status.HostIP = s.m.cfg.NodeIP
		s.ipPod.Status.HostIPs = []v1.HostIP{{IP: s.m.cfg.NodeIP}}
		s.ipPod.Status.PodIP = ip
		s.ipPod.Status.PodIPs = []v1.PodIP{{IP: ip}}
	}
	return s.ipPod
}

// probePod is the pod the prober and lifecycle hooks take the pod's
// address from: the informer's object once its status shows the current
// sandbox's IP, before that (a new pod, or a sandbox re-created after the
// old one died, as after a node restart) a copy that does. With the
// status's IP an HTTP or TCP probe went to the old sandbox's address, and
// since the agent does not sync on its own status writes, the pod never
// became ready again.
func (s *podSync) probePod() *v1.Pod {
	if s.sb == nil || s.pod.Status.PodIP == s.podIP() {
		return s.pod
	}
	return s.withIPs()
}

// containerConfig builds the CRI configuration of container c.
func (s *podSync) containerConfig(ctx context.Context, c *v1.Container, attempt uint32) (cri.ContainerConfig, error) {
	env, err := s.m.cfg.Volumes.Env(ctx, s.withIPs(), c)
	if err != nil {
		return cri.ContainerConfig{}, err
	}
	mounts, err := s.m.cfg.Volumes.Mounts(s.pod, c, s.paths)
	if err != nil {
		return cri.ContainerConfig{}, err
	}
	mounted := func(p string) bool {
		return slices.ContainsFunc(mounts, func(m cri.Mount) bool { return filepath.Clean(m.ContainerPath) == filepath.Clean(p) })
	}
	if s.hostsPath != "" && !mounted("/etc/hosts") {
		mounts = append(mounts, cri.Mount{ContainerPath: "/etc/hosts", HostPath: s.hostsPath})
	}
	if p := c.TerminationMessagePath; p != "" && !mounted(p) {
		host := s.m.terminationFile(s.pod.UID, c.Name, attempt)
		if err := os.MkdirAll(filepath.Dir(host), 0o755); err != nil {
			return cri.ContainerConfig{}, fmt.Errorf("creating termination message file: %w", err)
		}
		if err := os.WriteFile(host, nil, 0o666); err != nil {
			return cri.ContainerConfig{}, fmt.Errorf("creating termination message file: %w", err)
		}
		if err := os.Chmod(host, 0o666); err != nil { // whatever the umask, any user may write it
			return cri.ContainerConfig{}, fmt.Errorf("creating termination message file: %w", err)
		}
		mounts = append(mounts, cri.Mount{ContainerPath: p, HostPath: host})
	}
	vars := make(map[string]string, len(env))
	for _, e := range env {
		vars[e.Name] = e.Value
	}
	cmd := make([]string, len(c.Command))
	for i, a := range c.Command {
		cmd[i] = expand(a, vars)
	}
	args := make([]string, len(c.Args))
	for i, a := range c.Args {
		args[i] = expand(a, vars)
	}
	user, group := runAs(s.pod, c)
	cfg := cri.ContainerConfig{
		Name: c.Name, Attempt: attempt, Image: c.Image,
		Command: cmd, Args: args, WorkingDir: c.WorkingDir,
		Env: env, Mounts: mounts,
		Labels: map[string]string{
			LabelPodName: s.pod.Name, LabelPodNamespace: s.pod.Namespace, LabelPodUID: string(s.pod.UID),
			LabelContainerName: c.Name,
		},
		Annotations: map[string]string{
			annotationGrace: strconv.FormatInt(gracePeriod(s.pod), 10),
			annotationImage: c.Image,
		},
		LogPath: fmt.Sprintf("%s/%d.log", c.Name, attempt),
		Stdin:   c.Stdin, StdinOnce: c.StdinOnce, TTY: c.TTY,
		Resources: resources(s.pod, c),
		RunAsUser: user, RunAsGroup: group,
		SupplementalGroups: supplementalGroups(s.pod),
	}
	for _, ec := range s.pod.Spec.EphemeralContainers {
		if ec.Name != c.Name || ec.TargetContainerName == "" {
			continue
		}
		// kubectl debug --target: share the process namespace of the
		// target's running container.
		if cur := s.rt.newest(ec.TargetContainerName); cur != nil && cur.SandboxID == s.sb.ID && cur.State == cri.ContainerRunning {
			cfg.TargetContainerID = cur.ID
		}
	}
	if sc := c.SecurityContext; sc != nil {
		cfg.Privileged = sc.Privileged != nil && *sc.Privileged
		cfg.ReadOnlyRootFS = sc.ReadOnlyRootFilesystem != nil && *sc.ReadOnlyRootFilesystem
	}
	if c.TTY {
		cfg.Annotations[cri.AnnotationTTY] = "true"
	}
	if s.sbc.LogDir != "" {
		if err := os.MkdirAll(filepath.Join(s.sbc.LogDir, c.Name), 0o755); err != nil {
			return cri.ContainerConfig{}, fmt.Errorf("creating log dir: %w", err)
		}
	}
	return cfg, nil
}

// gc removes what the pod no longer needs: per container name, exited
// containers but the current one and the newest before it (kept for logs
// --previous: the previous container is the one after the current);
// containers of names not in the spec; older sandboxes left without
// containers.
func (s *podSync) gc(ctx context.Context) error {
	var errs []error
	for name, cs := range s.rt.containers {
		known := containerSpec(s.pod, name) != nil
		previousKept := false
		kept := cs[:0]
		for i, c := range cs {
			if c.State != cri.ContainerExited && (known || s.m.cfg.Runtime.StopContainer(ctx, c.ID, 0) != nil) {
				kept = append(kept, c)
				continue
			}
			if known && i == 0 {
				kept = append(kept, c)
				continue
			}
			if known && !previousKept {
				previousKept = true
				kept = append(kept, c)
				continue
			}
			if err := s.m.removeContainer(ctx, s.pod.UID, c); err != nil {
				errs = append(errs, err)
				kept = append(kept, c)
				continue
			}
			s.changed = true
		}
		s.rt.containers[name] = kept
	}
	used := map[string]bool{}
	for _, c := range s.rt.all() {
		used[c.SandboxID] = true
	}
	for i := len(s.rt.sandboxes) - 1; i >= 1; i-- {
		sb := s.rt.sandboxes[i]
		if used[sb.ID] {
			continue
		}
		if err := s.m.cfg.Runtime.StopSandbox(ctx, sb.ID); err != nil {
			errs = append(errs, err)
			continue
		}
		if err := s.m.cfg.Runtime.RemoveSandbox(ctx, sb.ID); err != nil {
			errs = append(errs, err)
			continue
		}
		s.rt.sandboxes = slices.Delete(s.rt.sandboxes, i, i+1)
		s.changed = true
	}
	return errors.Join(errs...)
}

// report computes the pod's status from what the runtime holds now and
// hands it to the writer; it also stops the probes of containers that no
// longer run.
func (s *podSync) report(ctx context.Context) error {
	if s.changed {
		rt, err := s.m.observe(ctx, s.pod.UID, s.pod)
		if err != nil {
			return fmt.Errorf("observing pod %s: %w", s.pod.UID, err)
		}
		s.rt = rt
	}
	running := map[string]bool{}
	for _, c := range s.rt.all() {
		if c.State == cri.ContainerRunning {
			running[c.ID] = true
		}
	}
	for id := range s.ps.probing {
		if !running[id] {
			s.m.cfg.Prober.Stop(id)
			delete(s.ps.probing, id)
		}
	}
	obs := s.m.observed(s.pod, s.rt, s.waiting)
	if t := s.ps.terminal; t != nil {
		obs.Phase, obs.Reason, obs.Message = t.Phase, t.Reason, t.Message
	} else if p := s.pod.Status.Phase; p == v1.PodSucceeded || p == v1.PodFailed {
		obs.Phase, obs.Reason, obs.Message = p, s.pod.Status.Reason, s.pod.Status.Message
	}
	s.m.cfg.Writer.Set(s.pod, s.m.cfg.Status.Compute(s.pod, obs, s.m.cfg.Prober, s.m.cfg.Now()))
	s.m.noteSeen(s.pod.UID, s.rt)
	return nil
}

// observed builds podstatus.Observed; waiting reasons of containers whose
// newest container runs are dropped.
func (m *Manager) observed(pod *v1.Pod, rt *podRuntime, waiting map[string]podstatus.Waiting) podstatus.Observed {
	obs := podstatus.Observed{Containers: rt.containers, Waiting: map[string]podstatus.Waiting{}, NodeIP: m.cfg.NodeIP}
	if len(rt.sandboxes) > 0 {
		sb := rt.sandboxes[0]
		obs.Sandbox = &sb
	}
	for name, w := range waiting {
		if cur := rt.newest(name); cur != nil && cur.State == cri.ContainerRunning {
			continue
		}
		obs.Waiting[name] = w
	}
	return obs
}
