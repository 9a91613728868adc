package e2e

import (
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"
)

// netns is a network namespace joined to the host by a veth pair: hostIP
// on the host end, nsIP inside. A second node agent runs in it, so that it
// has its own interfaces, routes, nftables tables and ports, and shares the
// rest of the machine (the file system, mounts, cgroups) with the first.
type netns struct {
	name             string
	hostDev, nsDev   string
	hostIP, nsIP     string // without the prefix length
	hostCIDR, nsCIDR string // with it
}

// requireNetns skips the test unless network namespaces can be made here:
// the ip and nsenter commands, and a trial namespace.
func requireNetns(t *testing.T) {
	t.Helper()
	for _, c := range []string{"ip", "nsenter", "nft"} {
		if _, err := exec.LookPath(c); err != nil {
			t.Skipf("skipping: %s is absent (apt-get install iproute2 util-linux nftables)", c)
		}
	}
	name := fmt.Sprintf("skiff-probe-%d", os.Getpid())
	if out, err := exec.Command("ip", "netns", "add", name).CombinedOutput(); err != nil {
		t.Skipf("skipping: ip netns is unavailable here: %v: %s", err, out)
	}
	if out, err := exec.Command("ip", "netns", "delete", name).CombinedOutput(); err != nil {
		t.Fatalf("ip netns delete %s: %v: %s", name, err, out)
	}
}

// newNetns creates the namespace and the veth pair and removes both when
// the test is over (deleting the namespace destroys its veth end, which
// destroys the host end and every host route through it).
func newNetns(t *testing.T, name, hostCIDR, nsCIDR string) *netns {
	t.Helper()
	n := &netns{
		name:     name,
		hostDev:  "sk-" + shortName(name) + "-h",
		nsDev:    "sk-" + shortName(name) + "-n",
		hostCIDR: hostCIDR,
		nsCIDR:   nsCIDR,
	}
	n.hostIP, _, _ = strings.Cut(hostCIDR, "/")
	n.nsIP, _, _ = strings.Cut(nsCIDR, "/")
	// A namespace left by an interrupted run would make "add" fail.
	_ = exec.Command("ip", "netns", "delete", name).Run()
	_ = exec.Command("ip", "link", "delete", n.hostDev).Run()
	t.Cleanup(func() { n.delete(t) })
	for _, args := range [][]string{
		{"ip", "netns", "add", name},
		{"ip", "link", "add", n.hostDev, "type", "veth", "peer", "name", n.nsDev},
		{"ip", "link", "set", n.nsDev, "netns", name},
		{"ip", "addr", "add", hostCIDR, "dev", n.hostDev},
		{"ip", "link", "set", n.hostDev, "up"},
		{"ip", "-n", name, "addr", "add", nsCIDR, "dev", n.nsDev},
		{"ip", "-n", name, "link", "set", n.nsDev, "up"},
		{"ip", "-n", name, "link", "set", "lo", "up"},
	} {
		if out, err := exec.Command(args[0], args[1:]...).CombinedOutput(); err != nil {
			t.Fatalf("%s: %v: %s", strings.Join(args, " "), err, out)
		}
	}
	return n
}

// shortName keeps interface names within the kernel's 15 characters.
func shortName(s string) string {
	s = strings.TrimPrefix(s, "skiff-")
	if len(s) > 8 {
		s = s[:8]
	}
	return s
}

// command returns a command running argv inside the namespace. It enters
// the network namespace only, with nsenter: "ip netns exec" also makes a
// mount namespace with a fresh /sys, in which /sys/fs/cgroup is empty, so
// runc cannot make containers; and mounts the agent makes (volumes,
// container root file systems) would be invisible to the host and to a
// later "skiff reset".
func (n *netns) command(argv ...string) *exec.Cmd {
	return exec.Command("nsenter", append([]string{"--net=/run/netns/" + n.name, "--"}, argv...)...)
}

// delete removes the namespace and the host end of the veth pair.
func (n *netns) delete(t *testing.T) {
	if out, err := exec.Command("ip", "netns", "delete", n.name).CombinedOutput(); err != nil && !strings.Contains(string(out), "No such file") {
		t.Errorf("ip netns delete %s: %v: %s", n.name, err, out)
	}
	// The host end goes with its peer, at once or shortly after.
	deadline := time.Now().Add(10 * time.Second)
	for exec.Command("ip", "link", "show", n.hostDev).Run() == nil {
		if time.Now().After(deadline) {
			if out, err := exec.Command("ip", "link", "delete", n.hostDev).CombinedOutput(); err != nil {
				t.Errorf("ip link delete %s: %v: %s", n.hostDev, err, out)
			}
			break
		}
		<-time.After(100 * time.Millisecond) // poll interval
	}
}

// hostNet is what the host's network looks like, for checking that a test
// leaves nothing behind.
type hostNet struct {
	routes, netns, tables, links []string
}

