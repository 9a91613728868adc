package builtin

import (
	"fmt"
	"strings"

	corev1 "k8s.io/api/core/v1"
	nodev1 "k8s.io/api/node/v1"
	storagev1 "k8s.io/api/storage/v1"
	"k8s.io/apimachinery/pkg/api/equality"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	metav1validation "k8s.io/apimachinery/pkg/apis/meta/v1/validation"
	"k8s.io/apimachinery/pkg/util/sets"
	"k8s.io/apimachinery/pkg/util/validation"
	"k8s.io/apimachinery/pkg/util/validation/field"
	"k8s.io/utils/ptr"

	"github.com/skiff-dev/skiff/internal/registry"
)

// storageNodeResources returns the storage.k8s.io/v1 CSI resources
// (csidrivers, csinodes, volumeattachments with /status, and the namespaced
// csistoragecapacities) and node.k8s.io/v1 runtimeclasses. None has short
// names or categories upstream.
func storageNodeResources() []*registry.Resource {
	return []*registry.Resource{
		{
			GVR: storagev1.SchemeGroupVersion.WithResource("csidrivers"), Kind: "CSIDriver",
			ListKind: "CSIDriverList", Singular: "csidriver",
			Strategy: csiDriverStrategy(),
		},
		{
			GVR: storagev1.SchemeGroupVersion.WithResource("csinodes"), Kind: "CSINode",
			ListKind: "CSINodeList", Singular: "csinode",
			Strategy: csiNodeStrategy(),
		},
		{
			GVR: storagev1.SchemeGroupVersion.WithResource("volumeattachments"), Kind: "VolumeAttachment",
			ListKind: "VolumeAttachmentList", Singular: "volumeattachment", Status: true,
			StatusResetsMetadata: true,
			Strategy:             volumeAttachmentStrategy(),
		},
		{
			GVR: storagev1.SchemeGroupVersion.WithResource("csistoragecapacities"), Kind: "CSIStorageCapacity",
			ListKind: "CSIStorageCapacityList", Singular: "csistoragecapacity", Namespaced: true,
			Strategy: csiStorageCapacityStrategy(),
		},
		{
			GVR: nodev1.SchemeGroupVersion.WithResource("runtimeclasses"), Kind: "RuntimeClass",
			ListKind: "RuntimeClassList", Singular: "runtimeclass",
			Strategy: runtimeClassStrategy(),
		},
	}
}

// Upstream's limits on CSI objects.
const (
	csiDriverNameMaxLength      = 63
	csiNodeIDMaxLength          = 256 // upstream's longer limit, allowed since 1.28
	csiTokenMinExpiration       = 10 * 60
	csiTokenMaxExpiration       = int64(1) << 32
	csiMinAllocatableUpdate     = 10
	volumeErrorMessageMaxLength = 1024
	attachMetadataMaxSize       = 256 * (1 << 10)
)

// validateCSIDriverName checks a CSI driver name (a CSIDriver's
// metadata.name, a CSINode driver's name, a VolumeAttachment's attacher):
// a DNS-1123 subdomain of at most 63 characters, case-insensitively.
func validateCSIDriverName(name string, fldPath *field.Path) field.ErrorList {
	if name == "" {
		return field.ErrorList{field.Required(fldPath, "")}
	}
	var allErrs field.ErrorList
	if len(name) > csiDriverNameMaxLength {
		allErrs = append(allErrs, field.TooLong(fldPath, "", csiDriverNameMaxLength))
	}
	for _, msg := range validation.IsDNS1123Subdomain(strings.ToLower(name)) {
		allErrs = append(allErrs, field.Invalid(fldPath, name, msg))
	}
	return allErrs
}

// --- CSIDriver ------------------------------------------------------------

