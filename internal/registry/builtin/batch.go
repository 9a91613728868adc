package builtin

import (
	"fmt"
	"strings"
	"time"

	batchv1 "k8s.io/api/batch/v1"
	corev1 "k8s.io/api/core/v1"
	apiequality "k8s.io/apimachinery/pkg/api/equality"
	apivalidation "k8s.io/apimachinery/pkg/api/validation"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/util/duration"
	"k8s.io/apimachinery/pkg/util/validation/field"
	"k8s.io/utils/ptr"

	"github.com/skiff-dev/skiff/internal/registry"
)

// Labels the job controller selects its pods by (upstream's
// batch.kubernetes.io/controller-uid and friends, plus the legacy keys).
const (
	jobControllerUIDLabel       = "batch.kubernetes.io/controller-uid"
	jobLegacyControllerUIDLabel = "controller-uid"
	jobNameLabel                = "batch.kubernetes.io/job-name"
	jobLegacyNameLabel          = "job-name"
)

// cronJobNameMax is the longest CronJob name: the controller appends an
// 11-character suffix to make Job names, which must stay ≤ 63.
const cronJobNameMax = 52

// batchResources returns batch/v1: jobs and cronjobs.
func batchResources() []*registry.Resource {
	gv := batchv1.SchemeGroupVersion
	return []*registry.Resource{
		{
			GVR: gv.WithResource("jobs"), Kind: "Job", ListKind: "JobList",
			Singular: "job", Categories: []string{"all"},
			Namespaced: true, Status: true,
			Strategy: jobStrategy(),
		},
		{
			GVR: gv.WithResource("cronjobs"), Kind: "CronJob", ListKind: "CronJobList",
			Singular: "cronjob", ShortNames: []string{"cj"}, Categories: []string{"all"},
			Namespaced: true, Status: true,
			Strategy: cronJobStrategy(),
		},
	}
}

// --- Job ------------------------------------------------------------------

func jobStrategy() registry.Strategy {
	return registry.Define(registry.Typed[*batchv1.Job, *batchv1.JobList]{
		New:     func() *batchv1.Job { return &batchv1.Job{} },
		NewList: func() *batchv1.JobList { return &batchv1.JobList{} },
		PrepareForCreate: func(j *batchv1.Job) {
			j.Status = batchv1.JobStatus{}
			generateJobSelector(j)
		},
		Default: defaultJob,
		Validate: func(j *batchv1.Job) field.ErrorList {
			allErrs := validateGeneratedJobSelector(j)
			return append(allErrs, validateJobSpec(&j.Spec, field.NewPath("spec"), true)...)
		},
		ValidateUpdate: func(j, old *batchv1.Job) field.ErrorList {
			allErrs := validateJobSpec(&j.Spec, field.NewPath("spec"), true)
			return append(allErrs, validateJobSpecUpdate(&j.Spec, &old.Spec, field.NewPath("spec"))...)
		},
		ValidateStatusUpdate: func(j, _ *batchv1.Job) field.ErrorList {
			st, fldPath := &j.Status, field.NewPath("status")
			var allErrs field.ErrorList
			allErrs = append(allErrs, apivalidation.ValidateNonnegativeField(int64(st.Active), fldPath.Child("active"))...)
			allErrs = append(allErrs, apivalidation.ValidateNonnegativeField(int64(st.Succeeded), fldPath.Child("succeeded"))...)
			allErrs = append(allErrs, apivalidation.ValidateNonnegativeField(int64(st.Failed), fldPath.Child("failed"))...)
			allErrs = append(allErrs, validateNonNegative32(st.Ready, fldPath.Child("ready"))...)
			allErrs = append(allErrs, validateNonNegative32(st.Terminating, fldPath.Child("terminating"))...)
			return allErrs
		},
		Fields: map[string]func(*batchv1.Job) string{
			"status.successful": func(j *batchv1.Job) string { return fmt.Sprint(j.Status.Succeeded) },
		},
		Table: &registry.TypedTable[*batchv1.Job]{
			Columns: append([]metav1.TableColumnDefinition{
				columnName(),
				columnString("Status", "Status of the job.", 0),
				columnString("Completions", batchv1.JobStatus{}.SwaggerDoc()["succeeded"], 0),
				columnString("Duration", "Time required to complete the job.", 0),
				columnAge(),
			}, columnsTemplate(batchv1.JobSpec{}.SwaggerDoc()["selector"])...),
			Row: func(j *batchv1.Job) []any {
				names, images := cellsTemplate(&j.Spec.Template.Spec)
				return []any{
					j.Name, jobStatusCell(j), jobCompletionsCell(j), jobDurationCell(j, time.Now()),
					cellAge(&j.ObjectMeta), names, images, cellSelector(j.Spec.Selector),
				}
			},
		},
	})
}

