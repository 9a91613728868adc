package apiserver

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"encoding/json"
	"fmt"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/resource"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/rest"

	"github.com/skiff-dev/skiff/internal/registry"
)

// benchCreatePod is the pod BenchmarkCreatePod sends, the same shape as
// bench/apiserver's: one container with requests, labels and an env var.
func benchCreatePod(name string) *corev1.Pod {
	return &corev1.Pod{
		TypeMeta: metav1.TypeMeta{APIVersion: "v1", Kind: "Pod"},
		ObjectMeta: metav1.ObjectMeta{
			Name:   name,
			Labels: map[string]string{"app": "bench", "tier": "load"},
		},
		Spec: corev1.PodSpec{
			Containers: []corev1.Container{{
				Name:  "app",
				Image: "registry.example/bench/app:1.0",
				Ports: []corev1.ContainerPort{{Name: "http", ContainerPort: 8080}},
				Env:   []corev1.EnvVar{{Name: "MODE", Value: "bench"}},
				Resources: corev1.ResourceRequirements{Requests: corev1.ResourceList{
					corev1.ResourceCPU:    resource.MustParse("100m"),
					corev1.ResourceMemory: resource.MustParse("64Mi"),
				}},
			}},
		},
	}
}

// BenchmarkCreatePod drives pod creates through the server's handler in
// process (no TLS, no client), on a real etcd, from parallel goroutines.
func BenchmarkCreatePod(b *testing.B) {
	env := newTestEnv(b)
	h := env.server.Handler()
	ca, _ := newCA(b)
	admin := &x509.Certificate{Subject: ca.Subject}
	admin.Subject.CommonName = "admin"
	admin.Subject.Organization = []string{"system:masters"}
	state := &tls.ConnectionState{VerifiedChains: [][]*x509.Certificate{{admin}}}
	serve := func(method, path, body string) *httptest.ResponseRecorder {
		req := httptest.NewRequest(method, path, strings.NewReader(body))
		req.Header.Set("Content-Type", "application/json")
		req.Header.Set("Accept", "application/json")
		req.Header.Set("User-Agent", "bench/v0.0.0")
		req.TLS = state
		rec := httptest.NewRecorder()
		h.ServeHTTP(rec, req)
		return rec
	}
	if rec := serve(http.MethodPost, "/api/v1/namespaces", `{"apiVersion":"v1","kind":"Namespace","metadata":{"name":"bench"}}`); rec.Code != http.StatusCreated {
		b.Fatalf("creating namespace: %d %s", rec.Code, rec.Body)
	}
	var seq atomic.Int64
	b.ReportAllocs()
	b.SetParallelism(32) // 64 clients on 2 cores, as bench/apiserver
	cpu0 := cpuTime(b)
	b.ResetTimer()
	b.RunParallel(func(pb *testing.PB) {
		for pb.Next() {
			body, err := json.Marshal(benchCreatePod(fmt.Sprintf("p-%d", seq.Add(1))))
			if err != nil {
				b.Error(err)
				return
			}
			if rec := serve(http.MethodPost, "/api/v1/namespaces/bench/pods", string(body)); rec.Code != http.StatusCreated {
				b.Errorf("create: %d %s", rec.Code, rec.Body)
				return
			}
		}
	})
	b.StopTimer()
	// Process CPU (handler, storage and the embedded etcd together).
	b.ReportMetric(float64((cpuTime(b)-cpu0).Microseconds())/float64(b.N), "cpu-µs/op")
}

// cpuTime is the CPU time the process has used, user and system.
func cpuTime(b *testing.B) time.Duration {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		b.Fatal(err)
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

// BenchmarkTrackCreate measures managedFields tracking of a pod create.
func BenchmarkTrackCreate(b *testing.B) {
	env := newTestEnv(b)
	var st *registry.Store
	for s := range env.server.fieldManagers {
		if s.Resource.GVR.Resource == "pods" {
			st = s
		}
	}
	fm := env.server.fieldManagers[st].forSub(registry.Main)
	pod := benchCreatePod("p")
	pod.Namespace = "bench"
	b.ReportAllocs()
	for b.Loop() {
		env.server.trackUpdate(fm, nil, pod.DeepCopy(), "bench", st.Resource)
	}
}

// BenchmarkCreatePodClientGo creates pods with client-go over TLS and
// HTTP/2, as bench/apiserver does (client and server share the process).
func BenchmarkCreatePodClientGo(b *testing.B) {
	env := newTestEnv(b)
	cfg := rest.CopyConfig(env.adminConfig)
	cfg.QPS = -1
	cs, err := kubernetes.NewForConfig(cfg)
	if err != nil {
		b.Fatal(err)
	}
	ctx := context.Background()
	if _, err := cs.CoreV1().Namespaces().Create(ctx, &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: "bench"}}, metav1.CreateOptions{}); err != nil {
		b.Fatal(err)
	}
	var seq atomic.Int64
	b.ReportAllocs()
	b.SetParallelism(32)
	cpu0 := cpuTime(b)
	b.ResetTimer()
	b.RunParallel(func(pb *testing.PB) {
		for pb.Next() {
			if _, err := cs.CoreV1().Pods("bench").Create(ctx, benchCreatePod(fmt.Sprintf("p-%d", seq.Add(1))), metav1.CreateOptions{}); err != nil {
				b.Error(err)
				return
			}
		}
	})
	b.StopTimer()
	b.ReportMetric(float64((cpuTime(b)-cpu0).Microseconds())/float64(b.N), "cpu-µs/op")
}
