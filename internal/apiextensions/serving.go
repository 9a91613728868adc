package apiextensions

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"reflect"
	"slices"
	"sync"
	"time"

	clientv3 "go.etcd.io/etcd/client/v3"
	apiextensionsv1 "k8s.io/apiextensions-apiserver/pkg/apis/apiextensions/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/apimachinery/pkg/watch"

	"github.com/skiff-dev/skiff/internal/admission/webhook"
	crdschema "github.com/skiff-dev/skiff/internal/apiextensions/schema"
	"github.com/skiff-dev/skiff/internal/registry"
	"github.com/skiff-dev/skiff/internal/storage"
)

// API is where the stores of custom resources are served
// (apiserver.Server).
type API interface {
	SetCustomStores(stores []*registry.Store) error
}

// Discovery lists the served custom resources (discovery.Dynamic).
type Discovery interface {
	SetCustomResources(resources []*registry.Resource)
}

// OpenAPI publishes the served CRDs' schemas (openapi.Handler).
type OpenAPI interface {
	SetCustomResources(crds []*apiextensionsv1.CustomResourceDefinition) error
}

// Config is what Serving needs; every field but Conversion and Logger is
// required.
type Config struct {
	// Client is the etcd client custom resources are stored through.
	Client *clientv3.Client
	// CRDs is the API server's customresourcedefinitions store; Serving
	// watches it.
	CRDs *registry.Store
	// Namespaces is consulted by the stores of namespaced custom
	// resources on create (the namespaces store).
	Namespaces registry.NamespaceLookup
	API        API
	Discovery  Discovery
	OpenAPI    OpenAPI
	// Conversion calls the conversion webhooks of CRDs whose
	// spec.conversion.strategy is Webhook. Optional: when nil, their
	// objects are served only where no conversion between different
	// versions is needed; the others fail with a 500 ("conversion webhook
	// for <gvk> failed: conversion webhooks are not enabled ...").
	Conversion *webhook.Caller
	Logger     *slog.Logger
}

// Serving serves the custom resources of every CRD whose names are
// accepted. Build it with New and run it with Run.
type Serving struct {
	cfg    Config
	log    *slog.Logger
	synced chan struct{}

	// served is keyed by CRD name. Only Run's goroutine touches it.
	served map[string]*servedCRD
	// openapi holds the CRDs the OpenAPI documents are to publish next:
	// rebuilding them takes tens of milliseconds per change, so it runs
	// beside the serving, and only the latest set is published.
	openapi chan []*apiextensionsv1.CustomResourceDefinition
}

// servedCRD is one CRD being served.
type servedCRD struct {
	crd *apiextensionsv1.CustomResourceDefinition
	// backend is the storage and watch cache shared by the versions; it
	// lives as long as the CRD keeps its group, plural and scope.
	backend *storage.Store
	stop    context.CancelFunc
	stores  []*registry.Store
	prefix  string
}

// New returns a Serving for cfg.
func New(cfg Config) (*Serving, error) {
	if cfg.Client == nil || cfg.CRDs == nil || cfg.Namespaces == nil || cfg.API == nil || cfg.Discovery == nil || cfg.OpenAPI == nil {
		return nil, errors.New("apiextensions: Client, CRDs, Namespaces, API, Discovery and OpenAPI are required")
	}
	log := cfg.Logger
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	return &Serving{
		cfg:     cfg,
		log:     log.With("component", "apiextensions"),
		synced:  make(chan struct{}),
		served:  map[string]*servedCRD{},
		openapi: make(chan []*apiextensionsv1.CustomResourceDefinition, 1),
	}, nil
}

// Synced is closed once the CRDs that existed when Run started are
// served (the API server's readiness waits for it, as upstream's
// crd-informer-synced).
func (s *Serving) Synced() <-chan struct{} { return s.synced }

