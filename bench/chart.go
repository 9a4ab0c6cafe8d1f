package main

import (
	"bytes"
	"fmt"
	"image/color"
	"math"
	"os"
	"path/filepath"
	"strings"

	"gonum.org/v1/plot"
	"gonum.org/v1/plot/font"
	"gonum.org/v1/plot/plotter"
	"gonum.org/v1/plot/vg"
	"gonum.org/v1/plot/vg/draw"
	"gonum.org/v1/plot/vg/vgimg"
	"gonum.org/v1/plot/vg/vgsvg"
)

// libColor gives each library one color across the chart; errand stands out.
var libColor = map[string]color.Color{
	libErrand:     color.RGBA{R: 0xd6, G: 0x27, B: 0x28, A: 0xff},
	libErrandFIFO: color.RGBA{R: 0xff, G: 0x98, B: 0x96, A: 0xff},
	libChan:       color.RGBA{R: 0x4d, G: 0x4d, B: 0x4d, A: 0xff},
	libResultChan: color.RGBA{R: 0x99, G: 0x99, B: 0x99, A: 0xff},
	libAfterFunc:  color.RGBA{R: 0x17, G: 0xbe, B: 0xcf, A: 0xff},
	libPond:       color.RGBA{R: 0x1f, G: 0x77, B: 0xb4, A: 0xff},
	libAnts:       color.RGBA{R: 0x2c, G: 0xa0, B: 0x2c, A: 0xff},
	libWorkerpool: color.RGBA{R: 0x94, G: 0x67, B: 0xbd, A: 0xff},
	libErrgroup:   color.RGBA{R: 0x8c, G: 0x56, B: 0x4b, A: 0xff},
}

const (
	chartW   = 13 * vg.Inch
	chartH   = 6 * vg.Inch
	legendW  = 1.4 * vg.Inch
	barWidth = 11 * vg.Length(1) // points
)

