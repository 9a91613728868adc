package builtin

import (
	"encoding/json"
	"fmt"
	"maps"
	"slices"
	"strings"
	"time"

	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/equality"
	apivalidation "k8s.io/apimachinery/pkg/api/validation"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/apimachinery/pkg/util/validation"
	"k8s.io/apimachinery/pkg/util/validation/field"

	"github.com/skiff-dev/skiff/internal/registry"
)

// coreResources returns the core/v1 resources.
func coreResources() []*registry.Resource {
	return []*registry.Resource{
		namespaceResource(),
		podResource(),
		serviceResource(),
		endpointsResource(),
		replicationControllerResource(),
		configMapResource(),
		secretResource(),
		nodeResource(),
		eventResource(),
		serviceAccountResource(),
		limitRangeResource(),
		resourceQuotaResource(),
		persistentVolumeClaimResource(),
		persistentVolumeResource(),
		podTemplateResource(),
	}
}

func coreGVR(resource string) schema.GroupVersionResource {
	return schema.GroupVersionResource{Version: "v1", Resource: resource}
}

// ---- namespaces ----

func namespaceResource() *registry.Resource {
	return &registry.Resource{
		GVR:        coreGVR("namespaces"),
		Kind:       "Namespace",
		ListKind:   "NamespaceList",
		Singular:   "namespace",
		ShortNames: []string{"ns"},
		Status:     true,
		Strategy: registry.Define(registry.Typed[*corev1.Namespace, *corev1.NamespaceList]{
			New:     func() *corev1.Namespace { return &corev1.Namespace{} },
			NewList: func() *corev1.NamespaceList { return &corev1.NamespaceList{} },
			PrepareForCreate: func(ns *corev1.Namespace) {
				ns.Status = corev1.NamespaceStatus{Phase: corev1.NamespaceActive}
				if !slices.Contains(ns.Spec.Finalizers, corev1.FinalizerKubernetes) {
					ns.Spec.Finalizers = append(ns.Spec.Finalizers, corev1.FinalizerKubernetes)
				}
			},
			// spec.finalizers change only through namespaces/finalize.
			PrepareForUpdate: func(ns, old *corev1.Namespace) {
				ns.Spec.Finalizers = old.Spec.Finalizers
			},
			Default: func(ns *corev1.Namespace) {
				if ns.Status.Phase == "" {
					ns.Status.Phase = corev1.NamespaceActive
				}
				if ns.Name != "" {
					if ns.Labels == nil {
						ns.Labels = map[string]string{}
					}
					ns.Labels[corev1.LabelMetadataName] = ns.Name
				}
			},
			Validate:       func(ns *corev1.Namespace) field.ErrorList { return validateNamespaceFinalizers(ns) },
			ValidateUpdate: func(ns, _ *corev1.Namespace) field.ErrorList { return validateNamespaceFinalizers(ns) },
			ValidateStatusUpdate: func(ns, old *corev1.Namespace) field.ErrorList {
				var errs field.ErrorList
				if ns.DeletionTimestamp.IsZero() && ns.Status.Phase != corev1.NamespaceActive {
					errs = append(errs, field.Invalid(field.NewPath("status", "Phase"), ns.Status.Phase, "may only be 'Active' if `deletionTimestamp` is empty"))
				}
				if !ns.DeletionTimestamp.IsZero() && ns.Status.Phase != corev1.NamespaceTerminating {
					errs = append(errs, field.Invalid(field.NewPath("status", "Phase"), ns.Status.Phase, "may only be 'Terminating' if `deletionTimestamp` is not empty"))
				}
				return errs
			},
			ValidateName: registry.NameIsDNSLabel,
			Fields: map[string]func(*corev1.Namespace) string{
				"status.phase": func(ns *corev1.Namespace) string { return string(ns.Status.Phase) },
			},
			Table: &registry.TypedTable[*corev1.Namespace]{
				Columns: []metav1.TableColumnDefinition{
					columnName(),
					columnString("Status", "The status of the namespace", 0),
					columnAge(),
				},
				Row: func(ns *corev1.Namespace) []any {
					return []any{ns.Name, string(ns.Status.Phase), cellAge(&ns.ObjectMeta)}
				},
			},
		}),
	}
}