// Run serves custom resources until ctx is done. It watches the CRDs
// store and, after each burst of changes, rebuilds what changed and
// republishes the stores, discovery and OpenAPI.
func (s *Serving) Run(ctx context.Context) error {
	defer s.stopAll()
	done := make(chan struct{})
	defer func() { <-done }()
	go func() {
		defer close(done)
		s.publishOpenAPI(ctx)
	}()
	var once sync.Once
	markSynced := func() { once.Do(func() { close(s.synced) }) }
	for {
		err := s.watchOnce(ctx, markSynced)
		if ctx.Err() != nil {
			return nil
		}
		s.log.Warn("watch of CRDs ended; restarting", "err", err)
		select {
		case <-ctx.Done():
			return nil
		case <-time.After(time.Second):
		}
	}
}

// watchOnce lists the CRDs, serves them, and follows their changes until
// the watch ends.
func (s *Serving) watchOnce(ctx context.Context, markSynced func()) error {
	list, err := s.cfg.CRDs.List(ctx, "", storage.ListOptions{})
	if err != nil {
		return fmt.Errorf("listing CRDs: %w", err)
	}
	crdList, ok := list.(*apiextensionsv1.CustomResourceDefinitionList)
	if !ok {
		return fmt.Errorf("listing CRDs: unexpected %T", list)
	}
	current := map[string]*apiextensionsv1.CustomResourceDefinition{}
	for i := range crdList.Items {
		current[crdList.Items[i].Name] = &crdList.Items[i]
	}
	s.reconcile(ctx, current)
	markSynced()

	w, err := s.cfg.CRDs.Watch(ctx, "", storage.WatchOptions{ResourceVersion: crdList.ResourceVersion})
	if err != nil {
		return fmt.Errorf("watching CRDs: %w", err)
	}
	defer w.Stop()
	for {
		var ev watch.Event
		select {
		case <-ctx.Done():
			return nil
		case e, ok := <-w.ResultChan():
			if !ok {
				return errors.New("watch closed")
			}
			ev = e
		}
		// Take the whole burst before rebuilding.
		for more := true; more; {
			if err := apply(current, ev); err != nil {
				return err
			}
			select {
			case e, ok := <-w.ResultChan():
				if !ok {
					s.reconcile(ctx, current)
					return errors.New("watch closed")
				}
				ev = e
			default:
				more = false
			}
		}
		s.reconcile(ctx, current)
	}
}

// apply records one watch event in current.
func apply(current map[string]*apiextensionsv1.CustomResourceDefinition, ev watch.Event) error {
	switch ev.Type {
	case watch.Error:
		return fmt.Errorf("watch error: %v", ev.Object)
	case watch.Bookmark:
		return nil
	}
	crd, ok := ev.Object.(*apiextensionsv1.CustomResourceDefinition)
	if !ok {
		return fmt.Errorf("watch event of unexpected type %T", ev.Object)
	}
	if ev.Type == watch.Deleted {
		delete(current, crd.Name)
	} else {
		current[crd.Name] = crd
	}
	return nil
}

// servable reports whether crd's resource is to be served: its names are
// accepted and are the ones it asks for.
func servable(crd *apiextensionsv1.CustomResourceDefinition) bool {
	accepted := false
	for _, c := range crd.Status.Conditions {
		if c.Type == apiextensionsv1.NamesAccepted && c.Status == apiextensionsv1.ConditionTrue {
			accepted = true
		}
	}
	return accepted && crd.Status.AcceptedNames.Plural == crd.Spec.Names.Plural && crd.Status.AcceptedNames.Kind != ""
}

// sameServing reports whether a and b serve the same way (spec, accepted
// names and whether they are terminating).
func sameServing(a, b *apiextensionsv1.CustomResourceDefinition) bool {
	return a.UID == b.UID &&
		(a.DeletionTimestamp == nil) == (b.DeletionTimestamp == nil) &&
		reflect.DeepEqual(a.Spec, b.Spec) &&
		reflect.DeepEqual(a.Status.AcceptedNames, b.Status.AcceptedNames)
}

// reconcile makes what is served match current and publishes it.
func (s *Serving) reconcile(ctx context.Context, current map[string]*apiextensionsv1.CustomResourceDefinition) {
	changed := false
	for name, sv := range s.served {
		crd, ok := current[name]
		if !ok || !servable(crd) || crd.UID != sv.crd.UID {
			s.stopServing(name, sv)
			changed = true
		}
	}
	for name, crd := range current {
		if !servable(crd) {
			continue
		}
		sv := s.served[name]
		if sv != nil && sameServing(sv.crd, crd) {
			sv.crd = crd
			continue
		}
		if err := s.serve(ctx, crd, sv); err != nil {
			s.log.Error("cannot serve custom resource", "crd", name, "err", err)
			if sv != nil {
				s.stopServing(name, sv)
			}
			continue
		}
		changed = true
	}
	if changed {
		s.publish()
	}
}

