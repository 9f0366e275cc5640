package bench

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"regexp"
	"strconv"
	"strings"
	"time"
)

// The ping network: a tap in a network namespace of its own, so that the
// flood reaches nothing but the guest. The guest replies at guestIP, its
// bench_net default, with guestMAC. The host has a permanent neighbour
// entry for it, so that no ARP exchange enters the timing.
const (
	hostCIDR = "10.0.0.1/24"
	guestIP  = "10.0.0.2"
	guestMAC = "02:00:0a:00:00:02"
)

// createNetwork creates the namespace and tap and returns a function that
// deletes them.
func (b *Bench) createNetwork() (func(), error) {
	if os.Geteuid() != 0 {
		return nil, fmt.Errorf("the ping figures need root to create a network namespace and a tap")
	}
	b.netns = fmt.Sprintf("ntbench%d", os.Getpid())
	b.tap = "tap0"
	if err := ipCommand("netns", "add", b.netns); err != nil {
		return nil, err
	}
	cleanup := func() {
		// Deleting the namespace deletes the tap in it.
		_ = ipCommand("netns", "del", b.netns)
	}
	steps := [][]string{
		{"-n", b.netns, "link", "set", "lo", "up"},
		{"-n", b.netns, "tuntap", "add", "dev", b.tap, "mode", "tap"},
		{"-n", b.netns, "addr", "add", hostCIDR, "dev", b.tap},
		{"-n", b.netns, "link", "set", b.tap, "up"},
		{"-n", b.netns, "neigh", "replace", guestIP, "lladdr", guestMAC, "dev", b.tap, "nud", "permanent"},
	}
	for _, args := range steps {
		if err := ipCommand(args...); err != nil {
			cleanup()
			return nil, err
		}
	}
	return cleanup, nil
}

func ipCommand(args ...string) error {
	out, err := exec.Command("ip", args...).CombinedOutput()
	if err != nil {
		return fmt.Errorf("ip %s: %w: %s", strings.Join(args, " "), err, strings.TrimSpace(string(out)))
	}
	return nil
}

// servingTimeout bounds the wait for the guest to report that it serves.
const servingTimeout = 10 * time.Second

func (b *Bench) runPing(ctx context.Context, m Mode) (map[string]float64, error) {
	g := guestRun{
		binary: "bench_net",
		args:   []string{"echo", "limit", strconv.Itoa(b.cfg.Pings)},
		net:    map[string]string{"service0": b.tap},
		mac:    map[string]string{"service0": guestMAC},
		netns:  b.netns,
	}
	p, err := b.start(ctx, m, g)
	if err != nil {
		return nil, err
	}
	values, pingErr := b.floodPing(ctx, p)
	if pingErr != nil {
		// The guest waits for more requests; end it.
		p.cancel()
	}
	r, err := p.wait()
	if pingErr != nil {
		return nil, pingErr
	}
	if err != nil {
		return nil, err
	}
	if err := checkSuccess(p.argv, r); err != nil {
		return nil, err
	}
	return values, nil
}

// floodPing waits until the guest serves, then sends Pings echo requests
// with ping -f and returns the figures from ping's summary.
func (b *Bench) floodPing(ctx context.Context, p *process) (map[string]float64, error) {
	deadline := time.Now().Add(servingTimeout)
	for !strings.Contains(p.output.String(), "Serving ping") {
		if time.Now().After(deadline) || p.ctx.Err() != nil {
			return nil, fmt.Errorf("guest did not report %q within %v; output ends: %s",
				"Serving ping", servingTimeout, tail(p.output.String(), 300))
		}
		time.Sleep(5 * time.Millisecond)
	}
	// -w makes ping send until Pings replies arrive, so the guest, which
	// exits after Pings requests, is not left waiting for a lost one.
	deadlineSeconds := int(b.cfg.Timeout / time.Second)
	cmd := exec.CommandContext(ctx, "ip", "netns", "exec", b.netns,
		"ping", "-f", "-q", "-c", strconv.Itoa(b.cfg.Pings),
		"-w", strconv.Itoa(deadlineSeconds), guestIP)
	out, err := cmd.CombinedOutput()
	if err != nil {
		return nil, fmt.Errorf("ping -f %s: %w: %s", guestIP, err, tail(string(out), 300))
	}
	return parsePing(string(out))
}

var (
	pingCounts = regexp.MustCompile(`(\d+) packets transmitted, (\d+) received.*time (\d+)ms`)
	pingRTT    = regexp.MustCompile(`rtt min/avg/max/mdev = ([\d.]+)/([\d.]+)/([\d.]+)/([\d.]+) ms`)
	pingIPG    = regexp.MustCompile(`ipg/ewma ([\d.]+)/([\d.]+) ms`)
)

// parsePing returns packets/s and the mean round-trip time in
// microseconds from the summary of iputils ping -f. The rate is 1/ipg,
// where ipg is the mean gap between requests in microsecond resolution.
// A flood sends the next request when a reply arrives, so this is the
// reply rate. The total time, in whole milliseconds, is used only when
// ipg is missing.
func parsePing(output string) (map[string]float64, error) {
	counts := pingCounts.FindStringSubmatch(output)
	rtt := pingRTT.FindStringSubmatch(output)
	if counts == nil || rtt == nil {
		return nil, fmt.Errorf("parsing ping output: no summary in %q", tail(output, 300))
	}
	avg, err := strconv.ParseFloat(rtt[2], 64)
	if err != nil {
		return nil, fmt.Errorf("parsing ping output: invalid round-trip time in %q", rtt[0])
	}
	var pps float64
	if ipg := pingIPG.FindStringSubmatch(output); ipg != nil {
		gap, err := strconv.ParseFloat(ipg[1], 64)
		if err == nil && gap > 0 {
			pps = 1e3 / gap
		}
	}
	if pps == 0 {
		received, _ := strconv.ParseFloat(counts[2], 64)
		ms, _ := strconv.ParseFloat(counts[3], 64)
		if received == 0 || ms == 0 {
			return nil, fmt.Errorf("parsing ping output: no ipg and no elapsed time in %q", counts[0])
		}
		pps = received / (ms / 1e3)
	}
	return map[string]float64{"ping_pps": pps, "ping_rtt_us": avg * 1e3}, nil
}
