package servicealloc

import (
	"context"
	"net/netip"
	"strconv"
	"testing"

	"github.com/google/go-cmp/cmp"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/skiff-dev/skiff/internal/etcd/etcdtest"
)

func newAllocator(t *testing.T, cidr string, portMin, portMax int) *Allocator {
	t.Helper()
	a, err := New(Config{Client: etcdtest.Start(t), Prefix: "/test/", ServiceCIDR: netip.MustParsePrefix(cidr), PortMin: portMin, PortMax: portMax})
	if err != nil {
		t.Fatal(err)
	}
	return a
}

func service(name, typ, ip string, nodePorts ...int32) *corev1.Service {
	svc := &corev1.Service{ObjectMeta: metav1.ObjectMeta{Namespace: "ns", Name: name}, Spec: corev1.ServiceSpec{Type: corev1.ServiceType(typ), ClusterIP: ip}}
	if ip != "" {
		svc.Spec.ClusterIPs = []string{ip}
	}
	for i, np := range nodePorts {
		svc.Spec.Ports = append(svc.Spec.Ports, corev1.ServicePort{Port: int32(80 + i), NodePort: np})
	}
	if len(nodePorts) == 0 {
		svc.Spec.Ports = []corev1.ServicePort{{Port: 80}}
	}
	return svc
}

func TestAllocateAndRelease(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	a := newAllocator(t, "10.96.0.0/29", 30000, 30002) // IPs .2-.6 can be handed out; 3 ports

	// Pick an IP and node ports.
	web := service("web", "NodePort", "", 0, 0)
	if _, err := a.Allocate(ctx, web, nil, false); err != nil {
		t.Fatal(err)
	}
	addr := netip.MustParseAddr(web.Spec.ClusterIP)
	if !a.cidr.Contains(addr) || addr == a.KubernetesServiceIP() || web.Spec.ClusterIPs[0] != web.Spec.ClusterIP {
		t.Errorf("picked cluster IP %v (IPs %v): want one of the range but not %v", addr, web.Spec.ClusterIPs, a.KubernetesServiceIP())
	}
	if p0, p1 := web.Spec.Ports[0].NodePort, web.Spec.Ports[1].NodePort; p0 == p1 || p0 < 30000 || p1 > 30002 || p1 < 30000 || p0 > 30002 {
		t.Errorf("picked node ports %d, %d: want two distinct ones in 30000-30002", p0, p1)
	}

	// Asking for what web holds fails with 422 naming the field.
	other := service("other", "NodePort", web.Spec.ClusterIP, web.Spec.Ports[0].NodePort)
	_, err := a.Allocate(ctx, other, nil, false)
	if !apierrors.IsInvalid(err) {
		t.Fatalf("allocating taken values: %v, want 422", err)
	}
	var fields []string
	for _, c := range err.(apierrors.APIStatus).Status().Details.Causes {
		fields = append(fields, c.Field+": "+c.Message)
	}
	want := []string{
		`spec.clusterIPs[0]: Invalid value: "` + web.Spec.ClusterIP + `": provided IP is already allocated`,
		`spec.ports[0].nodePort: Invalid value: ` + itoa(web.Spec.Ports[0].NodePort) + `: provided port is already allocated`,
	}
	if diff := cmp.Diff(want, fields); diff != "" {
		t.Errorf("causes (-want +got):\n%s", diff)
	}

	// Out of range.
	_, err = a.Allocate(ctx, service("far", "NodePort", "10.1.0.1", 80), nil, false)
	if !apierrors.IsInvalid(err) {
		t.Errorf("out-of-range values: %v, want 422", err)
	}

	// Updating web with what it holds reserves nothing new; releasing
	// after an update to ClusterIP frees the node ports.
	updated := web.DeepCopy()
	if _, err := a.Allocate(ctx, updated, web, false); err != nil {
		t.Fatalf("re-allocating what it holds: %v", err)
	}
	clusterIPOnly := web.DeepCopy()
	clusterIPOnly.Spec.Type = corev1.ServiceTypeClusterIP
	for i := range clusterIPOnly.Spec.Ports {
		clusterIPOnly.Spec.Ports[i].NodePort = 0
	}
	a.Release(ctx, web, clusterIPOnly)
	if _, err := a.Allocate(ctx, service("third", "NodePort", "", web.Spec.Ports[0].NodePort), nil, false); err != nil {
		t.Errorf("node port released by web's update is still taken: %v", err)
	}

	// Deleting frees the IP.
	a.Release(ctx, clusterIPOnly, nil)
	if _, err := a.Allocate(ctx, service("again", "ClusterIP", web.Spec.ClusterIP), nil, false); err != nil {
		t.Errorf("cluster IP released by deletion is still taken: %v", err)
	}
}

