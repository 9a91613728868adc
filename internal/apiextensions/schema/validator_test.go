package schema

import (
	"strings"
	"sync"
	"testing"

	"github.com/google/go-cmp/cmp"
)

const widgetSchema = `
type: object
properties:
  metadata:
    type: object
    properties:
      name: {type: string, maxLength: 8}
  spec:
    type: object
    required: [replicas]
    properties:
      replicas: {type: integer, minimum: 0}
      color: {type: string, enum: [red, blue]}
      size: {type: integer, enum: [1, 2]}
      image: {type: string, maxLength: 5}
      ratio: {type: number}
      port:
        x-kubernetes-int-or-string: true
      maybe: {type: string, nullable: true}
      never: {type: string}
      tags:
        type: array
        maxItems: 3
        x-kubernetes-list-type: set
        items: {type: string}
      ports:
        type: array
        x-kubernetes-list-type: map
        x-kubernetes-list-map-keys: [port]
        items:
          type: object
          required: [port]
          properties:
            port: {type: integer}
            protocol: {type: string, default: TCP}
      endpoints:
        type: array
        x-kubernetes-list-type: map
        x-kubernetes-list-map-keys: [host, port]
        items:
          type: object
          required: [host, port]
          properties:
            host: {type: string}
            port: {type: integer}
      labels:
        type: object
        maxProperties: 2
        additionalProperties: {type: string}
      email: {type: string, format: email}
      unknownFormat: {type: string, format: not-a-format}
      template:
        type: object
        x-kubernetes-embedded-resource: true
        x-kubernetes-preserve-unknown-fields: true
      extra:
        type: object
        x-kubernetes-preserve-unknown-fields: true
        properties:
          known:
            type: object
            properties:
              a: {type: string}
  status:
    type: object
    properties:
      ready: {type: boolean}
`

