package builtin

import (
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	batchv1 "k8s.io/api/batch/v1"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/utils/ptr"
)

func testJob() *batchv1.Job {
	tmpl := testPodTemplate(nil)
	tmpl.Spec.RestartPolicy = corev1.RestartPolicyNever
	return &batchv1.Job{
		ObjectMeta: metav1.ObjectMeta{Name: "pi", Namespace: "default", UID: "1234-uid"},
		Spec:       batchv1.JobSpec{Template: tmpl},
	}
}

func TestJobCreate(t *testing.T) {
	r := groupResource(t, "batch", "jobs")
	j := testJob()
	if errs := create(t, r, j); len(errs) != 0 {
		t.Fatalf("valid job rejected: %v", errs)
	}
	wantLabels := map[string]string{
		"batch.kubernetes.io/controller-uid": "1234-uid",
		"batch.kubernetes.io/job-name":       "pi",
		"controller-uid":                     "1234-uid",
		"job-name":                           "pi",
	}
	if diff := cmp.Diff(wantLabels, j.Spec.Template.Labels); diff != "" {
		t.Errorf("template labels (-want +got):\n%s", diff)
	}
	if diff := cmp.Diff(wantLabels, j.Labels); diff != "" {
		t.Errorf("job labels (-want +got):\n%s", diff)
	}
	wantSel := &metav1.LabelSelector{MatchLabels: map[string]string{"batch.kubernetes.io/controller-uid": "1234-uid"}}
	if diff := cmp.Diff(wantSel, j.Spec.Selector); diff != "" {
		t.Errorf("selector (-want +got):\n%s", diff)
	}
	want := batchv1.JobSpec{
		Parallelism:          ptr.To[int32](1),
		Completions:          ptr.To[int32](1),
		BackoffLimit:         ptr.To[int32](6),
		CompletionMode:       ptr.To(batchv1.NonIndexedCompletion),
		Suspend:              ptr.To(false),
		ManualSelector:       ptr.To(false),
		PodReplacementPolicy: ptr.To(batchv1.TerminatingOrFailed),
	}
	got := j.Spec
	got.Selector, got.Template = nil, corev1.PodTemplateSpec{}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("defaults (-want +got):\n%s", diff)
	}
	checkDefaultIdempotent(t, r, j)
}

func TestJobDefaultsParallelOnly(t *testing.T) {
	r := groupResource(t, "batch", "jobs")
	j := testJob()
	j.Spec.Parallelism = ptr.To[int32](3)
	r.Strategy.Default(j)
	if j.Spec.Completions != nil {
		t.Errorf("completions defaulted to %d for a work-queue job", *j.Spec.Completions)
	}
}

func TestJobValidation(t *testing.T) {
	r := groupResource(t, "batch", "jobs")
	tests := []struct {
		name   string
		mutate func(j *batchv1.Job)
		want   []string
	}{
		{"valid", func(j *batchv1.Job) {}, []string{}},
		{"restartPolicy Always", func(j *batchv1.Job) { j.Spec.Template.Spec.RestartPolicy = corev1.RestartPolicyAlways },
			[]string{"FieldValueNotSupported spec.template.spec.restartPolicy"}},
		{"negative parallelism", func(j *batchv1.Job) { j.Spec.Parallelism = ptr.To[int32](-1) },
			[]string{"FieldValueInvalid spec.parallelism"}},
		{"negative backoffLimit", func(j *batchv1.Job) { j.Spec.BackoffLimit = ptr.To[int32](-2) },
			[]string{"FieldValueInvalid spec.backoffLimit"}},
		{"indexed without completions", func(j *batchv1.Job) {
			j.Spec.CompletionMode = ptr.To(batchv1.IndexedCompletion)
			j.Spec.Parallelism = ptr.To[int32](2)
		}, []string{"FieldValueRequired spec.completions"}},
		{"manual selector not matching", func(j *batchv1.Job) {
			j.Spec.ManualSelector = ptr.To(true)
			j.Spec.Selector = &metav1.LabelSelector{MatchLabels: map[string]string{"a": "b"}}
		}, []string{"FieldValueInvalid spec.template.metadata.labels"}},
		{"manual selector missing", func(j *batchv1.Job) { j.Spec.ManualSelector = ptr.To(true) },
			[]string{"FieldValueRequired spec.selector"}},
		{"bad completion mode", func(j *batchv1.Job) { j.Spec.CompletionMode = ptr.To(batchv1.CompletionMode("Sometimes")) },
			[]string{"FieldValueNotSupported spec.completionMode"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			j := testJob()
			tt.mutate(j)
			if diff := cmp.Diff(tt.want, errStrings(create(t, r, j))); diff != "" {
				t.Errorf("errors (-want +got):\n%s", diff)
			}
		})
	}
}

