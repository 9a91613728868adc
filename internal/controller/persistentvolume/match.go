package persistentvolume

// Annotations and names shared with upstream.
const (
	annBindCompleted     = "pv.kubernetes.io/bind-completed"
	annBoundByController = "pv.kubernetes.io/bound-by-controller"
	annProvisionedBy     = "pv.kubernetes.io/provisioned-by"
	annSelectedNode      = "volume.kubernetes.io/selected-node"
	annDefaultClass      = "storageclass.kubernetes.io/is-default-class"
	annBetaDefaultClass  = "storageclass.beta.kubernetes.io/is-default-class"
	annBetaClass         = "volume.beta.kubernetes.io/storage-class"
)
