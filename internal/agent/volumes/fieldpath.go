package volumes

import (
	"context"
	"fmt"
	"math"
	"sort"
	"strconv"
	"strings"
	"sync"
	"time"

	v1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/resource"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes"
)

// formatMap renders labels or annotations as a downward API file does:
// one key="quoted value" line per key, sorted by key.
func formatMap(m map[string]string) string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	var b strings.Builder
	for i, k := range keys {
		if i > 0 {
			b.WriteByte('\n')
		}
		b.WriteString(k)
		b.WriteByte('=')
		b.WriteString(strconv.Quote(m[k]))
	}
	return b.String()
}

// subscript splits "metadata.labels['x']" into ("metadata.labels", "x").
func subscript(fieldPath string) (string, string, bool) {
	i := strings.Index(fieldPath, "['")
	if i < 0 || !strings.HasSuffix(fieldPath, "']") {
		return fieldPath, "", false
	}
	return fieldPath[:i], fieldPath[i+2 : len(fieldPath)-2], true
}

// metadataField resolves the fieldRefs on the pod's metadata, which both
// volumes and environment variables support.
func metadataField(pod *v1.Pod, fieldPath string) (string, bool, error) {
	if base, key, ok := subscript(fieldPath); ok {
		switch base {
		case "metadata.labels":
			return pod.Labels[key], true, nil
		case "metadata.annotations":
			return pod.Annotations[key], true, nil
		}
		return "", true, fmt.Errorf("unsupported fieldPath %q", fieldPath)
	}
	switch fieldPath {
	case "metadata.name":
		return pod.Name, true, nil
	case "metadata.namespace":
		return pod.Namespace, true, nil
	case "metadata.uid":
		return string(pod.UID), true, nil
	case "metadata.labels":
		return formatMap(pod.Labels), true, nil
	case "metadata.annotations":
		return formatMap(pod.Annotations), true, nil
	}
	return "", false, nil
}

// volumeFieldValue resolves a downward API volume item's fieldRef.
func volumeFieldValue(pod *v1.Pod, ref *v1.ObjectFieldSelector) (string, error) {
	v, ok, err := metadataField(pod, ref.FieldPath)
	if err != nil {
		return "", err
	}
	if !ok {
		return "", fmt.Errorf("unsupported fieldPath %q in a downward API volume", ref.FieldPath)
	}
	return v, nil
}

// envFieldValue resolves an environment variable's fieldRef. pod.Status
// must carry the pod's and the node's IPs.
func envFieldValue(pod *v1.Pod, ref *v1.ObjectFieldSelector) (string, error) {
	if _, _, ok := subscript(ref.FieldPath); !ok {
		switch ref.FieldPath {
		case "metadata.labels", "metadata.annotations":
			return "", fmt.Errorf("unsupported fieldPath %q in an environment variable", ref.FieldPath)
		}
	}
	v, ok, err := metadataField(pod, ref.FieldPath)
	if err != nil || ok {
		return v, err
	}
	switch ref.FieldPath {
	case "spec.nodeName":
		return pod.Spec.NodeName, nil
	case "spec.serviceAccountName":
		return pod.Spec.ServiceAccountName, nil
	case "status.hostIP":
		return pod.Status.HostIP, nil
	case "status.hostIPs":
		ips := make([]string, 0, len(pod.Status.HostIPs))
		for _, ip := range pod.Status.HostIPs {
			ips = append(ips, ip.IP)
		}
		if len(ips) == 0 && pod.Status.HostIP != "" {
			ips = append(ips, pod.Status.HostIP)
		}
		return strings.Join(ips, ","), nil
	case "status.podIP":
		return pod.Status.PodIP, nil
	case "status.podIPs":
		ips := make([]string, 0, len(pod.Status.PodIPs))
		for _, ip := range pod.Status.PodIPs {
			ips = append(ips, ip.IP)
		}
		if len(ips) == 0 && pod.Status.PodIP != "" {
			ips = append(ips, pod.Status.PodIP)
		}
		return strings.Join(ips, ","), nil
	}
	return "", fmt.Errorf("unsupported fieldPath %q in an environment variable", ref.FieldPath)
}