func TestValidate(t *testing.T) {
	t.Parallel()
	v := mustValidator(t, widgetSchema)
	tests := []struct {
		name string
		obj  string
		want []string
	}{{
		name: "valid",
		obj: `
apiVersion: example.com/v1
kind: Widget
metadata: {name: w, namespace: default, uid: "1", labels: {a: b}}
spec:
  replicas: 1
  color: red
  size: 2
  port: http
  maybe: null
  ratio: 1
  tags: [a, b]
  ports: [{port: 80}, {port: 443, protocol: TCP}]
  endpoints: [{host: a, port: 1}, {host: a, port: 2}, {host: b, port: 1}]
  labels: {x: why}
  email: a@example.com
  unknownFormat: anything
  template: {apiVersion: v1, kind: ConfigMap, metadata: {name: cm}, data: {a: b}}
  extra: {anything: [1, 2], known: {a: x}}
status: {ready: true}
`,
	}, {
		name: "int-or-string as integer",
		obj:  `{spec: {replicas: 1, port: 8080}}`,
	}, {
		name: "types, nested paths with indices",
		obj: `
spec:
  replicas: one
  ratio: x
  port: true
  never: null
  tags: [1]
  ports: [{port: 80}, {port: "443"}]
  labels: {a: 1}
`,
		want: []string{
			`spec.labels.a: Invalid value: "integer": spec.labels.a in body must be of type string: "integer"`,
			`spec.never: Invalid value: "null": spec.never in body must be of type string: "null"`,
			`spec.port: Invalid value: "boolean": spec.port in body must be of type integer,string: "boolean"`,
			`spec.ports[1].port: Invalid value: "string": spec.ports[1].port in body must be of type integer: "string"`,
			`spec.ratio: Invalid value: "string": spec.ratio in body must be of type number: "string"`,
			`spec.replicas: Invalid value: "string": spec.replicas in body must be of type integer: "string"`,
			`spec.tags[0]: Invalid value: "integer": spec.tags[0] in body must be of type string: "integer"`,
		},
	}, {
		name: "required, enum, bounds",
		obj: `
metadata: {name: much-too-long}
spec:
  color: green
  size: 3
  image: nginx:latest
  tags: [a, b, c, d]
  labels: {a: x, b: v, c: z}
  email: not-an-email
  ports: [{protocol: UDP}]
`,
		want: []string{
			`metadata.name: Too long: may not be more than 8 bytes`,
			`spec.color: Unsupported value: "green": supported values: "red", "blue"`,
			`spec.email: Invalid value: "not-an-email": spec.email in body must be of type email: "not-an-email"`,
			`spec.image: Too long: may not be more than 5 bytes`,
			`spec.labels: Too many: 3: must have at most 2 items`,
			`spec.ports[0].port: Required value`,
			`spec.replicas: Required value`,
			`spec.size: Unsupported value: 3: supported values: "1", "2"`,
			`spec.tags: Too many: 4: must have at most 3 items`,
		},
	}, {
		name: "minimum",
		obj:  `{spec: {replicas: -1}}`,
		want: []string{`spec.replicas: Invalid value: -1: spec.replicas in body should be greater than or equal to 0`},
	}, {
		name: "list-type set and map duplicates",
		obj: `
spec:
  replicas: 1
  tags: [a, b, a]
  ports: [{port: 80}, {port: 443}, {port: 80, protocol: UDP}]
  endpoints: [{host: a, port: 1}, {host: a, port: 1}]
`,
		want: []string{
			`spec.endpoints[1]: Duplicate value: {"host":"a","port":1}`,
			`spec.ports[2]: Duplicate value: {"port":80}`,
			`spec.tags[2]: Duplicate value: "a"`,
		},
	}, {
		name: "embedded resource needs apiVersion and kind",
		obj:  `{spec: {replicas: 1, template: {metadata: {name: "a/b"}}}}`,
		want: []string{
			`spec.template.apiVersion: Required value`,
			`spec.template.kind: Required value`,
			`spec.template.metadata.name: Invalid value: "a/b": may not contain '/'`,
		},
	}, {
		name: "embedded resource with invalid apiVersion, kind and metadata",
		obj:  `{spec: {replicas: 1, template: {apiVersion: "a/b/c", kind: "9x", metadata: {labels: 5}}}}`,
		want: []string{
			`spec.template.apiVersion: Invalid value: "a/b/c": unexpected GroupVersion string: a/b/c`,
			`spec.template.kind: Invalid value: "9x": may have mixed case, but should otherwise match: a DNS-1035 label must consist of lower case alphanumeric characters or '-', start with an alphabetic character, and end with an alphanumeric character (e.g. 'my-name',  or 'abc-123', regex used for validation is '[a-z]([-a-z0-9]*[a-z0-9])?')`,
			`spec.template.metadata: Invalid value: {"labels":5}: json: cannot unmarshal number into Go struct field ObjectMeta.labels of type map[string]string`,
		},
	}}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			obj := objectOf(t, tc.obj)
			before := objectOf(t, tc.obj)
			got := messages(v.Validate(obj))
			if diff := cmp.Diff(sorted(tc.want), got); diff != "" {
				t.Errorf("Validate errors (-want +got):\n%s\ngot:\n%s", diff, strings.Join(got, "\n"))
			}
			// The cached validators decide validity exactly as upstream's.
			if fast, slow := v.fast.Validate(obj).IsValid(), v.validator.Validate(obj).IsValid(); fast != slow {
				t.Errorf("cached validator says valid=%t, uncached says %t", fast, slow)
			}
			if diff := cmp.Diff(before, obj); diff != "" {
				t.Errorf("Validate changed the object (-before +after):\n%s", diff)
			}
		})
	}
}

func TestValidateEmbeddedProperties(t *testing.T) {
	t.Parallel()
	v := mustValidator(t, `
type: object
properties:
  items:
    type: array
    items:
      type: object
      x-kubernetes-embedded-resource: true
      properties:
        apiVersion: {type: string}
        kind: {type: string}
        metadata: {type: object}
        spec:
          type: object
          properties:
            num: {type: integer}
`)
	obj := objectOf(t, `{items: [{apiVersion: v1, kind: A, spec: {num: 1}}, {kind: B, spec: {num: x}}]}`)
	want := []string{
		`items[1].apiVersion: Required value`,
		`items[1].spec.num: Invalid value: "string": items[1].spec.num in body must be of type integer: "string"`,
	}
	if diff := cmp.Diff(want, messages(v.Validate(obj))); diff != "" {
		t.Errorf("Validate errors (-want +got):\n%s", diff)
	}
}

