//! Charts written as PNG and SVG side by side: line charts (accuracy over time or bytes,
//! sweep figures), bar charts (staleness) and client timelines.

use std::ops::Range;
use std::path::{Path, PathBuf};
use std::sync::Once;

use plotters::coord::Shift;
use plotters::coord::ranged1d::{AsRangedCoord, ValueFormatter};
pub(crate) use plotters::prelude::SeriesLabelPosition;
use plotters::prelude::*;

/// Pixel size of every chart.
const SIZE: (u32, u32) = (960, 560);

/// The tab10 palette: distinct, colour-blind friendlier than primaries.
const PALETTE: [RGBColor; 10] = [
    RGBColor(31, 119, 180),
    RGBColor(255, 127, 14),
    RGBColor(44, 160, 44),
    RGBColor(214, 39, 40),
    RGBColor(148, 103, 189),
    RGBColor(140, 86, 75),
    RGBColor(227, 119, 194),
    RGBColor(127, 127, 127),
    RGBColor(188, 189, 34),
    RGBColor(23, 190, 207),
];

/// The `i`-th colour of the palette.
pub(crate) fn color(i: usize) -> RGBColor {
    PALETTE[i % PALETTE.len()]
}

/// Registers the bundled font once; charts draw text with it on any machine.
fn font() {
    static ONCE: Once = Once::new();
    ONCE.call_once(|| {
        let bytes = include_bytes!("../../assets/fonts/DejaVuSans.ttf");
        if plotters::style::register_font("sans-serif", FontStyle::Normal, bytes).is_err() {
            unreachable!("the bundled font is a valid TrueType file");
        }
    });
}

/// One named line of points.
#[derive(Clone, Debug)]
pub(crate) struct Series {
    /// The legend's entry.
    pub name: String,
    /// `(x, y)` points, in x order.
    pub points: Vec<(f64, f64)>,
}

/// A line chart: titles, axes and the series to draw.
pub(crate) struct LineChart<'a> {
    /// Above the chart.
    pub title: &'a str,
    /// Under the x axis.
    pub x_label: &'a str,
    /// Beside the y axis.
    pub y_label: &'a str,
    /// The lines.
    pub series: &'a [Series],
    /// A logarithmic x axis (for quantities swept over decades, such as bandwidth).
    pub x_log: bool,
    /// The y range; else the data's, padded.
    pub y_range: Option<Range<f64>>,
    /// Where the legend goes: where the lines are not.
    pub legend: SeriesLabelPosition,
}

/// Evaluates `$draw` once on a PNG and once on an SVG drawing area bound to `$root`,
/// writing `$stem.png` and `$stem.svg`; returns their paths.
macro_rules! render {
    ($stem:expr, |$root:ident| $draw:expr) => {{
        font();
        let png = $stem.with_extension("png");
        let svg = $stem.with_extension("svg");
        let mut pixels = vec![0u8; SIZE.0 as usize * SIZE.1 as usize * 3];
        {
            let $root = BitMapBackend::with_buffer(&mut pixels, SIZE).into_drawing_area();
            $draw
        }
        .map_err(std::io::Error::other)?;
        write_png(&png, pixels)?;
        {
            let $root = SVGBackend::new(&svg, SIZE).into_drawing_area();
            $draw
        }
        .map_err(std::io::Error::other)?;
        Ok(vec![png, svg])
    }};
}

/// Writes an RGB image of [`SIZE`] to `path` as a PNG.
fn write_png(path: &Path, pixels: Vec<u8>) -> std::io::Result<()> {
    let image = image::RgbImage::from_raw(SIZE.0, SIZE.1, pixels)
        .ok_or_else(|| std::io::Error::other("a chart's pixels do not fill its size"))?;
    image
        .save_with_format(path, image::ImageFormat::Png)
        .map_err(std::io::Error::other)
}

/// A tick label: no trailing zeros, at most two decimals (`100`, `2.5`, `0.25`).
fn tick(v: f64) -> String {
    let s = format!("{v:.2}");
    let s = s.trim_end_matches('0').trim_end_matches('.');
    if s == "-0" { "0".into() } else { s.into() }
}

/// What drawing a chart can fail with: the backend's error, kept as the source.
type Drawn = Result<(), Box<dyn std::error::Error + Send + Sync>>;

/// The range of `values` padded by 5% (or ±1 when they are all equal).
fn padded(values: impl Iterator<Item = f64>, from_zero: bool) -> Range<f64> {
    let (mut lo, mut hi) = values
        .filter(|v| v.is_finite())
        .fold((f64::INFINITY, f64::NEG_INFINITY), |(l, h), v| {
            (l.min(v), h.max(v))
        });
    if !lo.is_finite() {
        return 0.0..1.0;
    }
    if from_zero {
        lo = lo.min(0.0);
    }
    if hi - lo < 1e-12 {
        hi += 1.0;
        if !from_zero {
            lo -= 1.0;
        }
    }
    let pad = (hi - lo) * 0.05;
    (if from_zero && lo >= 0.0 { lo } else { lo - pad })..hi + pad
}

