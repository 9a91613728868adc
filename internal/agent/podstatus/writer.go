package podstatus

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"strconv"
	"sync"
	"time"

	v1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/equality"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/util/workqueue"
)

const (
	// writerWorkers is how many status writes run at once.
	writerWorkers = 4
	// writeTimeout bounds one API call.
	writeTimeout = 10 * time.Second
	// conflictRetries is how often a write is re-applied on a fresh read
	// before it goes back to the queue.
	conflictRetries = 5
)

// Writer writes desired pod status to the API server. Set hands it the
// latest status for a pod and never blocks; workers started by Run write
// it. Per pod only the newest status is kept, so a burst of Sets costs at
// most one write in flight and one after it. Memory is one entry per pod
// that was Set and neither Forgotten nor found gone.
//
// A write is skipped when the API already holds the status. The status
// compared and written is the desired one with what others own (their
// conditions, nominatedNodeName, resource claim statuses) taken from the
// API's copy; a terminal phase, a set start time and the transition times
// of unchanged conditions in the API are never changed (see stabilize).
//
// Lifecycle of a pod's entry:
//
//	Set ──> pending ──write ok / API equal──> synced (Wait returns) ──Set──> pending …
//	           │ └─conflict─> GET, re-apply (up to 5 times), else requeue
//	           │ └─other error─> requeue (back-off 100 ms doubling to 30 s)
//	           └─404, or a new pod of that name─> dropped (Wait returns)
//	Forget (any state) ──> dropped
//
// Safe for concurrent use.
type Writer struct {
	client kubernetes.Interface
	logger *slog.Logger
	queue  workqueue.TypedRateLimitingInterface[types.UID]

	mu   sync.Mutex
	pods map[types.UID]*entry // guarded by mu
	// changed is closed and replaced whenever an entry is synced or
	// dropped; guarded by mu.
	changed chan struct{}
}

// entry is the writer's view of one pod; its fields are guarded by
// Writer.mu.
type entry struct {
	// pod is the pod of the last Set (read-only: it may be an informer's).
	pod *v1.Pod
	// desired is the status of the last Set, owned by the writer.
	desired *v1.PodStatus
	// api and apiRV are the status and resourceVersion the API returned
	// for the pod on the writer's last write or read; nil before one.
	api   *v1.PodStatus
	apiRV string
	// gen counts Sets; synced is the gen whose status the API is known
	// to hold.
	gen, synced uint64
}

// NewWriter returns a Writer that writes with client. Call Run to start
// writing; Set may be called before.
func NewWriter(client kubernetes.Interface, logger *slog.Logger) *Writer {
	if logger == nil {
		logger = slog.New(slog.DiscardHandler)
	}
	return &Writer{
		client: client,
		logger: logger,
		queue: workqueue.NewTypedRateLimitingQueueWithConfig(
			workqueue.NewTypedItemExponentialFailureRateLimiter[types.UID](100*time.Millisecond, 30*time.Second),
			workqueue.TypedRateLimitingQueueConfig[types.UID]{Name: "podstatus"}),
		pods:    map[types.UID]*entry{},
		changed: make(chan struct{}),
	}
}

// Run writes statuses until ctx is done, then returns nil. Writes under
// way when ctx ends are abandoned. Call it once.
func (w *Writer) Run(ctx context.Context) error {
	var wg sync.WaitGroup
	for range writerWorkers {
		wg.Go(func() {
			for w.processNext(ctx) {
			}
		})
	}
	<-ctx.Done()
	w.queue.ShutDown()
	wg.Wait()
	return nil
}

// Set records st as pod's desired status and schedules a write. It never
// blocks. The writer takes st over: the caller must not modify it later.
// pod is only read (an informer's object is fine); its resourceVersion is
// used for the write unless the writer has seen a newer one.
func (w *Writer) Set(pod *v1.Pod, st v1.PodStatus) {
	w.mu.Lock()
	e := w.pods[pod.UID]
	if e == nil {
		e = &entry{}
		w.pods[pod.UID] = e
	}
	e.pod = pod
	e.desired = &st
	e.gen++
	w.mu.Unlock()
	w.queue.Add(pod.UID)
}

// Forget drops what the writer holds for the pod with uid; a write under
// way finishes. Call it when the pod is gone from the node.
func (w *Writer) Forget(uid types.UID) {
	w.mu.Lock()
	delete(w.pods, uid)
	w.notifyLocked()
	w.mu.Unlock()
	w.queue.Forget(uid)
}

// Status returns a copy of the last status Set for the pod with uid, and
// whether there is one. The sync can use it as the previous status when
// its informer lags behind the writer.
func (w *Writer) Status(uid types.UID) (v1.PodStatus, bool) {
	w.mu.Lock()
	defer w.mu.Unlock()
	e := w.pods[uid]
	if e == nil {
		return v1.PodStatus{}, false
	}
	return *e.desired.DeepCopy(), true
}

// Wait blocks until the API holds the last status Set for the pod with
// uid (or the pod is gone, or Forgotten, or was never Set) and returns
// nil, or until ctx ends and returns its error. The pod sync uses it to
// write a pod's final status before deleting the pod.
func (w *Writer) Wait(ctx context.Context, uid types.UID) error {
	for {
		w.mu.Lock()
		e := w.pods[uid]
		if e == nil || e.synced >= e.gen {
			w.mu.Unlock()
			return nil
		}
		ch := w.changed
		w.mu.Unlock()
		select {
		case <-ch:
		case <-ctx.Done():
			return ctx.Err()
		}
	}
}

