package node

import (
	"context"
	"fmt"
	"strings"

	corev1 "k8s.io/api/core/v1"
	networkingv1 "k8s.io/api/networking/v1"
	"k8s.io/apimachinery/pkg/labels"
	"k8s.io/client-go/informers"
	corelisters "k8s.io/client-go/listers/core/v1"
	networkinglisters "k8s.io/client-go/listers/networking/v1"
	"k8s.io/client-go/tools/cache"

	"github.com/skiff-dev/skiff/internal/auth"
)

// LeaseNamespace holds the nodes' heartbeat leases.
const LeaseNamespace = "kube-node-lease"

// nodeNameIndex indexes pods by spec.nodeName.
const nodeNameIndex = "skiff.dev/node-authorizer-nodename"

// tlsSecretIndex indexes ingresses by "<namespace>/<secret>" of each
// spec.tls[].secretName.
const tlsSecretIndex = "skiff.dev/node-authorizer-tls-secret"

// Authorizer is the node authorizer. It is safe for concurrent use. Build
// it with New before the factory is started.
type Authorizer struct {
	pods   corelisters.PodLister
	claims corelisters.PersistentVolumeClaimLister
	pvs    corelisters.PersistentVolumeLister
	// byNode is the pod informer's indexer with nodeNameIndex; nil if the
	// index could not be added (the informer had already started), in
	// which case podsOn scans all pods.
	byNode cache.Indexer
	// byTLSSecret is the ingress informer's indexer with tlsSecretIndex;
	// nil if the index could not be added, in which case ingresses are
	// scanned.
	byTLSSecret cache.Indexer
	ingresses   networkinglisters.IngressLister
	synced      []cache.InformerSynced
}

// New returns a node authorizer reading pods, persistentvolumeclaims,
// persistentvolumes and ingresses from informers, on which it registers
// those informers (and indexes of pods by node name and of ingresses by
// TLS secret). The caller starts the factory.
func New(informers informers.SharedInformerFactory) *Authorizer {
	core := informers.Core().V1()
	podInf := core.Pods().Informer()
	ingInf := informers.Networking().V1().Ingresses()
	a := &Authorizer{
		pods:      core.Pods().Lister(),
		claims:    core.PersistentVolumeClaims().Lister(),
		pvs:       core.PersistentVolumes().Lister(),
		ingresses: ingInf.Lister(),
		synced: []cache.InformerSynced{
			podInf.HasSynced,
			core.PersistentVolumeClaims().Informer().HasSynced,
			core.PersistentVolumes().Informer().HasSynced,
			ingInf.Informer().HasSynced,
		},
	}
	err := ingInf.Informer().AddIndexers(cache.Indexers{tlsSecretIndex: func(obj any) ([]string, error) {
		ing, ok := obj.(*networkingv1.Ingress)
		if !ok {
			return nil, nil
		}
		return ingressTLSSecrets(ing), nil
	}})
	if err == nil {
		a.byTLSSecret = ingInf.Informer().GetIndexer()
	}
	err = podInf.AddIndexers(cache.Indexers{nodeNameIndex: func(obj any) ([]string, error) {
		pod, ok := obj.(*corev1.Pod)
		if !ok || pod.Spec.NodeName == "" {
			return nil, nil
		}
		return []string{pod.Spec.NodeName}, nil
	}})
	if err == nil {
		a.byNode = podInf.GetIndexer()
	}
	return a
}

// HasSynced reports whether the caches have synced. Until they have, nodes
// are denied what their pods reference.
func (a *Authorizer) HasSynced() bool {
	for _, s := range a.synced {
		if !s() {
			return false
		}
	}
	return true
}

// NodeName returns the node a user is, and false for users that are not
// nodes (a node user is named system:node:<name> and in system:nodes).
func NodeName(u auth.User) (string, bool) {
	name, ok := strings.CutPrefix(u.Name, auth.NodeUserPrefix)
	if !ok || name == "" || !u.InGroup(auth.NodesGroup) {
		return "", false
	}
	return name, true
}

