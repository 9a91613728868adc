// Package apiextensions serves custom resources: for every
// CustomResourceDefinition whose names are accepted it builds a store per
// served version (objects are *unstructured.Unstructured, stored once in
// etcd under /registry/<group>/<plural>/ with the storage version's
// apiVersion) and publishes them to the API server
// (apiserver.Server.SetCustomStores), discovery and OpenAPI. It is part of
// the API server, as upstream's apiextensions server is.
//
// It reads the customresourcedefinitions store (a watch of the API
// server's own storage, not a client) and writes only etcd, through the
// stores it builds. The CRDs' status (accepted names, Established) and
// the deletion of a CRD's objects are the crdcontroller's; validation,
// pruning and defaulting of objects are the schema package's.
//
// Each version's strategy validates objects against the version's schema
// (422 naming each field), prunes unknown fields (reported by the API
// server per fieldValidation), applies the schema's defaults, gives
// selectors the version's selectable fields, and prints its
// additionalPrinterColumns (or Age) in tables. A version with the status
// subresource keeps status out of main writes; one with scale serves
// autoscaling/v1 Scale from its replica paths.
//
// CEL rules (x-kubernetes-validations) are evaluated on every write by
// package cel; rules calling functions it does not provide are logged
// and not enforced.
//
// Conversion between versions follows spec.conversion: None changes only
// apiVersion; Webhook sends a ConversionReview (v1, or v1beta1) through
// Config.Conversion (the admission webhooks' client: url or a service's
// ready endpoint) for every object read or written in a version other
// than its own, lists in one call, and checks the answer as upstream
// (uid, count, apiVersion, metadata other than labels and annotations
// unchanged); a failure is a 500 (an Error event ending a watch).
package apiextensions
