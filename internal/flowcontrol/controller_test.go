package flowcontrol

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	flowcontrolv1 "k8s.io/api/flowcontrol/v1"
	"k8s.io/apimachinery/pkg/api/equality"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/kubernetes/fake"
	"k8s.io/utils/ptr"
)

// start runs the controller on a fake clientset holding objs, re-ensuring
// every 20 ms, until the test ends.
func start(t *testing.T, objs ...runtime.Object) kubernetes.Interface {
	t.Helper()
	client := fake.NewClientset(objs...)
	c := newController(client, nil, slog.New(slog.NewTextHandler(testWriter{t}, nil)), 20*time.Millisecond, 20*time.Millisecond)
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- c.run(ctx) }()
	t.Cleanup(func() {
		cancel()
		if err := <-done; err != nil {
			t.Errorf("run: %v", err)
		}
	})
	return client
}

type testWriter struct{ t *testing.T }

func (w testWriter) Write(p []byte) (int, error) { w.t.Log(string(p)); return len(p), nil }

// eventually polls f until it returns nil and fails the test with its last
// error after 10 s.
func eventually(t *testing.T, f func() error) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	tick := time.NewTicker(10 * time.Millisecond)
	defer tick.Stop()
	for {
		err := f()
		if err == nil {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("condition not met: %v", err)
		}
		<-tick.C
	}
}

func getPL(client kubernetes.Interface, name string) (*flowcontrolv1.PriorityLevelConfiguration, error) {
	return client.FlowcontrolV1().PriorityLevelConfigurations().Get(context.Background(), name, metav1.GetOptions{})
}

func getFS(client kubernetes.Interface, name string) (*flowcontrolv1.FlowSchema, error) {
	return client.FlowcontrolV1().FlowSchemas().Get(context.Background(), name, metav1.GetOptions{})
}

func TestRunCreatesMissingObjects(t *testing.T) {
	t.Parallel()
	client := start(t)
	mandatory, suggested := Bootstrap()
	for _, obj := range append(mandatory, suggested...) {
		want := obj.(object)
		eventually(t, func() error {
			var got object
			var err error
			switch want.(type) {
			case *flowcontrolv1.FlowSchema:
				got, err = getFS(client, want.GetName())
			default:
				got, err = getPL(client, want.GetName())
			}
			if err != nil {
				return err
			}
			if got.GetAnnotations()[flowcontrolv1.AutoUpdateAnnotationKey] != "true" {
				return fmt.Errorf("%s: annotations %v", want.GetName(), got.GetAnnotations())
			}
			return nil
		})
	}
}

func TestRunRestoresMandatorySpec(t *testing.T) {
	t.Parallel()
	catchAll := MandatoryPriorityLevelConfiguration("catch-all")
	catchAll.Spec.Limited.NominalConcurrencyShares = ptr.To[int32](50)
	catchAll.Annotations[flowcontrolv1.AutoUpdateAnnotationKey] = "false" // no protection for mandatory objects
	catchAll.Generation = 2
	exempt := MandatoryPriorityLevelConfiguration("exempt")
	exempt.Spec.Exempt.NominalConcurrencyShares = ptr.To[int32](7) // the administrator's to change
	exemptFS := MandatoryFlowSchema("exempt")
	exemptFS.Spec.Rules = nil
	delete(exemptFS.Annotations, flowcontrolv1.AutoUpdateAnnotationKey)

	client := start(t, catchAll, exempt, exemptFS)
	eventually(t, func() error {
		got, err := getPL(client, "catch-all")
		if err != nil {
			return err
		}
		if want := MandatoryPriorityLevelConfiguration("catch-all"); !equality.Semantic.DeepEqual(want.Spec, got.Spec) || got.Annotations[flowcontrolv1.AutoUpdateAnnotationKey] != "true" {
			return fmt.Errorf("catch-all not restored: %v %+v", got.Annotations, got.Spec.Limited)
		}
		return nil
	})
	eventually(t, func() error {
		got, err := getFS(client, "exempt")
		if err != nil {
			return err
		}
		if want := MandatoryFlowSchema("exempt"); !equality.Semantic.DeepEqual(want.Spec, got.Spec) || got.Annotations[flowcontrolv1.AutoUpdateAnnotationKey] != "true" {
			return fmt.Errorf("exempt flow schema not restored: %v %+v", got.Annotations, got.Spec)
		}
		return nil
	})
	got, err := getPL(client, "exempt")
	if err != nil {
		t.Fatal(err)
	}
	if diff := cmp.Diff(ptr.To[int32](7), got.Spec.Exempt.NominalConcurrencyShares); diff != "" {
		t.Errorf("exempt level's nominalConcurrencyShares changed (-want +got):\n%s", diff)
	}
}

