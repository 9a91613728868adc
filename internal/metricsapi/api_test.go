package metricsapi

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"sort"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/labels"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/client-go/rest"
	metricsclient "k8s.io/metrics/pkg/client/clientset/versioned"

	"github.com/skiff-dev/skiff/internal/agent/stats"
	"github.com/skiff-dev/skiff/internal/controller/podautoscaler"
)

// fakeFetcher answers summaries from a map and counts fetches per node.
type fakeFetcher struct {
	mu        sync.Mutex
	summaries map[string]*stats.Summary // guarded by mu; absent: error
	calls     map[string]int            // guarded by mu
	block     chan struct{}             // if not nil, fetches wait on it
}

func (f *fakeFetcher) Summary(ctx context.Context, node string) (*stats.Summary, error) {
	if f.block != nil {
		select {
		case <-f.block:
		case <-ctx.Done():
			return nil, ctx.Err()
		}
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	f.calls[node]++
	s, ok := f.summaries[node]
	if !ok {
		return nil, errors.New("connection refused")
	}
	return s, nil
}

func (f *fakeFetcher) callCount(node string) int {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.calls[node]
}

func u64(v uint64) *uint64 { return &v }

var t0 = time.Date(2026, 5, 1, 12, 0, 0, 0, time.UTC)

func nodeSummary(name string, nanoCores *uint64, ws uint64, pods ...stats.PodStats) *stats.Summary {
	tm := metav1.NewTime(t0)
	return &stats.Summary{
		Node: stats.NodeStats{
			NodeName: name,
			CPU:      &stats.CPUStats{Time: tm, UsageNanoCores: nanoCores, UsageCoreNanoSeconds: u64(1e12)},
			Memory:   &stats.MemoryStats{Time: tm, WorkingSetBytes: u64(ws)},
		},
		Pods: pods,
	}
}

func podStats(ns, name string, ctrs ...stats.ContainerStats) stats.PodStats {
	return stats.PodStats{PodRef: stats.PodReference{Namespace: ns, Name: name, UID: "uid-" + name}, Containers: ctrs}
}

func ctrStats(name string, nanoCores *uint64, ws uint64) stats.ContainerStats {
	tm := metav1.NewTime(t0)
	return stats.ContainerStats{
		Name:   name,
		CPU:    &stats.CPUStats{Time: tm, UsageNanoCores: nanoCores},
		Memory: &stats.MemoryStats{Time: tm, WorkingSetBytes: u64(ws)},
	}
}

func node(name string, lbls map[string]string) *corev1.Node {
	return &corev1.Node{ObjectMeta: metav1.ObjectMeta{Name: name, Labels: lbls}}
}

func pod(ns, name, nodeName string, lbls map[string]string) *corev1.Pod {
	return &corev1.Pod{
		ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: name, UID: types.UID("uid-" + name), Labels: lbls},
		Spec:       corev1.PodSpec{NodeName: nodeName},
		Status:     corev1.PodStatus{Phase: corev1.PodRunning},
	}
}

type fixture struct {
	api     *API
	fetcher *fakeFetcher
	client  metricsclient.Interface
	url     string
	now     *time.Time
	nowMu   *sync.Mutex
	nodes   []*corev1.Node
	pods    []*corev1.Pod
}

