package apiserver

import (
	"context"
	"encoding/json"
	"fmt"
	"log/slog"
	"slices"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
	corev1 "k8s.io/api/core/v1"
	policyv1 "k8s.io/api/policy/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/util/intstr"
	"k8s.io/apimachinery/pkg/util/managedfields"
	clientgoscheme "k8s.io/client-go/kubernetes/scheme"

	"github.com/skiff-dev/skiff/internal/etcd/etcdtest"
	"github.com/skiff-dev/skiff/internal/openapi"
	"github.com/skiff-dev/skiff/internal/registry"
	"github.com/skiff-dev/skiff/internal/registry/builtin"
	"github.com/skiff-dev/skiff/internal/storage"
)

// withPDBs also serves policy/v1 poddisruptionbudgets (on an etcd member
// of their own).
func withPDBs(t *testing.T) envOption {
	return func(c *Config) {
		client := etcdtest.Start(t)
		scheme := runtime.NewScheme()
		if err := clientgoscheme.AddToScheme(scheme); err != nil {
			t.Fatal(err)
		}
		for _, res := range builtin.Resources() {
			if res.GVR != pdbGVR {
				continue
			}
			st, err := storage.New(t.Context(), storage.Config{
				Client:      client,
				Prefix:      "/registry/policy/poddisruptionbudgets/",
				Resource:    res.GroupResource(),
				Codec:       storage.ProtobufCodec(scheme, res.GVR.GroupVersion()),
				NewFunc:     res.Strategy.New,
				NewListFunc: res.Strategy.NewList,
				Attrs:       res.Strategy.Attrs,
				Logger:      slog.New(slog.DiscardHandler),
			})
			if err != nil {
				t.Fatalf("storage for %s: %v", res.GVR, err)
			}
			c.Stores = append(c.Stores, registry.NewStore(res, st, registry.StoreOptions{Logger: slog.New(slog.DiscardHandler)}))
		}
		// Field management needs the PDB schema too.
		var served []*registry.Resource
		for _, st := range c.Stores {
			served = append(served, st.Resource)
		}
		schemas, err := openapi.Schemas(served)
		if err != nil {
			t.Fatalf("openapi schemas: %v", err)
		}
		if c.TypeConverter, err = managedfields.NewTypeConverter(schemas, false); err != nil {
			t.Fatalf("type converter: %v", err)
		}
	}
}

// budget is a PDB of the test, with the status the disruption controller
// would have written.
type budget struct {
	name     string
	selector *metav1.LabelSelector
	allowed  int32
	desired  int32
	healthy  int32
	stale    bool // observedGeneration behind generation
	policy   policyv1.UnhealthyPodEvictionPolicyType
}

// evictionResult is what a test compares after an eviction.
type evictionResult struct {
	Code      int
	Message   string
	Causes    []string
	Pod       string // "gone", "deleting", "untouched"
	Target    bool   // the DisruptionTarget condition is set
	Allowed   map[string]int32
	Disrupted map[string][]string // PDB -> status.disruptedPods
}