func (w *Writer) notifyLocked() {
	close(w.changed)
	w.changed = make(chan struct{})
}

// tracked reports how many pods the writer holds (for tests).
func (w *Writer) tracked() int {
	w.mu.Lock()
	defer w.mu.Unlock()
	return len(w.pods)
}

func (w *Writer) processNext(ctx context.Context) bool {
	uid, quit := w.queue.Get()
	if quit {
		return false
	}
	defer w.queue.Done(uid)
	err := w.sync(ctx, uid)
	switch {
	case err == nil:
		w.queue.Forget(uid)
	case ctx.Err() != nil:
	default:
		w.logger.Info("writing pod status failed; retrying", "uid", uid, "err", err)
		w.queue.AddRateLimited(uid)
	}
	return true
}

// sync writes the desired status of the pod with uid if the API does not
// have it.
func (w *Writer) sync(ctx context.Context, uid types.UID) error {
	w.mu.Lock()
	e := w.pods[uid]
	if e == nil {
		w.mu.Unlock()
		return nil
	}
	pod, desired, gen := e.pod, e.desired, e.gen
	base, baseRV := &pod.Status, pod.ResourceVersion
	if e.api != nil && newerRV(e.apiRV, baseRV) {
		base, baseRV = e.api, e.apiRV // the informer has not caught up with us
	}
	w.mu.Unlock()

	for attempt := 0; ; attempt++ {
		want := desired.DeepCopy()
		mergeForeign(want, base)
		stabilize(want, base)
		if equality.Semantic.DeepEqual(*want, *base) {
			w.markSynced(uid, e, gen)
			return nil
		}
		obj := *pod // shallow: only ResourceVersion and Status change
		obj.ResourceVersion = baseRV
		obj.Status = *want
		cctx, cancel := context.WithTimeout(ctx, writeTimeout)
		res, err := w.client.CoreV1().Pods(pod.Namespace).UpdateStatus(cctx, &obj, metav1.UpdateOptions{})
		cancel()
		switch {
		case err == nil:
			w.logger.Debug("wrote pod status", "pod", pod.Namespace+"/"+pod.Name, "phase", want.Phase, "resourceVersion", res.ResourceVersion)
			w.record(uid, e, res)
			w.markSynced(uid, e, gen)
			return nil
		case apierrors.IsNotFound(err):
			w.drop(uid, e, "pod is gone")
			return nil
		case !apierrors.IsConflict(err):
			return fmt.Errorf("updating status of pod %s/%s: %w", pod.Namespace, pod.Name, err)
		case attempt >= conflictRetries:
			return fmt.Errorf("updating status of pod %s/%s: %d conflicts: %w", pod.Namespace, pod.Name, attempt+1, err)
		}
		cctx, cancel = context.WithTimeout(ctx, writeTimeout)
		fresh, err := w.client.CoreV1().Pods(pod.Namespace).Get(cctx, pod.Name, metav1.GetOptions{})
		cancel()
		switch {
		case apierrors.IsNotFound(err):
			w.drop(uid, e, "pod is gone")
			return nil
		case err != nil:
			return fmt.Errorf("reading pod %s/%s: %w", pod.Namespace, pod.Name, err)
		case fresh.UID != uid:
			w.drop(uid, e, "pod was replaced")
			return nil
		}
		w.record(uid, e, fresh)
		pod = fresh
		base, baseRV = &fresh.Status, fresh.ResourceVersion
	}
}

// stabilize keeps in want what must not change from base, whatever the
// previous status the desired one was computed from (a lagging informer's
// may predate the writer's last write): a terminal phase, the start time
// once set, and the lastTransitionTime of conditions whose status is
// unchanged.
func stabilize(want, base *v1.PodStatus) {
	if isTerminal(base.Phase) {
		want.Phase = base.Phase
	}
	if base.StartTime != nil {
		want.StartTime = base.StartTime.DeepCopy()
	}
	for i := range want.Conditions {
		c := &want.Conditions[i]
		if prev := findCondition(base.Conditions, c.Type); prev != nil && prev.Status == c.Status {
			c.LastTransitionTime = prev.LastTransitionTime
			c.LastProbeTime = prev.LastProbeTime
		}
	}
}

// record notes what the API returned for the pod, if e is still its entry.
func (w *Writer) record(uid types.UID, e *entry, p *v1.Pod) {
	w.mu.Lock()
	defer w.mu.Unlock()
	if w.pods[uid] == e {
		e.api, e.apiRV = &p.Status, p.ResourceVersion
	}
}

// markSynced notes that the API holds the status of Set number gen.
func (w *Writer) markSynced(uid types.UID, e *entry, gen uint64) {
	w.mu.Lock()
	defer w.mu.Unlock()
	if w.pods[uid] == e && gen > e.synced {
		e.synced = gen
		w.notifyLocked()
	}
}

func (w *Writer) drop(uid types.UID, e *entry, why string) {
	w.mu.Lock()
	if w.pods[uid] == e {
		delete(w.pods, uid)
		w.notifyLocked()
	}
	w.mu.Unlock()
	w.logger.Debug("dropped pod status", "uid", uid, "pod", e.pod.Namespace+"/"+e.pod.Name, "reason", why)
}

// newerRV reports whether resourceVersion a is known to be newer than b.
// Resource versions are opaque in general; ours are etcd revisions, and a
// version that does not parse is never newer.
func newerRV(a, b string) bool {
	x, err1 := strconv.ParseUint(a, 10, 64)
	y, err2 := strconv.ParseUint(b, 10, 64)
	return errors.Join(err1, err2) == nil && x > y
}
