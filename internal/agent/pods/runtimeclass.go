package pods

import (
	"fmt"

	v1 "k8s.io/api/core/v1"
	nodev1 "k8s.io/api/node/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/types"
)

// runtimeHandler returns the CRI runtime handler of pod's RuntimeClass, as
// upstream's kubelet resolves it when it creates a sandbox: "" (the
// runtime's default) for a pod naming no class, the class's handler, or
// an error when the class is not in the informer's cache (the lister's
// NotFound, `runtimeclass.node.k8s.io "<name>" not found`): the sandbox is
// then not created and the sync is retried. Called by pod workers only
// after Run has set m.runtimeClasses.
func (m *Manager) runtimeHandler(pod *v1.Pod) (string, error) {
	if pod.Spec.RuntimeClassName == nil || *pod.Spec.RuntimeClassName == "" {
		return "", nil
	}
	name := *pod.Spec.RuntimeClassName
	if m.runtimeClasses == nil {
		return "", fmt.Errorf("looking up RuntimeClass %s: no RuntimeClass informer", name)
	}
	rc, err := m.runtimeClasses.Get(name)
	if apierrors.IsNotFound(err) {
		return "", err
	}
	if err != nil {
		return "", fmt.Errorf("looking up RuntimeClass %s: %w", name, err)
	}
	return rc.Handler, nil
}

// runtimeClassAdded enqueues the pods naming a class that has just
// appeared in the cache, so that a pod that waited for it gets its sandbox
// without waiting out its retry back-off. Called by the RuntimeClass
// informer.
func (m *Manager) runtimeClassAdded(rc *nodev1.RuntimeClass) {
	var uids []types.UID
	m.mu.Lock()
	for uid, ps := range m.pods {
		if ps.pod != nil && !ps.gone && ps.pod.Spec.RuntimeClassName != nil && *ps.pod.Spec.RuntimeClassName == rc.Name {
			uids = append(uids, uid)
		}
	}
	m.mu.Unlock()
	for _, uid := range uids {
		m.queue.Add(uid)
	}
}