// Authorize decides a node's request as the package documentation lists;
// it returns NoOpinion for users that are not nodes and for requests it
// does not govern. The error is always nil.
func (a *Authorizer) Authorize(ctx context.Context, attrs auth.Attributes) (auth.Decision, string, error) {
	node, ok := NodeName(attrs.User)
	if !ok || !attrs.ResourceRequest {
		return auth.NoOpinion, "", nil
	}
	d, reason := a.decide(node, attrs)
	return d, reason, nil
}

func (a *Authorizer) decide(node string, attrs auth.Attributes) (auth.Decision, string) {
	switch attrs.APIGroup {
	case "":
		switch attrs.Resource {
		case "secrets":
			return a.readRelated(node, attrs, attrs.Subresource == "", a.referencesSecret)
		case "configmaps":
			return a.readRelated(node, attrs, attrs.Subresource == "", a.podsReferenceConfigMap)
		case "persistentvolumeclaims":
			switch attrs.Subresource {
			case "":
				return a.readRelated(node, attrs, true, a.podsReferenceClaim)
			case "status":
				if attrs.Verb == "update" || attrs.Verb == "patch" || attrs.Verb == "get" {
					return a.related(node, attrs, a.podsReferenceClaim)
				}
			}
			return deny(node, attrs)
		case "persistentvolumes":
			return a.readRelated(node, attrs, attrs.Subresource == "", a.podsReferencePV)
		case "serviceaccounts":
			switch {
			case attrs.Subresource == "" && attrs.Verb == "get":
				return a.related(node, attrs, a.podsUseServiceAccount)
			case attrs.Subresource == "token" && attrs.Verb == "create":
				return a.related(node, attrs, a.podsUseServiceAccount)
			}
			return deny(node, attrs)
		case "pods":
			return a.pod(node, attrs)
		case "nodes":
			return ownObject(node, attrs, attrs.Name)
		case "events":
			return eventsDecision(node, attrs)
		case "services":
			if attrs.Subresource == "" && isRead(attrs.Verb) {
				return allow(node, "services are readable by nodes")
			}
		case "endpoints":
			if attrs.Subresource == "" && attrs.Verb == "get" {
				return allow(node, "endpoints are readable by nodes")
			}
		}
	case "events.k8s.io":
		if attrs.Resource == "events" {
			return eventsDecision(node, attrs)
		}
	case "coordination.k8s.io":
		if attrs.Resource == "leases" {
			return lease(node, attrs)
		}
	case "certificates.k8s.io":
		if attrs.Resource == "certificatesigningrequests" && attrs.Subresource == "" {
			switch attrs.Verb {
			case "create", "get", "list", "watch":
				return allow(node, "nodes may request and read certificates")
			}
		}
	case "storage.k8s.io":
		if attrs.Resource == "csinodes" {
			return ownObject(node, attrs, attrs.Name)
		}
	}
	return auth.NoOpinion, ""
}

func isRead(verb string) bool { return verb == "get" || verb == "list" || verb == "watch" }

func allow(node string, why string) (auth.Decision, string) {
	return auth.Allow, fmt.Sprintf("node %q: %s", node, why)
}

func deny(node string, attrs auth.Attributes) (auth.Decision, string) {
	what := attrs.Resource
	if attrs.Subresource != "" {
		what += "/" + attrs.Subresource
	}
	obj := attrs.Name
	if attrs.Namespace != "" {
		obj = attrs.Namespace + "/" + attrs.Name
	}
	return auth.Deny, fmt.Sprintf("node %q cannot %s %s %q: no relationship found between the node and this object", node, attrs.Verb, what, obj)
}

// readRelated allows get (and list/watch of a single named object, which
// the API server sets Name for from a metadata.name field selector) of an
// object a pod on node references; everything else on the resource is
// denied. ok false (an unexpected subresource) denies too.
func (a *Authorizer) readRelated(node string, attrs auth.Attributes, ok bool, references func(node, ns, name string) (string, bool)) (auth.Decision, string) {
	if !ok || !isRead(attrs.Verb) || attrs.Name == "" {
		return deny(node, attrs)
	}
	return a.related(node, attrs, references)
}