func validateNamespaceFinalizers(ns *corev1.Namespace) field.ErrorList {
	var errs field.ErrorList
	p := field.NewPath("spec", "finalizers")
	for i, f := range ns.Spec.Finalizers {
		s := string(f)
		if !strings.Contains(s, "/") && s != string(corev1.FinalizerKubernetes) {
			errs = append(errs, field.Invalid(p.Index(i), s, "name is neither a standard finalizer name nor is it fully qualified"))
			continue
		}
		errs = append(errs, validateQualifiedName(s, p.Index(i))...)
	}
	return errs
}

// ---- configmaps ----

// maxDataSize is the upstream limit on a ConfigMap's or Secret's data.
const maxDataSize = 1 << 20

func configMapResource() *registry.Resource {
	return &registry.Resource{
		GVR:        coreGVR("configmaps"),
		Kind:       "ConfigMap",
		ListKind:   "ConfigMapList",
		Singular:   "configmap",
		ShortNames: []string{"cm"},
		Namespaced: true,
		Strategy: registry.Define(registry.Typed[*corev1.ConfigMap, *corev1.ConfigMapList]{
			New:     func() *corev1.ConfigMap { return &corev1.ConfigMap{} },
			NewList: func() *corev1.ConfigMapList { return &corev1.ConfigMapList{} },
			Default: func(cm *corev1.ConfigMap) {
				if cm.Data == nil {
					cm.Data = map[string]string{}
				}
			},
			Validate: validateConfigMap,
			ValidateUpdate: func(cm, old *corev1.ConfigMap) field.ErrorList {
				errs := validateConfigMap(cm)
				if old.Immutable != nil && *old.Immutable {
					if cm.Immutable == nil || !*cm.Immutable {
						errs = append(errs, field.Forbidden(field.NewPath("immutable"), "field is immutable when `immutable` is set"))
					}
					if !equality.Semantic.DeepEqual(cm.Data, old.Data) {
						errs = append(errs, field.Forbidden(field.NewPath("data"), "field is immutable when `immutable` is set"))
					}
					if !equality.Semantic.DeepEqual(cm.BinaryData, old.BinaryData) {
						errs = append(errs, field.Forbidden(field.NewPath("binaryData"), "field is immutable when `immutable` is set"))
					}
				}
				return errs
			},
			Table: &registry.TypedTable[*corev1.ConfigMap]{
				Columns: []metav1.TableColumnDefinition{
					columnName(),
					columnString("Data", corev1.ConfigMap{}.SwaggerDoc()["data"], 0),
					columnAge(),
				},
				Row: func(cm *corev1.ConfigMap) []any {
					return []any{cm.Name, int64(len(cm.Data) + len(cm.BinaryData)), cellAge(&cm.ObjectMeta)}
				},
			},
		}),
	}
}

func validateConfigMap(cm *corev1.ConfigMap) field.ErrorList {
	var errs field.ErrorList
	size := 0
	for _, k := range slices.Sorted(maps.Keys(cm.Data)) {
		v := cm.Data[k]
		for _, msg := range validation.IsConfigMapKey(k) {
			errs = append(errs, field.Invalid(field.NewPath("data").Key(k), k, msg))
		}
		if _, dup := cm.BinaryData[k]; dup {
			errs = append(errs, field.Invalid(field.NewPath("data").Key(k), k, "duplicate of key present in binaryData"))
		}
		size += len(k) + len(v)
	}
	for _, k := range slices.Sorted(maps.Keys(cm.BinaryData)) {
		v := cm.BinaryData[k]
		for _, msg := range validation.IsConfigMapKey(k) {
			errs = append(errs, field.Invalid(field.NewPath("binaryData").Key(k), k, msg))
		}
		size += len(k) + len(v)
	}
	if size > maxDataSize {
		errs = append(errs, field.TooLong(field.NewPath(""), "", maxDataSize))
	}
	return errs
}

