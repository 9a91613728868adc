// Package hostports holds what a pod's host ports are and when two of them
// collide, as upstream decides it: the scheduler's NodePorts filter
// (internal/scheduler) keeps a pod off a node whose pods hold its ports,
// and the agent's admission (internal/agent/pods) refuses a pod bound
// straight to the node (spec.nodeName set by its creator) whose ports are
// taken. It is pure: no I/O.
package hostports

import v1 "k8s.io/api/core/v1"

// HostPort is one host port a pod holds on its node.
type HostPort struct {
	IP       string
	Protocol v1.Protocol
	Port     int32
}

// Conflicts reports whether two host ports cannot coexist: same protocol
// and port, and the same IP or either bound to every address.
func (p HostPort) Conflicts(o HostPort) bool {
	if p.Port != o.Port || p.Protocol != o.Protocol {
		return false
	}
	return p.IP == o.IP || p.IP == "0.0.0.0" || o.IP == "0.0.0.0"
}

// Of returns the host ports a pod asks for, with the upstream defaults
// (IP 0.0.0.0, protocol TCP): its containers' and its restartable init
// containers' (sidecars keep theirs).
func Of(pod *v1.Pod) []HostPort {
	var out []HostPort
	add := func(cs []v1.Container) {
		for i := range cs {
			for _, p := range cs[i].Ports {
				if p.HostPort <= 0 {
					continue
				}
				hp := HostPort{IP: p.HostIP, Protocol: p.Protocol, Port: p.HostPort}
				if hp.IP == "" {
					hp.IP = "0.0.0.0"
				}
				if hp.Protocol == "" {
					hp.Protocol = v1.ProtocolTCP
				}
				out = append(out, hp)
			}
		}
	}
	add(pod.Spec.Containers)
	for i := range pod.Spec.InitContainers {
		c := &pod.Spec.InitContainers[i]
		if c.RestartPolicy != nil && *c.RestartPolicy == v1.ContainerRestartPolicyAlways {
			add(pod.Spec.InitContainers[i : i+1])
		}
	}
	return out
}

// Collide reports whether any of want conflicts with any of held.
func Collide(want, held []HostPort) bool {
	for _, w := range want {
		for _, h := range held {
			if w.Conflicts(h) {
				return true
			}
		}
	}
	return false
}