func csiDriverStrategy() registry.Strategy {
	return registry.Define(registry.Typed[*storagev1.CSIDriver, *storagev1.CSIDriverList]{
		New:     func() *storagev1.CSIDriver { return &storagev1.CSIDriver{} },
		NewList: func() *storagev1.CSIDriverList { return &storagev1.CSIDriverList{} },
		Default: defaultCSIDriver,
		ValidateName: func(name string, prefix bool) []string {
			msgs := registry.NameIsDNSSubdomain(name, prefix)
			if !prefix && len(name) > csiDriverNameMaxLength {
				msgs = append(msgs, fmt.Sprintf("must be no more than %d characters", csiDriverNameMaxLength))
			}
			return msgs
		},
		Validate: validateCSIDriver,
		ValidateUpdate: func(d, old *storagev1.CSIDriver) field.ErrorList {
			allErrs := validateCSIDriver(d)
			spec := field.NewPath("spec")
			allErrs = append(allErrs, validateImmutable(d.Spec.AttachRequired, old.Spec.AttachRequired, spec.Child("attachRequired"))...)
			allErrs = append(allErrs, validateImmutable(d.Spec.FSGroupPolicy, old.Spec.FSGroupPolicy, spec.Child("fsGroupPolicy"))...)
			allErrs = append(allErrs, validateImmutable(d.Spec.VolumeLifecycleModes, old.Spec.VolumeLifecycleModes, spec.Child("volumeLifecycleModes"))...)
			return allErrs
		},
		Table: &registry.TypedTable[*storagev1.CSIDriver]{
			Columns: []metav1.TableColumnDefinition{
				columnName(),
				{Name: "AttachRequired", Type: "boolean", Description: storagev1.CSIDriverSpec{}.SwaggerDoc()["attachRequired"]},
				{Name: "PodInfoOnMount", Type: "boolean", Description: storagev1.CSIDriverSpec{}.SwaggerDoc()["podInfoOnMount"]},
				{Name: "StorageCapacity", Type: "boolean", Description: storagev1.CSIDriverSpec{}.SwaggerDoc()["storageCapacity"]},
				columnString("TokenRequests", storagev1.CSIDriverSpec{}.SwaggerDoc()["tokenRequests"], 0),
				{Name: "RequiresRepublish", Type: "boolean", Description: storagev1.CSIDriverSpec{}.SwaggerDoc()["requiresRepublish"]},
				columnString("Modes", storagev1.CSIDriverSpec{}.SwaggerDoc()["volumeLifecycleModes"], 0),
				columnAge(),
			},
			Row: csiDriverRow,
		},
	})
}

// defaultCSIDriver applies storage/v1 SetDefaults_CSIDriver.
func defaultCSIDriver(d *storagev1.CSIDriver) {
	s := &d.Spec
	if s.AttachRequired == nil {
		s.AttachRequired = ptr.To(true)
	}
	if s.PodInfoOnMount == nil {
		s.PodInfoOnMount = ptr.To(false)
	}
	if s.StorageCapacity == nil {
		s.StorageCapacity = ptr.To(false)
	}
	if s.FSGroupPolicy == nil {
		s.FSGroupPolicy = ptr.To(storagev1.ReadWriteOnceWithFSTypeFSGroupPolicy)
	}
	if len(s.VolumeLifecycleModes) == 0 {
		s.VolumeLifecycleModes = []storagev1.VolumeLifecycleMode{storagev1.VolumeLifecyclePersistent}
	}
	if s.RequiresRepublish == nil {
		s.RequiresRepublish = ptr.To(false)
	}
	if s.SELinuxMount == nil {
		s.SELinuxMount = ptr.To(false)
	}
}

