package metricsapi

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"log/slog"
	"maps"
	"net/http"
	"slices"
	"strings"
	"sync"
	"time"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/api/resource"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/fields"
	"k8s.io/apimachinery/pkg/labels"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/apimachinery/pkg/runtime/serializer"
	metricsv1beta1 "k8s.io/metrics/pkg/apis/metrics/v1beta1"

	"github.com/skiff-dev/skiff/internal/agent/stats"
)

// Defaults of Config.
const (
	// DefaultCacheTTL is how long a node's summary is reused, like
	// metrics-server's default resolution.
	DefaultCacheTTL = 10 * time.Second
	// DefaultTimeout bounds one node's summary fetch.
	DefaultTimeout = 5 * time.Second
)

// Window is the window reported with every metric: the agent's CPU rates
// are averages over the interval between its readings, which it takes every
// stats.SampleInterval (shorter when asked in between).
const Window = stats.SampleInterval

// GroupVersion is the API this package serves.
var GroupVersion = schema.GroupVersion{Group: "metrics.k8s.io", Version: "v1beta1"}

// The resources, as their not-found errors name them.
var (
	nodeMetricsResource = schema.GroupResource{Group: GroupVersion.Group, Resource: "nodemetrics"}
	podMetricsResource  = schema.GroupResource{Group: GroupVersion.Group, Resource: "podmetrics"}
)

// SummaryFetcher gets one node's usage summary (from its agent's
// /stats/summary). Implementations must be safe for concurrent use and
// honour ctx's deadline.
type SummaryFetcher interface {
	Summary(ctx context.Context, nodeName string) (*stats.Summary, error)
}

// Config configures an API.
type Config struct {
	// Nodes lists every node; the server passes its cache. The objects
	// are only read.
	Nodes func(ctx context.Context) ([]*corev1.Node, error)
	// Pods lists the pods of namespace ("" = all); read only.
	Pods    func(ctx context.Context, namespace string) ([]*corev1.Pod, error)
	Fetcher SummaryFetcher
	Logger  *slog.Logger
	// CacheTTL is how long a node's summary (or failure) is reused; 0
	// means DefaultCacheTTL.
	CacheTTL time.Duration
	// Timeout bounds each node's fetch; 0 means DefaultTimeout.
	Timeout time.Duration
	// Now is the clock; nil means time.Now.
	Now func() time.Time
}

// API serves metrics.k8s.io/v1beta1 from the nodes' summaries. It is safe
// for concurrent use and has no lifecycle: fetches are bounded by
// Config.Timeout.
type API struct {
	cfg    Config
	log    *slog.Logger
	codecs serializer.CodecFactory
	cache  *summaryCache
}

// New returns an API for cfg.
func New(cfg Config) *API {
	if cfg.CacheTTL == 0 {
		cfg.CacheTTL = DefaultCacheTTL
	}
	if cfg.Timeout == 0 {
		cfg.Timeout = DefaultTimeout
	}
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.New(slog.DiscardHandler)
	}
	scheme := runtime.NewScheme()
	// Both only register types; they fail only on a programming error.
	if err := metricsv1beta1.AddToScheme(scheme); err != nil {
		panic(fmt.Sprintf("metricsapi: registering types: %v", err))
	}
	metav1.AddToGroupVersion(scheme, schema.GroupVersion{Version: "v1"})
	return &API{
		cfg:    cfg,
		log:    cfg.Logger,
		codecs: serializer.NewCodecFactory(scheme),
		cache: &summaryCache{
			fetcher: cfg.Fetcher, ttl: cfg.CacheTTL, timeout: cfg.Timeout, now: cfg.Now,
			entries: map[string]*cacheEntry{},
		},
	}
}

// request is a parsed metrics request.
type request struct {
	resource  string // "nodes" or "pods"
	namespace string // pods only; "" = all namespaces
	name      string // "" = list
}