func TestJobUpdate(t *testing.T) {
	r := groupResource(t, "batch", "jobs")
	old := testJob()
	create(t, r, old)
	tests := []struct {
		name   string
		mutate func(j *batchv1.Job)
		want   []string
	}{
		{"parallelism may change", func(j *batchv1.Job) { j.Spec.Parallelism = ptr.To[int32](4) }, []string{}},
		{"selector immutable", func(j *batchv1.Job) {
			j.Spec.Selector = &metav1.LabelSelector{MatchLabels: map[string]string{"batch.kubernetes.io/controller-uid": "other"}}
		}, []string{"FieldValueInvalid spec.selector", "FieldValueInvalid spec.template.metadata.labels"}},
		{"completions immutable", func(j *batchv1.Job) { j.Spec.Completions = ptr.To[int32](5) },
			[]string{"FieldValueInvalid spec.completions"}},
		{"template immutable", func(j *batchv1.Job) { j.Spec.Template.Spec.Containers[0].Image = "busybox" },
			[]string{"FieldValueInvalid spec.template"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			j := old.DeepCopy()
			tt.mutate(j)
			if diff := cmp.Diff(tt.want, errStrings(update(t, r, j, old))); diff != "" {
				t.Errorf("errors (-want +got):\n%s", diff)
			}
		})
	}
}

func TestJobTable(t *testing.T) {
	r := groupResource(t, "batch", "jobs")
	start := metav1.NewTime(time.Now().Add(-90 * time.Second))
	done := metav1.NewTime(start.Add(30 * time.Second))
	tests := []struct {
		name   string
		mutate func(j *batchv1.Job)
		want   []any // STATUS, COMPLETIONS, DURATION
	}{
		{"new", func(j *batchv1.Job) {}, []any{"Running", "0/1", ""}},
		{"complete", func(j *batchv1.Job) {
			j.Status = batchv1.JobStatus{Succeeded: 1, StartTime: &start, CompletionTime: &done,
				Conditions: []batchv1.JobCondition{{Type: batchv1.JobComplete, Status: corev1.ConditionTrue}}}
		}, []any{"Complete", "1/1", "30s"}},
		{"failed", func(j *batchv1.Job) {
			j.Status.Conditions = []batchv1.JobCondition{{Type: batchv1.JobFailed, Status: corev1.ConditionTrue}}
		}, []any{"Failed", "0/1", ""}},
		{"suspended", func(j *batchv1.Job) {
			j.Status.Conditions = []batchv1.JobCondition{{Type: batchv1.JobSuspended, Status: corev1.ConditionTrue}}
		}, []any{"Suspended", "0/1", ""}},
		{"terminating", func(j *batchv1.Job) {
			now := metav1.Now()
			j.DeletionTimestamp = &now
		}, []any{"Terminating", "0/1", ""}},
		{"work queue", func(j *batchv1.Job) {
			j.Spec.Completions = nil
			j.Spec.Parallelism = ptr.To[int32](3)
			j.Status.Succeeded = 2
		}, []any{"Running", "2/1 of 3", ""}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			j := testJob()
			create(t, r, j)
			tt.mutate(j)
			row := r.Strategy.Table().Row(j)
			if diff := cmp.Diff(tt.want, row[1:4]); diff != "" {
				t.Errorf("cells (-want +got):\n%s", diff)
			}
		})
	}
}

func testCronJob() *batchv1.CronJob {
	tmpl := testPodTemplate(nil)
	tmpl.Spec.RestartPolicy = corev1.RestartPolicyOnFailure
	return &batchv1.CronJob{
		ObjectMeta: metav1.ObjectMeta{Name: "hello", Namespace: "default"},
		Spec: batchv1.CronJobSpec{
			Schedule:    "*/5 * * * *",
			JobTemplate: batchv1.JobTemplateSpec{Spec: batchv1.JobSpec{Template: tmpl}},
		},
	}
}

