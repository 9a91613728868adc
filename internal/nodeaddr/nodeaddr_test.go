package nodeaddr

import (
	"os"
	"path/filepath"
	"testing"
)

func TestDefaultRouteInterface(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	tests := []struct {
		name, content, want string
	}{
		{"default route", "Iface\tDestination\tGateway\tFlags\tRefCnt\tUse\tMetric\tMask\n" +
			"eth1\t000200C0\t00000000\t0001\t0\t0\t0\t00FFFFFF\n" +
			"eth0\t00000000\t010200C0\t0003\t0\t0\t0\t00000000\n", "eth0"},
		{"none", "Iface\tDestination\tGateway\tFlags\tRefCnt\tUse\tMetric\tMask\n" +
			"eth1\t000200C0\t00000000\t0001\t0\t0\t0\t00FFFFFF\n", ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			p := filepath.Join(dir, tt.name)
			if err := os.WriteFile(p, []byte(tt.content), 0o644); err != nil {
				t.Fatal(err)
			}
			if got := defaultRouteInterface(p); got != tt.want {
				t.Errorf("defaultRouteInterface = %q, want %q", got, tt.want)
			}
		})
	}
	if ip, err := DetectNodeIP(); err != nil || ip == "" {
		t.Errorf("DetectNodeIP = %q, %v", ip, err)
	}
}
