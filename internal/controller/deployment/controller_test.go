package deployment

import (
	"context"
	"encoding/json"
	"fmt"
	"sort"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/apimachinery/pkg/util/intstr"
)

// TestDeployments runs the rollout scenarios of the issue against a real
// API server with the deployment and replica set controllers, one
// namespace per subtest.
func TestDeployments(t *testing.T) {
	c := startCluster(t)
	ctx := context.Background()

	t.Run("rolling update keeps availability", func(t *testing.T) {
		t.Parallel()
		ns := c.namespace(t, "rolling")
		var (
			mu         sync.Mutex
			armed      bool
			lowest     = int32(1 << 30)
			violations []string
		)
		c.podWatch(t, ns, func(live map[string]*corev1.Pod) {
			ready := int32(0)
			for _, p := range live {
				if isPodReady(p) {
					ready++
				}
			}
			mu.Lock()
			defer mu.Unlock()
			if ready >= 10 {
				armed = true
			}
			if armed {
				lowest = min(lowest, ready)
				if ready < 10 {
					violations = append(violations, fmt.Sprintf("%d ready of %d live", ready, len(live)))
				}
			}
		})

		d := newDeployment("web", 10, "img:v1")
		d.Spec.Strategy = rolling(intstr.FromInt32(2), intstr.FromInt32(0))
		if _, err := c.client.AppsV1().Deployments(ns).Create(ctx, d, metav1.CreateOptions{}); err != nil {
			t.Fatalf("creating deployment: %v", err)
		}
		got := c.waitRollout(t, ns, "web")
		rs1 := c.rsByRevision(t, ns, "1")
		if rs1 == nil {
			t.Fatalf("no replica set with revision 1 in %v", rsNames(c.replicaSets(t, ns)))
		}
		hash := ComputeHash(&got.Spec.Template, nil)
		if rs1.Name != "web-"+hash || rs1.Labels[appsv1.DefaultDeploymentUniqueLabelKey] != hash ||
			rs1.Spec.Selector.MatchLabels[appsv1.DefaultDeploymentUniqueLabelKey] != hash ||
			rs1.Spec.Template.Labels[appsv1.DefaultDeploymentUniqueLabelKey] != hash {
			t.Errorf("replica set %s labels %v selector %v: want web-%s with the hash label everywhere", rs1.Name, rs1.Labels, rs1.Spec.Selector, hash)
		}
		if diff := cmp.Diff(map[string]string{RevisionAnnotation: "1", DesiredReplicasAnnotation: "10", MaxReplicasAnnotation: "12"}, rs1.Annotations); diff != "" {
			t.Errorf("annotations of %s (-want +got):\n%s", rs1.Name, diff)
		}

		// Roll out v2 and record why.
		got.Spec.Template.Spec.Containers[0].Image = "img:v2"
		metav1.SetMetaDataAnnotation(&got.ObjectMeta, ChangeCauseAnnotation, "to v2")
		if _, err := c.client.AppsV1().Deployments(ns).Update(ctx, got, metav1.UpdateOptions{}); err != nil {
			t.Fatalf("updating deployment: %v", err)
		}
		got = c.waitRollout(t, ns, "web")
		mu.Lock()
		if len(violations) > 0 {
			t.Errorf("availability fell below 10 during the rollout: %v", violations)
		}
		t.Logf("lowest ready count during the rollout: %d", lowest)
		mu.Unlock()

		if got.Annotations[RevisionAnnotation] != "2" {
			t.Errorf("deployment revision %q, want 2", got.Annotations[RevisionAnnotation])
		}
		rs2 := c.rsByRevision(t, ns, "2")
		if rs2 == nil || rs2.Annotations[ChangeCauseAnnotation] != "to v2" || *rs2.Spec.Replicas != 10 {
			t.Fatalf("revision 2 replica set %+v: want change-cause 'to v2' and 10 replicas", rs2)
		}
		if rs1 = c.rsByRevision(t, ns, "1"); rs1 == nil || *rs1.Spec.Replicas != 0 {
			t.Errorf("revision 1 replica set %+v: want scaled to 0", rs1)
		}
		wantConds := map[appsv1.DeploymentConditionType]string{
			appsv1.DeploymentAvailable:   "True/" + ReasonMinimumAvailable,
			appsv1.DeploymentProgressing: "True/" + ReasonNewRSAvailable,
		}
		if diff := cmp.Diff(wantConds, conditionSummary(got)); diff != "" {
			t.Errorf("conditions (-want +got):\n%s", diff)
		}
		wantStatus := appsv1.DeploymentStatus{ObservedGeneration: got.Generation, Replicas: 10, UpdatedReplicas: 10, ReadyReplicas: 10, AvailableReplicas: 10, TerminatingReplicas: ptr(int32(0))}
		gotStatus := got.Status
		gotStatus.Conditions = nil
		if diff := cmp.Diff(wantStatus, gotStatus); diff != "" {
			t.Errorf("status (-want +got):\n%s", diff)
		}
		poll(t, 10*time.Second, func() error {
			ev := strings.Join(c.events(t, ns, "web"), "\n")
			for _, want := range []string{
				"ScalingReplicaSet: Scaled up replica set " + rs1.Name + " from 0 to 10",
				"ScalingReplicaSet: Scaled up replica set " + rs2.Name + " from 0 to 2",
				"Scaled down replica set " + rs1.Name + " from ",
				" to 0",
			} {
				if !strings.Contains(ev, want) {
					return fmt.Errorf("no event %q in:\n%s", want, ev)
				}
			}
			return nil
		})

		// kubectl rollout undo: back to revision 1's template, as revision 3.
		if err := rolloutUndo(ctx, c, ns, "web", "1"); err != nil {
			t.Fatalf("rollout undo: %v", err)
		}
		got = c.waitRollout(t, ns, "web")
		if img := got.Spec.Template.Spec.Containers[0].Image; img != "img:v1" {
			t.Errorf("image after undo %q, want img:v1", img)
		}
		if got.Annotations[RevisionAnnotation] != "3" {
			t.Errorf("deployment revision after undo %q, want 3", got.Annotations[RevisionAnnotation])
		}
		rs3 := c.rsByRevision(t, ns, "3")
		if rs3 == nil || rs3.Name != rs1.Name || rs3.Annotations[RevisionHistoryAnnotation] != "1" || *rs3.Spec.Replicas != 10 {
			t.Errorf("revision 3 replica set %+v: want %s with revision-history 1 and 10 replicas", rs3, rs1.Name)
		}
		if n := len(c.replicaSets(t, ns)); n != 2 {
			t.Errorf("%d replica sets after undo, want 2", n)
		}
	})

	t.Run("recreate never overlaps", func(t *testing.T) {
		t.Parallel()
		ns := c.namespace(t, "recreate")
		var (
			mu       sync.Mutex
			overlaps []string
		)
		c.podWatch(t, ns, func(live map[string]*corev1.Pod) {
			hashes := map[string]bool{}
			for _, p := range live {
				hashes[p.Labels[appsv1.DefaultDeploymentUniqueLabelKey]] = true
			}
			if len(hashes) > 1 {
				mu.Lock()
				overlaps = append(overlaps, fmt.Sprint(hashes))
				mu.Unlock()
			}
		})
		d := newDeployment("db", 3, "db:v1")
		d.Spec.Strategy = appsv1.DeploymentStrategy{Type: appsv1.RecreateDeploymentStrategyType}
		if _, err := c.client.AppsV1().Deployments(ns).Create(ctx, d, metav1.CreateOptions{}); err != nil {
			t.Fatalf("creating deployment: %v", err)
		}
		got := c.waitRollout(t, ns, "db")
		got.Spec.Template.Spec.Containers[0].Image = "db:v2"
		if _, err := c.client.AppsV1().Deployments(ns).Update(ctx, got, metav1.UpdateOptions{}); err != nil {
			t.Fatalf("updating deployment: %v", err)
		}
		got = c.waitRollout(t, ns, "db")
		if got.Annotations[RevisionAnnotation] != "2" {
			t.Errorf("revision %q, want 2", got.Annotations[RevisionAnnotation])
		}
		mu.Lock()
		defer mu.Unlock()
		if len(overlaps) > 0 {
			t.Errorf("old and new pods ran together: %v", overlaps)
		}
	})

	t.Run("paused deployments scale but do not roll", func(t *testing.T) {
		t.Parallel()
		ns := c.namespace(t, "paused")
		d := newDeployment("api", 2, "api:v1")
		if _, err := c.client.AppsV1().Deployments(ns).Create(ctx, d, metav1.CreateOptions{}); err != nil {
			t.Fatalf("creating deployment: %v", err)
		}
		got := c.waitRollout(t, ns, "api")
		got.Spec.Paused = true
		got.Spec.Template.Spec.Containers[0].Image = "api:v2"
		got, err := c.client.AppsV1().Deployments(ns).Update(ctx, got, metav1.UpdateOptions{})
		if err != nil {
			t.Fatalf("pausing deployment: %v", err)
		}
		poll(t, 10*time.Second, func() error {
			d, err := c.client.AppsV1().Deployments(ns).Get(ctx, "api", metav1.GetOptions{})
			if err != nil {
				return err
			}
			if s := conditionSummary(d)[appsv1.DeploymentProgressing]; d.Status.ObservedGeneration < got.Generation || s != "Unknown/"+ReasonPaused {
				return fmt.Errorf("observed generation %d of %d, Progressing %s", d.Status.ObservedGeneration, got.Generation, s)
			}
			return nil
		})
		if rss := c.replicaSets(t, ns); len(rss) != 1 {
			t.Fatalf("paused deployment rolled: replica sets %v", rsNames(rss))
		}
		c.scaleTo(t, ns, "api", 4)
		poll(t, 20*time.Second, func() error {
			rss := c.replicaSets(t, ns)
			if len(rss) != 1 || *rss[0].Spec.Replicas != 4 || rss[0].Status.AvailableReplicas != 4 {
				return fmt.Errorf("replica sets %v: want the old one alone at 4 available", rsNames(rss))
			}
			return nil
		})

		// Resume: the rollout happens.
		if _, err := c.client.AppsV1().Deployments(ns).Patch(ctx, "api", types.MergePatchType, []byte(`{"spec":{"paused":false}}`), metav1.PatchOptions{}); err != nil {
			t.Fatalf("resuming: %v", err)
		}
		got = c.waitRollout(t, ns, "api")
		if img := got.Spec.Template.Spec.Containers[0].Image; img != "api:v2" || got.Status.UpdatedReplicas != 4 {
			t.Errorf("after resume image %s updated %d, want api:v2 and 4", img, got.Status.UpdatedReplicas)
		}
		if s := conditionSummary(got)[appsv1.DeploymentProgressing]; s != "True/"+ReasonNewRSAvailable {
			t.Errorf("Progressing %s after resume, want True/%s", s, ReasonNewRSAvailable)
		}
	})

	t.Run("revision history limit", func(t *testing.T) {
		t.Parallel()
		ns := c.namespace(t, "history")
		d := newDeployment("h", 1, "h:v1")
		limit := int32(1)
		d.Spec.RevisionHistoryLimit = &limit
		if _, err := c.client.AppsV1().Deployments(ns).Create(ctx, d, metav1.CreateOptions{}); err != nil {
			t.Fatalf("creating deployment: %v", err)
		}
		for _, img := range []string{"h:v2", "h:v3"} {
			got := c.waitRollout(t, ns, "h")
			got.Spec.Template.Spec.Containers[0].Image = img
			if _, err := c.client.AppsV1().Deployments(ns).Update(ctx, got, metav1.UpdateOptions{}); err != nil {
				t.Fatalf("updating deployment: %v", err)
			}
		}
		c.waitRollout(t, ns, "h")
		poll(t, 10*time.Second, func() error {
			var revs []string
			for _, rs := range c.replicaSets(t, ns) {
				revs = append(revs, rs.Annotations[RevisionAnnotation])
			}
			sort.Strings(revs)
			if diff := cmp.Diff([]string{"2", "3"}, revs); diff != "" {
				return fmt.Errorf("revisions (-want +got):\n%s", diff)
			}
			return nil
		})
	})

	t.Run("adopts a matching orphan", func(t *testing.T) {
		t.Parallel()
		ns := c.namespace(t, "adopt")
		d := newDeployment("adopt", 2, "a:v1")
		orphan := &appsv1.ReplicaSet{
			ObjectMeta: metav1.ObjectMeta{Name: "orphan", Labels: map[string]string{"app": "adopt"}},
			Spec: appsv1.ReplicaSetSpec{
				Replicas: ptr(int32(2)),
				Selector: &metav1.LabelSelector{MatchLabels: map[string]string{"app": "adopt", appsv1.DefaultDeploymentUniqueLabelKey: "x"}},
				Template: *d.Spec.Template.DeepCopy(),
			},
		}
		orphan.Spec.Template.Labels[appsv1.DefaultDeploymentUniqueLabelKey] = "x"
		if _, err := c.client.AppsV1().ReplicaSets(ns).Create(ctx, orphan, metav1.CreateOptions{}); err != nil {
			t.Fatalf("creating orphan: %v", err)
		}
		// Only an orphan the controller has seen can be adopted rather than
		// replaced by a replica set of its own.
		deadline := time.Now().Add(10 * time.Second)
		for _, err := c.rsCache.ReplicaSets(ns).Get("orphan"); err != nil; _, err = c.rsCache.ReplicaSets(ns).Get("orphan") {
			if time.Now().After(deadline) {
				t.Fatalf("the controllers' cache never showed the orphan: %v", err)
			}
			<-time.After(10 * time.Millisecond)
		}
		created, err := c.client.AppsV1().Deployments(ns).Create(ctx, d, metav1.CreateOptions{})
		if err != nil {
			t.Fatalf("creating deployment: %v", err)
		}
		c.waitRollout(t, ns, "adopt")
		rss := c.replicaSets(t, ns)
		if len(rss) != 1 {
			t.Fatalf("replica sets %v, want the orphan alone", rsNames(rss))
		}
		ref := metav1.GetControllerOf(&rss[0])
		if ref == nil || ref.UID != created.UID || rss[0].Annotations[RevisionAnnotation] != "1" {
			t.Errorf("orphan %s controller %v revision %q: want adopted by %s as revision 1", rss[0].Name, ref, rss[0].Annotations[RevisionAnnotation], created.UID)
		}
	})

	t.Run("name collision bumps collisionCount", func(t *testing.T) {
		t.Parallel()
		ns := c.namespace(t, "collision")
		d := newDeployment("col", 1, "c:v1")
		d.Spec.Paused = true // no replica set yet: we take its name first
		created, err := c.client.AppsV1().Deployments(ns).Create(ctx, d, metav1.CreateOptions{})
		if err != nil {
			t.Fatalf("creating deployment: %v", err)
		}
		hash := ComputeHash(&created.Spec.Template, nil)
		squatter := newDeployment("other", 0, "other:v1") // borrow its template and selector
		rs := &appsv1.ReplicaSet{
			ObjectMeta: metav1.ObjectMeta{Name: "col-" + hash, Labels: map[string]string{"app": "other"}},
			Spec:       appsv1.ReplicaSetSpec{Replicas: ptr(int32(0)), Selector: squatter.Spec.Selector, Template: squatter.Spec.Template},
		}
		if _, err := c.client.AppsV1().ReplicaSets(ns).Create(ctx, rs, metav1.CreateOptions{}); err != nil {
			t.Fatalf("creating squatter: %v", err)
		}
		if _, err := c.client.AppsV1().Deployments(ns).Patch(ctx, "col", types.MergePatchType, []byte(`{"spec":{"paused":false}}`), metav1.PatchOptions{}); err != nil {
			t.Fatalf("resuming: %v", err)
		}
		got := c.waitRollout(t, ns, "col")
		if got.Status.CollisionCount == nil || *got.Status.CollisionCount != 1 {
			t.Errorf("collisionCount %v, want 1", got.Status.CollisionCount)
		}
		one := int32(1)
		want := "col-" + ComputeHash(&created.Spec.Template, &one)
		if rs := c.rsByRevision(t, ns, "1"); rs == nil || rs.Name != want {
			t.Errorf("replica sets %v, want revision 1 named %s", rsNames(c.replicaSets(t, ns)), want)
		}
	})

	t.Run("minReadySeconds follows to the replica set", func(t *testing.T) {
		t.Parallel()
		ns := c.namespace(t, "minready")
		d := newDeployment("m", 1, "m:v1")
		if _, err := c.client.AppsV1().Deployments(ns).Create(ctx, d, metav1.CreateOptions{}); err != nil {
			t.Fatalf("creating deployment: %v", err)
		}
		c.waitRollout(t, ns, "m")
		if _, err := c.client.AppsV1().Deployments(ns).Patch(ctx, "m", types.MergePatchType, []byte(`{"spec":{"minReadySeconds":7}}`), metav1.PatchOptions{}); err != nil {
			t.Fatalf("patching minReadySeconds: %v", err)
		}
		poll(t, 10*time.Second, func() error {
			rss := c.replicaSets(t, ns)
			if len(rss) != 1 || rss[0].Spec.MinReadySeconds != 7 {
				return fmt.Errorf("replica sets %v: want one with minReadySeconds 7", rsNames(rss))
			}
			return nil
		})
		c.waitRollout(t, ns, "m")
	})

	t.Run("proportional scaling mid-rollout", func(t *testing.T) {
		t.Parallel()
		ns := c.namespace(t, "proportional")
		d := newDeployment("p", 10, "p:v1")
		d.Spec.Strategy = rolling(intstr.FromInt32(3), intstr.FromInt32(2))
		if _, err := c.client.AppsV1().Deployments(ns).Create(ctx, d, metav1.CreateOptions{}); err != nil {
			t.Fatalf("creating deployment: %v", err)
		}
		got := c.waitRollout(t, ns, "p")
		// The new pods never become ready: the rollout stalls at 8 old + 5 new.
		got.Spec.Template.Labels[neverReadyLabel] = "true"
		got.Spec.Template.Spec.Containers[0].Image = "p:v2"
		if _, err := c.client.AppsV1().Deployments(ns).Update(ctx, got, metav1.UpdateOptions{}); err != nil {
			t.Fatalf("updating deployment: %v", err)
		}
		waitSizes := func(wantOld, wantNew int32) {
			t.Helper()
			poll(t, 20*time.Second, func() error {
				old, nw := c.rsByRevision(t, ns, "1"), c.rsByRevision(t, ns, "2")
				if old == nil || nw == nil || *old.Spec.Replicas != wantOld || *nw.Spec.Replicas != wantNew {
					return fmt.Errorf("replica sets %v: want old %d new %d", rsNames(c.replicaSets(t, ns)), wantOld, wantNew)
				}
				return nil
			})
		}
		waitSizes(8, 5)
		c.scaleTo(t, ns, "p", 20)
		// 13 -> 23 (20 + surge 3) spread by size: 8*23/13 ~ 14, 5*23/13 ~ 9.
		waitSizes(14, 9)
	})
}

