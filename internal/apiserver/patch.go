package apiserver

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"mime"
	"net/http"
	"slices"
	"strings"

	jsonpatch "gopkg.in/evanphx/json-patch.v4"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	metavalidation "k8s.io/apimachinery/pkg/apis/meta/v1/validation"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/apimachinery/pkg/util/strategicpatch"

	"github.com/skiff-dev/skiff/internal/registry"
)

// patchType reads the patch type from Content-Type; server-side apply
// only when allowApply (else 415).
// Strategic merge patch only when allowSMP (custom resources take none).
func patchType(r *http.Request, allowSMP, allowApply bool) (types.PatchType, error) {
	mt, _, err := mime.ParseMediaType(r.Header.Get("Content-Type"))
	supported := []string{string(types.JSONPatchType), string(types.MergePatchType)}
	if allowSMP {
		supported = append(supported, string(types.StrategicMergePatchType))
	}
	if allowApply {
		supported = append(supported, string(types.ApplyYAMLPatchType))
	}
	if err == nil && slices.Contains(supported, mt) {
		return types.PatchType(mt), nil
	}
	return "", newStatus(http.StatusUnsupportedMediaType, metav1.StatusReasonUnsupportedMediaType,
		"the body of the request was in an unknown format - accepted media types include: "+strings.Join(supported, ", "))
}

// applyPatch applies a patch document to the JSON of the current object.
// dataStruct is a typed, empty object used for strategic merge metadata.
func applyPatch(pt types.PatchType, current, patch []byte, dataStruct any) ([]byte, error) {
	switch pt {
	case types.JSONPatchType:
		p, err := jsonpatch.DecodePatch(patch)
		if err != nil {
			return nil, apierrors.NewBadRequest(err.Error())
		}
		out, err := p.Apply(current)
		if err != nil {
			return nil, newStatus(http.StatusUnprocessableEntity, metav1.StatusReasonInvalid, err.Error())
		}
		return out, nil
	case types.MergePatchType:
		out, err := jsonpatch.MergePatch(current, patch)
		if err != nil {
			return nil, apierrors.NewBadRequest(err.Error())
		}
		return out, nil
	case types.StrategicMergePatchType:
		out, err := strategicpatch.StrategicMergePatch(current, patch, dataStruct)
		if err != nil {
			return nil, apierrors.NewBadRequest(err.Error())
		}
		return out, nil
	}
	return nil, fmt.Errorf("unsupported patch type %q", pt)
}

// patch handles PATCH on an object or its status: the patch is applied to
// the current object inside Store.Update, so a racing write re-applies it.
func (s *Server) patch(w http.ResponseWriter, r *http.Request, ri *requestInfo, st *registry.Store, sub registry.Subresource) {
	s.patchWith(w, r, ri, st, sub, patchHook{})
}

// patchHook adapts the generic patch to a subresource with rules of its
// own (certificatesigningrequests/approval). Both fields may be nil.
type patchHook struct {
	// ctx derives the context of the store update.
	ctx func(context.Context) context.Context
	// finish turns the patched object into the one to store, given the
	// current one; it validates what the subresource may change.
	finish func(current, patched runtime.Object) (runtime.Object, error)
}

func (s *Server) patchWith(w http.ResponseWriter, r *http.Request, ri *requestInfo, st *registry.Store, sub registry.Subresource, hook patchHook) {
	res := st.Resource
	fm := s.fieldManagersOf(st).forSub(sub)
	pt, err := patchType(r, !res.Unstructured, fm != nil)
	if err != nil {
		s.fail(w, r, err)
		return
	}
	var opts metav1.PatchOptions
	if err := s.decodeQuery(r, &opts); err != nil {
		s.fail(w, r, err)
		return
	}
	if err := invalidOptions("PatchOptions", metavalidation.ValidatePatchOptions(&opts, pt)); err != nil {
		s.fail(w, r, err)
		return
	}
	rd, err := s.newRender(r, res, viewsAllowed{}, false)
	if err != nil {
		s.fail(w, r, err)
		return
	}
	body, err := readBody(r)
	if err != nil {
		s.fail(w, r, err)
		return
	}
	if pt == types.ApplyYAMLPatchType {
		if hook.finish != nil {
			s.fail(w, r, apierrors.NewBadRequest(fmt.Sprintf("server-side apply is not supported on %s/%s", res.GVR.Resource, ri.subresource)))
			return
		}
		s.apply(w, r, ri, st, sub, fm, opts, rd, body)
		return
	}
	manager := managerName(r, opts.FieldManager)
	jsonInfo, _ := s.serializerFor(runtime.ContentTypeJSON)
	gvk := res.GroupVersionKind()
	var warnings []string
	fn := func(_ context.Context, current runtime.Object) (runtime.Object, error) {
		warnings = nil
		if current == nil {
			return nil, apierrors.NewNotFound(res.GroupResource(), ri.name)
		}
		cur, err := json.Marshal(withKind(current, gvk))
		if err != nil {
			return nil, fmt.Errorf("encoding current object: %w", err)
		}
		patched, err := applyPatch(pt, cur, body, res.Strategy.New())
		if err != nil {
			return nil, err
		}
		obj, warns, err := s.decodeWith(jsonInfo, patched, gvk, res.Strategy.New(), opts.FieldValidation)
		if err != nil {
			var se *apierrors.StatusError
			if errors.As(err, &se) && se.ErrStatus.Reason == metav1.StatusReasonBadRequest {
				// Upstream reports strict errors of a patch without the
				// "cannot be handled" prefix.
				if strict := strictMessage(jsonInfo, patched, gvk, res.Strategy.New()); strict != "" {
					return nil, apierrors.NewBadRequest(strict)
				}
			}
			return nil, err
		}
		if warns, err = pruneUnknown(res, obj, opts.FieldValidation, warns, fromPatch); err != nil {
			return nil, err
		}
		warnings = warns
		if err := checkName(obj, ri.name); err != nil {
			return nil, err
		}
		if err := ensureNamespace(obj, ri.namespace, res.Namespaced); err != nil {
			return nil, err
		}
		if hook.finish != nil {
			if obj, err = hook.finish(current, obj); err != nil {
				return nil, err
			}
		}
		return s.trackUpdate(fm, current, obj, manager, res), nil
	}
	uopts := metav1.UpdateOptions{DryRun: opts.DryRun, FieldManager: opts.FieldManager, FieldValidation: opts.FieldValidation}
	ctx := r.Context()
	if hook.ctx != nil {
		ctx = hook.ctx(ctx)
	}
	out, _, err := st.Update(ctx, ri.namespace, ri.name, sub, fn, uopts)
	if err != nil {
		s.fail(w, r, err)
		return
	}
	addWarnings(w, warnings)
	s.writeObject(w, http.StatusOK, rd, out)
}

// strictMessage returns the strict decoding error of data, if that is what
// is wrong with it.
func strictMessage(info runtime.SerializerInfo, data []byte, gvk schema.GroupVersionKind, into runtime.Object) string {
	if info.StrictSerializer == nil {
		return ""
	}
	_, _, err := info.StrictSerializer.Decode(data, &gvk, into)
	if err != nil && runtime.IsStrictDecodingError(err) {
		return err.Error()
	}
	return ""
}

func (s *Server) serializerFor(mediaType string) (runtime.SerializerInfo, bool) {
	for _, info := range s.codecs.SupportedMediaTypes() {
		if info.MediaType == mediaType {
			return info, true
		}
	}
	return runtime.SerializerInfo{}, false
}
