package framework

import (
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"runtime"
	"sort"
	"strings"
	"sync"
	"sync/atomic"
)

// Upstream sampling constants: below minFeasibleNodesToFind nodes every
// node is checked; the adaptive percentage starts at 50% and falls by 1%
// per 125 nodes, not below 5%.
const (
	minFeasibleNodesToFind           = 100
	minFeasibleNodesPercentageToFind = 5
	defaultPercentageBase            = 50
)

// WeightedScorer is a ScorePlugin with its weight.
type WeightedScorer struct {
	Plugin ScorePlugin
	Weight int64
}

// Options configure a Framework.
type Options struct {
	// PercentageOfNodesToScore: 0 means adaptive (as upstream), 100 means
	// every node, otherwise the share of nodes to look for feasible ones
	// in (never fewer than 100 nodes).
	PercentageOfNodesToScore int32
	// Parallelism is the number of goroutines filtering nodes; 0 means
	// GOMAXPROCS.
	Parallelism int
	// Rand breaks score ties; nil means a fixed seed.
	Rand *rand.Rand
}

// Framework runs plugins over a Snapshot. Schedule is not safe for
// concurrent use (it keeps the round-robin start and reusable buffers);
// the scheduler calls it from its one scheduling goroutine.
type Framework struct {
	preFilters []PreFilterPlugin
	filters    []FilterPlugin
	preScores  []PreScorePlugin
	scorers    []WeightedScorer
	opts       Options
	rand       *rand.Rand

	nextStart   int
	active      []FilterPlugin
	positions   []positionFilter
	statuses    []*Status
	feasible    []*NodeInfo
	feasiblePos []int // feasible[k] is at feasiblePos[k] in the node list
	scores      []int64
	totals      []int64
}

// New builds a Framework. plugins implement any of the plugin interfaces;
// weights gives each ScorePlugin's weight by name (missing means 1).
func New(plugins []Plugin, weights map[string]int64, opts Options) *Framework {
	f := &Framework{opts: opts, rand: opts.Rand}
	if f.rand == nil {
		f.rand = rand.New(rand.NewPCG(1, 2))
	}
	for _, p := range plugins {
		if pf, ok := p.(PreFilterPlugin); ok {
			f.preFilters = append(f.preFilters, pf)
		}
		if fp, ok := p.(FilterPlugin); ok {
			f.filters = append(f.filters, fp)
		}
		if ps, ok := p.(PreScorePlugin); ok {
			f.preScores = append(f.preScores, ps)
		}
		if sp, ok := p.(ScorePlugin); ok {
			w, ok := weights[p.Name()]
			if !ok {
				w = 1
			}
			if w > 0 {
				f.scorers = append(f.scorers, WeightedScorer{Plugin: sp, Weight: w})
			}
		}
	}
	return f
}

// Result is a successful decision.
type Result struct {
	// Node is the chosen node's name.
	Node string
	// Evaluated is how many nodes were filtered; Feasible how many fit.
	Evaluated, Feasible int
}

// Diagnosis says why nodes were rejected.
type Diagnosis struct {
	// NodeStatuses maps a rejected node's name to its status.
	NodeStatuses map[string]*Status
	// PreFilterMsg is set when a PreFilter rejected the pod outright.
	PreFilterMsg string
	// PostFilterMsg is appended to the message (preemption's outcome).
	PostFilterMsg string
}

// FitError is returned by Schedule when no node fits.
type FitError struct {
	Pod         *PodInfo
	NumAllNodes int
	Diagnosis   Diagnosis
}

// Error reads like upstream: "0/5 nodes are available: 2 Insufficient
// cpu, 3 node(s) had untolerated taint {dedicated: gpu}."
func (e *FitError) Error() string {
	msg := fmt.Sprintf("0/%d nodes are available:", e.NumAllNodes)
	if e.Diagnosis.PreFilterMsg != "" {
		msg += " " + e.Diagnosis.PreFilterMsg + "."
	} else {
		msg += " " + ReasonHistogram(e.Diagnosis.NodeStatuses) + "."
	}
	if e.Diagnosis.PostFilterMsg != "" {
		msg += " " + e.Diagnosis.PostFilterMsg
	}
	return msg
}

