package storage

import (
	"context"
	"fmt"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/meta"
	"k8s.io/apimachinery/pkg/labels"
)

// fill creates n pods in 10 namespaces with 32 writers.
func fill(b *testing.B, s *Store, n int) {
	b.Helper()
	var next atomic.Int64
	var wg sync.WaitGroup
	for range 32 {
		wg.Go(func() {
			for {
				i := int(next.Add(1)) - 1
				if i >= n {
					return
				}
				p := pod(fmt.Sprintf("ns%d", i%10), fmt.Sprintf("pod-%05d", i), map[string]string{"app": fmt.Sprintf("app%d", i%100)}, fmt.Sprintf("node%d", i%50))
				if _, err := s.Create(context.Background(), p.Namespace+"/"+p.Name, p); err != nil {
					b.Error(err)
					return
				}
			}
		})
	}
	wg.Wait()
}

// BenchmarkList10000 lists 10,000 pods from the watch cache.
func BenchmarkList10000(b *testing.B) {
	s, _ := newTestStore(b, nil, nil)
	fill(b, s, 10000)
	ctx := context.Background()
	if _, err := s.List(ctx, "", ListOptions{}); err != nil { // wait for the cache
		b.Fatal(err)
	}
	for _, bc := range []struct {
		name   string
		prefix string
		opts   ListOptions
		want   int
	}{
		{"any", "", ListOptions{ResourceVersion: "0"}, 10000},
		{"consistent", "", ListOptions{}, 10000},
		{"label", "", ListOptions{ResourceVersion: "0", Predicate: Predicate{Label: labels.SelectorFromSet(labels.Set{"app": "app7"})}}, 100},
		{"namespace", "ns3/", ListOptions{ResourceVersion: "0"}, 1000},
	} {
		b.Run(bc.name, func(b *testing.B) {
			for b.Loop() {
				list, err := s.List(ctx, bc.prefix, bc.opts)
				if err != nil {
					b.Fatal(err)
				}
				if n := meta.LenList(list); n != bc.want {
					b.Fatalf("got %d items, want %d", n, bc.want)
				}
			}
		})
	}
}

// BenchmarkCreate compares Store.Create with raw etcd puts of the same
// bytes at 64 concurrent writers.
func BenchmarkCreate(b *testing.B) {
	s, client := newTestStore(b, nil, nil)
	p := pod("ns", "template", map[string]string{"app": "x"}, "node1")
	data, err := encodeForBench(s, p)
	if err != nil {
		b.Fatal(err)
	}
	var seq atomic.Int64
	run := func(b *testing.B, op func(i int64) error) {
		start := time.Now()
		b.SetParallelism(64 / max(1, runtimeGOMAXPROCS()))
		b.RunParallel(func(pb *testing.PB) {
			for pb.Next() {
				if err := op(seq.Add(1)); err != nil {
					b.Error(err)
					return
				}
			}
		})
		b.ReportMetric(float64(b.N)/time.Since(start).Seconds(), "writes/s")
	}
	b.Run("etcd-put", func(b *testing.B) {
		run(b, func(i int64) error {
			_, err := client.Put(context.Background(), fmt.Sprintf("/raw/ns/p%d", i), string(data))
			return err
		})
	})
	b.Run("store-create", func(b *testing.B) {
		run(b, func(i int64) error {
			q := p.DeepCopy()
			q.Name = fmt.Sprintf("p%d", i)
			_, err := s.Create(context.Background(), "ns/"+q.Name, q)
			return err
		})
	})
}

func encodeForBench(s *Store, p *corev1.Pod) ([]byte, error) {
	return runtimeEncode(s, p)
}
