package builtin

import (
	"context"
	"fmt"
	"sort"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/util/validation/field"

	"github.com/skiff-dev/skiff/internal/registry"
)

// groupResource returns the named-group resource group/resource.
func groupResource(t *testing.T, group, resource string) *registry.Resource {
	t.Helper()
	for _, r := range groupResources() {
		if r.GVR.Group == group && r.GVR.Resource == resource {
			return r
		}
	}
	t.Fatalf("no resource %s in group %q", resource, group)
	return nil
}

// errStrings renders field errors as "<type> <field>" for comparison.
func errStrings(errs field.ErrorList) []string {
	out := []string{}
	for _, e := range errs {
		out = append(out, fmt.Sprintf("%s %s", string(e.Type), e.Field))
	}
	sort.Strings(out)
	return out
}

// create runs an object through the create path of a strategy as the
// store does: prepare, default, validate.
func create(t *testing.T, r *registry.Resource, obj runtime.Object) field.ErrorList {
	t.Helper()
	ctx := context.Background()
	r.Strategy.PrepareForCreate(ctx, obj)
	r.Strategy.Default(obj)
	return r.Strategy.Validate(ctx, obj)
}

// update runs obj (a changed copy of old) through the update path.
func update(t *testing.T, r *registry.Resource, obj, old runtime.Object) field.ErrorList {
	t.Helper()
	ctx := context.Background()
	r.Strategy.PrepareForUpdate(ctx, obj, old)
	r.Strategy.Default(obj)
	return r.Strategy.ValidateUpdate(ctx, obj, old)
}

// checkDefaultIdempotent asserts that defaulting twice equals defaulting once.
func checkDefaultIdempotent(t *testing.T, r *registry.Resource, obj runtime.Object) {
	t.Helper()
	once := obj.DeepCopyObject()
	r.Strategy.Default(once)
	twice := once.DeepCopyObject()
	r.Strategy.Default(twice)
	if diff := cmp.Diff(once, twice); diff != "" {
		t.Errorf("defaulting is not idempotent (-once +twice):\n%s", diff)
	}
}

// testPodTemplate is a valid pod template with the given labels (with an
// explicit restartPolicy Always, so that the tests do not depend on the pod
// defaults).
func testPodTemplate(labels map[string]string) corev1.PodTemplateSpec {
	return corev1.PodTemplateSpec{
		ObjectMeta: metav1.ObjectMeta{Labels: labels},
		Spec: corev1.PodSpec{
			RestartPolicy: corev1.RestartPolicyAlways,
			Containers:    []corev1.Container{{Name: "app", Image: "nginx:1.27"}},
		},
	}
}

func TestGroupResourcesDescribeThemselves(t *testing.T) {
	seen := map[string]bool{}
	for _, r := range groupResources() {
		key := r.GVR.String()
		if seen[key] {
			t.Errorf("%s listed twice", key)
		}
		seen[key] = true
		if r.Strategy == nil || r.Kind == "" || r.ListKind != r.Kind+"List" || r.Singular == "" {
			t.Errorf("%s: incomplete description %+v", key, r)
		}
		gvk := r.GroupVersionKind()
		if r.Strategy.New() == nil || r.Strategy.NewList() == nil {
			t.Errorf("%s: New or NewList returned nil", key)
		}
		if tbl := r.Strategy.Table(); tbl != nil {
			if tbl.Columns[0].Name != "Name" && r.Kind != "Event" {
				t.Errorf("%s: first column %q, want Name", gvk, tbl.Columns[0].Name)
			}
			// A zero object must render a full row without panicking.
			if cells := tbl.Row(r.Strategy.New()); len(cells) != len(tbl.Columns) {
				t.Errorf("%s: row has %d cells for %d columns", gvk, len(cells), len(tbl.Columns))
			}
		}
	}
	if len(seen) != 38 { // autoscaling/v1 and v2 horizontalpodautoscalers count twice
		t.Errorf("got %d group resources, want 38", len(seen))
	}
}

func TestGroupResourceDiscovery(t *testing.T) {
	type disc struct {
		Kind       string
		Short      []string
		Categories []string
		Namespaced bool
		Status     bool
		Scale      bool
	}
	tests := []struct {
		group, resource string
		want            disc
	}{
		{"apps", "deployments", disc{"Deployment", []string{"deploy"}, []string{"all"}, true, true, true}},
		{"apps", "replicasets", disc{"ReplicaSet", []string{"rs"}, []string{"all"}, true, true, true}},
		{"apps", "statefulsets", disc{"StatefulSet", []string{"sts"}, []string{"all"}, true, true, true}},
		{"apps", "daemonsets", disc{"DaemonSet", []string{"ds"}, []string{"all"}, true, true, false}},
		{"apps", "controllerrevisions", disc{"ControllerRevision", nil, nil, true, false, false}},
		{"batch", "jobs", disc{"Job", nil, []string{"all"}, true, true, false}},
		{"batch", "cronjobs", disc{"CronJob", []string{"cj"}, []string{"all"}, true, true, false}},
		{"autoscaling", "horizontalpodautoscalers", disc{"HorizontalPodAutoscaler", []string{"hpa"}, []string{"all"}, true, true, false}},
		{"policy", "poddisruptionbudgets", disc{"PodDisruptionBudget", []string{"pdb"}, nil, true, true, false}},
		{"networking.k8s.io", "ingresses", disc{"Ingress", []string{"ing"}, nil, true, true, false}},
		{"networking.k8s.io", "ingressclasses", disc{"IngressClass", nil, nil, false, false, false}},
		{"networking.k8s.io", "networkpolicies", disc{"NetworkPolicy", []string{"netpol"}, nil, true, false, false}},
		{"discovery.k8s.io", "endpointslices", disc{"EndpointSlice", nil, nil, true, false, false}},
		{"scheduling.k8s.io", "priorityclasses", disc{"PriorityClass", []string{"pc"}, nil, false, false, false}},
		{"storage.k8s.io", "storageclasses", disc{"StorageClass", []string{"sc"}, nil, false, false, false}},
		{"coordination.k8s.io", "leases", disc{"Lease", nil, nil, true, false, false}},
		{"certificates.k8s.io", "certificatesigningrequests", disc{"CertificateSigningRequest", []string{"csr"}, nil, false, true, false}},
		{"events.k8s.io", "events", disc{"Event", []string{"ev"}, nil, true, false, false}},
		{"rbac.authorization.k8s.io", "roles", disc{"Role", nil, nil, true, false, false}},
		{"rbac.authorization.k8s.io", "clusterrolebindings", disc{"ClusterRoleBinding", nil, nil, false, false, false}},
	}
	for _, tt := range tests {
		t.Run(tt.group+"/"+tt.resource, func(t *testing.T) {
			r := groupResource(t, tt.group, tt.resource)
			got := disc{r.Kind, r.ShortNames, r.Categories, r.Namespaced, r.Status, r.Scale != nil}
			if diff := cmp.Diff(tt.want, got); diff != "" {
				t.Errorf("(-want +got):\n%s", diff)
			}
		})
	}
}

func TestRoleTableCreatedAt(t *testing.T) {
	r := groupResource(t, "rbac.authorization.k8s.io", "clusterroles")
	ts := metav1.NewTime(time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC))
	obj := r.Strategy.New()
	obj.(metav1.Object).SetName("system:node")
	obj.(metav1.Object).SetCreationTimestamp(ts)
	got := r.Strategy.Table().Row(obj)
	if diff := cmp.Diff([]any{"system:node", "2026-01-02T03:04:05Z"}, got); diff != "" {
		t.Errorf("(-want +got):\n%s", diff)
	}
}