// ReasonHistogram counts reasons over nodes and renders "N reason"
// entries sorted as strings and joined by ", ", as upstream does.
func ReasonHistogram(statuses map[string]*Status) string {
	counts := map[string]int{}
	for _, st := range statuses {
		for _, r := range st.Reasons() {
			counts[r]++
		}
	}
	out := make([]string, 0, len(counts))
	for r, n := range counts {
		out = append(out, fmt.Sprintf("%d %s", n, r))
	}
	sort.Strings(out)
	return strings.Join(out, ", ")
}

// ErrNoNodes is returned (wrapped in a FitError) when the cluster has no
// nodes.
var errNoNodes = errors.New("no nodes available to schedule pods")

// NumFeasibleNodesToFind returns how many feasible nodes to look for
// among numAllNodes before stopping (upstream's sampling rule).
func NumFeasibleNodesToFind(percentage int32, numAllNodes int) int {
	if numAllNodes < minFeasibleNodesToFind || percentage >= 100 {
		return numAllNodes
	}
	adaptive := percentage
	if adaptive <= 0 {
		adaptive = int32(defaultPercentageBase - numAllNodes/125)
		if adaptive < minFeasibleNodesPercentageToFind {
			adaptive = minFeasibleNodesPercentageToFind
		}
	}
	n := numAllNodes * int(adaptive) / 100
	if n < minFeasibleNodesToFind {
		return minFeasibleNodesToFind
	}
	return n
}

// Schedule picks a node for pod in snap: PreFilter, Filter over (a sample
// of) the nodes starting where the previous call stopped, then PreScore
// and Score over the feasible ones. It returns a *FitError when no node
// fits, any other error for internal failures.
func (f *Framework) Schedule(ctx context.Context, pod *PodInfo, snap *Snapshot) (Result, error) {
	if snap.NumNodes() == 0 {
		return Result{}, &FitError{Pod: pod, NumAllNodes: 0, Diagnosis: Diagnosis{PreFilterMsg: errNoNodes.Error()}}
	}
	if pod.ParseError != nil {
		return Result{}, fmt.Errorf("parsing pod: %w", pod.ParseError)
	}
	state := NewCycleState()
	feasible, evaluated, diag, err := f.findFeasible(ctx, state, pod, snap)
	if err != nil {
		return Result{}, err
	}
	if len(feasible) == 0 {
		return Result{}, &FitError{Pod: pod, NumAllNodes: snap.NumNodes(), Diagnosis: diag}
	}
	if len(feasible) == 1 {
		return Result{Node: feasible[0].Name(), Evaluated: evaluated, Feasible: 1}, nil
	}
	totals, err := f.score(ctx, state, pod, snap, feasible, f.feasiblePos[:len(feasible)])
	if err != nil {
		return Result{}, err
	}
	return Result{Node: f.selectHost(feasible, totals), Evaluated: evaluated, Feasible: len(feasible)}, nil
}

// RunPreFilter runs every PreFilter plugin and returns the names of the
// plugins that asked to be skipped. A rejection or error stops the run.
func (f *Framework) RunPreFilter(ctx context.Context, state *CycleState, pod *PodInfo, snap *Snapshot) (map[string]bool, *Status) {
	var skip map[string]bool
	for _, p := range f.preFilters {
		st := p.PreFilter(ctx, state, pod, snap)
		switch {
		case st.IsSkip():
			if skip == nil {
				skip = map[string]bool{}
			}
			skip[p.Name()] = true
		case !st.IsSuccess():
			return nil, st.WithPlugin(p.Name())
		}
	}
	return skip, nil
}

// positionFilter is a PositionFilter's answers for one cycle, with the
// plugin's index among the active filters.
type positionFilter struct {
	at     func(int) Verdict
	active int
}

// runActive runs the given filters on one node, stopping at the first
// rejection, except those whose bit is set in passed (at most 64 filters
// can be so marked; more run anyway).
func runActive(ctx context.Context, state *CycleState, pod *PodInfo, node *NodeInfo, active []FilterPlugin, passed uint64) *Status {
	for i, p := range active {
		if i < 64 && passed&(1<<i) != 0 {
			continue
		}
		if st := p.Filter(ctx, state, pod, node); !st.IsSuccess() {
			return st.WithPlugin(p.Name())
		}
	}
	return nil
}

