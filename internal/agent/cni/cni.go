package cni

import (
	"bytes"
	"encoding/json"
	"fmt"
	"net/netip"
	"os"
	"path/filepath"
)

// Names in the configuration.
const (
	// ConfFile is the file WriteConfig writes in the conf dir.
	ConfFile = "10-skiff.conflist"
	// NetworkName is the CNI network's name.
	NetworkName = "skiff"
	// BridgeName is the node's bridge for pods.
	BridgeName = "skiff0"
	// Version is the CNI spec version of the configuration.
	Version = "1.0.0"
)

// conflist is a CNI network configuration list.
type conflist struct {
	CNIVersion string `json:"cniVersion"`
	Name       string `json:"name"`
	Plugins    []any  `json:"plugins"`
}

type bridge struct {
	Type        string `json:"type"`
	Bridge      string `json:"bridge"`
	IsGateway   bool   `json:"isGateway"`
	IPMasq      bool   `json:"ipMasq"`
	HairpinMode bool   `json:"hairpinMode"`
	IPAM        ipam   `json:"ipam"`
}

type ipam struct {
	Type    string  `json:"type"`
	Ranges  [][]rng `json:"ranges"`
	Routes  []route `json:"routes"`
	DataDir string  `json:"dataDir"`
}

type rng struct {
	Subnet string `json:"subnet"`
}

type route struct {
	Dst string `json:"dst"`
}

type portmap struct {
	Type         string          `json:"type"`
	Capabilities map[string]bool `json:"capabilities"`
	SNAT         bool            `json:"snat"`
}

// Render returns the conflist for a node whose pod CIDR is podCIDR, with
// host-local keeping its allocations in dataDir and the bridge plugin
// masquerading pods' traffic to anything outside podCIDR. It is
// WriteConfig's content, for tests and for showing.
func Render(podCIDR, dataDir string) ([]byte, error) {
	return RenderMasq(podCIDR, dataDir, true)
}

// RenderMasq is Render with the bridge plugin's masquerade chosen: off
// when the node masquerades itself (see Masquerade), so that pods reach
// other nodes' pods without NAT.
func RenderMasq(podCIDR, dataDir string, ipMasq bool) ([]byte, error) {
	prefix, err := netip.ParsePrefix(podCIDR)
	if err != nil {
		return nil, fmt.Errorf("cni: pod CIDR %q: %w", podCIDR, err)
	}
	if prefix != prefix.Masked() {
		return nil, fmt.Errorf("cni: pod CIDR %q has host bits set", podCIDR)
	}
	if !filepath.IsAbs(dataDir) {
		return nil, fmt.Errorf("cni: data dir %q is not absolute", dataDir)
	}
	defaultRoute := "0.0.0.0/0"
	if prefix.Addr().Is6() {
		defaultRoute = "::/0"
	}
	c := conflist{
		CNIVersion: Version,
		Name:       NetworkName,
		Plugins: []any{
			bridge{
				Type:        "bridge",
				Bridge:      BridgeName,
				IsGateway:   true,
				IPMasq:      ipMasq,
				HairpinMode: true,
				IPAM: ipam{
					Type:    "host-local",
					Ranges:  [][]rng{{{Subnet: prefix.String()}}},
					Routes:  []route{{Dst: defaultRoute}},
					DataDir: dataDir,
				},
			},
			portmap{
				Type:         "portmap",
				Capabilities: map[string]bool{"portMappings": true},
				SNAT:         true,
			},
		},
	}
	out, err := json.MarshalIndent(c, "", "  ")
	if err != nil {
		return nil, fmt.Errorf("cni: encoding the configuration: %w", err)
	}
	return append(out, '\n'), nil
}

// WriteConfig makes confDir/ConfFile the configuration Render returns,
// creating confDir if needed. It writes only when the file's content
// differs, atomically (a temporary file in confDir renamed over it, which
// containerd ignores for its extension), and reports whether it wrote.
// Idempotent; callers serialize calls for one confDir.
func WriteConfig(confDir, podCIDR, dataDir string) (changed bool, err error) {
	return WriteConfigMasq(confDir, podCIDR, dataDir, true)
}

// WriteConfigMasq is WriteConfig with the bridge plugin's masquerade
// chosen (see RenderMasq).
func WriteConfigMasq(confDir, podCIDR, dataDir string, ipMasq bool) (changed bool, err error) {
	want, err := RenderMasq(podCIDR, dataDir, ipMasq)
	if err != nil {
		return false, err
	}
	path := filepath.Join(confDir, ConfFile)
	if have, err := os.ReadFile(path); err == nil && bytes.Equal(have, want) {
		return false, nil
	}
	if err := os.MkdirAll(confDir, 0o755); err != nil {
		return false, fmt.Errorf("cni: creating %s: %w", confDir, err)
	}
	tmp, err := os.CreateTemp(confDir, "."+ConfFile+".*.tmp")
	if err != nil {
		return false, fmt.Errorf("cni: writing %s: %w", path, err)
	}
	defer os.Remove(tmp.Name()) // fails harmlessly once renamed
	if _, err := tmp.Write(want); err != nil {
		tmp.Close()
		return false, fmt.Errorf("cni: writing %s: %w", path, err)
	}
	if err := tmp.Chmod(0o644); err != nil {
		tmp.Close()
		return false, fmt.Errorf("cni: writing %s: %w", path, err)
	}
	if err := tmp.Sync(); err != nil {
		tmp.Close()
		return false, fmt.Errorf("cni: writing %s: %w", path, err)
	}
	if err := tmp.Close(); err != nil {
		return false, fmt.Errorf("cni: writing %s: %w", path, err)
	}
	if err := os.Rename(tmp.Name(), path); err != nil {
		return false, fmt.Errorf("cni: writing %s: %w", path, err)
	}
	return true, nil
}
