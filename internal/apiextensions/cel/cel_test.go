package cel

import (
	"encoding/json"
	"sort"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
	apiextensionsv1 "k8s.io/apiextensions-apiserver/pkg/apis/apiextensions/v1"
	utiljson "k8s.io/apimachinery/pkg/util/json"
	"k8s.io/apimachinery/pkg/util/validation/field"
	"sigs.k8s.io/yaml"
)

// schemaOf decodes a YAML schema as the API server decodes a CRD's.
func schemaOf(t testing.TB, y string) *apiextensionsv1.JSONSchemaProps {
	t.Helper()
	j, err := yaml.YAMLToJSON([]byte(y))
	if err != nil {
		t.Fatalf("schema YAML: %v", err)
	}
	s := &apiextensionsv1.JSONSchemaProps{}
	if err := json.Unmarshal(j, s); err != nil {
		t.Fatalf("schema JSON: %v", err)
	}
	return s
}

// objectOf decodes a YAML object as unstructured JSON (int64 numbers); ""
// is nil.
func objectOf(t testing.TB, y string) map[string]any {
	t.Helper()
	if y == "" {
		return nil
	}
	j, err := yaml.YAMLToJSON([]byte(y))
	if err != nil {
		t.Fatalf("object YAML: %v", err)
	}
	var obj map[string]any
	if err := utiljson.Unmarshal(j, &obj); err != nil {
		t.Fatalf("object JSON: %v", err)
	}
	return obj
}

// messages returns the errors' messages, sorted.
func messages(errs field.ErrorList) []string {
	out := []string{}
	for _, e := range errs {
		out = append(out, e.Error())
	}
	sort.Strings(out)
	return out
}

// mustCompile compiles a YAML schema that must compile without errors.
func mustCompile(t testing.TB, y string) *Validator {
	t.Helper()
	v, errs := Compile(schemaOf(t, y))
	if len(errs) > 0 {
		t.Fatalf("Compile: %v", errs)
	}
	if s := v.Skipped(); len(s) > 0 {
		t.Fatalf("Compile skipped rules: %v", s)
	}
	return v
}

const specSchema = `
type: object
properties:
  metadata:
    type: object
  spec:
    type: object
    x-kubernetes-validations:
    - rule: "self.minReplicas <= self.maxReplicas"
      message: "minReplicas must not exceed maxReplicas"
    - rule: "!has(self.mode) || self.mode != 'Legacy' || has(self.legacy)"
      messageExpression: "'mode ' + self.mode + ' needs legacy settings'"
    - rule: "self.image.startsWith('registry.example/')"
      reason: FieldValueForbidden
      fieldPath: .image
      message: "image must come from registry.example"
    - rule: "!has(self.start) || !has(self.end) || self.start < self.end"
      message: "start must precede end"
    - rule: "!has(self.timeout) || self.timeout <= duration('1h')"
      message: "timeout too long"
    - rule: "!has(self.my__dash__field) || self.my__dash__field != self.__namespace__"
      message: "my-field must differ from namespace"
    properties:
      minReplicas: {type: integer}
      maxReplicas: {type: integer}
      mode: {type: string}
      legacy: {type: object, x-kubernetes-preserve-unknown-fields: true}
      image: {type: string}
      ratio:
        type: number
        x-kubernetes-validations:
        - rule: "self < 1.0"
      name:
        type: string
        x-kubernetes-validations:
        - rule: "size(self) <= 5"
        - rule: "self == oldSelf"
          message: "name is immutable"
      port:
        x-kubernetes-int-or-string: true
        x-kubernetes-validations:
        - rule: "type(self) == int ? self > 0 : self.endsWith('-port')"
          message: "bad port"
      tags:
        type: array
        items: {type: string}
        x-kubernetes-validations:
        - rule: "self.all(t, t.matches('^[a-z]+$'))"
          message: "tags must be lower-case words"
        - rule: "self.exists(t, t == 'main')"
          reason: FieldValueRequired
          message: "a main tag is required"
        - rule: "size(self) == size(self.distinct())"
          reason: FieldValueDuplicate
        - rule: "self.isSorted()"
          message: "tags must be sorted"
      items:
        type: array
        x-kubernetes-list-type: map
        x-kubernetes-list-map-keys: [name]
        items:
          type: object
          x-kubernetes-validations:
          - rule: "self.weight >= 0"
            message: "weight must not be negative"
          - rule: "self.weight == oldSelf.weight || self.weight > oldSelf.weight"
            message: "weight may only grow"
          properties:
            name:
              type: string
              x-kubernetes-validations:
              - rule: "self != 'bad'"
            weight: {type: integer}
      labels:
        type: object
        additionalProperties:
          type: string
          x-kubernetes-validations:
          - rule: "size(self) < 4"
            message: "label values are short"
      start: {type: string, format: date-time}
      end: {type: string, format: date-time}
      timeout: {type: string, format: duration}
      my-field:
        type: string
      namespace:
        type: string
`

