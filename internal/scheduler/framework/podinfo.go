package framework

import (
	"fmt"

	v1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/labels"
	"k8s.io/apimachinery/pkg/selection"
	"k8s.io/apimachinery/pkg/util/sets"
)

// PodInfo is a pod with what the plugins need precomputed once: its
// requests, its priority and its parsed (anti-)affinity terms. It is
// immutable once built.
type PodInfo struct {
	Pod *v1.Pod
	// Priority is the resolved priority (spec.priority, else the
	// PriorityClass's value, else 0).
	Priority int32
	// Requests is what the pod asks for; NonZeroRequests the same with
	// scoring defaults for cpu and memory.
	Requests        Resource
	NonZeroRequests Resource

	RequiredAffinityTerms      []AffinityTerm
	RequiredAntiAffinityTerms  []AffinityTerm
	PreferredAffinityTerms     []WeightedAffinityTerm
	PreferredAntiAffinityTerms []WeightedAffinityTerm
	// DefaultSpreadSelector selects the pods of the same services and
	// workloads (replica sets, stateful sets, replication controllers)
	// as this pod; PodTopologySpread spreads them by node and zone when
	// the pod has no constraints of its own. nil means none.
	DefaultSpreadSelector labels.Selector
	// ParseError is set when a term's selector does not parse; the pod is
	// then unschedulable (the API server validates selectors, so this
	// should not happen).
	ParseError error
}

// AffinityTerm is a parsed v1.PodAffinityTerm.
type AffinityTerm struct {
	// Namespaces lists the namespaces named by the term (the owning pod's
	// own namespace when neither namespaces nor namespaceSelector is set).
	Namespaces sets.Set[string]
	// NamespaceSelector is nil when the term has none; an empty selector
	// matches every namespace.
	NamespaceSelector labels.Selector
	Selector          labels.Selector
	TopologyKey       string
}

// WeightedAffinityTerm is a parsed v1.WeightedPodAffinityTerm.
type WeightedAffinityTerm struct {
	AffinityTerm
	Weight int32
}

// NamespaceLabels returns a namespace's labels (nil when unknown).
type NamespaceLabels func(namespace string) labels.Set

// Matches reports whether pod is selected by the term: its namespace is
// one of the term's, and its labels match the selector.
func (t *AffinityTerm) Matches(pod *v1.Pod, nsLabels NamespaceLabels) bool {
	if !t.Namespaces.Has(pod.Namespace) {
		if t.NamespaceSelector == nil {
			return false
		}
		if !t.NamespaceSelector.Empty() {
			var set labels.Set
			if nsLabels != nil {
				set = nsLabels(pod.Namespace)
			}
			if !t.NamespaceSelector.Matches(set) {
				return false
			}
		}
	}
	return t.Selector.Matches(labels.Set(pod.Labels))
}

// NewPodInfo parses pod. priority is its resolved priority.
func NewPodInfo(pod *v1.Pod, priority int32) *PodInfo {
	pi := &PodInfo{Pod: pod, Priority: priority}
	pi.Requests, pi.NonZeroRequests = PodRequests(pod)
	aff := pod.Spec.Affinity
	if aff == nil {
		return pi
	}
	var err error
	if pa := aff.PodAffinity; pa != nil {
		if pi.RequiredAffinityTerms, err = parseTerms(pod, pa.RequiredDuringSchedulingIgnoredDuringExecution); err != nil {
			pi.ParseError = err
		}
		if pi.PreferredAffinityTerms, err = parseWeighted(pod, pa.PreferredDuringSchedulingIgnoredDuringExecution); err != nil {
			pi.ParseError = err
		}
	}
	if pa := aff.PodAntiAffinity; pa != nil {
		if pi.RequiredAntiAffinityTerms, err = parseTerms(pod, pa.RequiredDuringSchedulingIgnoredDuringExecution); err != nil {
			pi.ParseError = err
		}
		if pi.PreferredAntiAffinityTerms, err = parseWeighted(pod, pa.PreferredDuringSchedulingIgnoredDuringExecution); err != nil {
			pi.ParseError = err
		}
	}
	return pi
}

// HasAffinity reports whether the pod has any pod (anti-)affinity term.
func (pi *PodInfo) HasAffinity() bool {
	return len(pi.RequiredAffinityTerms)+len(pi.RequiredAntiAffinityTerms)+
		len(pi.PreferredAffinityTerms)+len(pi.PreferredAntiAffinityTerms) > 0
}

func parseTerms(pod *v1.Pod, terms []v1.PodAffinityTerm) ([]AffinityTerm, error) {
	if len(terms) == 0 {
		return nil, nil
	}
	out := make([]AffinityTerm, 0, len(terms))
	for i := range terms {
		t, err := newAffinityTerm(pod, &terms[i])
		if err != nil {
			return nil, err
		}
		out = append(out, t)
	}
	return out, nil
}

func parseWeighted(pod *v1.Pod, terms []v1.WeightedPodAffinityTerm) ([]WeightedAffinityTerm, error) {
	if len(terms) == 0 {
		return nil, nil
	}
	out := make([]WeightedAffinityTerm, 0, len(terms))
	for i := range terms {
		t, err := newAffinityTerm(pod, &terms[i].PodAffinityTerm)
		if err != nil {
			return nil, err
		}
		out = append(out, WeightedAffinityTerm{AffinityTerm: t, Weight: terms[i].Weight})
	}
	return out, nil
}

func newAffinityTerm(pod *v1.Pod, term *v1.PodAffinityTerm) (AffinityTerm, error) {
	sel, err := metav1.LabelSelectorAsSelector(term.LabelSelector)
	if err != nil {
		return AffinityTerm{}, fmt.Errorf("parsing pod affinity label selector: %w", err)
	}
	// matchLabelKeys / mismatchLabelKeys take their values from the
	// incoming pod's own labels (keys it lacks are ignored).
	if term.LabelSelector != nil {
		for _, key := range term.MatchLabelKeys {
			if v, ok := pod.Labels[key]; ok {
				r, err := labels.NewRequirement(key, selection.In, []string{v})
				if err != nil {
					return AffinityTerm{}, fmt.Errorf("parsing matchLabelKeys: %w", err)
				}
				sel = sel.Add(*r)
			}
		}
		for _, key := range term.MismatchLabelKeys {
			if v, ok := pod.Labels[key]; ok {
				r, err := labels.NewRequirement(key, selection.NotIn, []string{v})
				if err != nil {
					return AffinityTerm{}, fmt.Errorf("parsing mismatchLabelKeys: %w", err)
				}
				sel = sel.Add(*r)
			}
		}
	}
	t := AffinityTerm{Selector: sel, TopologyKey: term.TopologyKey, Namespaces: sets.New(term.Namespaces...)}
	if term.NamespaceSelector != nil {
		ns, err := metav1.LabelSelectorAsSelector(term.NamespaceSelector)
		if err != nil {
			return AffinityTerm{}, fmt.Errorf("parsing pod affinity namespace selector: %w", err)
		}
		t.NamespaceSelector = ns
	}
	if len(term.Namespaces) == 0 && term.NamespaceSelector == nil {
		t.Namespaces.Insert(pod.Namespace)
	}
	return t, nil
}
