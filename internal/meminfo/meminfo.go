// Package meminfo reads /proc/meminfo. It owns nothing and writes
// nothing; the node agent (capacity, eviction, stats) and the garbage
// collector tuning read the machine's memory through it.
package meminfo

import (
	"bufio"
	"bytes"
	"fmt"
	"os"
	"strconv"
	"strings"
)

// Read returns the fields of a meminfo file (normally /proc/meminfo) by
// name, without the colon ("MemTotal"), in bytes for the fields given in
// kB. Lines that do not parse are skipped.
func Read(path string) (map[string]uint64, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("meminfo: %w", err)
	}
	return Parse(b), nil
}

// Parse reads lines of the form "name: value [kB]" (/proc/meminfo, and
// /proc/vmstat's "name value") into a map by name without the colon, in
// bytes for values given in kB. Lines that do not parse are skipped.
func Parse(data []byte) map[string]uint64 {
	out := map[string]uint64{}
	s := bufio.NewScanner(bytes.NewReader(data))
	for s.Scan() {
		f := strings.Fields(s.Text())
		if len(f) < 2 {
			continue
		}
		n, err := strconv.ParseUint(f[1], 10, 64)
		if err != nil {
			continue
		}
		if len(f) > 2 && f[2] == "kB" {
			n *= 1024
		}
		out[strings.TrimSuffix(f[0], ":")] = n
	}
	return out
}
