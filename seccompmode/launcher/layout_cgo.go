package launcher

/*
#include <stddef.h>
#include "image.h"

static const char *ntl_magic(void) { return NTL_MAGIC; }
static const char *ntl_env_var(void) { return NTL_ENV_VAR; }
*/
import "C"

import "unsafe"

// cLayout returns the sizes and field offsets of the C image structs and
// the C constants, so that a test can compare them with the Go encoder.
func cLayout() map[string]uint64 {
	var h C.struct_ntl_header
	var s C.struct_ntl_segment
	return map[string]uint64{
		"header size":            uint64(unsafe.Sizeof(h)),
		"header.image_size":      uint64(unsafe.Offsetof(h.image_size)),
		"header.mem_size":        uint64(unsafe.Offsetof(h.mem_size)),
		"header.entry":           uint64(unsafe.Offsetof(h.entry)),
		"header.flags":           uint64(unsafe.Offsetof(h.flags)),
		"header.boot_offset":     uint64(unsafe.Offsetof(h.boot_offset)),
		"header.boot_size":       uint64(unsafe.Offsetof(h.boot_size)),
		"header.segments_offset": uint64(unsafe.Offsetof(h.segments_offset)),
		"header.segments_count":  uint64(unsafe.Offsetof(h.segments_count)),
		"header.fds_offset":      uint64(unsafe.Offsetof(h.fds_offset)),
		"header.fds_count":       uint64(unsafe.Offsetof(h.fds_count)),
		"header.filter_offset":   uint64(unsafe.Offsetof(h.filter_offset)),
		"header.filter_count":    uint64(unsafe.Offsetof(h.filter_count)),
		"header.ignored_signals": uint64(unsafe.Offsetof(h.ignored_signals)),
		"segment size":           uint64(unsafe.Sizeof(s)),
		"segment.vaddr":          uint64(unsafe.Offsetof(s.vaddr)),
		"segment.filesz":         uint64(unsafe.Offsetof(s.filesz)),
		"segment.start":          uint64(unsafe.Offsetof(s.start)),
		"segment.end":            uint64(unsafe.Offsetof(s.end)),
		"segment.prot":           uint64(unsafe.Offsetof(s.prot)),
		"segment.data_offset":    uint64(unsafe.Offsetof(s.data_offset)),
		"boot info address":      uint64(C.NTL_BOOT_INFO_ADDR),
		"host memory base":       uint64(C.NTL_HOST_MEM_BASE),
		"guest minimum base":     uint64(C.NTL_GUEST_MIN_BASE),
		"flag exec heap":         uint64(C.NTL_FLAG_EXEC_HEAP),
	}
}

// cMagic returns the C image magic.
func cMagic() string {
	return C.GoStringN(C.ntl_magic(), C.NTL_MAGIC_SIZE)
}

// cEnvVar returns the C name of the environment variable.
func cEnvVar() string {
	return C.GoString(C.ntl_env_var())
}
