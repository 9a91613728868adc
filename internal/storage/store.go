package storage

import (
	"bytes"
	"context"
	"crypto/sha256"
	"errors"
	"fmt"
	"log/slog"
	"strconv"
	"strings"
	"time"

	"go.etcd.io/etcd/api/v3/mvccpb"
	"go.etcd.io/etcd/api/v3/v3rpc/rpctypes"
	clientv3 "go.etcd.io/etcd/client/v3"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/runtime/schema"
)

// Defaults for the tunable Config fields.
const (
	defaultEventBuffer        = 10000
	defaultWatcherBuffer      = 1024
	defaultBookmarkInterval   = time.Minute
	defaultFreshnessTimeout   = 3 * time.Second
	optimisticLockErrorMsg    = "the object has been modified; please apply your changes to the latest version and try again"
	tooLargeResourceVersion   = "Too large resource version"
	resourceVersionTooOldList = "The resourceVersion for the provided list is too old."
	inconsistentContinue      = "The provided continue parameter is too old to display a consistent list result. You can start a new list without the continue parameter, or use the continue token in this response to retrieve the remainder of the results. Continuing with the provided token results in an inconsistent list - objects that were created, modified, or deleted between the time the first chunk was returned and now may show up in the list."
)

// Config configures one resource's Store.
type Config struct {
	Client *clientv3.Client
	// Prefix is the etcd key prefix of the resource, ending in "/", e.g.
	// "/registry/pods/"; keys are Prefix+"ns/name" or Prefix+"name".
	Prefix string
	// Resource names the resource in errors.
	Resource schema.GroupResource
	// Codec encodes values in etcd (see ProtobufCodec).
	Codec       runtime.Codec
	NewFunc     func() runtime.Object
	NewListFunc func() runtime.Object
	// Attrs gives the label and field sets selectors match; nil means
	// labels plus metadata.name and metadata.namespace.
	Attrs  AttrFunc
	Logger *slog.Logger
	// Transformer, when set, encrypts every value written to etcd and
	// decrypts every value read from it (see Transformer); nil stores the
	// encoded objects as they are.
	Transformer Transformer
	// TTL, when positive, makes etcd delete each object between TTL and
	// TTL plus 5% (at most a minute) after its last create or update,
	// through leases shared by the writes of a short window (upstream's
	// --event-ttl). The deletion reaches watchers as a DELETED event.
	TTL time.Duration

	// EventBuffer is how many recent events the watch cache keeps for
	// resuming watches; 0 means 10000.
	EventBuffer int
	// WatcherBuffer is how many events one watcher may lag behind before
	// it is closed; 0 means 1024.
	WatcherBuffer int
	// BookmarkInterval is the period of BOOKMARK events to watchers that
	// allow them; 0 means one minute.
	BookmarkInterval time.Duration
	// FreshnessTimeout bounds how long a read waits for the cache to reach
	// a requested or current revision; 0 means 3 seconds.
	FreshnessTimeout time.Duration

	// beforeWatch, when set, runs before every etcd watch the cache starts
	// (tests only, in this package).
	beforeWatch func()
}

// Store is the etcd-backed Interface of one resource with its watch cache.
// Create one with New; it is safe for concurrent use.
type Store struct {
	client      *clientv3.Client
	prefix      string
	resource    schema.GroupResource
	codec       runtime.Codec
	newFunc     func() runtime.Object
	newListFunc func() runtime.Object
	attrs       AttrFunc
	logger      *slog.Logger
	transformer Transformer // nil: values are stored as encoded
	leases      *leases     // nil: objects do not expire

	eventBuffer      int
	watcherBuffer    int
	bookmarkInterval time.Duration
	freshnessTimeout time.Duration

	beforeWatch func()

	cache cache
}

var _ Interface = (*Store)(nil)