// ---- secrets ----

func secretResource() *registry.Resource {
	return &registry.Resource{
		GVR:        coreGVR("secrets"),
		Kind:       "Secret",
		ListKind:   "SecretList",
		Singular:   "secret",
		Namespaced: true,
		Strategy: registry.Define(registry.Typed[*corev1.Secret, *corev1.SecretList]{
			New:     func() *corev1.Secret { return &corev1.Secret{} },
			NewList: func() *corev1.SecretList { return &corev1.SecretList{} },
			Default: defaultSecret,
			// Validate runs after Default, so stringData is already merged.
			Validate: validateSecret,
			ValidateUpdate: func(s, old *corev1.Secret) field.ErrorList {
				errs := validateSecret(s)
				errs = append(errs, validateImmutable(s.Type, old.Type, field.NewPath("type"))...)
				if old.Immutable != nil && *old.Immutable {
					if s.Immutable == nil || !*s.Immutable {
						errs = append(errs, field.Forbidden(field.NewPath("immutable"), "field is immutable when `immutable` is set"))
					}
					if !equality.Semantic.DeepEqual(s.Data, old.Data) {
						errs = append(errs, field.Forbidden(field.NewPath("data"), "field is immutable when `immutable` is set"))
					}
				}
				return errs
			},
			Fields: map[string]func(*corev1.Secret) string{
				"type": func(s *corev1.Secret) string { return string(s.Type) },
			},
			Table: &registry.TypedTable[*corev1.Secret]{
				Columns: []metav1.TableColumnDefinition{
					columnName(),
					columnString("Type", corev1.Secret{}.SwaggerDoc()["type"], 0),
					columnString("Data", corev1.Secret{}.SwaggerDoc()["data"], 0),
					columnAge(),
				},
				Row: func(s *corev1.Secret) []any {
					return []any{s.Name, string(s.Type), int64(len(s.Data)), cellAge(&s.ObjectMeta)}
				},
			},
		}),
	}
}

// defaultSecret sets type Opaque and merges the write-only stringData into
// data (stringData wins), as upstream's v1 conversion does.
func defaultSecret(s *corev1.Secret) {
	if s.Type == "" {
		s.Type = corev1.SecretTypeOpaque
	}
	if len(s.StringData) > 0 {
		if s.Data == nil {
			s.Data = map[string][]byte{}
		}
		for k, v := range s.StringData {
			s.Data[k] = []byte(v)
		}
	}
	s.StringData = nil
}