// TestProgressDeadline checks that a rollout without progress for
// progressDeadlineSeconds (on the controller's clock) gets
// Progressing=False/ProgressDeadlineExceeded. It has its own cluster
// because it moves the clock.
func TestProgressDeadline(t *testing.T) {
	c := startCluster(t)
	ctx := context.Background()
	ns := c.namespace(t, "deadline")
	d := newDeployment("slow", 1, "slow:v1")
	d.Spec.Template.Labels[neverReadyLabel] = "true"
	deadline := int32(30)
	d.Spec.ProgressDeadlineSeconds = &deadline
	if _, err := c.client.AppsV1().Deployments(ns).Create(ctx, d, metav1.CreateOptions{}); err != nil {
		t.Fatalf("creating deployment: %v", err)
	}
	get := func() *appsv1.Deployment {
		d, err := c.client.AppsV1().Deployments(ns).Get(ctx, "slow", metav1.GetOptions{})
		if err != nil {
			t.Fatalf("getting deployment: %v", err)
		}
		return d
	}
	poll(t, 10*time.Second, func() error {
		d := get()
		// Wait for the last progress (the pod being created) to be recorded.
		if d.Status.UpdatedReplicas != 1 {
			return fmt.Errorf("%d updated replicas, want 1", d.Status.UpdatedReplicas)
		}
		s := conditionSummary(d)
		if s[appsv1.DeploymentProgressing] != "True/"+ReasonNewRSCreated && s[appsv1.DeploymentProgressing] != "True/"+ReasonRSUpdated ||
			s[appsv1.DeploymentAvailable] != "False/"+ReasonMinimumUnavailable {
			return fmt.Errorf("conditions %v: want a progressing rollout without availability", s)
		}
		return nil
	})

	c.advance(31 * time.Second)
	// Any change makes the controller look again (it also requeues itself
	// for the deadline, but on the real clock that is half a minute away).
	if _, err := c.client.AppsV1().Deployments(ns).Patch(ctx, "slow", types.MergePatchType, []byte(`{"metadata":{"labels":{"poke":"1"}}}`), metav1.PatchOptions{}); err != nil {
		t.Fatalf("poking deployment: %v", err)
	}
	var got *appsv1.Deployment
	poll(t, 10*time.Second, func() error {
		got = get()
		if s := conditionSummary(got)[appsv1.DeploymentProgressing]; s != "False/"+ReasonTimedOut {
			return fmt.Errorf("Progressing %s, want False/%s", s, ReasonTimedOut)
		}
		return nil
	})
	rs := c.rsByRevision(t, ns, "1")
	if c := getCondition(got.Status, appsv1.DeploymentProgressing); rs == nil || c.Message != fmt.Sprintf("ReplicaSet %q has timed out progressing.", rs.Name) {
		t.Errorf("Progressing message %q", c.Message)
	}
	if err := rolloutDone(got); err == nil || !strings.Contains(err.Error(), "exceeded its progress deadline") {
		t.Errorf("rollout status: %v, want the deadline error", err)
	}
}

