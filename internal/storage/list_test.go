package storage

import (
	"context"
	"errors"
	"fmt"
	"strconv"
	"sync"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/api/meta"
	"k8s.io/apimachinery/pkg/fields"
	"k8s.io/apimachinery/pkg/labels"
	"k8s.io/apimachinery/pkg/runtime"
)

func TestListSelectors(t *testing.T) {
	t.Parallel()
	s, _ := newTestStore(t, nil, nil)
	mustCreate(t, s, pod("a", "web1", map[string]string{"app": "web"}, "n1"))
	mustCreate(t, s, pod("a", "web2", map[string]string{"app": "web"}, "n2"))
	mustCreate(t, s, pod("a", "db", map[string]string{"app": "db"}, "n1"))
	mustCreate(t, s, pod("b", "web3", map[string]string{"app": "web"}, "n1"))
	mustCreate(t, s, pod("ab", "x", nil, ""))

	for _, tc := range []struct {
		name   string
		prefix string
		label  string
		field  string
		rv     string
		limit  int64
		object string // the object check accepts only this name
		want   []string
	}{
		{name: "all", want: []string{"a/db", "a/web1", "a/web2", "ab/x", "b/web3"}},
		{name: "namespace", prefix: "a/", want: []string{"a/db", "a/web1", "a/web2"}},
		{name: "label", label: "app=web", want: []string{"a/web1", "a/web2", "b/web3"}},
		{name: "label in namespace", prefix: "b/", label: "app=web", want: []string{"b/web3"}},
		{name: "field", field: "spec.nodeName=n1", want: []string{"a/db", "a/web1", "b/web3"}},
		{name: "label and field", label: "app=web", field: "spec.nodeName=n1", want: []string{"a/web1", "b/web3"}},
		{name: "set-based", label: "app in (db)", rv: "0", want: []string{"a/db"}},
		{name: "none", label: "app=nothing", want: []string{}},
		{name: "field from etcd", field: "spec.nodeName=n2", limit: 10, want: []string{"a/web2"}},
		{name: "object check", object: "web3", want: []string{"b/web3"}},
		{name: "object check and label", label: "app=db", object: "web3", want: []string{}},
		{name: "object check from etcd", object: "web1", limit: 10, want: []string{"a/web1"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			ls, err := labels.Parse(tc.label)
			if err != nil {
				t.Fatal(err)
			}
			fs, err := fields.ParseSelector(tc.field)
			if err != nil {
				t.Fatal(err)
			}
			p := Predicate{Label: ls, Field: fs}
			if tc.object != "" {
				p.Object = func(obj runtime.Object) bool { return obj.(*corev1.Pod).Name == tc.object }
			}
			list, err := s.List(context.Background(), tc.prefix, ListOptions{
				Predicate: p, ResourceVersion: tc.rv, Limit: tc.limit,
			})
			if err != nil {
				t.Fatalf("List: %v", err)
			}
			if diff := cmp.Diff(tc.want, names(t, list)); diff != "" {
				t.Errorf("items (-want +got):\n%s", diff)
			}
		})
	}
}

