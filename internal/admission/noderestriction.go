package admission

import (
	"context"
	"crypto/x509"
	"encoding/pem"
	"errors"
	"fmt"
	"slices"
	"strings"

	authenticationv1 "k8s.io/api/authentication/v1"
	certificatesv1 "k8s.io/api/certificates/v1"
	coordinationv1 "k8s.io/api/coordination/v1"
	corev1 "k8s.io/api/core/v1"
	policyv1 "k8s.io/api/policy/v1"
	"k8s.io/apimachinery/pkg/api/equality"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/labels"
	"k8s.io/client-go/kubernetes"

	"github.com/skiff-dev/skiff/internal/auth"
)

// NodeLeaseNamespace holds the nodes' heartbeat Leases.
const NodeLeaseNamespace = "kube-node-lease"

// NodeRestriction limits what a node's agent (user system:node:<name> in
// group system:nodes) may write, as upstream's NodeRestriction plugin: its
// own Node object (not its taints on update, not labels under
// node-restriction.kubernetes.io/ or other kubernetes.io/k8s.io labels
// outside the kubelet's own set), mirror pods bound to itself (create) and
// pods bound to itself (delete, status without label changes, eviction),
// status of claims, its Lease in kube-node-lease and its CSINode, CSRs
// for its own name, and service account tokens bound to its pods. Requests of other users pass untouched. RBAC and the node
// authorizer decide the verbs; this plugin checks the objects.
type NodeRestriction struct {
	client kubernetes.Interface // to read pods that the request does not carry
}

var _ Validator = (*NodeRestriction)(nil)

// NewNodeRestriction returns the plugin; client reads the pod a DELETE,
// eviction or token request names when the request does not carry it.
func NewNodeRestriction(client kubernetes.Interface) *NodeRestriction {
	return &NodeRestriction{client: client}
}

// Name implements Plugin.
func (*NodeRestriction) Name() string { return "NodeRestriction" }

// nodeName returns the node a user acts for ("" and false for non-nodes).
func nodeName(u auth.User) (string, bool) {
	if !strings.HasPrefix(u.Name, auth.NodeUserPrefix) || !u.InGroup(auth.NodesGroup) {
		return "", false
	}
	return strings.TrimPrefix(u.Name, auth.NodeUserPrefix), true
}

// Validate implements Validator.
func (n *NodeRestriction) Validate(ctx context.Context, r *Request) error {
	node, ok := nodeName(r.User)
	if !ok {
		return nil
	}
	if node == "" {
		return forbidden(r, fmt.Errorf("could not determine node from user %q", r.User.Name))
	}
	switch {
	case r.Resource.Group == "" && r.Resource.Resource == "pods":
		return n.pod(ctx, node, r)
	case r.Resource.Group == "" && r.Resource.Resource == "nodes":
		return n.node(node, r)
	case r.Resource.Group == "coordination.k8s.io" && r.Resource.Resource == "leases":
		return n.lease(node, r)
	case r.Resource.Group == "certificates.k8s.io" && r.Resource.Resource == "certificatesigningrequests":
		return n.csr(node, r)
	case r.Resource.Group == "" && r.Resource.Resource == "persistentvolumeclaims":
		if r.Subresource != "status" {
			return forbidden(r, errors.New("may only update PVC status"))
		}
		return n.claimStatus(node, r)
	case r.is("", "serviceaccounts", "token"):
		return n.token(ctx, node, r)
	case r.Resource.Group == "storage.k8s.io" && r.Resource.Resource == "csinodes":
		name := r.Name
		if r.Operation == Create && r.Object != nil {
			if m, err := meta.Accessor(r.Object); err == nil {
				name = m.GetName()
			}
		}
		if name != node {
			return forbidden(r, errors.New("can only access CSINode with the same name as the requesting node"))
		}
	}
	return nil
}

// claimStatus lets a node change only a claim's status.capacity,
// conditions and allocation fields.
func (n *NodeRestriction) claimStatus(node string, r *Request) error {
	if r.Operation != Update {
		return forbidden(r, fmt.Errorf("unexpected operation %q", r.Operation))
	}
	old, ok1 := r.OldObject.(*corev1.PersistentVolumeClaim)
	cur, ok2 := r.Object.(*corev1.PersistentVolumeClaim)
	if !ok1 || !ok2 {
		return forbidden(r, fmt.Errorf("unexpected type %T", r.Object))
	}
	strip := func(c *corev1.PersistentVolumeClaim) *corev1.PersistentVolumeClaim {
		c = c.DeepCopy()
		c.ResourceVersion, c.ManagedFields = "", nil
		c.Status.Capacity, c.Status.Conditions = nil, nil
		c.Status.AllocatedResources, c.Status.AllocatedResourceStatuses = nil, nil
		return c
	}
	if !equality.Semantic.DeepEqual(strip(old), strip(cur)) {
		return forbidden(r, fmt.Errorf("node %q is not allowed to update fields other than status.capacity and status.conditions", node))
	}
	return nil
}

