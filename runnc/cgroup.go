package runnc

import (
	"bufio"
	"errors"
	"fmt"
	"os"
	"path"
	"path/filepath"
	"strconv"
	"strings"

	specs "github.com/opencontainers/runtime-spec/specs-go"
	"golang.org/x/sys/unix"
)

// Cgroup is the set of cgroup directories that hold a container: one per
// cgroup v1 hierarchy (including a hybrid setup's cgroup2 mount), or the
// one cgroup v2 directory.
type Cgroup struct {
	V2   bool     `json:"v2"`
	Dirs []string `json:"dirs"`
}

// hierarchy is a mounted cgroup hierarchy.
type hierarchy struct {
	mountpoint  string
	root        string   // the mount's root inside the hierarchy
	controllers []string // v1 controllers and name=..., empty for cgroup2
	v2          bool
}

// cgroupHierarchies returns the cgroup mounts in /proc/self/mountinfo
// (format in proc(5)), one per hierarchy, and whether /sys/fs/cgroup is
// the cgroup v2 unified hierarchy.
func cgroupHierarchies() ([]hierarchy, bool, error) {
	var st unix.Statfs_t
	if err := unix.Statfs("/sys/fs/cgroup", &st); err != nil {
		return nil, false, fmt.Errorf("checking /sys/fs/cgroup: %w", err)
	}
	if st.Type == unix.CGROUP2_SUPER_MAGIC {
		return []hierarchy{{mountpoint: "/sys/fs/cgroup", root: "/", v2: true}}, true, nil
	}

	f, err := os.Open("/proc/self/mountinfo")
	if err != nil {
		return nil, false, fmt.Errorf("reading mounts: %w", err)
	}
	defer f.Close()
	var hs []hierarchy
	seen := map[string]bool{}
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		// Fields: ID parent major:minor root mountpoint options [tags] -
		// fstype source superoptions.
		pre, post, ok := strings.Cut(sc.Text(), " - ")
		if !ok {
			continue
		}
		fields, tail := strings.Fields(pre), strings.Fields(post)
		if len(fields) < 5 || len(tail) < 3 {
			continue
		}
		var h hierarchy
		switch tail[0] {
		case "cgroup":
			for _, o := range strings.Split(tail[2], ",") {
				if o != "rw" && o != "ro" && !strings.HasPrefix(o, "clone_children") && o != "noprefix" && !strings.HasPrefix(o, "release_agent") && o != "xattr" {
					h.controllers = append(h.controllers, o)
				}
			}
		case "cgroup2":
			h.v2 = true
		default:
			continue
		}
		h.root, h.mountpoint = fields[3], fields[4]
		key := strings.Join(h.controllers, ",")
		if h.v2 {
			key = "cgroup2"
		}
		// A hierarchy mounted twice is joined once.
		if seen[key] {
			continue
		}
		seen[key] = true
		hs = append(hs, h)
	}
	if err := sc.Err(); err != nil {
		return nil, false, fmt.Errorf("reading mounts: %w", err)
	}
	if len(hs) == 0 {
		return nil, false, errors.New("no cgroup hierarchy is mounted")
	}
	return hs, false, nil
}

// ResolveCgroupsPath turns linux.cgroupsPath into a path inside the
// hierarchy. With systemd set, the "slice:prefix:name" form becomes
// /slice-path/prefix-name.scope as systemd names it, but runnc writes the
// directory itself and does not ask systemd for a scope.
// An empty path gives /runnc/<id>.
func ResolveCgroupsPath(cgroupsPath, id string, systemd bool) (string, error) {
	if cgroupsPath == "" {
		return "/runnc/" + id, nil
	}
	parts := strings.Split(cgroupsPath, ":")
	if systemd || (len(parts) == 3 && !strings.HasPrefix(cgroupsPath, "/")) {
		if len(parts) != 3 {
			return "", fmt.Errorf("invalid cgroupsPath %q for systemd cgroups: use slice:prefix:name", cgroupsPath)
		}
		slice, prefix, name := parts[0], parts[1], parts[2]
		if slice == "" {
			slice = "system.slice"
		}
		// A slice "a-b-c.slice" lives at /a.slice/a-b.slice/a-b-c.slice.
		dir := "/"
		words := strings.Split(strings.TrimSuffix(slice, ".slice"), "-")
		for i := range words {
			if slice == "-.slice" {
				break
			}
			dir = path.Join(dir, strings.Join(words[:i+1], "-")+".slice")
		}
		unit := name + ".scope"
		if prefix != "" {
			unit = prefix + "-" + unit
		}
		return path.Join(dir, unit), nil
	}
	if !strings.HasPrefix(cgroupsPath, "/") {
		// NOTE: runc places a relative cgroupsPath under its own cgroup;
		// runnc places it under the hierarchy root.
		cgroupsPath = "/" + cgroupsPath
	}
	return path.Clean(cgroupsPath), nil
}