// parsePath parses the path below /apis/metrics.k8s.io/v1beta1/.
func parsePath(path string) (request, bool) {
	rest, ok := strings.CutPrefix(path, "/apis/"+GroupVersion.String()+"/")
	if !ok {
		return request{}, false
	}
	p := strings.Split(strings.TrimSuffix(rest, "/"), "/")
	switch {
	case len(p) == 1 && (p[0] == "nodes" || p[0] == "pods"):
		return request{resource: p[0]}, true
	case len(p) == 2 && p[0] == "nodes" && p[1] != "":
		return request{resource: "nodes", name: p[1]}, true
	case len(p) == 3 && p[0] == "namespaces" && p[1] != "" && p[2] == "pods":
		return request{resource: "pods", namespace: p[1]}, true
	case len(p) == 4 && p[0] == "namespaces" && p[1] != "" && p[2] == "pods" && p[3] != "":
		return request{resource: "pods", namespace: p[1], name: p[3]}, true
	}
	return request{}, false
}

// ServeHTTP serves GET (and HEAD) on nodes, nodes/{name}, pods,
// namespaces/{ns}/pods and namespaces/{ns}/pods/{name} under
// /apis/metrics.k8s.io/v1beta1/; lists take labelSelector and
// fieldSelector (metadata.name, metadata.namespace). Errors are
// metav1.Status documents. The discovery documents of the group are not
// served here (see Group). Authentication and authorization are the
// caller's.
func (a *API) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	req, ok := parsePath(r.URL.Path)
	if !ok {
		a.fail(w, r, apierrors.NewNotFound(schema.GroupResource{}, ""))
		return
	}
	if r.Method != http.MethodGet && r.Method != http.MethodHead {
		a.fail(w, r, apierrors.NewMethodNotSupported(schema.GroupResource{Group: GroupVersion.Group, Resource: req.resource}, strings.ToLower(r.Method)))
		return
	}
	q := r.URL.Query()
	if q.Get("watch") == "true" || q.Get("watch") == "1" {
		a.fail(w, r, apierrors.NewMethodNotSupported(schema.GroupResource{Group: GroupVersion.Group, Resource: req.resource}, "watch"))
		return
	}
	sel, err := parseSelectors(q.Get("labelSelector"), q.Get("fieldSelector"))
	if err != nil {
		a.fail(w, r, err)
		return
	}
	var obj runtime.Object
	switch req.resource {
	case "nodes":
		obj, err = a.nodeMetrics(r.Context(), req.name, sel)
	default:
		obj, err = a.podMetrics(r.Context(), req.namespace, req.name, sel)
	}
	if err != nil {
		a.fail(w, r, err)
		return
	}
	a.write(w, r, http.StatusOK, obj)
}

// selectors is a list request's label and field selectors.
type selectors struct {
	labels labels.Selector
	fields fields.Selector
}

func parseSelectors(label, field string) (selectors, error) {
	ls, err := labels.Parse(label)
	if err != nil {
		return selectors{}, apierrors.NewBadRequest(fmt.Sprintf("invalid labelSelector %q: %v", label, err))
	}
	fs, err := fields.ParseSelector(field)
	if err != nil {
		return selectors{}, apierrors.NewBadRequest(fmt.Sprintf("invalid fieldSelector %q: %v", field, err))
	}
	for _, req := range fs.Requirements() {
		if req.Field != "metadata.name" && req.Field != "metadata.namespace" {
			return selectors{}, apierrors.NewBadRequest(fmt.Sprintf("field label not supported: %s", req.Field))
		}
	}
	return selectors{labels: ls, fields: fs}, nil
}

func (s selectors) matches(meta *metav1.ObjectMeta) bool {
	return s.labels.Matches(labels.Set(meta.Labels)) &&
		s.fields.Matches(fields.Set{"metadata.name": meta.Name, "metadata.namespace": meta.Namespace})
}