func TestListResourceVersions(t *testing.T) {
	t.Parallel()
	s, client := newTestStore(t, nil, func(c *Config) { c.FreshnessTimeout = 300 * time.Millisecond })
	ctx := context.Background()
	first := mustCreate(t, s, pod("ns", "a", nil, ""))
	second := mustCreate(t, s, pod("ns", "b", nil, ""))
	// A write elsewhere moves etcd's revision past the cache's own events.
	other, err := client.Put(ctx, "/elsewhere", "x")
	if err != nil {
		t.Fatal(err)
	}
	head := other.Header.Revision

	listRV := func(t *testing.T, list runtime.Object) int64 {
		lm, _ := meta.ListAccessor(list)
		n, _ := strconv.ParseInt(lm.GetResourceVersion(), 10, 64)
		return n
	}
	t.Run("consistent read sees the newest revision", func(t *testing.T) {
		list, err := s.List(ctx, "", ListOptions{})
		if err != nil {
			t.Fatal(err)
		}
		if got := listRV(t, list); got < head {
			t.Errorf("list RV %d, want >= %d", got, head)
		}
		if diff := cmp.Diff([]string{"ns/a", "ns/b"}, names(t, list)); diff != "" {
			t.Errorf("items (-want +got):\n%s", diff)
		}
	})
	t.Run("exact old revision", func(t *testing.T) {
		list, err := s.List(ctx, "", ListOptions{ResourceVersion: first.ResourceVersion, ResourceVersionMatch: MatchExact})
		if err != nil {
			t.Fatal(err)
		}
		if diff := cmp.Diff([]string{"ns/a"}, names(t, list)); diff != "" {
			t.Errorf("items (-want +got):\n%s", diff)
		}
		if got, want := strconv.FormatInt(listRV(t, list), 10), first.ResourceVersion; got != want {
			t.Errorf("list RV %s, want %s", got, want)
		}
	})
	t.Run("not older than", func(t *testing.T) {
		list, err := s.List(ctx, "", ListOptions{ResourceVersion: second.ResourceVersion, ResourceVersionMatch: MatchNotOlderThan})
		if err != nil {
			t.Fatal(err)
		}
		if diff := cmp.Diff([]string{"ns/a", "ns/b"}, names(t, list)); diff != "" {
			t.Errorf("items (-want +got):\n%s", diff)
		}
	})
	for _, tc := range []struct {
		name string
		opts ListOptions
		is   func(error) bool
	}{
		{"bad rv", ListOptions{ResourceVersion: "abc"}, apierrors.IsBadRequest},
		{"negative rv", ListOptions{ResourceVersion: "-1"}, apierrors.IsBadRequest},
		{"bad match", ListOptions{ResourceVersion: "1", ResourceVersionMatch: "Later"}, apierrors.IsBadRequest},
		{"exact zero", ListOptions{ResourceVersion: "0", ResourceVersionMatch: MatchExact}, apierrors.IsBadRequest},
		{"bad continue", ListOptions{Continue: "!!"}, apierrors.IsBadRequest},
		{"too large", ListOptions{ResourceVersion: strconv.FormatInt(head+1000, 10)}, apierrors.IsTimeout},
		{"exact future", ListOptions{ResourceVersion: strconv.FormatInt(head+1000, 10), ResourceVersionMatch: MatchExact}, apierrors.IsTimeout},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := s.List(ctx, "", tc.opts)
			if !tc.is(err) {
				t.Errorf("List(%+v) error = %v", tc.opts, err)
			}
		})
	}
}

