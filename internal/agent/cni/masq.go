package cni

import (
	"context"
	"fmt"
	"net/netip"

	"sigs.k8s.io/knftables"
)

// MasqTable is the nftables table (family ip) of Masquerade.
const MasqTable = "skiff-masq"

// Masquerade makes the node masquerade its pods' traffic to destinations
// outside the cluster's pod range (the internet, the node's LAN, node
// addresses) in a table of its own, and never traffic between pods, on
// this node or another: the bridge plugin's ipMasq would also NAT pod
// traffic to other nodes' pods. It rewrites the table whole; nft nil means
// the host's nftables.
func Masquerade(ctx context.Context, nft knftables.Interface, podCIDR, clusterCIDR string) error {
	for _, c := range []string{podCIDR, clusterCIDR} {
		if _, err := netip.ParsePrefix(c); err != nil {
			return fmt.Errorf("cni: masquerade: %w", err)
		}
	}
	if nft == nil {
		var err error
		if nft, err = knftables.New(knftables.IPv4Family, MasqTable); err != nil {
			return fmt.Errorf("cni: masquerade: opening nftables: %w", err)
		}
	}
	tx := nft.NewTransaction()
	tx.Add(&knftables.Table{Comment: knftables.PtrTo("skiff: pod egress masquerade")})
	tx.Flush(&knftables.Table{})
	tx.Add(&knftables.Chain{
		Name:     "postrouting",
		Type:     knftables.PtrTo(knftables.NATType),
		Hook:     knftables.PtrTo(knftables.PostroutingHook),
		Priority: knftables.PtrTo(knftables.SNATPriority),
	})
	tx.Add(&knftables.Rule{
		Chain: "postrouting",
		Rule:  knftables.Concat("ip saddr", podCIDR, "ip daddr !=", clusterCIDR, "masquerade"),
	})
	if err := nft.Run(ctx, tx); err != nil {
		return fmt.Errorf("cni: masquerade: %w", err)
	}
	return nil
}
