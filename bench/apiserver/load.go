package main

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	clientv3 "go.etcd.io/etcd/client/v3"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/api/resource"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/watch"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/rest"
)

// benchPod is the pod every create sends: one container with requests,
// labels and an env var, roughly what a small real pod carries.
func benchPod(name string) *corev1.Pod {
	return &corev1.Pod{
		ObjectMeta: metav1.ObjectMeta{
			Name:   name,
			Labels: map[string]string{"app": "bench", "tier": "load"},
		},
		Spec: corev1.PodSpec{
			Containers: []corev1.Container{{
				Name:  "app",
				Image: "registry.example/bench/app:1.0",
				Ports: []corev1.ContainerPort{{Name: "http", ContainerPort: 8080}},
				Env:   []corev1.EnvVar{{Name: "MODE", Value: "bench"}},
				Resources: corev1.ResourceRequirements{Requests: corev1.ResourceList{
					corev1.ResourceCPU:    resource.MustParse("100m"),
					corev1.ResourceMemory: resource.MustParse("64Mi"),
				}},
			}},
		},
	}
}

// ensureNamespace creates ns and its default service account unless they
// exist. The load server runs without the controller manager, whose
// service account controller would create the account; the
// ServiceAccount admission plugin refuses pods without it.

// parallel runs work on clients goroutines, each with its own index and a
// per-goroutine sequence number, until d passes (d > 0) or total calls
// have been made (total > 0), and returns the number of calls that
// succeeded and the time taken. The first error stops every goroutine.
func parallel(ctx context.Context, clients int, d time.Duration, total int64, work func(ctx context.Context, g, i int) error) (int64, time.Duration, error) {
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	var done, issued atomic.Int64
	var firstErr error
	var errOnce sync.Once
	var wg sync.WaitGroup
	start := time.Now()
	deadline := start.Add(d)
	for g := range clients {
		wg.Go(func() {
			for i := 0; ctx.Err() == nil; i++ {
				if d > 0 && time.Now().After(deadline) {
					return
				}
				if total > 0 && issued.Add(1) > total {
					return
				}
				if err := work(ctx, g, i); err != nil {
					errOnce.Do(func() { firstErr = err; cancel() })
					return
				}
				done.Add(1)
			}
		})
	}
	wg.Wait()
	return done.Load(), time.Since(start), firstErr
}

// createRate creates pods in ns (named after prefix) from clients goroutines for d and returns
// creates per second and the CPU time the server process (pid) used per create.
func createRate(ctx context.Context, cs kubernetes.Interface, pid int, ns, prefix string, clients int, d time.Duration) (float64, time.Duration, error) {
	pods := cs.CoreV1().Pods(ns)
	cpu0, err := processCPU(pid)
	if err != nil {
		return 0, 0, err
	}
	n, took, err := parallel(ctx, clients, d, 0, func(ctx context.Context, g, i int) error {
		_, err := pods.Create(ctx, benchPod(fmt.Sprintf("%s-c%d-%d-%d", prefix, clients, g, i)), metav1.CreateOptions{})
		return err
	})
	if err != nil {
		return 0, 0, fmt.Errorf("creating pods with %d clients: %w", clients, err)
	}
	cpu1, err := processCPU(pid)
	if err != nil || n == 0 {
		return 0, 0, err
	}
	return float64(n) / took.Seconds(), (cpu1 - cpu0) / time.Duration(n), nil
}

// putRate writes values of size bytes with clientv3 Put from clients
// goroutines for d and returns puts per second.
func putRate(ctx context.Context, etcd *clientv3.Client, size, clients int, d time.Duration) (float64, error) {
	value := make([]byte, size)
	rand.Read(value)
	v := string(value)
	n, took, err := parallel(ctx, clients, d, 0, func(ctx context.Context, g, i int) error {
		_, err := etcd.Put(ctx, fmt.Sprintf("/bench-raw/c%d/%d/%d", clients, g, i), v)
		return err
	})
	if err != nil {
		return 0, fmt.Errorf("putting with %d clients: %w", clients, err)
	}
	return float64(n) / took.Seconds(), nil
}

