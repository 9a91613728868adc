package builtin

import (
	"slices"
	"strings"

	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/equality"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	metav1validation "k8s.io/apimachinery/pkg/apis/meta/v1/validation"
	"k8s.io/apimachinery/pkg/util/validation"
	"k8s.io/apimachinery/pkg/util/validation/field"
	"k8s.io/utils/ptr"

	"github.com/skiff-dev/skiff/internal/registry"
)

// betaStorageClassAnnotation is the legacy way to name a storage class.
const betaStorageClassAnnotation = "volume.beta.kubernetes.io/storage-class"

var accessModes = []corev1.PersistentVolumeAccessMode{corev1.ReadWriteOnce, corev1.ReadOnlyMany, corev1.ReadWriteMany, corev1.ReadWriteOncePod}

// accessModesString renders access modes as kubectl does ("RWO,RWX").
func accessModesString(modes []corev1.PersistentVolumeAccessMode) string {
	short := map[corev1.PersistentVolumeAccessMode]string{
		corev1.ReadWriteOnce: "RWO", corev1.ReadOnlyMany: "ROX", corev1.ReadWriteMany: "RWX", corev1.ReadWriteOncePod: "RWOP",
	}
	var out []string
	for _, m := range accessModes {
		if slices.Contains(modes, m) {
			out = append(out, short[m])
		}
	}
	return strings.Join(out, ",")
}

func validateAccessModes(modes []corev1.PersistentVolumeAccessMode, fldPath *field.Path) field.ErrorList {
	var errs field.ErrorList
	if len(modes) == 0 {
		return append(errs, field.Required(fldPath, "at least 1 access mode is required"))
	}
	for _, m := range modes {
		if !slices.Contains(accessModes, m) {
			errs = append(errs, field.NotSupported(fldPath, m, accessModes))
		}
	}
	if slices.Contains(modes, corev1.ReadWriteOncePod) && len(modes) > 1 {
		errs = append(errs, field.Forbidden(fldPath, "may not use ReadWriteOncePod with other access modes"))
	}
	return errs
}

func validateVolumeMode(m *corev1.PersistentVolumeMode, fldPath *field.Path) field.ErrorList {
	if m != nil && *m != corev1.PersistentVolumeBlock && *m != corev1.PersistentVolumeFilesystem {
		return field.ErrorList{field.NotSupported(fldPath, *m, []corev1.PersistentVolumeMode{corev1.PersistentVolumeBlock, corev1.PersistentVolumeFilesystem})}
	}
	return nil
}

func validateStorageClassName(name *string, fldPath *field.Path) field.ErrorList {
	var errs field.ErrorList
	if name != nil && *name != "" {
		for _, msg := range validation.IsDNS1123Subdomain(*name) {
			errs = append(errs, field.Invalid(fldPath, *name, msg))
		}
	}
	return errs
}

// ---- persistentvolumeclaims ----

func persistentVolumeClaimResource() *registry.Resource {
	return &registry.Resource{
		GVR:        coreGVR("persistentvolumeclaims"),
		Kind:       "PersistentVolumeClaim",
		ListKind:   "PersistentVolumeClaimList",
		Singular:   "persistentvolumeclaim",
		ShortNames: []string{"pvc"},
		Namespaced: true,
		Status:     true,
		Strategy: registry.Define(registry.Typed[*corev1.PersistentVolumeClaim, *corev1.PersistentVolumeClaimList]{
			New:     func() *corev1.PersistentVolumeClaim { return &corev1.PersistentVolumeClaim{} },
			NewList: func() *corev1.PersistentVolumeClaimList { return &corev1.PersistentVolumeClaimList{} },
			PrepareForCreate: func(c *corev1.PersistentVolumeClaim) {
				c.Status = corev1.PersistentVolumeClaimStatus{Phase: corev1.ClaimPending}
			},
			Default: func(c *corev1.PersistentVolumeClaim) {
				if c.Spec.VolumeMode == nil {
					c.Spec.VolumeMode = ptr.To(corev1.PersistentVolumeFilesystem)
				}
				roundResourceList(c.Spec.Resources.Requests)
				roundResourceList(c.Spec.Resources.Limits)
				if c.Status.Phase == "" {
					c.Status.Phase = corev1.ClaimPending
				}
			},
			Validate:       validatePVC,
			ValidateUpdate: validatePVCUpdate,
			ValidateStatusUpdate: func(c, _ *corev1.PersistentVolumeClaim) field.ErrorList {
				return validateResourceList(c.Status.Capacity, field.NewPath("status", "capacity"))
			},
			Table: &registry.TypedTable[*corev1.PersistentVolumeClaim]{
				Columns: []metav1.TableColumnDefinition{
					columnName(),
					columnString("Status", corev1.PersistentVolumeClaimStatus{}.SwaggerDoc()["phase"], 0),
					columnString("Volume", corev1.PersistentVolumeClaimSpec{}.SwaggerDoc()["volumeName"], 0),
					columnString("Capacity", corev1.PersistentVolumeClaimStatus{}.SwaggerDoc()["capacity"], 0),
					columnString("Access Modes", corev1.PersistentVolumeClaimStatus{}.SwaggerDoc()["accessModes"], 0),
					columnString("StorageClass", "StorageClass of the pvc", 0),
					columnString("VolumeAttributesClass", "VolumeAttributesClass of the pvc", 0),
					columnAge(),
					columnString("VolumeMode", corev1.PersistentVolumeClaimSpec{}.SwaggerDoc()["volumeMode"], 1),
				},
				Row: pvcRow,
			},
		}),
	}
}