// New creates the store of one resource and starts its watch cache, which
// runs until ctx is done. It returns once the cache holds the state of
// etcd at some revision; after ctx is done, List and Watch fail with 503.
func New(ctx context.Context, cfg Config) (*Store, error) {
	if cfg.Client == nil || cfg.Codec == nil || cfg.NewFunc == nil || cfg.NewListFunc == nil {
		return nil, errors.New("creating storage: Client, Codec, NewFunc and NewListFunc are required")
	}
	if !strings.HasSuffix(cfg.Prefix, "/") {
		return nil, fmt.Errorf("creating storage for %s: prefix %q must end in /", cfg.Resource, cfg.Prefix)
	}
	s := &Store{
		client:           cfg.Client,
		prefix:           cfg.Prefix,
		resource:         cfg.Resource,
		codec:            cfg.Codec,
		newFunc:          cfg.NewFunc,
		newListFunc:      cfg.NewListFunc,
		attrs:            cfg.Attrs,
		logger:           cfg.Logger,
		transformer:      cfg.Transformer,
		eventBuffer:      cfg.EventBuffer,
		watcherBuffer:    cfg.WatcherBuffer,
		bookmarkInterval: cfg.BookmarkInterval,
		freshnessTimeout: cfg.FreshnessTimeout,
		beforeWatch:      cfg.beforeWatch,
	}
	if cfg.TTL > 0 {
		s.leases = newLeases(cfg.Client, cfg.TTL)
	}
	if s.attrs == nil {
		s.attrs = DefaultAttrs
	}
	if s.logger == nil {
		s.logger = slog.New(slog.DiscardHandler)
	}
	s.logger = s.logger.With("resource", cfg.Resource.String())
	if s.eventBuffer <= 0 {
		s.eventBuffer = defaultEventBuffer
	}
	if s.watcherBuffer <= 0 {
		s.watcherBuffer = defaultWatcherBuffer
	}
	if s.bookmarkInterval <= 0 {
		s.bookmarkInterval = defaultBookmarkInterval
	}
	if s.freshnessTimeout <= 0 {
		s.freshnessTimeout = defaultFreshnessTimeout
	}
	if err := s.startCache(ctx); err != nil {
		return nil, fmt.Errorf("starting watch cache of %s: %w", cfg.Resource, err)
	}
	return s, nil
}

// Create stores obj under key when nothing is there, in one transaction.
// It takes ownership of obj: obj's resourceVersion is cleared before
// encoding and set to the new revision, and obj itself is returned.
func (s *Store) Create(ctx context.Context, key string, obj runtime.Object, guards ...Guard) (runtime.Object, error) {
	acc, err := meta.Accessor(obj)
	if err != nil {
		return nil, apierrors.NewInternalError(fmt.Errorf("creating %s: %w", key, err))
	}
	acc.SetResourceVersion("")
	full := s.prefix + key
	data, err := runtime.Encode(s.codec, obj)
	if err != nil {
		return nil, apierrors.NewInternalError(fmt.Errorf("encoding %s: %w", key, err))
	}
	if data, err = s.seal(full, data); err != nil {
		return nil, err
	}
	cmps := make([]clientv3.Cmp, 0, 1+len(guards))
	cmps = append(cmps, clientv3.Compare(clientv3.CreateRevision(full), "=", 0))
	for _, g := range guards {
		cmps = append(cmps, clientv3.Compare(clientv3.ModRevision(g.Key), "=", g.ModRevision))
	}
	putOpts, err := s.putOptions(ctx, key)
	if err != nil {
		return nil, err
	}
	txn := s.client.Txn(ctx).If(cmps...).Then(clientv3.OpPut(full, string(data), putOpts...))
	if len(guards) > 0 {
		// Tell a taken key from a changed guard without another round trip.
		txn = txn.Else(clientv3.OpGet(full, clientv3.WithCountOnly()))
	}
	resp, err := txn.Commit()
	if err != nil {
		return nil, s.etcdError(ctx, "creating", key, err)
	}
	if !resp.Succeeded {
		if len(guards) > 0 && resp.Responses[0].GetResponseRange().GetCount() == 0 {
			return nil, ErrGuardChanged
		}
		return nil, apierrors.NewAlreadyExists(s.resource, nameOf(key))
	}
	acc.SetResourceVersion(strconv.FormatInt(resp.Header.Revision, 10))
	return obj, nil
}

// EtcdKey implements Interface.
func (s *Store) EtcdKey(key string) string { return s.prefix + key }

// Get reads key from etcd (a linearizable read). The object is the
// caller's to mutate.
func (s *Store) Get(ctx context.Context, key string) (runtime.Object, error) {
	resp, err := s.client.Get(ctx, s.prefix+key)
	if err != nil {
		return nil, s.etcdError(ctx, "getting", key, err)
	}
	if len(resp.Kvs) == 0 {
		return nil, apierrors.NewNotFound(s.resource, nameOf(key))
	}
	return s.decode(resp.Kvs[0].Key, resp.Kvs[0].Value, resp.Kvs[0].ModRevision)
}