func validateSecret(s *corev1.Secret) field.ErrorList {
	var errs field.ErrorList
	dataPath := field.NewPath("data")
	size := 0
	for _, k := range slices.Sorted(maps.Keys(s.Data)) {
		v := s.Data[k]
		for _, msg := range validation.IsConfigMapKey(k) {
			errs = append(errs, field.Invalid(dataPath.Key(k), k, msg))
		}
		size += len(v)
	}
	if size > maxDataSize {
		errs = append(errs, field.TooLong(dataPath, "", maxDataSize))
	}
	switch s.Type {
	case corev1.SecretTypeServiceAccountToken:
		if s.Annotations[corev1.ServiceAccountNameKey] == "" {
			errs = append(errs, field.Required(field.NewPath("metadata", "annotations").Key(corev1.ServiceAccountNameKey), ""))
		}
	case corev1.SecretTypeOpaque, "":
	case corev1.SecretTypeDockercfg:
		errs = append(errs, requireJSONKey(s.Data, corev1.DockerConfigKey, dataPath)...)
	case corev1.SecretTypeDockerConfigJson:
		errs = append(errs, requireJSONKey(s.Data, corev1.DockerConfigJsonKey, dataPath)...)
	case corev1.SecretTypeBasicAuth:
		_, u := s.Data[corev1.BasicAuthUsernameKey]
		_, p := s.Data[corev1.BasicAuthPasswordKey]
		if !u && !p {
			errs = append(errs,
				field.Required(dataPath.Key(corev1.BasicAuthUsernameKey), ""),
				field.Required(dataPath.Key(corev1.BasicAuthPasswordKey), ""))
		}
	case corev1.SecretTypeSSHAuth:
		if len(s.Data[corev1.SSHAuthPrivateKey]) == 0 {
			errs = append(errs, field.Required(dataPath.Key(corev1.SSHAuthPrivateKey), ""))
		}
	case corev1.SecretTypeTLS:
		if _, ok := s.Data[corev1.TLSCertKey]; !ok {
			errs = append(errs, field.Required(dataPath.Key(corev1.TLSCertKey), ""))
		}
		if _, ok := s.Data[corev1.TLSPrivateKeyKey]; !ok {
			errs = append(errs, field.Required(dataPath.Key(corev1.TLSPrivateKeyKey), ""))
		}
	default:
		errs = append(errs, validateQualifiedName(string(s.Type), field.NewPath("type"))...)
	}
	return errs
}

func requireJSONKey(data map[string][]byte, key string, dataPath *field.Path) field.ErrorList {
	v, ok := data[key]
	if !ok || len(v) == 0 {
		return field.ErrorList{field.Required(dataPath.Key(key), "")}
	}
	var js map[string]any
	if err := json.Unmarshal(v, &js); err != nil {
		return field.ErrorList{field.Invalid(dataPath.Key(key), "<secret contents redacted>", err.Error())}
	}
	return nil
}

// ---- serviceaccounts ----

func serviceAccountResource() *registry.Resource {
	return &registry.Resource{
		GVR:        coreGVR("serviceaccounts"),
		Kind:       "ServiceAccount",
		ListKind:   "ServiceAccountList",
		Singular:   "serviceaccount",
		ShortNames: []string{"sa"},
		Namespaced: true,
		Strategy: registry.Define(registry.Typed[*corev1.ServiceAccount, *corev1.ServiceAccountList]{
			New:     func() *corev1.ServiceAccount { return &corev1.ServiceAccount{} },
			NewList: func() *corev1.ServiceAccountList { return &corev1.ServiceAccountList{} },
			Validate: func(sa *corev1.ServiceAccount) field.ErrorList {
				var errs field.ErrorList
				for i, s := range sa.ImagePullSecrets {
					if s.Name == "" {
						errs = append(errs, field.Required(field.NewPath("imagePullSecrets").Index(i).Child("name"), ""))
					}
				}
				return errs
			},
			Table: &registry.TypedTable[*corev1.ServiceAccount]{
				Columns: []metav1.TableColumnDefinition{
					columnName(),
					columnString("Secrets", corev1.ServiceAccount{}.SwaggerDoc()["secrets"], 0),
					columnAge(),
				},
				Row: func(sa *corev1.ServiceAccount) []any {
					return []any{sa.Name, int64(len(sa.Secrets)), cellAge(&sa.ObjectMeta)}
				},
			},
		}),
	}
}

// ---- events ----

