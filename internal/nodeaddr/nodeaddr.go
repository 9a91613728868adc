// Package nodeaddr finds the address a node is reached at: the node
// agent reports it as the Node's InternalIP, the server advertises the API
// at it, cluster DNS listens on it. It reads the routing table and the
// interfaces; it writes nothing.
package nodeaddr

import (
	"bufio"
	"fmt"
	"net"
	"os"
	"strings"
)

// DetectNodeIP returns the node's IP: the first global unicast IPv4 address
// of the interface holding the default IPv4 route, else the first global
// unicast address (IPv4 first) of any up, non-loopback interface, else
// 127.0.0.1. It errors only when the interfaces cannot be listed.
func DetectNodeIP() (string, error) {
	if iface := defaultRouteInterface("/proc/net/route"); iface != "" {
		if ifc, err := net.InterfaceByName(iface); err == nil {
			if ip := firstGlobal(ifc, true); ip != "" {
				return ip, nil
			}
		}
	}
	ifaces, err := net.Interfaces()
	if err != nil {
		return "", fmt.Errorf("detecting the node IP: %w", err)
	}
	for _, v4 := range []bool{true, false} {
		for i := range ifaces {
			ifc := &ifaces[i]
			if ifc.Flags&net.FlagUp == 0 || ifc.Flags&net.FlagLoopback != 0 {
				continue
			}
			if ip := firstGlobal(ifc, v4); ip != "" {
				return ip, nil
			}
		}
	}
	return "127.0.0.1", nil
}

// defaultRouteInterface returns the interface of the default route in a
// /proc/net/route file, "" when there is none.
func defaultRouteInterface(path string) string {
	f, err := os.Open(path)
	if err != nil {
		return ""
	}
	defer f.Close()
	s := bufio.NewScanner(f)
	s.Scan() // header
	for s.Scan() {
		// Iface Destination Gateway Flags RefCnt Use Metric Mask ...
		fields := strings.Fields(s.Text())
		if len(fields) >= 8 && fields[1] == "00000000" && fields[7] == "00000000" {
			return fields[0]
		}
	}
	return ""
}

// firstGlobal returns the interface's first global unicast address of the
// family (IPv4 when v4), "" if none.
func firstGlobal(ifc *net.Interface, v4 bool) string {
	addrs, err := ifc.Addrs()
	if err != nil {
		return ""
	}
	for _, a := range addrs {
		ipn, ok := a.(*net.IPNet)
		if !ok || !ipn.IP.IsGlobalUnicast() || (ipn.IP.To4() != nil) != v4 {
			continue
		}
		return ipn.IP.String()
	}
	return ""
}