// readHostNet reads the host's routes, network namespaces, nftables tables
// and interfaces.
func readHostNet(t *testing.T) hostNet {
	t.Helper()
	run := func(args ...string) []string {
		out, err := exec.Command(args[0], args[1:]...).CombinedOutput()
		if err != nil {
			t.Errorf("%s: %v: %s", strings.Join(args, " "), err, out)
		}
		var ls []string
		for _, l := range lines(string(out)) {
			if l = strings.TrimSpace(l); l != "" {
				ls = append(ls, l)
			}
		}
		return ls
	}
	var links []string
	for _, l := range run("ip", "-o", "link", "show") {
		// "7: skiff0: <...> ..." or "8: veth@if2: ..."
		f := strings.Fields(l)
		if len(f) > 1 {
			name, _, _ := strings.Cut(strings.TrimSuffix(f[1], ":"), "@")
			links = append(links, name)
		}
	}
	var routes []string
	for _, r := range run("ip", "route", "show") {
		// The kernel's own flags (linkdown) change with the link state.
		routes = append(routes, strings.TrimSpace(strings.TrimSuffix(r, "linkdown")))
	}
	return hostNet{routes: routes, netns: run("ip", "netns", "list"), tables: run("nft", "list", "tables"), links: links}
}

// added returns the entries of after that are not in before.
func added(before, after []string) []string {
	had := map[string]bool{}
	for _, b := range before {
		had[b] = true
	}
	var out []string
	for _, a := range after {
		if !had[a] {
			out = append(out, a)
		}
	}
	return out
}

// removeNodeNetwork undoes on the host what a node agent sets up there and
// "skiff reset" leaves (the pods' bridge) or would have removed had it run
// (the agent's nftables tables), when they were not there before the test.
func removeNodeNetwork(t *testing.T, before hostNet) {
	t.Helper()
	now := readHostNet(t)
	for _, tbl := range added(before.tables, now.tables) {
		// "table inet skiff-proxy"
		f := strings.Fields(tbl)
		if len(f) == 3 && strings.HasPrefix(f[2], "skiff-") {
			if out, err := exec.Command("nft", "delete", "table", f[1], f[2]).CombinedOutput(); err != nil {
				t.Errorf("nft delete table %s %s: %v: %s", f[1], f[2], err, out)
			}
		}
	}
	for _, l := range added(before.links, now.links) {
		if l == "skiff0" {
			if out, err := exec.Command("ip", "link", "delete", l).CombinedOutput(); err != nil {
				t.Errorf("ip link delete %s: %v: %s", l, err, out)
			}
		}
	}
}

// agentProc is one "skiff agent" process.
type agentProc struct {
	cmd     *exec.Cmd
	output  *lockedBuffer
	done    chan struct{}
	waitErr error
}

// startAgent starts cmd (a skiff agent) with its output collected.
func startAgent(t *testing.T, cmd *exec.Cmd) *agentProc {
	t.Helper()
	a := &agentProc{cmd: cmd, output: &lockedBuffer{}, done: make(chan struct{})}
	cmd.Stdout, cmd.Stderr = a.output, a.output
	if err := cmd.Start(); err != nil {
		t.Fatalf("starting %s: %v", strings.Join(cmd.Args, " "), err)
	}
	go func() {
		a.waitErr = cmd.Wait()
		close(a.done)
	}()
	return a
}

// stop sends SIGTERM and waits up to 30s, then kills.
func (a *agentProc) stop(t *testing.T) {
	t.Helper()
	select {
	case <-a.done:
		return
	default:
	}
	_ = a.cmd.Process.Signal(syscall.SIGTERM)
	select {
	case <-a.done:
		if a.waitErr != nil {
			t.Errorf("agent exited with %v after SIGTERM; output:\n%s", a.waitErr, a.output.String())
		}
	case <-time.After(30 * time.Second):
		t.Errorf("agent still running 30s after SIGTERM; killing it")
		_ = a.cmd.Process.Kill()
		<-a.done
	}
}

// exited reports the agent's exit, if it has exited.
func (a *agentProc) exited() error {
	select {
	case <-a.done:
		return fmt.Errorf("agent exited (%v):\n%s", a.waitErr, a.output.String())
	default:
		return nil
	}
}

// killUnder kills every process whose command line, or whose root file
// system, is under dir (containerd, shims and containers a node agent left
// running), and unmounts what is mounted under dir.
func killUnder(dir string) {
	procs, _ := filepath.Glob("/proc/[0-9]*/cmdline")
	for _, p := range procs {
		b, err := os.ReadFile(p)
		if err != nil {
			continue
		}
		if !strings.Contains(string(b), dir) {
			mi, err := os.ReadFile(filepath.Join(filepath.Dir(p), "mountinfo"))
			if err != nil || !strings.Contains(firstLine(string(mi)), dir) {
				continue
			}
		}
		pid, err := strconv.Atoi(filepath.Base(filepath.Dir(p)))
		if err == nil && pid != os.Getpid() {
			_ = syscall.Kill(pid, syscall.SIGKILL)
		}
	}
	_ = unmountAll(dir)
}

// unmountAll detaches every mount below dir, deepest first.
func unmountAll(dir string) error {
	mounts, err := os.ReadFile("/proc/self/mountinfo")
	if err != nil {
		return err
	}
	var under []string
	for _, line := range strings.Split(string(mounts), "\n") {
		if f := strings.Fields(line); len(f) > 4 && strings.HasPrefix(f[4], dir) {
			under = append(under, f[4])
		}
	}
	sort.Slice(under, func(i, j int) bool { return len(under[i]) > len(under[j]) }) // deepest first
	var errs []error
	for _, m := range under {
		if err := syscall.Unmount(m, syscall.MNT_DETACH); err != nil && !errors.Is(err, syscall.EINVAL) {
			errs = append(errs, err)
		}
	}
	return errors.Join(errs...)
}