func validatePVC(c *corev1.PersistentVolumeClaim) field.ErrorList {
	var errs field.ErrorList
	spec := field.NewPath("spec")
	errs = append(errs, validateAccessModes(c.Spec.AccessModes, spec.Child("accessModes"))...)
	if c.Spec.Selector != nil {
		errs = append(errs, metav1validation.ValidateLabelSelector(c.Spec.Selector, metav1validation.LabelSelectorValidationOptions{}, spec.Child("selector"))...)
	}
	storage, ok := c.Spec.Resources.Requests[corev1.ResourceStorage]
	if !ok {
		errs = append(errs, field.Required(spec.Child("resources").Key(string(corev1.ResourceStorage)), ""))
	} else if storage.Sign() <= 0 {
		errs = append(errs, field.Invalid(spec.Child("resources").Key(string(corev1.ResourceStorage)), storage.String(), "must be greater than zero"))
	}
	errs = append(errs, validateResourceList(c.Spec.Resources.Requests, spec.Child("resources", "requests"))...)
	errs = append(errs, validateResourceList(c.Spec.Resources.Limits, spec.Child("resources", "limits"))...)
	errs = append(errs, validateStorageClassName(c.Spec.StorageClassName, spec.Child("storageClassName"))...)
	errs = append(errs, validateVolumeMode(c.Spec.VolumeMode, spec.Child("volumeMode"))...)
	return errs
}

// validatePVCUpdate: the spec is immutable except resources.requests (to
// grow a bound claim), volumeAttributesClassName, volumeName while unset,
// and storageClassName from nil to a value while the claim is unbound (the
// retroactive default StorageClass, as upstream since 1.28).
func validatePVCUpdate(c, old *corev1.PersistentVolumeClaim) field.ErrorList {
	errs := validatePVC(c)
	bound := old.Status.Phase == corev1.ClaimBound
	masked := c.Spec.DeepCopy()
	oldSpec := old.Spec.DeepCopy()
	if bound {
		masked.Resources = old.Spec.Resources
	}
	masked.VolumeAttributesClassName = old.Spec.VolumeAttributesClassName
	if classFromNil(c, old) {
		masked.StorageClassName = nil
	}
	if old.Spec.VolumeName == "" {
		// Binding sets volumeName once.
		masked.VolumeName, oldSpec.VolumeName = "", ""
	}
	if !equality.Semantic.DeepEqual(masked, oldSpec) {
		errs = append(errs, field.Forbidden(field.NewPath("spec"), "spec is immutable after creation except resources.requests and volumeAttributesClassName for bound claims"))
	}
	if bound {
		newQ := c.Spec.Resources.Requests[corev1.ResourceStorage]
		oldQ := old.Spec.Resources.Requests[corev1.ResourceStorage]
		if newQ.Cmp(oldQ) < 0 {
			errs = append(errs, field.Forbidden(field.NewPath("spec", "resources", "requests", "storage"), "field can not be less than previous value"))
		}
	}
	return errs
}

// classFromNil reports whether an update sets storageClassName on a claim
// that had none (neither the field nor the beta annotation) and is not
// bound to a volume.
func classFromNil(c, old *corev1.PersistentVolumeClaim) bool {
	_, oldAnn := old.Annotations[betaStorageClassAnnotation]
	return !oldAnn && old.Spec.StorageClassName == nil && c.Spec.StorageClassName != nil &&
		old.Spec.VolumeName == "" && c.Spec.VolumeName == ""
}

func pvcClass(c *corev1.PersistentVolumeClaim) string {
	if v, ok := c.Annotations[betaStorageClassAnnotation]; ok {
		return v
	}
	return ptr.Deref(c.Spec.StorageClassName, "")
}

