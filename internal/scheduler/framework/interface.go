package framework

import (
	"context"
	"sync"
)

// MaxNodeScore is the highest score a Score plugin gives after
// normalization; MinNodeScore the lowest.
const (
	MaxNodeScore int64 = 100
	MinNodeScore int64 = 0
)

// Plugin is anything the framework runs. Each plugin implements one or
// more of PreFilterPlugin, FilterPlugin, PreScorePlugin, ScorePlugin
// (and optionally ScoreNormalizer); the framework finds out which at
// construction.
type Plugin interface {
	Name() string
}

// PreFilterPlugin computes per-pod state once before the per-node
// filters run (for example the topology counts for spreading). Returning
// Skip disables the plugin's Filter for this pod; returning a rejection
// rejects every node with that status.
type PreFilterPlugin interface {
	Plugin
	PreFilter(ctx context.Context, state *CycleState, pod *PodInfo, snap *Snapshot) *Status
}

// FilterPlugin decides whether pod fits on node. It is called
// concurrently for different nodes and must not mutate anything but its
// return value.
type FilterPlugin interface {
	Plugin
	Filter(ctx context.Context, state *CycleState, pod *PodInfo, node *NodeInfo) *Status
}

// PreScorePlugin prepares per-pod scoring state over the feasible nodes.
// Returning Skip disables the plugin's Score for this pod.
type PreScorePlugin interface {
	Plugin
	PreScore(ctx context.Context, state *CycleState, pod *PodInfo, snap *Snapshot, nodes []*NodeInfo) *Status
}

// ScorePlugin ranks a feasible node. Without a ScoreNormalizer, scores
// must lie in [MinNodeScore, MaxNodeScore].
type ScorePlugin interface {
	Plugin
	Score(ctx context.Context, state *CycleState, pod *PodInfo, node *NodeInfo) (int64, *Status)
}

// ScoreNormalizer is an optional ability of a ScorePlugin: it rescales
// the raw scores of all feasible nodes (indexed like the nodes passed to
// PreScore) into [MinNodeScore, MaxNodeScore].
type ScoreNormalizer interface {
	NormalizeScore(ctx context.Context, state *CycleState, pod *PodInfo, scores []int64) *Status
}

// CycleState carries per-pod data from a plugin's PreFilter/PreScore to
// its Filter/Score. Writes happen in PreFilter/PreScore (one goroutine);
// Filter/Score only read, possibly concurrently.
type CycleState struct {
	mu sync.RWMutex
	m  map[string]any
}

// NewCycleState returns an empty state.
func NewCycleState() *CycleState { return &CycleState{m: map[string]any{}} }

// Write stores v under key.
func (c *CycleState) Write(key string, v any) {
	c.mu.Lock()
	c.m[key] = v
	c.mu.Unlock()
}

// Read returns the value under key, or nil.
func (c *CycleState) Read(key string) any {
	c.mu.RLock()
	defer c.mu.RUnlock()
	return c.m[key]
}
