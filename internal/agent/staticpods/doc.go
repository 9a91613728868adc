// Package staticpods turns the pod manifests in a directory on the node
// (the agent's --pod-manifest-path) into mirror pods in the API server,
// bound to the node, so that the agent's pod sync engine (package pods),
// which runs exactly the pods bound to its node, runs them too.
//
// Inputs: the manifest files in Config.Dir (*.yaml, *.yml, *.json, one Pod
// each; dotfiles and other names are ignored), re-read every
// Config.Interval and, on Linux, soon after inotify reports a change; the
// pods bound to the node (an informer, whose changes also trigger a pass);
// the Node object (its UID, for the owner reference).
//
// Outputs: for each manifest one pod named <metadata.name>-<node name> in
// its namespace ("default" when it names none) with spec.nodeName set, a
// toleration of every NoExecute taint, the annotations
// kubernetes.io/config.source=file, kubernetes.io/config.hash and
// kubernetes.io/config.mirror (both the manifest's hash) and
// kubernetes.io/config.seen, and a controller owner reference to the Node
// so that deleting the Node garbage-collects it. Warning events
// (ReasonInvalidManifest) on the Node for manifests that do not parse or
// that the API server rejects.
//
// It only ever deletes pods bound to its node that carry the
// kubernetes.io/config.mirror annotation, never any other pod, and it
// never stops containers itself.
//
// # One pass
//
// A pass is level-triggered and idempotent: read the directory, then per
// mirror pod name
//
//	manifest, no pod            ─> create (when the Node and the namespace exist)
//	manifest, pod being deleted ─> wait until it is gone, then create
//	manifest, pod of other hash
//	  or of an older Node       ─> delete it gracefully (UID precondition)
//	no manifest, mirror pod     ─> delete it gracefully (UID precondition)
//
// Deletions are graceful, with the pod's own grace period: the agent runs
// preStop hooks, stops the containers and then deletes the pod object with
// grace 0 itself. So a changed manifest replaces its pod only once the
// old one is stopped and gone, and a mirror pod that a user deletes comes
// back (with a new UID, so its containers start afresh) once the agent
// has stopped it. A directory that cannot be read (or does not exist)
// changes nothing: the previous mirror pods stay.
//
// # Usage
//
//	err := staticpods.Run(ctx, staticpods.Config{Client: cs, NodeName: node,
//		Dir: "/etc/skiff/manifests", Recorder: rec, Logger: log})
package staticpods