// GuaranteedUpdate implements Interface. The first attempt starts from the
// watch cache's copy of key (no etcd read); the compare-and-swap catches a
// stale copy, and any decision fn or the resourceVersion check makes on a
// possibly stale copy is retried on a fresh read from etcd before it is
// returned. Later attempts use the state the failed compare's else branch
// read, so each retry costs one transaction.
func (s *Store) GuaranteedUpdate(ctx context.Context, key string, allowCreate bool, fn UpdateFunc) (runtime.Object, error) {
	full := s.prefix + key
	st, err := s.initialState(ctx, key, true)
	if err != nil {
		return nil, err
	}
	for {
		if err := ctx.Err(); err != nil {
			return nil, s.etcdError(ctx, "updating", key, err)
		}
		// refresh replaces a cached (possibly stale) state with etcd's.
		refresh := func() error {
			st, err = s.etcdState(ctx, key)
			return err
		}
		if st.obj == nil && !allowCreate {
			return nil, apierrors.NewNotFound(s.resource, nameOf(key))
		}
		out, err := fn(st.obj)
		if err != nil {
			if st.stale {
				if err := refresh(); err != nil {
					return nil, err
				}
				continue
			}
			return nil, err
		}
		if out == nil {
			if st.stale {
				if err := refresh(); err != nil {
					return nil, err
				}
				continue
			}
			if st.obj == nil {
				return nil, apierrors.NewNotFound(s.resource, nameOf(key))
			}
			return st.obj, nil
		}
		acc, err := meta.Accessor(out)
		if err != nil {
			return nil, apierrors.NewInternalError(fmt.Errorf("updating %s: %w", key, err))
		}
		if rv := acc.GetResourceVersion(); rv != "" && (st.obj == nil || rv != strconv.FormatInt(st.rev, 10)) {
			if st.stale {
				if err := refresh(); err != nil {
					return nil, err
				}
				continue
			}
			return nil, apierrors.NewConflict(s.resource, nameOf(key), errors.New(optimisticLockErrorMsg))
		}
		acc.SetResourceVersion("")
		data, err := runtime.Encode(s.codec, out)
		if err != nil {
			return nil, apierrors.NewInternalError(fmt.Errorf("encoding %s: %w", key, err))
		}
		if st.obj != nil && st.stores(data) {
			if st.stale {
				if err := refresh(); err != nil {
					return nil, err
				}
				continue
			}
			// Nothing changed: no write, as upstream.
			acc.SetResourceVersion(strconv.FormatInt(st.rev, 10))
			return out, nil
		}
		stored, err := s.seal(full, data)
		if err != nil {
			return nil, err
		}
		putOpts, err := s.putOptions(ctx, key)
		if err != nil {
			return nil, err
		}
		resp, err := s.client.Txn(ctx).
			If(clientv3.Compare(clientv3.ModRevision(full), "=", st.rev)).
			Then(clientv3.OpPut(full, string(stored), putOpts...)).
			Else(clientv3.OpGet(full)).
			Commit()
		if err != nil {
			return nil, s.etcdError(ctx, "updating", key, err)
		}
		if resp.Succeeded {
			acc.SetResourceVersion(strconv.FormatInt(resp.Header.Revision, 10))
			return out, nil
		}
		// Lost a race (or the cached copy was stale): retry fn on the state
		// the else branch read.
		if st, err = s.stateOf(resp.Responses[0].GetResponseRange().Kvs); err != nil {
			return nil, err
		}
	}
}

