package bench

import (
	"math"
	"slices"
	"testing"
)

func TestSummarizeOddCount(t *testing.T) {
	samples := []float64{5, 1, 3}
	s, err := Summarize(samples)
	if err != nil {
		t.Fatal(err)
	}
	if s.Min != 1 {
		t.Errorf("Min = %v, expected 1", s.Min)
	}
	if s.Median != 3 {
		t.Errorf("Median = %v, expected 3", s.Median)
	}
	if s.Max != 5 {
		t.Errorf("Max = %v, expected 5", s.Max)
	}
	if !slices.Equal(s.Samples, []float64{5, 1, 3}) {
		t.Errorf("Samples = %v, expected the input order", s.Samples)
	}
	if !slices.Equal(samples, []float64{5, 1, 3}) {
		t.Errorf("Summarize reordered its input: %v", samples)
	}
}

func TestSummarizeEvenCount(t *testing.T) {
	s, err := Summarize([]float64{4, 1, 10, 2})
	if err != nil {
		t.Fatal(err)
	}
	if s.Median != 3 {
		t.Errorf("Median = %v, expected 3, the mean of 2 and 4", s.Median)
	}
	if s.Min != 1 || s.Max != 10 {
		t.Errorf("Min, Max = %v, %v, expected 1, 10", s.Min, s.Max)
	}
}

func TestSummarizeOneSample(t *testing.T) {
	s, err := Summarize([]float64{7})
	if err != nil {
		t.Fatal(err)
	}
	if s.Min != 7 || s.Median != 7 || s.Max != 7 {
		t.Errorf("Summary = %+v, expected 7 everywhere", s)
	}
}

func TestSummarizeRejectsBadInput(t *testing.T) {
	for _, samples := range [][]float64{nil, {1, math.NaN()}, {math.Inf(1)}} {
		if _, err := Summarize(samples); err == nil {
			t.Errorf("Summarize(%v) returned no error", samples)
		}
	}
}

func TestRatio(t *testing.T) {
	r, ok := Ratio(3, 2)
	if !ok || r != 1.5 {
		t.Errorf("Ratio(3, 2) = %v, %v, expected 1.5, true", r, ok)
	}
	if _, ok := Ratio(3, 0); ok {
		t.Error("Ratio(3, 0) reported a ratio")
	}
	if _, ok := Ratio(math.NaN(), 1); ok {
		t.Error("Ratio(NaN, 1) reported a ratio")
	}
}

func TestComputeRatiosUsesBaseline(t *testing.T) {
	summary := func(median float64) *Summary { return &Summary{Min: median, Median: median, Max: median} }
	r := &Report{
		Modes: []Mode{{Name: ModeHVT, Baseline: ModeSolo5HVT}, {Name: ModeSolo5HVT}},
		Results: map[string]map[string]*Result{
			ModeHVT:      {"boot_ms": {Summary: summary(30)}, "ping_pps": {Error: "failed"}},
			ModeSolo5HVT: {"boot_ms": {Summary: summary(20)}, "ping_pps": {Summary: summary(5)}},
		},
	}
	r.computeRatios()
	got := r.Results[ModeHVT]["boot_ms"].Ratio
	if got == nil || *got != 1.5 {
		t.Errorf("hvt boot_ms ratio = %v, expected 1.5", got)
	}
	if r.Results[ModeHVT]["ping_pps"].Ratio != nil {
		t.Error("a failed figure got a ratio")
	}
	if r.Results[ModeSolo5HVT]["boot_ms"].Ratio != nil {
		t.Error("the baseline got a ratio to itself")
	}
}