// related allows attrs if references finds a pod on node that references
// attrs' object, and denies it otherwise.
func (a *Authorizer) related(node string, attrs auth.Attributes, references func(node, ns, name string) (string, bool)) (auth.Decision, string) {
	if attrs.Name == "" {
		return deny(node, attrs)
	}
	if via, ok := references(node, attrs.Namespace, attrs.Name); ok {
		return allow(node, "referenced by "+via)
	}
	return deny(node, attrs)
}

// pod governs pods: reads and create are allowed (NodeRestriction
// admission checks that a created pod is a mirror pod bound to the node);
// delete, status writes and eviction only for pods bound to the node.
func (a *Authorizer) pod(node string, attrs auth.Attributes) (auth.Decision, string) {
	switch {
	case attrs.Subresource == "" && isRead(attrs.Verb):
		return allow(node, "pods are readable by nodes")
	case attrs.Subresource == "" && attrs.Verb == "create":
		return allow(node, "nodes may create mirror pods")
	case attrs.Subresource == "" && attrs.Verb == "delete",
		attrs.Subresource == "status" && (attrs.Verb == "update" || attrs.Verb == "patch" || attrs.Verb == "get"),
		attrs.Subresource == "eviction" && attrs.Verb == "create":
		p, err := a.pods.Pods(attrs.Namespace).Get(attrs.Name)
		if err == nil && p.Spec.NodeName == node {
			return allow(node, "the pod is bound to the node")
		}
		return deny(node, attrs)
	}
	return auth.NoOpinion, ""
}

// ownObject governs nodes and csinodes: reads of any, create (admission
// checks the name) and update/patch of its own object (and its status).
func ownObject(node string, attrs auth.Attributes, name string) (auth.Decision, string) {
	switch {
	case attrs.Subresource == "" && isRead(attrs.Verb):
		return allow(node, attrs.Resource+" are readable by nodes")
	case attrs.Subresource == "" && attrs.Verb == "create" && (name == "" || name == node):
		return allow(node, "a node may register itself")
	case (attrs.Subresource == "" || attrs.Subresource == "status") &&
		(attrs.Verb == "update" || attrs.Verb == "patch") && name == node:
		return allow(node, "a node may update itself")
	case attrs.Subresource == "" && attrs.Verb == "delete" && attrs.Resource == "csinodes" && name == node:
		return allow(node, "a node may delete its own CSINode")
	case name != node:
		return deny(node, attrs)
	}
	return auth.NoOpinion, ""
}

// lease allows the node's own heartbeat lease and denies every other.
func lease(node string, attrs auth.Attributes) (auth.Decision, string) {
	if attrs.Namespace == LeaseNamespace && attrs.Subresource == "" && (attrs.Name == node || attrs.Name == "" && attrs.Verb == "create") {
		switch attrs.Verb {
		case "get", "create", "update", "patch", "delete":
			return allow(node, "a node may maintain its own lease")
		}
	}
	return deny(node, attrs)
}

func eventsDecision(node string, attrs auth.Attributes) (auth.Decision, string) {
	switch attrs.Verb {
	case "create", "patch", "update":
		return allow(node, "nodes may record events")
	}
	return auth.NoOpinion, ""
}

// podsOn returns the pods bound to node, from the cache (do not mutate).
func (a *Authorizer) podsOn(node string) []*corev1.Pod {
	if a.byNode != nil {
		objs, err := a.byNode.ByIndex(nodeNameIndex, node)
		if err == nil {
			out := make([]*corev1.Pod, 0, len(objs))
			for _, o := range objs {
				if p, ok := o.(*corev1.Pod); ok {
					out = append(out, p)
				}
			}
			return out
		}
	}
	all, _ := a.pods.List(labels.Everything())
	var out []*corev1.Pod
	for _, p := range all {
		if p.Spec.NodeName == node {
			out = append(out, p)
		}
	}
	return out
}

func podName(p *corev1.Pod) string { return "pod " + p.Namespace + "/" + p.Name }

