package volumes

import (
	"testing"

	"github.com/google/go-cmp/cmp"
	v1 "k8s.io/api/core/v1"
	k8stesting "k8s.io/client-go/testing"
)

// TestObjectsReadPerName: config maps and secrets are listed and watched
// one object at a time (metadata.name field selector), as the node
// authorizer requires, and a watch stops once no pod uses its object.
func TestObjectsReadPerName(t *testing.T) {
	t.Parallel()
	m, cs := newTestManager(t, fixtures()...)
	cfgVol := v1.Volume{Name: "c", VolumeSource: v1.VolumeSource{ConfigMap: &v1.ConfigMapVolumeSource{LocalObjectReference: v1.LocalObjectReference{Name: "cfg"}}}}
	secVol := v1.Volume{Name: "s", VolumeSource: v1.VolumeSource{Secret: &v1.SecretVolumeSource{SecretName: "sec"}}}
	a := testPod(cfgVol, secVol)
	b := testPod(secVol)
	b.Name, b.UID = "other", "uid-2"
	for _, pod := range []*v1.Pod{a, b} {
		if _, err := m.Setup(t.Context(), pod); err != nil {
			t.Fatalf("Setup %s: %v", pod.Name, err)
		}
	}
	if _, err := m.Env(t.Context(), b, &v1.Container{Env: []v1.EnvVar{{Name: "P", ValueFrom: &v1.EnvVarSource{
		SecretKeyRef: &v1.SecretKeySelector{LocalObjectReference: v1.LocalObjectReference{Name: "sec"}, Key: "pass"}}}}}); err != nil {
		t.Fatalf("Env: %v", err)
	}

	// Every read of a config map or secret names one object; a watch may
	// not have started yet when Setup returns, so only lists are required.
	type read struct{ Verb, Resource, Namespace, FieldSelector string }
	seen := map[read]bool{}
	for _, act := range cs.Actions() {
		res := act.GetResource().Resource
		if res != "configmaps" && res != "secrets" {
			continue
		}
		r := read{Verb: act.GetVerb(), Resource: res, Namespace: act.GetNamespace()}
		switch a := act.(type) {
		case k8stesting.ListActionImpl:
			r.FieldSelector = a.GetListRestrictions().Fields.String()
		case k8stesting.WatchActionImpl:
			r.FieldSelector = a.GetWatchRestrictions().Fields.String()
		}
		seen[r] = true
	}
	allowed := map[read]bool{
		{"list", "configmaps", "ns", "metadata.name=cfg"}:  true,
		{"watch", "configmaps", "ns", "metadata.name=cfg"}: true,
		{"list", "secrets", "ns", "metadata.name=sec"}:     true,
		{"watch", "secrets", "ns", "metadata.name=sec"}:    true,
	}
	for r := range seen {
		if !allowed[r] {
			t.Errorf("unexpected read %+v", r)
		}
	}
	for _, r := range []read{{"list", "configmaps", "ns", "metadata.name=cfg"}, {"list", "secrets", "ns", "metadata.name=sec"}} {
		if !seen[r] {
			t.Errorf("no %+v", r)
		}
	}

	if n := m.objects.watching(); n != 2 {
		t.Errorf("watching %d objects after Setup, want 2", n)
	}
	if err := m.Teardown(t.Context(), a.UID); err != nil {
		t.Fatal(err)
	}
	if diff := cmp.Diff(1, m.objects.watching()); diff != "" {
		t.Errorf("objects watched after the first pod's teardown (-want +got):\n%s", diff)
	}
	if err := m.Teardown(t.Context(), b.UID); err != nil {
		t.Fatal(err)
	}
	if n := m.objects.watching(); n != 0 {
		t.Errorf("watching %d objects after every pod's teardown, want 0", n)
	}
}