func TestListPagination(t *testing.T) {
	t.Parallel()
	s, client := newTestStore(t, nil, nil)
	ctx := context.Background()
	var want []string
	for i := range 25 {
		lbl := map[string]string{"parity": strconv.Itoa(i % 2)}
		p := mustCreate(t, s, pod("ns", fmt.Sprintf("p%02d", i), lbl, ""))
		want = append(want, "ns/"+p.Name)
	}
	mustCreate(t, s, pod("other", "z", nil, ""))

	type page struct {
		Names     []string
		Remaining *int64
		More      bool
	}
	readAll := func(t *testing.T, opts ListOptions) ([]page, []string) {
		var pages []page
		var all []string
		for {
			list, err := s.List(ctx, "ns/", opts)
			if err != nil {
				t.Fatalf("List: %v", err)
			}
			lm, _ := meta.ListAccessor(list)
			got := names(t, list)
			pages = append(pages, page{Names: nil, Remaining: lm.GetRemainingItemCount(), More: lm.GetContinue() != ""})
			pages[len(pages)-1].Names = got
			all = append(all, got...)
			if lm.GetContinue() == "" {
				return pages, all
			}
			opts.Continue = lm.GetContinue()
			opts.ResourceVersion = ""
		}
	}
	t.Run("unfiltered", func(t *testing.T) {
		pages, all := readAll(t, ListOptions{Limit: 10})
		if diff := cmp.Diff(want, all); diff != "" {
			t.Errorf("items (-want +got):\n%s", diff)
		}
		var remaining []int64
		for _, p := range pages {
			if p.Remaining != nil {
				remaining = append(remaining, *p.Remaining)
			}
		}
		if diff := cmp.Diff([]int64{15, 5}, remaining); diff != "" {
			t.Errorf("remainingItemCount (-want +got):\n%s", diff)
		}
	})
	t.Run("filtered pages are full", func(t *testing.T) {
		ls := labels.SelectorFromSet(labels.Set{"parity": "0"})
		pages, all := readAll(t, ListOptions{Limit: 5, Predicate: Predicate{Label: ls}})
		if len(all) != 13 {
			t.Errorf("got %d even pods, want 13: %v", len(all), all)
		}
		for i, p := range pages[:len(pages)-1] {
			if len(p.Names) != 5 {
				t.Errorf("page %d has %d items, want 5", i, len(p.Names))
			}
		}
	})
	t.Run("pages are one snapshot", func(t *testing.T) {
		list, err := s.List(ctx, "ns/", ListOptions{Limit: 20})
		if err != nil {
			t.Fatal(err)
		}
		lm, _ := meta.ListAccessor(list)
		mustCreate(t, s, pod("ns", "p99", nil, ""))
		rest, err := s.List(ctx, "ns/", ListOptions{Limit: 20, Continue: lm.GetContinue()})
		if err != nil {
			t.Fatal(err)
		}
		if got := names(t, rest); len(got) != 5 {
			t.Errorf("second page %v, want the 5 pods of the first snapshot", got)
		}
		rlm, _ := meta.ListAccessor(rest)
		if rlm.GetResourceVersion() != lm.GetResourceVersion() {
			t.Errorf("continued list RV %s, want %s", rlm.GetResourceVersion(), lm.GetResourceVersion())
		}
	})
	t.Run("token cannot leave the namespace", func(t *testing.T) {
		token := encodeContinue(1, "other/z")
		if _, err := s.List(ctx, "ns/", ListOptions{Limit: 5, Continue: token}); !apierrors.IsBadRequest(err) {
			t.Errorf("foreign token error = %v, want BadRequest", err)
		}
	})
	t.Run("compacted token", func(t *testing.T) {
		list, err := s.List(ctx, "ns/", ListOptions{Limit: 10})
		if err != nil {
			t.Fatal(err)
		}
		lm, _ := meta.ListAccessor(list)
		put, err := client.Put(ctx, "/elsewhere", "x")
		if err != nil {
			t.Fatal(err)
		}
		if _, err := client.Compact(ctx, put.Header.Revision); err != nil {
			t.Fatal(err)
		}
		_, err = s.List(ctx, "ns/", ListOptions{Limit: 10, Continue: lm.GetContinue()})
		if !apierrors.IsResourceExpired(err) && !apierrors.IsGone(err) {
			t.Fatalf("compacted continue error = %v, want 410", err)
		}
		var se *apierrors.StatusError
		if errors.As(err, &se) && se.ErrStatus.Code != 410 {
			t.Errorf("code %d, want 410", se.ErrStatus.Code)
		}
		// The error carries an inconsistent continue token: the rest of
		// the list from where the first page ended, at the newest revision.
		if se == nil || se.ErrStatus.ListMeta.Continue == "" {
			t.Fatalf("410 without an inconsistent continue token: %+v", se)
		}
		seen := names(t, list)
		token := se.ErrStatus.ListMeta.Continue
		for token != "" {
			page, err := s.List(ctx, "ns/", ListOptions{Limit: 10, Continue: token})
			if err != nil {
				t.Fatalf("inconsistent continue: %v", err)
			}
			plm, _ := meta.ListAccessor(page)
			if plm.GetResourceVersion() == lm.GetResourceVersion() {
				t.Errorf("inconsistent page at the first page's RV %s", plm.GetResourceVersion())
			}
			seen = append(seen, names(t, page)...)
			token = plm.GetContinue()
		}
		all, err := s.List(ctx, "ns/", ListOptions{})
		if err != nil {
			t.Fatal(err)
		}
		if diff := cmp.Diff(names(t, all), seen); diff != "" {
			t.Errorf("first page + inconsistent continue (-all +seen):\n%s", diff)
		}
		_, err = s.List(ctx, "ns/", ListOptions{ResourceVersion: strconv.FormatInt(put.Header.Revision-1, 10), ResourceVersionMatch: MatchExact})
		if !apierrors.IsResourceExpired(err) {
			t.Errorf("exact list at a compacted revision = %v, want 410", err)
		}
	})
}