func TestAllocateUndoAndDryRun(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	a := newAllocator(t, "10.96.0.0/24", 0, 0)
	svc := service("web", "ClusterIP", "10.96.0.50")
	dry := svc.DeepCopy()
	if _, err := a.Allocate(ctx, dry, nil, true); err != nil {
		t.Fatal(err)
	}
	undo, err := a.Allocate(ctx, svc, nil, false)
	if err != nil {
		t.Fatalf("a dry run must reserve nothing: %v", err)
	}
	undo()
	if _, err := a.Allocate(ctx, service("next", "ClusterIP", "10.96.0.50"), nil, false); err != nil {
		t.Errorf("undone reservation still held: %v", err)
	}
	// A second create under the same name that fails must not undo what
	// the first one holds.
	first := service("same", "ClusterIP", "10.96.0.60")
	if _, err := a.Allocate(ctx, first, nil, false); err != nil {
		t.Fatal(err)
	}
	retry, err := a.Allocate(ctx, service("same", "ClusterIP", "10.96.0.60"), nil, false)
	if err != nil {
		t.Fatal(err)
	}
	retry()
	if _, err := a.Allocate(ctx, service("thief", "ClusterIP", "10.96.0.60"), nil, false); !apierrors.IsInvalid(err) {
		t.Errorf("undoing a failed duplicate released the first holder's IP: %v", err)
	}
	// Headless and ExternalName services hold no IP.
	for _, s := range []*corev1.Service{service("headless", "ClusterIP", corev1.ClusterIPNone), service("ext", "ExternalName", "")} {
		if _, err := a.Allocate(ctx, s, nil, false); err != nil {
			t.Errorf("%s: %v", s.Name, err)
		}
		if s.Spec.ClusterIP != "" && s.Spec.ClusterIP != corev1.ClusterIPNone {
			t.Errorf("%s got cluster IP %q", s.Name, s.Spec.ClusterIP)
		}
	}
}

func TestRangeFullAndRepair(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	a := newAllocator(t, "10.96.0.0/29", 0, 0)
	var held []corev1.Service
	for _, n := range []string{"a", "b", "c", "d", "e"} {
		s := service(n, "ClusterIP", "")
		if _, err := a.Allocate(ctx, s, nil, false); err != nil {
			t.Fatalf("allocating %s: %v", n, err)
		}
		held = append(held, *s)
	}
	if _, err := a.Allocate(ctx, service("f", "ClusterIP", ""), nil, false); !apierrors.IsInternalError(err) {
		t.Fatalf("allocating from a full range: %v, want an internal error saying it is full", err)
	}
	// Only a and b survive (the others were never written, say): repair
	// frees the rest.
	if err := a.Repair(ctx, held[:2]); err != nil {
		t.Fatal(err)
	}
	if _, err := a.Allocate(ctx, service("f", "ClusterIP", held[4].Spec.ClusterIP), nil, false); err != nil {
		t.Errorf("after repair, an IP no service holds is still taken: %v", err)
	}
	if _, err := a.Allocate(ctx, service("g", "ClusterIP", held[0].Spec.ClusterIP), nil, false); !apierrors.IsInvalid(err) {
		t.Errorf("after repair, a held IP is free: %v", err)
	}
}

func itoa(i int32) string { return strconv.Itoa(int(i)) }
