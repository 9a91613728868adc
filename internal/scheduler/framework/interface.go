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

// PositionFilter is an optional ability of a FilterPlugin: after the
// plugin's PreFilter ran, FilterByPosition may return a function that
// tells from a node's position in snap.NodeInfoList alone, without
// reading the node, what the plugin's Filter would say. For a node it
// Rejects, the framework runs no filter at all: a node is infeasible
// whichever filter rejects it, so the decision is the same; when no node
// fits, it runs the filters on those nodes after all, so that the reason
// reported is the first rejecting filter's, as upstream reports it. For
// a node it Passes, the plugin's Filter is not called. A nil function
// means no answer this cycle. The function is called concurrently and
// must not mutate anything.
type PositionFilter interface {
	FilterPlugin
	FilterByPosition(state *CycleState, snap *Snapshot) func(i int) Verdict
}

// Verdict is a PositionFilter's answer for one node.
type Verdict int8

// Verdicts.
const (
	// Unknown: run the plugin's Filter.
	Unknown Verdict = iota
	// Rejects: the plugin's Filter would reject the node.
	Rejects
	// Passes: the plugin's Filter would accept the node.
	Passes
)

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

// PositionScorer is an optional ability of a ScorePlugin: after the
// plugin's PreScore ran, ScoreByPosition may return a function that gives
// a feasible node's score from its position in snap.NodeInfoList alone,
// exactly the score Score would give. A nil function means call Score.
// The function must not mutate anything.
type PositionScorer interface {
	ScorePlugin
	ScoreByPosition(state *CycleState, snap *Snapshot) func(i int) int64
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
