// Package apiextensions serves custom resources: for every
// CustomResourceDefinition whose names are accepted it builds a store per
// served version (objects are *unstructured.Unstructured, stored once in
// etcd under /registry/<group>/<plural>/ with the storage version's
// apiVersion; conversion is None) and publishes them to the API server
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
// Not done: conversion webhooks (every version is served as the stored
// objects with their apiVersion changed).
package apiextensions
