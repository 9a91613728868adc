package deployment

import (
	"encoding/json"
	"fmt"
	"hash/fnv"
	"sort"
	"strconv"

	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	apiequality "k8s.io/apimachinery/pkg/api/equality"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/util/rand"
)

// This file holds the pure arithmetic over a deployment's replica sets:
// hashing templates, telling the new replica set from the old ones,
// counting, and the orders upstream sorts them in. Nothing here does I/O.

// ComputeHash returns the pod-template-hash of template: an FNV-32a hash of
// its JSON encoding (deterministic: struct fields in order, map keys
// sorted) followed, when collisionCount is not nil, by the count's four
// little-endian bytes, rendered with rand.SafeEncodeString as upstream does.
// The value is stable for a given template and collision count; it is not
// byte-for-byte upstream's (which hashes a spew dump), and need not be.
func ComputeHash(template *corev1.PodTemplateSpec, collisionCount *int32) string {
	h := fnv.New32a()
	data, err := json.Marshal(template)
	if err != nil {
		// A PodTemplateSpec always encodes; keep the hash defined anyway.
		data = fmt.Appendf(nil, "%#v", template)
	}
	h.Write(data)
	if collisionCount != nil {
		c := uint32(*collisionCount)
		h.Write([]byte{byte(c), byte(c >> 8), byte(c >> 16), byte(c >> 24)})
	}
	return rand.SafeEncodeString(fmt.Sprint(h.Sum32()))
}

// equalIgnoreHash reports whether two pod templates are semantically equal
// once the pod-template-hash label is removed from both.
func equalIgnoreHash(a, b *corev1.PodTemplateSpec) bool {
	a, b = a.DeepCopy(), b.DeepCopy()
	delete(a.Labels, appsv1.DefaultDeploymentUniqueLabelKey)
	delete(b.Labels, appsv1.DefaultDeploymentUniqueLabelKey)
	if len(a.Labels) == 0 {
		a.Labels = nil
	}
	if len(b.Labels) == 0 {
		b.Labels = nil
	}
	return apiequality.Semantic.DeepEqual(a, b)
}

// findNewReplicaSet returns the oldest replica set whose template equals
// the deployment's (ignoring the hash label), or nil.
func findNewReplicaSet(d *appsv1.Deployment, rsList []*appsv1.ReplicaSet) *appsv1.ReplicaSet {
	sorted := append([]*appsv1.ReplicaSet(nil), rsList...)
	sort.Sort(byCreationTimestamp(sorted))
	for _, rs := range sorted {
		if equalIgnoreHash(&rs.Spec.Template, &d.Spec.Template) {
			return rs
		}
	}
	return nil
}

// findOldReplicaSets returns every replica set of rsList but the new one.
func findOldReplicaSets(d *appsv1.Deployment, rsList []*appsv1.ReplicaSet) []*appsv1.ReplicaSet {
	newRS := findNewReplicaSet(d, rsList)
	var old []*appsv1.ReplicaSet
	for _, rs := range rsList {
		if newRS != nil && rs.UID == newRS.UID {
			continue
		}
		old = append(old, rs)
	}
	return old
}

// replicas returns *rs.Spec.Replicas, treating nil as 1 as the API does.
func replicas(rs *appsv1.ReplicaSet) int32 {
	if rs == nil {
		return 0
	}
	if rs.Spec.Replicas == nil {
		return 1
	}
	return *rs.Spec.Replicas
}

// desiredReplicas is the deployment's spec.replicas (1 when unset).
func desiredReplicas(d *appsv1.Deployment) int32 {
	if d.Spec.Replicas == nil {
		return 1
	}
	return *d.Spec.Replicas
}

// activeReplicaSets returns the non-nil replica sets with replicas > 0.
func activeReplicaSets(rss []*appsv1.ReplicaSet) []*appsv1.ReplicaSet {
	var out []*appsv1.ReplicaSet
	for _, rs := range rss {
		if rs != nil && replicas(rs) > 0 {
			out = append(out, rs)
		}
	}
	return out
}