// RunFilters runs the Filter plugins on one node, stopping at the first
// rejection.
func (f *Framework) RunFilters(ctx context.Context, state *CycleState, pod *PodInfo, node *NodeInfo, skip map[string]bool) *Status {
	for _, p := range f.filters {
		if skip[p.Name()] {
			continue
		}
		if st := p.Filter(ctx, state, pod, node); !st.IsSuccess() {
			return st.WithPlugin(p.Name())
		}
	}
	return nil
}

// shareWork runs work on the calling goroutine and on up to helpers more
// goroutines that start while it runs; work must return once nothing is
// left. It returns when the caller's work and that of every helper that
// joined are done. A helper that first runs after that does nothing: on a
// busy machine a new goroutine may wait in the run queue longer than the
// whole work takes, and waiting for it would stall the scheduling loop.
func shareWork(helpers int, work func()) {
	var (
		mu      sync.Mutex
		stopped bool
		joined  sync.WaitGroup
	)
	for range helpers {
		go func() {
			mu.Lock()
			if stopped {
				mu.Unlock()
				return
			}
			joined.Add(1)
			mu.Unlock()
			defer joined.Done()
			work()
		}()
	}
	work()
	mu.Lock()
	stopped = true
	mu.Unlock()
	joined.Wait()
}

// preRejected marks, in findFeasible's statuses, a node a PositionFilter
// rejected without any filter running on it.
var preRejected = NewStatus(UnschedulableAndUnresolvable, "rejected by position")

// findFeasible filters nodes from where the previous call stopped until
// enough feasible ones are found. It returns them, how many nodes were
// looked at, and, only when none fits, the diagnosis.
func (f *Framework) findFeasible(ctx context.Context, state *CycleState, pod *PodInfo, snap *Snapshot) ([]*NodeInfo, int, Diagnosis, error) {
	nodes := snap.NodeInfoList
	n := len(nodes)
	diag := Diagnosis{}
	skip, st := f.RunPreFilter(ctx, state, pod, snap)
	if st != nil {
		if st.Code() == Error {
			return nil, 0, diag, fmt.Errorf("running prefilter plugin %q: %w", st.Plugin(), st.Err())
		}
		diag.PreFilterMsg = st.Message()
		diag.NodeStatuses = make(map[string]*Status, n)
		for _, ni := range nodes {
			diag.NodeStatuses[ni.Name()] = st
		}
		return nil, n, diag, nil
	}
	// The filters to run, and the answers by position of those that
	// give them.
	active, positions := f.active[:0], f.positions[:0]
	for _, p := range f.filters {
		if skip[p.Name()] {
			continue
		}
		if pf, ok := p.(PositionFilter); ok && len(active) < 64 {
			if at := pf.FilterByPosition(state, snap); at != nil {
				positions = append(positions, positionFilter{at: at, active: len(active)})
			}
		}
		active = append(active, p)
	}
	f.active, f.positions = active, positions

	want := NumFeasibleNodesToFind(f.opts.PercentageOfNodesToScore, n)
	if cap(f.statuses) < n {
		f.statuses = make([]*Status, n)
		f.feasible = make([]*NodeInfo, n)
		f.feasiblePos = make([]int, n)
	}
	statuses := f.statuses[:n]
	clear(statuses)
	feasible, feasiblePos := f.feasible[:want], f.feasiblePos[:want]
	var found, processed atomic.Int64
	var firstErr atomic.Pointer[Status]
	start := f.nextStart % n
	check := func(i int) {
		idx := (start + i) % n
		processed.Add(1)
		var passed uint64
		for _, pf := range positions {
			switch pf.at(idx) {
			case Rejects:
				statuses[idx] = preRejected
				return
			case Passes:
				passed |= 1 << pf.active
			}
		}
		ni := nodes[idx]
		st := runActive(ctx, state, pod, ni, active, passed)
		switch {
		case st.IsSuccess():
			k := found.Add(1) - 1
			if k < int64(want) {
				feasible[k], feasiblePos[k] = ni, idx
			}
		case st.Code() == Error:
			firstErr.CompareAndSwap(nil, st)
		default:
			statuses[idx] = st
		}
	}
	workers := f.opts.Parallelism
	if workers <= 0 {
		workers = runtime.GOMAXPROCS(0)
	}
	if workers == 1 || n < 32 {
		for i := 0; i < n && found.Load() < int64(want); i++ {
			check(i)
		}
	} else {
		var next atomic.Int64
		shareWork(workers-1, func() {
			for found.Load() < int64(want) && firstErr.Load() == nil {
				i := int(next.Add(1) - 1)
				if i >= n {
					return
				}
				check(i)
			}
		})
	}
	if st := firstErr.Load(); st != nil {
		return nil, 0, diag, fmt.Errorf("running filter plugin %q: %w", st.Plugin(), st.Err())
	}
	evaluated := int(processed.Load())
	f.nextStart = (start + evaluated) % n
	k := int(found.Load())
	if k > want {
		k = want
	}
	if k > 0 {
		return feasible[:k], evaluated, diag, nil
	}
	// No node fits: explain every rejection, running the filters on the
	// nodes skipped by position so that the first rejecting filter names
	// the reason, as if they had run.
	diag.NodeStatuses = make(map[string]*Status)
	for i, st := range statuses {
		if st == preRejected {
			st = runActive(ctx, state, pod, nodes[i], active, 0)
			switch {
			case st.IsSuccess():
				// A PositionFilter disagreed with its Filter; trust the
				// filters.
				if k < want {
					feasible[k], feasiblePos[k] = nodes[i], i
					k++
				}
				continue
			case st.Code() == Error:
				return nil, 0, diag, fmt.Errorf("running filter plugin %q: %w", st.Plugin(), st.Err())
			}
		}
		if st != nil {
			diag.NodeStatuses[nodes[i].Name()] = st
		}
	}
	if k > 0 {
		return feasible[:k], evaluated, Diagnosis{}, nil
	}
	return nil, evaluated, diag, nil
}

