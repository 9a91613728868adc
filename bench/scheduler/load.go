package main

import (
	"context"
	"fmt"
	"slices"
	"sync"
	"sync/atomic"
	"time"

	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/resource"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/fields"
	"k8s.io/apimachinery/pkg/watch"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/tools/cache"
	watchtools "k8s.io/client-go/tools/watch"
)

// Label values the benchmark's pods carry; the constrained pods select
// each other by app.
const (
	appPlain       = "bench-plain"
	appConstrained = "bench-constrained"
)

// benchNode is a node as a node agent would register it: capacity,
// allocatable, a hostname label and a Ready condition.
func benchNode(name string) *corev1.Node {
	res := corev1.ResourceList{
		corev1.ResourceCPU:    resource.MustParse("64"),
		corev1.ResourceMemory: resource.MustParse("256Gi"),
		corev1.ResourcePods:   resource.MustParse("250"),
	}
	now := metav1.Now()
	return &corev1.Node{
		ObjectMeta: metav1.ObjectMeta{
			Name: name,
			Labels: map[string]string{
				corev1.LabelHostname:   name,
				corev1.LabelOSStable:   "linux",
				corev1.LabelArchStable: "amd64",
			},
		},
		Status: corev1.NodeStatus{
			Capacity:    res,
			Allocatable: res,
			Conditions: []corev1.NodeCondition{{
				Type: corev1.NodeReady, Status: corev1.ConditionTrue, Reason: "KubeletReady",
				// No agent heartbeats for these nodes: a heartbeat an hour
				// ahead keeps the node lifecycle controller from tainting
				// them unreachable 40 s in, halfway through a long run.
				LastHeartbeatTime: metav1.NewTime(now.Add(time.Hour)), LastTransitionTime: now,
			}},
		},
	}
}

// benchPod is one pod of a run: one container with requests; constrained
// pods add a hard topology spread over hostnames (maxSkew 1) and a
// preferred anti-affinity to each other on hostname.
func benchPod(name, schedulerName string, constrained bool) *corev1.Pod {
	app := appPlain
	if constrained {
		app = appConstrained
	}
	pod := &corev1.Pod{
		ObjectMeta: metav1.ObjectMeta{Name: name, Labels: map[string]string{"app": app}},
		Spec: corev1.PodSpec{
			SchedulerName: schedulerName,
			Containers: []corev1.Container{{
				Name:  "app",
				Image: "registry.example/bench/app:1.0",
				Resources: corev1.ResourceRequirements{Requests: corev1.ResourceList{
					corev1.ResourceCPU:    resource.MustParse("100m"),
					corev1.ResourceMemory: resource.MustParse("64Mi"),
				}},
			}},
		},
	}
	if !constrained {
		return pod
	}
	sel := &metav1.LabelSelector{MatchLabels: map[string]string{"app": app}}
	pod.Spec.TopologySpreadConstraints = []corev1.TopologySpreadConstraint{{
		MaxSkew:           1,
		TopologyKey:       corev1.LabelHostname,
		WhenUnsatisfiable: corev1.DoNotSchedule,
		LabelSelector:     sel,
	}}
	pod.Spec.Affinity = &corev1.Affinity{PodAntiAffinity: &corev1.PodAntiAffinity{
		PreferredDuringSchedulingIgnoredDuringExecution: []corev1.WeightedPodAffinityTerm{{
			Weight:          100,
			PodAffinityTerm: corev1.PodAffinityTerm{LabelSelector: sel, TopologyKey: corev1.LabelHostname},
		}},
	}}
	return pod
}

// parallel calls work(i) for i in [0, n) from clients goroutines; the
// first error stops them all.
func parallel(ctx context.Context, clients, n int, work func(ctx context.Context, i int) error) error {
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	var next atomic.Int64
	var firstErr error
	var once sync.Once
	var wg sync.WaitGroup
	for range clients {
		wg.Go(func() {
			for ctx.Err() == nil {
				i := int(next.Add(1)) - 1
				if i >= n {
					return
				}
				if err := work(ctx, i); err != nil {
					once.Do(func() { firstErr = err; cancel() })
					return
				}
			}
		})
	}
	wg.Wait()
	if firstErr == nil {
		firstErr = ctx.Err()
	}
	return firstErr
}

