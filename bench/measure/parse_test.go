package measure

import (
	"slices"
	"strings"
	"testing"
)

const syscallTrace = `# tracer: nop
#
# entries-in-buffer/entries-written: 4/4   #P:2
#
#           TASK-PID     CPU#  |||||  TIMESTAMP  FUNCTION
#              | |         |   |||||     |         |
         ntender-4242    [001] ..... 1201.000100: sys_enter: NR 317 (1, 0, 0, 0, 0, 0)
         ntender-4242    [001] ..... 1201.000200: sys_enter: NR 317 (1, 8, 7ffd1234, 0, 0, 0)
 my-odd comm-name-4243   (   4242) [000] ..... 1201.000300: sys_enter: NR 1 (1, c000010000, 5, 0, 0, 0)
           <...>-4242    [001] 1201.000400: sys_enter: NR 231 (0, 0, 0, 0, 0, 0)
`

func TestParseSyscallTrace(t *testing.T) {
	events, err := ParseSyscallTrace(strings.NewReader(syscallTrace))
	if err != nil {
		t.Fatal(err)
	}
	if len(events) != 4 {
		t.Fatalf("got %d events, expected 4: %+v", len(events), events)
	}
	e := events[2]
	if e.Comm != "my-odd comm-name" {
		t.Errorf("comm = %q, expected %q", e.Comm, "my-odd comm-name")
	}
	if e.TID != 4243 {
		t.Errorf("tid = %d, expected 4243", e.TID)
	}
	if e.NR != 1 {
		t.Errorf("NR = %d, expected 1", e.NR)
	}
	if !slices.Equal(e.Args, []uint64{1, 0xc000010000, 5, 0, 0, 0}) {
		t.Errorf("args = %x", e.Args)
	}
	if e.Time != 1201.0003 {
		t.Errorf("time = %v, expected 1201.0003", e.Time)
	}
	if events[3].Comm != "<...>" || events[3].NR != 231 {
		t.Errorf("event without flags column = %+v", events[3])
	}
}

func TestParseSyscallTraceRejectsBrokenLine(t *testing.T) {
	_, err := ParseSyscallTrace(strings.NewReader("ntender-1 [000] 1.0: sys_enter: NR x (1)\n"))
	if err == nil {
		t.Error("a malformed sys_enter line was accepted")
	}
}

func TestAfterFirstFilterSkipsProbes(t *testing.T) {
	events, err := ParseSyscallTrace(strings.NewReader(syscallTrace))
	if err != nil {
		t.Fatal(err)
	}
	after, ok := afterFirstFilter(events)
	if !ok {
		t.Fatal("no filter install found")
	}
	// The first seccomp call has a NULL program (a libseccomp probe);
	// the second installs the filter.
	if len(after) != 2 || after[0].NR != 1 || after[1].NR != 231 {
		t.Errorf("events after the filter = %+v, expected write and exit_group", after)
	}
	if got := syscallNames(after); !slices.Equal(got, []string{"exit_group", "write"}) {
		t.Errorf("names = %v", got)
	}
	if _, ok := afterFirstFilter(events[2:]); ok {
		t.Error("a filter install was found in events without one")
	}
}

func TestOutside(t *testing.T) {
	got := outside([]string{"futex", "read", "write"}, []string{"read", "write"})
	if !slices.Equal(got, []string{"futex"}) {
		t.Errorf("outside = %v, expected [futex]", got)
	}
	got = outside([]string{"read"}, []string{"read"})
	if got == nil || len(got) != 0 {
		t.Errorf("outside = %#v, expected an empty, non-nil slice", got)
	}
}

func TestInside(t *testing.T) {
	got := inside([]string{"clone3", "read"}, []string{"clone3", "set_robust_list"})
	if !slices.Equal(got, []string{"clone3"}) {
		t.Errorf("inside = %v, expected [clone3]", got)
	}
}

func TestParseFunctionTrace(t *testing.T) {
	trace := `# tracer: function
#
         ntender-4242    [001] ...1. 1201.000100: do_syscall_64 <-entry_SYSCALL_64_after_hwframe
         ntender-4242    [001] ...1. 1201.000101: x64_sys_call+0x10/0x2000 <-do_syscall_64+0x7a/0x190
           <...>-4243    (   4242) [000] ..... 1201.000102: kvm_vcpu_ioctl <-__x64_sys_ioctl
         ntender-4242    [001] ..... 1201.000103: sys_enter: NR 1 (1, 2, 3, 0, 0, 0)
`
	got, err := ParseFunctionTrace(strings.NewReader(trace))
	if err != nil {
		t.Fatal(err)
	}
	expected := []string{"__x64_sys_ioctl", "do_syscall_64", "entry_SYSCALL_64_after_hwframe", "kvm_vcpu_ioctl", "x64_sys_call"}
	if !slices.Equal(got, expected) {
		t.Errorf("functions = %v, expected %v", got, expected)
	}
}

