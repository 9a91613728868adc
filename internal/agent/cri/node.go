package cri

import (
	"context"

	runtimeapi "k8s.io/cri-api/pkg/apis/runtime/v1"
)

// ListImages returns every image present on the node, for the node's
// status. It is not part of Runtime: only node status reporting needs it.
func (c *Client) ListImages(ctx context.Context) ([]Image, error) {
	ctx, cancel := c.ctx(ctx)
	defer cancel()
	r, err := c.images.ListImages(ctx, &runtimeapi.ListImagesRequest{})
	if err != nil {
		return nil, wrap("listing images", "", err)
	}
	out := make([]Image, 0, len(r.GetImages()))
	for _, img := range r.GetImages() {
		out = append(out, Image{ID: img.GetId(), RepoTags: img.GetRepoTags(), RepoDigests: img.GetRepoDigests(), Size: img.GetSize()})
	}
	return out, nil
}