func (n *NodeRestriction) pod(ctx context.Context, node string, r *Request) error {
	switch r.Subresource {
	case "":
		switch r.Operation {
		case Create:
			pod, ok := r.Object.(*corev1.Pod)
			if !ok {
				return nil
			}
			return n.mirrorPodCreate(ctx, node, r, pod)
		case Delete:
			pod, err := n.existingPod(ctx, r, r.Name)
			if err != nil {
				return err
			}
			if pod.Spec.NodeName != node {
				return forbidden(r, fmt.Errorf("node %q can only delete pods with spec.nodeName set to itself", node))
			}
			return nil
		default:
			return forbidden(r, fmt.Errorf("unexpected operation %q, node %q can only create and delete mirror pods", r.Operation, node))
		}
	case "status":
		if r.Operation != Update {
			return forbidden(r, fmt.Errorf("unexpected operation %q", r.Operation))
		}
		old, ok := r.OldObject.(*corev1.Pod)
		if !ok {
			return forbidden(r, fmt.Errorf("unexpected type %T", r.OldObject))
		}
		if old.Spec.NodeName != node {
			return forbidden(r, fmt.Errorf("node %q can only update pod status for pods with spec.nodeName set to itself", node))
		}
		pod, ok := r.Object.(*corev1.Pod)
		if !ok {
			return forbidden(r, fmt.Errorf("unexpected type %T", r.Object))
		}
		if !labels.Equals(pod.Labels, old.Labels) {
			return forbidden(r, fmt.Errorf("node %q cannot update labels through pod status", node))
		}
		if !equality.Semantic.DeepEqual(pod.Status.ResourceClaimStatuses, old.Status.ResourceClaimStatuses) {
			return forbidden(r, fmt.Errorf("node %q cannot update resource claim statues", node)) // sic, upstream's text
		}
		return nil
	case "eviction":
		if r.Operation != Create {
			return forbidden(r, fmt.Errorf("unexpected operation %s", r.Operation))
		}
		name := r.Name
		if ev, ok := r.Object.(*policyv1.Eviction); ok && name == "" {
			name = ev.Name
		}
		if name == "" {
			return forbidden(r, errors.New("could not determine pod from request data"))
		}
		pod, err := n.existingPod(ctx, r, name)
		if err != nil {
			return err
		}
		if pod.Spec.NodeName != node {
			return forbidden(r, fmt.Errorf("node %s can only evict pods with spec.nodeName set to itself", node))
		}
		return nil
	default:
		return forbidden(r, fmt.Errorf("unexpected pod subresource %q, only 'status' and 'eviction' are allowed", r.Subresource))
	}
}

// existingPod is the pod a DELETE or eviction names: OldObject when the
// caller passed it, else read live.
func (n *NodeRestriction) existingPod(ctx context.Context, r *Request, name string) (*corev1.Pod, error) {
	if pod, ok := r.OldObject.(*corev1.Pod); ok {
		return pod, nil
	}
	pod, err := n.client.CoreV1().Pods(r.Namespace).Get(ctx, name, metav1.GetOptions{})
	if apierrors.IsNotFound(err) {
		return nil, err // 404, as upstream
	}
	if err != nil {
		return nil, forbidden(r, err)
	}
	return pod, nil
}

