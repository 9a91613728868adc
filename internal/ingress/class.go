package ingress

import (
	"context"
	"fmt"

	networkingv1 "k8s.io/api/networking/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes"
)

const (
	// ControllerName is the spec.controller of the IngressClasses this
	// controller serves.
	ControllerName = "skiff.dev/ingress"
	// DefaultClassName is Config.ClassName when it is not given.
	DefaultClassName = "skiff"
	// DefaultClassAnnotation marks the cluster's default IngressClass.
	DefaultClassAnnotation = "ingressclass.kubernetes.io/is-default-class"
	// LegacyClassAnnotation is the deprecated per-ingress class annotation;
	// when present it takes precedence over spec.ingressClassName.
	LegacyClassAnnotation = "kubernetes.io/ingress.class"
)

// EnsureClass makes the IngressClass name exist with spec.controller
// ControllerName, marked as the default class or not. Idempotent: an
// existing class only gets its default annotation corrected (spec is
// immutable upstream and is left alone). Callers run it once at start,
// before or after the controller starts.
func EnsureClass(ctx context.Context, client kubernetes.Interface, name string, isDefault bool) error {
	want := "false"
	if isDefault {
		want = "true"
	}
	classes := client.NetworkingV1().IngressClasses()
	cls, err := classes.Get(ctx, name, metav1.GetOptions{})
	if apierrors.IsNotFound(err) {
		cls = &networkingv1.IngressClass{
			ObjectMeta: metav1.ObjectMeta{
				Name:        name,
				Annotations: map[string]string{DefaultClassAnnotation: want},
			},
			Spec: networkingv1.IngressClassSpec{Controller: ControllerName},
		}
		_, err = classes.Create(ctx, cls, metav1.CreateOptions{})
		if err == nil {
			return nil
		}
		if !apierrors.IsAlreadyExists(err) {
			return fmt.Errorf("creating ingress class %q: %w", name, err)
		}
		cls, err = classes.Get(ctx, name, metav1.GetOptions{})
	}
	if err != nil {
		return fmt.Errorf("getting ingress class %q: %w", name, err)
	}
	if cls.Annotations[DefaultClassAnnotation] == want {
		return nil
	}
	cls = cls.DeepCopy()
	if cls.Annotations == nil {
		cls.Annotations = map[string]string{}
	}
	cls.Annotations[DefaultClassAnnotation] = want
	if _, err := classes.Update(ctx, cls, metav1.UpdateOptions{}); err != nil {
		return fmt.Errorf("updating ingress class %q: %w", name, err)
	}
	return nil
}

// owns reports whether an ingress is served by the controller whose class
// is className, given the cluster's IngressClasses: by the legacy
// annotation when present; else by spec.ingressClassName naming
// className or a class whose controller is ControllerName; else (no class
// at all) when one of those classes is the default class.
func owns(ing *networkingv1.Ingress, classes []*networkingv1.IngressClass, className string) bool {
	if v, ok := ing.Annotations[LegacyClassAnnotation]; ok {
		return v == className
	}
	ours := func(cls *networkingv1.IngressClass) bool {
		return cls.Name == className || cls.Spec.Controller == ControllerName
	}
	if ing.Spec.IngressClassName != nil {
		name := *ing.Spec.IngressClassName
		if name == className {
			return true
		}
		for _, cls := range classes {
			if cls.Name == name {
				return ours(cls)
			}
		}
		return false
	}
	for _, cls := range classes {
		if cls.Annotations[DefaultClassAnnotation] == "true" && ours(cls) {
			return true
		}
	}
	return false
}