// nodeMetrics answers a node get (name != "") or list.
func (a *API) nodeMetrics(ctx context.Context, name string, sel selectors) (runtime.Object, error) {
	all, err := a.cfg.Nodes(ctx)
	if err != nil {
		return nil, apierrors.NewInternalError(fmt.Errorf("listing nodes: %w", err))
	}
	keep := make(map[string]bool, len(all))
	var nodes []*corev1.Node
	for _, n := range all {
		keep[n.Name] = true
		if name != "" && n.Name != name || name == "" && !sel.matches(&n.ObjectMeta) {
			continue
		}
		nodes = append(nodes, n)
	}
	if name == "" {
		a.cache.forget(keep)
	}
	names := make([]string, len(nodes))
	for i, n := range nodes {
		names[i] = n.Name
	}
	summaries := a.summaries(ctx, names)

	list := &metricsv1beta1.NodeMetricsList{Items: []metricsv1beta1.NodeMetrics{}}
	now := metav1.NewTime(a.cfg.Now())
	for _, n := range nodes {
		s := summaries[n.Name]
		if s == nil {
			continue
		}
		cpu, mem := s.Node.CPU, s.Node.Memory
		if cpu == nil || cpu.UsageNanoCores == nil || mem == nil || mem.WorkingSetBytes == nil {
			a.log.Debug("node has no usage yet", "node", n.Name)
			continue
		}
		list.Items = append(list.Items, metricsv1beta1.NodeMetrics{
			ObjectMeta: metav1.ObjectMeta{Name: n.Name, Labels: maps.Clone(n.Labels), CreationTimestamp: now},
			Timestamp:  cpu.Time,
			Window:     metav1.Duration{Duration: Window},
			Usage:      usage(*cpu.UsageNanoCores, *mem.WorkingSetBytes),
		})
	}
	slices.SortFunc(list.Items, func(x, y metricsv1beta1.NodeMetrics) int { return cmp.Compare(x.Name, y.Name) })
	if name != "" {
		if len(list.Items) == 0 {
			return nil, apierrors.NewNotFound(nodeMetricsResource, name)
		}
		return &list.Items[0], nil
	}
	return list, nil
}

// podMetrics answers a pod get (name != "") or list in namespace ("" =
// all). Only pods bound to a node and running there with usage for every
// container are reported.
func (a *API) podMetrics(ctx context.Context, namespace, name string, sel selectors) (runtime.Object, error) {
	all, err := a.cfg.Pods(ctx, namespace)
	if err != nil {
		return nil, apierrors.NewInternalError(fmt.Errorf("listing pods: %w", err))
	}
	var pods []*corev1.Pod
	nodeSet := map[string]bool{}
	for _, p := range all {
		if name != "" && p.Name != name || name == "" && !sel.matches(&p.ObjectMeta) {
			continue
		}
		if p.Spec.NodeName == "" || p.Status.Phase == corev1.PodSucceeded || p.Status.Phase == corev1.PodFailed {
			continue
		}
		pods = append(pods, p)
		nodeSet[p.Spec.NodeName] = true
	}
	summaries := a.summaries(ctx, slices.Sorted(maps.Keys(nodeSet)))

	type key struct{ ns, name, uid string }
	byPod := map[key]*stats.PodStats{}
	for _, s := range summaries {
		for i := range s.Pods {
			ref := s.Pods[i].PodRef
			byPod[key{ref.Namespace, ref.Name, ref.UID}] = &s.Pods[i]
		}
	}
	list := &metricsv1beta1.PodMetricsList{Items: []metricsv1beta1.PodMetrics{}}
	now := metav1.NewTime(a.cfg.Now())
	for _, p := range pods {
		ps := byPod[key{p.Namespace, p.Name, string(p.UID)}]
		if ps == nil {
			continue
		}
		pm, ok := podMetricsOf(p, ps)
		if !ok {
			a.log.Debug("pod has no complete usage yet", "pod", p.Namespace+"/"+p.Name)
			continue
		}
		pm.CreationTimestamp = now
		list.Items = append(list.Items, pm)
	}
	slices.SortFunc(list.Items, func(x, y metricsv1beta1.PodMetrics) int {
		return cmp.Or(cmp.Compare(x.Namespace, y.Namespace), cmp.Compare(x.Name, y.Name))
	})
	if name != "" {
		if len(list.Items) == 0 {
			return nil, apierrors.NewNotFound(podMetricsResource, namespace+"/"+name)
		}
		return &list.Items[0], nil
	}
	return list, nil
}

