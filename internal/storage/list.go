package storage

import (
	"context"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"strconv"
	"strings"

	"go.etcd.io/etcd/api/v3/v3rpc/rpctypes"
	clientv3 "go.etcd.io/etcd/client/v3"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/api/meta"
	"k8s.io/apimachinery/pkg/runtime"
)

// List implements Interface. Without Limit and Continue (or with RV "0")
// it is served from the watch cache: RV "" after the cache has caught up
// with etcd's current revision, "N" once it has reached N. Pages, and
// Exact matches, are read from etcd at the list's revision. Items of a list
// served from the cache are shared with it and must not be mutated.
func (s *Store) List(ctx context.Context, prefix string, opts ListOptions) (runtime.Object, error) {
	m := newMatcher(opts.Predicate)
	if opts.Continue != "" {
		if opts.ResourceVersion != "" && opts.ResourceVersion != "0" {
			return nil, apierrors.NewBadRequest("specifying resource version is not allowed when using continue")
		}
		rev, start, err := decodeContinue(opts.Continue, prefix)
		if err != nil {
			return nil, err
		}
		return s.listEtcd(ctx, prefix, start, rev, opts.Limit, m, true)
	}
	rv, err := parseRV(opts.ResourceVersion)
	if err != nil {
		return nil, err
	}
	switch opts.ResourceVersionMatch {
	case "", MatchNotOlderThan:
	case MatchExact:
		if rv == 0 {
			return nil, apierrors.NewBadRequest("resourceVersionMatch=Exact requires a non-zero resourceVersion")
		}
		return s.listEtcd(ctx, prefix, prefix, rv, opts.Limit, m, false)
	default:
		return nil, apierrors.NewBadRequest(fmt.Sprintf("unknown resourceVersionMatch %q", opts.ResourceVersionMatch))
	}

	switch {
	case opts.ResourceVersion == "0":
		return s.listCache(prefix, m, opts.Encoder)
	case opts.ResourceVersion == "":
		if opts.Limit > 0 {
			return s.listEtcd(ctx, prefix, prefix, 0, opts.Limit, m, false)
		}
		fresh, err := s.waitFresh(ctx)
		if err != nil {
			return nil, err
		}
		if !fresh {
			// The cache lags: a consistent read straight from etcd.
			s.logger.Info("watch cache behind etcd, listing from etcd")
			return s.listEtcd(ctx, prefix, prefix, 0, 0, m, false)
		}
		return s.listCache(prefix, m, opts.Encoder)
	default:
		if opts.Limit > 0 {
			if opts.ResourceVersionMatch == "" {
				// Legacy semantics of a paged list at N: exactly N.
				return s.listEtcd(ctx, prefix, prefix, rv, opts.Limit, m, false)
			}
			if _, err := s.waitCache(ctx, rv); err != nil {
				return nil, err
			}
			return s.listEtcd(ctx, prefix, prefix, 0, opts.Limit, m, false)
		}
		if _, err := s.waitCache(ctx, rv); err != nil {
			return nil, err
		}
		return s.listCache(prefix, m, opts.Encoder)
	}
}

// waitCache waits until the cache reaches rv, or fails with upstream's
// "Too large resource version" 504.
func (s *Store) waitCache(ctx context.Context, rv int64) (int64, error) {
	ok, err := s.waitRev(ctx, rv, true)
	if err != nil {
		return 0, err
	}
	cur := s.currentRev()
	if !ok {
		return 0, tooLargeError(rv, cur)
	}
	return cur, nil
}

// listCache serves a whole list from memory; with enc, as an EncodedList.
func (s *Store) listCache(prefix string, m matcher, enc *ItemEncoder) (runtime.Object, error) {
	c := &s.cache
	c.mu.RLock()
	if c.stopped {
		c.mu.RUnlock()
		return nil, s.errStopped()
	}
	// The object check may be slow (a conversion webhook): it runs after
	// the lock is released, on the entries the selectors chose.
	objCheck := m.obj
	m.obj = nil
	var entries []*entry
	if m.everything() {
		entries = c.entriesUnder(prefix)
	} else {
		c.under(prefix, func(e *entry) bool {
			if m.matches(e) {
				entries = append(entries, e)
			}
			return true
		})
	}
	rev := c.rev
	c.mu.RUnlock()
	if objCheck != nil {
		kept := entries[:0:0]
		for _, e := range entries {
			if objCheck(e.obj) {
				kept = append(kept, e)
			}
		}
		entries = kept
	}
	if enc != nil {
		items := make([][]byte, len(entries))
		for k, e := range entries {
			b, err := e.encoded(enc)
			if err != nil {
				return nil, apierrors.NewInternalError(fmt.Errorf("encoding %s %s: %w", s.resource, e.key, err))
			}
			items[k] = b
		}
		return &EncodedList{ResourceVersion: strconv.FormatInt(rev, 10), Encoding: enc.ID, Items: items}, nil
	}
	objs := make([]runtime.Object, len(entries))
	for k, e := range entries {
		objs[k] = e.obj
	}
	return s.newList(objs, rev, "", nil)
}

