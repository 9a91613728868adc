package crdcontroller

import (
	"errors"
	"fmt"
	"slices"

	apiextensionsv1 "k8s.io/apiextensions-apiserver/pkg/apis/apiextensions/v1"
	"k8s.io/apimachinery/pkg/util/sets"
)

// acceptNames decides which of crd's requested names (spec.names) it may
// hold, given the CRDs of its group (group; it may include crd itself, as
// upstream's naming controller counts it too). It returns the new
// status.acceptedNames, the NamesAccepted condition and the Established
// condition to write with them. Pure: it reads only its arguments.
//
// A name is accepted when it is already crd's or no CRD of the group holds
// it: plurals, singulars and short names share one namespace, kinds and list
// kinds another. A name that is taken keeps crd's previously accepted one
// and sets NamesAccepted=False with the reason of the last conflict found
// (upstream's order: plural, singular, short names, kind, list kind).
// Categories are always accepted.
func acceptNames(crd *apiextensionsv1.CustomResourceDefinition, group []*apiextensionsv1.CustomResourceDefinition) (
	apiextensionsv1.CustomResourceDefinitionNames, apiextensionsv1.CustomResourceDefinitionCondition, apiextensionsv1.CustomResourceDefinitionCondition) {
	resources, kinds := sets.New[string](), sets.New[string]()
	for _, other := range group {
		if other.Spec.Group != crd.Spec.Group {
			continue
		}
		n := other.Status.AcceptedNames
		resources.Insert(n.Plural, n.Singular)
		resources.Insert(n.ShortNames...)
		kinds.Insert(n.Kind, n.ListKind)
	}

	cond := apiextensionsv1.CustomResourceDefinitionCondition{
		Type:   apiextensionsv1.NamesAccepted,
		Status: apiextensionsv1.ConditionUnknown,
	}
	conflict := func(reason string, err error) {
		cond.Status = apiextensionsv1.ConditionFalse
		cond.Reason = reason
		cond.Message = err.Error()
	}
	requested, accepted := crd.Spec.Names, crd.Status.AcceptedNames
	names := *accepted.DeepCopy()

	if err := freeOrOwn(requested.Plural, accepted.Plural, resources); err != nil {
		conflict("PluralConflict", err)
	} else {
		names.Plural = requested.Plural
	}
	if err := freeOrOwn(requested.Singular, accepted.Singular, resources); err != nil {
		conflict("SingularConflict", err)
	} else {
		names.Singular = requested.Singular
	}
	if !slices.Equal(requested.ShortNames, accepted.ShortNames) {
		var errs []error
		for _, s := range requested.ShortNames {
			if slices.Contains(accepted.ShortNames, s) {
				continue
			}
			if err := freeOrOwn(s, "", resources); err != nil {
				errs = append(errs, err)
			}
		}
		if len(errs) > 0 {
			conflict("ShortNamesConflict", aggregate(errs))
		} else {
			names.ShortNames = slices.Clone(requested.ShortNames)
		}
	}
	if err := freeOrOwn(requested.Kind, accepted.Kind, kinds); err != nil {
		conflict("KindConflict", err)
	} else {
		names.Kind = requested.Kind
	}
	if err := freeOrOwn(requested.ListKind, accepted.ListKind, kinds); err != nil {
		conflict("ListKindConflict", err)
	} else {
		names.ListKind = requested.ListKind
	}
	names.Categories = slices.Clone(requested.Categories)

	if cond.Status == apiextensionsv1.ConditionUnknown {
		cond.Status = apiextensionsv1.ConditionTrue
		cond.Reason = "NoConflicts"
		cond.Message = "no conflicts found"
	}

	// Established stays False until the API server serves the names; the
	// establish step sets it True then.
	established := apiextensionsv1.CustomResourceDefinitionCondition{
		Type:    apiextensionsv1.Established,
		Status:  apiextensionsv1.ConditionFalse,
		Reason:  "NotAccepted",
		Message: "not all names are accepted",
	}
	if old := findCondition(crd, apiextensionsv1.Established); old != nil {
		established = *old
	}
	if established.Status != apiextensionsv1.ConditionTrue && cond.Status == apiextensionsv1.ConditionTrue {
		established = apiextensionsv1.CustomResourceDefinitionCondition{
			Type:    apiextensionsv1.Established,
			Status:  apiextensionsv1.ConditionFalse,
			Reason:  "Installing",
			Message: "the initial names have been accepted",
		}
	}
	return names, cond, established
}

// freeOrOwn returns an error unless requested is the accepted name or no
// one uses it.
func freeOrOwn(requested, accepted string, used sets.Set[string]) error {
	if requested == accepted || !used.Has(requested) {
		return nil
	}
	return fmt.Errorf("%q is already in use", requested)
}

// aggregate renders several errors as upstream's utilerrors aggregate
// does: one as itself, more as "[a, b]".
func aggregate(errs []error) error {
	if len(errs) == 1 {
		return errs[0]
	}
	msg := "["
	for i, err := range errs {
		if i > 0 {
			msg += ", "
		}
		msg += err.Error()
	}
	return errors.New(msg + "]")
}
