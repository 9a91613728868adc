package builtin

import (
	"testing"

	"github.com/google/go-cmp/cmp"
	networkingv1 "k8s.io/api/networking/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
)

func TestIPAddressValidate(t *testing.T) {
	r := groupResource(t, "networking.k8s.io", "ipaddresses")
	ref := &networkingv1.ParentReference{Group: "mygroup", Resource: "myresources", Namespace: "foo", Name: "bar"}
	for _, tc := range []struct {
		name string
		ref  *networkingv1.ParentReference
		want []string
	}{
		{"255.255.255.255", ref, []string{}},
		{"fe80::42:1dff:fe84:f9e2", ref, []string{}},
		{"10.0.0.010", ref, []string{"FieldValueInvalid metadata.name"}},
		{"2001:DB8::1", ref, []string{"FieldValueInvalid metadata.name"}},
		{"::ffff:10.0.0.1", ref, []string{"FieldValueInvalid metadata.name"}},
		{"10.0.0.1", nil, []string{"FieldValueRequired spec.parentRef"}},
		{"10.0.0.2", &networkingv1.ParentReference{Name: "x"}, []string{"FieldValueRequired spec.parentRef.resource"}},
	} {
		ip := &networkingv1.IPAddress{ObjectMeta: metav1.ObjectMeta{Name: tc.name}, Spec: networkingv1.IPAddressSpec{ParentRef: tc.ref}}
		if diff := cmp.Diff(tc.want, errStrings(create(t, r, ip))); diff != "" {
			t.Errorf("%s (-want +got):\n%s", tc.name, diff)
		}
	}
	old := &networkingv1.IPAddress{ObjectMeta: metav1.ObjectMeta{Name: "10.0.0.1", ResourceVersion: "1"}, Spec: networkingv1.IPAddressSpec{ParentRef: ref}}
	moved := old.DeepCopy()
	moved.Spec.ParentRef = &networkingv1.ParentReference{Resource: "services", Name: "other"}
	if diff := cmp.Diff([]string{"FieldValueInvalid spec.parentRef"}, errStrings(update(t, r, moved, old))); diff != "" {
		t.Errorf("parentRef change (-want +got):\n%s", diff)
	}
}

func TestServiceCIDRValidate(t *testing.T) {
	r := groupResource(t, "networking.k8s.io", "servicecidrs")
	for _, tc := range []struct {
		cidrs []string
		want  []string
	}{
		{[]string{"10.96.0.0/12"}, []string{}},
		{[]string{"10.96.0.0/12", "fd00::/108"}, []string{}},
		{nil, []string{"FieldValueRequired spec.cidrs"}},
		{[]string{"10.96.0.1/12"}, []string{"FieldValueInvalid spec.cidrs[0]"}},
		{[]string{"10.96.0.0/12", "10.0.0.0/8"}, []string{"FieldValueInvalid spec.cidrs"}},
		{[]string{"a", "b", "c"}, []string{"FieldValueTooMany spec.cidrs"}},
	} {
		sc := &networkingv1.ServiceCIDR{ObjectMeta: metav1.ObjectMeta{Name: "x"}, Spec: networkingv1.ServiceCIDRSpec{CIDRs: tc.cidrs}}
		if diff := cmp.Diff(tc.want, errStrings(create(t, r, sc))); diff != "" {
			t.Errorf("%v (-want +got):\n%s", tc.cidrs, diff)
		}
	}
	old := &networkingv1.ServiceCIDR{ObjectMeta: metav1.ObjectMeta{Name: "x", ResourceVersion: "1"}, Spec: networkingv1.ServiceCIDRSpec{CIDRs: []string{"10.96.0.0/12"}}}
	dual := old.DeepCopy()
	dual.Spec.CIDRs = append(dual.Spec.CIDRs, "fd00::/108")
	if errs := update(t, r, dual, old); len(errs) != 0 {
		t.Errorf("single to dual stack: %v", errs)
	}
	moved := old.DeepCopy()
	moved.Spec.CIDRs = []string{"10.0.0.0/16"}
	if diff := cmp.Diff([]string{"FieldValueInvalid spec.cidrs"}, errStrings(update(t, r, moved, old))); diff != "" {
		t.Errorf("range change (-want +got):\n%s", diff)
	}
}
