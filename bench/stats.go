package bench

import (
	"fmt"
	"math"
	"slices"
)

// Summary is the spread of the repeated samples of one figure.
type Summary struct {
	Min    float64 `json:"min"`
	Median float64 `json:"median"`
	Max    float64 `json:"max"`
	// Samples are the values in the order they were measured.
	Samples []float64 `json:"samples"`
}

// Summarize returns the minimum, median and maximum of samples. The
// median of an even number of samples is the mean of the two middle
// ones. It returns an error for no samples or a NaN or infinite sample.
func Summarize(samples []float64) (Summary, error) {
	if len(samples) == 0 {
		return Summary{}, fmt.Errorf("summarizing samples: no samples")
	}
	for i, v := range samples {
		if math.IsNaN(v) || math.IsInf(v, 0) {
			return Summary{}, fmt.Errorf("summarizing samples: sample %d is %v", i, v)
		}
	}
	sorted := slices.Clone(samples)
	slices.Sort(sorted)
	n := len(sorted)
	median := sorted[n/2]
	if n%2 == 0 {
		median = (sorted[n/2-1] + sorted[n/2]) / 2
	}
	return Summary{
		Min:     sorted[0],
		Median:  median,
		Max:     sorted[n-1],
		Samples: slices.Clone(samples),
	}, nil
}

// Ratio returns value / baseline, the factor by which a mode's median
// differs from its upstream baseline's median. ok is false when the
// baseline is zero or either value is not finite, so no ratio exists.
func Ratio(value, baseline float64) (ratio float64, ok bool) {
	if baseline == 0 || math.IsNaN(value) || math.IsNaN(baseline) ||
		math.IsInf(value, 0) || math.IsInf(baseline, 0) {
		return 0, false
	}
	return value / baseline, true
}
