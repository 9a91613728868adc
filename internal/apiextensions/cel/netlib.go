package cel

import (
	"fmt"
	"net/netip"
	"reflect"

	"github.com/google/cel-go/cel"
	"github.com/google/cel-go/common/types"
	"github.com/google/cel-go/common/types/ref"
)

// The Kubernetes IP and CIDR library (upstream's library.IP and
// library.CIDR, as documented): ip, isIP, ip.isCanonical, family,
// isUnspecified, isLoopback, isLinkLocalMulticast, isLinkLocalUnicast,
// isGlobalUnicast; cidr, isCIDR, containsIP, containsCIDR, ip, masked,
// prefixLength; string() of both.

var (
	ipType   = cel.ObjectType("net.IP")
	cidrType = cel.ObjectType("net.CIDR")
)

func netLibrary() []cel.EnvOption {
	ipOf := func(f func(netip.Addr) ref.Val) func(ref.Val) ref.Val {
		return func(v ref.Val) ref.Val {
			a, ok := v.(ipAddr)
			if !ok {
				return types.MaybeNoSuchOverloadErr(v)
			}
			return f(a.addr)
		}
	}
	boolOf := func(f func(netip.Addr) bool) func(ref.Val) ref.Val {
		return ipOf(func(a netip.Addr) ref.Val { return types.Bool(f(a)) })
	}
	ipMethod := func(name string, f func(netip.Addr) bool) cel.EnvOption {
		return cel.Function(name, cel.MemberOverload("ip_"+name, []*cel.Type{ipType}, cel.BoolType, cel.UnaryBinding(boolOf(f))))
	}
	return []cel.EnvOption{
		cel.Function("ip",
			cel.Overload("string_to_ip", []*cel.Type{cel.StringType}, ipType, cel.UnaryBinding(func(v ref.Val) ref.Val {
				s, ok := v.(types.String)
				if !ok {
					return types.MaybeNoSuchOverloadErr(v)
				}
				a, err := parseIP(string(s))
				if err != nil {
					return types.WrapErr(err)
				}
				return ipAddr{a}
			})),
			cel.MemberOverload("cidr_ip", []*cel.Type{cidrType}, ipType, cel.UnaryBinding(func(v ref.Val) ref.Val {
				c, ok := v.(cidr)
				if !ok {
					return types.MaybeNoSuchOverloadErr(v)
				}
				return ipAddr{c.p.Addr()}
			}))),
		cel.Function("isIP", cel.Overload("is_ip", []*cel.Type{cel.StringType}, cel.BoolType, cel.UnaryBinding(func(v ref.Val) ref.Val {
			s, ok := v.(types.String)
			if !ok {
				return types.MaybeNoSuchOverloadErr(v)
			}
			_, err := parseIP(string(s))
			return types.Bool(err == nil)
		}))),
		cel.Function("ip.isCanonical", cel.Overload("ip_is_canonical", []*cel.Type{cel.StringType}, cel.BoolType, cel.UnaryBinding(func(v ref.Val) ref.Val {
			s, ok := v.(types.String)
			if !ok {
				return types.MaybeNoSuchOverloadErr(v)
			}
			a, err := parseIP(string(s))
			if err != nil {
				return types.WrapErr(err)
			}
			return types.Bool(a.String() == string(s))
		}))),
		cel.Function("family", cel.MemberOverload("ip_family", []*cel.Type{ipType}, cel.IntType, cel.UnaryBinding(ipOf(func(a netip.Addr) ref.Val {
			if a.Is4() {
				return types.Int(4)
			}
			return types.Int(6)
		})))),
		ipMethod("isUnspecified", netip.Addr.IsUnspecified),
		ipMethod("isLoopback", netip.Addr.IsLoopback),
		ipMethod("isLinkLocalMulticast", netip.Addr.IsLinkLocalMulticast),
		ipMethod("isLinkLocalUnicast", netip.Addr.IsLinkLocalUnicast),
		ipMethod("isGlobalUnicast", netip.Addr.IsGlobalUnicast),
		cel.Function("cidr", cel.Overload("string_to_cidr", []*cel.Type{cel.StringType}, cidrType, cel.UnaryBinding(func(v ref.Val) ref.Val {
			s, ok := v.(types.String)
			if !ok {
				return types.MaybeNoSuchOverloadErr(v)
			}
			p, err := parseCIDR(string(s))
			if err != nil {
				return types.WrapErr(err)
			}
			return cidr{p}
		}))),
		cel.Function("isCIDR", cel.Overload("is_cidr", []*cel.Type{cel.StringType}, cel.BoolType, cel.UnaryBinding(func(v ref.Val) ref.Val {
			s, ok := v.(types.String)
			if !ok {
				return types.MaybeNoSuchOverloadErr(v)
			}
			_, err := parseCIDR(string(s))
			return types.Bool(err == nil)
		}))),
		cel.Function("containsIP",
			cel.MemberOverload("cidr_contains_ip_ip", []*cel.Type{cidrType, ipType}, cel.BoolType, cel.BinaryBinding(containsIP)),
			cel.MemberOverload("cidr_contains_ip_string", []*cel.Type{cidrType, cel.StringType}, cel.BoolType, cel.BinaryBinding(containsIP))),
		cel.Function("containsCIDR",
			cel.MemberOverload("cidr_contains_cidr", []*cel.Type{cidrType, cidrType}, cel.BoolType, cel.BinaryBinding(containsCIDR)),
			cel.MemberOverload("cidr_contains_cidr_string", []*cel.Type{cidrType, cel.StringType}, cel.BoolType, cel.BinaryBinding(containsCIDR))),
		cel.Function("masked", cel.MemberOverload("cidr_masked", []*cel.Type{cidrType}, cidrType, cel.UnaryBinding(func(v ref.Val) ref.Val {
			c, ok := v.(cidr)
			if !ok {
				return types.MaybeNoSuchOverloadErr(v)
			}
			return cidr{c.p.Masked()}
		}))),
		cel.Function("prefixLength", cel.MemberOverload("cidr_prefix_length", []*cel.Type{cidrType}, cel.IntType, cel.UnaryBinding(func(v ref.Val) ref.Val {
			c, ok := v.(cidr)
			if !ok {
				return types.MaybeNoSuchOverloadErr(v)
			}
			return types.Int(c.p.Bits())
		}))),
		cel.Function("string",
			cel.Overload("ip_to_string", []*cel.Type{ipType}, cel.StringType, cel.UnaryBinding(func(v ref.Val) ref.Val { return v.ConvertToType(types.StringType) })),
			cel.Overload("cidr_to_string", []*cel.Type{cidrType}, cel.StringType, cel.UnaryBinding(func(v ref.Val) ref.Val { return v.ConvertToType(types.StringType) }))),
	}
}

