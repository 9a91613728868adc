package audit

import "strings"

// quietPaths are the non-resource paths logged at None.
var quietPaths = []string{"/healthz", "/livez", "/readyz", "/metrics"}

// metadataOnly are the resources (group/resource or
// group/resource/subresource) whose bodies carry credentials: they are
// never logged above Metadata.
var metadataOnly = map[string]bool{
	"/secrets":                           true,
	"/configmaps":                        true,
	"/serviceaccounts/token":             true,
	"authentication.k8s.io/tokenreviews": true,
	"certificates.k8s.io/certificatesigningrequests": true,
}

// LevelFor returns the level of one request: path is its URL path, ref
// its object (nil for non-resource requests). See the package doc for
// the rules. A nil Logger answers None. Safe for concurrent use.
func (l *Logger) LevelFor(path string, ref *ObjectReference) Level {
	if l == nil || l.level == LevelNone {
		return LevelNone
	}
	if ref == nil {
		for _, p := range quietPaths {
			if path == p || strings.HasPrefix(path, p+"/") {
				return LevelNone
			}
		}
		return l.level
	}
	if l.level.AtLeast(LevelRequest) {
		key := ref.APIGroup + "/" + ref.Resource
		if metadataOnly[key] || (ref.Subresource != "" && metadataOnly[key+"/"+ref.Subresource]) {
			return LevelMetadata
		}
	}
	return l.level
}