func TestConsistentListServedFromCache(t *testing.T) {
	t.Parallel()
	s, client := newTestStore(t, nil, func(c *Config) { c.FreshnessTimeout = 5 * time.Second })
	ctx := context.Background()
	mustCreate(t, s, pod("ns", "a", nil, ""))
	for i := range 5 {
		// Writes under another prefix move etcd's revision; only a progress
		// notification tells the cache about them.
		put, err := client.Put(ctx, "/elsewhere", strconv.Itoa(i))
		if err != nil {
			t.Fatal(err)
		}
		start := time.Now()
		list, err := s.List(ctx, "", ListOptions{})
		if err != nil {
			t.Fatal(err)
		}
		if took := time.Since(start); took > 2*time.Second {
			t.Errorf("consistent list took %s: the cache did not catch up through progress notifications", took)
		}
		lm, _ := meta.ListAccessor(list)
		if got := lm.GetResourceVersion(); mustAtoi(got) < int(put.Header.Revision) {
			t.Errorf("list RV %s, want >= %d", got, put.Header.Revision)
		}
	}
}

func TestSingleKeyPrefix(t *testing.T) {
	t.Parallel()
	s, _ := newTestStore(t, nil, nil)
	ctx := context.Background()
	for _, n := range []string{"web", "web-1", "web2"} {
		mustCreate(t, s, pod("ns", n, nil, ""))
	}
	for _, tc := range []struct {
		name string
		opts ListOptions
	}{
		// A consistent read: served from the cache once it has caught up.
		{"cache", ListOptions{}},
		{"etcd", ListOptions{Limit: 5}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			list, err := s.List(ctx, "ns/web", tc.opts)
			if err != nil {
				t.Fatal(err)
			}
			if diff := cmp.Diff([]string{"ns/web"}, names(t, list)); diff != "" {
				t.Errorf("items (-want +got):\n%s", diff)
			}
		})
	}
	w, err := s.Watch(ctx, "ns/web", WatchOptions{ResourceVersion: "0"})
	if err != nil {
		t.Fatal(err)
	}
	defer w.Stop()
	nextN(t, w, 1)
	mustCreate(t, s, pod("ns", "web3", nil, ""))
	if _, err := s.Delete(ctx, "ns/web", nil, nil); err != nil {
		t.Fatal(err)
	}
	if got, _ := next(t, w); got.Type != "DELETED" || got.Name != "web" {
		t.Errorf("event %+v, want DELETED web only", got)
	}
}

// TestListEncodersMemoized checks that cached lists hand out items
// encoded by the requested encoder, and that each object is encoded once
// per encoder for the first two encoders (JSON and protobuf in the API
// server) however often it is listed.
func TestListEncodersMemoized(t *testing.T) {
	s, _ := newTestStore(t, nil, nil)
	mustCreate(t, s, pod("ns", "a", nil, ""))
	last := mustCreate(t, s, pod("ns", "b", nil, ""))
	calls := map[string]int{}
	var mu sync.Mutex
	encoder := func(id string) *ItemEncoder {
		return &ItemEncoder{ID: id, Encode: func(obj runtime.Object) ([]byte, error) {
			mu.Lock()
			calls[id]++
			mu.Unlock()
			return []byte(id + ":" + obj.(*corev1.Pod).Name), nil
		}}
	}
	encoders := []*ItemEncoder{encoder("one"), encoder("two"), encoder("three")}
	for range 3 {
		for _, enc := range encoders {
			// From the cache once it has seen both (not older than last).
			out, err := s.List(context.Background(), "ns/", ListOptions{ResourceVersion: last.ResourceVersion, Encoder: enc})
			if err != nil {
				t.Fatalf("List: %v", err)
			}
			el, ok := out.(*EncodedList)
			if !ok || el.Encoding != enc.ID || len(el.Items) != 2 || string(el.Items[0]) != enc.ID+":a" {
				t.Fatalf("List with %s = %#v", enc.ID, out)
			}
		}
	}
	// Two memo slots: the third encoder encodes every time.
	if calls["one"] != 2 || calls["two"] != 2 || calls["three"] != 6 {
		t.Errorf("encoder calls %v, want one:2 two:2 three:6", calls)
	}
}
