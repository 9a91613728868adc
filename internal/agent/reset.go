package agent

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"syscall"

	"sigs.k8s.io/knftables"

	"github.com/skiff-dev/skiff/internal/agent/cni"
	"github.com/skiff-dev/skiff/internal/agent/containerd"
	"github.com/skiff-dev/skiff/internal/agent/cri"
	"github.com/skiff-dev/skiff/internal/netpol"
	"github.com/skiff-dev/skiff/internal/proxy"
)

// lockFile keeps two agents (or an agent and Reset) off one data dir.
const lockFile = "agent.lock"

// lockRoot takes the exclusive lock of the agent's root dir; release it
// with the returned function.
func lockRoot(root string) (func(), error) {
	if err := os.MkdirAll(root, 0o750); err != nil {
		return nil, fmt.Errorf("agent: %w", err)
	}
	f, err := os.OpenFile(filepath.Join(root, lockFile), os.O_RDWR|os.O_CREATE, 0o600)
	if err != nil {
		return nil, fmt.Errorf("agent: opening the lock: %w", err)
	}
	if err := syscall.Flock(int(f.Fd()), syscall.LOCK_EX|syscall.LOCK_NB); err != nil {
		f.Close()
		if errors.Is(err, syscall.EWOULDBLOCK) {
			return nil, fmt.Errorf("agent: %s is in use by another node agent (or skiff reset)", filepath.Dir(root))
		}
		return nil, fmt.Errorf("agent: locking %s: %w", root, err)
	}
	_ = f.Truncate(0)
	_, _ = fmt.Fprintf(f, "%d\n", os.Getpid())
	return func() { _ = f.Close() }, nil
}

// Reset stops and removes every pod the node agent of dataDir runs — their
// containers, sandboxes and pod networks, through the CRI of the agent's
// own containerd, which it starts for the purpose and stops after —,
// unmounts what the pods left under the data dir and deletes the nftables
// tables of the node's service proxy, network policies and masquerading
// (they are the host network namespace's, shared by any agent in it). The
// agent must not be running. Nothing of the cluster is touched: the API
// server may still list the pods (deleting them there is kubectl's job).
// The pods' bridge (skiff0) stays: without pods it carries nothing, and the
// next agent reuses it.
func Reset(ctx context.Context, dataDir string, log *slog.Logger) error {
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	dir, err := filepath.Abs(dataDir)
	if err != nil {
		return fmt.Errorf("reset: data dir %q: %w", dataDir, err)
	}
	if _, err := os.Stat(filepath.Join(dir, "containerd")); errors.Is(err, os.ErrNotExist) {
		return fmt.Errorf("reset: %s holds no node (no containerd dir)", dir)
	}
	root := filepath.Join(dir, "agent")
	unlock, err := lockRoot(root)
	if err != nil {
		return err
	}
	defer unlock()

	sup, err := containerd.New(containerd.Config{DataDir: dir, SandboxImage: SandboxImage, Logger: log})
	if err != nil {
		return fmt.Errorf("reset: %w", err)
	}
	cctx, stop := context.WithCancel(ctx)
	done := make(chan error, 1)
	go func() { done <- sup.Run(cctx) }()
	stopped := false
	stopContainerd := func() {
		if !stopped {
			stopped = true
			stop()
			<-done
		}
	}
	defer stopContainerd()
	select {
	case <-sup.Ready():
	case err := <-done:
		return fmt.Errorf("reset: starting containerd: %v", err)
	case <-ctx.Done():
		return ctx.Err()
	}
	rt, err := cri.Dial(cri.Config{Socket: sup.Socket()})
	if err != nil {
		return fmt.Errorf("reset: %w", err)
	}
	defer rt.Close()
	sbs, err := rt.ListSandboxes(ctx, nil)
	if err != nil {
		return fmt.Errorf("reset: listing sandboxes: %w", err)
	}
	var errs []error
	for _, sb := range sbs {
		if err := rt.StopSandbox(ctx, sb.ID); err != nil {
			errs = append(errs, fmt.Errorf("stopping sandbox %s (%s/%s): %w", sb.ID, sb.Namespace, sb.Name, err))
			continue
		}
		if err := rt.RemoveSandbox(ctx, sb.ID); err != nil {
			errs = append(errs, fmt.Errorf("removing sandbox %s: %w", sb.ID, err))
		}
	}
	cs, err := rt.ListContainers(ctx, cri.ContainerFilter{})
	if err != nil {
		errs = append(errs, fmt.Errorf("listing containers: %w", err))
	}
	for _, c := range cs {
		if err := rt.RemoveContainer(ctx, c.ID); err != nil {
			errs = append(errs, fmt.Errorf("removing container %s: %w", c.ID, err))
		}
	}
	log.Info("node reset", "sandboxes", len(sbs), "dataDir", dir)
	stopContainerd()
	errs = append(errs, unmountUnder(filepath.Join(root, "pods")))
	if other := otherNodeProcess("/proc"); other != "" {
		// The tables are the network namespace's: another node here
		// (a second agent, or a server running one) still uses them.
		log.Warn("another skiff node runs in this network namespace; its nftables tables are left", "process", other)
	} else {
		errs = append(errs, deleteNodeTables(ctx, nil, log))
	}
	return errors.Join(errs...)
}