// storedPodSize returns the size in etcd of one pod of ns, found under the
// /registry/ prefix.
func storedPodSize(ctx context.Context, etcd *clientv3.Client, ns string) (int, string, error) {
	for _, prefix := range []string{"/registry/core/pods/" + ns + "/", "/registry/pods/" + ns + "/"} {
		resp, err := etcd.Get(ctx, prefix, clientv3.WithPrefix(), clientv3.WithLimit(1))
		if err != nil {
			return 0, "", fmt.Errorf("reading a stored pod: %w", err)
		}
		if len(resp.Kvs) == 1 {
			return len(resp.Kvs[0].Value), string(resp.Kvs[0].Key), nil
		}
	}
	// Unknown layout: look for any key naming a pod of ns.
	resp, err := etcd.Get(ctx, "/", clientv3.WithPrefix(), clientv3.WithKeysOnly())
	if err != nil {
		return 0, "", fmt.Errorf("listing keys: %w", err)
	}
	for _, kv := range resp.Kvs {
		if k := string(kv.Key); strings.Contains(k, "pods/"+ns+"/") {
			got, err := etcd.Get(ctx, k)
			if err != nil || len(got.Kvs) == 0 {
				return 0, "", fmt.Errorf("reading %s: %v", k, err)
			}
			return len(got.Kvs[0].Value), k, nil
		}
	}
	return 0, "", errors.New("no stored pod found in etcd")
}

// fillPods creates pods in ns until it holds n of them.
func fillPods(ctx context.Context, cs kubernetes.Interface, ns string, n int) error {
	pods := cs.CoreV1().Pods(ns)
	_, _, err := parallel(ctx, 64, 0, int64(n), func(ctx context.Context, g, i int) error {
		_, err := pods.Create(ctx, benchPod(fmt.Sprintf("list-%d-%d", g, i)), metav1.CreateOptions{})
		return err
	})
	if err != nil {
		return fmt.Errorf("filling %s with %d pods: %w", ns, n, err)
	}
	return nil
}

// listLatencies lists the pods of ns runs times (after one warm-up) with
// the given resourceVersion ("0": from the cache; "": consistent read) and
// returns the sorted latencies. The warm-up's body is kept and checked to
// hold want pods; the timed runs read each body to its end as it streams
// in, without keeping it (see streamed).
func listLatencies(ctx context.Context, cs *kubernetes.Clientset, ns, rv, accept string, runs, want int) ([]time.Duration, int, error) {
	body, err := listRequest(cs, ns, rv, accept).DoRaw(ctx)
	if err != nil {
		return nil, 0, fmt.Errorf("listing pods: %w", err)
	}
	if accept == contentJSON {
		var list struct {
			Items []json.RawMessage `json:"items"`
		}
		if err := json.Unmarshal(body, &list); err != nil {
			return nil, 0, fmt.Errorf("decoding pod list: %w", err)
		}
		if len(list.Items) != want {
			return nil, 0, fmt.Errorf("pod list holds %d items, want %d", len(list.Items), want)
		}
	} else if !bytes.HasPrefix(body, []byte("k8s\x00")) {
		return nil, 0, fmt.Errorf("asked for %s, got a body starting %q", accept, body[:min(len(body), 16)])
	}
	var lat []time.Duration
	for range runs {
		start := time.Now()
		n, err := streamed(ctx, cs, ns, rv, accept)
		if err != nil {
			return nil, 0, fmt.Errorf("listing pods: %w", err)
		}
		lat = append(lat, time.Since(start))
		// The list's resourceVersion may differ by a few digits.
		if d := n - int64(len(body)); d < -32 || d > 32 {
			return nil, 0, fmt.Errorf("a list's body was %d bytes, the first one's %d", n, len(body))
		}
	}
	slices.Sort(lat)
	return lat, len(body), nil
}

