package main

import (
	"context"
	"fmt"
	"slices"
	"sync"
	"sync/atomic"
	"time"

	coordinationv1 "k8s.io/api/coordination/v1"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/api/resource"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/client-go/kubernetes"
	listerscorev1 "k8s.io/client-go/listers/core/v1"
	"k8s.io/client-go/tools/cache"
	"k8s.io/client-go/util/retry"
	"k8s.io/client-go/util/workqueue"
)

// registerNodes creates n Ready nodes named bench-node-<i>, each with room
// for podsPerNode pods, and returns their names.
func registerNodes(ctx context.Context, cs kubernetes.Interface, n, podsPerNode int) ([]string, error) {
	var names []string
	for i := range n {
		name := fmt.Sprintf("bench-node-%d", i)
		node := &corev1.Node{ObjectMeta: metav1.ObjectMeta{
			Name:   name,
			Labels: map[string]string{corev1.LabelHostname: name, corev1.LabelOSStable: "linux", corev1.LabelArchStable: "amd64"},
		}}
		created, err := cs.CoreV1().Nodes().Create(ctx, node, metav1.CreateOptions{})
		if err != nil {
			return nil, fmt.Errorf("creating node %s: %w", name, err)
		}
		room := corev1.ResourceList{
			corev1.ResourceCPU:    resource.MustParse("1000"),
			corev1.ResourceMemory: resource.MustParse("4Ti"),
			corev1.ResourcePods:   *resource.NewQuantity(int64(podsPerNode), resource.DecimalSI),
		}
		now := metav1.Now()
		status := corev1.NodeStatus{
			Capacity:    room,
			Allocatable: room,
			Phase:       corev1.NodeRunning,
			Conditions: []corev1.NodeCondition{{
				Type: corev1.NodeReady, Status: corev1.ConditionTrue, Reason: "KubeletReady",
				Message: "bench/controllers plays this node", LastHeartbeatTime: now, LastTransitionTime: now,
			}},
			Addresses: []corev1.NodeAddress{{Type: corev1.NodeInternalIP, Address: fmt.Sprintf("192.168.%d.%d", i/250, i%250+1)}},
			NodeInfo:  corev1.NodeSystemInfo{OperatingSystem: "linux", Architecture: "amd64", KubeletVersion: "v1.33.0"},
		}
		// The node IPAM controller writes the new node's pod CIDR at
		// once: retry the status on a conflict with a fresh read.
		err = retry.RetryOnConflict(retry.DefaultRetry, func() error {
			created.Status = status
			_, err := cs.CoreV1().Nodes().UpdateStatus(ctx, created, metav1.UpdateOptions{})
			if apierrors.IsConflict(err) {
				if cur, gerr := cs.CoreV1().Nodes().Get(ctx, name, metav1.GetOptions{}); gerr == nil {
					created = cur
				}
			}
			return err
		})
		if err != nil {
			return nil, fmt.Errorf("setting status of node %s: %w", name, err)
		}
		names = append(names, name)
	}
	return names, nil
}

// heartbeatInterval is how often the fake kubelet renews its nodes'
// Leases, as a kubelet does (upstream's default renew interval).
const heartbeatInterval = 10 * time.Second

// heartbeat creates a Lease in kube-node-lease for each node, as a kubelet
// does, and renews them every heartbeatInterval until ctx is done, so that
// a node lifecycle controller keeps the nodes Ready. It returns after the
// Leases exist; renewal failures are reported through report.
func heartbeat(ctx context.Context, cs kubernetes.Interface, nodes []string, report func(error)) error {
	leases := cs.CoordinationV1().Leases(corev1.NamespaceNodeLease)
	for _, name := range nodes {
		now := metav1.NewMicroTime(time.Now())
		l := &coordinationv1.Lease{
			ObjectMeta: metav1.ObjectMeta{Name: name},
			Spec: coordinationv1.LeaseSpec{
				HolderIdentity: &name, LeaseDurationSeconds: new(int32(40)), RenewTime: &now,
			},
		}
		if _, err := leases.Create(ctx, l, metav1.CreateOptions{}); err != nil {
			return fmt.Errorf("creating lease of node %s: %w", name, err)
		}
	}
	go func() {
		tick := time.NewTicker(heartbeatInterval)
		defer tick.Stop()
		for {
			select {
			case <-ctx.Done():
				return
			case <-tick.C:
			}
			for _, name := range nodes {
				l, err := leases.Get(ctx, name, metav1.GetOptions{})
				if err == nil {
					l.Spec.RenewTime = new(metav1.NewMicroTime(time.Now()))
					_, err = leases.Update(ctx, l, metav1.UpdateOptions{})
				}
				if err != nil && ctx.Err() == nil {
					report(fmt.Errorf("renewing lease of node %s: %w", name, err))
				}
			}
		}
	}()
	return nil
}

