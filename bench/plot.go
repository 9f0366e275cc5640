package bench

// PlotReport writes a PNG with one panel per figure: the median of each
// mode that has the figure, with its min to max range as an error bar.
func PlotReport(r *Report, path string) error {
	var panels []BarPanel
	for _, fig := range r.Figures {
		panel := BarPanel{Title: fig.Name, YLabel: fig.Unit}
		if fig.HigherIsBetter {
			panel.Title += " (higher is better)"
		} else {
			panel.Title += " (lower is better)"
		}
		for i, m := range r.Modes {
			res := r.Results[m.Name][fig.Name]
			if res == nil || res.Summary == nil {
				continue
			}
			panel.Labels = append(panel.Labels, m.Name)
			panel.Values = append(panel.Values, res.Median)
			panel.Low = append(panel.Low, res.Min)
			panel.High = append(panel.High, res.Max)
			// Each mode keeps its color in every panel.
			panel.Colors = append(panel.Colors, BarColor(i))
		}
		if len(panel.Values) > 0 {
			panels = append(panels, panel)
		}
	}
	return WriteBarCharts(path, panels, 4)
}