func TestPrune(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name   string
		schema string
		obj    string
		want   string
		pruned []string
	}{{
		name:   "unknown fields at every level",
		schema: widgetSchema,
		obj: `
apiVersion: example.com/v1
kind: Widget
metadata: {name: w, unknownMeta: x}
foo: 1
spec:
  replicas: 1
  bar: {baz: 1}
  ports: [{port: 80, x: 1}, {port: 81, yy: [1]}]
  labels: {a: b}
status: {ready: true, phase: Up}
`,
		want: `
apiVersion: example.com/v1
kind: Widget
metadata: {name: w, unknownMeta: x}
spec:
  replicas: 1
  ports: [{port: 80}, {port: 81}]
  labels: {a: b}
status: {ready: true}
`,
		pruned: []string{"foo", "spec.bar", "spec.ports[0].x", "spec.ports[1].yy", "status.phase"},
	}, {
		name:   "preserve-unknown-fields subtree prunes only inside what it specifies",
		schema: widgetSchema,
		obj:    `{spec: {replicas: 1, extra: {free: {form: 1}, known: {a: x, b: y}}}}`,
		want:   `{spec: {replicas: 1, extra: {free: {form: 1}, known: {a: x}}}}`,
		pruned: []string{"spec.extra.known.b"},
	}, {
		name:   "embedded resource keeps its type and object meta, drops unknown meta fields",
		schema: widgetSchema,
		obj: `
spec:
  replicas: 1
  template:
    apiVersion: v1
    kind: ConfigMap
    metadata: {name: cm, labels: {a: b}, bogus: 1, creationTimestamp: null}
    data: {a: b}
`,
		want: `
spec:
  replicas: 1
  template:
    apiVersion: v1
    kind: ConfigMap
    metadata: {name: cm, labels: {a: b}}
    data: {a: b}
`,
		pruned: []string{"spec.template.metadata.bogus"},
	}, {
		name: "embedded resource without preserve-unknown-fields",
		schema: `
type: object
properties:
  list:
    type: array
    items:
      type: object
      x-kubernetes-embedded-resource: true
      properties:
        spec: {type: object, properties: {a: {type: string}}}
`,
		obj:    `{list: [{apiVersion: v1, kind: A, metadata: {name: x}, spec: {a: x, b: y}, status: {}}]}`,
		want:   `{list: [{apiVersion: v1, kind: A, metadata: {name: x}, spec: {a: x}}]}`,
		pruned: []string{"list[0].spec.b", "list[0].status"},
	}, {
		name: "additionalProperties",
		schema: `
type: object
properties:
  byName:
    type: object
    additionalProperties:
      type: object
      properties:
        a: {type: integer}
  free:
    type: object
    additionalProperties: true
`,
		obj:    `{byName: {x: {a: 1, b: 2}, y: {}}, free: {s: 1, m: {nn: 1}}}`,
		want:   `{byName: {x: {a: 1}, y: {}}, free: {s: 1, m: {}}}`,
		pruned: []string{"byName.x.b", "free.m.nn"},
	}, {
		name:   "preserve-unknown-fields at the root",
		schema: `{type: object, x-kubernetes-preserve-unknown-fields: true, properties: {spec: {type: object, properties: {a: {type: string}}}}}`,
		obj:    `{kind: A, foo: {bar: 1}, spec: {a: x, b: y}}`,
		want:   `{kind: A, foo: {bar: 1}, spec: {a: x}}`,
		pruned: []string{"spec.b"},
	}, {
		name: "nested x-kubernetes-preserve-unknown-fields (upstream's case)",
		schema: `
type: object
x-kubernetes-preserve-unknown-fields: true
properties:
  alpha: {type: string}
  beta: {type: number}
  pruning:
    type: object
    properties:
      preserving: {type: object, x-kubernetes-preserve-unknown-fields: true}
      pruning: {type: object}
  preserving:
    type: object
    x-kubernetes-preserve-unknown-fields: true
    properties:
      preserving: {type: object, x-kubernetes-preserve-unknown-fields: true}
      preservingUnknownType: {x-kubernetes-preserve-unknown-fields: true}
      pruning: {type: object}
  preservingAdditionalPropertiesNotInheritingXPreserveUnknownFields:
    type: object
    x-kubernetes-preserve-unknown-fields: true
    additionalProperties:
      type: object
      properties:
        specified: {type: object}
  preservingAdditionalPropertiesKeyPruneValues:
    type: object
    additionalProperties:
      type: object
      properties:
        specified: {type: object}
`,
		obj: `
unspecified: bar
alpha: abc
beta: 42.0
unspecifiedObject: {unspecified: bar}
pruning:
  unspecified: bar
  unspecifiedObject: {unspecified: bar}
  pruning: {unspecified: bar}
  apiVersion: unknown
  preserving: {unspecified: bar}
preserving:
  unspecified: bar
  unspecifiedObject: {unspecified: bar}
  pruning: {unspecified: bar}
  preserving: {unspecified: bar}
  preservingUnknownType: [{foo: true}, {bar: true}]
preservingAdditionalPropertiesNotInheritingXPreserveUnknownFields:
  foo:
    specified: {unspecified: bar}
    unspecified: bar
preservingAdditionalPropertiesKeyPruneValues:
  foo:
    specified: {unspecified: bar}
    unspecified: bar
`,
		want: `
unspecified: bar
alpha: abc
beta: 42.0
unspecifiedObject: {unspecified: bar}
pruning:
  pruning: {}
  preserving: {unspecified: bar}
preserving:
  unspecified: bar
  unspecifiedObject: {unspecified: bar}
  pruning: {}
  preserving: {unspecified: bar}
  preservingUnknownType: [{foo: true}, {bar: true}]
preservingAdditionalPropertiesNotInheritingXPreserveUnknownFields:
  foo:
    specified: {}
preservingAdditionalPropertiesKeyPruneValues:
  foo:
    specified: {}
`,
		pruned: []string{
			"preserving.pruning.unspecified",
			"preservingAdditionalPropertiesKeyPruneValues.foo.specified.unspecified",
			"preservingAdditionalPropertiesKeyPruneValues.foo.unspecified",
			"preservingAdditionalPropertiesNotInheritingXPreserveUnknownFields.foo.specified.unspecified",
			"preservingAdditionalPropertiesNotInheritingXPreserveUnknownFields.foo.unspecified",
			"pruning.apiVersion",
			"pruning.pruning.unspecified",
			"pruning.unspecified",
			"pruning.unspecifiedObject",
		},
	}, {
		name: "nulls: dropped unless nullable or defaulted",
		schema: `
type: object
properties:
  spec:
    type: object
    properties:
      a: {type: string}
      b: {type: string, nullable: true}
      c: {type: string, default: x}
      m:
        type: object
        additionalProperties: {type: string}
`,
		obj:  `{spec: {a: null, b: null, c: null, m: {k: null}}}`,
		want: `{spec: {b: null, c: null, m: {}}}`,
	}}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			v := mustValidator(t, tc.schema)
			obj := objectOf(t, tc.obj)
			pruned := v.Prune(obj)
			if diff := cmp.Diff(objectOf(t, tc.want), obj); diff != "" {
				t.Errorf("pruned object (-want +got):\n%s", diff)
			}
			if diff := cmp.Diff(tc.pruned, pruned); diff != "" {
				t.Errorf("pruned paths (-want +got):\n%s", diff)
			}
		})
	}
}