// findContainer returns the container (init or app) named name.
func findContainer(pod *v1.Pod, name string) *v1.Container {
	for i := range pod.Spec.Containers {
		if pod.Spec.Containers[i].Name == name {
			return &pod.Spec.Containers[i]
		}
	}
	for i := range pod.Spec.InitContainers {
		if pod.Spec.InitContainers[i].Name == name {
			return &pod.Spec.InitContainers[i]
		}
	}
	return nil
}

// resourceValue resolves a resourceFieldRef of container c, scaled by the
// divisor and rounded up as upstream does. A limit the container does not
// set is the node's allocatable amount.
func resourceValue(ctx context.Context, nodes *nodeCache, c *v1.Container, ref *v1.ResourceFieldSelector) (string, error) {
	divisor := ref.Divisor
	if divisor.IsZero() {
		divisor = resource.MustParse("1")
	}
	kind, name, ok := strings.Cut(ref.Resource, ".")
	if !ok || (kind != "limits" && kind != "requests") {
		return "", fmt.Errorf("unsupported resource %q", ref.Resource)
	}
	rn := v1.ResourceName(name)
	switch {
	case rn == v1.ResourceCPU, rn == v1.ResourceMemory, rn == v1.ResourceEphemeralStorage,
		strings.HasPrefix(name, v1.ResourceHugePagesPrefix):
	default:
		return "", fmt.Errorf("unsupported resource %q", ref.Resource)
	}
	var q resource.Quantity
	if kind == "limits" {
		if l, ok := c.Resources.Limits[rn]; ok {
			q = l
		} else {
			alloc, err := nodes.allocatable(ctx)
			if err != nil {
				return "", fmt.Errorf("resource %q: %w", ref.Resource, err)
			}
			q = alloc[rn]
		}
	} else {
		q = c.Resources.Requests[rn]
	}
	if rn == v1.ResourceCPU {
		if divisor.MilliValue() == 0 {
			return "", fmt.Errorf("resource %q: divisor %s is below 1m", ref.Resource, divisor.String())
		}
		return strconv.FormatInt(int64(math.Ceil(float64(q.MilliValue())/float64(divisor.MilliValue()))), 10), nil
	}
	if divisor.Value() == 0 {
		return "", fmt.Errorf("resource %q: divisor %s is below 1", ref.Resource, divisor.String())
	}
	return strconv.FormatInt(int64(math.Ceil(float64(q.Value())/float64(divisor.Value()))), 10), nil
}

// nodeCache keeps the node's allocatable resources for a minute: they
// are only needed for the resourceFieldRefs of containers without limits.
type nodeCache struct {
	client kubernetes.Interface
	name   string
	now    func() time.Time

	mu sync.Mutex
	// alloc and fetched are guarded by mu.
	alloc   v1.ResourceList
	fetched time.Time
}

const nodeCacheTTL = time.Minute

func (n *nodeCache) allocatable(ctx context.Context) (v1.ResourceList, error) {
	n.mu.Lock()
	defer n.mu.Unlock()
	if n.alloc != nil && n.now().Sub(n.fetched) < nodeCacheTTL {
		return n.alloc, nil
	}
	node, err := n.client.CoreV1().Nodes().Get(ctx, n.name, metav1.GetOptions{})
	if err != nil {
		return nil, fmt.Errorf("reading node %q for its allocatable resources: %w", n.name, err)
	}
	n.alloc = node.Status.Allocatable.DeepCopy()
	if n.alloc == nil {
		n.alloc = v1.ResourceList{}
	}
	n.fetched = n.now()
	return n.alloc, nil
}