func eventResource() *registry.Resource {
	return &registry.Resource{
		GVR:        coreGVR("events"),
		Kind:       "Event",
		ListKind:   "EventList",
		Singular:   "event",
		ShortNames: []string{"ev"},
		Namespaced: true,
		Strategy: registry.Define(registry.Typed[*corev1.Event, *corev1.EventList]{
			New:      func() *corev1.Event { return &corev1.Event{} },
			NewList:  func() *corev1.EventList { return &corev1.EventList{} },
			Validate: validateEvent,
			Fields: map[string]func(*corev1.Event) string{
				"involvedObject.kind":            func(e *corev1.Event) string { return e.InvolvedObject.Kind },
				"involvedObject.namespace":       func(e *corev1.Event) string { return e.InvolvedObject.Namespace },
				"involvedObject.name":            func(e *corev1.Event) string { return e.InvolvedObject.Name },
				"involvedObject.uid":             func(e *corev1.Event) string { return string(e.InvolvedObject.UID) },
				"involvedObject.apiVersion":      func(e *corev1.Event) string { return e.InvolvedObject.APIVersion },
				"involvedObject.resourceVersion": func(e *corev1.Event) string { return e.InvolvedObject.ResourceVersion },
				"involvedObject.fieldPath":       func(e *corev1.Event) string { return e.InvolvedObject.FieldPath },
				"reason":                         func(e *corev1.Event) string { return e.Reason },
				"reportingComponent":             func(e *corev1.Event) string { return e.ReportingController },
				"source": func(e *corev1.Event) string {
					if e.Source.Component != "" {
						return e.Source.Component
					}
					return e.ReportingController
				},
				"type": func(e *corev1.Event) string { return e.Type },
			},
			Table: eventTable(),
		}),
	}
}

func validateEvent(e *corev1.Event) field.ErrorList {
	var errs field.ErrorList
	if e.InvolvedObject.Namespace != "" && e.Namespace != "" && e.InvolvedObject.Namespace != e.Namespace {
		errs = append(errs, field.Invalid(field.NewPath("involvedObject", "namespace"), e.InvolvedObject.Namespace, "does not match event.namespace"))
	}
	if e.Type != "" && e.Type != corev1.EventTypeNormal && e.Type != corev1.EventTypeWarning && e.ReportingController != "" {
		errs = append(errs, field.Invalid(field.NewPath("type"), e.Type, fmt.Sprintf("has invalid value: %v", e.Type)))
	}
	if e.ReportingController != "" {
		errs = append(errs, validateQualifiedName(e.ReportingController, field.NewPath("reportingController"))...)
	}
	return errs
}

func eventTable() *registry.TypedTable[*corev1.Event] {
	return &registry.TypedTable[*corev1.Event]{
		Columns: []metav1.TableColumnDefinition{
			columnString("Last Seen", corev1.Event{}.SwaggerDoc()["lastTimestamp"], 0),
			columnString("Type", corev1.Event{}.SwaggerDoc()["type"], 0),
			columnString("Reason", corev1.Event{}.SwaggerDoc()["reason"], 0),
			columnString("Object", corev1.Event{}.SwaggerDoc()["involvedObject"], 0),
			columnString("Subobject", corev1.ObjectReference{}.SwaggerDoc()["fieldPath"], 1),
			columnString("Source", corev1.Event{}.SwaggerDoc()["source"], 1),
			columnString("Message", corev1.Event{}.SwaggerDoc()["message"], 0),
			columnString("First Seen", corev1.Event{}.SwaggerDoc()["firstTimestamp"], 1),
			columnString("Count", corev1.Event{}.SwaggerDoc()["count"], 1),
			{Name: "Name", Type: "string", Format: "name", Priority: 1, Description: metav1.ObjectMeta{}.SwaggerDoc()["name"]},
		},
		Row: func(e *corev1.Event) []any { return eventRow(e, time.Now()) },
	}
}

