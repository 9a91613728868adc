package apiserver

import (
	"context"
	"fmt"
	"net/http"

	autoscalingv1 "k8s.io/api/autoscaling/v1"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	metavalidation "k8s.io/apimachinery/pkg/apis/meta/v1/validation"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/util/validation/field"

	"github.com/skiff-dev/skiff/internal/registry"
)

var scaleGVK = autoscalingv1.SchemeGroupVersion.WithKind("Scale")

// toScale builds the autoscaling/v1 Scale view of obj.
func toScale(res *registry.Resource, obj runtime.Object) (*autoscalingv1.Scale, error) {
	m, err := meta.Accessor(obj)
	if err != nil {
		return nil, fmt.Errorf("reading metadata: %w", err)
	}
	spec, status, selector := res.Scale.Get(obj)
	return &autoscalingv1.Scale{
		TypeMeta: metav1.TypeMeta{APIVersion: scaleGVK.GroupVersion().String(), Kind: scaleGVK.Kind},
		ObjectMeta: metav1.ObjectMeta{
			Name:              m.GetName(),
			Namespace:         m.GetNamespace(),
			UID:               m.GetUID(),
			ResourceVersion:   m.GetResourceVersion(),
			CreationTimestamp: m.GetCreationTimestamp(),
		},
		Spec:   autoscalingv1.ScaleSpec{Replicas: spec},
		Status: autoscalingv1.ScaleStatus{Replicas: status, Selector: selector},
	}, nil
}

// writeScale writes a Scale as JSON, YAML or protobuf.
func (s *Server) writeScale(w http.ResponseWriter, r *http.Request, code int, sc *autoscalingv1.Scale) {
	f, err := s.negotiateOutput(r, viewsAllowed{}, false)
	if err != nil {
		s.fail(w, r, err)
		return
	}
	w.Header().Set("Content-Type", f.info.MediaType)
	w.Header().Set("X-Content-Type-Options", "nosniff")
	w.WriteHeader(code)
	if err := f.info.Serializer.Encode(sc, w); err != nil {
		s.log.Debug("encoding response failed", "err", err)
	}
}

func (s *Server) getScale(w http.ResponseWriter, r *http.Request, ri *requestInfo, st *registry.Store) {
	obj, err := st.Get(r.Context(), ri.namespace, ri.name)
	if err != nil {
		s.fail(w, r, err)
		return
	}
	sc, err := toScale(st.Resource, obj)
	if err != nil {
		s.fail(w, r, err)
		return
	}
	s.writeScale(w, r, http.StatusOK, sc)
}

func validateScale(sc *autoscalingv1.Scale) error {
	if sc.Spec.Replicas < 0 {
		return apierrors.NewInvalid(scaleGVK.GroupKind(), sc.Name, field.ErrorList{
			field.Invalid(field.NewPath("spec", "replicas"), sc.Spec.Replicas, "must be greater than or equal to 0"),
		})
	}
	return nil
}

// scaleUpdate returns the Store.Update function that applies a desired
// Scale (computed from the current one by desired) to the object.
func scaleUpdate(res *registry.Resource, name string, desired func(current *autoscalingv1.Scale) (*autoscalingv1.Scale, error)) registry.UpdateFunc {
	return func(_ context.Context, current runtime.Object) (runtime.Object, error) {
		if current == nil {
			return nil, apierrors.NewNotFound(res.GroupResource(), name)
		}
		cur, err := toScale(res, current)
		if err != nil {
			return nil, err
		}
		sc, err := desired(cur)
		if err != nil {
			return nil, err
		}
		if sc.Name != name {
			return nil, apierrors.NewBadRequest(fmt.Sprintf("the name of the object (%s) does not match the name on the URL (%s)", sc.Name, name))
		}
		if err := validateScale(sc); err != nil {
			return nil, err
		}
		obj := current.DeepCopyObject()
		m, err := meta.Accessor(obj)
		if err != nil {
			return nil, fmt.Errorf("reading metadata: %w", err)
		}
		if sc.ResourceVersion != "" {
			// Optimistic concurrency through the Scale's resourceVersion.
			m.SetResourceVersion(sc.ResourceVersion)
		}
		if sc.UID != "" && sc.UID != m.GetUID() {
			return nil, apierrors.NewConflict(res.GroupResource(), name,
				fmt.Errorf("Precondition failed: UID in precondition: %v, UID in object meta: %v", sc.UID, m.GetUID()))
		}
		res.Scale.SetReplicas(obj, sc.Spec.Replicas)
		return obj, nil
	}
}