func (a *Authorizer) podsReferenceSecret(node, ns, name string) (string, bool) {
	for _, p := range a.podsOn(node) {
		if p.Namespace == ns && podRefs(p).secrets[name] {
			return podName(p), true
		}
	}
	// Secrets of the persistent volumes the node's pods mount.
	var found string
	a.eachPV(node, func(p *corev1.Pod, pv *corev1.PersistentVolume) bool {
		for _, ref := range pvSecrets(pv) {
			if ref.Namespace == ns && ref.Name == name {
				found = "persistent volume " + pv.Name + " of " + podName(p)
				return false
			}
		}
		return true
	})
	return found, found != ""
}

// referencesSecret finds what gives node the secret ns/name: a pod on
// the node, or an Ingress naming it in spec.tls (every node serves every
// ingress, so every node needs its certificate and key).
func (a *Authorizer) referencesSecret(node, ns, name string) (string, bool) {
	if via, ok := a.podsReferenceSecret(node, ns, name); ok {
		return via, true
	}
	return a.ingressReferencesSecret(ns, name)
}

// ingressReferencesSecret finds an ingress in ns whose spec.tls names
// secret name.
func (a *Authorizer) ingressReferencesSecret(ns, name string) (string, bool) {
	key := ns + "/" + name
	if a.byTLSSecret != nil {
		objs, err := a.byTLSSecret.ByIndex(tlsSecretIndex, key)
		if err == nil {
			for _, o := range objs {
				if ing, ok := o.(*networkingv1.Ingress); ok {
					return "the TLS of ingress " + ing.Namespace + "/" + ing.Name, true
				}
			}
			return "", false
		}
	}
	all, _ := a.ingresses.Ingresses(ns).List(labels.Everything())
	for _, ing := range all {
		for _, k := range ingressTLSSecrets(ing) {
			if k == key {
				return "the TLS of ingress " + ing.Namespace + "/" + ing.Name, true
			}
		}
	}
	return "", false
}

// ingressTLSSecrets returns "<namespace>/<secret>" of each TLS secret ing
// names.
func ingressTLSSecrets(ing *networkingv1.Ingress) []string {
	var out []string
	for _, t := range ing.Spec.TLS {
		if t.SecretName != "" {
			out = append(out, ing.Namespace+"/"+t.SecretName)
		}
	}
	return out
}

func (a *Authorizer) podsReferenceConfigMap(node, ns, name string) (string, bool) {
	for _, p := range a.podsOn(node) {
		if p.Namespace == ns && podRefs(p).configMaps[name] {
			return podName(p), true
		}
	}
	return "", false
}

func (a *Authorizer) podsReferenceClaim(node, ns, name string) (string, bool) {
	for _, p := range a.podsOn(node) {
		if p.Namespace == ns && podRefs(p).claims[name] {
			return podName(p), true
		}
	}
	return "", false
}

func (a *Authorizer) podsUseServiceAccount(node, ns, name string) (string, bool) {
	for _, p := range a.podsOn(node) {
		if p.Namespace == ns && podRefs(p).serviceAccount == name {
			return podName(p), true
		}
	}
	return "", false
}

func (a *Authorizer) podsReferencePV(node, _, name string) (string, bool) {
	var found string
	a.eachPV(node, func(p *corev1.Pod, pv *corev1.PersistentVolume) bool {
		if pv.Name == name {
			found = "the claim of " + podName(p)
			return false
		}
		return true
	})
	return found, found != ""
}

// eachPV calls f for each persistent volume bound to a claim of a pod on
// node, until f returns false.
func (a *Authorizer) eachPV(node string, f func(*corev1.Pod, *corev1.PersistentVolume) bool) {
	for _, p := range a.podsOn(node) {
		for claimName := range podRefs(p).claims {
			claim, err := a.claims.PersistentVolumeClaims(p.Namespace).Get(claimName)
			if err != nil || claim.Spec.VolumeName == "" {
				continue
			}
			pv, err := a.pvs.Get(claim.Spec.VolumeName)
			if err != nil {
				continue
			}
			if !f(p, pv) {
				return
			}
		}
	}
}
