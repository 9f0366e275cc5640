package abi

import (
	"bytes"
	"encoding/binary"
	"testing"
)

// fill returns size bytes where the u64 at offset 8*i holds base+i, so a
// decoder that reads the wrong offset returns a wrong value.
func fill(size int, base uint64) []byte {
	b := make([]byte, size)
	for i := 0; i+8 <= size; i += 8 {
		binary.LittleEndian.PutUint64(b[i:], base+uint64(i/8))
	}
	return b
}

func TestDecodePuts(t *testing.T) {
	p, err := DecodePuts(fill(PutsSize, 100))
	if err != nil {
		t.Fatal(err)
	}
	if p != (Puts{Data: 100, Len: 101}) {
		t.Errorf("DecodePuts = %+v", p)
	}
	if _, err := DecodePuts(make([]byte, PutsSize-1)); err == nil {
		t.Error("DecodePuts accepted a short struct")
	}
}

func TestPollDecodeAndResult(t *testing.T) {
	b := fill(PollSize, 7)
	p, err := DecodePoll(b)
	if err != nil {
		t.Fatal(err)
	}
	if p.TimeoutNsecs != 7 {
		t.Errorf("TimeoutNsecs = %d, want 7", p.TimeoutNsecs)
	}
	if err := PutPollResult(b, 1<<3|1<<63, 2); err != nil {
		t.Fatal(err)
	}
	if got := u64At(b, PollReadySet); got != 1<<3|1<<63 {
		t.Errorf("ready_set = %#x", got)
	}
	if got := u32At(b, PollRet); got != 2 {
		t.Errorf("ret = %d, want 2", got)
	}
	if got := u64At(b, PollTimeout); got != 7 {
		t.Errorf("timeout_nsecs changed to %d", got)
	}
	if err := PutPollResult(make([]byte, PollSize-1), 0, 0); err == nil {
		t.Error("PutPollResult accepted a short struct")
	}
}

func TestBlockDecodeAndResult(t *testing.T) {
	b := fill(BlockSize, 10)
	io, err := DecodeBlockIO(b)
	if err != nil {
		t.Fatal(err)
	}
	if io != (BlockIO{Handle: 10, Offset: 11, Data: 12, Len: 13}) {
		t.Errorf("DecodeBlockIO = %+v", io)
	}
	if err := PutBlockResult(b, ResultEINVAL); err != nil {
		t.Fatal(err)
	}
	if got := u32At(b, BlockRet); got != uint32(ResultEINVAL) {
		t.Errorf("ret = %d, want %d", got, ResultEINVAL)
	}
	if got := u64At(b, BlockLen); got != 13 {
		t.Errorf("len changed to %d", got)
	}
	if _, err := DecodeBlockIO(make([]byte, BlockSize-1)); err == nil {
		t.Error("DecodeBlockIO accepted a short struct")
	}
}

func TestNetDecodeAndResults(t *testing.T) {
	b := fill(NetSize, 20)
	io, err := DecodeNetIO(b)
	if err != nil {
		t.Fatal(err)
	}
	if io != (NetIO{Handle: 20, Data: 21, Len: 22}) {
		t.Errorf("DecodeNetIO = %+v", io)
	}
	if err := PutNetReadResult(b, 1514, ResultOK); err != nil {
		t.Fatal(err)
	}
	if got := u64At(b, NetLen); got != 1514 {
		t.Errorf("len = %d, want 1514", got)
	}
	if got := u32At(b, NetRet); got != uint32(ResultOK) {
		t.Errorf("ret = %d, want 0", got)
	}
	if err := PutNetWriteResult(b, ResultAgain); err != nil {
		t.Fatal(err)
	}
	if got := u32At(b, NetRet); got != uint32(ResultAgain) {
		t.Errorf("ret = %d, want 1", got)
	}
	if _, err := DecodeNetIO(make([]byte, NetSize-1)); err == nil {
		t.Error("DecodeNetIO accepted a short struct")
	}
}

func TestDecodeHaltNegativeStatus(t *testing.T) {
	b := fill(HaltSize, 0x5000)
	binary.LittleEndian.PutUint32(b[HaltExitStatus:], 0xFFFFFFFF)
	h, err := DecodeHalt(b)
	if err != nil {
		t.Fatal(err)
	}
	if h.Cookie != 0x5000 {
		t.Errorf("Cookie = %#x, want 0x5000", h.Cookie)
	}
	if h.ExitStatus != -1 {
		t.Errorf("ExitStatus = %d, want -1", h.ExitStatus)
	}
}

func TestPutWalltime(t *testing.T) {
	b := make([]byte, WalltimeSize)
	if err := PutWalltime(b, 1483228800_000000001); err != nil {
		t.Fatal(err)
	}
	if got := u64At(b, WalltimeNsecs); got != 1483228800_000000001 {
		t.Errorf("nsecs = %d", got)
	}
	if err := PutWalltime(b[:7], 1); err == nil {
		t.Error("PutWalltime accepted a short struct")
	}
}