// streamed lists the pods of ns and reads the body to its end, returning
// its length. Reading it into one growing buffer (as DoRaw does) timed
// the benchmark's own allocator more than the server: 19 MiB appended in
// doubling steps in a process that also holds the load's etcd made the
// slowest of 60 runs 155 ms where the server had sent it in under 70 ms.
func streamed(ctx context.Context, cs *kubernetes.Clientset, ns, rv, accept string) (int64, error) {
	rc, err := listRequest(cs, ns, rv, accept).Stream(ctx)
	if err != nil {
		return 0, err
	}
	defer rc.Close()
	return io.Copy(io.Discard, rc)
}

// listRequest is a LIST of the pods of ns at rv ("": a consistent read)
// asking for accept.
func listRequest(cs *kubernetes.Clientset, ns, rv, accept string) *rest.Request {
	req := cs.CoreV1().RESTClient().Get().Namespace(ns).Resource("pods").SetHeader("Accept", accept)
	if rv != "" {
		req = req.Param("resourceVersion", rv)
	}
	return req
}

// Media types the benchmark speaks.
const (
	contentJSON     = "application/json"
	contentProtobuf = "application/vnd.kubernetes.protobuf"
)

// percentile returns the p-th percentile (0 < p <= 100) of sorted values,
// nearest-rank.
func percentile(sorted []time.Duration, p float64) time.Duration {
	if len(sorted) == 0 {
		return 0
	}
	rank := int(p/100*float64(len(sorted)) + 0.999999)
	rank = min(max(rank, 1), len(sorted))
	return sorted[rank-1]
}

// watchFanout opens watchers watches on the config maps of ns, updates one
// config map, and returns the time from the update to each watcher
// receiving it, sorted.
func watchFanout(ctx context.Context, cs kubernetes.Interface, ns string, watchers int) ([]time.Duration, error) {
	cms := cs.CoreV1().ConfigMaps(ns)
	cm, err := cms.Create(ctx, &corev1.ConfigMap{ObjectMeta: metav1.ObjectMeta{Name: "target"}, Data: map[string]string{"v": "1"}}, metav1.CreateOptions{})
	if err != nil {
		return nil, fmt.Errorf("creating the watched config map: %w", err)
	}

	ctx, cancel := context.WithTimeout(ctx, 2*time.Minute)
	defer cancel()
	received := make([]time.Time, watchers)
	var opened, wg sync.WaitGroup
	errs := make(chan error, watchers)
	sem := make(chan struct{}, 100) // at most 100 watch requests being opened at once
	opened.Add(watchers)
	for i := range watchers {
		wg.Go(func() {
			sem <- struct{}{}
			w, err := cms.Watch(ctx, metav1.ListOptions{ResourceVersion: cm.ResourceVersion})
			<-sem
			opened.Done()
			if err != nil {
				errs <- fmt.Errorf("opening watch %d: %w", i, err)
				return
			}
			defer w.Stop()
			for e := range w.ResultChan() {
				if e.Type == watch.Error {
					errs <- fmt.Errorf("watch %d: error event %v", i, apierrors.FromObject(e.Object))
					return
				}
				if c, ok := e.Object.(*corev1.ConfigMap); ok && e.Type == watch.Modified && c.Data["v"] == "2" {
					received[i] = time.Now()
					return
				}
			}
			errs <- fmt.Errorf("watch %d ended without the update", i)
		})
	}
	opened.Wait()
	select {
	case err := <-errs:
		return nil, err
	default:
	}

	cm.Data["v"] = "2"
	start := time.Now()
	if _, err := cms.Update(ctx, cm, metav1.UpdateOptions{}); err != nil {
		return nil, fmt.Errorf("updating the watched config map: %w", err)
	}
	wg.Wait()
	close(errs)
	if err := <-errs; err != nil {
		return nil, err
	}
	lat := make([]time.Duration, watchers)
	for i, t := range received {
		lat[i] = t.Sub(start)
	}
	slices.Sort(lat)
	return lat, nil
}
