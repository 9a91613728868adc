// Package builtin defines the built-in resources skiff serves: for each, its
// place in the API (group, version, kind, scope, short names, subresources)
// and its strategy (upstream defaults, validation, field selectors and the
// table columns kubectl prints).
//
// It reads nothing and writes nothing: it only describes. The generic store
// in package registry applies these descriptions; the API server, discovery
// and OpenAPI are generated from Resources.
//
// Adding a resource is one registry.Define call and one Resource value in
// the group's file.
package builtin
