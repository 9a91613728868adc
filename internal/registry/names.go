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
	if isDNS1123Subdomain(name) {
		return nil // what the regular expression below accepts, without it
	}
	return validation.IsDNS1123Subdomain(name)
}

// isDNS1123Subdomain reports whether name is a DNS-1123 subdomain: at
// most 253 characters, dot-separated labels of lower-case letters, digits
// and "-" that start and end with a letter or digit.
func isDNS1123Subdomain(name string) bool {
	if len(name) == 0 || len(name) > validation.DNS1123SubdomainMaxLength {
		return false
	}
	alnum := func(c byte) bool { return c >= 'a' && c <= 'z' || c >= '0' && c <= '9' }
	start := 0
	for i := 0; i <= len(name); i++ {
		if i < len(name) && name[i] != '.' {
			if c := name[i]; !alnum(c) && c != '-' {
				return false
			}
			continue
		}
		// name[start:i] is one label.
		if i == start || !alnum(name[start]) || !alnum(name[i-1]) {
			return false
		}
		start = i + 1
	}
	return true
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