// mirrorPodCreate applies upstream's conditions on a node creating a
// pod: a mirror pod bound to and controlled by the node itself (its UID
// checked), referencing no other API object.
func (n *NodeRestriction) mirrorPodCreate(ctx context.Context, node string, r *Request, pod *corev1.Pod) error {
	if _, ok := pod.Annotations[MirrorPodAnnotation]; !ok {
		return forbidden(r, fmt.Errorf("pod does not have %q annotation, node %q can only create mirror pods", MirrorPodAnnotation, node))
	}
	if pod.Spec.NodeName != node {
		return forbidden(r, fmt.Errorf("node %q can only create pods with spec.nodeName set to itself", node))
	}
	switch len(pod.OwnerReferences) {
	case 0:
		return forbidden(r, fmt.Errorf("node %q can only create pods with an owner reference set to itself", node))
	case 1:
	default:
		return forbidden(r, fmt.Errorf("node %q can only create pods with a single owner reference set to itself", node))
	}
	owner := pod.OwnerReferences[0]
	if owner.APIVersion != "v1" || owner.Kind != "Node" || owner.Name != node {
		return forbidden(r, fmt.Errorf("node %q can only create pods with an owner reference set to itself", node))
	}
	if owner.Controller == nil || !*owner.Controller {
		return forbidden(r, fmt.Errorf("node %q can only create pods with a controller owner reference set to itself", node))
	}
	if owner.BlockOwnerDeletion != nil && *owner.BlockOwnerDeletion {
		return forbidden(r, fmt.Errorf("node %q must not set blockOwnerDeletion on an owner reference", node))
	}
	obj, err := n.client.CoreV1().Nodes().Get(ctx, node, metav1.GetOptions{})
	if apierrors.IsNotFound(err) {
		return err
	}
	if err != nil {
		return forbidden(r, fmt.Errorf("error looking up node %s to verify uid: %w", node, err))
	}
	if owner.UID != obj.UID {
		return forbidden(r, fmt.Errorf("node %s UID mismatch: expected %s got %s", node, owner.UID, obj.UID))
	}
	if pod.Spec.ServiceAccountName != "" {
		return forbidden(r, fmt.Errorf("node %q can not create pods that reference a service account", node))
	}
	if referencesSecrets(pod) {
		return forbidden(r, fmt.Errorf("node %q can not create pods that reference secrets", node))
	}
	if referencesConfigMaps(pod) {
		return forbidden(r, fmt.Errorf("node %q can not create pods that reference configmaps", node))
	}
	for _, v := range pod.Spec.Volumes {
		if v.Projected == nil {
			continue
		}
		for _, s := range v.Projected.Sources {
			if s.ClusterTrustBundle != nil {
				return forbidden(r, fmt.Errorf("node %q can not create pods that reference clustertrustbundles", node))
			}
		}
	}
	for _, v := range pod.Spec.Volumes {
		if v.PersistentVolumeClaim != nil {
			return forbidden(r, fmt.Errorf("node %q can not create pods that reference persistentvolumeclaims", node))
		}
	}
	return nil
}

func (n *NodeRestriction) node(node string, r *Request) error {
	name := r.Name
	if name == "" && r.Object != nil {
		if obj, ok := r.Object.(*corev1.Node); ok {
			name = obj.Name
		}
	}
	if name != node {
		return forbidden(r, fmt.Errorf("node %q is not allowed to modify node %q", node, name))
	}
	obj, _ := r.Object.(*corev1.Node)
	switch r.Operation {
	case Create:
		if obj == nil {
			return nil
		}
		if obj.Spec.ConfigSource != nil {
			return forbidden(r, fmt.Errorf("node %q is not allowed to create pods with a non-nil configSource", node)) // sic
		}
		if bad := forbiddenNodeLabels(modifiedLabels(obj.Labels, nil)); len(bad) > 0 {
			return forbidden(r, fmt.Errorf("node %q is not allowed to set the following labels: %s", node, strings.Join(bad, ", ")))
		}
	case Update:
		old, _ := r.OldObject.(*corev1.Node)
		if obj == nil || old == nil {
			return nil
		}
		if obj.Spec.ConfigSource != nil && !equality.Semantic.DeepEqual(obj.Spec.ConfigSource, old.Spec.ConfigSource) {
			return forbidden(r, fmt.Errorf("node %q is not allowed to update configSource to a new non-nil configSource", node))
		}
		if !equality.Semantic.DeepEqual(obj.Spec.Taints, old.Spec.Taints) {
			return forbidden(r, fmt.Errorf("node %q is not allowed to modify taints", node))
		}
		if bad := forbiddenNodeLabels(modifiedLabels(obj.Labels, old.Labels)); len(bad) > 0 {
			return forbidden(r, fmt.Errorf("is not allowed to modify labels: %s", strings.Join(bad, ", ")))
		}
	}
	return nil
}

// modifiedLabels returns the keys added, removed or changed.
func modifiedLabels(a, b map[string]string) []string {
	var out []string
	for k, v := range a {
		if w, ok := b[k]; !ok || w != v {
			out = append(out, k)
		}
	}
	for k := range b {
		if _, ok := a[k]; !ok {
			out = append(out, k)
		}
	}
	slices.Sort(out)
	return out
}