// otherNodeProcess returns the pid and command line of another "skiff
// server" or "skiff agent" process in this process's network namespace,
// read from procDir, or "" if there is none.
func otherNodeProcess(procDir string) string {
	self, err := os.Readlink(filepath.Join(procDir, "self", "ns", "net"))
	if err != nil {
		return ""
	}
	selfPid := strconv.Itoa(os.Getpid())
	entries, err := os.ReadDir(procDir)
	if err != nil {
		return ""
	}
	for _, e := range entries {
		pid := e.Name()
		if pid == selfPid || strings.Trim(pid, "0123456789") != "" {
			continue
		}
		raw, err := os.ReadFile(filepath.Join(procDir, pid, "cmdline"))
		if err != nil {
			continue
		}
		args := strings.Split(strings.TrimRight(string(raw), "\x00"), "\x00")
		if len(args) < 2 || !strings.HasPrefix(filepath.Base(args[0]), "skiff") || (args[1] != "server" && args[1] != "agent") {
			continue
		}
		if ns, err := os.Readlink(filepath.Join(procDir, pid, "ns", "net")); err != nil || ns != self {
			continue
		}
		return pid + " " + strings.Join(args, " ")
	}
	return ""
}

// nodeTables are the nftables tables a node agent programs.
var nodeTables = []struct {
	family knftables.Family
	name   string
}{
	{knftables.InetFamily, proxy.TableName},
	{knftables.InetFamily, netpol.TableName},
	{knftables.IPv4Family, cni.MasqTable},
}

// deleteNodeTables deletes nodeTables where they exist. open opens one
// (nil: the host's nftables); where nftables cannot be used (no nft
// binary, no kernel support) there is nothing to delete.
func deleteNodeTables(ctx context.Context, open func(knftables.Family, string) (knftables.Interface, error), log *slog.Logger) error {
	if open == nil {
		open = func(f knftables.Family, name string) (knftables.Interface, error) { return knftables.New(f, name) }
	}
	var errs []error
	for _, t := range nodeTables {
		nft, err := open(t.family, t.name)
		if err != nil {
			// No nft binary or no kernel support: no agent here could
			// have programmed a table either.
			log.Warn("nftables not usable; no tables deleted", "err", err)
			return nil
		}
		tx := nft.NewTransaction()
		tx.Add(&knftables.Table{}) // so that deleting a missing table is no error
		tx.Delete(&knftables.Table{})
		if err := nft.Run(ctx, tx); err != nil {
			errs = append(errs, fmt.Errorf("deleting nftables table %s %s: %w", t.family, t.name, err))
		}
	}
	return errors.Join(errs...)
}

// unmountUnder unmounts every mount point below dir, deepest first.
func unmountUnder(dir string) error {
	f, err := os.Open("/proc/self/mountinfo")
	if err != nil {
		return err
	}
	defer f.Close()
	var points []string
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		fields := strings.Fields(sc.Text())
		if len(fields) > 4 && strings.HasPrefix(fields[4], dir+"/") {
			points = append(points, fields[4])
		}
	}
	sort.Slice(points, func(i, j int) bool { return len(points[i]) > len(points[j]) })
	var errs []error
	for _, p := range points {
		if err := syscall.Unmount(p, syscall.MNT_DETACH); err != nil && !errors.Is(err, syscall.EINVAL) {
			errs = append(errs, fmt.Errorf("unmounting %s: %w", p, err))
		}
	}
	return errors.Join(errs...)
}