func TestValidate(t *testing.T) {
	v := mustCompile(t, specSchema)
	tests := []struct {
		name     string
		obj, old string
		want     []string
	}{
		{
			name: "valid",
			obj: `spec: {minReplicas: 1, maxReplicas: 2, image: registry.example/a, ratio: 0.5, name: abc, port: 8,
  tags: [a, main], items: [{name: x, weight: 1}], labels: {a: b}}`,
		},
		{
			name: "object self with message",
			obj:  `spec: {minReplicas: 3, maxReplicas: 2, image: registry.example/a}`,
			want: []string{"spec: Invalid value: minReplicas must not exceed maxReplicas"},
		},
		{
			name: "has and messageExpression",
			obj:  `spec: {minReplicas: 1, maxReplicas: 2, image: registry.example/a, mode: Legacy}`,
			want: []string{"spec: Invalid value: mode Legacy needs legacy settings"},
		},
		{
			name: "reason Forbidden and fieldPath",
			obj:  `spec: {minReplicas: 1, maxReplicas: 2, image: docker.io/a}`,
			want: []string{"spec.image: Forbidden: image must come from registry.example"},
		},
		{
			name: "missing field is an evaluation error",
			obj:  `spec: {minReplicas: 1, image: registry.example/a}`,
			want: []string{"spec: Invalid value: \"object\": no such key: maxReplicas evaluating rule: minReplicas must not exceed maxReplicas"},
		},
		{
			name: "scalar self, default message; integral number is a double",
			obj:  `spec: {minReplicas: 1, maxReplicas: 2, image: registry.example/a, ratio: 2, name: abcdefg}`,
			want: []string{
				"spec.name: Invalid value: \"abcdefg\": failed rule: size(self) <= 5",
				"spec.ratio: Invalid value: 2: failed rule: self < 1.0",
			},
		},
		{
			name: "int-or-string",
			obj:  `spec: {minReplicas: 1, maxReplicas: 2, image: registry.example/a, port: http}`,
			want: []string{"spec.port: Invalid value: \"http\": bad port"},
		},
		{
			name: "int-or-string int",
			obj:  `spec: {minReplicas: 1, maxReplicas: 2, image: registry.example/a, port: 0}`,
			want: []string{"spec.port: Invalid value: 0: bad port"},
		},
		{
			name: "array self: all, exists, reasons, isSorted",
			obj:  `spec: {minReplicas: 1, maxReplicas: 2, image: registry.example/a, tags: [b, A, b]}`,
			want: []string{
				"spec.tags: Duplicate value",
				"spec.tags: Invalid value: tags must be lower-case words",
				"spec.tags: Invalid value: tags must be sorted",
				"spec.tags: Required value: a main tag is required",
			},
		},
		{
			name: "nested list of objects",
			obj: `spec: {minReplicas: 1, maxReplicas: 2, image: registry.example/a,
  items: [{name: ok, weight: 1}, {name: bad, weight: -1}]}`,
			want: []string{
				"spec.items[1].name: Invalid value: \"bad\": failed rule: self != 'bad'",
				"spec.items[1]: Invalid value: weight must not be negative",
			},
		},
		{
			name: "additionalProperties values",
			obj:  `spec: {minReplicas: 1, maxReplicas: 2, image: registry.example/a, labels: {a: b, c: long}}`,
			want: []string{"spec.labels[c]: Invalid value: \"long\": label values are short"},
		},
		{
			name: "date-time and duration formats",
			obj: `spec: {minReplicas: 1, maxReplicas: 2, image: registry.example/a,
  start: "2024-01-02T00:00:00Z", end: "2024-01-01T00:00:00Z", timeout: 2h}`,
			want: []string{
				"spec: Invalid value: start must precede end",
				"spec: Invalid value: timeout too long",
			},
		},
		{
			name: "escaped property names",
			obj:  `spec: {minReplicas: 1, maxReplicas: 2, image: registry.example/a, my-field: x, namespace: x}`,
			want: []string{"spec: Invalid value: my-field must differ from namespace"},
		},
		{
			name: "transition rule skipped on create",
			obj:  `spec: {minReplicas: 1, maxReplicas: 2, image: registry.example/a, name: a, items: [{name: x, weight: 1}]}`,
		},
		{
			name: "immutability on update",
			obj:  `spec: {minReplicas: 1, maxReplicas: 2, image: registry.example/a, name: b}`,
			old:  `spec: {minReplicas: 1, maxReplicas: 2, image: registry.example/a, name: a}`,
			want: []string{"spec.name: Invalid value: \"b\": name is immutable"},
		},
		{
			name: "transition rule skipped where old has no value",
			obj:  `spec: {minReplicas: 1, maxReplicas: 2, image: registry.example/a, name: b}`,
			old:  `spec: {minReplicas: 1, maxReplicas: 2, image: registry.example/a}`,
		},
		{
			name: "map list items correlated by key",
			obj: `spec: {minReplicas: 1, maxReplicas: 2, image: registry.example/a,
  items: [{name: new, weight: 1}, {name: x, weight: 1}, {name: y, weight: 5}]}`,
			old: `spec: {minReplicas: 1, maxReplicas: 2, image: registry.example/a,
  items: [{name: y, weight: 3}, {name: x, weight: 2}]}`,
			want: []string{"spec.items[1]: Invalid value: weight may only grow"},
		},
		{
			name: "ratcheting: unchanged invalid value is not reported",
			obj:  `spec: {minReplicas: 1, maxReplicas: 2, image: registry.example/b, ratio: 2, name: abcdefg, labels: {a: long}}`,
			old:  `spec: {minReplicas: 1, maxReplicas: 2, image: registry.example/a, ratio: 2, name: abcdefg, labels: {a: long}}`,
		},
		{
			name: "ratcheting: a reordered map list is unchanged",
			obj:  `spec: {minReplicas: 3, maxReplicas: 2, image: registry.example/a, items: [{name: x, weight: 1}, {name: y, weight: 2}]}`,
			old:  `spec: {minReplicas: 3, maxReplicas: 2, image: registry.example/a, items: [{name: y, weight: 2}, {name: x, weight: 1}]}`,
		},
		{
			name: "ratcheting: changed value is reported",
			obj:  `spec: {minReplicas: 3, maxReplicas: 1, image: registry.example/a, ratio: 2}`,
			old:  `spec: {minReplicas: 3, maxReplicas: 2, image: registry.example/a, ratio: 2}`,
			want: []string{"spec: Invalid value: minReplicas must not exceed maxReplicas"},
		},
		{
			name: "null values are not validated",
			obj:  `spec: null`,
		},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			got := messages(v.Validate(objectOf(t, tc.obj), objectOf(t, tc.old)))
			want := tc.want
			if want == nil {
				want = []string{}
			}
			if diff := cmp.Diff(want, got); diff != "" {
				t.Errorf("errors (-want +got):\n%s", diff)
			}
		})
	}
}

