package flowcontrol_test

import (
	"context"
	"fmt"
	"testing"
	"time"

	flowcontrolv1 "k8s.io/api/flowcontrol/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/client-go/kubernetes"
	"k8s.io/utils/ptr"

	"github.com/skiff-dev/skiff/internal/flowcontrol"
	"github.com/skiff-dev/skiff/internal/testserver"
)

// TestAgainstAPIServer checks the controller every server runs
// (server.Run starts flowcontrol.Run) against that real API server: the
// bootstrap objects must be accepted by the registry's validation, the
// flow schemas get their Dangling condition through the status
// subresource, and the API behaves as the conformance test "API priority
// and fairness should support FlowSchema API operations" expects.
func TestAgainstAPIServer(t *testing.T) {
	t.Parallel()
	cfg := testserver.Start(t, testserver.Options{})
	client := kubernetes.NewForConfigOrDie(cfg)
	ctx := context.Background()
	fss := client.FlowcontrolV1().FlowSchemas()
	pls := client.FlowcontrolV1().PriorityLevelConfigurations()

	_, suggested := flowcontrol.Bootstrap()
	eventually(t, func() error {
		for _, obj := range suggested {
			fs, ok := obj.(*flowcontrolv1.FlowSchema)
			if !ok {
				continue
			}
			got, err := fss.Get(ctx, fs.Name, metav1.GetOptions{})
			if err != nil {
				return err
			}
			if !hasDangling(got, flowcontrolv1.ConditionFalse) {
				return fmt.Errorf("%s: conditions %+v", fs.Name, got.Status.Conditions)
			}
		}
		for _, name := range []string{"exempt", "catch-all"} {
			if _, err := fss.Get(ctx, name, metav1.GetOptions{}); err != nil {
				return err
			}
			if _, err := pls.Get(ctx, name, metav1.GetOptions{}); err != nil {
				return err
			}
		}
		return nil
	})

	// The mandatory specs are fixed.
	catchAll, err := pls.Get(ctx, "catch-all", metav1.GetOptions{})
	if err != nil {
		t.Fatal(err)
	}
	catchAll.Spec.Limited.NominalConcurrencyShares = ptr.To[int32](50)
	if _, err := pls.Update(ctx, catchAll, metav1.UpdateOptions{}); !apierrors.IsInvalid(err) {
		t.Errorf("changing catch-all: got %v, want Invalid", err)
	}

	// The conformance test's operations.
	label := map[string]string{"example-e2e-fs-label": "x"}
	template := &flowcontrolv1.FlowSchema{
		ObjectMeta: metav1.ObjectMeta{GenerateName: "e2e-example-fs-", Labels: label},
		Spec: flowcontrolv1.FlowSchemaSpec{
			MatchingPrecedence:         10000,
			PriorityLevelConfiguration: flowcontrolv1.PriorityLevelConfigurationReference{Name: "global-default"},
			DistinguisherMethod:        &flowcontrolv1.FlowDistinguisherMethod{Type: flowcontrolv1.FlowDistinguisherMethodByUserType},
			Rules: []flowcontrolv1.PolicyRulesWithSubjects{{
				Subjects:         []flowcontrolv1.Subject{{Kind: flowcontrolv1.SubjectKindUser, User: &flowcontrolv1.UserSubject{Name: "example-e2e-non-existent-user"}}},
				NonResourceRules: []flowcontrolv1.NonResourcePolicyRule{{Verbs: []string{"*"}, NonResourceURLs: []string{"*"}}},
			}},
		},
	}
	created, err := fss.Create(ctx, template, metav1.CreateOptions{})
	if err != nil {
		t.Fatal(err)
	}
	patched, err := fss.Patch(ctx, created.Name, types.MergePatchType,
		[]byte(`{"metadata":{"annotations":{"patched":"true"}},"spec":{"matchingPrecedence":9999}}`), metav1.PatchOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if patched.Spec.MatchingPrecedence != 9999 || patched.Generation != 2 {
		t.Errorf("patched: precedence %d generation %d", patched.Spec.MatchingPrecedence, patched.Generation)
	}
	statusPatched, err := fss.Patch(ctx, created.Name, types.MergePatchType,
		[]byte(`{"status":{"conditions":[{"type":"PatchStatusFailed","status":"False","reason":"e2e"}]}}`), metav1.PatchOptions{}, "status")
	if err != nil {
		t.Fatal(err)
	}
	if len(statusPatched.Status.Conditions) == 0 || statusPatched.Generation != 2 {
		t.Errorf("status patch: %+v generation %d", statusPatched.Status, statusPatched.Generation)
	}
	// The Dangling condition comes back beside the client's.
	eventually(t, func() error {
		got, err := fss.Get(ctx, created.Name, metav1.GetOptions{})
		if err != nil {
			return err
		}
		if !hasDangling(got, flowcontrolv1.ConditionFalse) {
			return fmt.Errorf("conditions %+v", got.Status.Conditions)
		}
		return nil
	})
	if err := fss.DeleteCollection(ctx, metav1.DeleteOptions{}, metav1.ListOptions{LabelSelector: "example-e2e-fs-label=x"}); err != nil {
		t.Fatal(err)
	}
	list, err := fss.List(ctx, metav1.ListOptions{LabelSelector: "example-e2e-fs-label=x"})
	if err != nil || len(list.Items) != 0 {
		t.Errorf("after deletecollection: %v, %d items", err, len(list.Items))
	}
}

func hasDangling(fs *flowcontrolv1.FlowSchema, status flowcontrolv1.ConditionStatus) bool {
	for _, c := range fs.Status.Conditions {
		if c.Type == flowcontrolv1.FlowSchemaConditionDangling {
			return c.Status == status
		}
	}
	return false
}

// eventually polls f until it returns nil and fails the test with its last
// error after 30 s.
func eventually(t *testing.T, f func() error) {
	t.Helper()
	deadline := time.Now().Add(30 * time.Second)
	tick := time.NewTicker(20 * time.Millisecond)
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
