package cri

import (
	"context"

	runtimeapi "k8s.io/cri-api/pkg/apis/runtime/v1"
)

// AuthConfig holds the credentials for pulling from one registry, as the
// CRI takes them. Username and Password, or Auth (base64 of
// "user:password"), or IdentityToken or RegistryToken; ServerAddress names
// the registry they belong to.
type AuthConfig struct {
	Username, Password string
	Auth               string
	ServerAddress      string
	IdentityToken      string
	RegistryToken      string
}

// PullImageWithAuth is PullImage with credentials for the image's
// registry; a nil auth pulls anonymously. It returns the image reference
// (image ID) the runtime resolved.
func (c *Client) PullImageWithAuth(ctx context.Context, image string, auth *AuthConfig) (string, error) {
	ctx, cancel := context.WithTimeout(ctx, c.cfg.PullTimeout)
	defer cancel()
	req := &runtimeapi.PullImageRequest{Image: &runtimeapi.ImageSpec{Image: image}}
	if auth != nil {
		req.Auth = &runtimeapi.AuthConfig{
			Username:      auth.Username,
			Password:      auth.Password,
			Auth:          auth.Auth,
			ServerAddress: auth.ServerAddress,
			IdentityToken: auth.IdentityToken,
			RegistryToken: auth.RegistryToken,
		}
	}
	r, err := c.images.PullImage(ctx, req)
	if err != nil {
		return "", wrap("pulling image", image, err)
	}
	return r.GetImageRef(), nil
}

// PullImageWithAuth is PullImage: the Fake has no registry, so the
// credentials are not looked at and only a present image "pulls".
func (f *Fake) PullImageWithAuth(ctx context.Context, image string, _ *AuthConfig) (string, error) {
	return f.PullImage(ctx, image)
}
