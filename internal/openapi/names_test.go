package openapi

import (
	"testing"

	"k8s.io/apimachinery/pkg/runtime/schema"
)

func TestOperationNaming(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		gv       schema.GroupVersion
		wantGV   string
		wantTag  string
		wantPath string
	}{
		{gv: schema.GroupVersion{Version: "v1"}, wantGV: "CoreV1", wantTag: "core_v1", wantPath: "/api/v1"},
		{gv: schema.GroupVersion{Group: "apps", Version: "v1"}, wantGV: "AppsV1", wantTag: "apps_v1", wantPath: "/apis/apps/v1"},
		{gv: schema.GroupVersion{Group: "rbac.authorization.k8s.io", Version: "v1"}, wantGV: "RbacAuthorizationV1",
			wantTag: "rbacAuthorization_v1", wantPath: "/apis/rbac.authorization.k8s.io/v1"},
		{gv: schema.GroupVersion{Group: "flowcontrol.apiserver.k8s.io", Version: "v1beta3"}, wantGV: "FlowcontrolApiserverV1beta3",
			wantTag: "flowcontrolApiserver_v1beta3", wantPath: "/apis/flowcontrol.apiserver.k8s.io/v1beta3"},
		{gv: schema.GroupVersion{Group: "example.com", Version: "v2"}, wantGV: "ExampleComV2", wantTag: "exampleCom_v2",
			wantPath: "/apis/example.com/v2"},
	} {
		t.Run(tc.gv.String(), func(t *testing.T) {
			if got := gvCamel(tc.gv); got != tc.wantGV {
				t.Errorf("gvCamel = %q, want %q", got, tc.wantGV)
			}
			if got := gvTag(tc.gv); got != tc.wantTag {
				t.Errorf("gvTag = %q, want %q", got, tc.wantTag)
			}
			if got := gvPrefix(tc.gv); got != tc.wantPath {
				t.Errorf("gvPrefix = %q, want %q", got, tc.wantPath)
			}
		})
	}
}
