package audit

import (
	"encoding/json"
	"fmt"
	"strings"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
)

// Level is how much of a request the log records. The values and their
// spelling are upstream's (audit.k8s.io/v1 Level).
type Level string

// Levels, from least to most.
const (
	LevelNone            Level = "None"
	LevelMetadata        Level = "Metadata"
	LevelRequest         Level = "Request"
	LevelRequestResponse Level = "RequestResponse"
)

var levelOrder = map[Level]int{LevelNone: 0, LevelMetadata: 1, LevelRequest: 2, LevelRequestResponse: 3}

// ParseLevel parses a level name, ignoring case. The empty string is
// Metadata, the default.
func ParseLevel(s string) (Level, error) {
	if s == "" {
		return LevelMetadata, nil
	}
	for l := range levelOrder {
		if strings.EqualFold(s, string(l)) {
			return l, nil
		}
	}
	return "", fmt.Errorf("audit: unknown level %q (want None, Metadata, Request or RequestResponse)", s)
}

// AtLeast reports whether l records at least as much as o.
func (l Level) AtLeast(o Level) bool { return levelOrder[l] >= levelOrder[o] }

// Stage is the point of a request's life an Event describes.
type Stage string

// Stages, as upstream names them. Skiff does not emit RequestReceived
// (upstream's recommended policies omit it too).
const (
	StageRequestReceived  Stage = "RequestReceived"
	StageResponseStarted  Stage = "ResponseStarted"
	StageResponseComplete Stage = "ResponseComplete"
	StagePanic            Stage = "Panic"
)

// Event is one audit record. Its JSON is upstream's audit.k8s.io/v1
// Event (k8s.io/apiserver/pkg/apis/audit/v1, which skiff may not import;
// k8s.io/api has no audit group), field for field, less
// impersonatedUser which skiff does not support.
type Event struct {
	metav1.TypeMeta `json:",inline"`
	Level           Level  `json:"level"`
	AuditID         string `json:"auditID"`
	Stage           Stage  `json:"stage"`
	RequestURI      string `json:"requestURI"`
	// Verb is the Kubernetes verb of resource requests and the lower-case
	// HTTP method otherwise.
	Verb string   `json:"verb"`
	User UserInfo `json:"user"`
	// ImpersonatedUser is who the request acted as (kubectl --as).
	ImpersonatedUser *UserInfo        `json:"impersonatedUser,omitempty"`
	SourceIPs        []string         `json:"sourceIPs,omitempty"`
	UserAgent        string           `json:"userAgent,omitempty"`
	ObjectRef        *ObjectReference `json:"objectRef,omitempty"`
	// ResponseStatus holds the code, and for failures the status, reason,
	// message and details of the Status the client got. Nil until the
	// response started.
	ResponseStatus *metav1.Status `json:"responseStatus,omitempty"`
	// RequestObject is the request body as JSON (Request level and up);
	// ResponseObject the response body (RequestResponse). Both must be
	// valid JSON when set.
	RequestObject            json.RawMessage   `json:"requestObject,omitempty"`
	ResponseObject           json.RawMessage   `json:"responseObject,omitempty"`
	RequestReceivedTimestamp metav1.MicroTime  `json:"requestReceivedTimestamp"`
	StageTimestamp           metav1.MicroTime  `json:"stageTimestamp"`
	Annotations              map[string]string `json:"annotations,omitempty"`
}

// UserInfo is authentication.k8s.io/v1 UserInfo.
type UserInfo struct {
	Username string              `json:"username,omitempty"`
	UID      string              `json:"uid,omitempty"`
	Groups   []string            `json:"groups,omitempty"`
	Extra    map[string][]string `json:"extra,omitempty"`
}

// ObjectReference names the object of a resource request.
type ObjectReference struct {
	Resource        string `json:"resource,omitempty"`
	Namespace       string `json:"namespace,omitempty"`
	Name            string `json:"name,omitempty"`
	UID             string `json:"uid,omitempty"`
	APIGroup        string `json:"apiGroup,omitempty"`
	APIVersion      string `json:"apiVersion,omitempty"`
	ResourceVersion string `json:"resourceVersion,omitempty"`
	Subresource     string `json:"subresource,omitempty"`
}

// TypeMeta is the kind and apiVersion every Event carries.
var TypeMeta = metav1.TypeMeta{Kind: "Event", APIVersion: "audit.k8s.io/v1"}

// Well-known annotation keys, upstream's.
const (
	AnnotationDecision = "authorization.k8s.io/decision"
	AnnotationReason   = "authorization.k8s.io/reason"
	// AnnotationOmitted says why a body the level asks for is absent
	// (protobuf, not JSON, too large); skiff's own key.
	AnnotationOmitted = "audit.skiff.dev/omitted"
)
