// Package servicealloc gives Services their cluster IPs and node ports, as
// the upstream API server does when a Service is written: a cluster IP from
// the service CIDR unless the Service is headless or an ExternalName, and a
// node port from 30000-32767 for every port of a NodePort or LoadBalancer
// Service that names none. Values a client asks for are checked against
// the range and against what other Services hold.
//
// It owns the reservations, one etcd key each under its prefix
// ("<prefix>serviceips/10.96.0.10", "<prefix>servicenodeports/30080"),
// whose value names the holder ("namespace/name"); a reservation is taken
// in one transaction that fails if another holder has it. It reads and
// writes only those keys. The registry Store calls it around Service
// writes (registry.Allocator); Repair, run at start, drops reservations no
// Service holds (a server that died between reserving and writing) and
// restores missing ones.
package servicealloc
