package pull

import (
	"encoding/base64"
	"encoding/json"
	"fmt"
	"maps"
	"path"
	"slices"
	"strings"

	v1 "k8s.io/api/core/v1"

	"github.com/skiff-dev/skiff/internal/agent/cri"
)

// dockerEntry is one registry's credentials in a docker config.
type dockerEntry struct {
	Username      string `json:"username,omitempty"`
	Password      string `json:"password,omitempty"`
	Email         string `json:"email,omitempty"`
	Auth          string `json:"auth,omitempty"`
	IdentityToken string `json:"identitytoken,omitempty"`
	RegistryToken string `json:"registrytoken,omitempty"`
}

// credential is the credentials for the registry locations matching key.
type credential struct {
	// host (may hold "*" globs per label, and a port) and path prefix of
	// the repositories it is for.
	host, path string
	auth       cri.AuthConfig
}

// keyring holds credentials from image pull secrets.
type keyring []credential

// addSecret adds the credentials of a kubernetes.io/dockerconfigjson or
// kubernetes.io/dockercfg secret. Other secrets add nothing.
func (k *keyring) addSecret(s *v1.Secret) error {
	var entries map[string]dockerEntry
	switch s.Type {
	case v1.SecretTypeDockerConfigJson:
		var cfg struct {
			Auths map[string]dockerEntry `json:"auths"`
		}
		if err := json.Unmarshal(s.Data[v1.DockerConfigJsonKey], &cfg); err != nil {
			return fmt.Errorf("decoding %s of secret %s/%s: %w", v1.DockerConfigJsonKey, s.Namespace, s.Name, err)
		}
		entries = cfg.Auths
	case v1.SecretTypeDockercfg:
		if err := json.Unmarshal(s.Data[v1.DockerConfigKey], &entries); err != nil {
			return fmt.Errorf("decoding %s of secret %s/%s: %w", v1.DockerConfigKey, s.Namespace, s.Name, err)
		}
	default:
		return nil
	}
	// Map order is random: add in key order so lookups are stable.
	for _, key := range slices.Sorted(maps.Keys(entries)) {
		e := entries[key]
		auth := cri.AuthConfig{Username: e.Username, Password: e.Password, IdentityToken: e.IdentityToken, RegistryToken: e.RegistryToken}
		if e.Auth != "" {
			user, pass, err := decodeAuth(e.Auth)
			if err != nil {
				return fmt.Errorf("decoding auth for %q in secret %s/%s: %w", key, s.Namespace, s.Name, err)
			}
			auth.Username, auth.Password = user, pass
		}
		host, p := parseKey(key)
		if host == "" {
			continue
		}
		*k = append(*k, credential{host: host, path: p, auth: auth})
	}
	return nil
}

// decodeAuth decodes the "auth" field: base64 of "user:password".
func decodeAuth(s string) (user, pass string, err error) {
	raw, err := base64.StdEncoding.DecodeString(s)
	if err != nil {
		return "", "", err
	}
	user, pass, ok := strings.Cut(string(raw), ":")
	if !ok {
		return "", "", fmt.Errorf("no %q in auth", ":")
	}
	return user, strings.Trim(pass, "\x00"), nil
}

// parseKey splits a docker config key ("https://index.docker.io/v1/",
// "registry.example.com:5000/team", "*.example.com") into a canonical
// host and a repository path prefix.
func parseKey(key string) (host, p string) {
	key = strings.TrimSpace(key)
	for _, scheme := range []string{"https://", "http://"} {
		key = strings.TrimPrefix(key, scheme)
	}
	host, p, _ = strings.Cut(key, "/")
	host = canonicalHost(host)
	p = strings.Trim(p, "/")
	if host == dockerHub && (p == "v1" || p == "v2") {
		p = "" // Docker Hub's API version, not a repository
	}
	return host, p
}

// lookup returns the credentials for an image in ref, most specific
// first (longest path prefix, then exact hosts before globs); none means
// pull anonymously.
func (k keyring) lookup(ref reference) []cri.AuthConfig {
	var matches []credential
	for _, c := range k {
		if hostMatches(c.host, ref.Domain) && pathMatches(c.path, ref.Path) {
			matches = append(matches, c)
		}
	}
	slices.SortStableFunc(matches, func(a, b credential) int {
		if d := len(b.path) - len(a.path); d != 0 {
			return d
		}
		return strings.Count(a.host, "*") - strings.Count(b.host, "*")
	})
	var out []cri.AuthConfig
	for _, m := range matches {
		if !slices.Contains(out, m.auth) {
			out = append(out, m.auth)
		}
	}
	return out
}

// hostMatches matches an image's registry host against a key's host: the
// same number of dot-separated labels, each matching (a key label may be
// a glob such as "*"), and the same port.
func hostMatches(pattern, host string) bool {
	pHost, pPort := splitPort(strings.ToLower(pattern))
	hHost, hPort := splitPort(strings.ToLower(host))
	if pPort != hPort {
		return false
	}
	pl, hl := strings.Split(pHost, "."), strings.Split(hHost, ".")
	if len(pl) != len(hl) {
		return false
	}
	for i := range pl {
		if ok, err := path.Match(pl[i], hl[i]); err != nil || !ok {
			return false
		}
	}
	return true
}

func splitPort(h string) (host, port string) {
	if i := strings.LastIndexByte(h, ':'); i >= 0 && !strings.Contains(h[i:], "]") {
		return h[:i], h[i+1:]
	}
	return h, ""
}

// pathMatches reports whether prefix is empty or a whole-component prefix
// of the repository path p.
func pathMatches(prefix, p string) bool {
	return prefix == "" || p == prefix || strings.HasPrefix(p, prefix+"/")
}
