// Package ownership decides which objects a controller owns through
// controller references (metadata.ownerReferences with controller=true),
// as the upstream controllers do: a controller owns the objects whose
// controller reference names its uid, adopts orphans its selector matches,
// and releases owned objects its selector no longer matches.
//
// It reads the objects it is given and writes only through the Patcher it
// is given: strategic merge patches of metadata.ownerReferences guarded by
// the object's uid. It never creates or deletes objects.
package ownership
