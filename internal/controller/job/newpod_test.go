package job

import (
	"testing"

	batchv1 "k8s.io/api/batch/v1"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
)

// TestNewPodCompletionIndexEnv: an Indexed Job's containers (init ones
// too) read their index from JOB_COMPLETION_INDEX, unless they set it
// themselves; a NonIndexed Job's pods do not get it.
func TestNewPodCompletionIndexEnv(t *testing.T) {
	job := &batchv1.Job{
		ObjectMeta: metav1.ObjectMeta{Name: "j", Namespace: "ns"},
		Spec: batchv1.JobSpec{Template: corev1.PodTemplateSpec{Spec: corev1.PodSpec{
			InitContainers: []corev1.Container{{Name: "init"}},
			Containers: []corev1.Container{
				{Name: "main"},
				{Name: "own", Env: []corev1.EnvVar{{Name: "JOB_COMPLETION_INDEX", Value: "mine"}}},
			},
		}}},
	}
	pod := newPod(job, 3)
	want := "metadata.annotations['batch.kubernetes.io/job-completion-index']"
	for _, c := range append(pod.Spec.InitContainers, pod.Spec.Containers[0]) {
		if len(c.Env) != 1 || c.Env[0].Name != "JOB_COMPLETION_INDEX" || c.Env[0].ValueFrom == nil ||
			c.Env[0].ValueFrom.FieldRef == nil || c.Env[0].ValueFrom.FieldRef.FieldPath != want {
			t.Errorf("container %s env %+v, want JOB_COMPLETION_INDEX from %s", c.Name, c.Env, want)
		}
	}
	if own := pod.Spec.Containers[1].Env; len(own) != 1 || own[0].Value != "mine" {
		t.Errorf("container own env %+v, want its own value kept", own)
	}
	if pod.Annotations[batchv1.JobCompletionIndexAnnotation] != "3" || pod.Spec.Hostname != "j-3" {
		t.Errorf("annotations %v hostname %q", pod.Annotations, pod.Spec.Hostname)
	}
	if len(job.Spec.Template.Spec.Containers[0].Env) != 0 {
		t.Error("newPod changed the job's template")
	}
	if env := newPod(job, noIndex).Spec.Containers[0].Env; len(env) != 0 {
		t.Errorf("NonIndexed pod env %+v, want none", env)
	}
}