func TestDecodeTrapFrame(t *testing.T) {
	f, err := DecodeTrapFrame(fill(TrapFrameSize, 1))
	if err != nil {
		t.Fatal(err)
	}
	want := TrapFrame{CR2: 1, EC: 2, RIP: 3, CS: 4, RFLAGS: 5, RSP: 6, SS: 7}
	if f != want {
		t.Errorf("DecodeTrapFrame = %+v, want %+v", f, want)
	}
}

func TestMarshalManifestAttachments(t *testing.T) {
	u, err := Parse("m.hvt", goodSpec(TargetHVT, 2,
		ManifestEntry{Name: "storage", Type: DeviceBlockBasic},
		ManifestEntry{Name: "service0", Type: DeviceNetBasic},
		ManifestEntry{Name: "spare", Type: DeviceBlockBasic},
	).build())
	if err != nil {
		t.Fatal(err)
	}
	mac := [6]byte{0x02, 0x11, 0x22, 0x33, 0x44, 0x55}
	b := u.MarshalManifest(map[int]Attachment{
		1: {Capacity: 4 << 20, BlockSize: 4096, HostFD: 7},
		2: {MAC: mac, MTU: 9000, HostFD: 8},
	})
	if len(b) != ManifestHeaderSize+4*ManifestEntrySize {
		t.Fatalf("len = %d, want %d", len(b), ManifestHeaderSize+4*ManifestEntrySize)
	}
	if v := u32At(b, ManifestVersionOffset); v != 1 {
		t.Errorf("version = %d", v)
	}
	if n := u32At(b, ManifestEntriesOffset); n != 4 {
		t.Errorf("entries = %d", n)
	}
	entry := func(i int) []byte { return b[ManifestHeaderSize+i*ManifestEntrySize:][:ManifestEntrySize] }

	e0 := entry(0)
	if typ := u32At(e0, EntryType); typ != uint32(DeviceReservedFirst) {
		t.Errorf("e[0].type = %#x", typ)
	}
	if !bytes.Equal(e0[:EntryType], make([]byte, EntryType)) {
		t.Error("e[0].name is not empty")
	}
	if e0[EntryAttached] != 0 {
		t.Error("e[0] is attached")
	}

	blk := entry(1)
	if name := string(blk[:8]); name != "storage\x00" {
		t.Errorf("e[1].name = %q", name)
	}
	if c := u64At(blk, EntryBlockCapacity); c != 4<<20 {
		t.Errorf("e[1].capacity = %d", c)
	}
	if s := u16At(blk, EntryBlockSize); s != 4096 {
		t.Errorf("e[1].block_size = %d", s)
	}
	if fd := u64At(blk, EntryHostFd); fd != 7 {
		t.Errorf("e[1].hostfd = %d", fd)
	}
	if blk[EntryAttached] != 1 {
		t.Error("e[1] is not attached")
	}

	net := entry(2)
	if typ := u32At(net, EntryType); typ != uint32(DeviceNetBasic) {
		t.Errorf("e[2].type = %d", typ)
	}
	if !bytes.Equal(net[EntryNetMAC:EntryNetMAC+6], mac[:]) {
		t.Errorf("e[2].mac = % x", net[EntryNetMAC:EntryNetMAC+6])
	}
	if m := u16At(net, EntryNetMTU); m != 9000 {
		t.Errorf("e[2].mtu = %d", m)
	}
	if fd := u64At(net, EntryHostFd); fd != 8 {
		t.Errorf("e[2].hostfd = %d", fd)
	}
	if net[EntryAttached] != 1 {
		t.Error("e[2] is not attached")
	}

	spare := entry(3)
	if spare[EntryAttached] != 0 {
		t.Error("e[3] is attached without an attachment")
	}
	if !bytes.Equal(spare[EntryBlockCapacity:EntryAttached], make([]byte, EntryAttached-EntryBlockCapacity)) {
		t.Error("e[3] has non-zero device fields")
	}

	// The result must read back as the same manifest once the attached
	// flags, which a file may not set, are cleared.
	if _, err := decodeManifest("m.hvt", b); err == nil {
		t.Error("decodeManifest accepted attached entries")
	}
	for i := 1; i <= 2; i++ {
		entry(i)[EntryAttached] = 0
	}
	entries, err := decodeManifest("m.hvt", b)
	if err != nil {
		t.Fatal(err)
	}
	if len(entries) != 4 || entries[2].Name != "service0" || entries[3].Type != DeviceBlockBasic {
		t.Errorf("decoded %+v", entries)
	}
}