// eventRow follows upstream's event printer; the first cell is LAST SEEN,
// not the name (NAME is the last, wide-only column).
func eventRow(e *corev1.Event, now time.Time) []any {
	first := registry.HumanAge(e.FirstTimestamp, now)
	if e.FirstTimestamp.IsZero() {
		first = microAge(e.EventTime, now)
	}
	last := registry.HumanAge(e.LastTimestamp, now)
	if e.LastTimestamp.IsZero() {
		last = first
	}
	count := e.Count
	if e.Series != nil {
		last = microAge(e.Series.LastObservedTime, now)
		count = e.Series.Count
	} else if count == 0 {
		count = 1
	}
	target := strings.ToLower(e.InvolvedObject.Kind)
	if e.InvolvedObject.Name != "" {
		target += "/" + e.InvolvedObject.Name
	}
	component := e.Source.Component
	if component == "" {
		component = e.ReportingController
	}
	instance := e.Source.Host
	if instance == "" {
		instance = e.ReportingInstance
	}
	source := component
	if instance != "" {
		source += ", " + instance
	}
	return []any{last, e.Type, e.Reason, target, e.InvolvedObject.FieldPath, source,
		strings.TrimSpace(e.Message), first, int64(count), e.Name}
}

func microAge(t metav1.MicroTime, now time.Time) string {
	return registry.HumanAge(metav1.Time{Time: t.Time}, now)
}

// ---- limitranges ----

func limitRangeResource() *registry.Resource {
	return &registry.Resource{
		GVR:        coreGVR("limitranges"),
		Kind:       "LimitRange",
		ListKind:   "LimitRangeList",
		Singular:   "limitrange",
		ShortNames: []string{"limits"},
		Namespaced: true,
		Strategy: registry.Define(registry.Typed[*corev1.LimitRange, *corev1.LimitRangeList]{
			New:      func() *corev1.LimitRange { return &corev1.LimitRange{} },
			NewList:  func() *corev1.LimitRangeList { return &corev1.LimitRangeList{} },
			Default:  defaultLimitRange,
			Validate: validateLimitRange,
		}),
	}
}

// defaultLimitRange: for containers, default (limit) falls back to max and
// defaultRequest to default, then to min, as upstream's
// SetDefaults_LimitRangeItem.
func defaultLimitRange(lr *corev1.LimitRange) {
	for i := range lr.Spec.Limits {
		it := &lr.Spec.Limits[i]
		for _, rl := range []corev1.ResourceList{it.Max, it.Min, it.Default, it.DefaultRequest, it.MaxLimitRequestRatio} {
			roundResourceList(rl)
		}
		if it.Type != corev1.LimitTypeContainer {
			continue
		}
		if it.Default == nil {
			it.Default = corev1.ResourceList{}
		}
		for k, v := range it.Max {
			if _, ok := it.Default[k]; !ok {
				it.Default[k] = v.DeepCopy()
			}
		}
		if it.DefaultRequest == nil {
			it.DefaultRequest = corev1.ResourceList{}
		}
		for k, v := range it.Default {
			if _, ok := it.DefaultRequest[k]; !ok {
				it.DefaultRequest[k] = v.DeepCopy()
			}
		}
		for k, v := range it.Min {
			if _, ok := it.DefaultRequest[k]; !ok {
				it.DefaultRequest[k] = v.DeepCopy()
			}
		}
		if len(it.Default) == 0 {
			it.Default = nil
		}
		if len(it.DefaultRequest) == 0 {
			it.DefaultRequest = nil
		}
	}
}

