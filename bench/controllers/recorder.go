package main

import (
	"context"
	"fmt"
	"sync"
	"time"

	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/client-go/tools/cache"
)

// recorder follows the benchmark's pods and Deployment through informer
// events and records, for the current phase, when each goal was first met,
// relative to the phase's start.
//
// Register its handlers before the informers start; begin a phase just
// before sending its request; wait for its goals. Safe for concurrent use.
type recorder struct {
	mu sync.Mutex
	// Guarded by mu:
	pods   map[types.UID]podState
	byHash map[string]*podCounts
	deploy *appsv1.Deployment
	start  time.Time
	goals  []goal
	met    map[string]time.Duration
}

// podState is what the recorder remembers of one pod.
type podState struct {
	hash         string
	bound, ready bool
}

// podCounts count the pods of one pod-template-hash, monotonically.
type podCounts struct{ created, bound, ready, gone int }

// goal is one milestone of a phase: done is evaluated under mu after every
// event.
type goal struct {
	name string
	done func(r *recorder) bool
}

func newRecorder() *recorder {
	return &recorder{pods: map[types.UID]podState{}, byHash: map[string]*podCounts{}, met: map[string]time.Duration{}}
}

// podHandler and deploymentHandler are the informer handlers.
func (r *recorder) podHandler() cache.ResourceEventHandler {
	return cache.ResourceEventHandlerFuncs{
		AddFunc:    func(obj any) { r.pod(obj, false) },
		UpdateFunc: func(_, obj any) { r.pod(obj, false) },
		DeleteFunc: func(obj any) {
			if d, ok := obj.(cache.DeletedFinalStateUnknown); ok {
				obj = d.Obj
			}
			r.pod(obj, true)
		},
	}
}

func (r *recorder) deploymentHandler() cache.ResourceEventHandler {
	update := func(obj any) {
		d, ok := obj.(*appsv1.Deployment)
		if !ok {
			return
		}
		r.mu.Lock()
		defer r.mu.Unlock()
		r.deploy = d
		r.checkLocked()
	}
	return cache.ResourceEventHandlerFuncs{AddFunc: update, UpdateFunc: func(_, obj any) { update(obj) }}
}

func (r *recorder) pod(obj any, deleted bool) {
	pod, ok := obj.(*corev1.Pod)
	if !ok {
		return
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	old, known := r.pods[pod.UID]
	hash := pod.Labels[appsv1.DefaultDeploymentUniqueLabelKey]
	c := r.byHash[hash]
	if c == nil {
		c = &podCounts{}
		r.byHash[hash] = c
	}
	if deleted {
		if known {
			c.gone++
			delete(r.pods, pod.UID)
		}
		r.checkLocked()
		return
	}
	now := podState{hash: hash, bound: pod.Spec.NodeName != "", ready: podReady(pod)}
	if !known {
		c.created++
	}
	if now.bound && !old.bound {
		c.bound++
	}
	if now.ready && !old.ready {
		c.ready++
	}
	r.pods[pod.UID] = now
	r.checkLocked()
}

// checkLocked records the goals met now.
func (r *recorder) checkLocked() {
	if r.start.IsZero() {
		return
	}
	for _, g := range r.goals {
		if _, ok := r.met[g.name]; !ok && g.done(r) {
			r.met[g.name] = time.Since(r.start)
		}
	}
}

// begin starts a phase with these goals, now.
func (r *recorder) begin(goals []goal) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.start, r.goals, r.met = time.Now(), goals, map[string]time.Duration{}
	r.checkLocked()
}

// wait blocks until every goal of the phase is met and returns when each
// was, or fails after timeout; it prints progress every 5s.
func (r *recorder) wait(ctx context.Context, timeout time.Duration, status func(r *recorder) string) (map[string]time.Duration, error) {
	deadline := time.Now().Add(timeout)
	tick := time.NewTicker(5 * time.Millisecond)
	defer tick.Stop()
	lastProgress := time.Now()
	for {
		r.mu.Lock()
		// Goals depending only on time (none today) and late registrations
		// are covered by checking here too.
		r.checkLocked()
		done := len(r.met) == len(r.goals)
		met := make(map[string]time.Duration, len(r.met))
		for k, v := range r.met {
			met[k] = v
		}
		line := status(r)
		r.mu.Unlock()
		if done {
			return met, nil
		}
		if time.Now().After(deadline) {
			return met, fmt.Errorf("not done within %v: %s", timeout, line)
		}
		if time.Since(lastProgress) >= 5*time.Second {
			progress("  %s", line)
			lastProgress = time.Now()
		}
		select {
		case <-ctx.Done():
			return met, ctx.Err()
		case <-tick.C:
		}
	}
}

// sumLocked adds up the counts of the hashes accepted by keep.
func (r *recorder) sumLocked(keep func(hash string) bool) podCounts {
	var s podCounts
	for h, c := range r.byHash {
		if keep(h) {
			s.created += c.created
			s.bound += c.bound
			s.ready += c.ready
			s.gone += c.gone
		}
	}
	return s
}

// onlyHashLocked returns the single pod-template-hash seen so far, or "".
func (r *recorder) onlyHashLocked() string {
	var only string
	for h, c := range r.byHash {
		if c.created == 0 {
			continue
		}
		if only != "" {
			return ""
		}
		only = h
	}
	return only
}
