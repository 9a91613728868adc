package admission

import (
	"context"
	"testing"

	"github.com/google/go-cmp/cmp"
	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/client-go/informers"
)

// syncedQuota is a quota as the controller leaves it: status.hard from
// spec, status.used as given.
func syncedQuota(name string, hard, used corev1.ResourceList) *corev1.ResourceQuota {
	return &corev1.ResourceQuota{
		ObjectMeta: metav1.ObjectMeta{Name: name, Namespace: "ns", ResourceVersion: "1"},
		Spec:       corev1.ResourceQuotaSpec{Hard: hard},
		Status:     corev1.ResourceQuotaStatus{Hard: hard, Used: used},
	}
}

func usedOf(t *testing.T, client interface {
	Get(ctx context.Context, name string, opts metav1.GetOptions) (*corev1.ResourceQuota, error)
}, name string) map[string]string {
	t.Helper()
	q, err := client.Get(context.Background(), name, metav1.GetOptions{})
	if err != nil {
		t.Fatal(err)
	}
	out := map[string]string{}
	for k, v := range q.Status.Used {
		out[string(k)] = v.String()
	}
	return out
}

func TestResourceQuota(t *testing.T) {
	t.Parallel()
	computePod := testPod("p", withResources(rl("cpu", "100m", "memory", "64Mi"), rl("cpu", "200m", "memory", "128Mi")))
	nodePort := &corev1.Service{ObjectMeta: metav1.ObjectMeta{Name: "s"}, Spec: corev1.ServiceSpec{Type: corev1.ServiceTypeNodePort, Ports: []corev1.ServicePort{{Port: 80}, {Port: 443}}}}
	clusterIP := &corev1.Service{ObjectMeta: metav1.ObjectMeta{Name: "s"}, Spec: corev1.ServiceSpec{Type: corev1.ServiceTypeClusterIP, Ports: []corev1.ServicePort{{Port: 80}, {Port: 443}}}}
	tests := []struct {
		name     string
		quotas   []runtime.Object
		req      *Request
		wantErr  string
		wantUsed map[string]map[string]string // quota -> used after
	}{
		{
			name:     "pod within quota is charged",
			quotas:   []runtime.Object{syncedQuota("q", rl("pods", "2"), rl("pods", "1"))},
			req:      podCreate("ns", testPod("p")),
			wantUsed: map[string]map[string]string{"q": {"pods": "2"}},
		},
		{
			name:     "pod over quota",
			quotas:   []runtime.Object{syncedQuota("q", rl("pods", "2"), rl("pods", "2"))},
			req:      podCreate("ns", testPod("p")),
			wantErr:  `403 pods "p" is forbidden: exceeded quota: q, requested: pods=1, used: pods=2, limited: pods=2`,
			wantUsed: map[string]map[string]string{"q": {"pods": "2"}},
		},
		{
			name:     "compute is summed and charged",
			quotas:   []runtime.Object{syncedQuota("q", rl("requests.cpu", "1", "limits.memory", "1Gi", "count/pods", "10"), rl("requests.cpu", "500m", "limits.memory", "0", "count/pods", "3"))},
			req:      podCreate("ns", computePod),
			wantUsed: map[string]map[string]string{"q": {"requests.cpu": "600m", "limits.memory": "128Mi", "count/pods": "4"}},
		},
		{
			name:    "compute over quota names only the exceeded resources",
			quotas:  []runtime.Object{syncedQuota("q", rl("requests.cpu", "1", "pods", "10"), rl("requests.cpu", "950m", "pods", "1"))},
			req:     podCreate("ns", computePod),
			wantErr: `403 pods "p" is forbidden: exceeded quota: q, requested: requests.cpu=100m, used: requests.cpu=950m, limited: requests.cpu=1`,
		},
		{
			name:    "quota'd compute must be specified",
			quotas:  []runtime.Object{syncedQuota("q", rl("limits.memory", "1Gi", "requests.cpu", "1"), rl("limits.memory", "0", "requests.cpu", "0"))},
			req:     podCreate("ns", testPod("p")),
			wantErr: `403 pods "p" is forbidden: failed quota: q: must specify limits.memory for: c; requests.cpu for: c`,
		},
		{
			name:    "status not yet computed",
			quotas:  []runtime.Object{syncedQuota("q", rl("pods", "2"), nil)},
			req:     podCreate("ns", testPod("p")),
			wantErr: `403 pods "p" is forbidden: status unknown for quota: q, resources: pods`,
		},
		{
			name: "quota not yet seen by the controller does not apply",
			quotas: []runtime.Object{&corev1.ResourceQuota{ObjectMeta: metav1.ObjectMeta{Name: "q", Namespace: "ns"},
				Spec: corev1.ResourceQuotaSpec{Hard: rl("pods", "0")}}},
			req:      podCreate("ns", testPod("p")),
			wantUsed: map[string]map[string]string{"q": {}},
		},
		{
			name:     "dry run checks without charging",
			quotas:   []runtime.Object{syncedQuota("q", rl("pods", "2"), rl("pods", "1"))},
			req:      func() *Request { r := podCreate("ns", testPod("p")); r.DryRun = true; return r }(),
			wantUsed: map[string]map[string]string{"q": {"pods": "1"}},
		},
		{
			name: "a refusal by one quota charges none",
			quotas: []runtime.Object{
				syncedQuota("a", rl("pods", "5"), rl("pods", "1")),
				syncedQuota("b", rl("count/pods", "1"), rl("count/pods", "1")),
			},
			req:      podCreate("ns", testPod("p")),
			wantErr:  `403 pods "p" is forbidden: exceeded quota: b, requested: count/pods=1, used: count/pods=1, limited: count/pods=1`,
			wantUsed: map[string]map[string]string{"a": {"pods": "1"}, "b": {"count/pods": "1"}},
		},
		{
			name: "scoped quota selects matching pods only",
			quotas: []runtime.Object{func() runtime.Object {
				q := syncedQuota("besteffort", rl("pods", "0"), rl("pods", "0"))
				q.Spec.Scopes = []corev1.ResourceQuotaScope{corev1.ResourceQuotaScopeBestEffort}
				return q
			}()},
			req:      podCreate("ns", computePod),
			wantUsed: map[string]map[string]string{"besteffort": {"pods": "0"}},
		},
		{
			name: "priority class scope selector",
			quotas: []runtime.Object{func() runtime.Object {
				q := syncedQuota("high", rl("pods", "0"), rl("pods", "0"))
				q.Spec.ScopeSelector = &corev1.ScopeSelector{MatchExpressions: []corev1.ScopedResourceSelectorRequirement{{
					ScopeName: corev1.ResourceQuotaScopePriorityClass, Operator: corev1.ScopeSelectorOpIn, Values: []string{"high"}}}}
				return q
			}()},
			req:     podCreate("ns", func() *corev1.Pod { p := testPod("p"); p.Spec.PriorityClassName = "high"; return p }()),
			wantErr: `403 pods "p" is forbidden: exceeded quota: high, requested: pods=1, used: pods=0, limited: pods=0`,
		},
		{
			name:    "object count of a core resource",
			quotas:  []runtime.Object{syncedQuota("q", rl("configmaps", "1"), rl("configmaps", "1"))},
			req:     &Request{Operation: Create, Namespace: "ns", Name: "cm", Resource: gvr("", "configmaps"), Object: &corev1.ConfigMap{ObjectMeta: metav1.ObjectMeta{Name: "cm"}}},
			wantErr: `403 configmaps "cm" is forbidden: exceeded quota: q, requested: configmaps=1, used: configmaps=1, limited: configmaps=1`,
		},
		{
			name:     "object count of a grouped resource",
			quotas:   []runtime.Object{syncedQuota("q", rl("count/deployments.apps", "3"), rl("count/deployments.apps", "2"))},
			req:      &Request{Operation: Create, Namespace: "ns", Name: "d", Resource: gvr("apps", "deployments"), Object: &appsv1.Deployment{}},
			wantUsed: map[string]map[string]string{"q": {"count/deployments.apps": "3"}},
		},
		{
			name:    "service turned NodePort is charged the growth",
			quotas:  []runtime.Object{syncedQuota("q", rl("services", "5", "services.nodeports", "1"), rl("services", "1", "services.nodeports", "0"))},
			req:     &Request{Operation: Update, Namespace: "ns", Name: "s", Resource: gvr("", "services"), Object: nodePort, OldObject: clusterIP},
			wantErr: `403 services "s" is forbidden: exceeded quota: q, requested: services.nodeports=2, used: services.nodeports=0, limited: services.nodeports=1`,
		},
		{
			name:     "other updates are free",
			quotas:   []runtime.Object{syncedQuota("q", rl("configmaps", "0"), rl("configmaps", "5"))},
			req:      &Request{Operation: Update, Namespace: "ns", Name: "cm", Resource: gvr("", "configmaps"), Object: &corev1.ConfigMap{}, OldObject: &corev1.ConfigMap{}},
			wantUsed: map[string]map[string]string{"q": {"configmaps": "5"}},
		},
		{
			name: "claim storage per class",
			quotas: []runtime.Object{syncedQuota("q", rl("fast.storageclass.storage.k8s.io/requests.storage", "10Gi"),
				rl("fast.storageclass.storage.k8s.io/requests.storage", "8Gi"))},
			req: &Request{Operation: Create, Namespace: "ns", Name: "data", Resource: gvr("", "persistentvolumeclaims"),
				Object: &corev1.PersistentVolumeClaim{Spec: corev1.PersistentVolumeClaimSpec{StorageClassName: ptr("fast"),
					Resources: corev1.VolumeResourceRequirements{Requests: rl("storage", "5Gi")}}}},
			wantErr: `403 persistentvolumeclaims "data" is forbidden: exceeded quota: q, requested: fast.storageclass.storage.k8s.io/requests.storage=5Gi, used: fast.storageclass.storage.k8s.io/requests.storage=8Gi, limited: fast.storageclass.storage.k8s.io/requests.storage=10Gi`,
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			client := newClient(tt.quotas...)
			err := NewChain(NewResourceQuota(nil, client)).Admit(context.Background(), tt.req)
			if diff := cmp.Diff(tt.wantErr, errText(t, err)); diff != "" {
				t.Errorf("error (-want +got):\n%s", diff)
			}
			for name, want := range tt.wantUsed {
				if diff := cmp.Diff(want, usedOf(t, client.CoreV1().ResourceQuotas("ns"), name)); diff != "" {
					t.Errorf("quota %s used (-want +got):\n%s", name, diff)
				}
			}
		})
	}
}