// kubelet plays the node agent of a set of nodes for the pods of one
// namespace: a pod bound to one of them is marked Running and Ready at
// once; a pod being deleted gracefully is removed (grace period 0), as a
// kubelet does once its containers stopped.
//
// Register its handler on the pod informer before the informer starts,
// then call run. Its counters are safe to read at any time.
type kubelet struct {
	cs     kubernetes.Interface
	pods   listerscorev1.PodLister
	nodes  map[string]bool
	queue  workqueue.TypedRateLimitingInterface[string]
	nextIP atomic.Uint32

	mu sync.Mutex
	// statusUpdates, deletes and conflicts count writes since the last
	// stats call; guarded by mu.
	statusUpdates, deletes, conflicts int64
	// seen is when a pod needing work was first enqueued, by UID; guarded
	// by mu.
	seen map[types.UID]time.Time
	// lags are, per status update done since the last stats call, the
	// time from the pod being first enqueued (bound, seen by the informer)
	// to its update answered; first and last are the times of the first
	// and last write since then. Guarded by mu.
	lags        []time.Duration
	first, last time.Time
}

func newKubelet(cs kubernetes.Interface, pods listerscorev1.PodLister, nodes []string) *kubelet {
	k := &kubelet{
		cs:    cs,
		pods:  pods,
		nodes: map[string]bool{},
		queue: workqueue.NewTypedRateLimitingQueue(
			workqueue.NewTypedItemExponentialFailureRateLimiter[string](5*time.Millisecond, time.Second)),
		seen: map[types.UID]time.Time{},
	}
	for _, n := range nodes {
		k.nodes[n] = true
	}
	return k
}

// handler is the kubelet's pod event handler.
func (k *kubelet) handler() cache.ResourceEventHandler {
	return cache.ResourceEventHandlerFuncs{
		AddFunc:    func(obj any) { k.observe(obj) },
		UpdateFunc: func(_, obj any) { k.observe(obj) },
	}
}

func (k *kubelet) observe(obj any) {
	pod, ok := obj.(*corev1.Pod)
	if !ok || !k.nodes[pod.Spec.NodeName] {
		return
	}
	if pod.DeletionTimestamp == nil && podReady(pod) {
		return
	}
	k.mu.Lock()
	if _, ok := k.seen[pod.UID]; !ok {
		k.seen[pod.UID] = time.Now()
	}
	k.mu.Unlock()
	key, _ := cache.MetaNamespaceKeyFunc(pod)
	k.queue.Add(key)
}

// run works the queue on workers goroutines until ctx is done.
func (k *kubelet) run(ctx context.Context, workers int) {
	go func() {
		<-ctx.Done()
		k.queue.ShutDown()
	}()
	var wg sync.WaitGroup
	for range workers {
		wg.Go(func() {
			for {
				key, shutdown := k.queue.Get()
				if shutdown {
					return
				}
				if err := k.sync(ctx, key); err != nil && ctx.Err() == nil {
					k.queue.AddRateLimited(key)
				} else {
					k.queue.Forget(key)
				}
				k.queue.Done(key)
			}
		})
	}
	wg.Wait()
}

// sync converges one pod: ready if bound to us, gone if being deleted.
func (k *kubelet) sync(ctx context.Context, key string) error {
	ns, name, _ := cache.SplitMetaNamespaceKey(key)
	pod, err := k.pods.Pods(ns).Get(name)
	if apierrors.IsNotFound(err) {
		return nil
	}
	if err != nil {
		return err
	}
	if !k.nodes[pod.Spec.NodeName] {
		return nil
	}
	if pod.DeletionTimestamp != nil {
		uid := pod.UID
		err := k.cs.CoreV1().Pods(ns).Delete(ctx, name, metav1.DeleteOptions{
			GracePeriodSeconds: new(int64),
			Preconditions:      &metav1.Preconditions{UID: &uid},
		})
		if err != nil && !apierrors.IsNotFound(err) && !apierrors.IsConflict(err) {
			return fmt.Errorf("deleting pod %s: %w", key, err)
		}
		k.done(pod.UID, false)
		return nil
	}
	if podReady(pod) {
		return nil
	}
	pod = pod.DeepCopy()
	k.markRunning(pod)
	if _, err := k.cs.CoreV1().Pods(ns).UpdateStatus(ctx, pod, metav1.UpdateOptions{}); err != nil {
		if apierrors.IsConflict(err) {
			k.mu.Lock()
			k.conflicts++
			k.mu.Unlock()
		}
		return fmt.Errorf("updating status of pod %s: %w", key, err)
	}
	k.done(pod.UID, true)
	return nil
}