// Delete implements Interface. The returned object carries the revision
// of the delete as its resourceVersion (as the DELETED watch event does).
// Like GuaranteedUpdate it starts from the cache's copy and re-reads etcd
// before failing a precondition or validate on a possibly stale copy.
func (s *Store) Delete(ctx context.Context, key string, pre *Preconditions, validate func(current runtime.Object) error) (runtime.Object, error) {
	full := s.prefix + key
	st, err := s.initialState(ctx, key, false)
	if err != nil {
		return nil, err
	}
	for {
		if st.obj == nil {
			return nil, apierrors.NewNotFound(s.resource, nameOf(key))
		}
		err := s.checkPreconditions(key, pre, st.obj)
		if err == nil && validate != nil {
			err = validate(st.obj)
		}
		if err != nil {
			if !st.stale {
				return nil, err
			}
			if st, err = s.etcdState(ctx, key); err != nil {
				return nil, err
			}
			continue
		}
		resp, err := s.client.Txn(ctx).
			If(clientv3.Compare(clientv3.ModRevision(full), "=", st.rev)).
			Then(clientv3.OpDelete(full)).
			Else(clientv3.OpGet(full)).
			Commit()
		if err != nil {
			return nil, s.etcdError(ctx, "deleting", key, err)
		}
		if resp.Succeeded {
			acc, _ := meta.Accessor(st.obj)
			acc.SetResourceVersion(strconv.FormatInt(resp.Header.Revision, 10))
			return st.obj, nil
		}
		if st, err = s.stateOf(resp.Responses[0].GetResponseRange().Kvs); err != nil {
			return nil, err
		}
	}
}

// state is the current value of one key as a write starts from it.
type state struct {
	obj  runtime.Object // nil when the key does not exist; the caller's to mutate
	rev  int64          // mod revision; 0 when absent
	data []byte         // the encoded object read from etcd, before any Transformer
	// sum stands for data for a cached copy (withData): the digest of
	// the bytes stored.
	sum    [sha256.Size]byte
	hasSum bool
	stale  bool // from the watch cache: may be behind etcd
}

// stores reports whether data is what the state's object is stored as.
func (st *state) stores(data []byte) bool {
	if st.hasSum {
		return sha256.Sum256(data) == st.sum
	}
	return bytes.Equal(data, st.data)
}

// initialState returns the cache's copy of key when it has one, else reads
// etcd (a cache miss may be a key created a moment ago). withData asks for
// the stored bytes' digest too (for no-op detection).
func (s *Store) initialState(ctx context.Context, key string, withData bool) (*state, error) {
	c := &s.cache
	c.mu.RLock()
	var e *entry
	if !c.stopped {
		e = c.get(key)
	}
	c.mu.RUnlock()
	if e == nil {
		return s.etcdState(ctx, key)
	}
	return &state{obj: e.obj.DeepCopyObject(), rev: e.rev, sum: e.sum, hasSum: withData, stale: true}, nil
}

// etcdState reads key from etcd.
func (s *Store) etcdState(ctx context.Context, key string) (*state, error) {
	resp, err := s.client.Get(ctx, s.prefix+key)
	if err != nil {
		return nil, s.etcdError(ctx, "getting", key, err)
	}
	return s.stateOf(resp.Kvs)
}

// stateOf decodes the result of a single-key read.
func (s *Store) stateOf(kvs []*mvccpb.KeyValue) (*state, error) {
	if len(kvs) == 0 {
		return &state{}, nil
	}
	data, _, err := s.open(kvs[0].Key, kvs[0].Value)
	if err != nil {
		return nil, err
	}
	obj, err := s.decodePlain(data, kvs[0].ModRevision)
	if err != nil {
		return nil, err
	}
	return &state{obj: obj, rev: kvs[0].ModRevision, data: data}, nil
}

// checkPreconditions returns Conflict when pre does not hold for cur.
func (s *Store) checkPreconditions(key string, pre *Preconditions, cur runtime.Object) error {
	if pre == nil {
		return nil
	}
	acc, err := meta.Accessor(cur)
	if err != nil {
		return apierrors.NewInternalError(err)
	}
	if pre.UID != "" && pre.UID != string(acc.GetUID()) {
		return apierrors.NewConflict(s.resource, nameOf(key), fmt.Errorf(
			"Precondition failed: UID in precondition: %v, UID in object meta: %v", pre.UID, acc.GetUID()))
	}
	if pre.ResourceVersion != "" && pre.ResourceVersion != acc.GetResourceVersion() {
		return apierrors.NewConflict(s.resource, nameOf(key), fmt.Errorf(
			"Precondition failed: ResourceVersion in precondition: %v, ResourceVersion in object meta: %v",
			pre.ResourceVersion, acc.GetResourceVersion()))
	}
	return nil
}