/// Draws a line chart to `stem.png` and `stem.svg`.
pub(crate) fn line_chart(stem: &Path, chart: &LineChart) -> std::io::Result<Vec<PathBuf>> {
    let xs = || {
        chart
            .series
            .iter()
            .flat_map(|s| s.points.iter().map(|p| p.0))
    };
    let y = chart.y_range.clone().unwrap_or_else(|| {
        let y = padded(
            chart
                .series
                .iter()
                .flat_map(|s| s.points.iter().map(|p| p.1)),
            true,
        );
        // Head room for a legend at the top, clear of the highest points.
        let top = matches!(
            chart.legend,
            SeriesLabelPosition::UpperLeft
                | SeriesLabelPosition::UpperMiddle
                | SeriesLabelPosition::UpperRight
        );
        let room = if top { (y.end - y.start) * 0.3 } else { 0.0 };
        y.start..y.end + room
    });
    if chart.x_log {
        let lo = xs().filter(|x| *x > 0.0).fold(f64::INFINITY, f64::min);
        let hi = xs().fold(0.0f64, f64::max);
        let (lo, hi) = if lo.is_finite() && hi > lo {
            (lo / 1.2, hi * 1.2)
        } else {
            (0.1, 10.0)
        };
        // Label the swept values themselves: a log axis alone labels only decades.
        let mut ticks: Vec<f64> = xs().filter(|x| *x > 0.0).collect();
        ticks.sort_by(f64::total_cmp);
        ticks.dedup();
        render!(stem, |root| draw_lines(
            root,
            chart,
            (lo..hi).log_scale().with_key_points(ticks.clone()),
            y.clone()
        ))
    } else {
        let x = padded(xs(), true);
        render!(stem, |root| draw_lines(root, chart, x.clone(), y.clone()))
    }
}

fn draw_lines<DB: DrawingBackend<ErrorType: 'static>, X>(
    root: DrawingArea<DB, Shift>,
    c: &LineChart,
    x: X,
    y: Range<f64>,
) -> Drawn
where
    X: AsRangedCoord<Value = f64>,
    X::CoordDescType: ValueFormatter<f64>,
{
    root.fill(&WHITE)?;
    let mut chart = ChartBuilder::on(&root)
        .caption(c.title, ("sans-serif", 22))
        .margin(16)
        .x_label_area_size(48)
        .y_label_area_size(72)
        .build_cartesian_2d(x, y)?;
    chart
        .configure_mesh()
        .x_desc(c.x_label)
        .y_desc(c.y_label)
        .x_labels(12)
        .x_label_formatter(&|v| tick(*v))
        .y_label_formatter(&|v| tick(*v))
        .label_style(("sans-serif", 14))
        .axis_desc_style(("sans-serif", 16))
        .light_line_style(WHITE.mix(0.0))
        .draw()?;
    for (i, s) in c.series.iter().enumerate() {
        let style = color(i).stroke_width(2);
        let points: Vec<(f64, f64)> = s
            .points
            .iter()
            .copied()
            .filter(|(x, y)| x.is_finite() && y.is_finite())
            .collect();
        chart
            .draw_series(LineSeries::new(points.clone(), style))?
            .label(s.name.as_str())
            .legend(move |(x, y)| {
                PathElement::new(vec![(x, y), (x + 18, y)], color(i).stroke_width(2))
            });
        chart.draw_series(points.iter().map(|&p| Circle::new(p, 3, color(i).filled())))?;
    }
    if c.series.len() > 1 || c.series.iter().any(|s| !s.name.is_empty()) {
        chart
            .configure_series_labels()
            .position(c.legend.clone())
            .background_style(WHITE.mix(0.85))
            .border_style(BLACK.mix(0.4))
            .label_font(("sans-serif", 14))
            .draw()?;
    }
    Ok(root.present()?)
}

/// Draws a bar chart of `counts` (bar `i` at x = `i`) to `stem.png` and `stem.svg`.
pub(crate) fn bar_chart(
    stem: &Path,
    title: &str,
    x_label: &str,
    y_label: &str,
    counts: &[u64],
) -> std::io::Result<Vec<PathBuf>> {
    render!(stem, |root| draw_bars(
        root, title, x_label, y_label, counts
    ))
}

