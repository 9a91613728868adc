package job

import (
	"slices"
	"strconv"
	"strings"

	batchv1 "k8s.io/api/batch/v1"
	corev1 "k8s.io/api/core/v1"
)

// noIndex is the completion index of a pod without a valid one.
const noIndex = -1

// podIndex returns the completion index of an Indexed Job's pod from its
// batch.kubernetes.io/job-completion-index annotation (the label as a
// fallback), or noIndex when it has none or it does not parse.
func podIndex(p *corev1.Pod) int {
	v, ok := p.Annotations[batchv1.JobCompletionIndexAnnotation]
	if !ok {
		v, ok = p.Labels[batchv1.JobCompletionIndexAnnotation]
	}
	if !ok {
		return noIndex
	}
	i, err := strconv.Atoi(v)
	if err != nil || i < 0 {
		return noIndex
	}
	return i
}

// indexSet is a set of completion indexes.
type indexSet map[int]struct{}

// parseIndexes reads a compressed index list such as "1,3-5" (the format
// of status.completedIndexes). Malformed items and indexes at or above
// limit are dropped, as upstream does when completions shrink or the
// status was written by someone else.
func parseIndexes(s string, limit int) indexSet {
	set := indexSet{}
	if s == "" {
		return set
	}
	for _, item := range strings.Split(s, ",") {
		lo, hi, isRange := strings.Cut(item, "-")
		first, err := strconv.Atoi(lo)
		if err != nil || first < 0 {
			continue
		}
		last := first
		if isRange {
			if last, err = strconv.Atoi(hi); err != nil || last < first {
				continue
			}
		}
		for i := first; i <= last && i < limit; i++ {
			set[i] = struct{}{}
		}
	}
	return set
}

// String formats the set as sorted, comma-separated items where runs of
// consecutive indexes become "first-last": {1,3,4,5} is "1,3-5". Upstream
// writes a run of two as "first-last" too ({3,4} is "3-4").
func (s indexSet) String() string {
	idx := make([]int, 0, len(s))
	for i := range s {
		idx = append(idx, i)
	}
	slices.Sort(idx)
	var b strings.Builder
	for i := 0; i < len(idx); {
		j := i
		for j+1 < len(idx) && idx[j+1] == idx[j]+1 {
			j++
		}
		if b.Len() > 0 {
			b.WriteByte(',')
		}
		b.WriteString(strconv.Itoa(idx[i]))
		if j > i {
			b.WriteByte('-')
			b.WriteString(strconv.Itoa(idx[j]))
		}
		i = j + 1
	}
	return b.String()
}