func validateLimitRange(lr *corev1.LimitRange) field.ErrorList {
	var errs field.ErrorList
	limitTypes := []corev1.LimitType{corev1.LimitTypePod, corev1.LimitTypeContainer, corev1.LimitTypePersistentVolumeClaim}
	seen := map[corev1.LimitType]bool{}
	for i, it := range lr.Spec.Limits {
		p := field.NewPath("spec", "limits").Index(i)
		if !slices.Contains(limitTypes, it.Type) && !strings.Contains(string(it.Type), "/") {
			errs = append(errs, field.NotSupported(p.Child("type"), it.Type, limitTypes))
		}
		if seen[it.Type] {
			errs = append(errs, field.Duplicate(p.Child("type"), it.Type))
		}
		seen[it.Type] = true
		for _, part := range []struct {
			name string
			rl   corev1.ResourceList
		}{{"max", it.Max}, {"min", it.Min}, {"default", it.Default}, {"defaultRequest", it.DefaultRequest}, {"maxLimitRequestRatio", it.MaxLimitRequestRatio}} {
			for k, q := range part.rl {
				kp := p.Child(part.name).Key(string(k))
				errs = append(errs, validateQualifiedName(string(k), kp)...)
				errs = append(errs, validateNonNegativeQuantity(q, kp)...)
			}
		}
		if it.Type == corev1.LimitTypePod && (len(it.Default) > 0 || len(it.DefaultRequest) > 0) {
			errs = append(errs, field.Forbidden(p.Child("default"), "may not be specified when `type` is 'Pod'"))
		}
		for k, mn := range it.Min {
			if mx, ok := it.Max[k]; ok && mn.Cmp(mx) > 0 {
				errs = append(errs, field.Invalid(p.Child("min").Key(string(k)), mn.String(), fmt.Sprintf("min value %s is greater than max value %s", mn.String(), mx.String())))
			}
		}
		for k, d := range it.Default {
			if mx, ok := it.Max[k]; ok && d.Cmp(mx) > 0 {
				errs = append(errs, field.Invalid(p.Child("default").Key(string(k)), d.String(), fmt.Sprintf("default value %s is greater than max value %s", d.String(), mx.String())))
			}
			if mn, ok := it.Min[k]; ok && d.Cmp(mn) < 0 {
				errs = append(errs, field.Invalid(p.Child("default").Key(string(k)), d.String(), fmt.Sprintf("min value %s is greater than default value %s", mn.String(), d.String())))
			}
		}
		for k, dr := range it.DefaultRequest {
			if d, ok := it.Default[k]; ok && dr.Cmp(d) > 0 {
				errs = append(errs, field.Invalid(p.Child("defaultRequest").Key(string(k)), dr.String(), fmt.Sprintf("default request value %s is greater than default limit value %s", dr.String(), d.String())))
			}
		}
	}
	return errs
}

// ---- resourcequotas ----

func resourceQuotaResource() *registry.Resource {
	return &registry.Resource{
		GVR:        coreGVR("resourcequotas"),
		Kind:       "ResourceQuota",
		ListKind:   "ResourceQuotaList",
		Singular:   "resourcequota",
		ShortNames: []string{"quota"},
		Namespaced: true,
		Status:     true,
		Strategy: registry.Define(registry.Typed[*corev1.ResourceQuota, *corev1.ResourceQuotaList]{
			New:              func() *corev1.ResourceQuota { return &corev1.ResourceQuota{} },
			NewList:          func() *corev1.ResourceQuotaList { return &corev1.ResourceQuotaList{} },
			PrepareForCreate: func(q *corev1.ResourceQuota) { q.Status = corev1.ResourceQuotaStatus{} },
			Default: func(q *corev1.ResourceQuota) {
				roundResourceList(q.Spec.Hard)
				roundResourceList(q.Status.Hard)
				roundResourceList(q.Status.Used)
			},
			Validate: validateResourceQuota,
			ValidateStatusUpdate: func(q, _ *corev1.ResourceQuota) field.ErrorList {
				var errs field.ErrorList
				errs = append(errs, validateResourceList(q.Status.Hard, field.NewPath("status", "hard"))...)
				errs = append(errs, validateResourceList(q.Status.Used, field.NewPath("status", "used"))...)
				return errs
			},
			Table: &registry.TypedTable[*corev1.ResourceQuota]{
				Columns: []metav1.TableColumnDefinition{
					columnName(),
					columnAge(),
					columnString("Request", "Request represents a minimum amount of cpu/memory that a container may consume.", 0),
					columnString("Limit", "Limits control the maximum amount of cpu/memory that a container may use independent of contention on the node.", 0),
				},
				Row: resourceQuotaRow,
			},
		}),
	}
}

