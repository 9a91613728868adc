package registry

import (
	"time"

	"k8s.io/apimachinery/pkg/api/validation/path"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/util/duration"
	"k8s.io/apimachinery/pkg/util/validation"
)

// NameIsDNSSubdomain accepts DNS-1123 subdomains (most resources). With
// prefix true a trailing "-" or "." is allowed, as for generateName.
func NameIsDNSSubdomain(name string, prefix bool) []string {
	if prefix {
		name = maskTrailingDash(name)
	}
	return validation.IsDNS1123Subdomain(name)
}

// NameIsDNSLabel accepts DNS-1123 labels (namespaces, services).
func NameIsDNSLabel(name string, prefix bool) []string {
	if prefix {
		name = maskTrailingDash(name)
	}
	return validation.IsDNS1123Label(name)
}

// NameIsDNS1035Label accepts DNS-1035 labels (services: must start with a letter).
func NameIsDNS1035Label(name string, prefix bool) []string {
	if prefix {
		name = maskTrailingDash(name)
	}
	return validation.IsDNS1035Label(name)
}

// NameIsPathSegment accepts any name usable as a URL path segment (RBAC
// objects, which allow ":" as in "system:node").
func NameIsPathSegment(name string, prefix bool) []string {
	if prefix {
		return path.ValidatePathSegmentName(name, true)
	}
	return path.IsValidPathSegmentName(name)
}

func maskTrailingDash(name string) string {
	if len(name) > 1 && (name[len(name)-1] == '-' || name[len(name)-1] == '.') {
		return name[:len(name)-2] + "a"
	}
	return name
}

// HumanAge renders the age of t as kubectl does ("5m", "3h12m", "<unknown>").
func HumanAge(t metav1.Time, now time.Time) string {
	if t.IsZero() {
		return "<unknown>"
	}
	return duration.HumanDuration(now.Sub(t.Time))
}