// registerNodes creates n nodes node-00000 … and then a last one, the
// marker, which the warm-up pod is pinned to. A node's status is written
// with UpdateStatus if the create dropped it.
func registerNodes(ctx context.Context, cs kubernetes.Interface, clients, n int) (marker string, err error) {
	create := func(ctx context.Context, name string) error {
		node := benchNode(name)
		got, err := cs.CoreV1().Nodes().Create(ctx, node, metav1.CreateOptions{})
		if err != nil {
			return fmt.Errorf("creating node %s: %w", name, err)
		}
		if len(got.Status.Allocatable) == 0 {
			got.Status = node.Status
			if _, err := cs.CoreV1().Nodes().UpdateStatus(ctx, got, metav1.UpdateOptions{}); err != nil {
				return fmt.Errorf("updating status of node %s: %w", name, err)
			}
		}
		return nil
	}
	err = parallel(ctx, clients, n, func(ctx context.Context, i int) error {
		return create(ctx, fmt.Sprintf("node-%05d", i))
	})
	if err != nil {
		return "", err
	}
	marker = fmt.Sprintf("node-%05d", n)
	return marker, create(ctx, marker)
}

// warmUp creates a pod pinned to the marker node (the last registered) in
// ns and waits until it is bound, so that the scheduler has seen every
// node before the measurement starts. The pod is deleted again.
func warmUp(ctx context.Context, cs kubernetes.Interface, ns, schedulerName, marker string) error {
	pod := benchPod("warm-up", schedulerName, false)
	pod.Labels["app"] = "warm-up"
	pod.Spec.NodeSelector = map[string]string{corev1.LabelHostname: marker}
	pods := cs.CoreV1().Pods(ns)
	if _, err := pods.Create(ctx, pod, metav1.CreateOptions{}); err != nil {
		return fmt.Errorf("creating the warm-up pod: %w", err)
	}
	deadline := time.Now().Add(60 * time.Second)
	var last string
	for time.Now().Before(deadline) {
		got, err := pods.Get(ctx, pod.Name, metav1.GetOptions{})
		if err != nil {
			return fmt.Errorf("reading the warm-up pod: %w", err)
		}
		if got.Spec.NodeName != "" {
			zero := int64(0)
			if err := pods.Delete(ctx, pod.Name, metav1.DeleteOptions{GracePeriodSeconds: &zero}); err != nil {
				return fmt.Errorf("deleting the warm-up pod: %w", err)
			}
			return nil
		}
		last = fmt.Sprint(got.Status.Conditions)
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(20 * time.Millisecond):
		}
	}
	return fmt.Errorf("warm-up pod not bound within 60s (is the scheduler running?); conditions %s", last)
}

// measurement is the outcome of one run of P pods.
type measurement struct {
	created time.Duration // first create sent -> last create answered
	span    time.Duration // first create sent -> last pod bound
	latency []time.Duration
	nodes   int // distinct nodes used
	maxPer  int // most pods on one node
	minPer  int // fewest pods on a used node
}

func (m measurement) rate() float64 { return float64(len(m.latency)) / m.span.Seconds() }

