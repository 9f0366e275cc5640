package measure

import (
	"encoding/json"
	"fmt"
	"io"
	"strconv"
	"strings"
	"text/tabwriter"

	"github.com/ntender/ntender/bench"
)

// functionsLabel names the kernel function count as the method allows.
func (r *Report) functionsLabel() string {
	if r.SampledLowerBound {
		return "kernel functions (sampled lower bound)"
	}
	return "kernel functions"
}

// WriteJSON writes the report as indented JSON.
func (r *Report) WriteJSON(w io.Writer) error {
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	if err := enc.Encode(r); err != nil {
		return fmt.Errorf("writing the report as JSON: %w", err)
	}
	return nil
}

// WriteTable writes one row per mode with the counts, then the syscalls
// made after the filter but outside it, and why modes are missing.
func (r *Report) WriteTable(w io.Writer) error {
	fmt.Fprintf(w, "%s, %d CPUs, Linux %s; kernel functions by %s\n",
		r.Machine.CPU, r.Machine.CPUs, r.Machine.Kernel, r.KernelFunctionsMethod)
	if r.SampledLowerBound {
		fmt.Fprintf(w, "The function tracer is not usable: %s.\n", r.FunctionTracerRejected)
		fmt.Fprintf(w, "Kernel function counts are a sampled lower bound, merged over %d perf runs per mode.\n", r.PerfRuns)
	}
	fmt.Fprintln(w)
	tw := tabwriter.NewWriter(w, 0, 8, 2, ' ', 0)
	fmt.Fprintf(tw, "MODE\tSTATUS\tSYSCALLS MADE\tAFTER FILTER\tFILTER ALLOWS\tOUTSIDE FILTER\t%s\tAFTER FILTER\n",
		strings.ToUpper(r.functionsLabel()))
	for _, m := range r.Modes {
		if m.Unavailable != "" || m.Error != "" {
			fmt.Fprintf(tw, "%s\t-\t-\t-\t-\t-\t-\t-\n", m.Name)
			continue
		}
		functionsAfter := "-"
		if m.KernelFunctionNamesAfterFilter != nil {
			functionsAfter = strconv.Itoa(m.KernelFunctionsAfterFilter)
		}
		after, allows, out := "no filter", "-", "-"
		if m.SyscallsAfterFilter != nil {
			after = strconv.Itoa(len(m.SyscallsAfterFilter))
		}
		if m.Filter != nil {
			allows = strconv.Itoa(len(m.Filter.Allowed))
			if m.SyscallsAfterFilter != nil {
				out = strconv.Itoa(len(m.OutsideFilter))
			}
		}
		fmt.Fprintf(tw, "%s\t%d\t%d\t%s\t%s\t%s\t%d\t%s\n", m.Name, m.Status,
			len(m.Syscalls), after, allows, out, m.KernelFunctions, functionsAfter)
	}
	if err := tw.Flush(); err != nil {
		return fmt.Errorf("writing the table: %w", err)
	}
	fmt.Fprintln(w)
	for _, m := range r.Modes {
		switch {
		case m.Unavailable != "":
			fmt.Fprintf(w, "%s: unavailable: %s\n", m.Name, m.Unavailable)
		case m.Error != "":
			fmt.Fprintf(w, "%s: failed: %s\n", m.Name, m.Error)
		default:
			if len(m.OutsideFilter) > 0 {
				fmt.Fprintf(w, "%s: made after its filter, not allowed by it: %s\n", m.Name, strings.Join(m.OutsideFilter, " "))
			}
			if len(m.FailedByFilter) > 0 {
				fmt.Fprintf(w, "%s: made after its filter, which returned an error: %s\n", m.Name, strings.Join(m.FailedByFilter, " "))
			}
			if m.SyscallsAfterFilter != nil {
				fmt.Fprintf(w, "%s: syscalls after filter: %s\n", m.Name, strings.Join(m.SyscallsAfterFilter, " "))
			} else {
				fmt.Fprintf(w, "%s: no seccomp filter was installed during the run\n", m.Name)
			}
			if m.LostEvents > 0 {
				fmt.Fprintf(w, "%s: the trace lost %d events; the syscall lists may be incomplete\n", m.Name, m.LostEvents)
			}
			if m.FunctionEventsLost > 0 {
				fmt.Fprintf(w, "%s: the function trace lost %d events; its kernel function count is a lower bound\n",
					m.Name, m.FunctionEventsLost)
			}
		}
	}
	return nil
}

// Plot writes a PNG with the kernel functions per mode, like the nabla
// containers graph, in all and after the filter, beside the syscalls
// made and the filter sizes.
func (r *Report) Plot(path string) error {
	functions := bench.BarPanel{Title: r.functionsLabel(), YLabel: "distinct functions"}
	functionsAfter := bench.BarPanel{Title: r.functionsLabel() + ", after the filter", YLabel: "distinct functions"}
	syscallsMade := bench.BarPanel{Title: "system calls made", YLabel: "distinct syscalls"}
	allowed := bench.BarPanel{Title: "system calls the filter allows", YLabel: "syscalls"}
	// Each mode keeps its color in every panel.
	for i, m := range r.Modes {
		if m.Unavailable != "" || m.Error != "" {
			continue
		}
		color := bench.BarColor(i)
		functions.Labels = append(functions.Labels, m.Name)
		functions.Values = append(functions.Values, float64(m.KernelFunctions))
		functions.Colors = append(functions.Colors, color)
		if m.KernelFunctionNamesAfterFilter != nil {
			functionsAfter.Labels = append(functionsAfter.Labels, m.Name)
			functionsAfter.Values = append(functionsAfter.Values, float64(m.KernelFunctionsAfterFilter))
			functionsAfter.Colors = append(functionsAfter.Colors, color)
		}
		syscallsMade.Labels = append(syscallsMade.Labels, m.Name)
		syscallsMade.Values = append(syscallsMade.Values, float64(len(m.Syscalls)))
		syscallsMade.Colors = append(syscallsMade.Colors, color)
		if m.Filter != nil {
			allowed.Labels = append(allowed.Labels, m.Name)
			allowed.Values = append(allowed.Values, float64(len(m.Filter.Allowed)))
			allowed.Colors = append(allowed.Colors, color)
		}
	}
	panels := []bench.BarPanel{functions}
	if len(functionsAfter.Values) > 0 {
		panels = append(panels, functionsAfter)
	}
	panels = append(panels, syscallsMade)
	if len(allowed.Values) > 0 {
		panels = append(panels, allowed)
	}
	return bench.WriteBarCharts(path, panels, 2)
}
