package framework

import (
	"context"
	"sort"
)

// Victims is a preemption plan for one node.
type Victims struct {
	Node string
	Pods []*PodInfo
	// PDBViolations counts victims whose eviction breaks a budget.
	PDBViolations int
}

// Preemption options: how many candidate nodes are evaluated at most.
const maxPreemptionCandidates = 100

// SelectVictims finds the node where evicting the fewest, lowest-priority
// pods (priority below pod's) makes pod fit, honouring disruption budgets
// where it can: violatesPDB reports whether evicting a pod breaks a
// budget, given that the potential victims before it on the node (most
// important first) are evicted too (the second argument), so that the
// victims of one budget count against each other as upstream. Only
// nodes whose rejection was Unschedulable (not ...AndUnresolvable) are
// tried. It returns nil when no node qualifies. It is pure.
func (f *Framework) SelectVictims(ctx context.Context, pod *PodInfo, snap *Snapshot, diag Diagnosis, violatesPDB func(p *PodInfo, chosen []*PodInfo) bool) *Victims {
	var names []string
	for name, st := range diag.NodeStatuses {
		if st.Code() == Unschedulable {
			names = append(names, name)
		}
	}
	sort.Strings(names)
	if len(names) > maxPreemptionCandidates {
		names = names[:maxPreemptionCandidates]
	}
	var best *Victims
	for _, name := range names {
		ni := snap.Get(name)
		if ni == nil {
			continue
		}
		v := f.victimsOn(ctx, pod, snap, ni, violatesPDB)
		if v != nil && (best == nil || better(v, best)) {
			best = v
		}
	}
	return best
}

func (f *Framework) fitsOn(ctx context.Context, pod *PodInfo, snap *Snapshot, ni *NodeInfo) bool {
	s := snap.WithNode(ni)
	state := NewCycleState()
	skip, st := f.RunPreFilter(ctx, state, pod, s)
	if st != nil {
		return false
	}
	return f.RunFilters(ctx, state, pod, ni, skip).IsSuccess()
}

func (f *Framework) victimsOn(ctx context.Context, pod *PodInfo, snap *Snapshot, orig *NodeInfo, violatesPDB func(*PodInfo, []*PodInfo) bool) *Victims {
	ni := orig.Clone()
	var potential []*PodInfo
	for _, p := range orig.Pods {
		if p.Priority < pod.Priority {
			potential = append(potential, p)
			ni.RemovePod(p.Pod.UID)
		}
	}
	if len(potential) == 0 || !f.fitsOn(ctx, pod, snap, ni) {
		return nil
	}
	// Most important first: they get the first chance to stay.
	sort.SliceStable(potential, func(i, j int) bool {
		if potential[i].Priority != potential[j].Priority {
			return potential[i].Priority > potential[j].Priority
		}
		return potential[i].Pod.CreationTimestamp.Before(&potential[j].Pod.CreationTimestamp)
	})
	var violating, ok []*PodInfo
	for i, p := range potential {
		if violatesPDB != nil && violatesPDB(p, potential[:i]) {
			violating = append(violating, p)
		} else {
			ok = append(ok, p)
		}
	}
	v := &Victims{Node: orig.Name()}
	reprieve := func(p *PodInfo) bool {
		ni.AddPod(p)
		if f.fitsOn(ctx, pod, snap, ni) {
			return true
		}
		ni.RemovePod(p.Pod.UID)
		v.Pods = append(v.Pods, p)
		return false
	}
	for _, p := range violating {
		if !reprieve(p) {
			v.PDBViolations++
		}
	}
	for _, p := range ok {
		reprieve(p)
	}
	return v
}

// better orders plans as upstream does: fewer budget violations, then a
// lower highest victim priority, then a lower priority sum, then fewer
// victims.
func better(a, b *Victims) bool {
	if a.PDBViolations != b.PDBViolations {
		return a.PDBViolations < b.PDBViolations
	}
	ha, hb := highest(a.Pods), highest(b.Pods)
	if ha != hb {
		return ha < hb
	}
	sa, sb := sum(a.Pods), sum(b.Pods)
	if sa != sb {
		return sa < sb
	}
	return len(a.Pods) < len(b.Pods)
}

func highest(ps []*PodInfo) int64 {
	h := int64(-1 << 40)
	for _, p := range ps {
		if int64(p.Priority) > h {
			h = int64(p.Priority)
		}
	}
	return h
}

func sum(ps []*PodInfo) int64 {
	var s int64
	for _, p := range ps {
		// Shift so negative priorities still add up sensibly.
		s += int64(p.Priority) + 1<<31
	}
	return s
}
