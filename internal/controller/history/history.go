package history

import (
	"context"
	"encoding/json"
	"fmt"
	"hash/fnv"
	"slices"
	"strconv"

	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	apiequality "k8s.io/apimachinery/pkg/api/equality"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/apimachinery/pkg/util/rand"
	"k8s.io/client-go/kubernetes"

	"github.com/skiff-dev/skiff/internal/controller/ownership"
)

// HashLabel is the label carrying a revision's hash, on the revision and on
// the pods made from it.
const HashLabel = appsv1.ControllerRevisionHashLabelKey

// TemplatePatch returns the revision data of a pod template: a strategic
// merge patch that replaces the parent's spec.template with it.
//
// The bytes are those of the Kubernetes version skiff serves (1.33), whose
// metadata encoding wrote a zero creationTimestamp as null (newer
// apimachinery omits it): clients compare revision data with their own
// encoding of the parent byte for byte (the DaemonSet conformance specs
// do), and the hash names the revision.
func TemplatePatch(tmpl *corev1.PodTemplateSpec) ([]byte, error) {
	raw, err := json.Marshal(tmpl)
	if err != nil {
		return nil, fmt.Errorf("encoding pod template: %w", err)
	}
	var obj map[string]any
	if err := json.Unmarshal(raw, &obj); err != nil {
		return nil, fmt.Errorf("decoding pod template: %w", err)
	}
	if md, ok := obj["metadata"].(map[string]any); ok {
		if _, set := md["creationTimestamp"]; !set {
			md["creationTimestamp"] = nil
		}
	}
	obj["$patch"] = "replace"
	data, err := json.Marshal(map[string]any{"spec": map[string]any{"template": obj}})
	if err != nil {
		return nil, fmt.Errorf("encoding template patch: %w", err)
	}
	return data, nil
}

// Template decodes the pod template stored in a revision by TemplatePatch.
func Template(rev *appsv1.ControllerRevision) (corev1.PodTemplateSpec, error) {
	var p struct {
		Spec struct {
			Template corev1.PodTemplateSpec `json:"template"`
		} `json:"spec"`
	}
	if err := json.Unmarshal(rev.Data.Raw, &p); err != nil {
		return corev1.PodTemplateSpec{}, fmt.Errorf("decoding revision %s: %w", rev.Name, err)
	}
	return p.Spec.Template, nil
}

// Hash returns the hash of revision data and an optional collision count.
func Hash(data []byte, collisionCount *int32) string {
	h := fnv.New32a()
	h.Write(data)
	if collisionCount != nil {
		h.Write([]byte(strconv.FormatInt(int64(*collisionCount), 10)))
	}
	return rand.SafeEncodeString(strconv.FormatUint(uint64(h.Sum32()), 10))
}

// Name is the name of parent's revision with hash.
func Name(parent, hash string) string {
	return parent + "-" + hash
}

// New returns (without creating it) the revision of parent holding data at
// number revision; labels are the parent's template labels.
func New(parent metav1.Object, gvk schema.GroupVersionKind, labels map[string]string, data []byte, revision int64, collisionCount *int32) *appsv1.ControllerRevision {
	hash := Hash(data, collisionCount)
	l := make(map[string]string, len(labels)+1)
	for k, v := range labels {
		l[k] = v
	}
	l[HashLabel] = hash
	return &appsv1.ControllerRevision{
		ObjectMeta: metav1.ObjectMeta{
			Name:            Name(parent.GetName(), hash),
			Namespace:       parent.GetNamespace(),
			Labels:          l,
			OwnerReferences: []metav1.OwnerReference{ownership.NewControllerRef(parent, gvk)},
		},
		Data:     runtime.RawExtension{Raw: data},
		Revision: revision,
	}
}

// Equal reports whether two revisions hold the same template.
func Equal(a, b *appsv1.ControllerRevision) bool {
	if a == nil || b == nil {
		return a == b
	}
	return apiequality.Semantic.DeepEqual(a.Data.Raw, b.Data.Raw) || jsonEqual(a.Data.Raw, b.Data.Raw)
}

// jsonEqual compares revision data as JSON values, taking a template
// metadata without creationTimestamp (revisions skiff wrote before
// TemplatePatch wrote it as null) for one with null, so that those
// revisions are still found and their pods not replaced.
func jsonEqual(a, b []byte) bool {
	var x, y any
	if json.Unmarshal(a, &x) != nil || json.Unmarshal(b, &y) != nil {
		return false
	}
	return apiequality.Semantic.DeepEqual(dropNullCreationTimestamp(x), dropNullCreationTimestamp(y))
}

func dropNullCreationTimestamp(v any) any {
	spec, _ := mapAt(v, "spec")
	tmpl, _ := mapAt(spec, "template")
	if md, ok := mapAt(tmpl, "metadata"); ok {
		if ts, set := md["creationTimestamp"]; set && ts == nil {
			delete(md, "creationTimestamp")
		}
	}
	return v
}

func mapAt(v any, key string) (map[string]any, bool) {
	m, ok := v.(map[string]any)
	if !ok {
		return nil, false
	}
	child, ok := m[key].(map[string]any)
	return child, ok
}

// Sort orders revisions by Revision number, then by name.
func Sort(revs []*appsv1.ControllerRevision) {
	slices.SortFunc(revs, func(a, b *appsv1.ControllerRevision) int {
		if a.Revision != b.Revision {
			if a.Revision < b.Revision {
				return -1
			}
			return 1
		}
		if a.Name < b.Name {
			return -1
		}
		if a.Name > b.Name {
			return 1
		}
		return 0
	})
}

// Next returns the revision number after the highest in revs (1 if empty).
func Next(revs []*appsv1.ControllerRevision) int64 {
	var max int64
	for _, r := range revs {
		if r.Revision > max {
			max = r.Revision
		}
	}
	return max + 1
}