// WriteChart draws ns/task per library per workload as grouped bars on a
// log scale, to path (.svg or .png).
func (rep *Report) WriteChart(path string) error {
	// The workloads charted, in table order, and their rows that ran.
	type group struct {
		w    *workload
		rows []*Row
	}
	var groups []group
	for _, r := range rep.Rows {
		if !r.W.chart {
			continue
		}
		if len(groups) == 0 || groups[len(groups)-1].w != r.W {
			groups = append(groups, group{w: r.W})
		}
		if r.ok() && isFinite(r.M.Ns) && r.M.Ns > 0 {
			groups[len(groups)-1].rows = append(groups[len(groups)-1].rows, r)
		}
	}

	sans := font.Font{Typeface: "Liberation", Variant: "Sans"}
	plot.DefaultFont = sans // plot.New and plot.NewLegend read it
	p := plot.New()
	p.Title.Text = "errand and its peers: time per task (log scale, lower is better)\n" + rep.machine()
	p.Title.Padding = 8
	p.Title.TextStyle.Font.Size = 14
	p.Y.Label.Text = "time per task"
	p.Y.Label.TextStyle.Font.Size = 11
	p.X.Tick.Label.Font.Size = 10
	p.Y.Tick.Label.Font.Size = 10
	p.Add(plotter.NewGrid())

	// Bars are heights in log10(ns) above a floor decade, with ticks labelled
	// in time units: gonum's log scale cannot draw bars, which start at 0.
	floor, top := math.Inf(1), 1.0
	for _, g := range groups {
		for _, r := range g.rows {
			floor = min(floor, math.Floor(math.Log10(r.M.Ns)))
		}
	}
	if math.IsInf(floor, 1) {
		floor = 0
	}
	var titles []string
	legend := plot.NewLegend()
	legend.Top, legend.Left = true, true
	legend.TextStyle.Font.Size = 11
	inChart := map[string]*plotter.BarChart{}
	for gi, g := range groups {
		titles = append(titles, g.w.title)
		k := len(g.rows)
		for j, r := range g.rows {
			v := math.Log10(r.M.Ns) - floor
			top = max(top, v)
			bar, err := plotter.NewBarChart(plotter.Values{v}, barWidth)
			if err != nil {
				return err
			}
			bar.XMin = float64(gi)
			bar.Offset = vg.Length(float64(j)-float64(k-1)/2) * barWidth
			bar.Color = libColor[r.Lib]
			bar.LineStyle.Width = 0
			p.Add(bar)
			if inChart[r.Lib] == nil {
				inChart[r.Lib] = bar
			}
			lab, err := plotter.NewLabels(plotter.XYLabels{
				XYs:    plotter.XYs{{X: float64(gi), Y: v}},
				Labels: []string{fmtNum(r.M.Ns)},
			})
			if err != nil {
				return err
			}
			for i := range lab.TextStyle {
				lab.TextStyle[i].Font = sans
				lab.TextStyle[i].Font.Size = 7
				lab.TextStyle[i].Rotation = math.Pi / 2
				lab.TextStyle[i].XAlign = draw.XLeft
				lab.TextStyle[i].YAlign = draw.YCenter
			}
			lab.Offset = vg.Point{X: bar.Offset, Y: 2}
			p.Add(lab)
		}
	}
	for _, lib := range allLibs() {
		if bar := inChart[lib]; bar != nil {
			legend.Add(lib, bar)
		}
	}
	p.NominalX(titles...)
	p.X.Min, p.X.Max = -0.5, float64(len(groups))-0.5
	p.Y.Min, p.Y.Max = 0, top+0.3 // room for the labels
	p.Y.Tick.Marker = logTicks{floor: floor}

	var c interface {
		vg.CanvasWriterTo
	}
	switch ext := filepath.Ext(path); ext {
	case ".svg":
		c = vgsvg.New(chartW, chartH)
	case ".png":
		c = vgimg.PngCanvas{Canvas: vgimg.NewWith(vgimg.UseWH(chartW, chartH), vgimg.UseDPI(110))}
	default:
		return fmt.Errorf("chart %s: want .svg or .png", path)
	}
	dc := draw.New(c)
	p.Draw(draw.Crop(dc, 0, -legendW, 0, 0))
	legend.Draw(draw.Crop(draw.Crop(dc, chartW-legendW+10, 0, 0, -30), 0, 0, 0, 0))

	var b bytes.Buffer
	if _, err := c.WriteTo(&b); err != nil {
		return err
	}
	out := b.Bytes()
	if filepath.Ext(path) == ".svg" {
		// Liberation Sans is metric-compatible with Arial: name fallbacks so
		// viewers without it keep the layout.
		out = []byte(strings.ReplaceAll(string(out), "font-family:Liberation Sans;", "font-family:'Liberation Sans',Arial,Helvetica,sans-serif;"))
	}
	return os.WriteFile(path, out, 0o644)
}

// logTicks labels an axis of log10(ns) - floor in time units: a major tick
// per decade, minor ticks at 2..9.
type logTicks struct{ floor float64 }

func (lt logTicks) Ticks(min, max float64) []plot.Tick {
	var ts []plot.Tick
	for d := math.Floor(min); d <= max; d++ {
		ts = append(ts, plot.Tick{Value: d, Label: fmtTick(math.Pow(10, d+lt.floor))})
		for m := 2; m <= 9; m++ {
			if v := d + math.Log10(float64(m)); v <= max {
				ts = append(ts, plot.Tick{Value: v})
			}
		}
	}
	return ts
}

// fmtTick formats a decade of nanoseconds: 10ns, 1µs, 100ms.
func fmtTick(ns float64) string {
	switch {
	case ns >= 1e9:
		return fmt.Sprintf("%gs", ns/1e9)
	case ns >= 1e6:
		return fmt.Sprintf("%gms", ns/1e6)
	case ns >= 1e3:
		return fmt.Sprintf("%gµs", ns/1e3)
	}
	return fmt.Sprintf("%gns", ns)
}
