package vmm

// #include <malloc.h>
import "C"

import "fmt"

// limitMallocArenas makes glibc malloc use a single arena. Without a
// limit, a thread's first malloc after eight arenas exist makes glibc
// count the CPUs by opening and reading /sys/devices/system/cpu/online,
// which the seccomp filter forbids. Call it before the process starts
// threads of its own, so that no thread is between the open and the read
// when the filter goes on. The Go runtime calls malloc only to start
// threads (through cgo's pthread_create), so one arena costs nothing.
func limitMallocArenas() error {
	if C.mallopt(C.M_ARENA_MAX, 1) != 1 {
		return fmt.Errorf("mallopt(M_ARENA_MAX, 1) failed")
	}
	return nil
}
