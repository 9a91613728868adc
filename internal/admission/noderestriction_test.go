package admission

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"testing"

	"github.com/google/go-cmp/cmp"
	authenticationv1 "k8s.io/api/authentication/v1"
	certificatesv1 "k8s.io/api/certificates/v1"
	coordinationv1 "k8s.io/api/coordination/v1"
	corev1 "k8s.io/api/core/v1"
	policyv1 "k8s.io/api/policy/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"

	"github.com/skiff-dev/skiff/internal/auth"
)

func nodeUser(name string) auth.User {
	return auth.User{Name: auth.NodeUserPrefix + name, Groups: []string{auth.NodesGroup, auth.AllAuthenticated}}
}

func mirrorPod(node string) *corev1.Pod {
	p := testPod("static-" + node)
	p.Annotations = map[string]string{MirrorPodAnnotation: "hash"}
	p.Spec.NodeName = node
	p.OwnerReferences = []metav1.OwnerReference{{APIVersion: "v1", Kind: "Node", Name: node, UID: "u", Controller: ptr(true)}}
	return p
}

func boundPod(name, node string) *corev1.Pod {
	p := testPod(name)
	p.UID = types.UID("uid-" + name)
	p.Spec.NodeName = node
	return p
}

func csrFor(t *testing.T, cn, signer string) *certificatesv1.CertificateSigningRequest {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	der, err := x509.CreateCertificateRequest(rand.Reader, &x509.CertificateRequest{Subject: pkix.Name{CommonName: cn, Organization: []string{auth.NodesGroup}}}, key)
	if err != nil {
		t.Fatal(err)
	}
	return &certificatesv1.CertificateSigningRequest{
		ObjectMeta: metav1.ObjectMeta{Name: "csr"},
		Spec: certificatesv1.CertificateSigningRequestSpec{
			Request:    pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE REQUEST", Bytes: der}),
			SignerName: signer,
		},
	}
}