func pvcRow(c *corev1.PersistentVolumeClaim) []any {
	phase := string(c.Status.Phase)
	if c.DeletionTimestamp != nil {
		phase = "Terminating"
	}
	capacity, modes := "", ""
	if c.Spec.VolumeName != "" {
		modes = accessModesString(c.Status.AccessModes)
		if q, ok := c.Status.Capacity[corev1.ResourceStorage]; ok {
			capacity = q.String()
		} else {
			capacity = "0"
		}
	}
	vac := "<unset>"
	if c.Spec.VolumeAttributesClassName != nil {
		vac = *c.Spec.VolumeAttributesClassName
	}
	mode := "<unset>"
	if c.Spec.VolumeMode != nil {
		mode = string(*c.Spec.VolumeMode)
	}
	return []any{c.Name, phase, c.Spec.VolumeName, capacity, modes, pvcClass(c), vac, cellAge(&c.ObjectMeta), mode}
}

// ---- persistentvolumes ----

func persistentVolumeResource() *registry.Resource {
	return &registry.Resource{
		GVR:        coreGVR("persistentvolumes"),
		Kind:       "PersistentVolume",
		ListKind:   "PersistentVolumeList",
		Singular:   "persistentvolume",
		ShortNames: []string{"pv"},
		Status:     true,
		Strategy: registry.Define(registry.Typed[*corev1.PersistentVolume, *corev1.PersistentVolumeList]{
			New:     func() *corev1.PersistentVolume { return &corev1.PersistentVolume{} },
			NewList: func() *corev1.PersistentVolumeList { return &corev1.PersistentVolumeList{} },
			PrepareForCreate: func(pv *corev1.PersistentVolume) {
				pv.Status = corev1.PersistentVolumeStatus{Phase: corev1.VolumePending}
			},
			Default: func(pv *corev1.PersistentVolume) {
				if pv.Spec.PersistentVolumeReclaimPolicy == "" {
					pv.Spec.PersistentVolumeReclaimPolicy = corev1.PersistentVolumeReclaimRetain
				}
				if pv.Spec.VolumeMode == nil {
					pv.Spec.VolumeMode = ptr.To(corev1.PersistentVolumeFilesystem)
				}
				roundResourceList(pv.Spec.Capacity)
				if pv.Status.Phase == "" {
					pv.Status.Phase = corev1.VolumePending
				}
				if hp := pv.Spec.HostPath; hp != nil && hp.Type == nil {
					hp.Type = ptr.To(corev1.HostPathUnset)
				}
			},
			Validate: validatePV,
			ValidateUpdate: func(pv, old *corev1.PersistentVolume) field.ErrorList {
				errs := validatePV(pv)
				if !equality.Semantic.DeepEqual(pv.Spec.PersistentVolumeSource, old.Spec.PersistentVolumeSource) {
					errs = append(errs, field.Forbidden(field.NewPath("spec", "persistentvolumesource"), "spec.persistentvolumesource is immutable after creation"))
				}
				errs = append(errs, validateImmutable(pv.Spec.VolumeMode, old.Spec.VolumeMode, field.NewPath("volumeMode"))...)
				return errs
			},
			ValidateStatusUpdate: func(pv, _ *corev1.PersistentVolume) field.ErrorList {
				phases := []corev1.PersistentVolumePhase{corev1.VolumePending, corev1.VolumeAvailable, corev1.VolumeBound, corev1.VolumeReleased, corev1.VolumeFailed}
				if pv.Status.Phase != "" && !slices.Contains(phases, pv.Status.Phase) {
					return field.ErrorList{field.NotSupported(field.NewPath("status", "phase"), pv.Status.Phase, phases)}
				}
				return nil
			},
			Table: &registry.TypedTable[*corev1.PersistentVolume]{
				Columns: []metav1.TableColumnDefinition{
					columnName(),
					columnString("Capacity", corev1.PersistentVolumeSpec{}.SwaggerDoc()["capacity"], 0),
					columnString("Access Modes", corev1.PersistentVolumeSpec{}.SwaggerDoc()["accessModes"], 0),
					columnString("Reclaim Policy", corev1.PersistentVolumeSpec{}.SwaggerDoc()["persistentVolumeReclaimPolicy"], 0),
					columnString("Status", corev1.PersistentVolumeStatus{}.SwaggerDoc()["phase"], 0),
					columnString("Claim", corev1.PersistentVolumeSpec{}.SwaggerDoc()["claimRef"], 0),
					columnString("StorageClass", "StorageClass of the pv", 0),
					columnString("VolumeAttributesClass", "VolumeAttributesClass of the pv", 0),
					columnString("Reason", corev1.PersistentVolumeStatus{}.SwaggerDoc()["reason"], 0),
					columnAge(),
					columnString("VolumeMode", corev1.PersistentVolumeSpec{}.SwaggerDoc()["volumeMode"], 1),
				},
				Row: pvRow,
			},
		}),
	}
}

