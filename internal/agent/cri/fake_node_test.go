package cri

import (
	"context"
	"testing"

	"github.com/google/go-cmp/cmp"
)

func TestFakeNode(t *testing.T) {
	t.Parallel()
	f := NewFake("b:1", "a:1")
	name, version, err := f.Version(context.Background())
	if err != nil || name != FakeRuntimeName || version != FakeRuntimeVersion {
		t.Errorf("Version = %q, %q, %v", name, version, err)
	}
	got, err := f.ListImages(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	want := []Image{{ID: "sha256:a:1", RepoTags: []string{"a:1"}}, {ID: "sha256:b:1", RepoTags: []string{"b:1"}}}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("ListImages (-want +got):\n%s", diff)
	}
	got[0].RepoTags[0] = "changed"
	again, _ := f.ListImages(context.Background())
	if again[0].RepoTags[0] != "a:1" {
		t.Errorf("ListImages returned the Fake's own slices")
	}
}