func TestEviction(t *testing.T) {
	env := newTestEnv(t, withPDBs(t))
	cs := env.clientset(t)
	ctx := context.Background()
	web := &metav1.LabelSelector{MatchLabels: map[string]string{"app": "web"}}
	body := func(name string) string {
		return fmt.Sprintf(`{"apiVersion":"policy/v1","kind":"Eviction","metadata":{"name":%q}}`, name)
	}
	for _, tc := range []struct {
		name     string
		phase    corev1.PodPhase
		unready  bool
		deleting bool // deleted (gracefully) before the eviction
		pdbs     []budget
		body     string // default: a policy/v1 Eviction of the pod
		query    string
		method   string
		want     evictionResult
	}{{
		name: "no budget", phase: corev1.PodRunning,
		want: evictionResult{Code: 201, Pod: "deleting", Target: true},
	}, {
		name: "budget allows one", phase: corev1.PodRunning,
		pdbs: []budget{{name: "b", selector: web, allowed: 1, desired: 1, healthy: 2}},
		want: evictionResult{Code: 201, Pod: "deleting", Target: true,
			Allowed: map[string]int32{"b": 0}, Disrupted: map[string][]string{"b": {"web"}}},
	}, {
		name: "budget allows none", phase: corev1.PodRunning,
		pdbs: []budget{{name: "b", selector: web, allowed: 0, desired: 2, healthy: 2}},
		want: evictionResult{Code: 429, Message: evictionMsg, Pod: "untouched",
			Causes:  []string{"DisruptionBudget: The disruption budget b needs 2 healthy pods and has 2 currently"},
			Allowed: map[string]int32{"b": 0}},
	}, {
		name: "budget not yet observed", phase: corev1.PodRunning,
		pdbs: []budget{{name: "b", selector: web, allowed: 1, desired: 1, healthy: 2, stale: true}},
		want: evictionResult{Code: 429, Message: evictionMsg, Pod: "untouched",
			Causes:  []string{"DisruptionBudget: The disruption budget b is still being processed by the server."},
			Allowed: map[string]int32{"b": 1}},
	}, {
		name: "two budgets", phase: corev1.PodRunning,
		pdbs: []budget{{name: "a", selector: web, allowed: 1}, {name: "b", selector: &metav1.LabelSelector{}, allowed: 1}},
		want: evictionResult{Code: 500, Pod: "untouched", Allowed: map[string]int32{"a": 1, "b": 1},
			Message: "This pod has more than one PodDisruptionBudget, which the eviction subresource does not support."},
	}, {
		name: "budget selecting other pods", phase: corev1.PodRunning,
		pdbs: []budget{{name: "b", selector: &metav1.LabelSelector{MatchLabels: map[string]string{"app": "db"}}}},
		want: evictionResult{Code: 201, Pod: "deleting", Target: true, Allowed: map[string]int32{"b": 0}},
	}, {
		name: "pending pod ignores budgets", phase: corev1.PodPending,
		pdbs: []budget{{name: "b", selector: web, allowed: 0, desired: 2, healthy: 2}},
		want: evictionResult{Code: 201, Pod: "deleting", Target: true, Allowed: map[string]int32{"b": 0}},
	}, {
		name: "succeeded pod ignores budgets", phase: corev1.PodSucceeded,
		pdbs: []budget{{name: "b", selector: web, allowed: 0, desired: 2, healthy: 2}},
		want: evictionResult{Code: 201, Pod: "gone", Allowed: map[string]int32{"b": 0}},
	}, {
		name: "unready pod while the budget holds", phase: corev1.PodRunning, unready: true,
		pdbs: []budget{{name: "b", selector: web, allowed: 0, desired: 2, healthy: 2}},
		want: evictionResult{Code: 201, Pod: "deleting", Target: true, Allowed: map[string]int32{"b": 0}},
	}, {
		name: "unready pod while the budget is short", phase: corev1.PodRunning, unready: true,
		pdbs: []budget{{name: "b", selector: web, allowed: 0, desired: 2, healthy: 1}},
		want: evictionResult{Code: 429, Message: evictionMsg, Pod: "untouched", Allowed: map[string]int32{"b": 0},
			Causes: []string{"DisruptionBudget: The disruption budget b needs 2 healthy pods and has 1 currently"}},
	}, {
		name: "unready pod with policy AlwaysAllow", phase: corev1.PodRunning, unready: true,
		pdbs: []budget{{name: "b", selector: web, allowed: 0, desired: 2, healthy: 1, policy: policyv1.AlwaysAllow}},
		want: evictionResult{Code: 201, Pod: "deleting", Target: true, Allowed: map[string]int32{"b": 0}},
	}, {
		name: "terminating pod ignores budgets", phase: corev1.PodRunning, deleting: true,
		pdbs: []budget{{name: "b", selector: web, allowed: 0, desired: 2, healthy: 2}},
		want: evictionResult{Code: 201, Pod: "deleting", Target: true, Allowed: map[string]int32{"b": 0}},
	}, {
		name: "dry run", phase: corev1.PodRunning, query: "?dryRun=All",
		pdbs: []budget{{name: "b", selector: web, allowed: 1, desired: 1, healthy: 2}},
		want: evictionResult{Code: 201, Pod: "untouched", Allowed: map[string]int32{"b": 1}},
	}, {
		name: "dry run in the body", phase: corev1.PodRunning,
		body: `{"apiVersion":"policy/v1","kind":"Eviction","metadata":{"name":"web"},"deleteOptions":{"dryRun":["All"]}}`,
		want: evictionResult{Code: 201, Pod: "untouched"},
	}, {
		name: "grace period zero", phase: corev1.PodRunning,
		body: `{"apiVersion":"policy/v1","kind":"Eviction","metadata":{"name":"web"},"deleteOptions":{"gracePeriodSeconds":0}}`,
		want: evictionResult{Code: 201, Pod: "gone"},
	}, {
		name: "uid precondition", phase: corev1.PodRunning,
		body: `{"apiVersion":"policy/v1","kind":"Eviction","metadata":{"name":"web"},"deleteOptions":{"preconditions":{"uid":"other"}}}`,
		want: evictionResult{Code: 409, Pod: "untouched",
			Message: "Operation cannot be fulfilled on Pod \"web\": the UID in the precondition (other) does not match the UID in record"},
	}, {
		name: "policy/v1beta1", phase: corev1.PodRunning,
		body: `{"apiVersion":"policy/v1beta1","kind":"Eviction","metadata":{"name":"web"}}`,
		want: evictionResult{Code: 201, Pod: "deleting", Target: true},
	}, {
		name: "name mismatch", phase: corev1.PodRunning, body: body("other"),
		want: evictionResult{Code: 400, Message: "name in URL does not match name in Eviction object", Pod: "untouched"},
	}, {
		name: "get", phase: corev1.PodRunning, method: "GET",
		want: evictionResult{Code: 405, Message: "the server does not allow this method on the requested resource", Pod: "untouched"},
	}} {
		t.Run(tc.name, func(t *testing.T) {
			ns := strings.ToLower(strings.NewReplacer(" ", "-", "/", "-").Replace(tc.name))
			if _, err := cs.CoreV1().Namespaces().Create(ctx, &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: ns}}, metav1.CreateOptions{}); err != nil {
				t.Fatal(err)
			}
			pod, err := cs.CoreV1().Pods(ns).Create(ctx, &corev1.Pod{
				ObjectMeta: metav1.ObjectMeta{Name: "web", Labels: map[string]string{"app": "web"}},
				Spec:       corev1.PodSpec{NodeName: "n1", Containers: []corev1.Container{{Name: "c", Image: "nginx"}}},
			}, metav1.CreateOptions{})
			if err != nil {
				t.Fatal(err)
			}
			ready := corev1.ConditionTrue
			if tc.unready {
				ready = corev1.ConditionFalse
			}
			pod.Status.Phase = tc.phase
			pod.Status.Conditions = []corev1.PodCondition{{Type: corev1.PodReady, Status: ready}}
			if _, err := cs.CoreV1().Pods(ns).UpdateStatus(ctx, pod, metav1.UpdateOptions{}); err != nil {
				t.Fatal(err)
			}
			if tc.deleting {
				if err := cs.CoreV1().Pods(ns).Delete(ctx, "web", metav1.DeleteOptions{}); err != nil {
					t.Fatal(err)
				}
			}
			pdbs := cs.PolicyV1().PodDisruptionBudgets(ns)
			for _, b := range tc.pdbs {
				one := intstr.FromInt32(1)
				pdb, err := pdbs.Create(ctx, &policyv1.PodDisruptionBudget{
					ObjectMeta: metav1.ObjectMeta{Name: b.name},
					Spec:       policyv1.PodDisruptionBudgetSpec{MinAvailable: &one, Selector: b.selector},
				}, metav1.CreateOptions{})
				if err != nil {
					t.Fatal(err)
				}
				if b.policy != "" {
					pdb.Spec.UnhealthyPodEvictionPolicy = &b.policy
					if pdb, err = pdbs.Update(ctx, pdb, metav1.UpdateOptions{}); err != nil {
						t.Fatal(err)
					}
				}
				pdb.Status = policyv1.PodDisruptionBudgetStatus{ObservedGeneration: pdb.Generation, DisruptionsAllowed: b.allowed,
					DesiredHealthy: b.desired, CurrentHealthy: b.healthy, ExpectedPods: b.healthy}
				if b.stale {
					pdb.Status.ObservedGeneration = 0
				}
				if _, err := pdbs.UpdateStatus(ctx, pdb, metav1.UpdateOptions{}); err != nil {
					t.Fatal(err)
				}
			}
			method, reqBody := "POST", tc.body
			if tc.method != "" {
				method = tc.method
			}
			if reqBody == "" && method == "POST" {
				reqBody = body("web")
			}
			code, _, out := env.do(t, method, "/api/v1/namespaces/"+ns+"/pods/web/eviction"+tc.query, nil, reqBody)
			var st metav1.Status
			if err := json.Unmarshal([]byte(out), &st); err != nil {
				t.Fatalf("response %d %s: %v", code, out, err)
			}
			got := evictionResult{Code: code, Message: st.Message}
			if tc.want.Message != "" && strings.HasPrefix(st.Message, tc.want.Message) {
				got.Message = tc.want.Message
			}
			if st.Details != nil {
				for _, c := range st.Details.Causes {
					got.Causes = append(got.Causes, string(c.Type)+": "+c.Message)
				}
			}
			if code == 201 && (st.Status != metav1.StatusSuccess || st.Code != 201 || st.Kind != "Status") {
				t.Errorf("success status = %s", out)
			}
			cur, err := cs.CoreV1().Pods(ns).Get(ctx, "web", metav1.GetOptions{})
			switch {
			case apierrors.IsNotFound(err):
				got.Pod = "gone"
			case err != nil:
				t.Fatal(err)
			case cur.DeletionTimestamp != nil:
				got.Pod = "deleting"
			default:
				got.Pod = "untouched"
			}
			if cur != nil {
				for _, c := range cur.Status.Conditions {
					if c.Type == corev1.DisruptionTarget && c.Status == corev1.ConditionTrue && c.Reason == "EvictionByEvictionAPI" {
						got.Target = true
					}
				}
			}
			list, err := pdbs.List(ctx, metav1.ListOptions{})
			if err != nil {
				t.Fatal(err)
			}
			for _, pdb := range list.Items {
				if got.Allowed == nil {
					got.Allowed = map[string]int32{}
				}
				got.Allowed[pdb.Name] = pdb.Status.DisruptionsAllowed
				for name := range pdb.Status.DisruptedPods {
					if got.Disrupted == nil {
						got.Disrupted = map[string][]string{}
					}
					got.Disrupted[pdb.Name] = append(got.Disrupted[pdb.Name], name)
					slices.Sort(got.Disrupted[pdb.Name])
				}
			}
			if diff := cmp.Diff(tc.want, got); diff != "" {
				t.Errorf("eviction (-want +got):\n%s\nresponse: %s", diff, out)
			}
		})
	}
}

// TestEvictionNotFound: a missing pod is 404, as for GET.
func TestEvictionNotFound(t *testing.T) {
	env := newTestEnv(t, withPDBs(t))
	code, _, out := env.do(t, "POST", "/api/v1/namespaces/default/pods/missing/eviction", nil,
		`{"apiVersion":"policy/v1","kind":"Eviction","metadata":{"name":"missing"}}`)
	if code != 404 || !strings.Contains(out, `pods \"missing\" not found`) {
		t.Errorf("got %d %s, want 404 pods \"missing\" not found", code, out)
	}
}