func validateCSIDriver(d *storagev1.CSIDriver) field.ErrorList {
	spec := field.NewPath("spec")
	s := &d.Spec
	var allErrs field.ErrorList
	for _, f := range []struct {
		v    *bool
		name string
	}{
		{s.AttachRequired, "attachRequired"},
		{s.PodInfoOnMount, "podInfoOnMount"},
		{s.RequiresRepublish, "requiresRepublish"},
		{s.StorageCapacity, "storageCapacity"},
		{s.SELinuxMount, "seLinuxMount"},
	} {
		if f.v == nil {
			allErrs = append(allErrs, field.Required(spec.Child(f.name), ""))
		}
	}
	if s.FSGroupPolicy != nil {
		switch *s.FSGroupPolicy {
		case storagev1.ReadWriteOnceWithFSTypeFSGroupPolicy, storagev1.FileFSGroupPolicy, storagev1.NoneFSGroupPolicy:
		default:
			allErrs = append(allErrs, field.NotSupported(spec.Child("fsGroupPolicy"), *s.FSGroupPolicy,
				[]storagev1.FSGroupPolicy{storagev1.FileFSGroupPolicy, storagev1.NoneFSGroupPolicy, storagev1.ReadWriteOnceWithFSTypeFSGroupPolicy}))
		}
	}
	for i, m := range s.VolumeLifecycleModes {
		if m != storagev1.VolumeLifecyclePersistent && m != storagev1.VolumeLifecycleEphemeral {
			allErrs = append(allErrs, field.NotSupported(spec.Child("volumeLifecycleModes").Index(i), m,
				[]storagev1.VolumeLifecycleMode{storagev1.VolumeLifecycleEphemeral, storagev1.VolumeLifecyclePersistent}))
		}
	}
	audiences := sets.New[string]()
	for i, tr := range s.TokenRequests {
		p := spec.Child("tokenRequests").Index(i)
		if audiences.Has(tr.Audience) {
			allErrs = append(allErrs, field.Duplicate(p.Child("audience"), tr.Audience))
		}
		audiences.Insert(tr.Audience)
		if tr.ExpirationSeconds != nil {
			switch {
			case *tr.ExpirationSeconds < csiTokenMinExpiration:
				allErrs = append(allErrs, field.Invalid(p.Child("expirationSeconds"), *tr.ExpirationSeconds, "may not specify a duration less than 10 minutes"))
			case *tr.ExpirationSeconds > csiTokenMaxExpiration:
				allErrs = append(allErrs, field.Invalid(p.Child("expirationSeconds"), *tr.ExpirationSeconds, "may not specify a duration larger than 2^32 seconds"))
			}
		}
	}
	if s.ServiceAccountTokenInSecrets != nil && len(s.TokenRequests) == 0 {
		allErrs = append(allErrs, field.Invalid(spec.Child("serviceAccountTokenInSecrets"), *s.ServiceAccountTokenInSecrets,
			"serviceAccountTokenInSecrets can only be set when tokenRequests is specified"))
	}
	if p := s.NodeAllocatableUpdatePeriodSeconds; p != nil && *p < csiMinAllocatableUpdate {
		allErrs = append(allErrs, field.Invalid(spec.Child("nodeAllocatableUpdatePeriodSeconds"), *p,
			fmt.Sprintf("must be greater than or equal to %d seconds", csiMinAllocatableUpdate)))
	}
	return allErrs
}

// csiDriverRow renders a CSIDriver as upstream's printCSIDriver does.
func csiDriverRow(d *storagev1.CSIDriver) []any {
	tokens := "<unset>"
	if len(d.Spec.TokenRequests) > 0 {
		auds := make([]string, 0, len(d.Spec.TokenRequests))
		for _, tr := range d.Spec.TokenRequests {
			auds = append(auds, tr.Audience)
		}
		tokens = strings.Join(auds, ",")
	}
	modes := make([]string, 0, len(d.Spec.VolumeLifecycleModes))
	for _, m := range d.Spec.VolumeLifecycleModes {
		modes = append(modes, string(m))
	}
	return []any{
		d.Name,
		ptr.Deref(d.Spec.AttachRequired, true),
		ptr.Deref(d.Spec.PodInfoOnMount, false),
		ptr.Deref(d.Spec.StorageCapacity, false),
		tokens,
		ptr.Deref(d.Spec.RequiresRepublish, false),
		orNone(strings.Join(modes, ",")),
		cellAge(&d.ObjectMeta),
	}
}

// --- CSINode --------------------------------------------------------------

