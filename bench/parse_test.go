package bench

import (
	"math"
	"testing"
)

func TestParseCalls(t *testing.T) {
	out := "....\nbench calls: 100 clock reads in 31000 ns, 50 wall clock reads in 60000 ns, 200 console writes in 900000 ns\nSUCCESS\n"
	v, err := parseCalls(out)
	if err != nil {
		t.Fatal(err)
	}
	if v["clock_read_ns"] != 310 {
		t.Errorf("clock_read_ns = %v, expected 310", v["clock_read_ns"])
	}
	if v["wall_clock_read_ns"] != 1200 {
		t.Errorf("wall_clock_read_ns = %v, expected 1200", v["wall_clock_read_ns"])
	}
	if v["console_write_ns"] != 4500 {
		t.Errorf("console_write_ns = %v, expected 4500", v["console_write_ns"])
	}
	if _, err := parseCalls("SUCCESS\n"); err == nil {
		t.Error("parseCalls accepted output without the bench line")
	}
}

func TestParseBlock(t *testing.T) {
	// 2000 requests of 4096 bytes in 8192000 ns: 8192000 bytes in
	// 8.192 ms is 1000 MB/s.
	mbs, err := parseBlock("bench blkread: 2000 requests of 4096 bytes in 8192000 ns\n", "read", 4096)
	if err != nil {
		t.Fatal(err)
	}
	if math.Abs(mbs-1000) > 1e-9 {
		t.Errorf("MB/s = %v, expected 1000", mbs)
	}
	if _, err := parseBlock("bench blkwrite: 2000 requests of 4096 bytes in 8192000 ns\n", "read", 4096); err == nil {
		t.Error("parseBlock accepted a write line for a read")
	}
	if _, err := parseBlock("bench blkread: 2000 requests of 512 bytes in 8192000 ns\n", "read", 4096); err == nil {
		t.Error("parseBlock accepted the wrong request size")
	}
}

func TestParsePing(t *testing.T) {
	out := `PING 10.0.0.2 (10.0.0.2) 56(84) bytes of data.

--- 10.0.0.2 ping statistics ---
1000 packets transmitted, 1000 received, 0% packet loss, time 250ms
rtt min/avg/max/mdev = 0.010/0.025/0.300/0.005 ms, ipg/ewma 0.250/0.024 ms
`
	v, err := parsePing(out)
	if err != nil {
		t.Fatal(err)
	}
	// ipg 0.250 ms is 4000 requests per second.
	if v["ping_pps"] != 4000 {
		t.Errorf("ping_pps = %v, expected 4000", v["ping_pps"])
	}
	if math.Abs(v["ping_rtt_us"]-25) > 1e-9 {
		t.Errorf("ping_rtt_us = %v, expected 25", v["ping_rtt_us"])
	}
	noIPG := "20 packets transmitted, 20 received, 0% packet loss, time 5ms\n" +
		"rtt min/avg/max/mdev = 0.010/0.025/0.300/0.005 ms\n"
	v, err = parsePing(noIPG)
	if err != nil {
		t.Fatal(err)
	}
	if v["ping_pps"] != 4000 {
		t.Errorf("ping_pps without ipg = %v, expected 4000 from 20 in 5 ms", v["ping_pps"])
	}
	if _, err := parsePing("connect: Network is unreachable\n"); err == nil {
		t.Error("parsePing accepted output without a summary")
	}
}
