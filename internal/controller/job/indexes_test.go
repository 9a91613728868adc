package job

import (
	"testing"

	"github.com/google/go-cmp/cmp"
	batchv1 "k8s.io/api/batch/v1"
)

func TestIndexSetString(t *testing.T) {
	tests := []struct {
		name string
		in   []int
		want string
	}{
		{name: "empty", want: ""},
		{name: "single", in: []int{4}, want: "4"},
		{name: "pair", in: []int{3, 4}, want: "3-4"},
		{name: "mixed", in: []int{5, 1, 3, 4}, want: "1,3-5"},
		{name: "runs", in: []int{0, 1, 2, 7, 9, 10}, want: "0-2,7,9-10"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s := indexSet{}
			for _, i := range tt.in {
				s[i] = struct{}{}
			}
			if diff := cmp.Diff(tt.want, s.String()); diff != "" {
				t.Errorf("String() (-want +got):\n%s", diff)
			}
		})
	}
}

func TestParseIndexes(t *testing.T) {
	tests := []struct {
		name  string
		in    string
		limit int
		want  string
	}{
		{name: "empty", in: "", limit: 10, want: ""},
		{name: "round trip", in: "1,3-5", limit: 10, want: "1,3-5"},
		{name: "above limit dropped", in: "0-2,7-9", limit: 8, want: "0-2,7"},
		{name: "malformed items dropped", in: "x,2,5-3,4", limit: 10, want: "2,4"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got := parseIndexes(tt.in, tt.limit).String()
			if diff := cmp.Diff(tt.want, got); diff != "" {
				t.Errorf("parseIndexes(%q) (-want +got):\n%s", tt.in, diff)
			}
		})
	}
}

func TestMatchSuccessPolicy(t *testing.T) {
	rule := func(indexes string, count int32) batchv1.SuccessPolicyRule {
		r := batchv1.SuccessPolicyRule{}
		if indexes != "" {
			r.SucceededIndexes = &indexes
		}
		if count > 0 {
			r.SucceededCount = &count
		}
		return r
	}
	tests := []struct {
		name      string
		rules     []batchv1.SuccessPolicyRule
		completed string
		want      string
	}{
		{name: "indexes not all done", rules: []batchv1.SuccessPolicyRule{rule("0-2", 0)}, completed: "0,2", want: ""},
		{name: "indexes all done", rules: []batchv1.SuccessPolicyRule{rule("0-2", 0)}, completed: "0-2,5", want: "Matched rules at index 0"},
		{name: "count only", rules: []batchv1.SuccessPolicyRule{rule("", 3)}, completed: "1,4,7", want: "Matched rules at index 0"},
		{name: "count among indexes", rules: []batchv1.SuccessPolicyRule{rule("0-3", 2), rule("", 9)}, completed: "3,4,5", want: ""},
		{name: "second rule", rules: []batchv1.SuccessPolicyRule{rule("0", 0), rule("4-6", 2)}, completed: "4,6", want: "Matched rules at index 1"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got := matchSuccessPolicy(&batchv1.SuccessPolicy{Rules: tt.rules}, 10, parseIndexes(tt.completed, 10))
			if diff := cmp.Diff(tt.want, got); diff != "" {
				t.Errorf("matchSuccessPolicy (-want +got):\n%s", diff)
			}
		})
	}
}