// kubeletLabels are the kubernetes.io/k8s.io labels a node may set on
// itself, as upstream's kubelet label allow list.
func kubeletLabel(key string) bool {
	switch key {
	case "kubernetes.io/hostname", "kubernetes.io/arch", "kubernetes.io/os",
		"beta.kubernetes.io/arch", "beta.kubernetes.io/os", "beta.kubernetes.io/instance-type",
		"node.kubernetes.io/instance-type",
		"failure-domain.beta.kubernetes.io/zone", "failure-domain.beta.kubernetes.io/region",
		"topology.kubernetes.io/zone", "topology.kubernetes.io/region":
		return true
	}
	ns, _, _ := strings.Cut(key, "/")
	return ns == "kubelet.kubernetes.io" || strings.HasSuffix(ns, ".kubelet.kubernetes.io") ||
		ns == "node.kubernetes.io" || strings.HasSuffix(ns, ".node.kubernetes.io")
}

// forbiddenNodeLabels keeps the keys a node may not set or change: those
// under node-restriction.kubernetes.io/, and other kubernetes.io and
// k8s.io labels outside the kubelet's set.
func forbiddenNodeLabels(keys []string) []string {
	var out []string
	for _, k := range keys {
		ns, _, found := strings.Cut(k, "/")
		if !found {
			continue
		}
		if ns == "node-restriction.kubernetes.io" || strings.HasSuffix(ns, ".node-restriction.kubernetes.io") {
			out = append(out, k)
			continue
		}
		isKube := ns == "kubernetes.io" || strings.HasSuffix(ns, ".kubernetes.io") || ns == "k8s.io" || strings.HasSuffix(ns, ".k8s.io")
		if isKube && !kubeletLabel(k) {
			out = append(out, k)
		}
	}
	return out
}

func (n *NodeRestriction) lease(node string, r *Request) error {
	if r.Namespace != NodeLeaseNamespace {
		return forbidden(r, fmt.Errorf("can only access leases in the %q system namespace", NodeLeaseNamespace))
	}
	name := r.Name
	if r.Operation == Create {
		if l, ok := r.Object.(*coordinationv1.Lease); ok {
			name = l.Name
		}
	}
	if name != node {
		return forbidden(r, errors.New("can only access node lease with the same name as the requesting node"))
	}
	return nil
}

// csr: a node may request kubelet client or serving certificates only for
// its own name (other signers are the signer's and approver's business).
func (n *NodeRestriction) csr(node string, r *Request) error {
	if r.Operation != Create {
		return nil
	}
	csr, ok := r.Object.(*certificatesv1.CertificateSigningRequest)
	if !ok {
		return nil
	}
	if csr.Spec.SignerName != certificatesv1.KubeletServingSignerName && csr.Spec.SignerName != certificatesv1.KubeAPIServerClientKubeletSignerName {
		return nil
	}
	block, _ := pem.Decode(csr.Spec.Request)
	if block == nil || block.Type != "CERTIFICATE REQUEST" {
		return forbidden(r, errors.New("unable to parse csr: PEM block type must be CERTIFICATE REQUEST"))
	}
	x, err := x509.ParseCertificateRequest(block.Bytes)
	if err != nil {
		return forbidden(r, fmt.Errorf("unable to parse csr: %w", err))
	}
	if want := auth.NodeUserPrefix + node; x.Subject.CommonName != want {
		return forbidden(r, fmt.Errorf("can only create a node CSR with CN=%s", want))
	}
	return nil
}

// token: a node may mint service account tokens only bound to a pod that
// runs on it.
func (n *NodeRestriction) token(ctx context.Context, node string, r *Request) error {
	if r.Operation != Create {
		return nil
	}
	tr, ok := r.Object.(*authenticationv1.TokenRequest)
	if !ok {
		return nil
	}
	ref := tr.Spec.BoundObjectRef
	if ref == nil || ref.APIVersion != "v1" || ref.Kind != "Pod" || ref.Name == "" {
		return forbidden(r, errors.New("node requested token not bound to a pod"))
	}
	if ref.UID == "" {
		return forbidden(r, errors.New("node requested token with a pod binding without a uid"))
	}
	pod, err := n.client.CoreV1().Pods(r.Namespace).Get(ctx, ref.Name, metav1.GetOptions{})
	if apierrors.IsNotFound(err) {
		return err
	}
	if err != nil {
		return forbidden(r, err)
	}
	if ref.UID != pod.UID {
		return forbidden(r, fmt.Errorf("the UID in the bound object reference (%s) does not match the UID in record. The object might have been deleted and then recreated", ref.UID))
	}
	if pod.Spec.NodeName != node {
		return forbidden(r, errors.New("node requested token bound to a pod scheduled on a different node"))
	}
	return nil
}