// PlaceCgroup creates the cgroup at cgPath in every hierarchy, applies the
// memory, CPU and pids limits of res and moves pid into it. As runc does
// since 1.2, it rejects a cgroup that already contains a process, because
// delete kills every process in the container's cgroup.
func PlaceCgroup(cgPath string, res *specs.LinuxResources, pid int) (*Cgroup, error) {
	hs, v2, err := cgroupHierarchies()
	if err != nil {
		return nil, err
	}
	dirs := make([]string, len(hs))
	for i, h := range hs {
		rel := cgPath
		if h.root != "/" {
			rel = strings.TrimPrefix(cgPath, h.root)
		}
		dirs[i] = filepath.Join(h.mountpoint, rel)
		if err := checkCgroupEmpty(dirs[i]); err != nil {
			return nil, err
		}
	}

	cg := &Cgroup{V2: v2}
	for i, h := range hs {
		dir := dirs[i]
		// The directory is recorded before it is made, so that a failure
		// part way through still removes it.
		cg.Dirs = append(cg.Dirs, dir)
		if err := makeCgroupDirs(h, dir); err != nil {
			return cg, err
		}
		// A hybrid setup's cgroup2 mount holds no controllers, so only
		// the v1 hierarchies carry limits there.
		if !h.v2 || v2 {
			if err := applyLimits(h, dir, res); err != nil {
				return cg, err
			}
		}
		if err := writeCgroupFile(dir, "cgroup.procs", strconv.Itoa(pid)); err != nil {
			return cg, err
		}
	}
	return cg, nil
}

// checkCgroupEmpty rejects an existing cgroup directory that contains a
// process. A directory that does not exist yet is empty.
func checkCgroupEmpty(dir string) error {
	data, err := os.ReadFile(filepath.Join(dir, "cgroup.procs"))
	if errors.Is(err, os.ErrNotExist) {
		return nil
	}
	if err != nil {
		return fmt.Errorf("listing the processes of cgroup %s: %w", dir, err)
	}
	pids := strings.Fields(string(data))
	if len(pids) == 0 {
		return nil
	}
	shown := strings.Join(pids[:min(len(pids), 3)], ", ")
	if len(pids) > 3 {
		shown += ", ..."
	}
	return fmt.Errorf("cgroup %s already contains %d processes (pids %s): give the container a cgroupsPath of its own",
		dir, len(pids), shown)
}

// check rejects directories that are not strictly below a mounted cgroup
// hierarchy. Delete kills every process in the cgroup, so a damaged state
// file must not make it kill the processes of a hierarchy's root cgroup
// or of a path outside the cgroup mounts.
func (cg *Cgroup) check() error {
	hs, _, err := cgroupHierarchies()
	if err != nil {
		return err
	}
	for _, dir := range cg.Dirs {
		if !filepath.IsAbs(dir) || filepath.Clean(dir) != dir {
			return fmt.Errorf("it records the cgroup %q, which is not a clean absolute path", dir)
		}
		below := false
		for _, h := range hs {
			below = below || strings.HasPrefix(dir, h.mountpoint+"/")
		}
		if !below {
			return fmt.Errorf("it records the cgroup %s, which is not below a cgroup hierarchy's root", dir)
		}
	}
	return nil
}

