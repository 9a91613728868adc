package main

import (
	"context"
	"fmt"
	"sync/atomic"
	"testing"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/rest"

	"github.com/skiff-dev/skiff/bench/benchserver"
	"github.com/skiff-dev/skiff/internal/testserver"
)

// BenchmarkListPods lists 10,000 pods from the watch cache as JSON, as the
// command does, against a server running in this process (client-go over
// TLS and HTTP/2), so that CPU, allocation and execution traces of the
// LIST path can be taken with go test's -cpuprofile, -memprofile and
// -trace. The client side is in the profiles too: tell them apart by
// package.
//
//	go test ./bench/apiserver -run '^$' -bench ListPods -benchtime 40x -cpuprofile cpu.pprof
func BenchmarkListPods(b *testing.B) {
	const pods = 10000
	cfg := rest.CopyConfig(testserver.Start(b, testserver.Options{}))
	cfg.QPS = -1
	cs, err := kubernetes.NewForConfig(cfg)
	if err != nil {
		b.Fatal(err)
	}
	ctx := context.Background()
	if err := benchserver.EnsureNamespace(ctx, cs, "bench-list"); err != nil {
		b.Fatal(err)
	}
	if err := fillPods(ctx, cs, "bench-list", pods); err != nil {
		b.Fatal(err)
	}
	// A consistent read first waits for the cache to catch up; the first
	// list from the cache encodes every item once, and later ones reuse
	// that.
	for _, rv := range []string{"", "0"} {
		if _, _, err := listLatencies(ctx, cs, "bench-list", rv, contentJSON, 0, pods); err != nil {
			b.Fatal(err)
		}
	}
	b.ReportAllocs()
	for b.Loop() {
		req := cs.CoreV1().RESTClient().Get().Namespace("bench-list").Resource("pods").
			SetHeader("Accept", contentJSON).Param("resourceVersion", "0")
		if _, err := req.DoRaw(ctx); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkCreatePods creates pods from 64 client-go clients, as the
// command's create measurement at 64 clients does, against a server in
// this process (authentication, authorization, admission and audit
// included), for CPU profiles of the create path.
//
//	go test ./bench/apiserver -run '^$' -bench CreatePods -benchtime 20000x -cpuprofile cpu.pprof
func BenchmarkCreatePods(b *testing.B) {
	cfg := rest.CopyConfig(testserver.Start(b, testserver.Options{AllAdmissionPlugins: true}))
	cfg.QPS = -1
	cs, err := kubernetes.NewForConfig(cfg)
	if err != nil {
		b.Fatal(err)
	}
	ctx := context.Background()
	if err := benchserver.EnsureNamespace(ctx, cs, "bench"); err != nil {
		b.Fatal(err)
	}
	var seq atomic.Int64
	b.ReportAllocs()
	b.SetParallelism(32) // 64 clients on 2 cores
	b.RunParallel(func(pb *testing.PB) {
		pods := cs.CoreV1().Pods("bench")
		for pb.Next() {
			if _, err := pods.Create(ctx, benchPod(fmt.Sprintf("p-%d", seq.Add(1))), metav1.CreateOptions{}); err != nil {
				b.Error(err)
				return
			}
		}
	})
}