// schedulePods creates p pods in ns from clients goroutines and watches
// them until every one has spec.nodeName; the latency of a pod runs from
// just before its create request to the watch event that shows it bound.
func schedulePods(ctx context.Context, cs kubernetes.Interface, ns, schedulerName string, constrained bool, clients, p int, timeout time.Duration) (measurement, error) {
	var m measurement
	sent := make([]time.Time, p) // written before the create request; read after the bound event
	var mu sync.Mutex            // guards sentOK (a pod's event may race its creator's return)
	sentOK := make([]bool, p)
	bound := make(map[string]time.Time, p)
	perNode := map[string]int{}

	// Only bound pods matter: a watch on spec.nodeName!= gets one event
	// per pod (the binding's, as an ADDED) instead of one per write, so
	// that the benchmark's own decoding takes less of the machine it
	// measures.
	boundOnly := fields.OneTermNotEqualSelector("spec.nodeName", "").String()
	list, err := cs.CoreV1().Pods(ns).List(ctx, metav1.ListOptions{FieldSelector: boundOnly})
	if err != nil {
		return m, fmt.Errorf("listing pods: %w", err)
	}
	ctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	w, err := watchtools.NewRetryWatcherWithContext(ctx, list.ResourceVersion, &cache.ListWatch{
		WatchFuncWithContext: func(ctx context.Context, o metav1.ListOptions) (watch.Interface, error) {
			o.FieldSelector = boundOnly
			return cs.CoreV1().Pods(ns).Watch(ctx, o)
		},
	})
	if err != nil {
		return m, fmt.Errorf("watching pods: %w", err)
	}
	defer w.Stop()

	index := make(map[string]int, p)
	names := make([]string, p)
	for i := range p {
		names[i] = fmt.Sprintf("pod-%05d", i)
		index[names[i]] = i
	}
	created := make(chan error, 1)
	start := time.Now()
	go func() {
		created <- parallel(ctx, clients, p, func(ctx context.Context, i int) error {
			mu.Lock()
			sent[i] = time.Now()
			sentOK[i] = true
			mu.Unlock()
			if _, err := cs.CoreV1().Pods(ns).Create(ctx, benchPod(names[i], schedulerName, constrained), metav1.CreateOptions{}); err != nil {
				return fmt.Errorf("creating pod %s: %w", names[i], err)
			}
			return nil
		})
		m.created = time.Since(start)
	}()

	var last time.Time
	for len(bound) < p {
		select {
		case err := <-created:
			if err != nil {
				return m, err
			}
			created = nil
		case ev, ok := <-w.ResultChan():
			if !ok {
				return m, fmt.Errorf("watch ended after %d of %d pods bound: %w", len(bound), p, ctx.Err())
			}
			now := time.Now()
			pod, isPod := ev.Object.(*corev1.Pod)
			if !isPod {
				if st, ok := ev.Object.(*metav1.Status); ok {
					return m, fmt.Errorf("watch error: %s", st.Message)
				}
				continue
			}
			if pod.Spec.NodeName == "" {
				continue
			}
			if _, seen := bound[pod.Name]; seen {
				continue
			}
			if _, ours := index[pod.Name]; !ours {
				continue
			}
			bound[pod.Name] = now
			perNode[pod.Spec.NodeName]++
			last = now
		case <-ctx.Done():
			return m, fmt.Errorf("only %d of %d pods bound within %v", len(bound), p, timeout)
		}
	}
	if created != nil {
		if err := <-created; err != nil {
			return m, err
		}
	}
	m.span = last.Sub(start)
	mu.Lock()
	defer mu.Unlock()
	for name, t := range bound {
		i := index[name]
		if !sentOK[i] {
			return m, fmt.Errorf("pod %s bound before it was created", name)
		}
		m.latency = append(m.latency, t.Sub(sent[i]))
	}
	slices.Sort(m.latency)
	m.nodes, m.minPer = len(perNode), p
	for _, n := range perNode {
		m.maxPer, m.minPer = max(m.maxPer, n), min(m.minPer, n)
	}
	return m, nil
}

// percentile returns the nearest-rank q-th percentile of sorted ds.
func percentile(ds []time.Duration, q float64) time.Duration {
	if len(ds) == 0 {
		return 0
	}
	i := int(float64(len(ds))*q/100+0.5) - 1
	return ds[min(max(i, 0), len(ds)-1)]
}
