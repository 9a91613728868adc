package builtin

import (
	"fmt"
	"strings"
	"time"

	corev1 "k8s.io/api/core/v1"
	eventsv1 "k8s.io/api/events/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/util/validation/field"

	"github.com/skiff-dev/skiff/internal/registry"
)

// Upstream's limits on events.k8s.io fields.
const (
	eventNoteMax        = 1024
	eventShortStringMax = 128
)

// eventsResources returns events.k8s.io/v1 events: as upstream, a view of
// the core/v1 events (see eventsconvert.go).
func eventsResources() []*registry.Resource {
	return []*registry.Resource{{
		GVR: eventsv1.SchemeGroupVersion.WithResource("events"), Kind: "Event", ListKind: "EventList",
		Singular: "event", ShortNames: []string{"ev"}, Namespaced: true,
		Strategy: eventsV1Strategy(),
		StoredAs: &registry.StoredAs{
			GVR:        corev1.SchemeGroupVersion.WithResource("events"),
			ToStored:   eventToStored,
			FromStored: eventFromStored,
			FieldLabel: eventFieldLabel,
		},
	}}
}

func eventsV1Strategy() registry.Strategy {
	return registry.Define(registry.Typed[*eventsv1.Event, *eventsv1.EventList]{
		New:      func() *eventsv1.Event { return &eventsv1.Event{} },
		NewList:  func() *eventsv1.EventList { return &eventsv1.EventList{} },
		Validate: validateEventV1,
		ValidateUpdate: func(e, old *eventsv1.Event) field.ErrorList {
			allErrs := validateEventV1(e)
			for _, f := range []struct {
				name     string
				new, old any
			}{
				{"action", e.Action, old.Action},
				{"reason", e.Reason, old.Reason},
				{"regarding", e.Regarding, old.Regarding},
				{"related", e.Related, old.Related},
				{"reportingController", e.ReportingController, old.ReportingController},
				{"reportingInstance", e.ReportingInstance, old.ReportingInstance},
				{"note", e.Note, old.Note},
				{"type", e.Type, old.Type},
			} {
				allErrs = append(allErrs, validateImmutable(f.new, f.old, field.NewPath(f.name))...)
			}
			return allErrs
		},
		Fields: map[string]func(*eventsv1.Event) string{
			"regarding.kind":            func(e *eventsv1.Event) string { return e.Regarding.Kind },
			"regarding.namespace":       func(e *eventsv1.Event) string { return e.Regarding.Namespace },
			"regarding.name":            func(e *eventsv1.Event) string { return e.Regarding.Name },
			"regarding.uid":             func(e *eventsv1.Event) string { return string(e.Regarding.UID) },
			"regarding.apiVersion":      func(e *eventsv1.Event) string { return e.Regarding.APIVersion },
			"regarding.resourceVersion": func(e *eventsv1.Event) string { return e.Regarding.ResourceVersion },
			"regarding.fieldPath":       func(e *eventsv1.Event) string { return e.Regarding.FieldPath },
			"reason":                    func(e *eventsv1.Event) string { return e.Reason },
			"reportingController":       func(e *eventsv1.Event) string { return e.ReportingController },
			"type":                      func(e *eventsv1.Event) string { return e.Type },
			"deprecatedSource":          func(e *eventsv1.Event) string { return e.DeprecatedSource.Component },
		},
		Table: &registry.TypedTable[*eventsv1.Event]{
			Columns: []metav1.TableColumnDefinition{
				columnString("Last Seen", corev1.Event{}.SwaggerDoc()["lastTimestamp"], 0),
				columnString("Type", eventsv1.Event{}.SwaggerDoc()["type"], 0),
				columnString("Reason", eventsv1.Event{}.SwaggerDoc()["reason"], 0),
				columnString("Object", eventsv1.Event{}.SwaggerDoc()["regarding"], 0),
				columnString("Subobject", corev1.ObjectReference{}.SwaggerDoc()["fieldPath"], 1),
				columnString("Source", corev1.Event{}.SwaggerDoc()["source"], 1),
				columnString("Message", eventsv1.Event{}.SwaggerDoc()["note"], 0),
				columnString("First Seen", corev1.Event{}.SwaggerDoc()["firstTimestamp"], 1),
				columnString("Count", corev1.Event{}.SwaggerDoc()["count"], 1),
				{Name: "Name", Type: "string", Priority: 1, Format: "name", Description: metav1.ObjectMeta{}.SwaggerDoc()["name"]},
			},
			Row: eventV1Row,
		},
	})
}