func TestDefault(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name   string
		schema string
		obj    string
		want   string
	}{{
		name: "properties of present objects, top-down",
		schema: `
type: object
properties:
  spec:
    type: object
    default: {}
    properties:
      replicas: {type: integer, default: 1}
      strategy:
        type: object
        properties:
          type: {type: string, default: Rolling}
      absent:
        type: object
        properties:
          x: {type: string, default: never}
`,
		obj:  `{kind: A}`,
		want: `{kind: A, spec: {replicas: 1}}`,
	}, {
		name:   "present values are kept",
		schema: `{type: object, properties: {spec: {type: object, properties: {replicas: {type: integer, default: 1}}}}}`,
		obj:    `{spec: {replicas: 3}}`,
		want:   `{spec: {replicas: 3}}`,
	}, {
		name: "items of arrays",
		schema: `
type: object
properties:
  ports:
    type: array
    items:
      type: object
      properties:
        port: {type: integer}
        protocol: {type: string, default: TCP}
  names:
    type: array
    items: {type: string, default: unnamed}
`,
		obj:  `{ports: [{port: 80}, {port: 53, protocol: UDP}], names: [a, null]}`,
		want: `{ports: [{port: 80, protocol: TCP}, {port: 53, protocol: UDP}], names: [a, unnamed]}`,
	}, {
		name: "null gets the default unless nullable",
		schema: `
type: object
properties:
  a: {type: string, default: x}
  b: {type: string, nullable: true, default: y}
`,
		obj:  `{a: null, b: null}`,
		want: `{a: x, b: null}`,
	}, {
		name: "additionalProperties values",
		schema: `
type: object
properties:
  byName:
    type: object
    additionalProperties:
      type: object
      properties:
        weight: {type: integer, default: 1}
`,
		obj:  `{byName: {a: {}, b: {weight: 5}}}`,
		want: `{byName: {a: {weight: 1}, b: {weight: 5}}}`,
	}, {
		name: "defaults inside a defaulted array",
		schema: `
type: object
properties:
  list:
    type: array
    default: [{}]
    items:
      type: object
      properties:
        a: {type: string, default: x}
`,
		obj:  `{}`,
		want: `{list: [{a: x}]}`,
	}}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			v := mustValidator(t, tc.schema)
			obj := objectOf(t, tc.obj)
			v.Default(obj)
			if diff := cmp.Diff(objectOf(t, tc.want), obj); diff != "" {
				t.Errorf("defaulted object (-want +got):\n%s", diff)
			}
		})
	}
}

