package apiserver

import (
	"context"
	"encoding/json"
	"strings"
	"testing"

	appsv1 "k8s.io/api/apps/v1"
	autoscalingv1 "k8s.io/api/autoscaling/v1"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
)

func TestScale(t *testing.T) {
	env := newTestEnv(t)
	cs := env.clientset(t)
	ctx := context.Background()
	labels := map[string]string{"app": "web"}
	dep := &appsv1.Deployment{
		ObjectMeta: metav1.ObjectMeta{Name: "web"},
		Spec: appsv1.DeploymentSpec{
			Selector: &metav1.LabelSelector{MatchLabels: labels},
			Template: corev1.PodTemplateSpec{
				ObjectMeta: metav1.ObjectMeta{Labels: labels},
				Spec:       corev1.PodSpec{Containers: []corev1.Container{{Name: "c", Image: "nginx"}}},
			},
		},
	}
	if _, err := cs.AppsV1().Deployments("default").Create(ctx, dep, metav1.CreateOptions{}); err != nil {
		t.Fatalf("create deployment: %v", err)
	}
	sc, err := cs.AppsV1().Deployments("default").GetScale(ctx, "web", metav1.GetOptions{})
	if err != nil {
		t.Fatalf("get scale: %v", err)
	}
	if sc.Spec.Replicas != 1 || sc.Status.Selector != "app=web" || sc.Name != "web" {
		t.Errorf("scale = %+v", sc)
	}
	sc.Spec.Replicas = 3
	out, err := cs.AppsV1().Deployments("default").UpdateScale(ctx, "web", sc, metav1.UpdateOptions{})
	if err != nil {
		t.Fatalf("update scale: %v", err)
	}
	if out.Spec.Replicas != 3 {
		t.Errorf("updated scale replicas = %d", out.Spec.Replicas)
	}
	// A stale resourceVersion in the Scale conflicts.
	if _, err := cs.AppsV1().Deployments("default").UpdateScale(ctx, "web", sc, metav1.UpdateOptions{}); !apierrors.IsConflict(err) {
		t.Errorf("stale scale update: got %v, want Conflict", err)
	}
	// kubectl scale sends a merge patch to /scale.
	code, _, body := env.do(t, "PATCH", "/apis/apps/v1/namespaces/default/deployments/web/scale",
		map[string]string{"Content-Type": string(types.MergePatchType)}, `{"spec":{"replicas":5}}`)
	if code != 200 {
		t.Fatalf("patch scale: %d %s", code, body)
	}
	var patched autoscalingv1.Scale
	if err := json.Unmarshal([]byte(body), &patched); err != nil {
		t.Fatal(err)
	}
	if patched.Kind != "Scale" || patched.APIVersion != "autoscaling/v1" || patched.Spec.Replicas != 5 {
		t.Errorf("patched scale = %s", body)
	}
	got, err := cs.AppsV1().Deployments("default").Get(ctx, "web", metav1.GetOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if got.Spec.Replicas == nil || *got.Spec.Replicas != 5 {
		t.Errorf("deployment replicas = %v, want 5", got.Spec.Replicas)
	}
	neg := *sc
	neg.ResourceVersion = ""
	neg.Spec.Replicas = -1
	if _, err := cs.AppsV1().Deployments("default").UpdateScale(ctx, "web", &neg, metav1.UpdateOptions{}); !apierrors.IsInvalid(err) {
		t.Errorf("negative replicas: got %v, want Invalid", err)
	}
	if _, err := cs.AppsV1().Deployments("default").GetScale(ctx, "missing", metav1.GetOptions{}); !apierrors.IsNotFound(err) {
		t.Errorf("scale of missing: got %v, want NotFound", err)
	}

	// Status subresource: status is only written through /status.
	got.Status.ObservedGeneration = 7
	got.Status.Replicas = 2
	st, err := cs.AppsV1().Deployments("default").UpdateStatus(ctx, got, metav1.UpdateOptions{})
	if err != nil {
		t.Fatalf("update status: %v", err)
	}
	if st.Status.Replicas != 2 {
		t.Errorf("status replicas = %d", st.Status.Replicas)
	}
	code, _, body = env.do(t, "PATCH", "/apis/apps/v1/namespaces/default/deployments/web/status",
		map[string]string{"Content-Type": string(types.MergePatchType)}, `{"status":{"readyReplicas":1}}`)
	if code != 200 {
		t.Fatalf("patch status: %d %s", code, body)
	}
}

func TestBinding(t *testing.T) {
	env := newTestEnv(t)
	cs := env.clientset(t)
	ctx := context.Background()
	pods := cs.CoreV1().Pods("default")
	for _, n := range []string{"p1", "p2"} {
		pod := &corev1.Pod{
			ObjectMeta: metav1.ObjectMeta{Name: n},
			Spec:       corev1.PodSpec{Containers: []corev1.Container{{Name: "c", Image: "busybox"}}},
		}
		if _, err := pods.Create(ctx, pod, metav1.CreateOptions{}); err != nil {
			t.Fatalf("create pod: %v", err)
		}
	}
	if err := pods.Bind(ctx, &corev1.Binding{
		ObjectMeta: metav1.ObjectMeta{Name: "p1"},
		Target:     corev1.ObjectReference{Kind: "Node", Name: "node-a"},
	}, metav1.CreateOptions{}); err != nil {
		t.Fatalf("bind: %v", err)
	}
	got, err := pods.Get(ctx, "p1", metav1.GetOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if got.Spec.NodeName != "node-a" {
		t.Errorf("nodeName = %q", got.Spec.NodeName)
	}
	scheduled := false
	for _, c := range got.Status.Conditions {
		if c.Type == corev1.PodScheduled && c.Status == corev1.ConditionTrue {
			scheduled = true
		}
	}
	if !scheduled {
		t.Errorf("no PodScheduled=True condition: %+v", got.Status.Conditions)
	}
	err = pods.Bind(ctx, &corev1.Binding{
		ObjectMeta: metav1.ObjectMeta{Name: "p1"},
		Target:     corev1.ObjectReference{Kind: "Node", Name: "node-b"},
	}, metav1.CreateOptions{})
	if !apierrors.IsConflict(err) {
		t.Errorf("second bind: got %v, want Conflict", err)
	}

	// The namespace-level bindings collection, as older schedulers use.
	code, _, body := env.do(t, "POST", "/api/v1/namespaces/default/bindings", nil,
		`{"apiVersion":"v1","kind":"Binding","metadata":{"name":"p2"},"target":{"kind":"Node","name":"node-b"}}`)
	if code != 201 {
		t.Fatalf("POST bindings: %d %s", code, body)
	}
	if got, err := pods.Get(ctx, "p2", metav1.GetOptions{}); err != nil || got.Spec.NodeName != "node-b" {
		t.Errorf("p2 after binding: %v %q", err, got.Spec.NodeName)
	}
	if err := pods.Bind(ctx, &corev1.Binding{ObjectMeta: metav1.ObjectMeta{Name: "nope"}, Target: corev1.ObjectReference{Name: "n"}}, metav1.CreateOptions{}); !apierrors.IsNotFound(err) {
		t.Errorf("bind missing pod: got %v, want NotFound", err)
	}

	// Deleting a bound pod answers with the pod (graceful or not).
	code, _, body = env.do(t, "DELETE", "/api/v1/namespaces/default/pods/p1", nil, "")
	if code != 200 {
		t.Fatalf("delete pod: %d %s", code, body)
	}
	var deleted metav1.PartialObjectMetadata
	if err := json.Unmarshal([]byte(body), &deleted); err != nil || deleted.Kind != "Pod" || deleted.Name != "p1" {
		t.Errorf("delete pod body = %s", body)
	}
}

func TestDeleteResponses(t *testing.T) {
	env := newTestEnv(t)
	ctx := context.Background()
	cs := env.clientset(t)
	cm, err := cs.CoreV1().ConfigMaps("default").Create(ctx, &corev1.ConfigMap{ObjectMeta: metav1.ObjectMeta{Name: "gone"}}, metav1.CreateOptions{})
	if err != nil {
		t.Fatal(err)
	}
	code, _, body := env.do(t, "DELETE", "/api/v1/namespaces/default/configmaps/gone", nil, `{"kind":"DeleteOptions","apiVersion":"v1","propagationPolicy":"Background"}`)
	if code != 200 {
		t.Fatalf("delete: %d %s", code, body)
	}
	var st metav1.Status
	if err := json.Unmarshal([]byte(body), &st); err != nil {
		t.Fatal(err)
	}
	if st.Kind != "Status" || st.Status != metav1.StatusSuccess || st.Details == nil || st.Details.Name != "gone" ||
		st.Details.Kind != "configmaps" || st.Details.UID != cm.UID {
		t.Errorf("delete status = %s", body)
	}

	// An object with a finalizer is only marked: the object comes back.
	if _, err := cs.CoreV1().ConfigMaps("default").Create(ctx, &corev1.ConfigMap{ObjectMeta: metav1.ObjectMeta{Name: "held", Finalizers: []string{"example.com/hold"}}}, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	code, _, body = env.do(t, "DELETE", "/api/v1/namespaces/default/configmaps/held?propagationPolicy=Foreground", nil, "")
	if code != 200 {
		t.Fatalf("delete with finalizer: %d %s", code, body)
	}
	var held corev1.ConfigMap
	if err := json.Unmarshal([]byte(body), &held); err != nil || held.Kind != "ConfigMap" || held.DeletionTimestamp == nil {
		t.Errorf("delete with finalizer body = %s", body)
	}
	code, _, body = env.do(t, "DELETE", "/api/v1/namespaces/default/configmaps/x?propagationPolicy=Sideways", nil, "")
	if code != 422 {
		t.Errorf("bad propagationPolicy: %d %s", code, body)
	}
}

func TestScaleResources(t *testing.T) {
	env := newTestEnv(t)
	template := `"template":{"metadata":{"labels":{"app":"x"}},"spec":{"containers":[{"name":"c","image":"nginx"}]}}`
	tests := []struct {
		name, collection, body string
	}{
		{"replicasets", "/apis/apps/v1/namespaces/default/replicasets",
			`{"metadata":{"name":"rs"},"spec":{"selector":{"matchLabels":{"app":"x"}},` + template + `}}`},
		{"statefulsets", "/apis/apps/v1/namespaces/default/statefulsets",
			`{"metadata":{"name":"sts"},"spec":{"serviceName":"s","selector":{"matchLabels":{"app":"x"}},` + template + `}}`},
		{"replicationcontrollers", "/api/v1/namespaces/default/replicationcontrollers",
			`{"metadata":{"name":"rc"},"spec":{"selector":{"app":"x"},` + template + `}}`},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			code, _, body := env.do(t, "POST", tc.collection, nil, tc.body)
			if code != 201 {
				t.Fatalf("create: %d %s", code, body)
			}
			var obj metav1.PartialObjectMetadata
			if err := json.Unmarshal([]byte(body), &obj); err != nil {
				t.Fatal(err)
			}
			scalePath := tc.collection + "/" + obj.Name + "/scale"
			code, _, body = env.do(t, "PATCH", scalePath, map[string]string{"Content-Type": string(types.MergePatchType)}, `{"spec":{"replicas":4}}`)
			if code != 200 {
				t.Fatalf("patch scale: %d %s", code, body)
			}
			code, _, body = env.do(t, "GET", scalePath, nil, "")
			var sc autoscalingv1.Scale
			if err := json.Unmarshal([]byte(body), &sc); err != nil || code != 200 {
				t.Fatalf("get scale: %d %s", code, body)
			}
			if sc.Spec.Replicas != 4 || sc.Status.Selector != "app=x" {
				t.Errorf("scale = %s", body)
			}
		})
	}
}

func TestNamespaceFinalize(t *testing.T) {
	env := newTestEnv(t)
	code, _, body := env.do(t, "POST", "/api/v1/namespaces", nil, `{"metadata":{"name":"team"}}`)
	if code != 201 {
		t.Fatalf("create namespace: %d %s", code, body)
	}
	var ns corev1.Namespace
	if err := json.Unmarshal([]byte(body), &ns); err != nil {
		t.Fatal(err)
	}
	ns.Spec.Finalizers = nil
	b, err := json.Marshal(&ns)
	if err != nil {
		t.Fatal(err)
	}
	code, _, body = env.do(t, "PUT", "/api/v1/namespaces/team/finalize", nil, string(b))
	if code != 200 {
		t.Fatalf("finalize: %d %s", code, body)
	}
	var out corev1.Namespace
	if err := json.Unmarshal([]byte(body), &out); err != nil || out.Kind != "Namespace" || len(out.Spec.Finalizers) != 0 {
		t.Errorf("finalize response = %s", body)
	}
	if code, _, body := env.do(t, "GET", "/api/v1/namespaces/team/status", nil, ""); code != 200 {
		t.Errorf("namespace status: %d %s", code, body)
	}
}

// pods/ephemeralcontainers: what kubectl debug patches. Only the ephemeral
// containers change; existing ones stay as they are.
func TestEphemeralContainers(t *testing.T) {
	env := newTestEnv(t)
	cs := env.clientset(t)
	ctx := context.Background()
	pods := cs.CoreV1().Pods("default")
	pod, err := pods.Create(ctx, &corev1.Pod{
		ObjectMeta: metav1.ObjectMeta{Name: "web", Labels: map[string]string{"app": "web"}},
		Spec:       corev1.PodSpec{Containers: []corev1.Container{{Name: "app", Image: "busybox"}}},
	}, metav1.CreateOptions{})
	if err != nil {
		t.Fatal(err)
	}

	patch := `{"spec":{"ephemeralContainers":[{"name":"dbg","image":"busybox","targetContainerName":"app","stdin":true,"tty":true}]}}`
	got, err := pods.Patch(ctx, "web", types.StrategicMergePatchType, []byte(patch), metav1.PatchOptions{}, "ephemeralcontainers")
	if err != nil {
		t.Fatalf("patch ephemeralcontainers: %v", err)
	}
	if n := len(got.Spec.EphemeralContainers); n != 1 || got.Spec.EphemeralContainers[0].TargetContainerName != "app" ||
		got.Spec.EphemeralContainers[0].ImagePullPolicy != corev1.PullAlways || got.Spec.EphemeralContainers[0].TerminationMessagePath == "" {
		t.Fatalf("ephemeral containers after the patch = %+v, want dbg, defaulted", got.Spec.EphemeralContainers)
	}
	// As upstream 1.33 (pod generation tracking; the conformance test
	// "should update the ephemeral containers in an existing pod").
	if got.Generation != pod.Generation+1 {
		t.Errorf("generation %d -> %d: adding an ephemeral container changes the pod's spec", pod.Generation, got.Generation)
	}

	// Other fields of the body are ignored; the typed client's update.
	upd := got.DeepCopy()
	upd.Labels = map[string]string{"app": "other"}
	upd.Spec.EphemeralContainers = append(upd.Spec.EphemeralContainers, corev1.EphemeralContainer{
		EphemeralContainerCommon: corev1.EphemeralContainerCommon{Name: "dbg2", Image: "busybox"}})
	got, err = pods.UpdateEphemeralContainers(ctx, "web", upd, metav1.UpdateOptions{})
	if err != nil {
		t.Fatalf("update ephemeralcontainers: %v", err)
	}
	if len(got.Spec.EphemeralContainers) != 2 || got.Labels["app"] != "web" {
		t.Errorf("after the update: %d ephemeral containers, labels %v; want 2 and the labels unchanged", len(got.Spec.EphemeralContainers), got.Labels)
	}

	removed := got.DeepCopy()
	removed.Spec.EphemeralContainers = removed.Spec.EphemeralContainers[1:]
	_, err = pods.UpdateEphemeralContainers(ctx, "web", removed, metav1.UpdateOptions{})
	if !apierrors.IsInvalid(err) || !strings.Contains(err.Error(), `existing ephemeral containers "dbg" may not be removed or changed`) {
		t.Errorf("removing an ephemeral container: %v, want 422 naming it", err)
	}
	bad := `{"spec":{"ephemeralContainers":[{"name":"dbg3","image":"busybox","ports":[{"containerPort":80}]}]}}`
	_, err = pods.Patch(ctx, "web", types.StrategicMergePatchType, []byte(bad), metav1.PatchOptions{}, "ephemeralcontainers")
	if !apierrors.IsInvalid(err) || !strings.Contains(err.Error(), "].ports: Forbidden: cannot be set for an Ephemeral Container") {
		t.Errorf("an ephemeral container with ports: %v, want 422 naming the field", err)
	}
	if _, err := pods.Create(ctx, &corev1.Pod{
		ObjectMeta: metav1.ObjectMeta{Name: "eph-on-create"},
		Spec: corev1.PodSpec{Containers: []corev1.Container{{Name: "app", Image: "busybox"}},
			EphemeralContainers: []corev1.EphemeralContainer{{EphemeralContainerCommon: corev1.EphemeralContainerCommon{Name: "d", Image: "busybox"}}}},
	}, metav1.CreateOptions{}); !apierrors.IsInvalid(err) {
		t.Errorf("a pod created with ephemeral containers: %v, want 422", err)
	}
	code, _, body := env.do(t, "GET", "/api/v1/namespaces/default/pods/web/ephemeralcontainers", nil, "")
	if code != 200 || !strings.Contains(body, `"dbg2"`) {
		t.Errorf("GET ephemeralcontainers: %d %s", code, body)
	}
}