// newList builds the resource's list object.
func (s *Store) newList(objs []runtime.Object, rev int64, cont string, remaining *int64) (runtime.Object, error) {
	list := s.newListFunc()
	if err := meta.SetList(list, objs); err != nil {
		return nil, apierrors.NewInternalError(fmt.Errorf("building %s list: %w", s.resource, err))
	}
	lm, err := meta.ListAccessor(list)
	if err != nil {
		return nil, apierrors.NewInternalError(fmt.Errorf("building %s list: %w", s.resource, err))
	}
	lm.SetResourceVersion(strconv.FormatInt(rev, 10))
	lm.SetContinue(cont)
	lm.SetRemainingItemCount(remaining)
	return list, nil
}

// listEtcd reads objects under prefix from etcd at rev (0: the current
// revision), starting at start (a key relative to the store prefix), up to
// limit matching items (0: all). It keeps reading while filtering leaves a
// page short.
func (s *Store) listEtcd(ctx context.Context, prefix, start string, rev, limit int64, m matcher, continuing bool) (runtime.Object, error) {
	end := s.rangeEnd(prefix)
	key := s.prefix + start
	batch := int64(listPageSize)
	if limit > 0 {
		batch = limit
		if !m.everything() {
			batch = min(max(2*limit, 500), 10000)
		}
	}
	var objs []runtime.Object
	for {
		opts := []clientv3.OpOption{clientv3.WithRange(end), clientv3.WithLimit(batch)}
		if rev != 0 {
			opts = append(opts, clientv3.WithRev(rev))
		}
		resp, err := s.client.Get(ctx, key, opts...)
		if err != nil {
			switch {
			case errors.Is(err, rpctypes.ErrCompacted) && continuing:
				// As upstream: a token to go on from here at the newest
				// revision (rv -1), in an inconsistent list.
				st := apierrors.NewResourceExpired(inconsistentContinue)
				// From this request's start: items of earlier batches
				// were not returned yet.
				st.ErrStatus.ListMeta.Continue = encodeContinue(-1, start)
				return nil, st
			case errors.Is(err, rpctypes.ErrCompacted):
				return nil, apierrors.NewResourceExpired(resourceVersionTooOldList)
			case errors.Is(err, rpctypes.ErrFutureRev):
				return nil, tooLargeError(rev, s.currentRev())
			}
			return nil, s.etcdError(ctx, "listing", prefix, err)
		}
		if rev == 0 {
			rev = resp.Header.Revision
		}
		for i, kv := range resp.Kvs {
			obj, err := s.decode(kv.Key, kv.Value, kv.ModRevision)
			if err != nil {
				return nil, err
			}
			if !m.everything() {
				e := &entry{obj: obj}
				e.labels, e.fields, err = s.attrs(obj)
				e.attrsErr = err != nil
				if !m.matches(e) {
					continue
				}
			}
			objs = append(objs, obj)
			if limit > 0 && int64(len(objs)) == limit {
				more := i < len(resp.Kvs)-1 || resp.More
				if !more {
					return s.newList(objs, rev, "", nil)
				}
				next := strings.TrimPrefix(string(kv.Key), s.prefix) + "\x00"
				var remaining *int64
				if m.everything() {
					n := resp.Count - int64(i+1)
					remaining = &n
				}
				return s.newList(objs, rev, encodeContinue(rev, next), remaining)
			}
		}
		if !resp.More || len(resp.Kvs) == 0 {
			return s.newList(objs, rev, "", nil)
		}
		key = string(resp.Kvs[len(resp.Kvs)-1].Key) + "\x00"
	}
}

// continueToken is the JSON inside a continue parameter, as upstream
// encodes it: the list's revision and the next key relative to the
// resource prefix.
type continueToken struct {
	APIVersion      string `json:"v"`
	ResourceVersion int64  `json:"rv"`
	StartKey        string `json:"start"`
}

const continueVersion = "meta.k8s.io/v1"

func encodeContinue(rev int64, start string) string {
	data, _ := json.Marshal(continueToken{APIVersion: continueVersion, ResourceVersion: rev, StartKey: start})
	return base64.RawURLEncoding.EncodeToString(data)
}

// decodeContinue parses a token and checks that it continues a list under
// prefix (a token may not reach into another namespace).
func decodeContinue(token, prefix string) (int64, string, error) {
	bad := func(why string) error {
		return apierrors.NewBadRequest(fmt.Sprintf("continue key is not valid: %s", why))
	}
	data, err := base64.RawURLEncoding.DecodeString(token)
	if err != nil {
		return 0, "", bad(err.Error())
	}
	var t continueToken
	if err := json.Unmarshal(data, &t); err != nil {
		return 0, "", bad(err.Error())
	}
	switch {
	case t.APIVersion != continueVersion:
		return 0, "", bad(fmt.Sprintf("incorrect encoded version %q", t.APIVersion))
	case t.ResourceVersion == 0 || t.ResourceVersion < -1:
		return 0, "", bad("incorrect encoded resource version")
	case t.StartKey == "" || !strings.HasPrefix(t.StartKey, prefix) || strings.Contains(t.StartKey, "/../"):
		return 0, "", bad("start key outside the listed collection")
	}
	if t.ResourceVersion == -1 {
		// An inconsistent continue: the newest revision.
		return 0, t.StartKey, nil
	}
	return t.ResourceVersion, t.StartKey, nil
}
