package ownership

import (
	"context"
	"errors"
	"testing"

	"github.com/google/go-cmp/cmp"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/labels"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/apimachinery/pkg/types"
)

var rsGVK = schema.GroupVersionKind{Group: "apps", Version: "v1", Kind: "ReplicaSet"}

func pod(name string, lbls map[string]string, controller types.UID) *corev1.Pod {
	p := &corev1.Pod{ObjectMeta: metav1.ObjectMeta{Namespace: "ns", Name: name, UID: types.UID("uid-" + name), Labels: lbls}}
	if controller != "" {
		t := true
		p.OwnerReferences = []metav1.OwnerReference{{Kind: "ReplicaSet", Name: "x", UID: controller, Controller: &t}}
	}
	return p
}

func TestClaim(t *testing.T) {
	web := map[string]string{"app": "web"}
	other := map[string]string{"app": "other"}
	owner := &metav1.ObjectMeta{Namespace: "ns", Name: "rs", UID: "rs-uid"}
	deleting := owner.DeepCopy()
	deleting.DeletionTimestamp = &metav1.Time{}
	replaced := owner.DeepCopy()
	replaced.UID = "another"
	pods := []*corev1.Pod{
		pod("owned", web, "rs-uid"),
		pod("orphan", web, ""),
		pod("unwanted-orphan", other, ""),
		pod("strayed", other, "rs-uid"),
		pod("someone-elses", web, "other-uid"),
	}

	tests := []struct {
		name        string
		live        metav1.Object // what Reread finds
		wantClaimed []string
		wantPatched []string
		wantErr     bool
	}{
		{name: "adopts and releases", live: owner, wantClaimed: []string{"owned", "orphan"}, wantPatched: []string{"orphan", "strayed"}},
		{name: "no adoption into an owner being deleted", live: deleting, wantClaimed: []string{"owned"}, wantPatched: []string{"strayed"}, wantErr: true},
		{name: "no adoption into a replaced owner", live: replaced, wantClaimed: []string{"owned"}, wantPatched: []string{"strayed"}, wantErr: true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var patched []string
			patch := func(_ context.Context, _, name string, pt types.PatchType, _ []byte) error {
				if pt != types.StrategicMergePatchType {
					return errors.New("unexpected patch type")
				}
				patched = append(patched, name)
				return nil
			}
			o := Owner{Object: owner, GVK: rsGVK, Selector: labels.SelectorFromSet(web),
				Reread: func(context.Context) (metav1.Object, error) { return tt.live, nil }}
			claimed, err := Claim(context.Background(), o, pods, patch)
			if (err != nil) != tt.wantErr {
				t.Fatalf("error = %v, want error %v", err, tt.wantErr)
			}
			var names []string
			for _, p := range claimed {
				names = append(names, p.Name)
			}
			if diff := cmp.Diff(tt.wantClaimed, names); diff != "" {
				t.Errorf("claimed (-want +got):\n%s", diff)
			}
			if diff := cmp.Diff(tt.wantPatched, patched); diff != "" {
				t.Errorf("patched (-want +got):\n%s", diff)
			}
		})
	}
}
