package openapi

import (
	"strings"
	"testing"

	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/util/managedfields"

	"github.com/skiff-dev/skiff/internal/registry/builtin"
)

// TestSchemasTypeConverter checks that Schemas feeds server-side apply's
// type converter: objects of served kinds convert to typed values whose
// field sets key list items by their merge keys.
func TestSchemasTypeConverter(t *testing.T) {
	t.Parallel()
	schemas, err := Schemas(testResources())
	if err != nil {
		t.Fatalf("Schemas: %v", err)
	}
	tc, err := managedfields.NewTypeConverter(schemas, false)
	if err != nil {
		t.Fatalf("NewTypeConverter: %v", err)
	}
	replicas := int32(2)
	for _, tt := range []struct {
		name string
		obj  runtime.Object
		want []string
	}{
		{
			name: "deployment",
			obj: &appsv1.Deployment{
				TypeMeta:   metav1.TypeMeta{APIVersion: "apps/v1", Kind: "Deployment"},
				ObjectMeta: metav1.ObjectMeta{Name: "d", Namespace: "default"},
				Spec: appsv1.DeploymentSpec{
					Replicas: &replicas,
					Template: corev1.PodTemplateSpec{Spec: corev1.PodSpec{
						Containers: []corev1.Container{{Name: "a", Image: "nginx"}},
					}},
				},
			},
			want: []string{`.spec.template.spec.containers[name="a"].image`, ".spec.replicas"},
		},
		{
			name: "pod",
			obj: &corev1.Pod{
				TypeMeta: metav1.TypeMeta{APIVersion: "v1", Kind: "Pod"},
				Spec: corev1.PodSpec{Containers: []corev1.Container{
					{Name: "a", Ports: []corev1.ContainerPort{{ContainerPort: 80, Protocol: corev1.ProtocolTCP}}},
				}},
			},
			want: []string{`.spec.containers[name="a"].ports[containerPort=80,protocol="TCP"].containerPort`},
		},
	} {
		t.Run(tt.name, func(t *testing.T) {
			typed, err := tc.ObjectToTyped(tt.obj)
			if err != nil {
				t.Fatalf("ObjectToTyped: %v", err)
			}
			set, err := typed.ToFieldSet()
			if err != nil {
				t.Fatalf("ToFieldSet: %v", err)
			}
			got := set.String()
			for _, w := range tt.want {
				if !strings.Contains(got, w) {
					t.Errorf("field set lacks %s:\n%s", w, got)
				}
			}
		})
	}
}

// Server-side apply of a CustomResourceDefinition (a recursive schema,
// JSONSchemaProps) converts to a field set.
func TestSchemasCustomResourceDefinition(t *testing.T) {
	t.Parallel()
	schemas, err := Schemas(builtin.Resources())
	if err != nil {
		t.Fatalf("Schemas: %v", err)
	}
	tc, err := managedfields.NewTypeConverter(schemas, false)
	if err != nil {
		t.Fatalf("NewTypeConverter: %v", err)
	}
	crd := decodeCRD(t, cronTabCRD)
	typed, err := tc.ObjectToTyped(crd)
	if err != nil {
		t.Fatalf("ObjectToTyped: %v", err)
	}
	set, err := typed.ToFieldSet()
	if err != nil {
		t.Fatalf("ToFieldSet: %v", err)
	}
	for _, want := range []string{".spec.names.plural", ".spec.versions"} {
		if !strings.Contains(set.String(), want) {
			t.Errorf("field set lacks %s:\n%s", want, set.String())
		}
	}
}
