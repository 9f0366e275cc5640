package bench

import (
	"fmt"
	"io"
	"strings"
)

// ProgressBar draws a one-line progress bar, redrawn in place with a
// carriage return. It is meant for a terminal.
type ProgressBar struct {
	W     io.Writer
	Width int // bar width in characters
}

// Update redraws the bar for done of total steps, followed by label.
func (p *ProgressBar) Update(done, total int, label string) {
	width := p.Width
	if width <= 0 {
		width = 30
	}
	filled := 0
	if total > 0 {
		filled = done * width / total
	}
	// \033[K clears what a longer previous label left on the line.
	fmt.Fprintf(p.W, "\r[%s%s] %d/%d %s\033[K",
		strings.Repeat("#", filled), strings.Repeat(".", width-filled), done, total, label)
}

// Finish ends the bar's line.
func (p *ProgressBar) Finish() {
	fmt.Fprint(p.W, "\r\033[K")
}