func newFixture(t *testing.T) *fixture {
	t.Helper()
	nodes := []*corev1.Node{
		node("node-a", map[string]string{"zone": "a"}),
		node("node-b", map[string]string{"zone": "b"}),
		node("node-down", map[string]string{"zone": "a"}), // fetch fails
		node("node-new", map[string]string{"zone": "b"}),  // no CPU rate yet
	}
	pods := []*corev1.Pod{
		pod("default", "web-1", "node-a", map[string]string{"app": "web"}),
		pod("default", "web-2", "node-b", map[string]string{"app": "web"}),
		pod("default", "db", "node-a", map[string]string{"app": "db"}),
		pod("default", "starting", "node-a", map[string]string{"app": "web"}), // a container without a rate
		pod("default", "pending", "", map[string]string{"app": "web"}),        // not scheduled
		pod("default", "lost", "node-down", map[string]string{"app": "web"}),  // its node does not answer
		pod("kube-system", "dns", "node-b", map[string]string{"app": "dns"}),
	}
	fetcher := &fakeFetcher{
		calls: map[string]int{},
		summaries: map[string]*stats.Summary{
			"node-a": nodeSummary("node-a", u64(250e6), 1<<30,
				podStats("default", "web-1", ctrStats("app", u64(100e6), 64<<20), ctrStats("sidecar", u64(5e6), 16<<20)),
				podStats("default", "db", ctrStats("db", u64(1500e6), 512<<20)),
				podStats("default", "starting", ctrStats("app", nil, 1<<20)),
				podStats("default", "gone", ctrStats("app", u64(1), 1)), // no such pod any more
			),
			"node-b": nodeSummary("node-b", u64(2e9), 2<<30,
				podStats("default", "web-2", ctrStats("app", u64(300e6), 100<<20)),
				podStats("kube-system", "dns", ctrStats("coredns", u64(3e6), 20<<20)),
			),
			"node-new": nodeSummary("node-new", nil, 1<<20),
		},
	}
	var mu sync.Mutex
	now := t0
	api := New(Config{
		Nodes: func(context.Context) ([]*corev1.Node, error) { return nodes, nil },
		Pods: func(_ context.Context, ns string) ([]*corev1.Pod, error) {
			var out []*corev1.Pod
			for _, p := range pods {
				if ns == "" || p.Namespace == ns {
					out = append(out, p)
				}
			}
			return out, nil
		},
		Fetcher: fetcher,
		Now: func() time.Time {
			mu.Lock()
			defer mu.Unlock()
			return now
		},
	})
	srv := httptest.NewServer(api)
	t.Cleanup(srv.Close)
	client, err := metricsclient.NewForConfig(&rest.Config{Host: srv.URL})
	if err != nil {
		t.Fatal(err)
	}
	return &fixture{api: api, fetcher: fetcher, client: client, url: srv.URL, now: &now, nowMu: &mu, nodes: nodes, pods: pods}
}

func (f *fixture) advance(d time.Duration) {
	f.nowMu.Lock()
	defer f.nowMu.Unlock()
	*f.now = f.now.Add(d)
}

// usageString renders a usage list as "cpu=… memory=…".
func usageString(u corev1.ResourceList) string {
	var parts []string
	for name, q := range u {
		parts = append(parts, fmt.Sprintf("%s=%s", name, q.String()))
	}
	sort.Strings(parts)
	return strings.Join(parts, " ")
}

func TestNodeMetrics(t *testing.T) {
	t.Parallel()
	f := newFixture(t)
	ctx := context.Background()
	tests := []struct {
		name     string
		selector string
		want     []string
	}{
		{name: "all", want: []string{
			"node-a zone=a cpu=250m memory=1Gi",
			"node-b zone=b cpu=2 memory=2Gi",
		}},
		{name: "label selector", selector: "zone=b", want: []string{"node-b zone=b cpu=2 memory=2Gi"}},
		{name: "no match", selector: "zone=c", want: nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			list, err := f.client.MetricsV1beta1().NodeMetricses().List(ctx, metav1.ListOptions{LabelSelector: tt.selector})
			if err != nil {
				t.Fatalf("List: %v", err)
			}
			var got []string
			for _, m := range list.Items {
				got = append(got, fmt.Sprintf("%s zone=%s %s", m.Name, m.Labels["zone"], usageString(m.Usage)))
				if !m.Timestamp.Equal(&metav1.Time{Time: t0}) || m.Window.Duration != Window {
					t.Errorf("%s: timestamp %v window %v, want %v and %v", m.Name, m.Timestamp, m.Window, t0, Window)
				}
			}
			if diff := cmp.Diff(tt.want, got); diff != "" {
				t.Errorf("NodeMetrics (-want +got):\n%s", diff)
			}
		})
	}

	m, err := f.client.MetricsV1beta1().NodeMetricses().Get(ctx, "node-b", metav1.GetOptions{})
	if err != nil {
		t.Fatalf("Get(node-b): %v", err)
	}
	if got := usageString(m.Usage); got != "cpu=2 memory=2Gi" || m.Name != "node-b" {
		t.Errorf("Get(node-b) = %s %s", m.Name, got)
	}
	for _, name := range []string{"node-down", "node-new", "absent"} {
		_, err := f.client.MetricsV1beta1().NodeMetricses().Get(ctx, name, metav1.GetOptions{})
		if !apierrors.IsNotFound(err) {
			t.Errorf("Get(%s) error = %v, want NotFound", name, err)
		} else if want := fmt.Sprintf(`nodemetrics.metrics.k8s.io "%s" not found`, name); err.Error() != want {
			t.Errorf("Get(%s) error = %q, want %q", name, err, want)
		}
	}
}

