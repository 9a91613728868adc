package staticpods

import (
	"context"
	"fmt"
	"log/slog"
	"time"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/tools/cache"
	"k8s.io/client-go/tools/record"
	"k8s.io/utils/ptr"
)

// syncer runs the passes. It is used by one goroutine only (Run's loop),
// so its maps need no lock.
type syncer struct {
	client   kubernetes.Interface
	node     string
	dir      string
	recorder record.EventRecorder
	log      *slog.Logger
	pods     cache.Store // the informer's pods bound to node; read-only
	now      func() time.Time

	// seen is when each current manifest hash was first seen.
	seen map[string]time.Time
	// rejected holds the hashes the API server refused as invalid, with
	// the reason: they are not created again until the file changes.
	rejected map[string]string
	// deleting holds the UIDs of mirror pods this agent asked to delete,
	// so a stale cache does not make it ask again every pass.
	deleting map[types.UID]bool
	notes    notes
}

func newSyncer(cfg Config, pods cache.Store) *syncer {
	return &syncer{
		client:   cfg.Client,
		node:     cfg.NodeName,
		dir:      cfg.Dir,
		recorder: cfg.Recorder,
		log:      cfg.Logger,
		pods:     pods,
		now:      time.Now,
		seen:     map[string]time.Time{},
		rejected: map[string]string{},
		deleting: map[types.UID]bool{},
	}
}

// nodeRef is the object of the events on the node; its UID is the node's
// name, as upstream's kubelet (and kubectl describe node) have it.
func (s *syncer) nodeRef() *corev1.ObjectReference {
	return &corev1.ObjectReference{APIVersion: "v1", Kind: "Node", Name: s.node, UID: types.UID(s.node)}
}

// pass converges the mirror pods on the manifests once. It is idempotent;
// everything that fails is logged (once per problem) and retried by the
// next pass.
func (s *syncer) pass(ctx context.Context) {
	s.notes.begin()
	defer s.notes.end()

	ms, bad, err := readManifests(s.dir, s.node)
	if err != nil {
		if s.notes.changed("dir", err.Error()) {
			s.log.Info("static pod manifests unreadable; mirror pods left as they are", "dir", s.dir, "err", err)
		}
		s.notes.keepAll()
		return
	}
	for _, b := range bad {
		s.invalid(b.path, b.err)
	}

	node, err := s.client.CoreV1().Nodes().Get(ctx, s.node, metav1.GetOptions{})
	if err != nil {
		node = nil
		if s.notes.changed("node", err.Error()) {
			s.log.Info("node not readable; no mirror pods created until it is", "node", s.node, "err", err)
		}
	}

	// The pods bound here, by namespace/name; the mirror pods among them.
	byKey := map[string]*corev1.Pod{}
	uids := map[types.UID]bool{}
	for _, obj := range s.pods.List() {
		p, ok := obj.(*corev1.Pod)
		if !ok || p.Spec.NodeName != s.node {
			continue
		}
		byKey[p.Namespace+"/"+p.Name] = p
		uids[p.UID] = true
	}
	for uid := range s.deleting {
		if !uids[uid] {
			delete(s.deleting, uid)
		}
	}

	want := map[string]bool{}
	hashes := map[string]bool{}
	for i := range ms {
		want[ms[i].key()] = true
		hashes[ms[i].hash] = true
	}
	for h := range s.seen {
		if !hashes[h] {
			delete(s.seen, h)
		}
	}
	for h := range s.rejected {
		if !hashes[h] {
			delete(s.rejected, h)
		}
	}

	for key, p := range byKey {
		if IsMirrorPod(p) && !want[key] && p.DeletionTimestamp == nil {
			s.delete(ctx, p, "its manifest is gone")
		}
	}
	for i := range ms {
		m := &ms[i]
		if _, ok := s.seen[m.hash]; !ok {
			s.seen[m.hash] = s.now()
		}
		if reason, ok := s.rejected[m.hash]; ok {
			s.notes.changed("file:"+m.path, reason) // still reported: no new event
			continue
		}
		p := byKey[m.key()]
		switch {
		case p == nil:
			if node != nil {
				s.create(ctx, m, node)
			}
		case !IsMirrorPod(p):
			if s.notes.changed("conflict:"+m.key(), string(p.UID)) {
				s.log.Info("a pod that is not a mirror pod has the static pod's name; leaving it alone", "pod", m.key(), "file", m.path)
			}
		case p.DeletionTimestamp != nil:
			// The agent is stopping it; the pass after it is gone creates
			// the new one.
		case p.Annotations[AnnotationMirror] != m.hash:
			s.delete(ctx, p, "its manifest changed")
		case node != nil && !ownedBy(p, node):
			s.delete(ctx, p, "it belongs to an earlier Node object")
		}
	}
}