func TestValidateRootAndEmbedded(t *testing.T) {
	v := mustCompile(t, `
type: object
x-kubernetes-validations:
- rule: "self.metadata.name.startsWith('w-')"
  message: "name must start with w-"
- rule: "!has(self.metadata.labels)"
  message: "rules see only name and generateName of metadata"
- rule: "self.kind == 'Widget' && self.apiVersion == 'example.com/v1'"
properties:
  metadata: {type: object}
  spec:
    type: object
    properties:
      template:
        type: object
        x-kubernetes-embedded-resource: true
        x-kubernetes-preserve-unknown-fields: true
        x-kubernetes-validations:
        - rule: "self.kind == 'Pod' && !has(self.metadata.namespace)"
          message: "template must be a Pod"
`)
	tests := []struct {
		name string
		obj  string
		want []string
	}{
		{
			name: "valid",
			obj: `{apiVersion: example.com/v1, kind: Widget, metadata: {name: w-1, labels: {a: b}},
  spec: {template: {apiVersion: v1, kind: Pod, metadata: {name: p, namespace: x}}}}`,
		},
		{
			name: "invalid",
			obj: `{apiVersion: example.com/v1, kind: Widget, metadata: {name: x-1},
  spec: {template: {apiVersion: v1, kind: Service}}}`,
			want: []string{
				"<nil>: Invalid value: name must start with w-",
				"spec.template: Invalid value: template must be a Pod",
			},
		},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			got := messages(v.Validate(objectOf(t, tc.obj), nil))
			want := tc.want
			if want == nil {
				want = []string{}
			}
			if diff := cmp.Diff(want, got); diff != "" {
				t.Errorf("errors (-want +got):\n%s", diff)
			}
		})
	}
}

