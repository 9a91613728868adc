package persistentvolume

// The default-class annotations, as upstream names them (component-helpers
// has the others: storagehelpers.AnnBindCompleted, AnnSelectedNode, …).
const (
	annDefaultClass     = "storageclass.kubernetes.io/is-default-class"
	annBetaDefaultClass = "storageclass.beta.kubernetes.io/is-default-class"
)
