package schema

import "testing"

const benchObject = `
apiVersion: example.com/v1
kind: Widget
metadata: {name: w, namespace: default, uid: "1", labels: {a: b}, resourceVersion: "5"}
spec:
  replicas: 3
  color: red
  size: 2
  port: http
  image: nginx
  ratio: 1.5
  tags: [a, b, c]
  ports: [{port: 80, protocol: TCP}, {port: 443}]
  endpoints: [{host: a, port: 1}, {host: b, port: 2}]
  labels: {x: why}
  email: a@example.com
  template: {apiVersion: v1, kind: ConfigMap, metadata: {name: cm}, data: {a: b}}
  extra: {anything: [1, 2], known: {a: x}}
status: {ready: true}
`

// BenchmarkWrite is what a write of a custom resource costs: Prune, Default
// and Validate of a fresh object.
func BenchmarkWrite(b *testing.B) {
	v := mustValidator(b, widgetSchema)
	objs := make([]map[string]any, b.N)
	for i := range objs {
		objs[i] = objectOf(b, benchObject)
	}
	b.ReportAllocs()
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		obj := objs[i]
		v.Prune(obj)
		v.Default(obj)
		if errs := v.Validate(obj); len(errs) != 0 {
			b.Fatal(errs)
		}
	}
}

func BenchmarkValidate(b *testing.B) {
	v := mustValidator(b, widgetSchema)
	obj := objectOf(b, benchObject)
	b.ReportAllocs()
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		if errs := v.Validate(obj); len(errs) != 0 {
			b.Fatal(errs)
		}
	}
}

func BenchmarkPrune(b *testing.B) {
	v := mustValidator(b, widgetSchema)
	obj := objectOf(b, benchObject)
	b.ReportAllocs()
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		v.Prune(obj)
	}
}

func BenchmarkDefault(b *testing.B) {
	v := mustValidator(b, widgetSchema)
	obj := objectOf(b, benchObject)
	b.ReportAllocs()
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		v.Default(obj)
	}
}

// BenchmarkValidateUncached is Validate as upstream builds it (nested
// validators built on every call), for comparison with the cached fast path.
func BenchmarkValidateUncached(b *testing.B) {
	v := mustValidator(b, widgetSchema)
	obj := objectOf(b, benchObject)
	b.ReportAllocs()
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		if res := v.validator.Validate(obj); !res.IsValid() {
			b.Fatal(res.Errors)
		}
	}
}
