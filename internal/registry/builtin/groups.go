package builtin

import "github.com/skiff-dev/skiff/internal/registry"

// groupResources returns the resources of the named API groups (apps, batch,
// networking.k8s.io, rbac.authorization.k8s.io, …), group by group in a
// stable order.
func groupResources() []*registry.Resource {
	var out []*registry.Resource
	for _, group := range [][]*registry.Resource{
		appsResources(),
		otherResources(), // autoscaling, coordination, policy, scheduling, storage
		batchResources(),
		storageNodeResources(), // storage.k8s.io CSI resources, node.k8s.io
		certificatesResources(),
		networkingResources(), // networking.k8s.io and discovery.k8s.io
		networkingIPResources(),
		eventsResources(),
		rbacResources(),
		apiextensionsResources(), // customresourcedefinitions
		admissionregistrationResources(),
		flowcontrolResources(), // flowschemas, prioritylevelconfigurations
		apiregistrationResources(),
	} {
		out = append(out, group...)
	}
	return out
}
