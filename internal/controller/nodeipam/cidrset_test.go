package nodeipam

import (
	"errors"
	"net/netip"
	"testing"

	"github.com/google/go-cmp/cmp"
)

func TestNewCIDRSet(t *testing.T) {
	tests := []struct {
		name    string
		cluster string
		mask    int
		count   int
		wantErr bool
	}{
		{name: "k3s default", cluster: "10.42.0.0/16", mask: 24, count: 256},
		{name: "unmasked cluster", cluster: "10.42.7.1/16", mask: 24, count: 256},
		{name: "ipv6", cluster: "fd00:42::/56", mask: 64, count: 256},
		{name: "mask not longer", cluster: "10.42.0.0/16", mask: 16, wantErr: true},
		{name: "mask too long", cluster: "10.42.0.0/16", mask: 33, wantErr: true},
		{name: "too many subnets", cluster: "10.0.0.0/8", mask: 30, wantErr: true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s, err := newCIDRSet(netip.MustParsePrefix(tt.cluster), tt.mask)
			if (err != nil) != tt.wantErr {
				t.Fatalf("newCIDRSet() error = %v, wantErr %v", err, tt.wantErr)
			}
			if err == nil && s.count != tt.count {
				t.Errorf("count = %d, want %d", s.count, tt.count)
			}
		})
	}
}

func TestCIDRSetSubnets(t *testing.T) {
	tests := []struct {
		cluster string
		mask    int
		index   int
		want    string
	}{
		{"10.42.0.0/16", 24, 0, "10.42.0.0/24"},
		{"10.42.0.0/16", 24, 255, "10.42.255.0/24"},
		{"10.42.0.0/16", 26, 5, "10.42.1.64/26"},
		{"fd00:42::/56", 64, 3, "fd00:42:0:3::/64"},
	}
	for _, tt := range tests {
		t.Run(tt.want, func(t *testing.T) {
			s, err := newCIDRSet(netip.MustParsePrefix(tt.cluster), tt.mask)
			if err != nil {
				t.Fatal(err)
			}
			got := s.subnet(tt.index)
			if got.String() != tt.want {
				t.Errorf("subnet(%d) = %v, want %s", tt.index, got, tt.want)
			}
			i, ok := s.index(got)
			if !ok || i != tt.index {
				t.Errorf("index(%v) = %d, %v, want %d, true", got, i, ok, tt.index)
			}
		})
	}
}

func TestCIDRSetAllocation(t *testing.T) {
	s, err := newCIDRSet(netip.MustParsePrefix("10.9.0.0/22"), 24) // four subnets
	if err != nil {
		t.Fatal(err)
	}
	steps := []struct {
		name    string
		do      func() (string, error)
		want    string
		wantErr error
	}{
		{"occupy an existing one", func() (string, error) {
			return "", s.occupy("old", netip.MustParsePrefix("10.9.1.0/24"))
		}, "", nil},
		{"occupy it twice for another node", func() (string, error) {
			return "", s.occupy("thief", netip.MustParsePrefix("10.9.1.0/24"))
		}, "", errAny},
		{"occupy outside the range", func() (string, error) {
			return "", s.occupy("far", netip.MustParsePrefix("10.10.0.0/24"))
		}, "", errAny},
		{"occupy a wrong size", func() (string, error) {
			return "", s.occupy("far", netip.MustParsePrefix("10.9.2.0/25"))
		}, "", errAny},
		{"first free", alloc(s, "a"), "10.9.0.0/24", nil},
		{"same node, same subnet", alloc(s, "a"), "10.9.0.0/24", nil},
		{"skips the occupied one", alloc(s, "b"), "10.9.2.0/24", nil},
		{"last one", alloc(s, "c"), "10.9.3.0/24", nil},
		{"full", alloc(s, "d"), "", ErrFull},
		{"release frees it", func() (string, error) {
			if !s.release("b") {
				return "", errors.New("b held nothing")
			}
			return "", nil
		}, "", nil},
		{"the freed one is reused", alloc(s, "d"), "10.9.2.0/24", nil},
	}
	for _, st := range steps {
		got, err := st.do()
		switch {
		case st.wantErr == errAny && err == nil:
			t.Fatalf("%s: no error, want one", st.name)
		case st.wantErr != errAny && !errors.Is(err, st.wantErr):
			t.Fatalf("%s: error = %v, want %v", st.name, err, st.wantErr)
		}
		if diff := cmp.Diff(st.want, got); diff != "" {
			t.Fatalf("%s: (-want +got):\n%s", st.name, diff)
		}
	}
}

var errAny = errors.New("any error")

func alloc(s *cidrSet, node string) func() (string, error) {
	return func() (string, error) {
		p, err := s.allocate(node)
		if err != nil {
			return "", err
		}
		return p.String(), nil
	}
}
