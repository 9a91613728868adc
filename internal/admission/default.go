package admission

import (
	"k8s.io/client-go/informers"
	"k8s.io/client-go/kubernetes"
)

// DefaultPluginNames are the plugins of Default in upstream's order
// (kube-apiserver's AllOrderedPlugins, NamespaceLifecycle aside).
func DefaultPluginNames() []string {
	return []string{"LimitRanger", "ServiceAccount", "NodeRestriction", "PodSecurity", "Priority", "StorageObjectInUseProtection", "RuntimeClass", "ResourceQuota"}
}

// Default returns the chain in upstream's order, reading through
// informers of f (it registers the namespace, service account, limit
// range, resource quota, priority class and runtime class informers; the
// caller starts f and should wait for its caches before serving) and
// through client for cache misses, quota charging and pod lookups. PodSecurity runs with the zero
// PodSecurityConfig (no exemptions, privileged for unlabelled namespaces).
//
// beforeQuota are plugins that run just before ResourceQuota, where
// upstream runs the admission webhooks (MutatingAdmissionWebhook and
// ValidatingAdmissionWebhook, from package admission/webhook, which
// depends on this one).
func Default(f informers.SharedInformerFactory, client kubernetes.Interface, beforeQuota ...Plugin) *Chain {
	plugins := []Plugin{
		NewLimitRanger(f.Core().V1().LimitRanges().Informer().GetIndexer(), client),
		NewServiceAccount(f.Core().V1().ServiceAccounts().Lister(), client),
		NewNodeRestriction(client),
		NewPodSecurity(PodSecurityConfig{}, f.Core().V1().Namespaces().Lister(), client),
		NewPriority(f.Scheduling().V1().PriorityClasses().Lister(), client),
		NewStorageObjectInUseProtection(),
		NewRuntimeClass(f.Node().V1().RuntimeClasses().Lister(), client),
	}
	plugins = append(plugins, beforeQuota...)
	return NewChain(append(plugins, NewResourceQuota(f.Core().V1().ResourceQuotas().Informer().GetIndexer(), client))...)
}
