package tokens

import (
	"context"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	authenticationv1 "k8s.io/api/authentication/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/utils/ptr"
)

func TestTokenRequest(t *testing.T) {
	t.Parallel()
	iss := newTestIssuer(t, "")
	sa := testSA("sa-uid")
	otherSAPod := testPod("other-pod-uid")
	otherSAPod.Name = "other"
	otherSAPod.Spec.ServiceAccountName = "default"
	objs := []runtime.Object{sa, testPod("pod-uid"), otherSAPod, testSecret("bound", "secret-uid"), testNode("node-uid")}
	apiAuds := []string{"https://kubernetes.default.svc.cluster.local", "skiff"}

	type want struct {
		expSeconds int64
		audiences  []string
		extra      map[string][]string // beyond credential-id
	}
	tests := []struct {
		name    string
		req     authenticationv1.TokenRequest
		maxExp  time.Duration
		want    *want
		wantErr func(error) bool
		causes  []string // field paths of an Invalid error
	}{
		{name: "defaults", want: &want{expSeconds: 3600, audiences: apiAuds}},
		{name: "name and namespace may be given",
			req:  authenticationv1.TokenRequest{ObjectMeta: metav1.ObjectMeta{Name: "builder", Namespace: "ns1"}},
			want: &want{expSeconds: 3600, audiences: apiAuds}},
		{name: "audiences and expiration",
			req:  authenticationv1.TokenRequest{Spec: authenticationv1.TokenRequestSpec{Audiences: []string{"vault"}, ExpirationSeconds: ptr.To[int64](600)}},
			want: &want{expSeconds: 600, audiences: []string{"vault"}}},
		{name: "capped at 48h by default",
			req:  authenticationv1.TokenRequest{Spec: authenticationv1.TokenRequestSpec{ExpirationSeconds: ptr.To[int64](7 * 24 * 3600)}},
			want: &want{expSeconds: 48 * 3600, audiences: apiAuds}},
		{name: "configured cap",
			req:    authenticationv1.TokenRequest{Spec: authenticationv1.TokenRequestSpec{ExpirationSeconds: ptr.To[int64](7200)}},
			maxExp: time.Hour,
			want:   &want{expSeconds: 3600, audiences: apiAuds}},
		{name: "no cap",
			req:    authenticationv1.TokenRequest{Spec: authenticationv1.TokenRequestSpec{ExpirationSeconds: ptr.To[int64](7 * 24 * 3600)}},
			maxExp: -1,
			want:   &want{expSeconds: 7 * 24 * 3600, audiences: apiAuds}},
		{name: "bound to pod",
			req: authenticationv1.TokenRequest{Spec: authenticationv1.TokenRequestSpec{BoundObjectRef: &authenticationv1.BoundObjectReference{
				Kind: "Pod", APIVersion: "v1", Name: "web", UID: "pod-uid"}}},
			want: &want{expSeconds: 3600, audiences: apiAuds, extra: map[string][]string{
				ExtraPodName: {"web"}, ExtraPodUID: {"pod-uid"}, ExtraNodeName: {"node-a"}, ExtraNodeUID: {"node-uid"}}}},
		{name: "bound to pod without UID",
			req: authenticationv1.TokenRequest{Spec: authenticationv1.TokenRequestSpec{BoundObjectRef: &authenticationv1.BoundObjectReference{
				Kind: "Pod", APIVersion: "v1", Name: "web"}}},
			want: &want{expSeconds: 3600, audiences: apiAuds, extra: map[string][]string{
				ExtraPodName: {"web"}, ExtraPodUID: {"pod-uid"}, ExtraNodeName: {"node-a"}, ExtraNodeUID: {"node-uid"}}}},
		{name: "bound to secret",
			req: authenticationv1.TokenRequest{Spec: authenticationv1.TokenRequestSpec{BoundObjectRef: &authenticationv1.BoundObjectReference{
				Kind: "Secret", APIVersion: "v1", Name: "bound"}}},
			want: &want{expSeconds: 3600, audiences: apiAuds}},
		{name: "bound to node",
			req: authenticationv1.TokenRequest{Spec: authenticationv1.TokenRequestSpec{BoundObjectRef: &authenticationv1.BoundObjectReference{
				Kind: "Node", APIVersion: "v1", Name: "node-a", UID: "node-uid"}}},
			want: &want{expSeconds: 3600, audiences: apiAuds, extra: map[string][]string{ExtraNodeName: {"node-a"}, ExtraNodeUID: {"node-uid"}}}},
		{name: "other name",
			req:     authenticationv1.TokenRequest{ObjectMeta: metav1.ObjectMeta{Name: "other"}},
			wantErr: apierrors.IsInvalid, causes: []string{"metadata.name"}},
		{name: "other namespace",
			req:     authenticationv1.TokenRequest{ObjectMeta: metav1.ObjectMeta{Namespace: "ns2"}},
			wantErr: apierrors.IsInvalid, causes: []string{"metadata.namespace"}},
		{name: "too short",
			req:     authenticationv1.TokenRequest{Spec: authenticationv1.TokenRequestSpec{ExpirationSeconds: ptr.To[int64](599)}},
			wantErr: apierrors.IsInvalid, causes: []string{"spec.expirationSeconds"}},
		{name: "too long",
			req:     authenticationv1.TokenRequest{Spec: authenticationv1.TokenRequestSpec{ExpirationSeconds: ptr.To[int64](1<<32 + 1)}},
			wantErr: apierrors.IsInvalid, causes: []string{"spec.expirationSeconds"}},
		{name: "empty audience",
			req:     authenticationv1.TokenRequest{Spec: authenticationv1.TokenRequestSpec{Audiences: []string{"a", ""}}},
			wantErr: apierrors.IsInvalid, causes: []string{"spec.audiences[1]"}},
		{name: "bound ref without name and kind",
			req:     authenticationv1.TokenRequest{Spec: authenticationv1.TokenRequestSpec{BoundObjectRef: &authenticationv1.BoundObjectReference{APIVersion: "v1"}}},
			wantErr: apierrors.IsInvalid, causes: []string{"spec.boundObjectRef.name", "spec.boundObjectRef.kind"}},
		{name: "bound pod missing",
			req: authenticationv1.TokenRequest{Spec: authenticationv1.TokenRequestSpec{BoundObjectRef: &authenticationv1.BoundObjectReference{
				Kind: "Pod", APIVersion: "v1", Name: "nope"}}},
			wantErr: apierrors.IsNotFound},
		{name: "bound pod UID differs",
			req: authenticationv1.TokenRequest{Spec: authenticationv1.TokenRequestSpec{BoundObjectRef: &authenticationv1.BoundObjectReference{
				Kind: "Pod", APIVersion: "v1", Name: "web", UID: "old"}}},
			wantErr: apierrors.IsConflict},
		{name: "bound pod runs as another service account",
			req: authenticationv1.TokenRequest{Spec: authenticationv1.TokenRequestSpec{BoundObjectRef: &authenticationv1.BoundObjectReference{
				Kind: "Pod", APIVersion: "v1", Name: "other"}}},
			wantErr: apierrors.IsBadRequest},
		{name: "bound secret missing",
			req: authenticationv1.TokenRequest{Spec: authenticationv1.TokenRequestSpec{BoundObjectRef: &authenticationv1.BoundObjectReference{
				Kind: "Secret", APIVersion: "v1", Name: "nope"}}},
			wantErr: apierrors.IsNotFound},
		{name: "bound to a config map",
			req: authenticationv1.TokenRequest{Spec: authenticationv1.TokenRequestSpec{BoundObjectRef: &authenticationv1.BoundObjectReference{
				Kind: "ConfigMap", APIVersion: "v1", Name: "c"}}},
			wantErr: apierrors.IsBadRequest},
		{name: "bound to a pod of another group",
			req: authenticationv1.TokenRequest{Spec: authenticationv1.TokenRequestSpec{BoundObjectRef: &authenticationv1.BoundObjectReference{
				Kind: "Pod", APIVersion: "example.com/v1", Name: "web"}}},
			wantErr: apierrors.IsBadRequest},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			i := *iss
			i.MaxExpiration = tc.maxExp
			l := lookupsOf(t, objs...)
			req := tc.req.DeepCopy()
			got, err := i.TokenRequest(context.Background(), sa, req, l)
			if !cmp.Equal(req, &tc.req) {
				t.Errorf("TokenRequest modified its input")
			}
			if tc.wantErr != nil {
				if err == nil || !tc.wantErr(err) {
					t.Fatalf("error = %v, want one of the expected kind", err)
				}
				if tc.causes != nil {
					var fields []string
					for _, c := range err.(apierrors.APIStatus).Status().Details.Causes {
						fields = append(fields, c.Field)
					}
					if diff := cmp.Diff(tc.causes, fields); diff != "" {
						t.Errorf("invalid fields (-want +got):\n%s", diff)
					}
				}
				return
			}
			if err != nil {
				t.Fatalf("TokenRequest: %v", err)
			}
			if got.Spec.ExpirationSeconds == nil || *got.Spec.ExpirationSeconds != tc.want.expSeconds {
				t.Errorf("spec.expirationSeconds = %v, want %d", got.Spec.ExpirationSeconds, tc.want.expSeconds)
			}
			if diff := cmp.Diff(tc.want.audiences, got.Spec.Audiences); diff != "" {
				t.Errorf("spec.audiences (-want +got):\n%s", diff)
			}
			wantExp := t0.Add(time.Duration(tc.want.expSeconds) * time.Second)
			if !got.Status.ExpirationTimestamp.Time.Equal(wantExp) {
				t.Errorf("status.expirationTimestamp = %v, want %v", got.Status.ExpirationTimestamp, wantExp)
			}
			// The token works, for its audiences, until it expires.
			a := i.Authenticator(l)
			u, _, ok, err := a.AuthenticateTokenFor(context.Background(), got.Status.Token, tc.want.audiences)
			if err != nil || !ok {
				t.Fatalf("issued token: ok=%v err=%v, want authenticated", ok, err)
			}
			wantExtra := map[string][]string{ExtraCredentialID: {"JTI=" + jti(t, got.Status.Token)}}
			for k, v := range tc.want.extra {
				wantExtra[k] = v
			}
			if diff := cmp.Diff(saUser(wantExtra), u); diff != "" {
				t.Errorf("user (-want +got):\n%s", diff)
			}
			i.Clock = func() time.Time { return wantExp.Add(leeway + time.Second) }
			if _, _, ok, _ := i.Authenticator(l).AuthenticateTokenFor(context.Background(), got.Status.Token, tc.want.audiences); ok {
				t.Errorf("token still valid after its expirationTimestamp")
			}
		})
	}
}