// generateJobSelector gives a Job without manualSelector the selector the
// job controller uses: template labels naming the job and its uid, and a
// selector on the uid. Upstream does this on create, after the uid is set.
func generateJobSelector(j *batchv1.Job) {
	if j.Spec.ManualSelector != nil && *j.Spec.ManualSelector {
		return
	}
	if j.Spec.Template.Labels == nil {
		j.Spec.Template.Labels = map[string]string{}
	}
	uid := string(j.UID)
	if _, ok := j.Spec.Template.Labels[jobLegacyNameLabel]; !ok {
		j.Spec.Template.Labels[jobLegacyNameLabel] = j.Name
	}
	if _, ok := j.Spec.Template.Labels[jobNameLabel]; !ok {
		j.Spec.Template.Labels[jobNameLabel] = j.Name
	}
	j.Spec.Template.Labels[jobLegacyControllerUIDLabel] = uid
	j.Spec.Template.Labels[jobControllerUIDLabel] = uid
	if j.Spec.Selector == nil {
		j.Spec.Selector = &metav1.LabelSelector{}
	}
	if j.Spec.Selector.MatchLabels == nil {
		j.Spec.Selector.MatchLabels = map[string]string{}
	}
	j.Spec.Selector.MatchLabels[jobControllerUIDLabel] = uid
}

// validateGeneratedJobSelector checks, for a Job without manualSelector,
// that the generated selector and labels carry the job's uid.
func validateGeneratedJobSelector(j *batchv1.Job) field.ErrorList {
	if j.Spec.ManualSelector != nil && *j.Spec.ManualSelector {
		return nil
	}
	if j.Spec.Selector == nil || j.UID == "" {
		return nil
	}
	var allErrs field.ErrorList
	uid := string(j.UID)
	if got, ok := j.Spec.Selector.MatchLabels[jobControllerUIDLabel]; !ok || got != uid {
		allErrs = append(allErrs, field.Invalid(field.NewPath("spec", "selector"), j.Spec.Selector,
			"`selector` not auto-generated"))
	}
	if got := j.Spec.Template.Labels[jobControllerUIDLabel]; got != uid {
		allErrs = append(allErrs, field.Invalid(field.NewPath("spec", "template", "metadata", "labels").Key(jobControllerUIDLabel), got,
			fmt.Sprintf("must be '%s'", uid)))
	}
	return allErrs
}

// defaultJob applies batch/v1 SetDefaults_Job.
func defaultJob(j *batchv1.Job) {
	defaultJobSpec(&j.Spec)
	// Upstream copies the template labels to the job when it has none.
	if len(j.Labels) == 0 && len(j.Spec.Template.Labels) > 0 {
		j.Labels = make(map[string]string, len(j.Spec.Template.Labels))
		for k, v := range j.Spec.Template.Labels {
			j.Labels[k] = v
		}
	}
}

func defaultJobSpec(s *batchv1.JobSpec) {
	// A non-parallel job may leave both unset: both become 1.
	if s.Completions == nil && s.Parallelism == nil {
		s.Completions = ptr.To[int32](1)
		s.Parallelism = ptr.To[int32](1)
	}
	if s.Parallelism == nil {
		s.Parallelism = ptr.To[int32](1)
	}
	if s.BackoffLimit == nil {
		if s.BackoffLimitPerIndex != nil {
			s.BackoffLimit = ptr.To[int32](1<<31 - 1)
		} else {
			s.BackoffLimit = ptr.To[int32](6)
		}
	}
	if s.CompletionMode == nil {
		s.CompletionMode = ptr.To(batchv1.NonIndexedCompletion)
	}
	if s.Suspend == nil {
		s.Suspend = ptr.To(false)
	}
	if s.ManualSelector == nil {
		s.ManualSelector = ptr.To(false)
	}
	if s.PodFailurePolicy != nil {
		for i := range s.PodFailurePolicy.Rules {
			for j := range s.PodFailurePolicy.Rules[i].OnPodConditions {
				c := &s.PodFailurePolicy.Rules[i].OnPodConditions[j]
				if c.Status == "" {
					c.Status = corev1.ConditionTrue
				}
			}
		}
	}
	if s.PodReplacementPolicy == nil {
		if s.PodFailurePolicy != nil {
			s.PodReplacementPolicy = ptr.To(batchv1.Failed)
		} else {
			s.PodReplacementPolicy = ptr.To(batchv1.TerminatingOrFailed)
		}
	}
	defaultPodSpec(&s.Template.Spec)
}

