package main

import (
	"github.com/skiff-dev/skiff/internal/auth/rbac"
	"github.com/skiff-dev/skiff/internal/server"
)

// The identities of the components "skiff server" runs beside the API
// server: each gets a client certificate of its own (DataDir/pki/
// <CertName>.crt) instead of the admin's, and the default RBAC policy
// (internal/auth/rbac, written at every start) grants each what it does
// and no more: no system:masters, no impersonation.

// schedulerIdentity is upstream's scheduler user, bound to
// system:kube-scheduler, system:volume-scheduler and skiff:kube-scheduler.
func schedulerIdentity() *server.Identity {
	return &server.Identity{CertName: "kube-scheduler", User: rbac.KubeSchedulerUser}
}

// controllerManagerIdentity is upstream's controller manager user, bound
// to system:kube-controller-manager and skiff:kube-controller-manager
// (every controller runs as this one user).
func controllerManagerIdentity() *server.Identity {
	return &server.Identity{CertName: "kube-controller-manager", User: rbac.KubeControllerManagerUser}
}

// clusterNetworkIdentity is the cluster DNS and networking component's
// user, bound to skiff:cluster-network.
func clusterNetworkIdentity() *server.Identity {
	return &server.Identity{CertName: "cluster-network", User: rbac.ClusterNetworkUser}
}
