package admission_test

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	corev1 "k8s.io/api/core/v1"
	nodev1 "k8s.io/api/node/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/informers"
	"k8s.io/client-go/kubernetes"

	"github.com/skiff-dev/skiff/internal/admission"
	"github.com/skiff-dev/skiff/internal/testserver"
)

func startServer(t *testing.T) (context.Context, kubernetes.Interface) {
	t.Helper()
	if testing.Short() {
		t.Skip("starts an API server")
	}
	cfg := testserver.Start(t, testserver.Options{})
	client, err := kubernetes.NewForConfig(cfg)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	t.Cleanup(cancel)
	return ctx, client
}

// TestQuotaConcurrentCreates: with a real API server, concurrent pod
// admissions against a quota of 2 pods let exactly 2 through, because each
// charge is a conditional update of the quota's status.
func TestQuotaConcurrentCreates(t *testing.T) {
	t.Parallel()
	ctx, client := startServer(t)
	if _, err := client.CoreV1().Namespaces().Create(ctx, namespace("quota", nil), metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	q := syncedQuota("pods", rl("pods", "2"), nil)
	q.Namespace, q.ResourceVersion = "quota", ""
	q, err := client.CoreV1().ResourceQuotas("quota").Create(ctx, q, metav1.CreateOptions{})
	if err != nil {
		t.Fatal(err)
	}
	q.Status = corev1.ResourceQuotaStatus{Hard: rl("pods", "2"), Used: rl("pods", "0")} // as the controller would
	if _, err := client.CoreV1().ResourceQuotas("quota").UpdateStatus(ctx, q, metav1.UpdateOptions{}); err != nil {
		t.Fatal(err)
	}

	chain := admission.NewChain(admission.NewResourceQuota(nil, client))
	const n = 8
	errs := make([]error, n)
	var wg sync.WaitGroup
	for i := range n {
		wg.Add(1)
		go func() {
			defer wg.Done()
			errs[i] = chain.Admit(ctx, podCreate("quota", testPod(fmt.Sprintf("p%d", i))))
		}()
	}
	wg.Wait()
	admitted := 0
	for _, err := range errs {
		switch {
		case err == nil:
			admitted++
		case apierrors.IsForbidden(err) && strings.Contains(err.Error(), "exceeded quota: pods, requested: pods=1, used: pods=2, limited: pods=2"):
		default:
			t.Errorf("unexpected error: %v", err)
		}
	}
	if admitted != 2 {
		t.Errorf("admitted %d pods, want 2", admitted)
	}
	got, err := client.CoreV1().ResourceQuotas("quota").Get(ctx, "pods", metav1.GetOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if used := got.Status.Used[corev1.ResourcePods]; used.Value() != 2 {
		t.Errorf("status.used.pods = %s, want 2", used.String())
	}
}

// TestDefaultChain runs the default chain from informers against a real
// API server and stores what it admits, so the mutations are checked by
// the server's own validation.
func TestDefaultChain(t *testing.T) {
	t.Parallel()
	ctx, client := startServer(t)
	f := informers.NewSharedInformerFactory(client, 0)
	chain := admission.Default(f, client)
	f.StartWithContext(ctx)
	f.WaitForCacheSync(ctx.Done())
	if err := admission.EnsurePriorityClasses(ctx, client); err != nil {
		t.Fatal(err)
	}

	for _, ns := range []*corev1.Namespace{
		namespace("open", nil),
		namespace("locked", map[string]string{admission.PSSEnforceLabel: "restricted", admission.PSSWarnLabel: "restricted"}),
	} {
		if _, err := client.CoreV1().Namespaces().Create(ctx, ns, metav1.CreateOptions{}); err != nil {
			t.Fatal(err)
		}
		sa := serviceAccount("default", nil)
		sa.Namespace = ns.Name
		if _, err := client.CoreV1().ServiceAccounts(ns.Name).Create(ctx, sa, metav1.CreateOptions{}); err != nil {
			t.Fatal(err)
		}
	}
	lr := limitRange("defaults", corev1.LimitRangeItem{Type: corev1.LimitTypeContainer, Default: rl("memory", "128Mi")})
	lr.Namespace = "open"
	if _, err := client.CoreV1().LimitRanges("open").Create(ctx, lr, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}

	// Privileged pod in the restricted namespace: refused by PodSecurity.
	bad := privilegedPod("bad")
	bad.Namespace = "locked"
	err := chain.Admit(ctx, podCreate("locked", bad))
	want := `pods "bad" is forbidden: violates PodSecurity "restricted:latest": ` +
		`privileged (container "c" must not set securityContext.privileged=true), ` +
		`allowPrivilegeEscalation != false (container "c" must set securityContext.allowPrivilegeEscalation=false), ` +
		`unrestricted capabilities (container "c" must set securityContext.capabilities.drop=["ALL"]), ` +
		`runAsNonRoot != true (pod or container "c" must set securityContext.runAsNonRoot=true), ` +
		`seccompProfile (pod or container "c" must set securityContext.seccompProfile.type to "RuntimeDefault" or "Localhost")`
	if !apierrors.IsForbidden(err) || err.Error() != want {
		t.Errorf("privileged pod in restricted namespace:\ngot  %v\nwant %s", err, want)
	}

	// A plain pod in the open namespace: every mutator runs; the API
	// server accepts the result. Informers may lag the objects created
	// above, which the plugins cover with live reads.
	pod := testPod("ok")
	pod.Namespace = "open"
	pod.Spec.PriorityClassName = admission.SystemClusterCritical
	req := podCreate("open", pod)
	if err := chain.Admit(ctx, req); err != nil {
		t.Fatalf("admitting a plain pod: %v", err)
	}
	if pod.Spec.ServiceAccountName != "default" || len(pod.Spec.Volumes) != 1 || !strings.HasPrefix(pod.Spec.Volumes[0].Name, admission.TokenVolumePrefix) {
		t.Errorf("service account not applied: %+v", pod.Spec)
	}
	if m := pod.Spec.Containers[0].Resources.Limits[corev1.ResourceMemory]; m.String() != "128Mi" {
		t.Errorf("limit range default not applied: %+v", pod.Spec.Containers[0].Resources)
	}
	if pod.Spec.Priority == nil || *pod.Spec.Priority != admission.SystemCriticalPriority {
		t.Errorf("priority not applied: %v", pod.Spec.Priority)
	}
	if _, err := client.CoreV1().Pods("open").Create(ctx, pod, metav1.CreateOptions{}); err != nil {
		t.Fatalf("the API server refused the admitted pod: %v", err)
	}

	// A missing service account is refused until it exists.
	pod2 := testPod("robotic")
	pod2.Namespace = "open"
	pod2.Spec.ServiceAccountName = "robot"
	err = chain.Admit(ctx, podCreate("open", pod2.DeepCopy()))
	if want := `pods "robotic" is forbidden: error looking up service account open/robot: serviceaccounts "robot" not found`; err == nil || err.Error() != want {
		t.Errorf("missing account: got %v, want %s", err, want)
	}
	robot := serviceAccount("robot", nil)
	robot.Namespace = "open"
	if _, err := client.CoreV1().ServiceAccounts("open").Create(ctx, robot, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	if err := pollUntil(ctx, 10*time.Second, func() error { return chain.Admit(ctx, podCreate("open", pod2.DeepCopy())) }); err != nil {
		t.Errorf("after creating the account: %v", err)
	}
}

// pollUntil calls f until it returns nil or the deadline passes, and
// returns the last error.
func pollUntil(ctx context.Context, timeout time.Duration, f func() error) error {
	deadline := time.Now().Add(timeout)
	for {
		err := f()
		if err == nil {
			return nil
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("after %s: %w", timeout, err)
		}
		select {
		case <-ctx.Done():
			return errors.Join(err, ctx.Err())
		case <-time.After(50 * time.Millisecond):
		}
	}
}

// The helpers of the package's own tests, exported to this external test
// by export_test.go (an internal test would import the server, which
// imports this package).
var (
	namespace      = admission.Namespace
	podCreate      = admission.PodCreate
	testPod        = admission.TestPod
	privilegedPod  = admission.PrivilegedPod
	syncedQuota    = admission.SyncedQuota
	usedOf         = admission.UsedOf
	rl             = admission.RL
	limitRange     = admission.LimitRangeOf
	serviceAccount = admission.ServiceAccountOf
)

// TestRuntimeClassThroughServer creates pods through a real API server
// (its own admission chain): a pod naming a RuntimeClass gets the class's
// overhead, nodeSelector and tolerations stored; a pod naming a missing
// class is refused with 403.
func TestRuntimeClassThroughServer(t *testing.T) {
	t.Parallel()
	ctx, client := startServer(t)
	if _, err := client.CoreV1().Namespaces().Create(ctx, namespace("rc", nil), metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	toleration := corev1.Toleration{Key: "sandboxed", Operator: corev1.TolerationOpExists, Effect: corev1.TaintEffectNoSchedule}
	rc := &nodev1.RuntimeClass{
		ObjectMeta: metav1.ObjectMeta{Name: "sandboxed"},
		Handler:    "runc",
		Overhead:   &nodev1.Overhead{PodFixed: rl("cpu", "250m", "memory", "64Mi")},
		Scheduling: &nodev1.Scheduling{
			NodeSelector: map[string]string{"runtime": "sandboxed"},
			Tolerations:  []corev1.Toleration{toleration},
		},
	}
	if _, err := client.NodeV1().RuntimeClasses().Create(ctx, rc, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}

	pod := testPod("with-class")
	pod.Namespace = "rc"
	pod.Spec.RuntimeClassName = ptr("sandboxed")
	pod.Spec.NodeSelector = map[string]string{"disk": "ssd"}
	if _, err := client.CoreV1().Pods("rc").Create(ctx, pod, metav1.CreateOptions{}); err != nil {
		t.Fatalf("creating a pod naming the class: %v", err)
	}
	stored, err := client.CoreV1().Pods("rc").Get(ctx, "with-class", metav1.GetOptions{})
	if err != nil {
		t.Fatal(err)
	}
	type spec struct {
		Overhead     map[corev1.ResourceName]string
		NodeSelector map[string]string
		Tolerations  []corev1.Toleration
	}
	got := spec{Overhead: map[corev1.ResourceName]string{}, NodeSelector: stored.Spec.NodeSelector, Tolerations: stored.Spec.Tolerations}
	for k, q := range stored.Spec.Overhead {
		got.Overhead[k] = q.String()
	}
	want := spec{
		Overhead:     map[corev1.ResourceName]string{"cpu": "250m", "memory": "64Mi"},
		NodeSelector: map[string]string{"disk": "ssd", "runtime": "sandboxed"},
		Tolerations:  []corev1.Toleration{toleration},
	}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("stored pod (-want +got):\n%s", diff)
	}

	missing := testPod("missing-class")
	missing.Namespace = "rc"
	missing.Spec.RuntimeClassName = ptr("gvisor")
	_, err = client.CoreV1().Pods("rc").Create(ctx, missing, metav1.CreateOptions{})
	if wantErr := `pods "missing-class" is forbidden: pod rejected: RuntimeClass "gvisor" not found`; !apierrors.IsForbidden(err) || err.Error() != wantErr {
		t.Errorf("pod naming a missing class: got %v, want 403 %s", err, wantErr)
	}
}

func ptr[T any](v T) *T { return &v }