func (s *Server) updateScale(w http.ResponseWriter, r *http.Request, ri *requestInfo, st *registry.Store) {
	res := st.Resource
	var opts metav1.UpdateOptions
	if err := s.decodeQuery(r, &opts); err != nil {
		s.fail(w, r, err)
		return
	}
	if err := invalidOptions("UpdateOptions", metavalidation.ValidateUpdateOptions(&opts)); err != nil {
		s.fail(w, r, err)
		return
	}
	obj, warnings, err := s.decodeBody(r, scaleGVK, &autoscalingv1.Scale{}, opts.FieldValidation)
	if err != nil {
		s.fail(w, r, err)
		return
	}
	want := obj.(*autoscalingv1.Scale)
	fn := scaleUpdate(res, ri.name, func(*autoscalingv1.Scale) (*autoscalingv1.Scale, error) { return want, nil })
	out, _, err := st.Update(r.Context(), ri.namespace, ri.name, registry.Main, fn, opts)
	if err != nil {
		s.fail(w, r, err)
		return
	}
	sc, err := toScale(res, out)
	if err != nil {
		s.fail(w, r, err)
		return
	}
	addWarnings(w, warnings)
	s.writeScale(w, r, http.StatusOK, sc)
}

func (s *Server) patchScale(w http.ResponseWriter, r *http.Request, ri *requestInfo, st *registry.Store) {
	res := st.Resource
	pt, err := patchType(r, true, false)
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
	body, err := readBody(r)
	if err != nil {
		s.fail(w, r, err)
		return
	}
	jsonInfo, _ := s.serializerFor(runtime.ContentTypeJSON)
	fn := scaleUpdate(res, ri.name, func(cur *autoscalingv1.Scale) (*autoscalingv1.Scale, error) {
		data, err := runtime.Encode(jsonInfo.Serializer, cur)
		if err != nil {
			return nil, fmt.Errorf("encoding scale: %w", err)
		}
		patched, err := applyPatch(pt, data, body, &autoscalingv1.Scale{})
		if err != nil {
			return nil, err
		}
		obj, _, err := s.decodeWith(jsonInfo, patched, scaleGVK, &autoscalingv1.Scale{}, opts.FieldValidation)
		if err != nil {
			return nil, err
		}
		return obj.(*autoscalingv1.Scale), nil
	})
	uopts := metav1.UpdateOptions{DryRun: opts.DryRun, FieldManager: opts.FieldManager, FieldValidation: opts.FieldValidation}
	out, _, err := st.Update(r.Context(), ri.namespace, ri.name, registry.Main, fn, uopts)
	if err != nil {
		s.fail(w, r, err)
		return
	}
	sc, err := toScale(res, out)
	if err != nil {
		s.fail(w, r, err)
		return
	}
	s.writeScale(w, r, http.StatusOK, sc)
}

var bindingGVK = corev1.SchemeGroupVersion.WithKind("Binding")

