package admission

import (
	"errors"
	"testing"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/client-go/kubernetes/fake"
)

func gvr(group, resource string) schema.GroupVersionResource {
	v := "v1"
	return schema.GroupVersionResource{Group: group, Version: v, Resource: resource}
}

func podCreate(ns string, pod *corev1.Pod) *Request {
	return &Request{Operation: Create, Namespace: ns, Name: pod.Name, Resource: gvr("", "pods"), Object: pod}
}

func testPod(name string, containers ...corev1.Container) *corev1.Pod {
	if len(containers) == 0 {
		containers = []corev1.Container{{Name: "c", Image: "busybox"}}
	}
	return &corev1.Pod{
		ObjectMeta: metav1.ObjectMeta{Name: name, Namespace: "ns"},
		Spec:       corev1.PodSpec{Containers: containers},
	}
}

func newClient(objs ...runtime.Object) *fake.Clientset { return fake.NewClientset(objs...) }

// errText returns "" for nil and "<code> <message>" for a StatusError.
func errText(t *testing.T, err error) string {
	t.Helper()
	if err == nil {
		return ""
	}
	var se *apierrors.StatusError
	if !errors.As(err, &se) {
		return "non-status: " + err.Error()
	}
	return statusCode(se) + " " + se.ErrStatus.Message
}

func statusCode(se *apierrors.StatusError) string {
	switch se.ErrStatus.Code {
	case 403:
		return "403"
	case 404:
		return "404"
	case 422:
		return "422"
	case 500:
		return "500"
	}
	return "code?"
}

func ptr[T any](v T) *T { return &v }
