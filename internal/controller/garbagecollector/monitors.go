package garbagecollector

import (
	"context"
	"fmt"
	"slices"
	"strings"
	"sync"

	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/client-go/discovery"
	"k8s.io/client-go/informers"
	"k8s.io/client-go/metadata"
	"k8s.io/client-go/metadata/metadatainformer"
	"k8s.io/client-go/restmapper"
	"k8s.io/client-go/tools/cache"
)

// ignored are resources never watched, as upstream's default: events are
// many, short-lived and never owners.
var ignored = []schema.GroupResource{
	{Group: "", Resource: "events"},
	{Group: "events.k8s.io", Resource: "events"},
}

// monitor is the collector's watch of one resource.
type monitor struct {
	// synced reports whether the collector's handler has seen the
	// informer's initial list.
	synced func() bool
	// cancel stops the watch: it stops a metadata informer, and removes
	// the handler from a shared one.
	cancel func()
}

// monitors watches every deletable resource and keeps the set in line with
// discovery. A resource the typed shared informer factory knows (every
// built-in one) is watched through the factory's informer, the one the
// other controllers of the manager use, so that the collector adds no
// second watch and no second cache of those objects; any other resource
// through a metadata informer of its own. Its methods are safe for
// concurrent use.
type monitors struct {
	meta    metadata.Interface
	disc    discovery.DiscoveryInterface
	onEvent func(r schema.GroupVersionResource, kind string) cache.ResourceEventHandler
	// shared is the manager's typed informer factory; nil watches every
	// resource through metadata informers.
	shared informers.SharedInformerFactory

	mu sync.Mutex
	// running by resource; guarded by mu.
	running map[schema.GroupVersionResource]*monitor
	// mapper maps owner references' kinds to resources; guarded by mu.
	mapper meta.RESTMapper
}

// deletableResources returns the preferred version of every resource that
// supports list, watch and delete, with its kind, minus the ignored ones.
// With a partial discovery failure it returns what was found and the error.
func deletableResources(disc discovery.DiscoveryInterface) (map[schema.GroupVersionResource]string, error) {
	lists, err := discovery.ServerPreferredResources(disc)
	if err != nil && len(lists) == 0 {
		return nil, fmt.Errorf("discovering resources: %w", err)
	}
	out := map[schema.GroupVersionResource]string{}
	for _, list := range lists {
		gv, perr := schema.ParseGroupVersion(list.GroupVersion)
		if perr != nil {
			continue
		}
		for _, r := range list.APIResources {
			if strings.Contains(r.Name, "/") {
				continue
			}
			if !slices.Contains(r.Verbs, "list") || !slices.Contains(r.Verbs, "watch") || !slices.Contains(r.Verbs, "delete") {
				continue
			}
			gvr := gv.WithResource(r.Name)
			if slices.Contains(ignored, gvr.GroupResource()) {
				continue
			}
			out[gvr] = r.Kind
		}
	}
	if err != nil {
		return out, fmt.Errorf("discovering resources: %w", err)
	}
	return out, nil
}

// sync refreshes the REST mapper from discovery, starts informers for new
// resources and stops those of resources that are gone. Informers of
// resources discovery failed to report this time are kept. The returned
// error is a (possibly partial) discovery failure.
func (m *monitors) sync(ctx context.Context) error {
	resources, derr := deletableResources(m.disc)
	groups, gerr := restmapper.GetAPIGroupResources(m.disc)

	m.mu.Lock()
	defer m.mu.Unlock()
	if gerr == nil || len(groups) > 0 {
		m.mapper = restmapper.NewDiscoveryRESTMapper(groups)
	}
	if resources == nil {
		return derr
	}
	startShared := false
	for gvr, kind := range resources {
		if m.running[gvr] != nil {
			continue
		}
		if m.shared != nil {
			if gi, err := m.shared.ForResource(gvr); err == nil {
				inf := gi.Informer()
				reg, err := inf.AddEventHandler(m.onEvent(gvr, kind))
				if err != nil {
					return fmt.Errorf("watching %s: %w", gvr, err)
				}
				m.running[gvr] = &monitor{synced: reg.HasSynced, cancel: func() { _ = inf.RemoveEventHandler(reg) }}
				startShared = true
				continue
			}
		}
		inf := metadatainformer.NewFilteredMetadataInformer(m.meta, gvr, metav1.NamespaceAll, 0, cache.Indexers{}, nil).Informer()
		reg, err := inf.AddEventHandler(m.onEvent(gvr, kind))
		if err != nil {
			return fmt.Errorf("watching %s: %w", gvr, err)
		}
		ictx, cancel := context.WithCancel(ctx)
		go inf.RunWithContext(ictx)
		m.running[gvr] = &monitor{synced: reg.HasSynced, cancel: cancel}
	}
	if startShared {
		// Starts the informers no other controller had asked for; those
		// already running are left as they are.
		m.shared.StartWithContext(ctx)
	}
	if derr == nil {
		for gvr, mon := range m.running {
			if _, ok := resources[gvr]; !ok {
				mon.cancel()
				delete(m.running, gvr)
			}
		}
	}
	return derr
}

// ready reports whether a first discovery found something to watch and
// to map owner references with.
func (m *monitors) ready() bool {
	m.mu.Lock()
	defer m.mu.Unlock()
	return m.mapper != nil && len(m.running) > 0
}

// synced reports whether every running informer has synced.
func (m *monitors) synced() bool {
	m.mu.Lock()
	defer m.mu.Unlock()
	for _, mon := range m.running {
		if !mon.synced() {
			return false
		}
	}
	return true
}

// stop stops every informer.
func (m *monitors) stop() {
	m.mu.Lock()
	defer m.mu.Unlock()
	for gvr, mon := range m.running {
		mon.cancel()
		delete(m.running, gvr)
	}
}

// resourceFor maps an owner reference's apiVersion and kind to its
// resource and scope.
func (m *monitors) resourceFor(apiVersion, kind string) (schema.GroupVersionResource, bool, error) {
	gv, err := schema.ParseGroupVersion(apiVersion)
	if err != nil {
		return schema.GroupVersionResource{}, false, fmt.Errorf("parsing apiVersion %q: %w", apiVersion, err)
	}
	m.mu.Lock()
	mapper := m.mapper
	m.mu.Unlock()
	if mapper == nil {
		return schema.GroupVersionResource{}, false, fmt.Errorf("mapping %s %s: discovery not done yet", apiVersion, kind)
	}
	mapping, err := mapper.RESTMapping(schema.GroupKind{Group: gv.Group, Kind: kind}, gv.Version)
	if err != nil {
		return schema.GroupVersionResource{}, false, fmt.Errorf("mapping %s %s: %w", apiVersion, kind, err)
	}
	return mapping.Resource, mapping.Scope.Name() == meta.RESTScopeNameNamespace, nil
}