func validateResourceQuota(q *corev1.ResourceQuota) field.ErrorList {
	errs := validateResourceList(q.Spec.Hard, field.NewPath("spec", "hard"))
	scopes := []corev1.ResourceQuotaScope{corev1.ResourceQuotaScopeTerminating, corev1.ResourceQuotaScopeNotTerminating,
		corev1.ResourceQuotaScopeBestEffort, corev1.ResourceQuotaScopeNotBestEffort, corev1.ResourceQuotaScopePriorityClass,
		corev1.ResourceQuotaScopeCrossNamespacePodAffinity, corev1.ResourceQuotaScopeVolumeAttributesClass}
	for i, s := range q.Spec.Scopes {
		if !slices.Contains(scopes, s) {
			errs = append(errs, field.NotSupported(field.NewPath("spec", "scopes").Index(i), s, scopes))
		}
	}
	return errs
}

func validateResourceList(rl corev1.ResourceList, fldPath *field.Path) field.ErrorList {
	var errs field.ErrorList
	for _, k := range slices.Sorted(maps.Keys(rl)) {
		q := rl[k]
		p := fldPath.Key(string(k))
		errs = append(errs, validateQualifiedName(string(k), p)...)
		errs = append(errs, validateNonNegativeQuantity(q, p)...)
	}
	return errs
}

func resourceQuotaRow(q *corev1.ResourceQuota) []any {
	names := slices.Sorted(maps.Keys(q.Status.Hard))
	var req, lim []string
	for _, name := range names {
		used := q.Status.Used[name]
		hard := q.Status.Hard[name]
		cell := fmt.Sprintf("%s: %s/%s", name, used.String(), hard.String())
		if strings.HasPrefix(string(name), "limits.") {
			lim = append(lim, cell)
		} else {
			req = append(req, cell)
		}
	}
	return []any{q.Name, cellAge(&q.ObjectMeta), strings.Join(req, ", "), strings.Join(lim, ", ")}
}

// ---- podtemplates ----

func podTemplateResource() *registry.Resource {
	return &registry.Resource{
		GVR:        coreGVR("podtemplates"),
		Kind:       "PodTemplate",
		ListKind:   "PodTemplateList",
		Singular:   "podtemplate",
		Namespaced: true,
		Strategy: registry.Define(registry.Typed[*corev1.PodTemplate, *corev1.PodTemplateList]{
			New:     func() *corev1.PodTemplate { return &corev1.PodTemplate{} },
			NewList: func() *corev1.PodTemplateList { return &corev1.PodTemplateList{} },
			Default: func(pt *corev1.PodTemplate) { defaultPodSpec(&pt.Template.Spec) },
			Validate: func(pt *corev1.PodTemplate) field.ErrorList {
				return validatePodTemplateSpec(&pt.Template, field.NewPath("template"))
			},
			Table: &registry.TypedTable[*corev1.PodTemplate]{
				Columns: []metav1.TableColumnDefinition{
					columnName(),
					columnString("Containers", "Names of each container in the template.", 0),
					columnString("Images", "Images referenced by each container in the template.", 0),
					columnString("Pod Labels", "The labels for the pod template.", 0),
				},
				Row: func(pt *corev1.PodTemplate) []any {
					names, images := cellsTemplate(&pt.Template.Spec)
					return []any{pt.Name, names, images, formatLabelMap(pt.Template.Labels)}
				},
			},
		}),
	}
}

// formatLabelMap renders labels as "a=b,c=d" sorted by key, "<none>" when
// empty (upstream's labels.FormatLabels).
func formatLabelMap(m map[string]string) string {
	if len(m) == 0 {
		return "<none>"
	}
	var parts []string
	for _, k := range slices.Sorted(maps.Keys(m)) {
		parts = append(parts, k+"="+m[k])
	}
	return strings.Join(parts, ",")
}

// validateNonNegativeInt32 checks an int32 field is ≥ 0.
func validateNonNegativeInt32(v int32, fldPath *field.Path) field.ErrorList {
	return apivalidation.ValidateNonnegativeField(int64(v), fldPath)
}
