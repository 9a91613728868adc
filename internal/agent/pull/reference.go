package pull

import (
	"errors"
	"fmt"
	"regexp"
	"strings"
)

// dockerHub is the canonical name of Docker Hub, the registry of images
// whose name has no registry part.
const dockerHub = "docker.io"

var (
	pathComponent = regexp.MustCompile(`^[a-z0-9]+(?:(?:[._]|__|-+)[a-z0-9]+)*$`)
	domainRE      = regexp.MustCompile(`^(?:[a-zA-Z0-9](?:[a-zA-Z0-9-]*[a-zA-Z0-9])?(?:\.[a-zA-Z0-9](?:[a-zA-Z0-9-]*[a-zA-Z0-9])?)*|\[[0-9a-fA-F:.]+\])(?::[0-9]+)?$`)
	tagRE         = regexp.MustCompile(`^[\w][\w.-]{0,127}$`)
	digestRE      = regexp.MustCompile(`^[A-Za-z][A-Za-z0-9]*(?:[-_+.][A-Za-z][A-Za-z0-9]*)*:[0-9a-fA-F]{32,}$`)
)

// reference is a parsed image reference such as
// "registry.example.com:5000/team/app:1.0@sha256:…".
type reference struct {
	// Domain is the registry host[:port], canonical ("docker.io" for
	// Docker Hub); Path the repository within it ("library/busybox").
	Domain, Path string
	Tag, Digest  string
}

// parseReference parses an image reference the way container runtimes do:
// the first component names a registry when it contains "." or ":" or is
// "localhost"; otherwise the image is on Docker Hub, under "library/" when
// it has a single component.
func parseReference(s string) (reference, error) {
	var r reference
	if s == "" {
		return r, errors.New("empty image name")
	}
	name := s
	if i := strings.IndexByte(name, '@'); i >= 0 {
		name, r.Digest = name[:i], name[i+1:]
		if !digestRE.MatchString(r.Digest) {
			return r, fmt.Errorf("invalid digest %q", r.Digest)
		}
	}
	if i := strings.LastIndexByte(name, ':'); i >= 0 && !strings.Contains(name[i+1:], "/") {
		name, r.Tag = name[:i], name[i+1:]
		if !tagRE.MatchString(r.Tag) {
			return r, fmt.Errorf("invalid tag %q", r.Tag)
		}
	}
	if len(name) > 255 {
		return r, errors.New("repository name must not be more than 255 characters")
	}
	parts := strings.Split(name, "/")
	if len(parts) > 1 && (strings.ContainsAny(parts[0], ".:") || parts[0] == "localhost") {
		if !domainRE.MatchString(parts[0]) {
			return r, fmt.Errorf("invalid registry %q", parts[0])
		}
		r.Domain = canonicalHost(parts[0])
		parts = parts[1:]
	} else {
		r.Domain = dockerHub
	}
	for _, p := range parts {
		if !pathComponent.MatchString(p) {
			if strings.ToLower(p) != p {
				return r, errors.New("repository name must be lowercase")
			}
			return r, fmt.Errorf("invalid reference format: %q", s)
		}
	}
	if r.Domain == dockerHub && len(parts) == 1 {
		parts = []string{"library", parts[0]}
	}
	r.Path = strings.Join(parts, "/")
	return r, nil
}

// canonicalHost maps the names of Docker Hub to dockerHub.
func canonicalHost(h string) string {
	switch strings.ToLower(h) {
	case "docker.io", "index.docker.io", "registry-1.docker.io", "registry.hub.docker.com":
		return dockerHub
	}
	return h
}

// withDefaultTag returns image with ":latest" appended when it has neither
// tag nor digest, and its parsed form.
func withDefaultTag(image string) (string, reference, error) {
	r, err := parseReference(image)
	if err != nil {
		return "", r, err
	}
	if r.Tag == "" && r.Digest == "" {
		r.Tag = "latest"
		return image + ":latest", r, nil
	}
	return image, r, nil
}