// podMetricsOf converts a pod's stats; ok is false unless every container
// has a CPU rate and a working set.
func podMetricsOf(p *corev1.Pod, ps *stats.PodStats) (metricsv1beta1.PodMetrics, bool) {
	pm := metricsv1beta1.PodMetrics{
		ObjectMeta: metav1.ObjectMeta{Name: p.Name, Namespace: p.Namespace, Labels: maps.Clone(p.Labels)},
		Window:     metav1.Duration{Duration: Window},
	}
	if len(ps.Containers) == 0 {
		return pm, false
	}
	for _, c := range ps.Containers {
		if c.CPU == nil || c.CPU.UsageNanoCores == nil || c.Memory == nil || c.Memory.WorkingSetBytes == nil {
			return pm, false
		}
		if c.CPU.Time.After(pm.Timestamp.Time) {
			pm.Timestamp = c.CPU.Time
		}
		pm.Containers = append(pm.Containers, metricsv1beta1.ContainerMetrics{
			Name:  c.Name,
			Usage: usage(*c.CPU.UsageNanoCores, *c.Memory.WorkingSetBytes),
		})
	}
	return pm, true
}

// summaries fetches the nodes' summaries concurrently (through the
// cache); a node that fails is logged and left out.
func (a *API) summaries(ctx context.Context, nodes []string) map[string]*stats.Summary {
	out := make(map[string]*stats.Summary, len(nodes))
	var mu sync.Mutex
	var wg sync.WaitGroup
	for _, n := range nodes {
		wg.Go(func() {
			s, err := a.cache.get(ctx, n)
			if err != nil {
				if ctx.Err() == nil {
					a.log.Info("fetching node usage failed", "node", n, "err", err)
				}
				return
			}
			mu.Lock()
			out[n] = s
			mu.Unlock()
		})
	}
	wg.Wait()
	return out
}

// usage is a metrics usage list: CPU in cores from nanocores, memory in
// bytes, formatted as metrics-server formats them.
func usage(nanoCores, workingSet uint64) corev1.ResourceList {
	return corev1.ResourceList{
		corev1.ResourceCPU:    *resource.NewScaledQuantity(int64(nanoCores), resource.Nano),
		corev1.ResourceMemory: *resource.NewQuantity(int64(workingSet), resource.BinarySI),
	}
}

// fail writes err as a metav1.Status.
func (a *API) fail(w http.ResponseWriter, r *http.Request, err error) {
	var st apierrors.APIStatus
	if !errors.As(err, &st) {
		st = apierrors.NewInternalError(err)
	}
	status := st.Status()
	status.TypeMeta = metav1.TypeMeta{Kind: "Status", APIVersion: "v1"}
	if status.Code >= 500 {
		a.log.Info("metrics request failed", "path", r.URL.Path, "err", err)
	}
	a.write(w, r, int(status.Code), &status)
}

// write encodes obj in the negotiated media type (JSON unless the client
// asks only for YAML or protobuf).
func (a *API) write(w http.ResponseWriter, r *http.Request, code int, obj runtime.Object) {
	info := a.negotiate(r.Header.Get("Accept"))
	gv := GroupVersion
	if _, ok := obj.(*metav1.Status); ok {
		gv = schema.GroupVersion{Version: "v1"}
	}
	enc := a.codecs.EncoderForVersion(info.Serializer, gv)
	var b strings.Builder
	if err := enc.Encode(obj, &b); err != nil {
		http.Error(w, fmt.Sprintf("encoding %T: %v", obj, err), http.StatusInternalServerError)
		return
	}
	w.Header().Set("Content-Type", info.MediaType)
	w.WriteHeader(code)
	if r.Method != http.MethodHead {
		_, _ = w.Write([]byte(b.String()))
	}
}

// negotiate picks the first media type of accept we can encode plainly (a
// clause asking for another view, like as=Table, is skipped); JSON by
// default.
func (a *API) negotiate(accept string) runtime.SerializerInfo {
	supported := a.codecs.SupportedMediaTypes()
	for _, clause := range strings.Split(accept, ",") {
		mt, params, _ := strings.Cut(strings.TrimSpace(clause), ";")
		if strings.Contains(params, "as=") || strings.Contains(params, "q=0;") || strings.HasSuffix(params, "q=0") {
			continue
		}
		mt = strings.TrimSpace(mt)
		for _, info := range supported {
			if info.MediaType == mt {
				return info
			}
		}
		if mt == "*/*" || mt == "application/*" {
			break
		}
	}
	for _, info := range supported {
		if info.MediaType == runtime.ContentTypeJSON {
			return info
		}
	}
	return supported[0]
}
