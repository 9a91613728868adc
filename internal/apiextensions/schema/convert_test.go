package schema

import (
	"encoding/json"
	"testing"

	"github.com/google/go-cmp/cmp"
	"k8s.io/kube-openapi/pkg/validation/spec"
)

// TestToSpecFaithful checks that ToSpec loses nothing: the converted schema
// serializes to the same JSON as the CRD's schema.
func TestToSpecFaithful(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name   string
		schema string
	}{{
		name: "everything a CRD schema may hold",
		schema: `
type: object
description: A widget.
title: Widget
externalDocs: {description: docs, url: "https://example.com"}
required: [spec]
x-kubernetes-validations:
- rule: self.spec.replicas >= 0
  message: negative
  messageExpression: "'no'"
  reason: FieldValueInvalid
  fieldPath: .spec.replicas
  optionalOldSelf: true
properties:
  spec:
    type: object
    minProperties: 1
    maxProperties: 9
    properties:
      replicas: {type: integer, format: int32, minimum: 0, maximum: 10, exclusiveMaximum: true, multipleOf: 1, default: 1}
      ratio: {type: number, minimum: 0.5, exclusiveMinimum: true, example: 0.75}
      image: {type: string, minLength: 1, maxLength: 64, pattern: "^[a-z]", enum: [a, b], nullable: true}
      port:
        x-kubernetes-int-or-string: true
        anyOf: [{type: integer}, {type: string}]
      ports:
        type: array
        minItems: 0
        maxItems: 5
        x-kubernetes-list-type: map
        x-kubernetes-list-map-keys: [port, protocol]
        items:
          type: object
          required: [port, protocol]
          properties:
            port: {type: integer}
            protocol: {type: string, default: TCP}
      labels:
        type: object
        x-kubernetes-map-type: granular
        additionalProperties: {type: string}
      free:
        type: object
        additionalProperties: true
      closed:
        type: object
        additionalProperties: false
      extra:
        type: object
        x-kubernetes-preserve-unknown-fields: true
      template:
        type: object
        x-kubernetes-embedded-resource: true
        x-kubernetes-preserve-unknown-fields: true
    oneOf:
    - required: [replicas]
    - required: [ratio]
    not:
      required: [image, port]
    allOf:
    - properties:
        replicas: {maximum: 8}
`,
	}, {
		name:   "unsupported fields are kept too",
		schema: `{type: object, id: x, $schema: "http://json-schema.org/draft-04/schema", definitions: {a: {type: string}}, patternProperties: {"^a": {type: string}}, dependencies: {a: [b], c: {required: [d]}}, additionalItems: false, items: [{type: string}]}`,
	}}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			in := schemaOf(t, tc.schema)
			out, err := ToSpec(in)
			if err != nil {
				t.Fatalf("ToSpec: %v", err)
			}
			if diff := cmp.Diff(jsonValue(t, in), jsonValue(t, out)); diff != "" {
				t.Errorf("ToSpec JSON (-CRD schema +spec):\n%s", diff)
			}
		})
	}
}

func jsonValue(t *testing.T, v any) any {
	t.Helper()
	b, err := json.Marshal(v)
	if err != nil {
		t.Fatalf("marshal: %v", err)
	}
	var out any
	if err := json.Unmarshal(b, &out); err != nil {
		t.Fatalf("unmarshal: %v", err)
	}
	return out
}

func TestToSpecExtensionsReadable(t *testing.T) {
	t.Parallel()
	out, err := ToSpec(schemaOf(t, `{type: array, x-kubernetes-list-type: map, x-kubernetes-list-map-keys: [a, b], items: {type: object, properties: {a: {type: string}, b: {type: string}}}}`))
	if err != nil {
		t.Fatalf("ToSpec: %v", err)
	}
	if lt, _ := out.Extensions.GetString("x-kubernetes-list-type"); lt != "map" {
		t.Errorf("list type = %q, want map", lt)
	}
	if keys, _ := out.Extensions.GetStringSlice("x-kubernetes-list-map-keys"); !cmp.Equal(keys, []string{"a", "b"}) {
		t.Errorf("list map keys = %q, want [a b]", keys)
	}
}

func TestToSpecNil(t *testing.T) {
	t.Parallel()
	if out, err := ToSpec(nil); out != nil || err != nil {
		t.Errorf("ToSpec(nil) = %v, %v; want nil, nil", out, err)
	}
}

func TestValidationSpec(t *testing.T) {
	t.Parallel()
	out, err := toValidationSpec(schemaOf(t, `
type: object
properties:
  port: {x-kubernetes-int-or-string: true}
  email: {type: string, format: email}
  when: {type: string, format: date-time}
  odd: {type: string, format: not-a-format}
  num: {type: integer, format: int32}
  f: {type: number, format: int32}
`))
	if err != nil {
		t.Fatalf("toValidationSpec: %v", err)
	}
	got := map[string]string{}
	for k, p := range out.Properties {
		got[k] = p.Format
	}
	want := map[string]string{"port": "", "email": "email", "when": "date-time", "odd": "", "num": "int32", "f": ""}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("formats (-want +got):\n%s", diff)
	}
	if typ := out.Properties["port"].Type; !cmp.Equal(typ, spec.StringOrArray{"integer", "string"}) {
		t.Errorf("int-or-string type = %v, want [integer string]", typ)
	}
}

func TestUnrecognizedFormats(t *testing.T) {
	t.Parallel()
	got := UnrecognizedFormats(schemaOf(t, `{type: object, properties: {a: {type: string, format: email}, b: {type: string, format: bogus}, c: {type: integer, format: uint8}, d: {type: string, format: k8s-short-name}}}`))
	if diff := cmp.Diff([]string{"bogus", "uint8"}, got); diff != "" {
		t.Errorf("UnrecognizedFormats (-want +got):\n%s", diff)
	}
}
