// Package history keeps the ControllerRevisions of the workload controllers
// that version their pod template (StatefulSet and DaemonSet), as upstream
// does: one revision per distinct template, named "<parent>-<hash>", with a
// monotonically increasing Revision number, owned by the parent through a
// controller reference.
//
// A revision's Data is a strategic merge patch that replaces the parent's
// pod template: {"spec":{"template":{...,"$patch":"replace"}}}. The hash is
// the FNV-32a of those bytes (and of the collision count, if any), encoded
// with the safe alphabet of rand.SafeEncodeString.
//
// It reads the revisions it is given (from an informer's lister) and writes
// ControllerRevisions through the client it is given: creates, revision
// number bumps and deletes. It never touches pods.
package history
