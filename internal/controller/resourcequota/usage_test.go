package resourcequota

import (
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/resource"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
)

func TestComputeUsage(t *testing.T) {
	now := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	deadline := int64(60)
	grace := int64(30)
	burstable := pod("burstable", "250m", "1Gi", nil)
	burstable.Spec.PriorityClassName = "high"
	terminating := pod("terminating", "1", "", nil)
	terminating.Spec.ActiveDeadlineSeconds = &deadline
	stuck := pod("stuck", "2", "", nil) // past its deletion grace period
	stuck.DeletionTimestamp = &metav1.Time{Time: now.Add(-time.Minute)}
	stuck.DeletionGracePeriodSeconds = &grace
	done := pod("done", "4", "", nil)
	done.Status.Phase = corev1.PodFailed
	objs := objects{
		pods: []*corev1.Pod{burstable, terminating, stuck, done, pod("besteffort", "", "", nil)},
		svcs: []*corev1.Service{
			{Spec: corev1.ServiceSpec{Type: corev1.ServiceTypeClusterIP, Ports: []corev1.ServicePort{{Port: 80}}}},
			{Spec: corev1.ServiceSpec{Type: corev1.ServiceTypeNodePort, Ports: []corev1.ServicePort{{Port: 80}, {Port: 443}}}},
			{Spec: corev1.ServiceSpec{Type: corev1.ServiceTypeLoadBalancer, Ports: []corev1.ServicePort{{Port: 80, NodePort: 30080}}}},
		},
		claims: []*corev1.PersistentVolumeClaim{{Spec: corev1.PersistentVolumeClaimSpec{
			StorageClassName: new("fast"),
			Resources:        corev1.VolumeResourceRequirements{Requests: corev1.ResourceList{corev1.ResourceStorage: resource.MustParse("10Gi")}},
		}}},
		counts: map[string]int64{"configmaps": 2, "deployments.apps": 1},
	}
	counted := map[string]bool{"pods": true, "services": true, "persistentvolumeclaims": true, "configmaps": true, "deployments.apps": true, "secrets": true}
	tests := []struct {
		name string
		spec corev1.ResourceQuotaSpec
		prev corev1.ResourceList
		want map[string]string
	}{{
		name: "unscoped",
		want: map[string]string{
			"pods": "3", "count/pods": "5", "requests.cpu": "1250m", "cpu": "1250m", "limits.memory": "1Gi", "requests.memory": "0",
			"services": "3", "services.nodeports": "3", "services.loadbalancers": "1",
			"persistentvolumeclaims": "1", "requests.storage": "10Gi", "fast.storageclass.storage.k8s.io/requests.storage": "10Gi",
			"configmaps": "2", "count/configmaps": "2", "count/deployments.apps": "1", "secrets": "0", "count/widgets.example.com": "7",
		},
		prev: corev1.ResourceList{"count/widgets.example.com": resource.MustParse("7")},
	}, {
		name: "BestEffort",
		spec: corev1.ResourceQuotaSpec{Scopes: []corev1.ResourceQuotaScope{corev1.ResourceQuotaScopeBestEffort}},
		want: map[string]string{"pods": "1", "count/pods": "1"},
	}, {
		name: "NotBestEffort and Terminating",
		spec: corev1.ResourceQuotaSpec{Scopes: []corev1.ResourceQuotaScope{corev1.ResourceQuotaScopeNotBestEffort, corev1.ResourceQuotaScopeTerminating}},
		want: map[string]string{"pods": "1", "requests.cpu": "1", "services": "0"},
	}, {
		name: "NotTerminating",
		spec: corev1.ResourceQuotaSpec{Scopes: []corev1.ResourceQuotaScope{corev1.ResourceQuotaScopeNotTerminating}},
		want: map[string]string{"pods": "2", "count/pods": "4", "requests.cpu": "250m"},
	}, {
		name: "PriorityClass In",
		spec: corev1.ResourceQuotaSpec{ScopeSelector: &corev1.ScopeSelector{MatchExpressions: []corev1.ScopedResourceSelectorRequirement{{
			ScopeName: corev1.ResourceQuotaScopePriorityClass, Operator: corev1.ScopeSelectorOpIn, Values: []string{"high"},
		}}}},
		want: map[string]string{"pods": "1", "requests.cpu": "250m"},
	}, {
		name: "PriorityClass DoesNotExist",
		spec: corev1.ResourceQuotaSpec{ScopeSelector: &corev1.ScopeSelector{MatchExpressions: []corev1.ScopedResourceSelectorRequirement{{
			ScopeName: corev1.ResourceQuotaScopePriorityClass, Operator: corev1.ScopeSelectorOpDoesNotExist,
		}}}},
		want: map[string]string{"pods": "2", "requests.cpu": "1"},
	}}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			q := &corev1.ResourceQuota{Spec: tc.spec, Status: corev1.ResourceQuotaStatus{Used: tc.prev}}
			q.Spec.Hard = corev1.ResourceList{}
			for name := range tc.want {
				q.Spec.Hard[corev1.ResourceName(name)] = resource.MustParse("100")
			}
			status, err := computeUsage(q, objs, counted, now)
			if err != nil {
				t.Fatal(err)
			}
			got := map[string]string{}
			for name, v := range status.Used {
				got[string(name)] = v.String()
				if want, ok := tc.want[string(name)]; ok && v.Cmp(resource.MustParse(want)) == 0 {
					got[string(name)] = want
				}
			}
			if d := cmp.Diff(tc.want, got); d != "" {
				t.Errorf("used (-want +got):\n%s", d)
			}
		})
	}
}