func TestCompile(t *testing.T) {
	tests := []struct {
		name        string
		schema      string
		wantErrs    []string
		wantSkipped []string
	}{
		{
			name: "valid rules",
			schema: `
type: object
x-kubernetes-validations:
- rule: "self.a.all(x, x > 0) && [1, 2].sum() == 3 && [3, 1].min() == 1 && [1].max() == 1"
- rule: "['a', 'b'].indexOf('b') == 1 && 'abc'.indexOf('c') == 2 && [1, 1].lastIndexOf(1) == 1"
- rule: "'a1b2'.find('[0-9]') == '1' && 'a1b2'.findAll('[0-9]').size() == 2 && 'x'.upperAscii() == 'X'"
- rule: "quantity('1Gi').isGreaterThan(quantity('1G')) && isQuantity('5m') && quantity('50k').sub(20000).asInteger() == 30000"
- rule: "sets.contains([1, 2], [1]) && self.a.all(i, v, i >= 0) && optional.of(1).hasValue()"
- rule: "oldSelf.hasValue() ? self == oldSelf.value() : true"
  optionalOldSelf: true
properties:
  a: {type: array, items: {type: integer}}
`,
		},
		{
			name: "syntax and type errors",
			schema: `
type: object
properties:
  spec:
    type: object
    x-kubernetes-validations:
    - rule: "self.a =="
    - rule: "selff.a == 1"
    - rule: "1 + 1"
    - rule: "true"
      messageExpression: "1"
    - rule: "true"
      optionalOldSelf: true
    properties:
      list:
        type: array
        items:
          type: object
          properties:
            a:
              type: string
              x-kubernetes-validations: [{rule: "self == oldSelf"}]
`,
			wantErrs: []string{
				"properties[spec].x-kubernetes-validations[0].rule: Invalid value",
				"compilation failed: ERROR: <input>:1:10: Syntax error",
				"properties[spec].x-kubernetes-validations[1].rule: Invalid value",
				"compilation failed: ERROR: <input>:1:1: undeclared reference to 'selff'",
				"properties[spec].x-kubernetes-validations[2].rule: Invalid value",
				"cel expression must evaluate to a bool",
				"properties[spec].x-kubernetes-validations[3].messageExpression: Invalid value",
				"messageExpression must evaluate to a string",
				"properties[spec].x-kubernetes-validations[4].optionalOldSelf: Invalid value: true: may not be set if oldSelf is not used in rule",
				`properties[spec].properties[list].items.properties[a].x-kubernetes-validations[0].rule: Invalid value: "self == oldSelf": oldSelf cannot be used on the uncorrelatable portion of the schema within properties[spec].properties[list]`,
			},
		},
		{
			name: "unknown functions are skipped",
			schema: `
type: object
properties:
  addresses:
    type: array
    items:
      type: object
      x-kubernetes-validations:
      - rule: "self.type == 'Version' ? isSemver(self.value) : true"
      - rule: "self.value != ''"
        messageExpression: "'bad ' + semver(self.value).major()"
`,
			wantSkipped: []string{
				`properties[addresses].items.x-kubernetes-validations[0].rule: unsupported function "isSemver" in rule "self.type == 'Version' ? isSemver(self.value) : true", not enforced`,
				`properties[addresses].items.x-kubernetes-validations[1].messageExpression: unsupported function "semver" in messageExpression "'bad ' + semver(self.value).major()", message used instead`,
			},
		},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			v, errs := Compile(schemaOf(t, tc.schema))
			got := strings.Join(messages(errs), "\n")
			for _, w := range tc.wantErrs {
				if !strings.Contains(got, w) {
					t.Errorf("errors lack %q; got:\n%s", w, got)
				}
			}
			if len(tc.wantErrs) == 0 && len(errs) > 0 {
				t.Errorf("unexpected errors:\n%s", got)
			}
			if diff := cmp.Diff(tc.wantSkipped, v.Skipped()); diff != "" {
				t.Errorf("skipped (-want +got):\n%s", diff)
			}
		})
	}
}

func TestCompileAtPath(t *testing.T) {
	_, errs := CompileAt(field.NewPath("spec", "versions").Index(0).Child("schema", "openAPIV3Schema"), schemaOf(t, `
type: object
x-kubernetes-validations: [{rule: "self."}]
`))
	if len(errs) != 1 || errs[0].Field != "spec.versions[0].schema.openAPIV3Schema.x-kubernetes-validations[0].rule" {
		t.Fatalf("errors: %v", errs)
	}
}

func TestSkippedRuleNotEnforced(t *testing.T) {
	v, errs := Compile(schemaOf(t, `
type: object
x-kubernetes-validations:
- rule: "isSemver(self.ip)"
- rule: "self.ip != ''"
  messageExpression: "semver(self.ip).minor()"
  message: "ip is required"
properties:
  ip: {type: string}
`))
	if len(errs) > 0 {
		t.Fatalf("Compile: %v", errs)
	}
	got := messages(v.Validate(map[string]any{"ip": ""}, nil))
	if diff := cmp.Diff([]string{"<nil>: Invalid value: ip is required"}, got); diff != "" {
		t.Errorf("errors (-want +got):\n%s", diff)
	}
}