// parseIP parses an IP address as upstream does: no zones, no
// IPv4-mapped IPv6 addresses (netip already refuses leading zeros).
func parseIP(s string) (netip.Addr, error) {
	a, err := netip.ParseAddr(s)
	if err != nil {
		return netip.Addr{}, fmt.Errorf("IP Address %q parse error during conversion from string: %w", s, err)
	}
	if a.Zone() != "" {
		return netip.Addr{}, fmt.Errorf("IP address %q with zone value is not allowed", s)
	}
	if a.Is4In6() {
		return netip.Addr{}, fmt.Errorf("IPv4-mapped IPv6 address %q is not allowed", s)
	}
	return a, nil
}

// parseCIDR parses a subnet in CIDR notation as upstream does: no
// IPv4-mapped IPv6 addresses.
func parseCIDR(s string) (netip.Prefix, error) {
	p, err := netip.ParsePrefix(s)
	if err != nil {
		return netip.Prefix{}, fmt.Errorf("network address parse error during conversion from string: %w", err)
	}
	if p.Addr().Is4In6() {
		return netip.Prefix{}, fmt.Errorf("IPv4-mapped IPv6 address %q is not allowed", s)
	}
	return p, nil
}

func containsIP(c, x ref.Val) ref.Val {
	n, ok := c.(cidr)
	if !ok {
		return types.MaybeNoSuchOverloadErr(c)
	}
	switch a := x.(type) {
	case ipAddr:
		return types.Bool(n.p.Contains(a.addr))
	case types.String:
		addr, err := parseIP(string(a))
		if err != nil {
			return types.WrapErr(err)
		}
		return types.Bool(n.p.Contains(addr))
	}
	return types.MaybeNoSuchOverloadErr(x)
}

func containsCIDR(c, x ref.Val) ref.Val {
	n, ok := c.(cidr)
	if !ok {
		return types.MaybeNoSuchOverloadErr(c)
	}
	var o netip.Prefix
	switch a := x.(type) {
	case cidr:
		o = a.p
	case types.String:
		p, err := parseCIDR(string(a))
		if err != nil {
			return types.WrapErr(err)
		}
		o = p
	default:
		return types.MaybeNoSuchOverloadErr(x)
	}
	return types.Bool(o.Bits() >= n.p.Bits() && n.p.Contains(o.Addr()))
}

// ipAddr is a CEL value holding an IP address.
type ipAddr struct{ addr netip.Addr }

func (a ipAddr) ConvertToNative(t reflect.Type) (any, error) {
	return opaqueToNative(a.addr, a.addr.String, "IP", t)
}

func (a ipAddr) ConvertToType(t ref.Type) ref.Val {
	return opaqueToType(a, ipType, a.addr.String, t)
}

func (a ipAddr) Equal(o ref.Val) ref.Val {
	b, ok := o.(ipAddr)
	return types.Bool(ok && a.addr == b.addr)
}

func (a ipAddr) Type() ref.Type { return ipType }
func (a ipAddr) Value() any     { return a.addr }

// cidr is a CEL value holding a subnet.
type cidr struct{ p netip.Prefix }

func (c cidr) ConvertToNative(t reflect.Type) (any, error) {
	return opaqueToNative(c.p, c.p.String, "CIDR", t)
}

func (c cidr) ConvertToType(t ref.Type) ref.Val {
	return opaqueToType(c, cidrType, c.p.String, t)
}

func (c cidr) Equal(o ref.Val) ref.Val {
	d, ok := o.(cidr)
	return types.Bool(ok && c.p == d.p)
}

func (c cidr) Type() ref.Type { return cidrType }
func (c cidr) Value() any     { return c.p }