func TestRunLeavesSuggestedObjectAnnotatedFalse(t *testing.T) {
	t.Parallel()
	mine := queuing("global-default", 99, 0, 8, 2)
	mine.Annotations[flowcontrolv1.AutoUpdateAnnotationKey] = "false"
	mine.Generation = 3
	client := start(t, mine)
	// Once the later objects of the pass exist, global-default has been
	// looked at.
	eventually(t, func() error {
		_, err := getFS(client, "catch-all")
		return err
	})
	got, err := getPL(client, "global-default")
	if err != nil {
		t.Fatal(err)
	}
	if diff := cmp.Diff(mine.Spec, got.Spec); diff != "" {
		t.Errorf("spec changed (-want +got):\n%s", diff)
	}
	if v := got.Annotations[flowcontrolv1.AutoUpdateAnnotationKey]; v != "false" {
		t.Errorf("annotation = %q, want false", v)
	}
}

func TestRunRemovesObsoleteAnnotatedObjects(t *testing.T) {
	t.Parallel()
	obsolete := queuing("retired-level", 1, 0, 8, 2)
	kept := queuing("admins-level", 1, 0, 8, 2)
	kept.Annotations[flowcontrolv1.AutoUpdateAnnotationKey] = "false"
	own := queuing("own-level", 1, 0, 8, 2)
	own.Annotations = nil
	client := start(t, obsolete, kept, own)
	eventually(t, func() error {
		if _, err := getPL(client, "retired-level"); err == nil {
			return errors.New("retired-level still exists")
		}
		return nil
	})
	for _, name := range []string{"admins-level", "own-level"} {
		if _, err := getPL(client, name); err != nil {
			t.Errorf("%s: %v", name, err)
		}
	}
}

func TestRunKeepsDanglingCondition(t *testing.T) {
	t.Parallel()
	fs := flowSchema("mine", "missing-level", 5000, "", everything(users("alice")))
	fs.Annotations = nil
	fs.Status.Conditions = []flowcontrolv1.FlowSchemaCondition{{Type: "Other", Status: "True", Reason: "Mine"}}
	client := start(t, fs)

	condition := func(status flowcontrolv1.ConditionStatus, reason, message string) func() error {
		return func() error {
			got, err := getFS(client, "mine")
			if err != nil {
				return err
			}
			var dangling *flowcontrolv1.FlowSchemaCondition
			for i, c := range got.Status.Conditions {
				if c.Type == flowcontrolv1.FlowSchemaConditionDangling {
					dangling = &got.Status.Conditions[i]
				}
			}
			if dangling == nil {
				return fmt.Errorf("no Dangling condition in %+v", got.Status.Conditions)
			}
			if dangling.Status != status || dangling.Reason != reason || dangling.Message != message || dangling.LastTransitionTime.IsZero() {
				return fmt.Errorf("Dangling = %+v", *dangling)
			}
			if got.Status.Conditions[0].Type != "Other" {
				return fmt.Errorf("other condition lost: %+v", got.Status.Conditions)
			}
			return nil
		}
	}
	eventually(t, condition(flowcontrolv1.ConditionTrue, "NotFound",
		`This FlowSchema references the PriorityLevelConfiguration object named "missing-level" but there is no such object`))

	level := queuing("missing-level", 1, 0, 8, 2)
	level.Annotations = nil
	if _, err := client.FlowcontrolV1().PriorityLevelConfigurations().Create(context.Background(), level, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	eventually(t, condition(flowcontrolv1.ConditionFalse, "Found",
		`This FlowSchema references the PriorityLevelConfiguration object named "missing-level" and it exists`))

	if err := client.FlowcontrolV1().PriorityLevelConfigurations().Delete(context.Background(), "missing-level", metav1.DeleteOptions{}); err != nil {
		t.Fatal(err)
	}
	eventually(t, condition(flowcontrolv1.ConditionTrue, "NotFound",
		`This FlowSchema references the PriorityLevelConfiguration object named "missing-level" but there is no such object`))

	// The bootstrap flow schemas reference bootstrap levels: not dangling.
	eventually(t, func() error {
		got, err := getFS(client, "global-default")
		if err != nil {
			return err
		}
		for _, c := range got.Status.Conditions {
			if c.Type == flowcontrolv1.FlowSchemaConditionDangling && c.Status == flowcontrolv1.ConditionFalse {
				return nil
			}
		}
		return fmt.Errorf("conditions %+v", got.Status.Conditions)
	})
}