func TestCostLimit(t *testing.T) {
	t.Parallel()
	v := mustCompile(t, `
type: object
properties:
  list:
    type: array
    items: {type: integer}
    x-kubernetes-validations:
    - rule: "self.all(x, self.all(y, x + y >= 0))"
    - rule: "false"
`)
	list := make([]any, 2000)
	for i := range list {
		list[i] = int64(i)
	}
	errs := v.Validate(map[string]any{"list": list}, nil)
	got := messages(errs)
	want := []string{"list: Invalid value: \"array\": 'operation cancelled: actual cost limit exceeded': no further validation rules will be run due to call cost exceeds limit for rule: self.all(x, self.all(y, x + y >= 0))"}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("errors (-want +got):\n%s", diff)
	}
}

func TestCostBudget(t *testing.T) {
	t.Parallel()
	// Every item is within the per-call limit; together they exceed the
	// object's budget.
	v := mustCompile(t, `
type: object
properties:
  list:
    type: array
    items:
      type: array
      items: {type: integer}
      x-kubernetes-validations:
      - rule: "self.all(x, self.all(y, x + y >= 0))"
`)
	inner := make([]any, 150)
	for i := range inner {
		inner[i] = int64(i)
	}
	list := make([]any, 100)
	for i := range list {
		list[i] = inner
	}
	errs := v.Validate(map[string]any{"list": list}, nil)
	if len(errs) != 1 || !strings.Contains(errs[0].Detail, ErrOutOfBudget) {
		t.Fatalf("errors: %v", errs)
	}
}

