// Package volumes prepares what the node agent's pod sync engine mounts
// into and sets in containers: the pods' volumes and the containers'
// environments.
//
// It owns ROOT/pods/<uid>/volumes/<plugin>/<name> (plugin names as
// upstream: kubernetes.io~empty-dir, ~configmap, ~secret, ~projected,
// ~downward-api) and, at teardown, the whole of ROOT/pods/<uid>.
//
// Inputs: the pod; config maps and secrets one object at a time, as the
// node authorizer allows a node (a list and watch with the field selector
// metadata.name=<name>, started when a pod first needs the object and
// stopped at the teardown of the last pod that used it); services through
// one informer per namespace the node's pods use (a sync reads memory
// only, and updates arrive by watch, never by polling: the creation,
// change or deletion of a config map or secret is passed to
// Config.Changed for each pod using it, whose next sync rewrites its
// volumes); persistent volume claims and volumes
// with a GET when a pod is first set up; the node's allocatable resources
// (a GET, cached for a minute) for resourceFieldRefs of containers without
// limits. Outputs: files and tmpfs mounts on the node, and TokenRequests
// (serviceaccounts/token) for projected service account tokens. It never
// writes API objects and never talks to the container runtime.
//
// Volume contents that come from the API (configMap, secret, downwardAPI,
// projected) are written as upstream does: into a fresh timestamped
// directory, published by renaming a ..data symlink to it, with every
// visible file a symlink through ..data; a reader sees a whole old or whole
// new payload. Secret and projected volumes are on a tmpfs when the agent
// may mount (root), else in a directory only root can read; emptyDir with
// medium Memory is a tmpfs (sizeLimit as its size).
//
// # Usage
//
//	m, err := volumes.New(volumes.Config{RootDir: root + "/pods", Client: cs, NodeName: node})
//	go m.Run(ctx) // stops the informers when ctx ends
//	// each sync of a pod that should run:
//	paths, err := m.Setup(ctx, pod)   // FailedMount on error
//	for each container c to create:
//		mounts, err := m.Mounts(pod, c, paths)
//		env, err := m.Env(ctx, pod, c) // CreateContainerConfigError on error
//	// once every container of a deleted pod is gone:
//	err = m.Teardown(ctx, pod.UID)
package volumes
