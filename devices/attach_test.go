package devices

import (
	"testing"
)

func TestAttachments(t *testing.T) {
	b := openTestBlock(t, 8192, 4096)
	b.Index = 1
	n, _ := pipeNet(t, 2)
	n.MTU = 9000
	n.MAC = []byte{0x02, 1, 2, 3, 4, 5}

	att := Attachments([]*Block{b}, []*Net{n}, func(fd int) int { return fd + 1000 })
	if len(att) != 2 {
		t.Fatalf("len = %d, want 2", len(att))
	}

	blockAtt := att[1]
	if blockAtt.Capacity != 8192 || blockAtt.BlockSize != 4096 {
		t.Errorf("block capacity, size = %d, %d, want 8192, 4096", blockAtt.Capacity, blockAtt.BlockSize)
	}
	if want := int(b.File.Fd()) + 1000; blockAtt.HostFD != want {
		t.Errorf("block HostFD = %d, want %d", blockAtt.HostFD, want)
	}

	netAtt := att[2]
	if netAtt.MTU != 9000 {
		t.Errorf("net MTU = %d, want 9000", netAtt.MTU)
	}
	if netAtt.MAC != [6]byte{0x02, 1, 2, 3, 4, 5} {
		t.Errorf("net MAC = % x", netAtt.MAC)
	}
	if want := n.Fd + 1000; netAtt.HostFD != want {
		t.Errorf("net HostFD = %d, want %d", netAtt.HostFD, want)
	}
}

func TestAttachmentsIdentityFds(t *testing.T) {
	n, _ := pipeNet(t, 7)
	att := Attachments(nil, []*Net{n}, nil)
	if got := att[7].HostFD; got != n.Fd {
		t.Errorf("HostFD = %d, want %d", got, n.Fd)
	}
	if _, ok := att[0]; ok {
		t.Error("the reserved entry 0 has an attachment")
	}
}