// TestGatewayAPIRules checks rules of the Gateway API CRDs (v1.2,
// HTTPRoute and Gateway), verbatim.
func TestGatewayAPIRules(t *testing.T) {
	v, errs := Compile(schemaOf(t, `
type: object
properties:
  spec:
    type: object
    properties:
      parentRefs:
        type: array
        maxItems: 32
        items:
          type: object
          properties:
            group: {type: string, default: gateway.networking.k8s.io}
            kind: {type: string, default: Gateway}
            name: {type: string}
            namespace: {type: string}
            sectionName: {type: string}
            port: {type: integer, format: int32}
        x-kubernetes-validations:
        - message: sectionName or port must be specified when parentRefs includes 2 or more references to the same parent
          rule: 'self.all(p1, self.all(p2, p1.group == p2.group && p1.kind == p2.kind && p1.name == p2.name && (((!has(p1.__namespace__) || p1.__namespace__ == '''') && (!has(p2.__namespace__) || p2.__namespace__ == '''')) || (has(p1.__namespace__) && has(p2.__namespace__) && p1.__namespace__ == p2.__namespace__)) ? ((!has(p1.sectionName) || p1.sectionName == '''') == (!has(p2.sectionName) || p2.sectionName == '''') && (!has(p1.port) || p1.port == 0) == (!has(p2.port) || p2.port == 0)): true))'
      rules:
        type: array
        items:
          type: object
          properties:
            matches:
              type: array
              items:
                type: object
                properties:
                  path:
                    type: object
                    properties:
                      type: {type: string}
                      value: {type: string}
                    x-kubernetes-validations:
                    - message: value must be an absolute path and start with '/' when type one of ['Exact', 'PathPrefix']
                      rule: '(self.type in [''Exact'',''PathPrefix'']) ? self.value.startsWith(''/'') : true'
                    - message: must not contain '//' when type one of ['Exact', 'PathPrefix']
                      rule: '(self.type in [''Exact'',''PathPrefix'']) ? !self.value.contains(''//'') : true'
            filters:
              type: array
              items:
                type: object
                properties:
                  type: {type: string}
                  requestHeaderModifier: {type: object, x-kubernetes-preserve-unknown-fields: true}
                x-kubernetes-validations:
                - message: filter.requestHeaderModifier must be nil if the filter.type is not RequestHeaderModifier
                  rule: '!(has(self.requestHeaderModifier) && self.type != ''RequestHeaderModifier'')'
                - message: filter.requestHeaderModifier must be specified for RequestHeaderModifier filter.type
                  rule: '!(!has(self.requestHeaderModifier) && self.type == ''RequestHeaderModifier'')'
            timeouts:
              type: object
              properties:
                request: {type: string}
                backendRequest: {type: string}
              x-kubernetes-validations:
              - message: backendRequest timeout cannot be longer than request timeout
                rule: '!(has(self.request) && has(self.backendRequest) && duration(self.request) != duration(''0s'') && duration(self.backendRequest) > duration(self.request))'
      listeners:
        type: array
        items:
          type: object
          properties:
            name: {type: string}
            protocol: {type: string}
            tls: {type: object, x-kubernetes-preserve-unknown-fields: true}
        x-kubernetes-validations:
        - message: tls must not be specified for protocols ['HTTP', 'TCP', 'UDP']
          rule: 'self.all(l, l.protocol in [''HTTP'', ''TCP'', ''UDP''] ? !has(l.tls) : true)'
        - message: Listener name must be unique within the Gateway
          rule: self.all(l1, self.exists_one(l2, l1.name == l2.name))
`))
	if len(errs) > 0 {
		t.Fatalf("Compile: %v", errs)
	}
	tests := []struct {
		name string
		obj  string
		want []string
	}{
		{
			name: "valid",
			obj: `spec:
  parentRefs: [{group: g, kind: Gateway, name: gw, sectionName: a}, {group: g, kind: Gateway, name: gw, sectionName: b}]
  rules:
  - matches: [{path: {type: PathPrefix, value: /api}}]
    filters: [{type: RequestHeaderModifier, requestHeaderModifier: {}}]
    timeouts: {request: 10s, backendRequest: 5s}
  listeners: [{name: http, protocol: HTTP}, {name: https, protocol: HTTPS, tls: {}}]`,
		},
		{
			name: "invalid",
			obj: `spec:
  parentRefs: [{group: g, kind: Gateway, name: gw, namespace: ns, sectionName: a}, {group: g, kind: Gateway, name: gw, namespace: ns}]
  rules:
  - matches: [{path: {type: PathPrefix, value: api//x}}]
    filters: [{type: URLRewrite, requestHeaderModifier: {}}, {type: RequestHeaderModifier}]
    timeouts: {request: 10s, backendRequest: 1m}
  listeners: [{name: http, protocol: HTTP, tls: {}}, {name: http, protocol: HTTPS}]`,
			want: []string{
				"spec.listeners: Invalid value: Listener name must be unique within the Gateway",
				"spec.listeners: Invalid value: tls must not be specified for protocols ['HTTP', 'TCP', 'UDP']",
				"spec.parentRefs: Invalid value: sectionName or port must be specified when parentRefs includes 2 or more references to the same parent",
				"spec.rules[0].filters[0]: Invalid value: filter.requestHeaderModifier must be nil if the filter.type is not RequestHeaderModifier",
				"spec.rules[0].filters[1]: Invalid value: filter.requestHeaderModifier must be specified for RequestHeaderModifier filter.type",
				"spec.rules[0].matches[0].path: Invalid value: must not contain '//' when type one of ['Exact', 'PathPrefix']",
				"spec.rules[0].matches[0].path: Invalid value: value must be an absolute path and start with '/' when type one of ['Exact', 'PathPrefix']",
				"spec.rules[0].timeouts: Invalid value: backendRequest timeout cannot be longer than request timeout",
			},
		},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			got := messages(v.Validate(objectOf(t, tc.obj), nil))
			want := tc.want
			if want == nil {
				want = []string{}
			}
			if diff := cmp.Diff(want, got); diff != "" {
				t.Errorf("errors (-want +got):\n%s", diff)
			}
		})
	}
}

func TestEscape(t *testing.T) {
	tests := []struct {
		in, want string
		ok       bool
	}{
		{"name", "name", true},
		{"namespace", "__namespace__", true},
		{"my-field", "my__dash__field", true},
		{"a.b/c", "a__dot__b__slash__c", true},
		{"a__b", "a__underscores__b", true},
		{"1a", "", false},
		{"a b", "", false},
	}
	for _, tc := range tests {
		t.Run(tc.in, func(t *testing.T) {
			got, ok := escape(tc.in)
			if got != tc.want || ok != tc.ok {
				t.Errorf("escape(%q) = %q, %v; want %q, %v", tc.in, got, ok, tc.want, tc.ok)
			}
		})
	}
}

func TestNilValidator(t *testing.T) {
	var v *Validator
	if errs := v.Validate(map[string]any{"a": 1}, nil); len(errs) != 0 {
		t.Errorf("nil Validator: %v", errs)
	}
	v, errs := Compile(nil)
	if len(errs) != 0 || len(v.Validate(map[string]any{}, nil)) != 0 {
		t.Errorf("no schema: %v", errs)
	}
}