// specReplicas sums spec.replicas; nil entries count zero.
func specReplicas(rss []*appsv1.ReplicaSet) int32 {
	var n int32
	for _, rs := range rss {
		if rs != nil {
			n += replicas(rs)
		}
	}
	return n
}

// statusSum sums a field of the replica sets' status; nil entries count zero.
func statusSum(rss []*appsv1.ReplicaSet, field func(*appsv1.ReplicaSetStatus) int32) int32 {
	var n int32
	for _, rs := range rss {
		if rs != nil {
			n += field(&rs.Status)
		}
	}
	return n
}

func actualReplicas(rss []*appsv1.ReplicaSet) int32 {
	return statusSum(rss, func(s *appsv1.ReplicaSetStatus) int32 { return s.Replicas })
}

func readyReplicas(rss []*appsv1.ReplicaSet) int32 {
	return statusSum(rss, func(s *appsv1.ReplicaSetStatus) int32 { return s.ReadyReplicas })
}

func availableReplicas(rss []*appsv1.ReplicaSet) int32 {
	return statusSum(rss, func(s *appsv1.ReplicaSetStatus) int32 { return s.AvailableReplicas })
}

// revision parses the revision annotation of obj; absent or malformed is 0.
func revision(obj metav1.Object) int64 {
	v, err := strconv.ParseInt(obj.GetAnnotations()[RevisionAnnotation], 10, 64)
	if err != nil {
		return 0
	}
	return v
}

// maxRevision is the highest revision among rss.
func maxRevision(rss []*appsv1.ReplicaSet) int64 {
	var m int64
	for _, rs := range rss {
		if rs != nil {
			m = max(m, revision(rs))
		}
	}
	return m
}

// byCreationTimestamp orders oldest first, then by name.
type byCreationTimestamp []*appsv1.ReplicaSet

func (o byCreationTimestamp) Len() int      { return len(o) }
func (o byCreationTimestamp) Swap(i, j int) { o[i], o[j] = o[j], o[i] }
func (o byCreationTimestamp) Less(i, j int) bool {
	if o[i].CreationTimestamp.Equal(&o[j].CreationTimestamp) {
		return o[i].Name < o[j].Name
	}
	return o[i].CreationTimestamp.Before(&o[j].CreationTimestamp)
}

// byRevision orders lowest revision first, then oldest.
type byRevision []*appsv1.ReplicaSet

func (o byRevision) Len() int      { return len(o) }
func (o byRevision) Swap(i, j int) { o[i], o[j] = o[j], o[i] }
func (o byRevision) Less(i, j int) bool {
	ri, rj := revision(o[i]), revision(o[j])
	if ri == rj {
		return byCreationTimestamp(o).Less(i, j)
	}
	return ri < rj
}

// bySizeOlder orders largest first, ties oldest first (for scaling down).
type bySizeOlder []*appsv1.ReplicaSet

func (o bySizeOlder) Len() int      { return len(o) }
func (o bySizeOlder) Swap(i, j int) { o[i], o[j] = o[j], o[i] }
func (o bySizeOlder) Less(i, j int) bool {
	if replicas(o[i]) == replicas(o[j]) {
		return byCreationTimestamp(o).Less(i, j)
	}
	return replicas(o[i]) > replicas(o[j])
}

// bySizeNewer orders largest first, ties newest first (for scaling up).
type bySizeNewer []*appsv1.ReplicaSet

func (o bySizeNewer) Len() int      { return len(o) }
func (o bySizeNewer) Swap(i, j int) { o[i], o[j] = o[j], o[i] }
func (o bySizeNewer) Less(i, j int) bool {
	if replicas(o[i]) == replicas(o[j]) {
		return byCreationTimestamp(o).Less(j, i)
	}
	return replicas(o[i]) > replicas(o[j])
}