fn draw_bars<DB: DrawingBackend<ErrorType: 'static>>(
    root: DrawingArea<DB, Shift>,
    title: &str,
    x_label: &str,
    y_label: &str,
    counts: &[u64],
) -> Drawn {
    root.fill(&WHITE)?;
    let top = counts.iter().copied().max().unwrap_or(0).max(1) as f64 * 1.08;
    let n = counts.len().max(1) as f64;
    let mut chart = ChartBuilder::on(&root)
        .caption(title, ("sans-serif", 22))
        .margin(16)
        .x_label_area_size(48)
        .y_label_area_size(72)
        .build_cartesian_2d(-0.5..n - 0.5, 0.0..top)?;
    chart
        .configure_mesh()
        .x_desc(x_label)
        .y_desc(y_label)
        .x_labels(counts.len().clamp(2, 20))
        .y_label_formatter(&|v| tick(*v))
        .x_label_formatter(&|v| {
            if (v - v.round()).abs() < 1e-9 {
                format!("{}", v.round() as i64)
            } else {
                String::new()
            }
        })
        .label_style(("sans-serif", 14))
        .axis_desc_style(("sans-serif", 16))
        .light_line_style(WHITE.mix(0.0))
        .draw()?;
    chart.draw_series(counts.iter().enumerate().map(|(i, &c)| {
        let x = i as f64;
        Rectangle::new([(x - 0.4, 0.0), (x + 0.4, c as f64)], color(0).filled())
    }))?;
    Ok(root.present()?)
}

/// One row of a timeline: a label and coloured intervals `(start, end, lane)` where
/// `lane` indexes [`Timeline::lanes`].
pub(crate) struct TimelineRow {
    /// The row's name.
    pub label: String,
    /// `(start, end, lane)` intervals.
    pub spans: Vec<(f64, f64, usize)>,
}

/// A Gantt-style chart: one row per client, one colour per activity.
pub(crate) struct Timeline<'a> {
    /// Above the chart.
    pub title: &'a str,
    /// Each activity's name and colour.
    pub lanes: &'a [(&'a str, RGBColor)],
    /// One row per client.
    pub rows: &'a [TimelineRow],
    /// Where the time axis ends.
    pub end: f64,
}

/// Draws a timeline to `stem.png` and `stem.svg`.
pub(crate) fn timeline(stem: &Path, t: &Timeline) -> std::io::Result<Vec<PathBuf>> {
    render!(stem, |root| draw_timeline(root, t))
}

fn draw_timeline<DB: DrawingBackend<ErrorType: 'static>>(
    root: DrawingArea<DB, Shift>,
    t: &Timeline,
) -> Drawn {
    root.fill(&WHITE)?;
    let n = t.rows.len().max(1);
    let mut chart = ChartBuilder::on(&root)
        .caption(t.title, ("sans-serif", 22))
        .margin(16)
        .x_label_area_size(48)
        .y_label_area_size(150)
        // A blank strip on the right holds the legend clear of the bars.
        .build_cartesian_2d(0.0..t.end.max(1e-6) * 1.2, 0.0..n as f64)?;
    let labels: Vec<String> = t.rows.iter().map(|r| r.label.clone()).collect();
    chart
        .configure_mesh()
        .x_desc("simulated time (s)")
        .x_label_formatter(&|v| tick(*v))
        .y_labels(n * 2 + 1)
        .y_label_formatter(&|v| {
            // Label each row at its middle.
            let mid = v - v.floor();
            let row = v.floor() as usize;
            if (mid - 0.5).abs() < 1e-6 && row < labels.len() {
                labels[n - 1 - row].clone()
            } else {
                String::new()
            }
        })
        .disable_y_mesh()
        .label_style(("sans-serif", 13))
        .axis_desc_style(("sans-serif", 16))
        .light_line_style(WHITE.mix(0.0))
        .draw()?;
    for (lane, (name, c)) in t.lanes.iter().enumerate() {
        let c = *c;
        let rects = t.rows.iter().enumerate().flat_map(|(i, row)| {
            let y = (n - 1 - i) as f64;
            row.spans
                .iter()
                .filter(move |s| s.2 == lane && s.1 > s.0)
                .map(move |&(a, b, _)| Rectangle::new([(a, y + 0.15), (b, y + 0.85)], c.filled()))
        });
        chart
            .draw_series(rects)?
            .label(*name)
            .legend(move |(x, y)| Rectangle::new([(x, y - 5), (x + 14, y + 5)], c.filled()));
    }
    chart
        .configure_series_labels()
        .position(SeriesLabelPosition::UpperRight)
        .background_style(WHITE.mix(0.9))
        .border_style(BLACK.mix(0.4))
        .label_font(("sans-serif", 14))
        .draw()?;
    Ok(root.present()?)
}