// done records that a pod's status (ready) or deletion (!ready) was
// written.
func (k *kubelet) done(uid types.UID, ready bool) {
	now := time.Now()
	k.mu.Lock()
	defer k.mu.Unlock()
	if ready {
		k.statusUpdates++
	} else {
		k.deletes++
	}
	if start, ok := k.seen[uid]; ok {
		if ready {
			k.lags = append(k.lags, now.Sub(start))
		}
		delete(k.seen, uid)
	}
	if k.first.IsZero() {
		k.first = now
	}
	k.last = now
}

// markRunning sets the status a kubelet reports once every container of
// the pod started and passed its (absent) readiness probe.
func (k *kubelet) markRunning(pod *corev1.Pod) {
	now := metav1.Now()
	n := k.nextIP.Add(1)
	ip := fmt.Sprintf("10.%d.%d.%d", 64+(n>>16)%64, (n>>8)&255, n&255)
	pod.Status.Phase = corev1.PodRunning
	pod.Status.PodIP = ip
	pod.Status.PodIPs = []corev1.PodIP{{IP: ip}}
	pod.Status.HostIP = "192.168.0.1"
	pod.Status.StartTime = &now
	setCondition(pod, corev1.PodInitialized, now)
	setCondition(pod, corev1.PodReadyToStartContainers, now)
	setCondition(pod, corev1.ContainersReady, now)
	setCondition(pod, corev1.PodReady, now)
	pod.Status.ContainerStatuses = nil
	for _, c := range pod.Spec.Containers {
		pod.Status.ContainerStatuses = append(pod.Status.ContainerStatuses, corev1.ContainerStatus{
			Name: c.Name, Image: c.Image, ImageID: c.Image, ContainerID: "bench://" + string(pod.UID) + "/" + c.Name,
			Ready: true, Started: new(true),
			State: corev1.ContainerState{Running: &corev1.ContainerStateRunning{StartedAt: now}},
		})
	}
}

func setCondition(pod *corev1.Pod, t corev1.PodConditionType, now metav1.Time) {
	cond := corev1.PodCondition{Type: t, Status: corev1.ConditionTrue, LastTransitionTime: now}
	for i := range pod.Status.Conditions {
		if pod.Status.Conditions[i].Type == t {
			pod.Status.Conditions[i] = cond
			return
		}
	}
	pod.Status.Conditions = append(pod.Status.Conditions, cond)
}

// podReady reports whether the pod's Ready condition is True.
func podReady(pod *corev1.Pod) bool {
	for _, c := range pod.Status.Conditions {
		if c.Type == corev1.PodReady {
			return c.Status == corev1.ConditionTrue
		}
	}
	return false
}

// kubeletStats is a summary of the fake kubelet's work.
type kubeletStats struct {
	statusUpdates, deletes, conflicts int64
	// rate is writes (status updates and deletes) per second between the
	// first and the last write.
	rate     float64
	p50, p99 time.Duration
}

// stats summarizes the work since the previous call and starts a new
// window.
func (k *kubelet) stats() kubeletStats {
	k.mu.Lock()
	defer k.mu.Unlock()
	s := kubeletStats{statusUpdates: k.statusUpdates, deletes: k.deletes, conflicts: k.conflicts}
	if span := k.last.Sub(k.first); span > 0 {
		s.rate = float64(s.statusUpdates+s.deletes) / span.Seconds()
	}
	lags := slices.Clone(k.lags)
	slices.Sort(lags)
	s.p50, s.p99 = percentile(lags, 50), percentile(lags, 99)
	k.statusUpdates, k.deletes, k.conflicts = 0, 0, 0
	k.lags, k.first, k.last = nil, time.Time{}, time.Time{}
	return s
}

// percentile returns the nearest-rank p-th percentile of sorted ds.
func percentile(ds []time.Duration, p int) time.Duration {
	if len(ds) == 0 {
		return 0
	}
	i := (len(ds)*p + 99) / 100
	if i < 1 {
		i = 1
	}
	return ds[i-1]
}