func TestNodeRestriction(t *testing.T) {
	t.Parallel()
	withLabels := func(n *corev1.Node, l map[string]string) *corev1.Node {
		n = n.DeepCopy()
		n.Labels = l
		return n
	}
	node1 := &corev1.Node{ObjectMeta: metav1.ObjectMeta{Name: "n1", Labels: map[string]string{"kubernetes.io/hostname": "n1"}}}
	tainted := node1.DeepCopy()
	tainted.Spec.Taints = []corev1.Taint{{Key: "k", Effect: corev1.TaintEffectNoSchedule}}
	badOwner := mirrorPod("n1")
	badOwner.OwnerReferences[0].Name = "n2"
	secretMirror := mirrorPod("n1")
	secretMirror.Spec.Volumes = []corev1.Volume{{Name: "s", VolumeSource: corev1.VolumeSource{Secret: &corev1.SecretVolumeSource{SecretName: "s"}}}}
	otherMirror := mirrorPod("n1")
	otherMirror.Spec.NodeName = "n2"

	tests := []struct {
		name    string
		user    auth.User
		req     *Request
		wantErr string
	}{
		{
			name: "non-node users are not restricted",
			user: auth.User{Name: "alice"},
			req:  &Request{Operation: Create, Namespace: "ns", Name: "p", Resource: gvr("", "pods"), Object: testPod("p")},
		},
		{
			name: "mirror pod bound to itself",
			req:  &Request{Operation: Create, Namespace: "ns", Name: "static-n1", Resource: gvr("", "pods"), Object: mirrorPod("n1")},
		},
		{
			name:    "regular pod",
			req:     &Request{Operation: Create, Namespace: "ns", Name: "p", Resource: gvr("", "pods"), Object: testPod("p")},
			wantErr: `403 pods "p" is forbidden: pod does not have "kubernetes.io/config.mirror" annotation, node "n1" can only create mirror pods`,
		},
		{
			name:    "mirror pod bound elsewhere",
			req:     &Request{Operation: Create, Namespace: "ns", Name: "static-n1", Resource: gvr("", "pods"), Object: otherMirror},
			wantErr: `403 pods "static-n1" is forbidden: node "n1" can only create pods with spec.nodeName set to itself`,
		},
		{
			name:    "mirror pod owned by another node",
			req:     &Request{Operation: Create, Namespace: "ns", Name: "static-n1", Resource: gvr("", "pods"), Object: badOwner},
			wantErr: `403 pods "static-n1" is forbidden: node "n1" can only create pods with an owner reference set to itself`,
		},
		{
			name:    "mirror pod with a secret",
			req:     &Request{Operation: Create, Namespace: "ns", Name: "static-n1", Resource: gvr("", "pods"), Object: secretMirror},
			wantErr: `403 pods "static-n1" is forbidden: node "n1" can not create pods that reference secrets`,
		},
		{
			name:    "mirror pod owned by a previous incarnation of the node",
			req:     &Request{Operation: Create, Namespace: "ns", Name: "static-n1", Resource: gvr("", "pods"), Object: func() *corev1.Pod { p := mirrorPod("n1"); p.OwnerReferences[0].UID = "old"; return p }()},
			wantErr: `403 pods "static-n1" is forbidden: node n1 UID mismatch: expected old got u`,
		},
		{
			name:    "delete a missing pod is 404",
			req:     &Request{Operation: Delete, Namespace: "ns", Name: "gone", Resource: gvr("", "pods")},
			wantErr: `404 pods "gone" not found`,
		},
		{
			name: "status update may not relabel",
			req: &Request{Operation: Update, Namespace: "ns", Name: "mine", Resource: gvr("", "pods"), Subresource: "status",
				Object: func() *corev1.Pod { p := boundPod("mine", "n1"); p.Labels = map[string]string{"role": "db"}; return p }(), OldObject: boundPod("mine", "n1")},
			wantErr: `403 pods "mine" is forbidden: node "n1" cannot update labels through pod status`,
		},
		{
			name: "claim status capacity",
			req: &Request{Operation: Update, Namespace: "ns", Name: "data", Resource: gvr("", "persistentvolumeclaims"), Subresource: "status",
				Object:    &corev1.PersistentVolumeClaim{Status: corev1.PersistentVolumeClaimStatus{Capacity: rl("storage", "2Gi")}},
				OldObject: &corev1.PersistentVolumeClaim{Status: corev1.PersistentVolumeClaimStatus{Capacity: rl("storage", "1Gi")}}},
		},
		{
			name: "claim status phase",
			req: &Request{Operation: Update, Namespace: "ns", Name: "data", Resource: gvr("", "persistentvolumeclaims"), Subresource: "status",
				Object:    &corev1.PersistentVolumeClaim{Status: corev1.PersistentVolumeClaimStatus{Phase: corev1.ClaimLost}},
				OldObject: &corev1.PersistentVolumeClaim{}},
			wantErr: `403 persistentvolumeclaims "data" is forbidden: node "n1" is not allowed to update fields other than status.capacity and status.conditions`,
		},
		{
			name:    "claim spec",
			req:     &Request{Operation: Update, Namespace: "ns", Name: "data", Resource: gvr("", "persistentvolumeclaims"), Object: &corev1.PersistentVolumeClaim{}, OldObject: &corev1.PersistentVolumeClaim{}},
			wantErr: `403 persistentvolumeclaims "data" is forbidden: may only update PVC status`,
		},
		{
			name:    "other CSINode",
			req:     &Request{Operation: Update, Name: "n2", Resource: gvr("storage.k8s.io", "csinodes"), Object: &corev1.Node{}},
			wantErr: `403 csinodes.storage.k8s.io "n2" is forbidden: can only access CSINode with the same name as the requesting node`,
		},
		{
			name: "delete own pod",
			req:  &Request{Operation: Delete, Namespace: "ns", Name: "mine", Resource: gvr("", "pods"), OldObject: boundPod("mine", "n1")},
		},
		{
			name:    "delete other node's pod (read live)",
			req:     &Request{Operation: Delete, Namespace: "ns", Name: "theirs", Resource: gvr("", "pods")},
			wantErr: `403 pods "theirs" is forbidden: node "n1" can only delete pods with spec.nodeName set to itself`,
		},
		{
			name:    "update pod spec",
			req:     &Request{Operation: Update, Namespace: "ns", Name: "mine", Resource: gvr("", "pods"), Object: boundPod("mine", "n1"), OldObject: boundPod("mine", "n1")},
			wantErr: `403 pods "mine" is forbidden: unexpected operation "UPDATE", node "n1" can only create and delete mirror pods`,
		},
		{
			name: "status of own pod",
			req:  &Request{Operation: Update, Namespace: "ns", Name: "mine", Resource: gvr("", "pods"), Subresource: "status", Object: boundPod("mine", "n1"), OldObject: boundPod("mine", "n1")},
		},
		{
			name:    "status of other node's pod",
			req:     &Request{Operation: Update, Namespace: "ns", Name: "theirs", Resource: gvr("", "pods"), Subresource: "status", Object: boundPod("theirs", "n2"), OldObject: boundPod("theirs", "n2")},
			wantErr: `403 pods "theirs" is forbidden: node "n1" can only update pod status for pods with spec.nodeName set to itself`,
		},
		{
			name:    "evict other node's pod",
			req:     &Request{Operation: Create, Namespace: "ns", Name: "theirs", Resource: gvr("", "pods"), Subresource: "eviction", Object: &policyv1.Eviction{}},
			wantErr: `403 pods "theirs" is forbidden: node n1 can only evict pods with spec.nodeName set to itself`,
		},
		{
			name: "evict own pod",
			req:  &Request{Operation: Create, Namespace: "ns", Name: "mine", Resource: gvr("", "pods"), Subresource: "eviction", Object: &policyv1.Eviction{}},
		},
		{
			name:    "exec",
			req:     &Request{Operation: Connect, Namespace: "ns", Name: "mine", Resource: gvr("", "pods"), Subresource: "exec"},
			wantErr: `403 pods "mine" is forbidden: unexpected pod subresource "exec", only 'status' and 'eviction' are allowed`,
		},
		{
			name: "register itself",
			req:  &Request{Operation: Create, Name: "", Resource: gvr("", "nodes"), Object: node1},
		},
		{
			name:    "another node",
			req:     &Request{Operation: Update, Name: "n2", Resource: gvr("", "nodes"), Subresource: "status", Object: node1, OldObject: node1},
			wantErr: `403 nodes "n2" is forbidden: node "n1" is not allowed to modify node "n2"`,
		},
		{
			name:    "register with a restricted label",
			req:     &Request{Operation: Create, Name: "n1", Resource: gvr("", "nodes"), Object: withLabels(node1, map[string]string{"node-restriction.kubernetes.io/pool": "a", "node-role.kubernetes.io/control-plane": "", "example.com/x": "y", "topology.kubernetes.io/zone": "z"})},
			wantErr: `403 nodes "n1" is forbidden: node "n1" is not allowed to set the following labels: node-restriction.kubernetes.io/pool, node-role.kubernetes.io/control-plane`,
		},
		{
			name:    "change taints",
			req:     &Request{Operation: Update, Name: "n1", Resource: gvr("", "nodes"), Object: tainted, OldObject: node1},
			wantErr: `403 nodes "n1" is forbidden: node "n1" is not allowed to modify taints`,
		},
		{
			name:    "remove a restricted label",
			req:     &Request{Operation: Update, Name: "n1", Resource: gvr("", "nodes"), Object: node1, OldObject: withLabels(node1, map[string]string{"kubernetes.io/hostname": "n1", "node-restriction.kubernetes.io/pool": "a"})},
			wantErr: `403 nodes "n1" is forbidden: is not allowed to modify labels: node-restriction.kubernetes.io/pool`,
		},
		{
			name: "kubelet labels may change",
			req:  &Request{Operation: Update, Name: "n1", Resource: gvr("", "nodes"), Object: withLabels(node1, map[string]string{"kubernetes.io/hostname": "n1", "kubernetes.io/arch": "arm64", "node.kubernetes.io/exclude-from-external-load-balancers": ""}), OldObject: node1},
		},
		{
			name: "own lease",
			req:  &Request{Operation: Create, Namespace: NodeLeaseNamespace, Resource: gvr("coordination.k8s.io", "leases"), Object: &coordinationv1.Lease{ObjectMeta: metav1.ObjectMeta{Name: "n1"}}},
		},
		{
			name:    "other lease",
			req:     &Request{Operation: Update, Namespace: NodeLeaseNamespace, Name: "n2", Resource: gvr("coordination.k8s.io", "leases"), Object: &coordinationv1.Lease{}},
			wantErr: `403 leases.coordination.k8s.io "n2" is forbidden: can only access node lease with the same name as the requesting node`,
		},
		{
			name:    "lease elsewhere",
			req:     &Request{Operation: Update, Namespace: "default", Name: "n1", Resource: gvr("coordination.k8s.io", "leases"), Object: &coordinationv1.Lease{}},
			wantErr: `403 leases.coordination.k8s.io "n1" is forbidden: can only access leases in the "kube-node-lease" system namespace`,
		},
		{
			name: "own client CSR",
			req:  &Request{Operation: Create, Resource: gvr("certificates.k8s.io", "certificatesigningrequests"), Object: csrFor(t, "system:node:n1", certificatesv1.KubeAPIServerClientKubeletSignerName)},
		},
		{
			name:    "CSR for another node",
			req:     &Request{Operation: Create, Resource: gvr("certificates.k8s.io", "certificatesigningrequests"), Object: csrFor(t, "system:node:n2", certificatesv1.KubeletServingSignerName)},
			wantErr: `403 certificatesigningrequests.certificates.k8s.io "csr" is forbidden: can only create a node CSR with CN=system:node:n1`,
		},
		{
			name: "token for own pod",
			req: &Request{Operation: Create, Namespace: "ns", Name: "default", Resource: gvr("", "serviceaccounts"), Subresource: "token",
				Object: &authenticationv1.TokenRequest{Spec: authenticationv1.TokenRequestSpec{BoundObjectRef: &authenticationv1.BoundObjectReference{APIVersion: "v1", Kind: "Pod", Name: "mine", UID: "uid-mine"}}}},
		},
		{
			name: "token for other node's pod",
			req: &Request{Operation: Create, Namespace: "ns", Name: "default", Resource: gvr("", "serviceaccounts"), Subresource: "token",
				Object: &authenticationv1.TokenRequest{Spec: authenticationv1.TokenRequestSpec{BoundObjectRef: &authenticationv1.BoundObjectReference{APIVersion: "v1", Kind: "Pod", Name: "theirs", UID: "uid-theirs"}}}},
			wantErr: `403 serviceaccounts "default" is forbidden: node requested token bound to a pod scheduled on a different node`,
		},
		{
			name: "token without pod uid",
			req: &Request{Operation: Create, Namespace: "ns", Name: "default", Resource: gvr("", "serviceaccounts"), Subresource: "token",
				Object: &authenticationv1.TokenRequest{Spec: authenticationv1.TokenRequestSpec{BoundObjectRef: &authenticationv1.BoundObjectReference{APIVersion: "v1", Kind: "Pod", Name: "mine"}}}},
			wantErr: `403 serviceaccounts "default" is forbidden: node requested token with a pod binding without a uid`,
		},
		{
			name: "unbound token",
			req: &Request{Operation: Create, Namespace: "ns", Name: "default", Resource: gvr("", "serviceaccounts"), Subresource: "token",
				Object: &authenticationv1.TokenRequest{}},
			wantErr: `403 serviceaccounts "default" is forbidden: node requested token not bound to a pod`,
		},
	}
	client := newClient(boundPod("mine", "n1"), boundPod("theirs", "n2"), &corev1.Node{ObjectMeta: metav1.ObjectMeta{Name: "n1", UID: "u"}})
	plugin := NewNodeRestriction(client)
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			tt.req.User = tt.user
			if tt.user.Name == "" {
				tt.req.User = nodeUser("n1")
			}
			err := NewChain(plugin).Admit(context.Background(), tt.req)
			if diff := cmp.Diff(tt.wantErr, errText(t, err)); diff != "" {
				t.Errorf("error (-want +got):\n%s", diff)
			}
		})
	}
}