// makeCgroupDirs creates dir and its missing parents below the mountpoint.
// In cgroup v2 it enables the memory, cpu, pids and cpuset controllers on
// the way down. In a cgroup v1 cpuset hierarchy it copies cpus and mems
// from each parent, because a cpuset without them cannot contain a task.
func makeCgroupDirs(h hierarchy, dir string) error {
	rel, err := filepath.Rel(h.mountpoint, dir)
	if err != nil || strings.HasPrefix(rel, "..") {
		return fmt.Errorf("cgroup %s is outside the hierarchy at %s", dir, h.mountpoint)
	}
	cur := h.mountpoint
	for _, elem := range strings.Split(rel, string(filepath.Separator)) {
		parent := cur
		cur = filepath.Join(cur, elem)
		if h.v2 {
			enableControllers(parent)
		}
		err := os.Mkdir(cur, 0o755)
		if errors.Is(err, os.ErrExist) {
			continue
		}
		if err != nil {
			return fmt.Errorf("creating cgroup %s: %w", cur, err)
		}
		if hasController(h, "cpuset") {
			for _, f := range []string{"cpuset.cpus", "cpuset.mems"} {
				v, err := os.ReadFile(filepath.Join(parent, f))
				if err != nil {
					return fmt.Errorf("reading %s of cgroup %s: %w", f, parent, err)
				}
				if err := writeCgroupFile(cur, f, strings.TrimSpace(string(v))); err != nil {
					return err
				}
			}
		}
	}
	return nil
}

// enableControllers turns on, in the subtree of a cgroup v2 directory, the
// controllers among memory, cpu, pids and cpuset that it has. Each one is written
// alone, so one the directory cannot delegate leaves the others enabled.
func enableControllers(dir string) {
	data, err := os.ReadFile(filepath.Join(dir, "cgroup.controllers"))
	if err != nil {
		return
	}
	have := strings.Fields(string(data))
	for _, c := range []string{"memory", "cpu", "pids", "cpuset"} {
		for _, h := range have {
			if h == c {
				// An error means a limit on c fails later with its own
				// message, which names the file.
				_ = writeCgroupFile(dir, "cgroup.subtree_control", "+"+c)
			}
		}
	}
}

func hasController(h hierarchy, name string) bool {
	for _, c := range h.controllers {
		if c == name {
			return true
		}
	}
	return false
}

func writeCgroupFile(dir, name, value string) error {
	if err := os.WriteFile(filepath.Join(dir, name), []byte(value), 0); err != nil {
		return fmt.Errorf("setting %s to %q in cgroup %s: %w", name, value, dir, err)
	}
	return nil
}

// cpuWeight converts cgroup v1 cpu.shares (2..262144) to cgroup v2
// cpu.weight (1..10000) with the formula runc and crun use.
func cpuWeight(shares uint64) uint64 {
	if shares == 0 {
		return 0
	}
	return 1 + ((shares-2)*9999)/262142
}

// limit is one cgroup file and the value to write.
type limit struct{ file, value string }