// validateJobSpec validates a Job's spec; requireSelector is false for a
// CronJob's job template, whose selector the controller generates.
func validateJobSpec(spec *batchv1.JobSpec, fldPath *field.Path, requireSelector bool) field.ErrorList {
	var allErrs field.ErrorList
	allErrs = append(allErrs, validateNonNegative32(spec.Parallelism, fldPath.Child("parallelism"))...)
	allErrs = append(allErrs, validateNonNegative32(spec.Completions, fldPath.Child("completions"))...)
	if spec.ActiveDeadlineSeconds != nil {
		allErrs = append(allErrs, apivalidation.ValidateNonnegativeField(*spec.ActiveDeadlineSeconds, fldPath.Child("activeDeadlineSeconds"))...)
	}
	allErrs = append(allErrs, validateNonNegative32(spec.BackoffLimit, fldPath.Child("backoffLimit"))...)
	allErrs = append(allErrs, validateNonNegative32(spec.TTLSecondsAfterFinished, fldPath.Child("ttlSecondsAfterFinished"))...)
	if spec.CompletionMode != nil {
		switch *spec.CompletionMode {
		case batchv1.NonIndexedCompletion:
		case batchv1.IndexedCompletion:
			if spec.Completions == nil {
				allErrs = append(allErrs, field.Required(fldPath.Child("completions"), "when completion mode is Indexed"))
			}
			if spec.Parallelism != nil && *spec.Parallelism > 100000 {
				allErrs = append(allErrs, field.Invalid(fldPath.Child("parallelism"), *spec.Parallelism, "must be less than or equal to 100000 when completion mode is Indexed"))
			}
		default:
			allErrs = append(allErrs, field.NotSupported(fldPath.Child("completionMode"), *spec.CompletionMode,
				[]batchv1.CompletionMode{batchv1.NonIndexedCompletion, batchv1.IndexedCompletion}))
		}
	}
	if spec.PodReplacementPolicy != nil {
		switch *spec.PodReplacementPolicy {
		case batchv1.TerminatingOrFailed:
			if spec.PodFailurePolicy != nil {
				allErrs = append(allErrs, field.NotSupported(fldPath.Child("podReplacementPolicy"), *spec.PodReplacementPolicy,
					[]batchv1.PodReplacementPolicy{batchv1.Failed}))
			}
		case batchv1.Failed:
		default:
			allErrs = append(allErrs, field.NotSupported(fldPath.Child("podReplacementPolicy"), *spec.PodReplacementPolicy,
				[]batchv1.PodReplacementPolicy{batchv1.TerminatingOrFailed, batchv1.Failed}))
		}
	}
	if requireSelector {
		if spec.Selector == nil {
			allErrs = append(allErrs, field.Required(fldPath.Child("selector"), ""))
		} else {
			allErrs = append(allErrs, validateLabelSelector(spec.Selector, fldPath.Child("selector"))...)
			allErrs = append(allErrs, validateTemplateMatches(&spec.Template, spec.Selector, fldPath.Child("template"))...)
		}
	} else if spec.Selector != nil && (spec.ManualSelector == nil || !*spec.ManualSelector) {
		allErrs = append(allErrs, field.Invalid(fldPath.Child("selector"), spec.Selector, "`selector` will be auto-generated"))
	}
	allErrs = append(allErrs, validatePodTemplateSpec(&spec.Template, fldPath.Child("template"))...)
	if rp := spec.Template.Spec.RestartPolicy; rp != corev1.RestartPolicyOnFailure && rp != corev1.RestartPolicyNever {
		allErrs = append(allErrs, field.NotSupported(fldPath.Child("template", "spec", "restartPolicy"), rp,
			[]corev1.RestartPolicy{corev1.RestartPolicyOnFailure, corev1.RestartPolicyNever}))
	}
	return allErrs
}