// score runs the scorers over the feasible nodes; positions gives each
// node's position in snap.NodeInfoList.
func (f *Framework) score(ctx context.Context, state *CycleState, pod *PodInfo, snap *Snapshot, nodes []*NodeInfo, positions []int) ([]int64, error) {
	var skip map[string]bool
	for _, p := range f.preScores {
		st := p.PreScore(ctx, state, pod, snap, nodes)
		switch {
		case st.IsSkip():
			if skip == nil {
				skip = map[string]bool{}
			}
			skip[p.Name()] = true
		case !st.IsSuccess():
			return nil, fmt.Errorf("running prescore plugin %q: %w", p.Name(), st.Err())
		}
	}
	if cap(f.totals) < len(nodes) {
		f.totals = make([]int64, len(nodes))
		f.scores = make([]int64, len(nodes))
	}
	totals := f.totals[:len(nodes)]
	clear(totals)
	scores := f.scores[:len(nodes)]
	for _, ws := range f.scorers {
		p := ws.Plugin
		if skip[p.Name()] {
			continue
		}
		var at func(int) int64
		if ps, ok := p.(PositionScorer); ok {
			at = ps.ScoreByPosition(state, snap)
		}
		for i, ni := range nodes {
			if at != nil {
				scores[i] = at(positions[i])
				continue
			}
			s, st := p.Score(ctx, state, pod, ni)
			if !st.IsSuccess() {
				return nil, fmt.Errorf("running score plugin %q on node %q: %w", p.Name(), ni.Name(), st.Err())
			}
			scores[i] = s
		}
		if nz, ok := p.(ScoreNormalizer); ok {
			if st := nz.NormalizeScore(ctx, state, pod, scores); !st.IsSuccess() {
				return nil, fmt.Errorf("normalizing scores of plugin %q: %w", p.Name(), st.Err())
			}
		}
		for i := range scores {
			totals[i] += scores[i] * ws.Weight
		}
	}
	return totals, nil
}

// selectHost returns the node with the highest total, breaking ties
// uniformly at random (reservoir sampling).
func (f *Framework) selectHost(nodes []*NodeInfo, totals []int64) string {
	best, ties := 0, 1
	for i := 1; i < len(nodes); i++ {
		switch {
		case totals[i] > totals[best]:
			best, ties = i, 1
		case totals[i] == totals[best]:
			ties++
			if f.rand.IntN(ties) == 0 {
				best = i
			}
		}
	}
	return nodes[best].Name()
}
