package cni

import (
	"encoding/binary"
	"fmt"
	"net"
	"net/netip"
	"syscall"

	"golang.org/x/sys/unix"
)

// ForgetNeighbor deletes the node's neighbor (ARP or NDP) entry for ip on
// the interface named dev, if there is one.
//
// host-local hands a deleted pod's address to a later pod once its range
// wraps around, and the node's neighbor table may still map the address
// to the old pod's MAC. Debian's bridge plugin announces no new MAC, so
// until the stale entry times out (some 5 s) whatever the node sends to
// the new pod (its probes, service traffic proxied from the node) goes to
// a MAC that is gone: a liveness probe with failureThreshold 1 restarts a
// healthy container. The agent calls this with every new sandbox's
// address, before the sandbox's containers start.
//
// A missing interface or entry is not an error.
func ForgetNeighbor(dev string, ip netip.Addr) error {
	ifi, err := net.InterfaceByName(dev)
	if err != nil {
		// No such interface (the bridge appears with the first pod): no
		// entry either.
		return nil
	}
	ip = ip.Unmap()
	family := uint8(unix.AF_INET)
	if ip.Is6() {
		family = unix.AF_INET6
	}
	addr := ip.AsSlice()

	// nlmsghdr (16) + ndmsg (12) + rtattr NDA_DST (4 + address, padded to 4).
	attrLen := unix.SizeofRtAttr + len(addr)
	msgLen := unix.SizeofNlMsghdr + unix.SizeofNdMsg + nlAlign(attrLen)
	b := make([]byte, msgLen)
	ne := binary.NativeEndian
	ne.PutUint32(b[0:], uint32(msgLen))
	ne.PutUint16(b[4:], unix.RTM_DELNEIGH)
	ne.PutUint16(b[6:], unix.NLM_F_REQUEST|unix.NLM_F_ACK)
	ne.PutUint32(b[8:], 1) // sequence
	nd := b[unix.SizeofNlMsghdr:]
	nd[0] = family
	ne.PutUint32(nd[4:], uint32(int32(ifi.Index)))
	at := nd[unix.SizeofNdMsg:]
	ne.PutUint16(at[0:], uint16(attrLen))
	ne.PutUint16(at[2:], unix.NDA_DST)
	copy(at[unix.SizeofRtAttr:], addr)

	fd, err := unix.Socket(unix.AF_NETLINK, unix.SOCK_RAW|unix.SOCK_CLOEXEC, unix.NETLINK_ROUTE)
	if err != nil {
		return fmt.Errorf("forgetting neighbor %s: netlink socket: %w", ip, err)
	}
	defer unix.Close(fd)
	kernel := &unix.SockaddrNetlink{Family: unix.AF_NETLINK}
	if err := unix.Sendto(fd, b, 0, kernel); err != nil {
		return fmt.Errorf("forgetting neighbor %s: netlink send: %w", ip, err)
	}
	reply := make([]byte, 4096)
	for {
		n, _, err := unix.Recvfrom(fd, reply, 0)
		if err == unix.EINTR {
			continue
		}
		if err != nil {
			return fmt.Errorf("forgetting neighbor %s: netlink receive: %w", ip, err)
		}
		msgs, err := syscall.ParseNetlinkMessage(reply[:n])
		if err != nil {
			return fmt.Errorf("forgetting neighbor %s: netlink reply: %w", ip, err)
		}
		for _, m := range msgs {
			if m.Header.Seq != 1 || m.Header.Type != unix.NLMSG_ERROR {
				continue
			}
			if len(m.Data) < 4 {
				return fmt.Errorf("forgetting neighbor %s: short netlink ack", ip)
			}
			switch errno := -int32(ne.Uint32(m.Data[0:4])); errno {
			case 0, int32(unix.ENOENT):
				return nil
			default:
				return fmt.Errorf("forgetting neighbor %s on %s: %w", ip, dev, unix.Errno(errno))
			}
		}
	}
}

func nlAlign(n int) int { return (n + unix.NLMSG_ALIGNTO - 1) &^ (unix.NLMSG_ALIGNTO - 1) }
