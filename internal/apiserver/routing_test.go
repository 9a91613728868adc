package apiserver

import (
	"net/http/httptest"
	"testing"

	"github.com/google/go-cmp/cmp"
)

func TestParseRequestInfo(t *testing.T) {
	type info struct {
		IsResource                                bool
		Verb, Group, Version, Namespace, Resource string
		Name, Subresource                         string
		LegacyWatch, Extra                        bool
	}
	tests := []struct {
		name, method, target string
		want                 info
	}{
		{"core list", "GET", "/api/v1/namespaces/ns/pods", info{true, "list", "", "v1", "ns", "pods", "", "", false, false}},
		{"all namespaces", "GET", "/api/v1/pods", info{true, "list", "", "v1", "", "pods", "", "", false, false}},
		{"watch param", "GET", "/api/v1/pods?watch=true", info{true, "watch", "", "v1", "", "pods", "", "", false, false}},
		{"legacy watch", "GET", "/api/v1/watch/namespaces/ns/pods/p", info{true, "watch", "", "v1", "ns", "pods", "p", "", true, false}},
		{"get", "GET", "/apis/apps/v1/namespaces/ns/deployments/d", info{true, "get", "apps", "v1", "ns", "deployments", "d", "", false, false}},
		{"scale", "PUT", "/apis/apps/v1/namespaces/ns/deployments/d/scale", info{true, "update", "apps", "v1", "ns", "deployments", "d", "scale", false, false}},
		{"create", "POST", "/api/v1/namespaces/ns/configmaps", info{true, "create", "", "v1", "ns", "configmaps", "", "", false, false}},
		{"patch", "PATCH", "/api/v1/nodes/n1", info{true, "patch", "", "v1", "", "nodes", "n1", "", false, false}},
		{"delete", "DELETE", "/api/v1/namespaces/ns/pods/p", info{true, "delete", "", "v1", "ns", "pods", "p", "", false, false}},
		{"deletecollection", "DELETE", "/api/v1/namespaces/ns/pods", info{true, "deletecollection", "", "v1", "ns", "pods", "", "", false, false}},
		{"namespace object", "GET", "/api/v1/namespaces/ns", info{true, "get", "", "v1", "", "namespaces", "ns", "", false, false}},
		{"namespace list", "GET", "/api/v1/namespaces", info{true, "list", "", "v1", "", "namespaces", "", "", false, false}},
		{"namespace status", "PUT", "/api/v1/namespaces/ns/status", info{true, "update", "", "v1", "", "namespaces", "ns", "status", false, false}},
		{"namespace finalize", "PUT", "/api/v1/namespaces/ns/finalize", info{true, "update", "", "v1", "", "namespaces", "ns", "finalize", false, false}},
		{"binding", "POST", "/api/v1/namespaces/ns/pods/p/binding", info{true, "create", "", "v1", "ns", "pods", "p", "binding", false, false}},
		{"too deep", "GET", "/api/v1/namespaces/ns/pods/p/log/extra", info{true, "get", "", "v1", "ns", "pods", "p", "log", false, true}},
		{"node proxy path", "GET", "/api/v1/nodes/n1/proxy/stats/summary", info{true, "get", "", "v1", "", "nodes", "n1", "proxy", false, false}},
		{"pod proxy path", "GET", "/api/v1/namespaces/ns/pods/p/proxy/x", info{true, "get", "", "v1", "ns", "pods", "p", "proxy", false, false}},
		{"service proxy path", "POST", "/api/v1/namespaces/ns/services/s:http/proxy/a/b", info{true, "create", "", "v1", "ns", "services", "s:http", "proxy", false, false}},
		{"config map proxy is no subresource", "GET", "/api/v1/namespaces/ns/configmaps/c/proxy/x", info{true, "get", "", "v1", "ns", "configmaps", "c", "proxy", false, true}},
		{"discovery api", "GET", "/api/v1", info{false, "get", "", "v1", "", "", "", "", false, false}},
		{"discovery group", "GET", "/apis/apps", info{Verb: "get"}},
		{"discovery group version", "GET", "/apis/apps/v1", info{false, "get", "apps", "v1", "", "", "", "", false, false}},
		{"healthz", "GET", "/healthz", info{Verb: "get"}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			ri := parseRequestInfo(httptest.NewRequest(tc.method, tc.target, nil))
			got := info{ri.isResource, ri.verb, ri.group, ri.version, ri.namespace, ri.resource, ri.name, ri.subresource, ri.legacyWatch, ri.extra}
			if diff := cmp.Diff(tc.want, got); diff != "" {
				t.Errorf("parseRequestInfo(%s %s) (-want +got):\n%s", tc.method, tc.target, diff)
			}
		})
	}
}

func TestParseAccept(t *testing.T) {
	tests := []struct {
		name   string
		header string
		want   []string // type/sub;as
	}{
		{"kubectl get", tableAccept, []string{"application/json;Table", "application/json;Table", "application/json;"}},
		{"q ordering", "application/yaml;q=0.5, application/json", []string{"application/json;", "application/yaml;"}},
		{"q zero dropped", "application/json;q=0, */*", []string{"*/*;"}},
		{"garbage skipped", ";;;, application/json", []string{"application/json;"}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			var got []string
			for _, c := range parseAccept(tc.header) {
				got = append(got, c.typ+"/"+c.sub+";"+c.params["as"])
			}
			if diff := cmp.Diff(tc.want, got); diff != "" {
				t.Errorf("parseAccept(%q) (-want +got):\n%s", tc.header, diff)
			}
		})
	}
}
