package apiserver

import (
	"bytes"
	"context"
	"io"
	"net/http"
	"time"

	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/watch"

	"github.com/skiff-dev/skiff/internal/registry"
	"github.com/skiff-dev/skiff/internal/storage"
)

// watch streams the changes of a collection (or of one object on the legacy
// path) as WatchEvents, one frame per event, flushed per event. The stream
// ends at timeoutSeconds (or a random 30-60 minute server default), when
// the store ends the watch, when the client goes away, or on shutdown.
func (s *Server) watch(w http.ResponseWriter, r *http.Request, ri *requestInfo, st *registry.Store) {
	res := st.Resource
	if s.shuttingDown() {
		// A watch accepted now would end at once, and client-go's
		// reflectors take a watch that ends empty within a second for a
		// broken one and relist, which their handlers see as an update of
		// every object. A 429 makes them back off and watch again from
		// where they were (against the restarted server), as upstream
		// answers requests while it shuts down.
		s.fail(w, r, apierrors.NewTooManyRequests("The apiserver is shutting down, please try again later.", 1))
		return
	}
	opts, pred, err := s.listOptions(r, res, ri)
	if err != nil {
		s.fail(w, r, err)
		return
	}
	rd, err := s.newRender(r, res, viewsAllowed{table: true, partial: true}, true)
	if err != nil {
		s.fail(w, r, err)
		return
	}
	timeout := s.watchTimeout()
	if opts.TimeoutSeconds != nil && *opts.TimeoutSeconds > 0 {
		timeout = time.Duration(*opts.TimeoutSeconds) * time.Second
	}
	ctx, cancel := context.WithTimeout(r.Context(), timeout)
	defer cancel()

	wi, err := st.Watch(ctx, ri.namespace, storage.WatchOptions{
		Predicate:         pred,
		ResourceVersion:   opts.ResourceVersion,
		SendInitialEvents: opts.SendInitialEvents != nil && *opts.SendInitialEvents,
		AllowBookmarks:    opts.AllowWatchBookmarks,
	})
	if err != nil {
		s.fail(w, r, err)
		return
	}
	defer wi.Stop()

	info := rd.format.info
	contentType := info.MediaType
	if contentType != runtime.ContentTypeJSON {
		contentType += ";stream=watch"
	}
	w.Header().Set("Content-Type", contentType)
	w.Header().Set("X-Content-Type-Options", "nosniff")
	w.Header().Set("Cache-Control", "no-cache, private")
	w.WriteHeader(http.StatusOK)
	flusher, _ := w.(http.Flusher)
	if flusher != nil {
		flusher.Flush()
	}
	framer := info.StreamSerializer.Framer.NewFrameWriter(w)
	streamEncoder := info.StreamSerializer.Serializer
	var buf bytes.Buffer
	// One buffer for the protobuf encodings of this stream's events (the
	// encoder otherwise allocates one per event): the framer copies what
	// it is given, so the buffer is free again once Encode returns.
	alloc := &runtime.Allocator{}
	// Objects rendered the same way for every watcher are encoded once
	// (see eventMemo); tables carry per-stream state and are not.
	memoizable := !rd.pretty && (rd.format.view == viewObject || rd.format.view == viewPartial)
	// Events that come one after another are flushed together: under load
	// a flush per event was a TLS record and a write system call per event
	// per watcher. An event with nothing behind it is flushed at once.
	unflushed := false
	for {
		var ev watch.Event
		var ok bool
		select {
		case <-ctx.Done():
			return
		case <-s.shutdown:
			return
		case ev, ok = <-wi.ResultChan():
		default:
			if unflushed && flusher != nil {
				flusher.Flush()
			}
			unflushed = false
			select {
			case <-ctx.Done():
				return
			case <-s.shutdown:
				return
			case ev, ok = <-wi.ResultChan():
			}
		}
		if !ok {
			if unflushed && flusher != nil {
				flusher.Flush()
			}
			return
		}
		raw, err := s.encodeWatchObject(rd, info, ev, memoizable, &buf, alloc)
		if err != nil {
			s.log.Debug("encoding watch event failed", "err", err)
			return
		}
		if raw == nil { // the event could not be rendered: an Error event instead
			ev.Type = watch.Error
			raw = bytes.TrimRight(buf.Bytes(), "\n")
		}
		we := &metav1.WatchEvent{Type: string(ev.Type), Object: runtime.RawExtension{Raw: raw}}
		if err := encodeWithAllocator(streamEncoder, we, framer, alloc); err != nil {
			// The client went away.
			return
		}
		unflushed = true
	}
}