// cgroupLimits returns the files to write for res in a hierarchy with the
// given controllers, in the order the kernel needs them.
func cgroupLimits(h hierarchy, res *specs.LinuxResources) []limit {
	var ls []limit
	if res == nil {
		return ls
	}
	v2 := h.v2
	if m := res.Memory; m != nil && (v2 || hasController(h, "memory")) {
		if v2 {
			if m.Limit != nil && *m.Limit > 0 {
				ls = append(ls, limit{"memory.max", strconv.FormatInt(*m.Limit, 10)})
				// Docker and runc give swap as memory plus swap.
				if m.Swap != nil && *m.Swap > 0 && *m.Swap >= *m.Limit {
					ls = append(ls, limit{"memory.swap.max", strconv.FormatInt(*m.Swap-*m.Limit, 10)})
				} else if m.Swap != nil && *m.Swap < 0 {
					ls = append(ls, limit{"memory.swap.max", "max"})
				}
			}
			if m.Reservation != nil && *m.Reservation > 0 {
				ls = append(ls, limit{"memory.low", strconv.FormatInt(*m.Reservation, 10)})
			}
		} else {
			if m.Limit != nil && *m.Limit != 0 {
				ls = append(ls, limit{"memory.limit_in_bytes", strconv.FormatInt(*m.Limit, 10)})
			}
			if m.Swap != nil && *m.Swap != 0 {
				ls = append(ls, limit{"memory.memsw.limit_in_bytes", strconv.FormatInt(*m.Swap, 10)})
			}
			if m.Reservation != nil && *m.Reservation != 0 {
				ls = append(ls, limit{"memory.soft_limit_in_bytes", strconv.FormatInt(*m.Reservation, 10)})
			}
		}
	}
	if c := res.CPU; c != nil && (v2 || hasController(h, "cpu")) {
		var period uint64
		if c.Period != nil {
			period = *c.Period
		}
		if v2 {
			if c.Shares != nil && *c.Shares > 0 {
				ls = append(ls, limit{"cpu.weight", strconv.FormatUint(cpuWeight(*c.Shares), 10)})
			}
			if c.Quota != nil && *c.Quota != 0 {
				if period == 0 {
					period = 100000
				}
				quota := "max"
				if *c.Quota > 0 {
					quota = strconv.FormatInt(*c.Quota, 10)
				}
				ls = append(ls, limit{"cpu.max", quota + " " + strconv.FormatUint(period, 10)})
			}
		} else {
			if c.Shares != nil && *c.Shares > 0 {
				ls = append(ls, limit{"cpu.shares", strconv.FormatUint(*c.Shares, 10)})
			}
			if period != 0 {
				ls = append(ls, limit{"cpu.cfs_period_us", strconv.FormatUint(period, 10)})
			}
			if c.Quota != nil && *c.Quota != 0 {
				ls = append(ls, limit{"cpu.cfs_quota_us", strconv.FormatInt(*c.Quota, 10)})
			}
		}
	}
	if c := res.CPU; c != nil && (v2 || hasController(h, "cpuset")) {
		if c.Cpus != "" {
			ls = append(ls, limit{"cpuset.cpus", c.Cpus})
		}
		if c.Mems != "" {
			ls = append(ls, limit{"cpuset.mems", c.Mems})
		}
	}
	if p := res.Pids; p != nil && (v2 || hasController(h, "pids")) {
		value := "max"
		if p.Limit != nil && *p.Limit > 0 {
			value = strconv.FormatInt(*p.Limit, 10)
		}
		ls = append(ls, limit{"pids.max", value})
	}
	return ls
}

func applyLimits(h hierarchy, dir string, res *specs.LinuxResources) error {
	for _, l := range cgroupLimits(h, res) {
		if err := writeCgroupFile(dir, l.file, l.value); err != nil {
			return err
		}
	}
	return nil
}

// Pids returns the processes in the container's cgroups.
func (cg *Cgroup) Pids() ([]int, error) {
	seen := map[int]bool{}
	var pids []int
	for _, dir := range cg.Dirs {
		data, err := os.ReadFile(filepath.Join(dir, "cgroup.procs"))
		if errors.Is(err, os.ErrNotExist) {
			continue
		}
		if err != nil {
			return nil, fmt.Errorf("listing the processes of cgroup %s: %w", dir, err)
		}
		for _, f := range strings.Fields(string(data)) {
			pid, err := strconv.Atoi(f)
			if err == nil && !seen[pid] {
				seen[pid] = true
				pids = append(pids, pid)
			}
		}
	}
	return pids, nil
}

// Remove deletes the container's cgroup directories. The cgroups must hold
// no process. A directory that is already gone is not an error.
func (cg *Cgroup) Remove() error {
	var errs []error
	for _, dir := range cg.Dirs {
		if err := os.Remove(dir); err != nil && !errors.Is(err, os.ErrNotExist) {
			errs = append(errs, fmt.Errorf("removing cgroup %s: %w", dir, err))
		}
	}
	return errors.Join(errs...)
}