// bind handles POST pods/<name>/binding (name set) and namespaces/<ns>/
// bindings (name empty: the Binding's own name picks the pod). It sets
// spec.nodeName and the PodScheduled condition; a pod already bound is a
// 409 Conflict.
func (s *Server) bind(w http.ResponseWriter, r *http.Request, ri *requestInfo, pods *registry.Store, name string) {
	var opts metav1.CreateOptions
	if err := s.decodeQuery(r, &opts); err != nil {
		s.fail(w, r, err)
		return
	}
	if err := invalidOptions("CreateOptions", metavalidation.ValidateCreateOptions(&opts)); err != nil {
		s.fail(w, r, err)
		return
	}
	obj, warnings, err := s.decodeBody(r, bindingGVK, &corev1.Binding{}, opts.FieldValidation)
	if err != nil {
		s.fail(w, r, err)
		return
	}
	b := obj.(*corev1.Binding)
	if name == "" {
		name = b.Name
	}
	if b.Name != name {
		s.fail(w, r, apierrors.NewBadRequest("name in URL does not match name in Binding object"))
		return
	}
	if b.Namespace != "" && b.Namespace != ri.namespace {
		s.fail(w, r, apierrors.NewBadRequest("the namespace of the provided object does not match the namespace sent on the request"))
		return
	}
	var errs field.ErrorList
	if b.Name == "" {
		errs = append(errs, field.Required(field.NewPath("metadata", "name"), "name or generateName is required"))
	}
	if b.Target.Name == "" {
		errs = append(errs, field.Required(field.NewPath("target", "name"), ""))
	}
	if b.Target.Kind != "" && b.Target.Kind != "Node" {
		errs = append(errs, field.NotSupported(field.NewPath("target", "kind"), b.Target.Kind, []string{"Node", "<empty>"}))
	}
	if len(errs) > 0 {
		s.fail(w, r, apierrors.NewInvalid(bindingGVK.GroupKind(), b.Name, errs))
		return
	}
	bindingResource := pods.Resource.GroupResource()
	bindingResource.Resource += "/binding"
	fn := func(_ context.Context, current runtime.Object) (runtime.Object, error) {
		if current == nil {
			return nil, apierrors.NewNotFound(pods.Resource.GroupResource(), name)
		}
		cur, ok := current.(*corev1.Pod)
		if !ok {
			return nil, fmt.Errorf("binding: unexpected object %T", current)
		}
		if b.UID != "" && b.UID != cur.UID {
			return nil, apierrors.NewConflict(bindingResource, name,
				fmt.Errorf("Precondition failed: UID in precondition: %v, UID in object meta: %v", b.UID, cur.UID))
		}
		if cur.DeletionTimestamp != nil {
			return nil, apierrors.NewConflict(bindingResource, name, fmt.Errorf("pod %s is being deleted, cannot be assigned to a host", name))
		}
		if cur.Spec.NodeName != "" {
			return nil, apierrors.NewConflict(bindingResource, name, fmt.Errorf("pod %s is already assigned to node %q", name, cur.Spec.NodeName))
		}
		// current is the store's copy for this update: change it in place.
		pod := cur
		pod.Spec.NodeName = b.Target.Name
		for k, v := range b.Annotations {
			if pod.Annotations == nil {
				pod.Annotations = map[string]string{}
			}
			pod.Annotations[k] = v
		}
		setPodScheduled(pod)
		return pod, nil
	}
	_, _, err = pods.Update(r.Context(), ri.namespace, name, registry.Binding, fn,
		metav1.UpdateOptions{DryRun: opts.DryRun, FieldManager: opts.FieldManager})
	if err != nil {
		s.fail(w, r, err)
		return
	}
	addWarnings(w, warnings)
	st := &metav1.Status{TypeMeta: metav1.TypeMeta{Kind: "Status", APIVersion: "v1"}, Status: metav1.StatusSuccess, Code: http.StatusCreated}
	s.writeRaw(w, http.StatusCreated, runtime.ContentTypeJSON, st)
}

// setPodScheduled sets the PodScheduled condition to True.
func setPodScheduled(pod *corev1.Pod) {
	now := metav1.Now()
	for i := range pod.Status.Conditions {
		c := &pod.Status.Conditions[i]
		if c.Type == corev1.PodScheduled {
			if c.Status != corev1.ConditionTrue {
				c.LastTransitionTime = now
			}
			c.Status = corev1.ConditionTrue
			c.Reason = ""
			c.Message = ""
			return
		}
	}
	pod.Status.Conditions = append(pod.Status.Conditions, corev1.PodCondition{
		Type:               corev1.PodScheduled,
		Status:             corev1.ConditionTrue,
		LastTransitionTime: now,
	})
}