// TestLibraryOnValues checks the library functions on values of self, which
// are dyn and so dispatched at runtime.
func TestLibraryOnValues(t *testing.T) {
	t.Parallel()
	tests := []struct {
		rule string
		want []string
	}{
		{rule: "self.tags.indexOf('b') == 1 && self.tags.lastIndexOf('a') == 2 && self.name.indexOf('c') == 2"},
		{rule: "self.nums.sum() == 6 && self.nums.min() == 1 && self.nums.max() == 3 && !self.nums.isSorted()"},
		{rule: "self.ratios.sum() == 1.5 && self.empty.sum() == 0"},
		{rule: "self.empty.min() == 0", want: []string{"<nil>: Invalid value: \"object\": min called on empty list evaluating rule: self.empty.min() == 0"}},
		{rule: "quantity(self.mem).isLessThan(quantity('1Gi')) && quantity(self.mem).compareTo(quantity('512Mi')) == 0 && quantity(self.mem).sign() == 1"},
		{rule: "isQuantity(self.name)", want: []string{"<nil>: Invalid value: failed rule: isQuantity(self.name)"}},
		{rule: "self.name.find('[b-c]+') == 'bc' && self.name.findAll('[a-z]', 2) == ['a', 'b']"},
		{rule: "self.name + self.nums[0] == 'x'", want: []string{"<nil>: Invalid value: \"object\": 'no such overload': call arguments did not match a supported operator, function or macro signature for rule: self.name + self.nums[0] == 'x'"}},
		{rule: "self.tags.all(i, t, i < 3 && t != '') && self.nums.map(n, n * 2) == [2, 6, 4] && self.tags.distinct() == ['a', 'b']"},
		{rule: "isIP(self.ip) && ip(self.ip).family() == 6 && !ip(self.ip).isLoopback() && ip.isCanonical(self.ip) && string(ip(self.ip)) == self.ip"},
		{rule: "!isIP('::ffff:1.2.3.4') && !isIP('fe80::1%eth0') && !isIP('01.2.3.4') && ip('127.0.0.1').isLoopback() && !ip.isCanonical('2001:DB8::1')"},
		{rule: "isCIDR(self.net) && cidr(self.net).containsIP('10.1.2.3') && cidr(self.net).containsCIDR(cidr('10.1.0.0/16')) && !cidr(self.net).containsCIDR('0.0.0.0/0') && cidr('10.1.2.3/8').masked() == cidr(self.net) && cidr(self.net).prefixLength() == 8"},
		{rule: "ip(self.name) == ip('::1')", want: []string{"<nil>: Invalid value: \"object\": IP Address \"abc\" parse error during conversion from string: ParseAddr(\"abc\"): unable to parse IP evaluating rule: ip(self.name) == ip('::1')"}},
		{rule: "isURL(self.url) && !isURL('../x') && url(self.url).getScheme() == 'https' && url(self.url).getHost() == '[::1]:80' && url(self.url).getHostname() == '::1' && url(self.url).getPort() == '80' && url(self.url).getEscapedPath() == '/a%20b' && url(self.url).getQuery() == {'k': ['a', 'b']}"},
		{rule: "!format.named('dns1123Label').value().validate(self.name).hasValue() && format.dns1123Label().validate('A_b').hasValue() && !format.named('nope').hasValue() && format.named('uri').value().validate(self.url) == optional.none()"},
		{rule: "format.dns1035Label().validate('1a').value()[0].startsWith('a DNS-1035 label must consist')"},
		{rule: "self.name.upperAscii() == 'ABC' && self.name.split('b') == ['a', 'c'] && 'x,y'.split(',').join('-') == 'x-y'"},
	}
	for _, tc := range tests {
		t.Run(tc.rule, func(t *testing.T) {
			s := schemaOf(t, `
type: object
properties:
  tags: {type: array, items: {type: string}}
  nums: {type: array, items: {type: integer}}
  ratios: {type: array, items: {type: number}}
  empty: {type: array, items: {type: integer}}
  name: {type: string}
  mem: {type: string}
  ip: {type: string}
  net: {type: string}
  url: {type: string}
`)
			s.XValidations = apiextensionsv1.ValidationRules{{Rule: tc.rule}}
			v, errs := Compile(s)
			if len(errs) > 0 || len(v.Skipped()) > 0 {
				t.Fatalf("Compile: %v %v", errs, v.Skipped())
			}
			obj := objectOf(t, `{tags: [a, b, a], nums: [1, 3, 2], ratios: [1, 0.5], empty: [], name: abc, mem: 512Mi, ip: "2001:db8::1", net: 10.0.0.0/8, url: "https://[::1]:80/a b?k=a&k=b#f"}`)
			got := messages(v.Validate(obj, nil))
			want := tc.want
			if want == nil {
				want = []string{}
			}
			if diff := cmp.Diff(want, got); diff != "" {
				t.Errorf("errors (-want +got):\n%s", diff)
			}
		})
	}
}