func TestCronJob(t *testing.T) {
	r := groupResource(t, "batch", "cronjobs")
	cj := testCronJob()
	if errs := create(t, r, cj); len(errs) != 0 {
		t.Fatalf("valid cronjob rejected: %v", errs)
	}
	if cj.Spec.ConcurrencyPolicy != batchv1.AllowConcurrent || !cmp.Equal(cj.Spec.Suspend, ptr.To(false)) ||
		*cj.Spec.SuccessfulJobsHistoryLimit != 3 || *cj.Spec.FailedJobsHistoryLimit != 1 {
		t.Errorf("defaults: %+v", cj.Spec)
	}
	checkDefaultIdempotent(t, r, testCronJob())

	tests := []struct {
		name   string
		mutate func(cj *batchv1.CronJob)
		want   []string
	}{
		{"missing schedule", func(cj *batchv1.CronJob) { cj.Spec.Schedule = "" }, []string{"FieldValueRequired spec.schedule"}},
		{"bad schedule", func(cj *batchv1.CronJob) { cj.Spec.Schedule = "61 * * * *" }, []string{"FieldValueInvalid spec.schedule"}},
		{"TZ in schedule", func(cj *batchv1.CronJob) { cj.Spec.Schedule = "TZ=UTC 0 * * * *" }, []string{"FieldValueInvalid spec.schedule"}},
		{"bad time zone", func(cj *batchv1.CronJob) { cj.Spec.TimeZone = ptr.To("Mars/Olympus") }, []string{"FieldValueInvalid spec.timeZone"}},
		{"bad policy", func(cj *batchv1.CronJob) { cj.Spec.ConcurrencyPolicy = "Sometimes" },
			[]string{"FieldValueNotSupported spec.concurrencyPolicy"}},
		{"long name", func(cj *batchv1.CronJob) { cj.Name = "a234567890123456789012345678901234567890123456789012x" },
			[]string{"FieldValueInvalid metadata.name"}},
		{"template restartPolicy", func(cj *batchv1.CronJob) {
			cj.Spec.JobTemplate.Spec.Template.Spec.RestartPolicy = corev1.RestartPolicyAlways
		}, []string{"FieldValueNotSupported spec.jobTemplate.spec.template.spec.restartPolicy"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			cj := testCronJob()
			tt.mutate(cj)
			if diff := cmp.Diff(tt.want, errStrings(create(t, r, cj))); diff != "" {
				t.Errorf("errors (-want +got):\n%s", diff)
			}
		})
	}

	row := r.Strategy.Table().Row(cj)
	if diff := cmp.Diff([]any{"hello", "*/5 * * * *", "<none>", "False", int64(0), "<none>"}, row[:6]); diff != "" {
		t.Errorf("row (-want +got):\n%s", diff)
	}
}

func TestParseCronSchedule(t *testing.T) {
	tests := []struct {
		spec    string
		wantErr string
	}{
		{"* * * * *", ""},
		{"*/15 0-6,18 1 jan-mar mon-fri", ""},
		{"0 0 ? * SUN", ""},
		{"5/10 * * * *", ""},
		{"@hourly", ""},
		{"@every 1h30m", ""},
		{"", "empty spec string"},
		{"* * * *", "expected exactly 5 fields, found 4: [* * * *]"},
		{"60 * * * *", "end of range (60) above maximum (59): 60"},
		{"* 24 * * *", "end of range (24) above maximum (23): 24"},
		{"* * 0 * *", "beginning of range (0) below minimum (1): 0"},
		{"* * * 13 *", "end of range (13) above maximum (12): 13"},
		{"* * * * 7", "end of range (7) above maximum (6): 7"},
		{"5-1 * * * *", "beginning of range (5) beyond end of range (1): 5-1"},
		{"*/0 * * * *", "step of range should be a positive number: */0"},
		{"x * * * *", `failed to parse int from x: strconv.Atoi: parsing "x": invalid syntax`},
		{"1-2-3 * * * *", "too many hyphens: 1-2-3"},
		{"@fortnightly", "unrecognized descriptor: @fortnightly"},
	}
	for _, tt := range tests {
		t.Run(tt.spec, func(t *testing.T) {
			err := parseCronSchedule(tt.spec)
			got := ""
			if err != nil {
				got = err.Error()
			}
			if got != tt.wantErr {
				t.Errorf("parseCronSchedule(%q) = %q, want %q", tt.spec, got, tt.wantErr)
			}
		})
	}
}
