package endpointslicemirroring_test

import (
	"context"
	"fmt"
	"testing"

	corev1 "k8s.io/api/core/v1"
	discovery "k8s.io/api/discovery/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/rest"

	"github.com/skiff-dev/skiff/internal/controller"
	"github.com/skiff-dev/skiff/internal/controller/controllertest"
	"github.com/skiff-dev/skiff/internal/controller/endpointslicemirroring"
)

func mirrored(ctx context.Context, cs kubernetes.Interface, name string) ([]discovery.EndpointSlice, error) {
	l, err := cs.DiscoveryV1().EndpointSlices("default").List(ctx, metav1.ListOptions{
		LabelSelector: discovery.LabelServiceName + "=" + name + "," + discovery.LabelManagedBy + "=" + endpointslicemirroring.ManagedBy,
	})
	if err != nil {
		return nil, err
	}
	return l.Items, nil
}

// TestMirroring: the Endpoints of a selector-less Service become slices
// that follow them, and go when the Endpoints ask not to be mirrored.
func TestMirroring(t *testing.T) {
	cs, _ := controllertest.Run(t, 2, func(deps controller.Deps, _ *rest.Config) (controllertest.Runner, error) {
		return endpointslicemirroring.New(deps), nil
	})
	ctx := context.Background()
	// A Service with a selector is the endpointslice controller's: its
	// Endpoints (written before db's) are never mirrored.
	if _, err := cs.CoreV1().Services("default").Create(ctx, &corev1.Service{
		ObjectMeta: metav1.ObjectMeta{Name: "web"},
		Spec:       corev1.ServiceSpec{Selector: map[string]string{"app": "web"}, Ports: []corev1.ServicePort{{Port: 80}}},
	}, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	if _, err := cs.CoreV1().Endpoints("default").Create(ctx, &corev1.Endpoints{
		ObjectMeta: metav1.ObjectMeta{Name: "web"},
		Subsets:    []corev1.EndpointSubset{{Addresses: []corev1.EndpointAddress{{IP: "192.0.2.30"}}, Ports: []corev1.EndpointPort{{Port: 80}}}},
	}, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	if _, err := cs.CoreV1().Services("default").Create(ctx, &corev1.Service{
		ObjectMeta: metav1.ObjectMeta{Name: "db"},
		Spec:       corev1.ServiceSpec{Ports: []corev1.ServicePort{{Name: "pg", Port: 5432}}},
	}, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	ep := &corev1.Endpoints{
		ObjectMeta: metav1.ObjectMeta{Name: "db", Labels: map[string]string{"team": "data"}},
		Subsets: []corev1.EndpointSubset{{
			Addresses:         []corev1.EndpointAddress{{IP: "192.0.2.10"}, {IP: "2001:db8::10"}},
			NotReadyAddresses: []corev1.EndpointAddress{{IP: "192.0.2.11"}},
			Ports:             []corev1.EndpointPort{{Name: "pg", Port: 5432, Protocol: corev1.ProtocolTCP}},
		}},
	}
	created, err := cs.CoreV1().Endpoints("default").Create(ctx, ep, metav1.CreateOptions{})
	if err != nil {
		t.Fatal(err)
	}
	controllertest.Eventually(t, func() error {
		items, err := mirrored(ctx, cs, "db")
		if err != nil {
			return err
		}
		got := map[discovery.AddressType]string{}
		for _, s := range items {
			var eps []string
			for _, e := range s.Endpoints {
				eps = append(eps, fmt.Sprintf("%s ready=%v", e.Addresses[0], *e.Conditions.Ready))
			}
			got[s.AddressType] = fmt.Sprintf("%v port %s:%d team=%s owner=%s", eps, *s.Ports[0].Name, *s.Ports[0].Port, s.Labels["team"], s.OwnerReferences[0].Name)
		}
		want := map[discovery.AddressType]string{
			discovery.AddressTypeIPv4: "[192.0.2.10 ready=true 192.0.2.11 ready=false] port pg:5432 team=data owner=db",
			discovery.AddressTypeIPv6: "[2001:db8::10 ready=true] port pg:5432 team=data owner=db",
		}
		if fmt.Sprint(got) != fmt.Sprint(want) {
			return fmt.Errorf("mirrored slices %v, want %v", got, want)
		}
		return nil
	})

	// An update of the Endpoints reaches the slice.
	created.Subsets = []corev1.EndpointSubset{{
		Addresses: []corev1.EndpointAddress{{IP: "192.0.2.20"}},
		Ports:     []corev1.EndpointPort{{Name: "pg", Port: 5433, Protocol: corev1.ProtocolTCP}},
	}}
	updated, err := cs.CoreV1().Endpoints("default").Update(ctx, created, metav1.UpdateOptions{})
	if err != nil {
		t.Fatal(err)
	}
	controllertest.Eventually(t, func() error {
		items, err := mirrored(ctx, cs, "db")
		if err != nil {
			return err
		}
		if len(items) != 1 || items[0].Endpoints[0].Addresses[0] != "192.0.2.20" || *items[0].Ports[0].Port != 5433 {
			return fmt.Errorf("after the update: %+v", items)
		}
		return nil
	})

	// Asking not to be mirrored removes the slices.
	updated.Labels[endpointslicemirroring.SkipMirrorLabel] = "true"
	if _, err := cs.CoreV1().Endpoints("default").Update(ctx, updated, metav1.UpdateOptions{}); err != nil {
		t.Fatal(err)
	}
	controllertest.Eventually(t, func() error {
		items, err := mirrored(ctx, cs, "db")
		if err != nil || len(items) != 0 {
			return fmt.Errorf("with skip-mirror: %d slices, %v", len(items), err)
		}
		return nil
	})

	// Checked last, when the controller has long had the time to
	// (wrongly) mirror it.
	if items, err := mirrored(ctx, cs, "web"); err != nil || len(items) != 0 {
		t.Errorf("a selector's service mirrored: %d slices, %v", len(items), err)
	}
}