func TestOptionalOldSelf(t *testing.T) {
	t.Parallel()
	v := mustCompile(t, `
type: object
properties:
  size:
    type: integer
    x-kubernetes-validations:
    - rule: "oldSelf.hasValue() ? self >= oldSelf.value() : self <= 10"
      optionalOldSelf: true
      message: "size starts at most 10 and never shrinks"
`)
	tests := []struct {
		name, obj, old string
		want           []string
	}{
		{name: "create valid", obj: `{size: 5}`},
		{name: "create invalid", obj: `{size: 11}`, want: []string{"size: Invalid value: 11: size starts at most 10 and never shrinks"}},
		{name: "update grows", obj: `{size: 20}`, old: `{size: 5}`},
		{name: "update shrinks", obj: `{size: 4}`, old: `{size: 5}`, want: []string{"size: Invalid value: 4: size starts at most 10 and never shrinks"}},
		{name: "update sets it", obj: `{size: 12}`, old: `{}`, want: []string{"size: Invalid value: 12: size starts at most 10 and never shrinks"}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			got := messages(v.Validate(objectOf(t, tc.obj), objectOf(t, tc.old)))
			want := tc.want
			if want == nil {
				want = []string{}
			}
			if diff := cmp.Diff(want, got); diff != "" {
				t.Errorf("errors (-want +got):\n%s", diff)
			}
		})
	}
}

func TestValidateConcurrent(t *testing.T) {
	t.Parallel()
	v := mustCompile(t, specSchema)
	obj := objectOf(t, `spec: {minReplicas: 3, maxReplicas: 2, image: registry.example/a, tags: [b, main], items: [{name: bad, weight: 1}]}`)
	want := messages(v.Validate(obj, nil))
	done := make(chan []string)
	for range 4 {
		go func() { done <- messages(v.Validate(obj, obj)) }()
		go func() { done <- messages(v.Validate(obj, nil)) }()
	}
	for i := 0; i < 8; i++ {
		got := <-done
		if len(got) != 0 && !cmp.Equal(want, got) {
			t.Errorf("concurrent Validate (-want +got):\n%s", cmp.Diff(want, got))
		}
	}
}

func TestSetAndMapLists(t *testing.T) {
	t.Parallel()
	v := mustCompile(t, `
type: object
properties:
  spec:
    type: object
    x-kubernetes-validations:
    - rule: "self == oldSelf"
      message: "spec is immutable"
    properties:
      tags:
        type: array
        x-kubernetes-list-type: set
        items: {type: string}
        x-kubernetes-validations:
        - rule: "self + ['z'] == ['z'] + self && size(self + self) == size(self) && size(self + ['z', 'z']) == size(self) + 1"
          message: "set lists join as sets"
      ports:
        type: array
        x-kubernetes-list-type: map
        x-kubernetes-list-map-keys: [port]
        items:
          type: object
          properties:
            port: {type: integer}
            name: {type: string}
        x-kubernetes-validations:
        - rule: "size(self + self) == size(self) && size(self + [{'port': 1}]) == size(self) + 1 && (self + [{'port': 80}]).exists(p, p.port == 80 && !has(p.name))"
          message: "map lists join by key"
`)
	tests := []struct {
		name, obj, old string
		want           []string
	}{
		{
			name: "reordered set and map lists are unchanged",
			obj:  `spec: {tags: [b, a], ports: [{port: 80, name: http}, {port: 443, name: https}]}`,
			old:  `spec: {tags: [a, b], ports: [{port: 443, name: https}, {port: 80, name: http}]}`,
		},
		{
			name: "changed map list item",
			obj:  `spec: {tags: [b, a], ports: [{port: 80, name: http}, {port: 443, name: tls}]}`,
			old:  `spec: {tags: [a, b], ports: [{port: 443, name: https}, {port: 80, name: http}]}`,
			want: []string{"spec: Invalid value: spec is immutable"},
		},
		{
			name: "changed set",
			obj:  `spec: {tags: [c, a]}`,
			old:  `spec: {tags: [a, b]}`,
			want: []string{"spec: Invalid value: spec is immutable"},
		},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			got := messages(v.Validate(objectOf(t, tc.obj), objectOf(t, tc.old)))
			want := tc.want
			if want == nil {
				want = []string{}
			}
			if diff := cmp.Diff(want, got); diff != "" {
				t.Errorf("errors (-want +got):\n%s", diff)
			}
		})
	}
}
