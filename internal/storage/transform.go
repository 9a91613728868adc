package storage

import (
	"context"
	"errors"
	"fmt"

	"go.etcd.io/etcd/api/v3/mvccpb"
	clientv3 "go.etcd.io/etcd/client/v3"
)

// Transformer turns encoded objects into the values stored in etcd and
// back, e.g. encryption at rest (package encryption implements it). key is
// the full etcd key; an implementation may bind the value to it (as
// additional authenticated data) so that a value copied to another key
// does not decrypt. Implementations must be safe for concurrent use.
type Transformer interface {
	// Encrypt returns the value to store for data under key.
	Encrypt(key string, data []byte) ([]byte, error)
	// Decrypt returns the encoded object stored as value under key, and
	// stale when value should be rewritten (written under an old key, or
	// in plaintext); Store.Reencrypt rewrites the stale values.
	Decrypt(key string, value []byte) (data []byte, stale bool, err error)
}

// maxReencryptAttempts bounds the compare-and-swap retries on one key that
// keeps changing under a re-encryption.
const maxReencryptAttempts = 5

// Reencrypt rewrites, with the Transformer's current primary key, every
// value under the store's prefix that it reports stale (old key or
// plaintext), and returns how many it rewrote; see the function Reencrypt.
// Without a Transformer it does nothing.
func (s *Store) Reencrypt(ctx context.Context) (n int, err error) {
	if s.transformer == nil {
		return 0, nil
	}
	return Reencrypt(ctx, s.client, s.prefix, s.transformer)
}

// Reencrypt rewrites every value under prefix that tr reports stale (under
// an old key, or plaintext) with tr's Encrypt, and returns how many it
// rewrote. It works on the stored bytes only (no decoding), so it needs no
// Store: a Store on prefix, if any, sees the rewrites through its watch.
//
// Each rewrite is a compare-and-swap on the key's mod revision, putting
// the same object: it gets a new revision (its resourceVersion changes)
// and watchers see a MODIFIED event with an otherwise equal object. A key
// that changed in between is read again and checked anew. A value that
// fails to decrypt is left alone: its error (naming the key) is joined
// into the returned one and the pass goes on with the other keys. Call it
// after every change of the Transformer's keys; running it concurrently
// with itself is safe but wasteful.
func Reencrypt(ctx context.Context, client *clientv3.Client, prefix string, tr Transformer) (n int, err error) {
	var errs []error
	key := prefix
	end := clientv3.GetPrefixRangeEnd(prefix)
	for {
		resp, err := client.Get(ctx, key, clientv3.WithRange(end), clientv3.WithLimit(listPageSize))
		if err != nil {
			return n, fmt.Errorf("re-encrypting %s: listing %s: %w", prefix, key, err)
		}
		for _, kv := range resp.Kvs {
			done, err := reencryptOne(ctx, client, tr, kv)
			if err != nil {
				if ctx.Err() != nil {
					return n, fmt.Errorf("re-encrypting %s: %w", prefix, ctx.Err())
				}
				errs = append(errs, err)
			}
			if done {
				n++
			}
		}
		if !resp.More || len(resp.Kvs) == 0 {
			break
		}
		key = string(resp.Kvs[len(resp.Kvs)-1].Key) + "\x00"
	}
	if len(errs) > 0 {
		return n, fmt.Errorf("re-encrypting %s: %d value(s) left as they were: %w", prefix, len(errs), errors.Join(errs...))
	}
	return n, nil
}

// reencryptOne rewrites kv when its value is stale, retrying on the fresh
// value while the key keeps changing. It reports whether it wrote.
func reencryptOne(ctx context.Context, client *clientv3.Client, tr Transformer, kv *mvccpb.KeyValue) (bool, error) {
	full := string(kv.Key)
	for range maxReencryptAttempts {
		data, stale, err := tr.Decrypt(full, kv.Value)
		if err != nil {
			return false, err // names the key
		}
		if !stale {
			return false, nil
		}
		sealed, err := tr.Encrypt(full, data)
		if err != nil {
			return false, err
		}
		resp, err := client.Txn(ctx).
			If(clientv3.Compare(clientv3.ModRevision(full), "=", kv.ModRevision)).
			Then(clientv3.OpPut(full, string(sealed))).
			Else(clientv3.OpGet(full)).
			Commit()
		if err != nil {
			return false, fmt.Errorf("rewriting %s: %w", full, err)
		}
		if resp.Succeeded {
			return true, nil
		}
		kvs := resp.Responses[0].GetResponseRange().Kvs
		if len(kvs) == 0 {
			return false, nil // deleted meanwhile
		}
		kv = kvs[0]
	}
	return false, fmt.Errorf("rewriting %s: changed %d times during re-encryption", full, maxReencryptAttempts)
}