func csiNodeStrategy() registry.Strategy {
	return registry.Define(registry.Typed[*storagev1.CSINode, *storagev1.CSINodeList]{
		New:      func() *storagev1.CSINode { return &storagev1.CSINode{} },
		NewList:  func() *storagev1.CSINodeList { return &storagev1.CSINodeList{} },
		Validate: validateCSINode,
		ValidateUpdate: func(n, old *storagev1.CSINode) field.ErrorList {
			allErrs := validateCSINode(n)
			oldDrivers := map[string]*storagev1.CSINodeDriver{}
			for i := range old.Spec.Drivers {
				oldDrivers[old.Spec.Drivers[i].Name] = &old.Spec.Drivers[i]
			}
			// A driver may be added or removed, but one that stays keeps
			// its node ID and topology keys.
			for i, d := range n.Spec.Drivers {
				o, ok := oldDrivers[d.Name]
				if !ok {
					continue
				}
				p := field.NewPath("spec", "drivers").Index(i)
				if d.NodeID != o.NodeID {
					allErrs = append(allErrs, field.Invalid(p.Child("nodeID"), d.NodeID, "field is immutable"))
				}
				if !equality.Semantic.DeepEqual(d.TopologyKeys, o.TopologyKeys) {
					allErrs = append(allErrs, field.Invalid(p.Child("topologyKeys"), d.TopologyKeys, "field is immutable"))
				}
			}
			return allErrs
		},
		Table: &registry.TypedTable[*storagev1.CSINode]{
			Columns: []metav1.TableColumnDefinition{
				columnName(),
				columnInt("Drivers", "Drivers indicates the number of CSI drivers registered on the node", 0),
				columnAge(),
			},
			Row: func(n *storagev1.CSINode) []any {
				return []any{n.Name, int64(len(n.Spec.Drivers)), cellAge(&n.ObjectMeta)}
			},
		},
	})
}

func validateCSINode(n *storagev1.CSINode) field.ErrorList {
	var allErrs field.ErrorList
	names := sets.New[string]()
	for i, d := range n.Spec.Drivers {
		p := field.NewPath("spec", "drivers").Index(i)
		allErrs = append(allErrs, validateCSIDriverName(d.Name, p.Child("name"))...)
		if names.Has(d.Name) {
			allErrs = append(allErrs, field.Duplicate(p.Child("name"), d.Name))
		}
		names.Insert(d.Name)
		switch {
		case d.NodeID == "":
			allErrs = append(allErrs, field.Required(p.Child("nodeID"), ""))
		case len(d.NodeID) > csiNodeIDMaxLength:
			allErrs = append(allErrs, field.Invalid(p.Child("nodeID"), d.NodeID, fmt.Sprintf("must be %d characters or less", csiNodeIDMaxLength)))
		}
		keys := sets.New[string]()
		for j, k := range d.TopologyKeys {
			kp := p.Child("topologyKeys").Index(j)
			if k == "" {
				allErrs = append(allErrs, field.Required(kp, ""))
			}
			if keys.Has(k) {
				allErrs = append(allErrs, field.Duplicate(kp, k))
			}
			keys.Insert(k)
			for _, msg := range validation.IsQualifiedName(k) {
				allErrs = append(allErrs, field.Invalid(kp, k, msg))
			}
		}
		if d.Allocatable != nil && d.Allocatable.Count != nil && *d.Allocatable.Count < 0 {
			allErrs = append(allErrs, field.Invalid(p.Child("allocatable", "count"), *d.Allocatable.Count, "must be greater than or equal to 0"))
		}
	}
	return allErrs
}

// --- VolumeAttachment -----------------------------------------------------

func volumeAttachmentStrategy() registry.Strategy {
	return registry.Define(registry.Typed[*storagev1.VolumeAttachment, *storagev1.VolumeAttachmentList]{
		New:     func() *storagev1.VolumeAttachment { return &storagev1.VolumeAttachment{} },
		NewList: func() *storagev1.VolumeAttachmentList { return &storagev1.VolumeAttachmentList{} },
		PrepareForCreate: func(va *storagev1.VolumeAttachment) {
			va.Status = storagev1.VolumeAttachmentStatus{}
		},
		Validate: validateVolumeAttachment,
		ValidateUpdate: func(va, old *storagev1.VolumeAttachment) field.ErrorList {
			allErrs := validateVolumeAttachment(va)
			if !equality.Semantic.DeepEqual(va.Spec, old.Spec) {
				allErrs = append(allErrs, field.Invalid(field.NewPath("spec"), va.Spec, "field is immutable"))
			}
			return allErrs
		},
		ValidateStatusUpdate: func(va, _ *storagev1.VolumeAttachment) field.ErrorList {
			return validateVolumeAttachmentStatus(&va.Status, field.NewPath("status"))
		},
		Table: &registry.TypedTable[*storagev1.VolumeAttachment]{
			Columns: []metav1.TableColumnDefinition{
				columnName(),
				columnString("Attacher", storagev1.VolumeAttachmentSpec{}.SwaggerDoc()["attacher"], 0),
				columnString("PV", storagev1.VolumeAttachmentSource{}.SwaggerDoc()["persistentVolumeName"], 0),
				columnString("Node", storagev1.VolumeAttachmentSpec{}.SwaggerDoc()["nodeName"], 0),
				{Name: "Attached", Type: "boolean", Description: storagev1.VolumeAttachmentStatus{}.SwaggerDoc()["attached"]},
				columnAge(),
			},
			Row: func(va *storagev1.VolumeAttachment) []any {
				return []any{va.Name, va.Spec.Attacher, ptr.Deref(va.Spec.Source.PersistentVolumeName, ""),
					va.Spec.NodeName, va.Status.Attached, cellAge(&va.ObjectMeta)}
			},
		},
	})
}