// serve builds (or rebuilds) what serves crd. The storage of a CRD that
// keeps its etcd prefix and scope is kept.
func (s *Serving) serve(ctx context.Context, crd *apiextensionsv1.CustomResourceDefinition, sv *servedCRD) error {
	crs, err := resourcesOf(crd)
	if err != nil {
		return err
	}
	if len(crs) == 0 || !crs[0].storage {
		return errors.New("no served storage version")
	}
	// The field sets of the storage serve every version's selectors.
	attrs := crs[0].res.Strategy.Attrs
	prefix := registry.KeyPrefix(crs[0].res.GroupResource())
	if sv != nil && !reflect.DeepEqual(sv.crd.Spec, crd.Spec) {
		// The objects in the watch cache were decoded with the old
		// schemas (pruned, defaulted): start over, as upstream does
		// when a CRD changes. Watchers are closed and come back.
		s.stopServing(crd.Name, sv)
		sv = nil
	}
	if sv == nil {
		cctx, cancel := context.WithCancel(ctx)
		backend, err := storage.New(cctx, storage.Config{
			Client:      s.cfg.Client,
			Prefix:      prefix,
			Resource:    crs[0].res.GroupResource(),
			Codec:       newStorageCodec(crd, crs),
			NewFunc:     func() runtime.Object { return &unstructured.Unstructured{} },
			NewListFunc: func() runtime.Object { return &unstructured.UnstructuredList{} },
			Attrs:       attrs,
			Logger:      s.log.With("component", "storage"),
		})
		if err != nil {
			cancel()
			return fmt.Errorf("storage of %s: %w", crd.Name, err)
		}
		sv = &servedCRD{backend: backend, stop: cancel, prefix: prefix}
		s.served[crd.Name] = sv
	}
	storedVersion := crs[0].res.GVR.GroupVersion().String()
	// A change of spec.conversion is a change of spec: the CRD is served
	// anew (above) with its new converter.
	var p poster
	if s.cfg.Conversion != nil {
		p = s.cfg.Conversion
	}
	conv := converterFor(crd, p)
	_, none := conv.(noneConverter)
	stores := make([]*registry.Store, 0, len(crs))
	for _, cr := range crs {
		var st storage.Interface = sv.backend
		// With conversion None the storage version serves objects as
		// stored; otherwise objects stored in an older version are
		// converted on the way out, as upstream.
		if !cr.storage || !none {
			st = &versioned{Interface: sv.backend, stored: storedVersion, served: cr.res.GVR.GroupVersion().String(), conv: conv, attrs: cr.res.Strategy.Attrs}
		}
		opts := registry.StoreOptions{Logger: s.log}
		if cr.res.Namespaced {
			opts.Namespaces = s.cfg.Namespaces
		}
		stores = append(stores, registry.NewStore(cr.res, st, opts))
	}
	sv.crd, sv.stores = crd, stores
	s.log.Info("serving custom resource", "crd", crd.Name, "versions", len(stores))
	for _, cr := range crs {
		for _, rule := range cr.skipped {
			s.log.Warn("CEL rule not enforced: it calls a function skiff does not provide", "crd", crd.Name, "version", cr.res.GVR.Version, "rule", rule)
		}
	}
	return nil
}

// storageCodec reads custom resources from etcd as upstream does: what
// the schema of the object's version does not know is pruned and its
// defaults are applied, so objects written before a schema change read
// as the schema now says. An object stored in an older version is read
// with that version's schema (so a conversion webhook gets all of it);
// one of a version the CRD no longer has, with the storage version's.
type storageCodec struct {
	runtime.Codec
	// schema is the storage version's, crs[0]'s of newStorageCodec.
	schema *crdschema.Validator
	// versions are the schemas of the CRD's versions by apiVersion.
	versions map[string]*crdschema.Validator
}

