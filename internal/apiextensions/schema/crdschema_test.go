package schema

import (
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
	"k8s.io/apimachinery/pkg/util/validation/field"
)

// The expected messages are upstream's (many from apiextensions-apiserver's
// integration tests), with P standing for the schema's path.
func TestValidateCRDSchema(t *testing.T) {
	t.Parallel()
	const P = "spec.versions[0].schema.openAPIV3Schema"
	tests := []struct {
		name   string
		schema string
		want   []string
	}{{
		name: "valid",
		schema: `
type: object
properties:
  spec:
    type: object
    required: [replicas]
    properties:
      replicas: {type: integer, minimum: 0, default: 1}
      image: {type: string, format: uri, pattern: "^[a-z]"}
      ports:
        type: array
        x-kubernetes-list-type: map
        x-kubernetes-list-map-keys: [port]
        items:
          type: object
          required: [port]
          properties:
            port: {type: integer}
            name: {type: string}
      tags:
        type: array
        x-kubernetes-list-type: set
        items: {type: string}
      labels:
        type: object
        additionalProperties: {type: string}
      extra:
        type: object
        x-kubernetes-preserve-unknown-fields: true
      template:
        type: object
        x-kubernetes-embedded-resource: true
        x-kubernetes-preserve-unknown-fields: true
      port:
        x-kubernetes-int-or-string: true
        anyOf: [{type: integer}, {type: string}]
      quantity:
        x-kubernetes-int-or-string: true
        allOf:
        - anyOf: [{type: integer}, {type: string}]
        - pattern: "^[0-9]+$"
    x-kubernetes-validations:
    - rule: self.replicas >= 0
      message: replicas must not be negative
  metadata:
    type: object
    properties:
      name: {type: string, maxLength: 10}
  status:
    type: object
    x-kubernetes-map-type: atomic
    nullable: true
`,
	}, {
		name:   "no type at the root",
		schema: `{}`,
		want:   []string{P + ".type: Required value: must not be empty at the root"},
	}, {
		name:   "non-object root",
		schema: `type: integer`,
		want:   []string{P + `.type: Invalid value: "integer": must be object at the root`},
	}, {
		name: "missing types",
		schema: `
type: object
properties:
  foo:
    properties:
      a: {}
  bar:
    items:
      additionalProperties:
        properties:
          a: {}
        items: {}
`,
		want: []string{
			P + ".properties[bar].items.additionalProperties.items.type: Required value: must not be empty for specified array items",
			P + ".properties[bar].items.additionalProperties.properties[a].type: Required value: must not be empty for specified object fields",
			P + ".properties[bar].items.additionalProperties.type: Required value: must not be empty for specified object fields",
			P + ".properties[bar].items.type: Required value: must not be empty for specified array items",
			P + ".properties[bar].type: Required value: must not be empty for specified object fields",
			P + ".properties[foo].properties[a].type: Required value: must not be empty for specified object fields",
			P + ".properties[foo].type: Required value: must not be empty for specified object fields",
		},
	}, {
		name: "forbidden in nested value validation",
		schema: `
type: object
properties:
  foo: {type: string}
not:
  type: string
  additionalProperties: true
  title: hello
  description: world
  nullable: true
allOf:
- properties:
    foo:
      type: string
      additionalProperties: true
      title: hello
      description: world
      nullable: true
anyOf:
- items:
    type: string
    additionalProperties: true
    title: hello
    description: world
    nullable: true
oneOf:
- properties:
    foo:
      type: string
      additionalProperties: true
      title: hello
      description: world
      nullable: true
`,
		want: []string{
			P + ".anyOf[0].items.type: Forbidden: must be empty to be structural",
			P + ".anyOf[0].items.additionalProperties: Forbidden: must be undefined to be structural",
			P + ".anyOf[0].items.title: Forbidden: must be empty to be structural",
			P + ".anyOf[0].items.description: Forbidden: must be empty to be structural",
			P + ".anyOf[0].items.nullable: Forbidden: must be false to be structural",
			P + ".allOf[0].properties[foo].type: Forbidden: must be empty to be structural",
			P + ".allOf[0].properties[foo].additionalProperties: Forbidden: must be undefined to be structural",
			P + ".allOf[0].properties[foo].title: Forbidden: must be empty to be structural",
			P + ".allOf[0].properties[foo].description: Forbidden: must be empty to be structural",
			P + ".allOf[0].properties[foo].nullable: Forbidden: must be false to be structural",
			P + ".oneOf[0].properties[foo].type: Forbidden: must be empty to be structural",
			P + ".oneOf[0].properties[foo].additionalProperties: Forbidden: must be undefined to be structural",
			P + ".oneOf[0].properties[foo].title: Forbidden: must be empty to be structural",
			P + ".oneOf[0].properties[foo].description: Forbidden: must be empty to be structural",
			P + ".oneOf[0].properties[foo].nullable: Forbidden: must be false to be structural",
			P + ".not.type: Forbidden: must be empty to be structural",
			P + ".not.additionalProperties: Forbidden: must be undefined to be structural",
			P + ".not.title: Forbidden: must be empty to be structural",
			P + ".not.description: Forbidden: must be empty to be structural",
			P + ".not.nullable: Forbidden: must be false to be structural",
			P + ".items: Required value: because it is defined in " + P + ".anyOf[0].items",
		},
	}, {
		name: "extensions and defaults under junctors",
		schema: `
type: object
properties:
  foo: {type: string}
allOf:
- properties:
    foo:
      default: x
      x-kubernetes-preserve-unknown-fields: true
      x-kubernetes-list-type: atomic
      x-kubernetes-validations: [{rule: "true"}]
`,
		want: []string{
			P + ".allOf[0].properties[foo].default: Forbidden: must be undefined to be structural",
			P + ".allOf[0].properties[foo].type: Required value: must be array if x-kubernetes-list-type is specified",
			P + ".allOf[0].properties[foo].x-kubernetes-list-type: Forbidden: must be undefined to be structural",
			P + ".allOf[0].properties[foo].x-kubernetes-preserve-unknown-fields: Forbidden: must be false to be structural",
			P + ".allOf[0].properties[foo].x-kubernetes-validations: Forbidden: must be empty to be structural",
		},
	}, {
		name: "invalid regex",
		schema: `
type: object
properties:
  foo: {type: string, pattern: "+"}
`,
		want: []string{P + ".properties[foo].pattern: Invalid value: \"+\": must be a valid regular expression, but isn't: error parsing regexp: missing argument to repetition operator: `+`"},
	}, {
		name: "additionalProperties at the root",
		schema: `
type: object
additionalProperties: false
`,
		want: []string{P + ".additionalProperties: Forbidden: must not be used at the root"},
	}, {
		name: "additionalProperties and properties",
		schema: `
type: object
properties:
  foo:
    type: object
    properties:
      bar: {type: object}
    additionalProperties: false
`,
		want: []string{P + ".properties[foo].additionalProperties: Forbidden: additionalProperties and properties are mutual exclusive"},
	}, {
		name: "additionalProperties false without properties is accepted",
		schema: `
type: object
properties:
  foo:
    type: object
    additionalProperties: false
`,
	}, {
		name: "unsupported OpenAPI",
		schema: `
type: object
properties:
  a: {$ref: "#/definitions/b"}
  c: {type: array, items: {type: string}, uniqueItems: true}
  d: {type: "null"}
  e: {type: object, id: x}
`,
		want: []string{
			P + ".properties[a].$ref: Forbidden: $ref is not supported",
			P + `.properties[d].type: Forbidden: type cannot be set to null, use nullable as an alternative`,
			P + `.properties[d].type: Unsupported value: "null": supported values: "array", "boolean", "integer", "number", "object", "string"`,
			P + ".properties[c].uniqueItems: Forbidden: uniqueItems cannot be set to true since the runtime complexity becomes quadratic",
			P + ".properties[e].id: Forbidden: id is not supported",
		},
	}, {
		name: "unsupported $schema is reported when nothing else is wrong",
		schema: `
type: object
$schema: http://json-schema.org/draft-04/schema
`,
		want: []string{P + `: Invalid value: "": OpenAPIV3Schema 'schema' is not supported`},
	}, {
		name: "metadata with non-properties",
		schema: `
type: object
properties:
  metadata:
    minimum: 42.0
`,
		want: []string{
			P + ".properties[metadata]: Forbidden: must not specify anything other than name and generateName, but metadata is implicitly specified",
			P + ".properties[metadata].type: Required value: must not be empty for specified object fields",
			P + `.properties[metadata].type: Invalid value: "": must be object`,
		},
	}, {
		name: "metadata with other properties",
		schema: `
type: object
properties:
  metadata:
    properties:
      name:
        pattern: "^[a-z]+$"
      labels:
        type: object
        maxLength: 4
`,
		want: []string{
			P + ".properties[metadata]: Forbidden: must not specify anything other than name and generateName, but metadata is implicitly specified",
			P + ".properties[metadata].type: Required value: must not be empty for specified object fields",
			P + `.properties[metadata].type: Invalid value: "": must be object`,
			P + ".properties[metadata].properties[name].type: Required value: must not be empty for specified object fields",
		},
	}, {
		name: "metadata with name and generateName",
		schema: `
type: object
properties:
  metadata:
    type: object
    properties:
      name: {type: string, pattern: "^[a-z]+$"}
      generateName: {type: string, pattern: "^[a-z]+$"}
`,
	}, {
		name: "metadata under junctors",
		schema: `
type: object
properties:
  metadata:
    type: object
    properties:
      name: {type: string}
allOf:
- properties:
    metadata: {}
anyOf:
- properties:
    metadata: {}
oneOf:
- properties:
    metadata: {}
not:
  properties:
    metadata: {}
`,
		want: []string{
			P + ".anyOf[0].properties[metadata]: Forbidden: must not be specified in a nested context",
			P + ".allOf[0].properties[metadata]: Forbidden: must not be specified in a nested context",
			P + ".oneOf[0].properties[metadata]: Forbidden: must not be specified in a nested context",
			P + ".not.properties[metadata]: Forbidden: must not be specified in a nested context",
		},
	}, {
		name: "structural incomplete",
		schema: `
type: object
properties:
  b:
    type: object
    properties:
      b:
        type: array
  c:
    type: array
    items:
      type: object
  d:
    type: array
not:
  properties:
    a: {}
    b:
      not:
        properties:
          a: {}
          b:
            items: {}
    c:
      items:
        not:
          items:
            properties:
              a: {}
    d:
      items: {}
allOf:
- properties:
    e: {}
anyOf:
- properties:
    f: {}
oneOf:
- properties:
    g: {}
`,
		want: []string{
			P + ".properties[d].items: Required value: because it is defined in " + P + ".not.properties[d].items",
			P + ".properties[a]: Required value: because it is defined in " + P + ".not.properties[a]",
			P + ".properties[b].properties[a]: Required value: because it is defined in " + P + ".not.properties[b].not.properties[a]",
			P + ".properties[b].properties[b].items: Required value: because it is defined in " + P + ".not.properties[b].not.properties[b].items",
			P + ".properties[c].items.items: Required value: because it is defined in " + P + ".not.properties[c].items.not.items",
			P + ".properties[e]: Required value: because it is defined in " + P + ".allOf[0].properties[e]",
			P + ".properties[f]: Required value: because it is defined in " + P + ".anyOf[0].properties[f]",
			P + ".properties[g]: Required value: because it is defined in " + P + ".oneOf[0].properties[g]",
			P + ".properties[b].properties[b].items: Required value: must be specified",
			P + ".properties[d].items: Required value: must be specified",
		},
	}, {
		name: "missing items",
		schema: `
type: object
properties:
  slice: {type: array}
`,
		want: []string{P + ".properties[slice].items: Required value: must be specified"},
	}, {
		name: "int-or-string rules",
		schema: `
type: object
properties:
  a:
    x-kubernetes-int-or-string: true
    x-kubernetes-preserve-unknown-fields: true
  b:
    x-kubernetes-int-or-string: true
    anyOf: [{type: integer}, {type: boolean}]
  c:
    x-kubernetes-int-or-string: true
`,
		want: []string{
			P + ".properties[a].x-kubernetes-preserve-unknown-fields: Invalid value: true: must be false if x-kubernetes-int-or-string is true",
			P + ".properties[b].anyOf[0].type: Forbidden: must be empty to be structural",
			P + ".properties[b].anyOf[1].type: Forbidden: must be empty to be structural",
		},
	}, {
		name: "embedded resources",
		schema: `
type: object
properties:
  a:
    type: string
    x-kubernetes-embedded-resource: true
    x-kubernetes-preserve-unknown-fields: true
  b:
    type: object
    x-kubernetes-embedded-resource: true
  c:
    type: object
    x-kubernetes-embedded-resource: true
    properties:
      kind: {type: integer}
      metadata: {type: string}
  metadata:
    type: object
    properties:
      name:
        type: object
        x-kubernetes-embedded-resource: true
        x-kubernetes-preserve-unknown-fields: true
`,
		want: []string{
			P + `.properties[a].type: Invalid value: "string": must be object if x-kubernetes-embedded-resource is true`,
			P + ".properties[b].properties: Required value: must not be empty if x-kubernetes-embedded-resource is true without x-kubernetes-preserve-unknown-fields",
			P + `.properties[c].properties[kind].type: Invalid value: "integer": must be string`,
			P + `.properties[c].properties[metadata].type: Invalid value: "string": must be object`,
			P + ".properties[metadata].properties[name].x-kubernetes-embedded-resource: Forbidden: must not be used inside of resource meta",
		},
	}, {
		name: "list and map types",
		schema: `
type: object
properties:
  a:
    type: object
    x-kubernetes-list-type: set
  b:
    type: array
    x-kubernetes-list-type: bag
    items: {type: string}
  c:
    type: array
    x-kubernetes-list-type: map
    items: {type: string}
  d:
    type: array
    x-kubernetes-list-type: map
    x-kubernetes-list-map-keys: [name, name, missing]
    items:
      type: object
      properties:
        name: {type: string, nullable: true}
  e:
    type: array
    x-kubernetes-list-map-keys: [name]
    items:
      type: object
      required: [name]
      properties:
        name: {type: string}
  f:
    type: array
    x-kubernetes-list-type: set
    items:
      type: object
      nullable: true
      properties:
        name: {type: string}
  g:
    type: array
    x-kubernetes-list-type: map
    x-kubernetes-list-map-keys: [obj]
    items:
      type: object
      required: [obj]
      properties:
        obj: {type: object}
  h:
    type: string
    x-kubernetes-map-type: fancy
`,
		want: []string{
			P + `.properties[a].type: Invalid value: "object": must be array if x-kubernetes-list-type is specified`,
			P + `.properties[b].x-kubernetes-list-type: Unsupported value: "bag": supported values: "atomic", "set", "map"`,
			P + `.properties[c].items.type: Invalid value: "string": must be object if parent array's x-kubernetes-list-type is map`,
			P + ".properties[c].x-kubernetes-list-map-keys: Required value: must not be empty if x-kubernetes-list-type is map",
			P + ".properties[d].items.properties[name].default: Required value: this property is in x-kubernetes-list-map-keys, so it must have a default or be a required property",
			P + ".properties[d].items.properties[name].default: Required value: this property is in x-kubernetes-list-map-keys, so it must have a default or be a required property",
			P + ".properties[d].items.properties[name].nullable: Forbidden: this property is in x-kubernetes-list-map-keys, so it cannot be nullable",
			P + ".properties[d].items.properties[name].nullable: Forbidden: this property is in x-kubernetes-list-map-keys, so it cannot be nullable",
			P + `.properties[d].x-kubernetes-list-map-keys: Invalid value: ["name","name","missing"]: entries must all be names of item properties`,
			P + `.properties[d].x-kubernetes-list-map-keys: Invalid value: ["name","name","missing"]: must not contain duplicate entries`,
			P + ".properties[e].x-kubernetes-list-type: Required value: must be map if x-kubernetes-list-map-keys is non-empty",
			P + ".properties[f].items.nullable: Forbidden: cannot be nullable when x-kubernetes-list-type is set",
			P + ".properties[f].items.x-kubernetes-map-type: Invalid value: null: must be atomic as item of a list with x-kubernetes-list-type=set",
			P + `.properties[g].items.properties[obj].type: Invalid value: "object": must be a scalar type if parent array's x-kubernetes-list-type is map`,
			P + `.properties[h].type: Invalid value: "string": must be object if x-kubernetes-map-type is specified`,
			P + `.properties[h].x-kubernetes-map-type: Unsupported value: "fancy": supported values: "atomic", "granular"`,
		},
	}, {
		name: "x-kubernetes-validations",
		schema: `
type: object
x-kubernetes-validations:
- rule: " "
- rule: "self.a\n== 1"
- rule: self.a == 1
  message: "two\nlines"
- rule: self.a == 1
  reason: Bad
- rule: self.a == 1
  fieldPath: .b
- rule: self.a == 1
  fieldPath: .a
  messageExpression: "  "
properties:
  a: {type: integer}
`,
		want: []string{
			P + ".x-kubernetes-validations[0].rule: Required value: rule is not specified",
			P + ".x-kubernetes-validations[1].message: Required value: message must be specified if rule contains line breaks",
			P + `.x-kubernetes-validations[2].message: Invalid value: "two\nlines": must not contain line breaks`,
			P + `.x-kubernetes-validations[3].reason: Unsupported value: "Bad": supported values: "FieldValueDuplicate", "FieldValueForbidden", "FieldValueInvalid", "FieldValueRequired"`,
			P + `.x-kubernetes-validations[4].fieldPath: Invalid value: ".b": must be a valid path`,
			P + ".x-kubernetes-validations[5].messageExpression: Required value: messageExpression must be non-empty if specified",
		},
	}, {
		name: "preserve-unknown-fields false",
		schema: `
type: object
x-kubernetes-preserve-unknown-fields: false
`,
		want: []string{P + ".x-kubernetes-preserve-unknown-fields: Invalid value: false: must be true or undefined"},
	}, {
		name: "defaults",
		schema: `
type: object
properties:
  metadata:
    type: object
    properties:
      name: {type: string, default: foo}
  spec:
    type: object
    properties:
      replicas: {type: integer, default: three}
      color: {type: string, enum: [red, blue], default: green}
      size: {type: string, maxLength: 2, default: large}
      obj:
        type: object
        properties:
          a: {type: string}
        default: {a: x, b: z}
      nested:
        type: object
        properties:
          a: {type: integer, minimum: 3}
        default: {a: 1}
      list:
        type: array
        items:
          type: object
          properties:
            a: {type: string, default: ok}
        default: [{a: x}]
`,
		want: []string{
			P + `.properties[metadata].properties[name].default: Forbidden: must not be set in top-level metadata`,
			P + `.properties[spec].properties[color].default: Unsupported value: "green": supported values: "red", "blue"`,
			P + `.properties[spec].properties[nested].default.a: Invalid value: 1: a in body should be greater than or equal to 3`,
			P + `.properties[spec].properties[obj].default: Invalid value: {"a":"x","b":"z"}: must not have unknown fields`,
			P + `.properties[spec].properties[replicas].default: Invalid value: "string":  in body must be of type integer: "string"`,
			P + `.properties[spec].properties[size].default: Too long: may not be more than 2 bytes`,
		},
	}, {
		name: "defaults of embedded resources",
		schema: `
type: object
properties:
  template:
    type: object
    x-kubernetes-embedded-resource: true
    properties:
      apiVersion: {type: string}
      kind: {type: string}
      metadata:
        type: object
        properties:
          labels:
            type: object
            additionalProperties: {type: string}
            default: {"bad key!": x}
    default: {apiVersion: v1, kind: ConfigMap}
  other:
    type: object
    x-kubernetes-embedded-resource: true
    x-kubernetes-preserve-unknown-fields: true
    default: {kind: ConfigMap}
`,
		want: []string{
			P + `.properties[other].default.apiVersion: Required value`,
			P + `.properties[template].properties[metadata].properties[labels].default: Invalid value: {"bad key!":"x"}: must result in valid metadata: metadata.labels: Invalid value: "bad key!": name part must consist of alphanumeric characters, '-', '_' or '.', and must start and end with an alphanumeric character (e.g. 'MyName',  or 'my.name',  or '123-abc', regex used for validation is '([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9]')`,
		},
	}, {
		name: "x-kubernetes-embedded-resource inside metadata additionalProperties has no default",
		schema: `
type: object
properties:
  template:
    type: object
    x-kubernetes-embedded-resource: true
    properties:
      metadata:
        type: object
        properties:
          annotations:
            type: object
            additionalProperties: {type: string, default: x}
`,
		want: []string{
			P + ".properties[template].properties[metadata].properties[annotations].additionalProperties.default: Forbidden: must not be set inside additionalProperties applying to object metadata",
		},
	}}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			p := field.NewPath("spec", "versions").Index(0).Child("schema", "openAPIV3Schema")
			got := messages(ValidateCRDSchema(p, schemaOf(t, tc.schema)))
			if diff := cmp.Diff(sorted(tc.want), got); diff != "" {
				t.Errorf("ValidateCRDSchema errors (-want +got):\n%s\ngot:\n%s", diff, strings.Join(got, "\n"))
			}
		})
	}
}

func TestValidateCRDSchemaNil(t *testing.T) {
	t.Parallel()
	if errs := ValidateCRDSchema(field.NewPath("x"), nil); len(errs) != 0 {
		t.Errorf("ValidateCRDSchema(nil) = %v, want none", errs)
	}
}