// TestResourceQuotaCacheGate: with a lister, writes that no cached quota
// limits cost no live read; others are checked against the live quota.
func TestResourceQuotaCacheGate(t *testing.T) {
	t.Parallel()
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	client := newClient(syncedQuota("q", rl("pods", "1"), rl("pods", "1")))
	f := informers.NewSharedInformerFactory(client, 0)
	plugin := NewResourceQuota(f.Core().V1().ResourceQuotas().Informer().GetIndexer(), client)
	f.StartWithContext(ctx)
	f.WaitForCacheSync(ctx.Done())
	client.ClearActions()

	cm := &Request{Operation: Create, Namespace: "ns", Name: "cm", Resource: gvr("", "configmaps"), Object: &corev1.ConfigMap{}}
	if err := NewChain(plugin).Admit(ctx, cm); err != nil {
		t.Fatalf("config map: %v", err)
	}
	if a := client.Actions(); len(a) != 0 {
		t.Errorf("unquota'd write read the API: %v", a)
	}
	err := NewChain(plugin).Admit(ctx, podCreate("ns", testPod("p")))
	want := `403 pods "p" is forbidden: exceeded quota: q, requested: pods=1, used: pods=1, limited: pods=1`
	if diff := cmp.Diff(want, errText(t, err)); diff != "" {
		t.Errorf("pod (-want +got):\n%s", diff)
	}
}