func countPVSources(s *corev1.PersistentVolumeSource) int {
	n := 0
	for _, set := range []bool{
		s.GCEPersistentDisk != nil, s.AWSElasticBlockStore != nil, s.HostPath != nil, s.Glusterfs != nil,
		s.NFS != nil, s.RBD != nil, s.ISCSI != nil, s.Cinder != nil, s.CephFS != nil, s.FC != nil,
		s.Flocker != nil, s.FlexVolume != nil, s.AzureFile != nil, s.VsphereVolume != nil, s.Quobyte != nil,
		s.AzureDisk != nil, s.PhotonPersistentDisk != nil, s.PortworxVolume != nil, s.ScaleIO != nil,
		s.Local != nil, s.StorageOS != nil, s.CSI != nil,
	} {
		if set {
			n++
		}
	}
	return n
}

func validatePV(pv *corev1.PersistentVolume) field.ErrorList {
	var errs field.ErrorList
	spec := field.NewPath("spec")
	errs = append(errs, validateAccessModes(pv.Spec.AccessModes, spec.Child("accessModes"))...)
	if len(pv.Spec.Capacity) == 0 {
		errs = append(errs, field.Required(spec.Child("capacity"), ""))
	} else if _, ok := pv.Spec.Capacity[corev1.ResourceStorage]; !ok || len(pv.Spec.Capacity) > 1 {
		errs = append(errs, field.NotSupported(spec.Child("capacity"), pv.Spec.Capacity, []corev1.ResourceName{corev1.ResourceStorage}))
	}
	errs = append(errs, validateResourceList(pv.Spec.Capacity, spec.Child("capacity"))...)
	switch n := countPVSources(&pv.Spec.PersistentVolumeSource); {
	case n == 0:
		errs = append(errs, field.Required(spec, "must specify a volume type"))
	case n > 1:
		errs = append(errs, field.Forbidden(spec, "may not specify more than 1 volume type"))
	}
	if hp := pv.Spec.HostPath; hp != nil && hp.Path == "" {
		errs = append(errs, field.Required(spec.Child("hostPath", "path"), ""))
	}
	if l := pv.Spec.Local; l != nil {
		if l.Path == "" {
			errs = append(errs, field.Required(spec.Child("local", "path"), ""))
		}
		if pv.Spec.NodeAffinity == nil {
			errs = append(errs, field.Required(spec.Child("nodeAffinity"), "Local volume requires node affinity"))
		}
	}
	policies := []corev1.PersistentVolumeReclaimPolicy{corev1.PersistentVolumeReclaimDelete, corev1.PersistentVolumeReclaimRecycle, corev1.PersistentVolumeReclaimRetain}
	if p := pv.Spec.PersistentVolumeReclaimPolicy; p != "" && !slices.Contains(policies, p) {
		errs = append(errs, field.NotSupported(spec.Child("persistentVolumeReclaimPolicy"), p, policies))
	}
	errs = append(errs, validateStorageClassName(&pv.Spec.StorageClassName, spec.Child("storageClassName"))...)
	errs = append(errs, validateVolumeMode(pv.Spec.VolumeMode, spec.Child("volumeMode"))...)
	return errs
}

func pvRow(pv *corev1.PersistentVolume) []any {
	claim := ""
	if r := pv.Spec.ClaimRef; r != nil {
		claim = r.Namespace + "/" + r.Name
	}
	phase := string(pv.Status.Phase)
	if pv.DeletionTimestamp != nil {
		phase = "Terminating"
	}
	storage := pv.Spec.Capacity[corev1.ResourceStorage]
	class := pv.Spec.StorageClassName
	if v, ok := pv.Annotations[betaStorageClassAnnotation]; ok {
		class = v
	}
	vac := "<unset>"
	if pv.Spec.VolumeAttributesClassName != nil {
		vac = *pv.Spec.VolumeAttributesClassName
	}
	mode := "<unset>"
	if pv.Spec.VolumeMode != nil {
		mode = string(*pv.Spec.VolumeMode)
	}
	return []any{pv.Name, storage.String(), accessModesString(pv.Spec.AccessModes), string(pv.Spec.PersistentVolumeReclaimPolicy),
		phase, claim, class, vac, pv.Status.Reason, cellAge(&pv.ObjectMeta), mode}
}