func TestTokenRequestWithoutNodeLister(t *testing.T) {
	t.Parallel()
	iss := newTestIssuer(t, "")
	l := lookupsOf(t, testSA("sa-uid"), testPod("pod-uid"))
	l.Nodes = nil
	req := &authenticationv1.TokenRequest{Spec: authenticationv1.TokenRequestSpec{BoundObjectRef: &authenticationv1.BoundObjectReference{
		Kind: "Node", APIVersion: "v1", Name: "node-a"}}}
	if _, err := iss.TokenRequest(context.Background(), testSA("sa-uid"), req, l); !apierrors.IsBadRequest(err) {
		t.Errorf("node-bound request without node lister: error = %v, want BadRequest", err)
	}
	// A pod-bound token still names the pod's node, without a UID.
	req.Spec.BoundObjectRef = &authenticationv1.BoundObjectReference{Kind: "Pod", APIVersion: "v1", Name: "web"}
	got, err := iss.TokenRequest(context.Background(), testSA("sa-uid"), req, l)
	if err != nil {
		t.Fatalf("TokenRequest: %v", err)
	}
	u, ok, err := iss.Authenticator(l).AuthenticateToken(context.Background(), got.Status.Token)
	if err != nil || !ok {
		t.Fatalf("issued token: ok=%v err=%v", ok, err)
	}
	if diff := cmp.Diff([]string{"node-a"}, u.Extra[ExtraNodeName]); diff != "" {
		t.Errorf("node-name extra (-want +got):\n%s", diff)
	}
	if v, has := u.Extra[ExtraNodeUID]; has {
		t.Errorf("node-uid extra = %v, want none", v)
	}
}