// rolloutUndo does what `kubectl rollout undo --to-revision=rev` does
// (client side since kubectl 1.2x): a JSON patch of the deployment's
// template and annotations from the replica set of that revision.
func rolloutUndo(ctx context.Context, c *cluster, ns, name, rev string) error {
	d, err := c.client.AppsV1().Deployments(ns).Get(ctx, name, metav1.GetOptions{})
	if err != nil {
		return err
	}
	rss, err := c.client.AppsV1().ReplicaSets(ns).List(ctx, metav1.ListOptions{})
	if err != nil {
		return err
	}
	var rs *appsv1.ReplicaSet
	for _, r := range rss.Items {
		if r.Annotations[RevisionAnnotation] == rev {
			rs = r.DeepCopy()
		}
	}
	if rs == nil {
		return fmt.Errorf("unable to find specified revision %s in history", rev)
	}
	delete(rs.Spec.Template.Labels, appsv1.DefaultDeploymentUniqueLabelKey)
	annotations := map[string]string{}
	for k, v := range d.Annotations {
		if skipCopyAnnotation(k) {
			annotations[k] = v
		}
	}
	for k, v := range rs.Annotations {
		if !skipCopyAnnotation(k) {
			annotations[k] = v
		}
	}
	patch, err := json.Marshal([]any{
		map[string]any{"op": "replace", "path": "/spec/template", "value": rs.Spec.Template},
		map[string]any{"op": "replace", "path": "/metadata/annotations", "value": annotations},
	})
	if err != nil {
		return err
	}
	_, err = c.client.AppsV1().Deployments(ns).Patch(ctx, name, types.JSONPatchType, patch, metav1.PatchOptions{})
	return err
}

// conditionSummary maps condition types to "Status/Reason".
func conditionSummary(d *appsv1.Deployment) map[appsv1.DeploymentConditionType]string {
	m := map[appsv1.DeploymentConditionType]string{}
	for _, c := range d.Status.Conditions {
		m[c.Type] = string(c.Status) + "/" + c.Reason
	}
	return m
}

func rsNames(rss []appsv1.ReplicaSet) []string {
	var out []string
	for _, rs := range rss {
		out = append(out, fmt.Sprintf("%s(rev %s, %d/%d available)", rs.Name, rs.Annotations[RevisionAnnotation], rs.Status.AvailableReplicas, *rs.Spec.Replicas))
	}
	return out
}

// scaleTo does what `kubectl scale --replicas=n` does: a merge patch of
// the scale subresource.
func (c *cluster) scaleTo(t *testing.T, ns, name string, n int32) {
	t.Helper()
	patch := fmt.Sprintf(`{"spec":{"replicas":%d}}`, n)
	if _, err := c.client.AppsV1().Deployments(ns).Patch(context.Background(), name, types.MergePatchType, []byte(patch), metav1.PatchOptions{}, "scale"); err != nil {
		t.Fatalf("scaling %s/%s to %d: %v", ns, name, n, err)
	}
}