func TestPodMetrics(t *testing.T) {
	t.Parallel()
	f := newFixture(t)
	ctx := context.Background()
	tests := []struct {
		name      string
		namespace string
		opts      metav1.ListOptions
		want      []string
	}{
		{name: "all namespaces", want: []string{
			"default/db db:cpu=1500m memory=512Mi",
			"default/web-1 app:cpu=100m memory=64Mi sidecar:cpu=5m memory=16Mi",
			"default/web-2 app:cpu=300m memory=100Mi",
			"kube-system/dns coredns:cpu=3m memory=20Mi",
		}},
		{name: "namespace", namespace: "kube-system", want: []string{"kube-system/dns coredns:cpu=3m memory=20Mi"}},
		{name: "label selector", namespace: "default", opts: metav1.ListOptions{LabelSelector: "app=web"}, want: []string{
			"default/web-1 app:cpu=100m memory=64Mi sidecar:cpu=5m memory=16Mi",
			"default/web-2 app:cpu=300m memory=100Mi",
		}},
		{name: "set selector", opts: metav1.ListOptions{LabelSelector: "app in (db,dns)"}, want: []string{
			"default/db db:cpu=1500m memory=512Mi",
			"kube-system/dns coredns:cpu=3m memory=20Mi",
		}},
		{name: "field selector", namespace: "default", opts: metav1.ListOptions{FieldSelector: "metadata.name=web-2"}, want: []string{
			"default/web-2 app:cpu=300m memory=100Mi",
		}},
		{name: "field selector on namespace", opts: metav1.ListOptions{FieldSelector: "metadata.namespace!=default"}, want: []string{
			"kube-system/dns coredns:cpu=3m memory=20Mi",
		}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			list, err := f.client.MetricsV1beta1().PodMetricses(tt.namespace).List(ctx, tt.opts)
			if err != nil {
				t.Fatalf("List: %v", err)
			}
			var got []string
			for _, m := range list.Items {
				s := m.Namespace + "/" + m.Name
				for _, c := range m.Containers {
					s += " " + c.Name + ":" + usageString(c.Usage)
				}
				got = append(got, s)
				if m.Window.Duration != Window || m.Timestamp.IsZero() {
					t.Errorf("%s: window %v timestamp %v", s, m.Window, m.Timestamp)
				}
			}
			if diff := cmp.Diff(tt.want, got); diff != "" {
				t.Errorf("PodMetrics (-want +got):\n%s", diff)
			}
		})
	}

	m, err := f.client.MetricsV1beta1().PodMetricses("default").Get(ctx, "db", metav1.GetOptions{})
	if err != nil {
		t.Fatalf("Get(db): %v", err)
	}
	if m.Name != "db" || m.Labels["app"] != "db" || len(m.Containers) != 1 {
		t.Errorf("Get(db) = %+v", m)
	}
	for _, name := range []string{"starting", "pending", "lost", "absent"} {
		_, err := f.client.MetricsV1beta1().PodMetricses("default").Get(ctx, name, metav1.GetOptions{})
		if !apierrors.IsNotFound(err) {
			t.Errorf("Get(%s) error = %v, want NotFound", name, err)
		} else if want := fmt.Sprintf(`podmetrics.metrics.k8s.io "default/%s" not found`, name); err.Error() != want {
			t.Errorf("Get(%s) error = %q, want %q", name, err, want)
		}
	}
	// A pod of another namespace is not found through this one.
	if _, err := f.client.MetricsV1beta1().PodMetricses("default").Get(ctx, "dns", metav1.GetOptions{}); !apierrors.IsNotFound(err) {
		t.Errorf("Get(default/dns) error = %v, want NotFound", err)
	}
}