func TestParsePerfScript(t *testing.T) {
	script := `       perf-exec 19305/19305  2247.500000:     cpu-clock/freq=100000/: 
	ffffffff8159470c perf_event_exec
	ffffffff816e8429 begin_new_exec

         ntender 19305/19305  2247.515134:     cpu-clock/freq=100000/: 
	ffffffff8221c881 mas_empty_area_rev+0x421
	ffffffffc0a01234 svm_vcpu_run
	    7fc3b74f2ad7 [unknown]
	ffffffff81000000 [unknown]

         ntender 19305/19305  2247.814551: syscalls:sys_enter_seccomp: op: 0x00000001, flags: 0x00000001, uargs: 0x00000000
	          101829 syscall

   my comm 19305/19306  2247.900000:     cpu-clock/freq=100000/: 
	ffffffff8223b5d1 do_syscall_64

             exe 19305/19305  2248.354500: syscalls:sys_enter_seccomp: op: 0x00000001, flags: 0x00000000, uargs: 0x7ffff49e5110
	ffffffff8223b5d1 do_syscall_64

             exe 19305/19305  2248.354508:     cpu-clock/freq=100000/: 
	ffffffff815939a0 perf_swevent_event
	ffffffff8223b5d1 do_syscall_64+0x71
`
	p, err := ParsePerfScript(strings.NewReader(script), "perf-exec")
	if err != nil {
		t.Fatal(err)
	}
	expected := []string{"do_syscall_64", "mas_empty_area_rev", "perf_swevent_event", "svm_vcpu_run"}
	if !slices.Equal(p.Functions, expected) {
		t.Errorf("functions = %v, expected %v", p.Functions, expected)
	}
	// The first seccomp sample has a NULL program (a probe); the frames
	// of tracepoint samples do not count.
	after := []string{"do_syscall_64", "perf_swevent_event"}
	if !slices.Equal(p.AfterFilter, after) {
		t.Errorf("after filter = %v, expected %v", p.AfterFilter, after)
	}
}

func TestParsePerfScriptWithoutFilter(t *testing.T) {
	script := "runc 7/7  1.000000:     cpu-clock/freq=100000/: \n\tffffffff8223b5d1 do_syscall_64\n"
	p, err := ParsePerfScript(strings.NewReader(script), "perf-exec")
	if err != nil {
		t.Fatal(err)
	}
	if !slices.Equal(p.Functions, []string{"do_syscall_64"}) {
		t.Errorf("functions = %v", p.Functions)
	}
	if p.AfterFilter != nil {
		t.Errorf("after filter = %v, expected nil without an install", p.AfterFilter)
	}
}

func TestParsePerfScriptPrctlInstall(t *testing.T) {
	script := "x 7/7  1.0: syscalls:sys_enter_prctl: option: 0x00000016, arg2: 0x00000002, arg3: 0x7ffd1000, arg4: 0x00000000, arg5: 0x00000000\n" +
		"x 7/7  1.1:     cpu-clock/freq=100000/: \n\tffffffff8223b5d1 do_syscall_64\n"
	p, err := ParsePerfScript(strings.NewReader(script), "")
	if err != nil {
		t.Fatal(err)
	}
	if !slices.Equal(p.AfterFilter, []string{"do_syscall_64"}) {
		t.Errorf("after filter = %v, expected the sample after prctl(PR_SET_SECCOMP)", p.AfterFilter)
	}
}

func TestParseFilterHVT(t *testing.T) {
	out := `seccomp filter (default action: kill the process)
ioctl            allow if arg0 == 0x9 && arg1 == 0xae80
    # KVM_RUN on the vCPU
write            allow if arg0 == 0x1
    # console
futex            allow
clone3           fail with ENOSYS
    # glibc tries clone3 first

# spt guest seccomp policy: any other system call kills the process.
SYSCALL          NR   ARGUMENTS                       FOR
arch_prctl       158  code == ARCH_SET_FS (4098)      solo5_set_tls_base
`
	f := ParseFilter(out)
	if !slices.Equal(f.Allowed, []string{"futex", "ioctl", "write"}) {
		t.Errorf("allowed = %v, expected the process filter only", f.Allowed)
	}
	if !slices.Equal(f.Failed, []string{"clone3"}) {
		t.Errorf("failed = %v, expected [clone3]", f.Failed)
	}
}

func TestParseFilterSPT(t *testing.T) {
	out := `# spt guest seccomp policy: any other system call, or a call of another
# architecture, kills the process with SIGSYS (exit status 159).
SYSCALL          NR   ARGUMENTS                       FOR
write            1    fd == stdout (1)                solo5_console_write
clock_gettime    228  clockid == CLOCK_MONOTONIC (1)  solo5_clock_monotonic
clock_gettime    228  clockid == CLOCK_REALTIME (0)   solo5_clock_wall
`
	f := ParseFilter(out)
	if !slices.Equal(f.Allowed, []string{"clock_gettime", "write"}) {
		t.Errorf("allowed = %v, expected [clock_gettime write]", f.Allowed)
	}
	if len(f.Failed) != 0 {
		t.Errorf("failed = %v, expected none", f.Failed)
	}
}
