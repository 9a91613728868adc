package audit

import (
	"encoding/json"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
)

// TestAppendJSONMatchesEncodingJSON checks appendJSON byte for byte
// against json.Marshal, which defines the format, on the cases where a
// hand-written encoder could drift: escaping, empty and nil fields,
// maps, statuses beyond a code, bodies, zero and non-UTC times.
func TestAppendJSONMatchesEncodingJSON(t *testing.T) {
	t.Parallel()
	at := time.Date(2026, 11, 23, 18, 30, 1, 987654321, time.FixedZone("CET", 3600))
	cases := []struct {
		name string
		ev   Event
	}{
		{"zero event", Event{}},
		{"escaped strings", Event{
			TypeMeta: TypeMeta, Level: LevelMetadata, AuditID: `a"b\c`,
			RequestURI: "/api/v1/pods?labelSelector=a%3Db&x=<y>", Verb: "list",
			User:      UserInfo{Username: "jöe\u2028\x01", UID: "\xff\xfe", Groups: []string{"", "g&h"}},
			UserAgent: "kubectl/v1.33 (linux/amd64)\t",
			ObjectRef: &ObjectReference{Resource: "pods", Name: "\u00e9"},
		}},
		{"extra and impersonation", Event{
			TypeMeta: TypeMeta, Level: LevelRequest, Stage: StageResponseComplete, Verb: "get",
			User: UserInfo{Username: "u", Extra: map[string][]string{"z": {"1", "2"}, "a": nil, "m": {}}},
			ImpersonatedUser: &UserInfo{Username: "system:serviceaccount:ns:sa", Groups: []string{"system:serviceaccounts"},
				Extra: map[string][]string{"authentication.kubernetes.io/pod-name": {"p"}}},
			SourceIPs: []string{"10.0.0.1", "::1"},
			ObjectRef: &ObjectReference{Resource: "pods", Namespace: "ns", Name: "p", UID: "u-1", APIGroup: "",
				APIVersion: "v1", ResourceVersion: "42", Subresource: "log"},
		}},
		{"empty objectRef and status", Event{ObjectRef: &ObjectReference{}, ResponseStatus: &metav1.Status{}}},
		{"status with a code", Event{ResponseStatus: &metav1.Status{Code: 200}}},
		{"status with details", Event{ResponseStatus: &metav1.Status{Status: metav1.StatusFailure, Code: 422,
			Reason: metav1.StatusReasonInvalid, Message: "x <invalid>",
			Details: &metav1.StatusDetails{Name: "n", Causes: []metav1.StatusCause{{Type: metav1.CauseTypeFieldValueInvalid, Field: "spec"}}}}}},
		{"status with only metadata", Event{ResponseStatus: &metav1.Status{ListMeta: metav1.ListMeta{ResourceVersion: "7"}, Code: 200}}},
		{"bodies", Event{
			RequestObject:  json.RawMessage("{ \"a\" : [1, 2],\n \"b\": \"<&>\" }"),
			ResponseObject: json.RawMessage(`"plain"`),
		}},
		{"times and annotations", Event{
			RequestReceivedTimestamp: metav1.NewMicroTime(at),
			StageTimestamp:           metav1.NewMicroTime(at.Add(time.Millisecond)),
			Annotations:              map[string]string{"b": "2", "a": "", "c<": "&"},
		}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			want, err := json.Marshal(&tc.ev)
			if err != nil {
				t.Fatal(err)
			}
			got, err := appendJSON([]byte("prefix"), &tc.ev)
			if err != nil {
				t.Fatal(err)
			}
			if diff := cmp.Diff("prefix"+string(want), string(got)); diff != "" {
				t.Errorf("appendJSON differs from json.Marshal (-want +got):\n%s", diff)
			}
		})
	}
}

// TestAppendJSONInvalidBody fails as json.Marshal does on a body that
// is not JSON (Logger.Log then drops the bodies, keeping the metadata).
func TestAppendJSONInvalidBody(t *testing.T) {
	t.Parallel()
	ev := &Event{AuditID: "x", RequestObject: json.RawMessage(`{"a":`)}
	if _, err := json.Marshal(ev); err == nil {
		t.Fatal("json.Marshal accepted an invalid body")
	}
	if _, err := appendJSON(nil, ev); err == nil {
		t.Fatal("appendJSON accepted an invalid body")
	}
}

func benchEvent() *Event {
	at := time.Date(2026, 11, 23, 18, 30, 1, 987654000, time.UTC)
	return &Event{
		TypeMeta: TypeMeta, Level: LevelMetadata, AuditID: "0b5e1bd6-1c1b-4c53-9d3a-7c5d9d2c6c11",
		Stage: StageResponseComplete, RequestURI: "/api/v1/namespaces/default/pods/web-1/binding",
		Verb: "create", User: UserInfo{Username: "system:kube-scheduler", Groups: []string{"system:authenticated"}},
		SourceIPs: []string{"127.0.0.1"}, UserAgent: "skiff/v0.1 (linux/amd64) scheduler",
		ObjectRef:                &ObjectReference{Resource: "pods", Namespace: "default", Name: "web-1", APIVersion: "v1", Subresource: "binding"},
		ResponseStatus:           &metav1.Status{Code: 201},
		RequestReceivedTimestamp: metav1.NewMicroTime(at),
		StageTimestamp:           metav1.NewMicroTime(at.Add(time.Millisecond)),
		Annotations:              map[string]string{AnnotationDecision: "allow", AnnotationReason: `RBAC: allowed by ClusterRoleBinding "system:kube-scheduler"`},
	}
}

func BenchmarkAppendJSON(b *testing.B) {
	ev := benchEvent()
	b.ReportAllocs()
	for b.Loop() {
		if _, err := appendJSON(make([]byte, 0, 1024), ev); err != nil {
			b.Fatal(err)
		}
	}
}

func BenchmarkEncodingJSON(b *testing.B) {
	ev := benchEvent()
	b.ReportAllocs()
	for b.Loop() {
		if _, err := json.Marshal(ev); err != nil {
			b.Fatal(err)
		}
	}
}
