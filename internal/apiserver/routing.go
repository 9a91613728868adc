package apiserver

import (
	"net/http"
	"strings"
)

// requestInfo is what the path and method of a request say about it.
type requestInfo struct {
	// isResource is true for /api/v1/... and /apis/<g>/<v>/... paths
	// below the group/version (not discovery).
	isResource bool
	// verb is the Kubernetes verb (get, list, watch, create, update, patch,
	// delete, deletecollection) for resource requests, otherwise the
	// lower-case HTTP method.
	verb string

	group, version string
	namespace      string
	resource       string
	name           string
	subresource    string
	// legacyWatch is true for /api/v1/watch/... paths.
	legacyWatch bool
	// extra holds path segments beyond the subresource (always a 404).
	extra bool
}

// namespaceSubresources are the subresources of namespaces themselves, as
// opposed to namespaced resources under /namespaces/<ns>/.
var namespaceSubresources = map[string]bool{"status": true, "finalize": true}

// parseRequestInfo classifies a request. It never fails: paths that are not
// resource paths come back with isResource false.
func parseRequestInfo(r *http.Request) *requestInfo {
	ri := &requestInfo{verb: strings.ToLower(r.Method)}
	parts := splitPath(r.URL.Path)
	switch {
	case len(parts) >= 2 && parts[0] == "api":
		ri.version = parts[1]
		parts = parts[2:]
	case len(parts) >= 3 && parts[0] == "apis":
		ri.group, ri.version = parts[1], parts[2]
		parts = parts[3:]
	default:
		return ri
	}
	if len(parts) == 0 {
		return ri
	}
	ri.isResource = true
	if parts[0] == "watch" {
		ri.legacyWatch = true
		parts = parts[1:]
	}
	if len(parts) >= 1 && parts[0] == "namespaces" {
		if len(parts) > 1 {
			ri.namespace = parts[1]
			if len(parts) > 2 && !namespaceSubresources[parts[2]] {
				parts = parts[2:]
			} else {
				// The namespace object itself.
				ri.namespace = ""
			}
		}
	}
	if len(parts) > 0 {
		ri.resource = parts[0]
	}
	if len(parts) > 1 {
		ri.name = parts[1]
	}
	if len(parts) > 2 {
		ri.subresource = parts[2]
	}
	if len(parts) > 3 && !(ri.subresource == "proxy" && (ri.resource == "nodes" && ri.namespace == "" ||
		(ri.resource == "pods" || ri.resource == "services") && ri.namespace != "")) {
		// nodes|pods|services/<name>/proxy/<path...> carries the proxied
		// path.
		ri.extra = true
	}

	collection := ri.name == ""
	switch r.Method {
	case http.MethodGet, http.MethodHead:
		switch {
		case ri.legacyWatch || isWatchQuery(r):
			ri.verb = "watch"
		case collection:
			ri.verb = "list"
		default:
			ri.verb = "get"
		}
	case http.MethodPost:
		ri.verb = "create"
	case http.MethodPut:
		ri.verb = "update"
	case http.MethodPatch:
		ri.verb = "patch"
	case http.MethodDelete:
		if collection {
			ri.verb = "deletecollection"
		} else {
			ri.verb = "delete"
		}
	}
	return ri
}

func isWatchQuery(r *http.Request) bool {
	v := r.URL.Query().Get("watch")
	return v == "true" || v == "1"
}

func splitPath(p string) []string {
	p = strings.Trim(p, "/")
	if p == "" {
		return nil
	}
	return strings.Split(p, "/")
}
