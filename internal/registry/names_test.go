package registry

import (
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
	"k8s.io/apimachinery/pkg/util/validation"
)

// TestNameIsDNSSubdomainMatchesUpstream checks the fast path of
// NameIsDNSSubdomain against apimachinery's regular expression.
func TestNameIsDNSSubdomainMatchesUpstream(t *testing.T) {
	names := []string{
		"", "a", "A", "0", "-", ".", "a-", "-a", "a.", ".a", "a..b", "a.-b", "a-.b", "a.b", "a-b", "a--b",
		"web-1", "web.example.com", "Web", "web_1", "web 1", "wéb", "a/b", "a:b", "0-0.0-0", "x.y-z.0",
		strings.Repeat("a", 63), strings.Repeat("a", 64), strings.Repeat("a", 253), strings.Repeat("a", 254),
		strings.Repeat("a.", 126) + "a", strings.Repeat("a.", 127), "a\x00", "\xff",
	}
	// Every string of up to three characters from an alphabet of interest.
	alphabet := []string{"a", "z", "0", "9", "-", ".", "A", "_"}
	for _, x := range alphabet {
		names = append(names, x)
		for _, y := range alphabet {
			names = append(names, x+y)
			for _, z := range alphabet {
				names = append(names, x+y+z)
			}
		}
	}
	for _, name := range names {
		for _, prefix := range []bool{false, true} {
			masked := name
			if prefix {
				masked = maskTrailingDash(name)
			}
			want := validation.IsDNS1123Subdomain(masked)
			if got := NameIsDNSSubdomain(name, prefix); !cmp.Equal(got, want) {
				t.Errorf("NameIsDNSSubdomain(%q, %v) = %q, want %q", name, prefix, got, want)
			}
			if fast := isDNS1123Subdomain(masked); fast != (len(want) == 0) {
				t.Errorf("isDNS1123Subdomain(%q) = %v, want %v", masked, fast, len(want) == 0)
			}
		}
	}
}
