package cel

import (
	"fmt"
	"strings"
	"testing"
)

// benchObject returns a custom resource of specSchema with n list items.
func benchObject(n int) string {
	var b strings.Builder
	b.WriteString("spec:\n  tags: [a, main]\n  items:\n")
	for i := range n {
		fmt.Fprintf(&b, "  - {name: item%d, weight: %d}\n", i, i)
	}
	b.WriteString("  minReplicas: 1\n  maxReplicas: 2\n  image: registry.example/a\n  name: abc\n  labels: {a: b}\n")
	return b.String()
}

// BenchmarkValidate measures the rules of specSchema on an object with 100
// list items (each with two rules), on create and on an unchanged update.
func BenchmarkValidate(b *testing.B) {
	v := mustCompile(b, specSchema)
	obj := objectOf(b, benchObject(100))
	for _, bc := range []struct {
		name string
		old  map[string]any
	}{{"create", nil}, {"update", obj}} {
		b.Run(bc.name, func(b *testing.B) {
			b.ReportAllocs()
			for b.Loop() {
				if errs := v.Validate(obj, bc.old); len(errs) > 0 {
					b.Fatal(errs)
				}
			}
		})
	}
}

// BenchmarkCompile measures compiling specSchema's rules.
func BenchmarkCompile(b *testing.B) {
	s := schemaOf(b, specSchema)
	b.ReportAllocs()
	for b.Loop() {
		if _, errs := Compile(s); len(errs) > 0 {
			b.Fatal(errs)
		}
	}
}
