package devices

import (
	"github.com/ntender/ntender/abi"
)

// Attachments returns the manifest attachment of every device, keyed by
// manifest index, for abi.(*Unikernel).MarshalManifest. hostFd maps a
// device's file descriptor in the tender to the number the guest uses. The
// hvt backend passes the identity, and the spt backend the number the
// descriptor gets in the guest process. A nil hostFd means the identity.
func Attachments(blocks []*Block, nets []*Net, hostFd func(fd int) int) map[int]abi.Attachment {
	if hostFd == nil {
		hostFd = func(fd int) int { return fd }
	}
	att := make(map[int]abi.Attachment, len(blocks)+len(nets))
	for _, b := range blocks {
		att[b.Index] = abi.Attachment{
			Capacity:  b.Capacity,
			BlockSize: uint16(b.SectorSize),
			HostFD:    hostFd(int(b.File.Fd())),
		}
	}
	for _, n := range nets {
		a := abi.Attachment{
			MTU:    uint16(n.MTU),
			HostFD: hostFd(n.Fd),
		}
		copy(a.MAC[:], n.MAC)
		att[n.Index] = a
	}
	return att
}