func validateEventV1(e *eventsv1.Event) field.ErrorList {
	var allErrs field.ErrorList
	if e.EventTime.IsZero() {
		allErrs = append(allErrs, field.Required(field.NewPath("eventTime"), ""))
	}
	if e.Type != corev1.EventTypeNormal && e.Type != corev1.EventTypeWarning {
		allErrs = append(allErrs, field.Invalid(field.NewPath("type"), e.Type, fmt.Sprintf("has invalid value: %v", e.Type)))
	}
	if e.ReportingController == "" {
		allErrs = append(allErrs, field.Required(field.NewPath("reportingController"), ""))
	} else {
		allErrs = append(allErrs, validateQualifiedName(e.ReportingController, field.NewPath("reportingController"))...)
	}
	for _, f := range []struct{ name, v string }{
		{"reportingInstance", e.ReportingInstance}, {"action", e.Action}, {"reason", e.Reason},
	} {
		switch {
		case f.v == "":
			allErrs = append(allErrs, field.Required(field.NewPath(f.name), ""))
		case len(f.v) > eventShortStringMax:
			allErrs = append(allErrs, field.TooLong(field.NewPath(f.name), "", eventShortStringMax))
		}
	}
	if len(e.Note) > eventNoteMax {
		allErrs = append(allErrs, field.TooLong(field.NewPath("note"), "", eventNoteMax))
	}
	if ns := e.Regarding.Namespace; ns != "" && e.Namespace != "" && ns != e.Namespace {
		allErrs = append(allErrs, field.Invalid(field.NewPath("regarding", "namespace"), ns, "does not match event.namespace"))
	}
	if s := e.Series; s != nil {
		if s.Count < 2 {
			allErrs = append(allErrs, field.Invalid(field.NewPath("series", "count"), s.Count, "should be at least 2"))
		}
		if s.LastObservedTime.IsZero() {
			allErrs = append(allErrs, field.Required(field.NewPath("series", "lastObservedTime"), ""))
		}
	}
	return allErrs
}

// eventV1Row renders an events.k8s.io event as kubectl prints events.
func eventV1Row(e *eventsv1.Event) []any {
	now := time.Now()
	since := func(t time.Time) string {
		if t.IsZero() {
			return "<unknown>"
		}
		return registry.HumanAge(metav1.NewTime(t), now)
	}
	first := since(e.DeprecatedFirstTimestamp.Time)
	if e.DeprecatedFirstTimestamp.IsZero() {
		first = since(e.EventTime.Time)
	}
	last := since(e.DeprecatedLastTimestamp.Time)
	if e.DeprecatedLastTimestamp.IsZero() {
		last = first
	}
	count := e.DeprecatedCount
	if e.Series != nil {
		last = since(e.Series.LastObservedTime.Time)
		count = e.Series.Count
	} else if count == 0 {
		count = 1
	}
	target := strings.ToLower(e.Regarding.Kind)
	if e.Regarding.Name != "" {
		target += "/" + e.Regarding.Name
	}
	component := e.DeprecatedSource.Component
	if component == "" {
		component = e.ReportingController
	}
	instance := e.DeprecatedSource.Host
	if instance == "" {
		instance = e.ReportingInstance
	}
	source := component
	if instance != "" {
		source += ", " + instance
	}
	return []any{
		last, e.Type, e.Reason, target, e.Regarding.FieldPath, source, strings.TrimSpace(e.Note),
		first, int64(count), e.Name,
	}
}