func TestBadRequests(t *testing.T) {
	t.Parallel()
	f := newFixture(t)
	tests := []struct {
		name, method, path string
		wantCode           int
	}{
		{name: "bad label selector", method: "GET", path: "/apis/metrics.k8s.io/v1beta1/pods?labelSelector=a%3D%3D%3Db", wantCode: 400},
		{name: "unsupported field", method: "GET", path: "/apis/metrics.k8s.io/v1beta1/pods?fieldSelector=spec.nodeName%3Dx", wantCode: 400},
		{name: "watch", method: "GET", path: "/apis/metrics.k8s.io/v1beta1/nodes?watch=true", wantCode: 405},
		{name: "post", method: "POST", path: "/apis/metrics.k8s.io/v1beta1/nodes", wantCode: 405},
		{name: "unknown resource", method: "GET", path: "/apis/metrics.k8s.io/v1beta1/services", wantCode: 404},
		{name: "other group", method: "GET", path: "/apis/apps/v1/deployments", wantCode: 404},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			req, err := http.NewRequest(tt.method, f.url+tt.path, nil)
			if err != nil {
				t.Fatal(err)
			}
			resp, err := http.DefaultClient.Do(req)
			if err != nil {
				t.Fatal(err)
			}
			body, _ := io.ReadAll(resp.Body)
			resp.Body.Close()
			if resp.StatusCode != tt.wantCode || !strings.Contains(string(body), `"kind":"Status"`) {
				t.Errorf("%s %s = %d %s, want %d and a Status", tt.method, tt.path, resp.StatusCode, body, tt.wantCode)
			}
		})
	}
}

func TestCache(t *testing.T) {
	t.Parallel()
	f := newFixture(t)
	ctx := context.Background()
	list := func() {
		t.Helper()
		if _, err := f.client.MetricsV1beta1().NodeMetricses().List(ctx, metav1.ListOptions{}); err != nil {
			t.Fatal(err)
		}
	}
	list()
	list()
	if _, err := f.client.MetricsV1beta1().PodMetricses("").List(ctx, metav1.ListOptions{}); err != nil {
		t.Fatal(err)
	}
	for _, n := range []string{"node-a", "node-b", "node-down"} {
		if got := f.fetcher.callCount(n); got != 1 {
			t.Errorf("%s fetched %d times within the TTL, want 1", n, got)
		}
	}
	f.advance(DefaultCacheTTL)
	list()
	for _, n := range []string{"node-a", "node-down"} {
		if got := f.fetcher.callCount(n); got != 2 {
			t.Errorf("%s fetched %d times after the TTL, want 2", n, got)
		}
	}
}

// TestSharedFetch checks that concurrent requests share one fetch per node.
func TestSharedFetch(t *testing.T) {
	t.Parallel()
	f := newFixture(t)
	f.fetcher.block = make(chan struct{})
	ctx := context.Background()
	var wg sync.WaitGroup
	errs := make(chan error, 5)
	for range 5 {
		wg.Go(func() {
			_, err := f.client.MetricsV1beta1().NodeMetricses().Get(ctx, "node-a", metav1.GetOptions{})
			errs <- err
		})
	}
	// Wait until a fetch is under way, then let it finish.
	deadline := time.Now().Add(5 * time.Second)
	for {
		f.api.cache.mu.Lock()
		_, started := f.api.cache.entries["node-a"]
		f.api.cache.mu.Unlock()
		if started || time.Now().After(deadline) {
			break
		}
		<-time.After(time.Millisecond)
	}
	close(f.fetcher.block)
	wg.Wait()
	close(errs)
	for err := range errs {
		if err != nil {
			t.Errorf("Get: %v", err)
		}
	}
	if got := f.fetcher.callCount("node-a"); got != 1 {
		t.Errorf("node-a fetched %d times by concurrent requests, want 1", got)
	}
}

