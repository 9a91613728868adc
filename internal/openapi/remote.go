package openapi

import (
	"encoding/json"
	"errors"
	"fmt"
	"maps"
	"strings"
	"time"
)

// SetRemoteV3 publishes the OpenAPI v3 documents extension API servers
// serve for their group versions (JSON, by "apis/<g>/<v>"), replacing
// those of the previous call: they are listed in the /openapi/v3 index and
// served from /openapi/v3/apis/<g>/<v> beside the built-in and custom
// ones. A group version served here already is left as it is; a document
// that is not a JSON object is an error and left out.
func (h *Handler) SetRemoteV3(docs map[string][]byte) error {
	h.mu.Lock()
	defer h.mu.Unlock()
	now := time.Now()
	var errs []error
	remote := make(map[string]*document, len(docs))
	for key, b := range docs {
		if !strings.HasPrefix(key, "apis/") || strings.Count(key, "/") != 2 {
			errs = append(errs, fmt.Errorf("openapi: remote document %q: not apis/<group>/<version>", key))
			continue
		}
		var obj map[string]json.RawMessage
		if err := json.Unmarshal(b, &obj); err != nil {
			errs = append(errs, fmt.Errorf("openapi: remote document %s: %w", key, err))
			continue
		}
		d := newDocumentJSON(b, now, v3ToProto)
		if old := h.remote[key]; old != nil && old.etag == d.etag {
			d = old
		}
		remote[key] = d
	}
	if maps.Equal(remote, h.remote) {
		return errors.Join(errs...) // unchanged: the aggregator's periodic refresh
	}
	old := h.cur.Load()
	st := &state{v2: old.v2, v3: maps.Clone(old.v3)}
	for key, d := range h.remote {
		if st.v3[key] == d {
			delete(st.v3, key)
		}
	}
	h.remote = remote
	h.addRemote(st)
	index, err := newV3Index(st.v3, now)
	if err != nil {
		return errors.Join(append(errs, err)...)
	}
	st.v3Index = publishable(old.v3Index, index, now)
	h.cur.Store(st)
	return errors.Join(errs...)
}

// addRemote adds the remote documents to st where st serves nothing for
// their group version. Called with mu held.
func (h *Handler) addRemote(st *state) {
	for key, d := range h.remote {
		if _, ok := st.v3[key]; !ok {
			st.v3[key] = d
		}
	}
}