// validateJobSpecUpdate enforces upstream's immutability rules: the
// selector, completionMode, podFailurePolicy and (while not suspended) the
// template may not change; completions only together with parallelism in
// Indexed mode.
func validateJobSpecUpdate(spec, old *batchv1.JobSpec, fldPath *field.Path) field.ErrorList {
	var allErrs field.ErrorList
	allErrs = append(allErrs, validateImmutable(spec.Selector, old.Selector, fldPath.Child("selector"))...)
	allErrs = append(allErrs, validateImmutable(spec.CompletionMode, old.CompletionMode, fldPath.Child("completionMode"))...)
	allErrs = append(allErrs, validateImmutable(spec.PodFailurePolicy, old.PodFailurePolicy, fldPath.Child("podFailurePolicy"))...)
	allErrs = append(allErrs, validateImmutable(spec.ManualSelector, old.ManualSelector, fldPath.Child("manualSelector"))...)
	indexedScaling := spec.CompletionMode != nil && *spec.CompletionMode == batchv1.IndexedCompletion &&
		spec.Completions != nil && spec.Parallelism != nil && *spec.Completions == *spec.Parallelism
	if !indexedScaling {
		allErrs = append(allErrs, validateImmutable(spec.Completions, old.Completions, fldPath.Child("completions"))...)
	}
	// The template may change only while the job is (or stays) suspended,
	// and then only its scheduling directives; we allow any change while
	// suspended, as a simplification.
	suspended := old.Suspend != nil && *old.Suspend
	if !suspended && !apiequality.Semantic.DeepEqual(spec.Template, old.Template) {
		allErrs = append(allErrs, field.Invalid(fldPath.Child("template"), spec.Template, "field is immutable"))
	}
	return allErrs
}

func jobHasCondition(j *batchv1.Job, t batchv1.JobConditionType) bool {
	for _, c := range j.Status.Conditions {
		if c.Type == t && c.Status == corev1.ConditionTrue {
			return true
		}
	}
	return false
}

// jobStatusCell is the STATUS column of kubectl get jobs.
func jobStatusCell(j *batchv1.Job) string {
	switch {
	case jobHasCondition(j, batchv1.JobComplete):
		return "Complete"
	case jobHasCondition(j, batchv1.JobFailed):
		return "Failed"
	case j.DeletionTimestamp != nil:
		return "Terminating"
	case jobHasCondition(j, batchv1.JobSuspended):
		return "Suspended"
	case jobHasCondition(j, batchv1.JobFailureTarget):
		return "FailureTarget"
	case jobHasCondition(j, batchv1.JobSuccessCriteriaMet):
		return "SuccessCriteriaMet"
	default:
		return "Running"
	}
}

// jobCompletionsCell is the COMPLETIONS column ("1/3", "2/1 of 4").
func jobCompletionsCell(j *batchv1.Job) string {
	if j.Spec.Completions != nil {
		return fmt.Sprintf("%d/%d", j.Status.Succeeded, *j.Spec.Completions)
	}
	var parallelism int32
	if j.Spec.Parallelism != nil {
		parallelism = *j.Spec.Parallelism
	}
	if parallelism > 1 {
		return fmt.Sprintf("%d/1 of %d", j.Status.Succeeded, parallelism)
	}
	return fmt.Sprintf("%d/1", j.Status.Succeeded)
}

// jobDurationCell is the DURATION column: from start to completion, or to
// now while running; empty before the job starts.
func jobDurationCell(j *batchv1.Job, now time.Time) string {
	switch {
	case j.Status.StartTime == nil:
		return ""
	case j.Status.CompletionTime == nil:
		return duration.HumanDuration(now.Sub(j.Status.StartTime.Time))
	default:
		return duration.HumanDuration(j.Status.CompletionTime.Sub(j.Status.StartTime.Time))
	}
}

// --- CronJob --------------------------------------------------------------

func cronJobStrategy() registry.Strategy {
	return registry.Define(registry.Typed[*batchv1.CronJob, *batchv1.CronJobList]{
		New:     func() *batchv1.CronJob { return &batchv1.CronJob{} },
		NewList: func() *batchv1.CronJobList { return &batchv1.CronJobList{} },
		PrepareForCreate: func(cj *batchv1.CronJob) {
			cj.Status = batchv1.CronJobStatus{}
		},
		Default:  defaultCronJob,
		Validate: validateCronJob,
		ValidateUpdate: func(cj, _ *batchv1.CronJob) field.ErrorList {
			return validateCronJobSpec(&cj.Spec, field.NewPath("spec"))
		},
		Table: &registry.TypedTable[*batchv1.CronJob]{
			Columns: append([]metav1.TableColumnDefinition{
				columnName(),
				columnString("Schedule", batchv1.CronJobSpec{}.SwaggerDoc()["schedule"], 0),
				columnString("Timezone", batchv1.CronJobSpec{}.SwaggerDoc()["timeZone"], 0),
				{Name: "Suspend", Type: "boolean", Description: batchv1.CronJobSpec{}.SwaggerDoc()["suspend"]},
				columnInt("Active", batchv1.CronJobStatus{}.SwaggerDoc()["active"], 0),
				columnString("Last Schedule", batchv1.CronJobStatus{}.SwaggerDoc()["lastScheduleTime"], 0),
				columnAge(),
			}, columnsTemplate(batchv1.JobSpec{}.SwaggerDoc()["selector"])...),
			Row: func(cj *batchv1.CronJob) []any {
				names, images := cellsTemplate(&cj.Spec.JobTemplate.Spec.Template.Spec)
				tz := "<none>"
				if cj.Spec.TimeZone != nil {
					tz = *cj.Spec.TimeZone
				}
				last := "<none>"
				if cj.Status.LastScheduleTime != nil {
					last = cellSince(cj.Status.LastScheduleTime)
				}
				return []any{
					cj.Name, cj.Spec.Schedule, tz, boolCell(cj.Spec.Suspend), int64(len(cj.Status.Active)), last,
					cellAge(&cj.ObjectMeta), names, images, cellSelector(cj.Spec.JobTemplate.Spec.Selector),
				}
			},
		},
	})
}