// TestTimeout checks that a node that hangs is left out after the timeout.
func TestTimeout(t *testing.T) {
	t.Parallel()
	fetcher := &fakeFetcher{calls: map[string]int{}, block: make(chan struct{}), summaries: map[string]*stats.Summary{}}
	api := New(Config{
		Nodes:   func(context.Context) ([]*corev1.Node, error) { return []*corev1.Node{node("slow", nil)}, nil },
		Pods:    func(context.Context, string) ([]*corev1.Pod, error) { return nil, nil },
		Fetcher: fetcher,
		Timeout: 50 * time.Millisecond,
	})
	srv := httptest.NewServer(api)
	t.Cleanup(srv.Close)
	client, err := metricsclient.NewForConfig(&rest.Config{Host: srv.URL})
	if err != nil {
		t.Fatal(err)
	}
	start := time.Now()
	list, err := client.MetricsV1beta1().NodeMetricses().List(context.Background(), metav1.ListOptions{})
	if err != nil || len(list.Items) != 0 {
		t.Errorf("List = %v, %v; want no items", list, err)
	}
	if d := time.Since(start); d > 5*time.Second {
		t.Errorf("List took %v with a 50ms node timeout", d)
	}
}

// TestHPAMetricsClient reads pod metrics as the HPA controller does.
func TestHPAMetricsClient(t *testing.T) {
	t.Parallel()
	f := newFixture(t)
	mc, err := podautoscaler.NewMetricsClient(&rest.Config{Host: f.url})
	if err != nil {
		t.Fatal(err)
	}
	got, err := mc.PodMetrics(context.Background(), "default", labels.SelectorFromSet(labels.Set{"app": "web"}))
	if err != nil {
		t.Fatalf("PodMetrics: %v", err)
	}
	cpu := map[string]string{}
	for name, m := range got {
		q := m.Usage[corev1.ResourceCPU]
		cpu[name] = q.String()
		if m.Window != Window {
			t.Errorf("%s window = %v, want %v", name, m.Window, Window)
		}
	}
	if diff := cmp.Diff(map[string]string{"web-1": "105m", "web-2": "300m"}, cpu); diff != "" {
		t.Errorf("pod CPU (-want +got):\n%s", diff)
	}
}

// TestProtobuf reads metrics as a client preferring protobuf would.
func TestProtobuf(t *testing.T) {
	t.Parallel()
	f := newFixture(t)
	client, err := metricsclient.NewForConfig(&rest.Config{Host: f.url, ContentConfig: rest.ContentConfig{
		AcceptContentTypes: "application/vnd.kubernetes.protobuf,application/json",
		ContentType:        "application/vnd.kubernetes.protobuf",
	}})
	if err != nil {
		t.Fatal(err)
	}
	list, err := client.MetricsV1beta1().PodMetricses("kube-system").List(context.Background(), metav1.ListOptions{})
	if err != nil {
		t.Fatalf("List: %v", err)
	}
	if len(list.Items) != 1 || list.Items[0].Name != "dns" || usageString(list.Items[0].Containers[0].Usage) != "cpu=3m memory=20Mi" {
		t.Errorf("List = %+v", list.Items)
	}
	_, err = client.MetricsV1beta1().NodeMetricses().Get(context.Background(), "absent", metav1.GetOptions{})
	if !apierrors.IsNotFound(err) {
		t.Errorf("Get(absent) error = %v, want NotFound", err)
	}
}
