package cri

import (
	"context"
	"slices"
	"strings"
)

// Fake's runtime name and version, as Version reports them.
const (
	FakeRuntimeName    = "fake"
	FakeRuntimeVersion = "0.1.0"
)

// Version answers as Client.Version does, with FakeRuntimeName and
// FakeRuntimeVersion.
func (f *Fake) Version(context.Context) (name, version string, err error) {
	return FakeRuntimeName, FakeRuntimeVersion, nil
}

// ListImages returns the images present, as Client.ListImages does, sorted
// by ID.
func (f *Fake) ListImages(context.Context) ([]Image, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	out := make([]Image, 0, len(f.images))
	for _, img := range f.images {
		img.RepoTags = slices.Clone(img.RepoTags)
		img.RepoDigests = slices.Clone(img.RepoDigests)
		out = append(out, img)
	}
	slices.SortFunc(out, func(a, b Image) int { return strings.Compare(a.ID, b.ID) })
	return out, nil
}
