package apiserver

import (
	"bytes"
	"encoding/json"
	"strings"
	"sync"
	"time"

	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
)

// createFields remembers the managedFields entry the field manager
// computed for a create, so that creating an object of the same shape
// again (the pods of one ReplicaSet, a benchmark's pods) skips
// structured-merge-diff, which otherwise costs about as much CPU as the
// rest of the create.
//
// What the field manager records for a create (an Update by one manager
// on an empty live object) is a function of the manager's name and of
// the object as structured-merge-diff sees it, which is the object's JSON
// form (it walks the Go value by its json tags and omitempty rules, and
// turns values with their own JSON encoding into the same scalars). It
// records paths, not values: a path names the fields of maps and structs
// (the keys of the JSON objects) and picks list items by their keys or
// values, so a scalar's value shows only inside a list; outside lists
// only its presence does. So the key is the manager and the object's JSON
// with every scalar outside lists replaced by a placeholder (see shape):
// the Scheduled events of a thousand pods, or pods whose labels differ
// only in value, share one key. Equal keys give equal entries, and only
// the time of the entry differs between two creates. An object already
// carrying managedFields goes the full way, as does any object whose JSON
// could stand for another (JSON replaces invalid UTF-8).
type createFields struct {
	mu      sync.Mutex
	entries map[string]metav1.ManagedFieldsEntry
	bytes   int       // of the keys and fields in entries
	bufs    sync.Pool // of *bytes.Buffer
}

// createFieldsBytes bounds the memory the remembered shapes of one
// resource take; when full, the memo starts over.
const createFieldsBytes = 1 << 20

// maxCreateFieldsKey bounds the size of one key (the object's JSON): a
// large object is not worth remembering, and would hold memory.
const maxCreateFieldsKey = 32 << 10

func newCreateFields() *createFields {
	return &createFields{
		entries: map[string]metav1.ManagedFieldsEntry{},
		bufs:    sync.Pool{New: func() any { return new(bytes.Buffer) }},
	}
}

// track returns obj with the managedFields of its creation by manager:
// remembered when an object of the same shape was created before, else
// computed by compute (which may modify and return obj), and then
// remembered.
func (c *createFields) track(obj runtime.Object, manager string, compute func() runtime.Object) runtime.Object {
	acc, err := meta.Accessor(obj)
	if err != nil || len(acc.GetManagedFields()) > 0 {
		return compute()
	}
	buf := c.bufs.Get().(*bytes.Buffer)
	defer func() {
		if buf.Cap() <= maxCreateFieldsKey {
			c.bufs.Put(buf)
		}
	}()
	buf.Reset()
	if !c.key(buf, obj, manager) || buf.Len() > maxCreateFieldsKey {
		return compute()
	}
	c.mu.Lock()
	e, ok := c.entries[string(buf.Bytes())]
	c.mu.Unlock()
	if ok {
		e.Time = &metav1.Time{Time: time.Now().UTC()}
		e.FieldsV1 = &metav1.FieldsV1{Raw: bytes.Clone(e.FieldsV1.Raw)}
		acc.SetManagedFields([]metav1.ManagedFieldsEntry{e})
		return obj
	}
	out := compute()
	outAcc, err := meta.Accessor(out)
	if err != nil {
		return out
	}
	mf := outAcc.GetManagedFields()
	if len(mf) != 1 || mf[0].Operation != metav1.ManagedFieldsOperationUpdate || mf[0].FieldsV1 == nil {
		return out
	}
	e = mf[0]
	e.Time = nil
	e.FieldsV1 = &metav1.FieldsV1{Raw: bytes.Clone(e.FieldsV1.Raw)}
	size := buf.Len() + len(e.FieldsV1.Raw)
	c.mu.Lock()
	if c.bytes+size > createFieldsBytes {
		clear(c.entries)
		c.bytes = 0
	}
	if _, ok := c.entries[string(buf.Bytes())]; !ok {
		c.entries[buf.String()] = e
		c.bytes += size
	}
	c.mu.Unlock()
	return out
}

// key writes the memo key of obj into buf and reports whether obj may use
// the memo.
func (c *createFields) key(buf *bytes.Buffer, obj runtime.Object, manager string) bool {
	buf.WriteString(manager)
	buf.WriteByte(0)
	start := buf.Len()
	if err := json.NewEncoder(buf).Encode(obj); err != nil {
		return false
	}
	// encoding/json writes invalid UTF-8 as the escape \ufffd (and a real
	// U+FFFD as itself), so the escape marks a JSON that could stand for
	// more than one object.
	if bytes.Contains(buf.Bytes()[start:], []byte(`\ufffd`)) {
		return false
	}
	buf.Truncate(start + len(shape(buf.Bytes()[start:])))
	return true
}

// shape rewrites, in place, the JSON document doc as encoding/json writes
// it (no insignificant space) with every scalar outside arrays replaced by
// a placeholder: a non-empty string by "-", a non-zero number by 1.
// Object keys, empty strings, zeros, booleans and nulls stay, as does
// everything inside arrays. It returns the shorter document.
func shape(doc []byte) []byte {
	w := 0
	arrays := 0
	for r := 0; r < len(doc); {
		switch b := doc[r]; {
		case b == '"':
			end := r + 1
			for doc[end] != '"' {
				if doc[end] == '\\' {
					end++
				}
				end++
			}
			end++ // past the closing quote
			if arrays > 0 || end == r+2 || (end < len(doc) && doc[end] == ':') {
				w += copy(doc[w:], doc[r:end])
			} else {
				w += copy(doc[w:], `"-"`)
			}
			r = end
		case b == '-' || (b >= '0' && b <= '9'):
			end := r + 1
			for end < len(doc) && strings.IndexByte("0123456789.eE+-", doc[end]) >= 0 {
				end++
			}
			if arrays > 0 || (end == r+1 && b == '0') {
				w += copy(doc[w:], doc[r:end])
			} else {
				doc[w] = '1'
				w++
			}
			r = end
		default:
			switch b {
			case '[':
				arrays++
			case ']':
				arrays--
			}
			doc[w] = b
			w++
			r++
		}
	}
	return doc[:w]
}