func validateVolumeAttachment(va *storagev1.VolumeAttachment) field.ErrorList {
	spec := field.NewPath("spec")
	allErrs := validateCSIDriverName(va.Spec.Attacher, spec.Child("attacher"))
	if va.Spec.NodeName == "" {
		allErrs = append(allErrs, field.Required(spec.Child("nodeName"), ""))
	} else {
		for _, msg := range registry.NameIsDNSSubdomain(va.Spec.NodeName, false) {
			allErrs = append(allErrs, field.Invalid(spec.Child("nodeName"), va.Spec.NodeName, msg))
		}
	}
	src := &va.Spec.Source
	srcPath := spec.Child("source")
	switch {
	case src.PersistentVolumeName == nil && src.InlineVolumeSpec == nil,
		src.PersistentVolumeName != nil && src.InlineVolumeSpec != nil:
		allErrs = append(allErrs, field.Invalid(srcPath, src, "must specify exactly one of inlineVolumeSpec and persistentVolumeName"))
	case src.PersistentVolumeName != nil:
		if *src.PersistentVolumeName == "" {
			allErrs = append(allErrs, field.Required(srcPath.Child("persistentVolumeName"), "must specify non empty persistentVolumeName"))
		}
	default:
		if src.InlineVolumeSpec.CSI == nil {
			allErrs = append(allErrs, field.Required(srcPath.Child("inlineVolumeSpec", "csi"), "must specify a CSI volume source"))
		}
	}
	return append(allErrs, validateVolumeAttachmentStatus(&va.Status, field.NewPath("status"))...)
}

func validateVolumeAttachmentStatus(s *storagev1.VolumeAttachmentStatus, fldPath *field.Path) field.ErrorList {
	var allErrs field.ErrorList
	var size int
	for k, v := range s.AttachmentMetadata {
		size += len(k) + len(v)
	}
	if size > attachMetadataMaxSize {
		allErrs = append(allErrs, field.TooLong(fldPath.Child("attachmentMetadata"), "", attachMetadataMaxSize))
	}
	for _, e := range []struct {
		name string
		err  *storagev1.VolumeError
	}{{"attachError", s.AttachError}, {"detachError", s.DetachError}} {
		if e.err != nil && len(e.err.Message) > volumeErrorMessageMaxLength {
			allErrs = append(allErrs, field.TooLong(fldPath.Child(e.name, "message"), "", volumeErrorMessageMaxLength))
		}
	}
	return allErrs
}

// --- CSIStorageCapacity ---------------------------------------------------

func csiStorageCapacityStrategy() registry.Strategy {
	return registry.Define(registry.Typed[*storagev1.CSIStorageCapacity, *storagev1.CSIStorageCapacityList]{
		New:      func() *storagev1.CSIStorageCapacity { return &storagev1.CSIStorageCapacity{} },
		NewList:  func() *storagev1.CSIStorageCapacityList { return &storagev1.CSIStorageCapacityList{} },
		Validate: validateCSIStorageCapacity,
		ValidateUpdate: func(c, old *storagev1.CSIStorageCapacity) field.ErrorList {
			allErrs := validateCSIStorageCapacity(c)
			allErrs = append(allErrs, validateImmutable(c.StorageClassName, old.StorageClassName, field.NewPath("storageClassName"))...)
			allErrs = append(allErrs, validateImmutable(c.NodeTopology, old.NodeTopology, field.NewPath("nodeTopology"))...)
			return allErrs
		},
		Table: &registry.TypedTable[*storagev1.CSIStorageCapacity]{
			Columns: []metav1.TableColumnDefinition{
				columnName(),
				columnString("StorageClassName", storagev1.CSIStorageCapacity{}.SwaggerDoc()["storageClassName"], 0),
				columnString("Capacity", storagev1.CSIStorageCapacity{}.SwaggerDoc()["capacity"], 0),
				columnAge(),
			},
			Row: func(c *storagev1.CSIStorageCapacity) []any {
				capacity := "<unset>"
				if c.Capacity != nil {
					capacity = c.Capacity.String()
				}
				return []any{c.Name, c.StorageClassName, capacity, cellAge(&c.ObjectMeta)}
			},
		},
	})
}