// create creates m's mirror pod owned by node.
func (s *syncer) create(ctx context.Context, m *manifest, node *corev1.Node) {
	pod := m.pod.DeepCopy()
	pod.Annotations[AnnotationSeen] = s.seen[m.hash].UTC().Format(time.RFC3339Nano)
	pod.OwnerReferences = []metav1.OwnerReference{{
		APIVersion: "v1",
		Kind:       "Node",
		Name:       node.Name,
		UID:        node.UID,
		Controller: ptr.To(true),
	}}
	created, err := s.client.CoreV1().Pods(pod.Namespace).Create(ctx, pod, metav1.CreateOptions{})
	switch {
	case err == nil:
		s.log.Info("mirror pod created", "pod", m.key(), "uid", created.UID, "file", m.path, "hash", m.hash)
	case apierrors.IsAlreadyExists(err):
		// The informer has not caught up; the next pass sees it.
	case apierrors.IsNotFound(err):
		if s.notes.changed("create:"+m.key(), "namespace") {
			s.log.Info("namespace of a static pod does not exist; retrying later", "pod", m.key(), "file", m.path)
		}
	case apierrors.IsInvalid(err) || apierrors.IsBadRequest(err):
		reason := fmt.Sprintf("rejected by the API server: %v", err)
		s.rejected[m.hash] = reason
		s.invalid(m.path, fmt.Errorf("%s", reason))
	default:
		if s.notes.changed("create:"+m.key(), err.Error()) {
			s.log.Info("creating mirror pod failed; retrying", "pod", m.key(), "err", err)
		}
	}
}

// delete deletes a mirror pod gracefully, only if it is still the pod
// with p's UID.
func (s *syncer) delete(ctx context.Context, p *corev1.Pod, why string) {
	if s.deleting[p.UID] {
		return
	}
	key := p.Namespace + "/" + p.Name
	err := s.client.CoreV1().Pods(p.Namespace).Delete(ctx, p.Name, metav1.DeleteOptions{
		Preconditions: &metav1.Preconditions{UID: &p.UID},
	})
	switch {
	case err == nil:
		s.deleting[p.UID] = true
		s.log.Info("mirror pod deleted", "pod", key, "uid", p.UID, "why", why)
	case apierrors.IsNotFound(err) || apierrors.IsConflict(err):
		// Gone already, or replaced by another pod of that name.
	default:
		if s.notes.changed("delete:"+key, err.Error()) {
			s.log.Info("deleting mirror pod failed; retrying", "pod", key, "err", err)
		}
	}
}

// invalid reports a manifest that cannot become a pod, once per file and
// problem: a log line and a Warning event on the Node.
func (s *syncer) invalid(path string, err error) {
	if !s.notes.changed("file:"+path, err.Error()) {
		return
	}
	s.log.Info("static pod manifest skipped", "file", path, "err", err)
	s.recorder.Eventf(s.nodeRef(), corev1.EventTypeWarning, ReasonInvalidManifest,
		"Static pod manifest %s skipped: %v", path, err)
}

// ownedBy reports whether p's controller owner is node (by UID).
func ownedBy(p *corev1.Pod, node *corev1.Node) bool {
	for _, ref := range p.OwnerReferences {
		if ref.Kind == "Node" && ref.Name == node.Name && ref.UID == node.UID {
			return true
		}
	}
	return false
}

// notes remembers what was reported in the previous pass, so that a
// problem is logged (and evented) once while it lasts and again when it
// comes back after being gone for a pass.
type notes struct {
	prev, cur map[string]string
}

func (n *notes) begin() { n.cur = map[string]string{} }

// changed records msg for key in this pass and reports whether it differs
// from the previous pass's.
func (n *notes) changed(key, msg string) bool {
	n.cur[key] = msg
	old, ok := n.prev[key]
	return !ok || old != msg
}

// keepAll carries the previous pass's notes over for a pass that ended
// early, so it does not make them new again.
func (n *notes) keepAll() {
	for k, v := range n.prev {
		if _, ok := n.cur[k]; !ok {
			n.cur[k] = v
		}
	}
}

func (n *notes) end() { n.prev = n.cur }