// CurrentRevision returns the newest revision the watch cache has seen.
func (s *Store) CurrentRevision(ctx context.Context) (int64, error) {
	s.cache.mu.RLock()
	defer s.cache.mu.RUnlock()
	return s.cache.rev, nil
}

// decode decodes the value stored under fullKey (the etcd key), decrypting
// it first when the store has a Transformer, and sets its resourceVersion
// to rev.
func (s *Store) decode(fullKey, value []byte, rev int64) (runtime.Object, error) {
	data, _, err := s.open(fullKey, value)
	if err != nil {
		return nil, err
	}
	return s.decodePlain(data, rev)
}

// open returns the encoded object stored in value under fullKey: value
// itself without a Transformer, else its decryption, and whether it should
// be rewritten (see Transformer). A decryption failure is a 500 naming the
// key.
func (s *Store) open(fullKey, value []byte) (data []byte, stale bool, err error) {
	if s.transformer == nil {
		return value, false, nil
	}
	data, stale, err = s.transformer.Decrypt(string(fullKey), value)
	if err != nil {
		return nil, false, apierrors.NewInternalError(fmt.Errorf("reading %s %q from etcd: %w", s.resource, fullKey, err))
	}
	return data, stale, nil
}

// seal returns the value to store for the encoded object data under
// fullKey: data itself without a Transformer, else its encryption.
func (s *Store) seal(fullKey string, data []byte) ([]byte, error) {
	if s.transformer == nil {
		return data, nil
	}
	out, err := s.transformer.Encrypt(fullKey, data)
	if err != nil {
		return nil, apierrors.NewInternalError(fmt.Errorf("writing %s %q to etcd: %w", s.resource, fullKey, err))
	}
	return out, nil
}

// decodePlain decodes an encoded object and sets its resourceVersion to rev.
func (s *Store) decodePlain(data []byte, rev int64) (runtime.Object, error) {
	obj, _, err := s.codec.Decode(data, nil, s.newFunc())
	if err != nil {
		return nil, apierrors.NewInternalError(fmt.Errorf("decoding %s at revision %d: %w", s.resource, rev, err))
	}
	acc, err := meta.Accessor(obj)
	if err != nil {
		return nil, apierrors.NewInternalError(fmt.Errorf("decoding %s at revision %d: %w", s.resource, rev, err))
	}
	acc.SetResourceVersion(strconv.FormatInt(rev, 10))
	return obj, nil
}

// etcdError turns an etcd client error into an API error.
func (s *Store) etcdError(ctx context.Context, op, key string, err error) error {
	switch {
	case errors.Is(err, rpctypes.ErrCompacted):
		return apierrors.NewResourceExpired(resourceVersionTooOldList)
	case errors.Is(err, rpctypes.ErrFutureRev):
		return tooLargeError(0, 0)
	case ctx.Err() != nil || errors.Is(err, context.DeadlineExceeded) || errors.Is(err, context.Canceled):
		return apierrors.NewTimeoutError(fmt.Sprintf("%s %s %q: %v", op, s.resource, key, err), 2)
	}
	return apierrors.NewInternalError(fmt.Errorf("%s %s %q in etcd: %w", op, s.resource, key, err))
}

// tooLargeError is upstream's 504 for a resourceVersion the cache has not
// reached in time.
func tooLargeError(want, have int64) error {
	err := apierrors.NewTimeoutError(fmt.Sprintf("%s: %d, current: %d", tooLargeResourceVersion, want, have), 1)
	err.ErrStatus.Details.Causes = append(err.ErrStatus.Details.Causes, metav1.StatusCause{Type: metav1.CauseTypeResourceVersionTooLarge, Message: tooLargeResourceVersion})
	return err
}

// nameOf returns the name part of a "ns/name" or "name" key.
func nameOf(key string) string {
	if i := strings.LastIndexByte(key, '/'); i >= 0 {
		return key[i+1:]
	}
	return key
}

// parseRV parses a resourceVersion parameter; "" is 0.
func parseRV(rv string) (int64, error) {
	if rv == "" {
		return 0, nil
	}
	n, err := strconv.ParseInt(rv, 10, 64)
	if err != nil || n < 0 {
		return 0, apierrors.NewBadRequest(fmt.Sprintf("invalid resource version: %q", rv))
	}
	return n, nil
}