func validateCSIStorageCapacity(c *storagev1.CSIStorageCapacity) field.ErrorList {
	var allErrs field.ErrorList
	if c.NodeTopology != nil {
		allErrs = append(allErrs, validateLabelSelector(c.NodeTopology, field.NewPath("nodeTopology"))...)
	}
	if c.StorageClassName == "" {
		allErrs = append(allErrs, field.Required(field.NewPath("storageClassName"), ""))
	} else {
		for _, msg := range registry.NameIsDNSSubdomain(c.StorageClassName, false) {
			allErrs = append(allErrs, field.Invalid(field.NewPath("storageClassName"), c.StorageClassName, msg))
		}
	}
	if c.Capacity != nil {
		allErrs = append(allErrs, validateNonNegativeQuantity(*c.Capacity, field.NewPath("capacity"))...)
	}
	if c.MaximumVolumeSize != nil {
		allErrs = append(allErrs, validateNonNegativeQuantity(*c.MaximumVolumeSize, field.NewPath("maximumVolumeSize"))...)
	}
	return allErrs
}

// --- RuntimeClass ---------------------------------------------------------

func runtimeClassStrategy() registry.Strategy {
	return registry.Define(registry.Typed[*nodev1.RuntimeClass, *nodev1.RuntimeClassList]{
		New:      func() *nodev1.RuntimeClass { return &nodev1.RuntimeClass{} },
		NewList:  func() *nodev1.RuntimeClassList { return &nodev1.RuntimeClassList{} },
		Validate: validateRuntimeClass,
		ValidateUpdate: func(rc, old *nodev1.RuntimeClass) field.ErrorList {
			allErrs := validateRuntimeClass(rc)
			return append(allErrs, validateImmutable(rc.Handler, old.Handler, field.NewPath("handler"))...)
		},
		Table: &registry.TypedTable[*nodev1.RuntimeClass]{
			Columns: []metav1.TableColumnDefinition{
				columnName(),
				columnString("Handler", nodev1.RuntimeClass{}.SwaggerDoc()["handler"], 0),
				columnAge(),
			},
			Row: func(rc *nodev1.RuntimeClass) []any {
				return []any{rc.Name, rc.Handler, cellAge(&rc.ObjectMeta)}
			},
		},
	})
}

func validateRuntimeClass(rc *nodev1.RuntimeClass) field.ErrorList {
	var allErrs field.ErrorList
	if rc.Handler == "" {
		allErrs = append(allErrs, field.Required(field.NewPath("handler"), ""))
	} else {
		for _, msg := range validation.IsDNS1123Label(rc.Handler) {
			allErrs = append(allErrs, field.Invalid(field.NewPath("handler"), rc.Handler, msg))
		}
	}
	if rc.Overhead != nil {
		// Upstream checks the fixed overhead as a container's limits.
		allErrs = append(allErrs, validateResources(&corev1.ResourceRequirements{Limits: rc.Overhead.PodFixed}, field.NewPath("overhead"))...)
	}
	if s := rc.Scheduling; s != nil {
		p := field.NewPath("scheduling")
		allErrs = append(allErrs, metav1validation.ValidateLabels(s.NodeSelector, p.Child("nodeSelector"))...)
		allErrs = append(allErrs, validateTolerations(s.Tolerations, p.Child("tolerations"))...)
		seen := map[corev1.Toleration]bool{}
		for i, t := range s.Tolerations {
			key := corev1.Toleration{Key: t.Key, Operator: t.Operator, Value: t.Value, Effect: t.Effect}
			if seen[key] {
				allErrs = append(allErrs, field.Duplicate(p.Child("tolerations").Index(i), t))
			}
			seen[key] = true
		}
	}
	return allErrs
}