// TestDefaultCopies checks that defaults are deep copies: changing one
// defaulted object changes neither the schema nor another object.
func TestDefaultCopies(t *testing.T) {
	t.Parallel()
	v := mustValidator(t, `{type: object, properties: {spec: {type: object, default: {tags: [a]}, properties: {tags: {type: array, items: {type: string}}}}}}`)
	first := map[string]any{}
	v.Default(first)
	first["spec"].(map[string]any)["tags"].([]any)[0] = "changed"
	second := map[string]any{}
	v.Default(second)
	if diff := cmp.Diff(objectOf(t, `{spec: {tags: [a]}}`), second); diff != "" {
		t.Errorf("second default (-want +got):\n%s", diff)
	}
}

func TestNilSchema(t *testing.T) {
	t.Parallel()
	v, err := NewValidator(nil)
	if err != nil {
		t.Fatalf("NewValidator(nil): %v", err)
	}
	obj := objectOf(t, `{apiVersion: a/v1, kind: A, spec: {anything: [1, null]}, x: null}`)
	want := objectOf(t, `{apiVersion: a/v1, kind: A, spec: {anything: [1, null]}, x: null}`)
	if errs := v.Validate(obj); len(errs) != 0 {
		t.Errorf("Validate = %v, want none", errs)
	}
	if pruned := v.Prune(obj); len(pruned) != 0 {
		t.Errorf("Prune = %v, want none", pruned)
	}
	v.Default(obj)
	if diff := cmp.Diff(want, obj); diff != "" {
		t.Errorf("object changed (-want +got):\n%s", diff)
	}
}

func TestNewValidatorRejectsRef(t *testing.T) {
	t.Parallel()
	if _, err := NewValidator(schemaOf(t, `{type: object, properties: {a: {$ref: "#/definitions/a"}}}`)); err == nil {
		t.Error("NewValidator accepted a $ref")
	}
}

