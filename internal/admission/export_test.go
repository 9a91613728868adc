package admission

// Helpers of this package's tests, for the external integration test.
var (
	Namespace        = namespace
	PodCreate        = podCreate
	TestPod          = testPod
	PrivilegedPod    = privilegedPod
	SyncedQuota      = syncedQuota
	UsedOf           = usedOf
	RL               = rl
	LimitRangeOf     = limitRange
	ServiceAccountOf = serviceAccount
)