// encodeWatchObject returns the encoded object of ev as the stream
// renders it, from s.events when another watcher already encoded it. When
// the object cannot be rendered it encodes the error's Status into buf and
// returns nil bytes and no error.
func (s *Server) encodeWatchObject(rd *render, info runtime.SerializerInfo, ev watch.Event, memoizable bool, buf *bytes.Buffer, alloc runtime.MemoryAllocator) ([]byte, error) {
	var key eventKey
	memo := memoizable && (ev.Type == watch.Added || ev.Type == watch.Modified || ev.Type == watch.Deleted)
	if memo {
		key = eventKey{obj: ev.Object, res: rd.res, view: rd.format.view, viewGV: rd.format.viewGV, mediaType: info.MediaType}
		if b, ok := s.events.get(key); ok {
			return b, nil
		}
	}
	buf.Reset()
	out, err := rd.watchObject(ev)
	if err != nil {
		s.log.Debug("transforming watch event failed", "err", err)
		if err := info.Serializer.Encode(statusObject(err), buf); err != nil {
			return nil, err
		}
		return nil, nil
	}
	if err := encodeWithAllocator(info.Serializer, out, buf, alloc); err != nil {
		return nil, err
	}
	raw := bytes.TrimRight(buf.Bytes(), "\n")
	if memo {
		raw = bytes.Clone(raw) // buf is reused for the next event
		s.events.put(key, raw)
	}
	return raw, nil
}

// watchObject renders the object of one event. In Table form, only the
// first event carries the column definitions.
func (rd *render) watchObject(ev watch.Event) (runtime.Object, error) {
	if ev.Type == watch.Error {
		if _, ok := ev.Object.(*metav1.Status); !ok {
			return statusObject(nil), nil
		}
		return rd.transform(ev.Object)
	}
	if ev.Type == watch.Bookmark && rd.format.view == viewTable {
		t := &metav1.Table{TypeMeta: metav1.TypeMeta{APIVersion: rd.format.viewGV.String(), Kind: "Table"}}
		if m, err := meta.Accessor(ev.Object); err == nil {
			t.ResourceVersion = m.GetResourceVersion()
		}
		return t, nil
	}
	out, err := rd.transform(ev.Object)
	if err != nil {
		return nil, err
	}
	if rd.format.view == viewTable {
		rd.noHeaders = true
	}
	return out, nil
}

func statusObject(err error) *metav1.Status {
	if err == nil {
		st := toStatus(errUnknownWatchError)
		return &st
	}
	st := toStatus(err)
	return &st
}

var errUnknownWatchError = &unknownWatchError{}

type unknownWatchError struct{}

func (*unknownWatchError) Error() string { return "watch: unexpected error event" }

// encodeWithAllocator encodes obj to w with alloc's buffer when the
// encoder can use one (protobuf), as Encode otherwise.
func encodeWithAllocator(enc runtime.Encoder, obj runtime.Object, w io.Writer, alloc runtime.MemoryAllocator) error {
	if ea, ok := enc.(runtime.EncoderWithAllocator); ok {
		return ea.EncodeWithAllocator(obj, w, alloc)
	}
	return enc.Encode(obj, w)
}