// TestConcurrentUse runs one Validator from several goroutines (go test
// -race checks it).
func TestConcurrentUse(t *testing.T) {
	t.Parallel()
	v := mustValidator(t, widgetSchema)
	var wg sync.WaitGroup
	for i := 0; i < 8; i++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for j := 0; j < 20; j++ {
				obj := objectOf(t, `{spec: {replicas: 1, ports: [{port: 80, x: 1}], tags: [a, a]}}`)
				if got := v.Prune(obj); len(got) != 1 {
					t.Errorf("Prune = %v", got)
				}
				v.Default(obj)
				if errs := v.Validate(obj); len(errs) != 1 {
					t.Errorf("Validate = %v", errs)
				}
			}
		}()
	}
	wg.Wait()
}

func TestValidateUpdate(t *testing.T) {
	t.Parallel()
	v := mustValidator(t, `
type: object
properties:
  spec:
    type: object
    required: [replicas]
    properties:
      replicas: {type: integer, minimum: 0}
      image: {type: string, maxLength: 3}
      tags:
        type: array
        x-kubernetes-list-type: set
        items: {type: string, maxLength: 3}
      ports:
        type: array
        x-kubernetes-list-type: map
        x-kubernetes-list-map-keys: [port]
        items:
          type: object
          required: [port]
          properties:
            port: {type: integer}
            name: {type: string, maxLength: 3}
`)
	tests := []struct {
		name     string
		old, obj string
		want     []string
	}{{
		name: "unchanged invalid values are ratcheted",
		old:  `{spec: {replicas: -1, image: long-image}}`,
		obj:  `{spec: {replicas: -1, image: long-image}, status: {x: 1}}`,
	}, {
		name: "changed invalid values are reported",
		old:  `{spec: {replicas: -1, image: long-image}}`,
		obj:  `{spec: {replicas: -2, image: long-image}}`,
		want: []string{`spec.replicas: Invalid value: -2: spec.replicas in body should be greater than or equal to 0`},
	}, {
		name: "missing required field in an unchanged object",
		old:  `{spec: {image: a}}`,
		obj:  `{metadata: {labels: {a: b}}, spec: {image: a}}`,
	}, {
		name: "map list items correlate by key",
		old:  `{spec: {replicas: 1, ports: [{port: 80, name: toolong}, {port: 81}]}}`,
		obj:  `{spec: {replicas: 1, ports: [{port: 82, name: longer}, {port: 81}, {port: 80, name: toolong}]}}`,
		want: []string{`spec.ports[0].name: Too long: may not be more than 3 bytes`},
	}, {
		name: "set list items do not correlate",
		old:  `{spec: {replicas: 1, tags: [toolong]}}`,
		obj:  `{spec: {replicas: 1, tags: [toolong, b]}}`,
		want: []string{`spec.tags[0]: Too long: may not be more than 3 bytes`},
	}, {
		name: "duplicates are only reported if old had none",
		old:  `{spec: {replicas: 1, tags: [a, a]}}`,
		obj:  `{spec: {replicas: 1, tags: [a, a, b]}}`,
	}, {
		name: "new duplicates",
		old:  `{spec: {replicas: 1, tags: [a]}}`,
		obj:  `{spec: {replicas: 1, tags: [a, a]}}`,
		want: []string{`spec.tags[1]: Duplicate value: "a"`},
	}, {
		name: "no old object",
		obj:  `{spec: {image: long-image}}`,
		want: []string{`spec.image: Too long: may not be more than 3 bytes`, `spec.replicas: Required value`},
	}}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			var old map[string]any
			if tc.old != "" {
				old = objectOf(t, tc.old)
			}
			got := messages(v.ValidateUpdate(objectOf(t, tc.obj), old))
			if diff := cmp.Diff(sorted(tc.want), got); diff != "" {
				t.Errorf("ValidateUpdate errors (-want +got):\n%s", diff)
			}
		})
	}
}
