package main

import (
	"context"
	"fmt"
	"io"
	"net"
	"net/netip"
	"time"

	"github.com/skiff-dev/skiff/internal/dns"
	"github.com/skiff-dev/skiff/internal/ingress"
	"github.com/skiff-dev/skiff/internal/lazyclient"
	"github.com/skiff-dev/skiff/internal/nodeaddr"
	"github.com/skiff-dev/skiff/internal/server"
)

// dnsServiceIP is the cluster DNS service's address: the 10th of the
// service CIDR (10.96.0.10 for the default), as upstream clusters use.
func dnsServiceIP(serviceCIDR string) (string, error) {
	p, err := netip.ParsePrefix(serviceCIDR)
	if err != nil {
		return "", err
	}
	a := p.Masked().Addr()
	for range 10 {
		a = a.Next()
	}
	if !p.Contains(a) {
		return "", fmt.Errorf("service CIDR %s is too small for a DNS service address", serviceCIDR)
	}
	return a.String(), nil
}

// dnsListenRetry is how often the cluster DNS server tries port 53 again
// while something else holds it.
const dnsListenRetry = 5 * time.Second

// clusterNetworkComponent is what "skiff server" runs for the cluster's
// networking: the kube-dns Service (with its cluster IP) and the cluster
// DNS server on the node's address port 53 behind it, and the default
// IngressClass. A DNS server that cannot listen (port 53 taken) is
// reported and tried again every dnsListenRetry, not fatal: the control
// plane still works, and the DNS starts once the port is free.
func clusterNetworkComponent(serviceCIDR, nodeIP, clusterDomain string, progress io.Writer) (server.Component, error) {
	dnsIP, err := dnsServiceIP(serviceCIDR)
	if err != nil {
		return server.Component{}, err
	}
	return server.Component{
		Name:     "cluster-dns",
		Identity: clusterNetworkIdentity(),
		Run: func(ctx context.Context, env server.Env) error {
			log := env.Logger
			client, err := lazyclient.New(env.Config)
			if err != nil {
				return err
			}
			if err := ingress.EnsureClass(ctx, client, ingress.DefaultClassName, true); err != nil {
				return err
			}
			if err := dns.EnsureService(ctx, client, dnsIP); err != nil {
				return err
			}
			ip := nodeIP
			if ip == "" {
				if ip, err = nodeaddr.DetectNodeIP(); err != nil {
					return fmt.Errorf("cluster DNS: detecting the node IP (set --node-ip): %w", err)
				}
			}
			listen := net.JoinHostPort(ip, "53")
			s, err := dns.New(dns.Config{Client: client, Informers: env.Informers.Scope(), Domain: clusterDomain, Listen: listen, Logger: log,
				ListenRetry: dnsListenRetry,
				OnListenError: func(err error) {
					fmt.Fprintf(progress, "cluster DNS waiting for %s (retrying every %s): %v\n", listen, dnsListenRetry, err)
				}})
			if err != nil {
				return err
			}
			errc := make(chan error, 1)
			go func() { errc <- s.Run(ctx) }()
			select {
			case <-s.Ready():
			case err := <-errc:
				if err != nil && ctx.Err() == nil {
					log.Error("cluster DNS disabled", "err", err)
					fmt.Fprintf(progress, "cluster DNS disabled: %v\n", err)
					<-ctx.Done()
				}
				return nil
			}
			if err := dns.EnsureEndpoints(ctx, client, ip, 53); err != nil {
				return err
			}
			fmt.Fprintf(progress, "cluster DNS serving %s on %s (service %s)\n", clusterDomain, s.Addr(), dnsIP)
			return <-errc
		},
	}, nil
}