// defaultCronJob applies batch/v1 SetDefaults_CronJob and the pod defaults
// of its job template.
func defaultCronJob(cj *batchv1.CronJob) {
	if cj.Spec.ConcurrencyPolicy == "" {
		cj.Spec.ConcurrencyPolicy = batchv1.AllowConcurrent
	}
	if cj.Spec.Suspend == nil {
		cj.Spec.Suspend = ptr.To(false)
	}
	if cj.Spec.SuccessfulJobsHistoryLimit == nil {
		cj.Spec.SuccessfulJobsHistoryLimit = ptr.To[int32](3)
	}
	if cj.Spec.FailedJobsHistoryLimit == nil {
		cj.Spec.FailedJobsHistoryLimit = ptr.To[int32](1)
	}
	defaultPodSpec(&cj.Spec.JobTemplate.Spec.Template.Spec)
}

func validateCronJob(cj *batchv1.CronJob) field.ErrorList {
	var allErrs field.ErrorList
	if len(cj.Name) > cronJobNameMax {
		allErrs = append(allErrs, field.Invalid(field.NewPath("metadata", "name"), cj.Name,
			fmt.Sprintf("must be no more than %d characters", cronJobNameMax)))
	}
	return append(allErrs, validateCronJobSpec(&cj.Spec, field.NewPath("spec"))...)
}

func validateCronJobSpec(spec *batchv1.CronJobSpec, fldPath *field.Path) field.ErrorList {
	var allErrs field.ErrorList
	if spec.Schedule == "" {
		allErrs = append(allErrs, field.Required(fldPath.Child("schedule"), ""))
	} else {
		if strings.Contains(spec.Schedule, "TZ") {
			allErrs = append(allErrs, field.Invalid(fldPath.Child("schedule"), spec.Schedule,
				"cannot use TZ or CRON_TZ in schedule, use timeZone field instead"))
		} else if err := parseCronSchedule(spec.Schedule); err != nil {
			allErrs = append(allErrs, field.Invalid(fldPath.Child("schedule"), spec.Schedule, err.Error()))
		}
	}
	if spec.TimeZone != nil {
		tz := *spec.TimeZone
		if tz == "" || strings.EqualFold(tz, "local") {
			allErrs = append(allErrs, field.Invalid(fldPath.Child("timeZone"), tz, "unknown time zone "+tz))
		} else if _, err := time.LoadLocation(tz); err != nil {
			allErrs = append(allErrs, field.Invalid(fldPath.Child("timeZone"), tz, err.Error()))
		}
	}
	switch spec.ConcurrencyPolicy {
	case batchv1.AllowConcurrent, batchv1.ForbidConcurrent, batchv1.ReplaceConcurrent:
	case "":
		allErrs = append(allErrs, field.Required(fldPath.Child("concurrencyPolicy"), ""))
	default:
		allErrs = append(allErrs, field.NotSupported(fldPath.Child("concurrencyPolicy"), spec.ConcurrencyPolicy,
			[]batchv1.ConcurrencyPolicy{batchv1.AllowConcurrent, batchv1.ForbidConcurrent, batchv1.ReplaceConcurrent}))
	}
	if spec.StartingDeadlineSeconds != nil {
		allErrs = append(allErrs, apivalidation.ValidateNonnegativeField(*spec.StartingDeadlineSeconds, fldPath.Child("startingDeadlineSeconds"))...)
	}
	allErrs = append(allErrs, validateNonNegative32(spec.SuccessfulJobsHistoryLimit, fldPath.Child("successfulJobsHistoryLimit"))...)
	allErrs = append(allErrs, validateNonNegative32(spec.FailedJobsHistoryLimit, fldPath.Child("failedJobsHistoryLimit"))...)
	allErrs = append(allErrs, validateJobSpec(&spec.JobTemplate.Spec, fldPath.Child("jobTemplate", "spec"), false)...)
	return allErrs
}