// newStorageCodec is the codec of crd's objects in etcd; crs are its
// served versions, the storage version first.
func newStorageCodec(crd *apiextensionsv1.CustomResourceDefinition, crs []customResource) storageCodec {
	return storageCodec{Codec: unstructured.UnstructuredJSONScheme, schema: crs[0].validator, versions: versionSchemas(crd, crs)}
}

func (c storageCodec) Decode(data []byte, defaults *schema.GroupVersionKind, into runtime.Object) (runtime.Object, *schema.GroupVersionKind, error) {
	obj, gvk, err := c.Codec.Decode(data, defaults, into)
	if err != nil {
		return obj, gvk, err
	}
	if u, ok := obj.(*unstructured.Unstructured); ok {
		v := c.versions[u.GetAPIVersion()]
		if v == nil {
			v = c.schema
		}
		v.Prune(u.Object)
		v.Default(u.Object)
	}
	return obj, gvk, nil
}

// versionSchemas returns the schemas of crd's versions by apiVersion:
// the served ones of crs, and the others built here (a version whose
// schema does not build is left out).
func versionSchemas(crd *apiextensionsv1.CustomResourceDefinition, crs []customResource) map[string]*crdschema.Validator {
	out := make(map[string]*crdschema.Validator, len(crd.Spec.Versions))
	for _, cr := range crs {
		out[cr.res.GVR.GroupVersion().String()] = cr.validator
	}
	for _, v := range crd.Spec.Versions {
		key := crd.Spec.Group + "/" + v.Name
		if _, ok := out[key]; ok {
			continue
		}
		var s *apiextensionsv1.JSONSchemaProps
		if v.Schema != nil {
			s = v.Schema.OpenAPIV3Schema
		}
		if val, err := crdschema.NewValidator(s); err == nil {
			out[key] = val
		}
	}
	return out
}

func (s *Serving) stopServing(name string, sv *servedCRD) {
	sv.stop()
	delete(s.served, name)
	s.log.Info("stopped serving custom resource", "crd", name)
}

func (s *Serving) stopAll() {
	for name, sv := range s.served {
		sv.stop()
		delete(s.served, name)
	}
}

// publish hands the current stores to the API server, discovery and
// OpenAPI, in a stable order (by CRD name).
func (s *Serving) publish() {
	names := make([]string, 0, len(s.served))
	for name := range s.served {
		names = append(names, name)
	}
	slices.Sort(names)
	var stores []*registry.Store
	var resources []*registry.Resource
	var crds []*apiextensionsv1.CustomResourceDefinition
	taken := map[schema.GroupVersionResource]string{}
	for _, name := range names {
		sv := s.served[name]
		clash := ""
		for _, st := range sv.stores {
			if other, ok := taken[st.Resource.GVR]; ok {
				clash = other
			}
		}
		if clash != "" {
			// The names controller keeps plurals apart within a group;
			// this only guards against a race with it.
			s.log.Warn("custom resource served by another CRD; not serving it", "crd", name, "other", clash)
			continue
		}
		for _, st := range sv.stores {
			taken[st.Resource.GVR] = name
		}
		stores = append(stores, sv.stores...)
		for _, st := range sv.stores {
			resources = append(resources, st.Resource)
		}
		crds = append(crds, sv.crd)
	}
	if err := s.cfg.API.SetCustomStores(stores); err != nil {
		s.log.Error("publishing custom resources", "err", err)
		return
	}
	s.cfg.Discovery.SetCustomResources(resources)
	// Replace what publishOpenAPI has not taken yet (only this goroutine
	// sends, so the send after draining cannot block).
	select {
	case <-s.openapi:
	default:
	}
	s.openapi <- crds
}

// publishOpenAPI hands the latest CRDs to the OpenAPI documents until ctx
// is done.
func (s *Serving) publishOpenAPI(ctx context.Context) {
	for {
		select {
		case <-ctx.Done():
			return
		case crds := <-s.openapi:
			if err := s.cfg.OpenAPI.SetCustomResources(crds); err != nil {
				s.log.Error("publishing custom resources' OpenAPI", "err", err)
			}
		}
	}
}
