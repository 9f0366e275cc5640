package bench

import (
	"fmt"
	"image/color"
	"os"
	"strconv"

	"gonum.org/v1/plot"
	"gonum.org/v1/plot/plotter"
	"gonum.org/v1/plot/vg"
	"gonum.org/v1/plot/vg/draw"
	"gonum.org/v1/plot/vg/vgimg"
)

// BarPanel is one bar chart: a bar per label, with an optional range
// (such as min to max) drawn as an error bar over each bar.
type BarPanel struct {
	Title  string
	YLabel string
	Labels []string
	Values []float64
	// Low and High, when not nil, are the ends of each bar's range.
	Low, High []float64
	// Colors gives each bar its own color when not nil.
	Colors []color.Color
}

// panelSize is the size of one panel in the PNG.
const panelWidth, panelHeight = 4 * vg.Inch, 3 * vg.Inch

// WriteBarCharts draws the panels in a grid of cols columns and writes
// the image to path as PNG.
func WriteBarCharts(path string, panels []BarPanel, cols int) error {
	if len(panels) == 0 {
		return fmt.Errorf("writing chart %s: nothing to plot", path)
	}
	if cols < 1 || cols > len(panels) {
		cols = len(panels)
	}
	rows := (len(panels) + cols - 1) / cols
	grid := make([][]*plot.Plot, rows)
	for r := range grid {
		grid[r] = make([]*plot.Plot, cols)
	}
	for i, panel := range panels {
		p, err := newBarPlot(panel)
		if err != nil {
			return fmt.Errorf("writing chart %s: panel %q: %w", path, panel.Title, err)
		}
		grid[i/cols][i%cols] = p
	}

	img := vgimg.New(panelWidth*vg.Length(cols), panelHeight*vg.Length(rows))
	dc := draw.New(img)
	tiles := draw.Tiles{Rows: rows, Cols: cols, PadX: vg.Millimeter * 4, PadY: vg.Millimeter * 4,
		PadTop: vg.Millimeter * 2, PadBottom: vg.Millimeter * 2, PadLeft: vg.Millimeter * 2, PadRight: vg.Millimeter * 2}
	canvases := plot.Align(grid, tiles, dc)
	for r := range grid {
		for c := range grid[r] {
			if grid[r][c] != nil {
				grid[r][c].Draw(canvases[r][c])
			}
		}
	}

	f, err := os.Create(path)
	if err != nil {
		return fmt.Errorf("writing chart: %w", err)
	}
	if _, err := (vgimg.PngCanvas{Canvas: img}).WriteTo(f); err != nil {
		f.Close()
		return fmt.Errorf("writing chart %s: %w", path, err)
	}
	if err := f.Close(); err != nil {
		return fmt.Errorf("writing chart %s: %w", path, err)
	}
	return nil
}

// barColors are the default bar colors, one per position.
var barColors = []color.Color{
	color.RGBA{0x1f, 0x77, 0xb4, 0xff}, color.RGBA{0xff, 0x7f, 0x0e, 0xff},
	color.RGBA{0x2c, 0xa0, 0x2c, 0xff}, color.RGBA{0x94, 0x67, 0xbd, 0xff},
	color.RGBA{0x8c, 0x56, 0x4b, 0xff}, color.RGBA{0x7f, 0x7f, 0x7f, 0xff},
	color.RGBA{0xd6, 0x27, 0x28, 0xff},
}

// BarColor returns the default color of the bar at position i, so that
// callers can give one series the same color in every panel.
func BarColor(i int) color.Color {
	return barColors[i%len(barColors)]
}

// newBarPlot builds the plot of one panel, one bar chart per value so
// that each bar can have its own color.
func newBarPlot(panel BarPanel) (*plot.Plot, error) {
	p := plot.New()
	p.Title.Text = panel.Title
	p.Title.TextStyle.Font.Size = vg.Points(10)
	p.Y.Label.Text = panel.YLabel
	p.Y.Min = 0
	p.X.Tick.Label.Font.Size = vg.Points(7)

	width := vg.Points(18)
	for i, v := range panel.Values {
		bar, err := plotter.NewBarChart(plotter.Values{v}, width)
		if err != nil {
			return nil, err
		}
		bar.XMin = float64(i)
		bar.LineStyle.Width = 0
		bar.Color = barColors[i%len(barColors)]
		if panel.Colors != nil {
			bar.Color = panel.Colors[i]
		}
		p.Add(bar)
	}

	// Leave room above the tallest bar or range, which the axis would
	// otherwise end at.
	top := 0.0
	for i, v := range panel.Values {
		top = max(top, v)
		if panel.High != nil {
			top = max(top, panel.High[i])
		}
	}
	p.Y.Max = top * 1.08
	p.Y.Tick.Marker = plainTicks{}

	if panel.Low != nil && panel.High != nil {
		ranges := errorRanges{values: panel.Values, low: panel.Low, high: panel.High}
		bars, err := plotter.NewYErrorBars(ranges)
		if err != nil {
			return nil, err
		}
		p.Add(bars)
	}
	p.NominalX(panel.Labels...)
	return p, nil
}

// plainTicks are gonum's default ticks labelled in the shortest form,
// "2500" where the default prints "2500.00" for some axis ranges.
type plainTicks struct{}

func (plainTicks) Ticks(minimum, maximum float64) []plot.Tick {
	ticks := plot.DefaultTicks{}.Ticks(minimum, maximum)
	for i := range ticks {
		if ticks[i].Label != "" {
			ticks[i].Label = strconv.FormatFloat(ticks[i].Value, 'g', -1, 64)
		}
	}
	return ticks
}

// errorRanges turns absolute low and high ends into the relative errors
// that plotter.YErrorBars expects.
type errorRanges struct {
	values, low, high []float64
}

func (e errorRanges) Len() int                    { return len(e.values) }
func (e errorRanges) XY(i int) (float64, float64) { return float64(i), e.values[i] }
func (e errorRanges) YError(i int) (float64, float64) {
	return e.values[i] - e.low[i], e.high[i] - e.values[i]
}