// Store writes revisions through a client.
type Store struct {
	Client kubernetes.Interface
}

// Create creates rev. If a revision of that name exists with the same data
// it is returned instead; if it exists with other data (a hash collision),
// *collisionCount is incremented and creation is retried with the new
// hash. collisionCount must not be nil.
func (s Store) Create(ctx context.Context, parent metav1.Object, gvk schema.GroupVersionKind, labels map[string]string, data []byte, revision int64, collisionCount *int32) (*appsv1.ControllerRevision, error) {
	if collisionCount == nil {
		return nil, fmt.Errorf("creating revision of %s: nil collision count", parent.GetName())
	}
	api := s.Client.AppsV1().ControllerRevisions(parent.GetNamespace())
	for {
		rev := New(parent, gvk, labels, data, revision, collisionCount)
		created, err := api.Create(ctx, rev, metav1.CreateOptions{})
		if err == nil {
			return created, nil
		}
		if !apierrors.IsAlreadyExists(err) {
			return nil, fmt.Errorf("creating revision %s: %w", rev.Name, err)
		}
		existing, gerr := api.Get(ctx, rev.Name, metav1.GetOptions{})
		if gerr != nil {
			return nil, fmt.Errorf("getting revision %s: %w", rev.Name, gerr)
		}
		if metav1.IsControlledBy(existing, parent) && Equal(existing, rev) {
			return existing, nil
		}
		*collisionCount++
	}
}

// Bump sets rev's Revision number to revision (when an older template is
// restored it becomes the newest revision again).
func (s Store) Bump(ctx context.Context, rev *appsv1.ControllerRevision, revision int64) (*appsv1.ControllerRevision, error) {
	if rev.Revision == revision {
		return rev, nil
	}
	c := rev.DeepCopy()
	c.Revision = revision
	out, err := s.Client.AppsV1().ControllerRevisions(c.Namespace).Update(ctx, c, metav1.UpdateOptions{})
	if err != nil {
		return nil, fmt.Errorf("updating revision %s: %w", c.Name, err)
	}
	return out, nil
}

// Delete deletes rev (a missing one is not an error).
func (s Store) Delete(ctx context.Context, rev *appsv1.ControllerRevision) error {
	err := s.Client.AppsV1().ControllerRevisions(rev.Namespace).Delete(ctx, rev.Name, metav1.DeleteOptions{
		Preconditions: &metav1.Preconditions{UID: &rev.UID},
	})
	if err != nil && !apierrors.IsNotFound(err) {
		return fmt.Errorf("deleting revision %s: %w", rev.Name, err)
	}
	return nil
}

// Patcher returns an ownership.Patcher for ControllerRevisions.
func (s Store) Patcher() ownership.Patcher {
	return func(ctx context.Context, ns, name string, pt types.PatchType, data []byte) error {
		_, err := s.Client.AppsV1().ControllerRevisions(ns).Patch(ctx, name, pt, data, metav1.PatchOptions{})
		return err
	}
}

// Find returns the revisions in revs equal to want, oldest first.
func Find(revs []*appsv1.ControllerRevision, want *appsv1.ControllerRevision) []*appsv1.ControllerRevision {
	var out []*appsv1.ControllerRevision
	for _, r := range revs {
		if Equal(r, want) {
			out = append(out, r)
		}
	}
	Sort(out)
	return out
}

// Sync makes the revision of tmpl the newest of parent's revisions: it
// reuses an equal revision (bumping its number if an older one is being
// restored) or creates one. It returns that revision, revs with it
// included, and the possibly incremented collision count. revs are
// parent's revisions as read from a cache; they are not modified.
func (s Store) Sync(ctx context.Context, parent metav1.Object, gvk schema.GroupVersionKind, labels map[string]string, tmpl *corev1.PodTemplateSpec, revs []*appsv1.ControllerRevision, collisionCount int32) (*appsv1.ControllerRevision, []*appsv1.ControllerRevision, int32, error) {
	data, err := TemplatePatch(tmpl)
	if err != nil {
		return nil, revs, collisionCount, err
	}
	revs = slices.Clone(revs)
	Sort(revs)
	next := Next(revs)
	probe := New(parent, gvk, labels, data, next, &collisionCount)
	if equal := Find(revs, probe); len(equal) > 0 {
		newest := equal[len(equal)-1]
		if newest == revs[len(revs)-1] {
			return newest, revs, collisionCount, nil
		}
		bumped, err := s.Bump(ctx, newest, next)
		if err != nil {
			return nil, revs, collisionCount, err
		}
		for i := range revs {
			if revs[i].Name == bumped.Name {
				revs[i] = bumped
			}
		}
		Sort(revs)
		return bumped, revs, collisionCount, nil
	}
	created, err := s.Create(ctx, parent, gvk, labels, data, next, &collisionCount)
	if err != nil {
		return nil, revs, collisionCount, err
	}
	if !slices.ContainsFunc(revs, func(r *appsv1.ControllerRevision) bool { return r.Name == created.Name }) {
		revs = append(revs, created)
	}
	Sort(revs)
	return created, revs, collisionCount, nil
}

// Truncate deletes the oldest of revs whose names are not in live until at
// most limit non-live revisions remain.
func (s Store) Truncate(ctx context.Context, revs []*appsv1.ControllerRevision, live map[string]bool, limit int) error {
	var old []*appsv1.ControllerRevision
	for _, r := range revs {
		if !live[r.Name] {
			old = append(old, r)
		}
	}
	Sort(old)
	for i := 0; i < len(old)-limit; i++ {
		if err := s.Delete(ctx, old[i]); err != nil {
			return err
		}
	}
	return nil
}
