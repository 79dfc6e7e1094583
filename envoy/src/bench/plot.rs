//! The report's bar charts as PNG, drawn by hand: a pixel canvas, rectangles, and text from the public-domain
//! 8x8 bitmap font of the `font8x8` crate, encoded by the `png` crate. No system font, no TrueType rasterizer:
//! a fresh CI machine draws the same picture (plotters' text needs a font file the machine may not have).

use super::report::{p99_ratio, throughput_ratio, Spread};
use super::setups::Variant;
use super::workloads::Workload;
use super::Results;
use font8x8::{UnicodeFonts, BASIC_FONTS};
use std::path::Path;

type Rgb = [u8; 3];

const WHITE: Rgb = [255, 255, 255];
const BLACK: Rgb = [30, 30, 30];
const GRID: Rgb = [225, 225, 225];
const REF: Rgb = [200, 60, 60];
const TARGET: Rgb = [60, 150, 60];

/// Colours of the three main setups: Envoy alone, no-op wasm, heartbeat.
const MAIN_COLOURS: [Rgb; 3] = [[150, 150, 150], [90, 140, 210], [235, 140, 40]];

pub struct Canvas {
    w: usize,
    h: usize,
    px: Vec<Rgb>,
}

impl Canvas {
    pub fn new(w: usize, h: usize) -> Canvas {
        Canvas { w, h, px: vec![WHITE; w * h] }
    }

    pub fn rect(&mut self, x0: i64, y0: i64, x1: i64, y1: i64, c: Rgb) {
        let (x0, x1) = (x0.min(x1).max(0) as usize, (x0.max(x1).max(0) as usize).min(self.w));
        let (y0, y1) = (y0.min(y1).max(0) as usize, (y0.max(y1).max(0) as usize).min(self.h));
        for y in y0..y1 {
            for x in x0..x1 {
                self.px[y * self.w + x] = c;
            }
        }
    }

    /// Text with its top-left corner at (x, y), each font pixel `scale` x `scale`.
    pub fn text(&mut self, x: i64, y: i64, s: &str, scale: i64, c: Rgb) {
        for (i, ch) in s.chars().enumerate() {
            let Some(glyph) = BASIC_FONTS.get(ch) else { continue };
            for (row, bits) in glyph.iter().enumerate() {
                for col in 0..8 {
                    if bits & (1 << col) != 0 {
                        let px = x + (i as i64 * 8 + col) * scale;
                        let py = y + row as i64 * scale;
                        self.rect(px, py, px + scale, py + scale, c);
                    }
                }
            }
        }
    }

    pub fn text_width(s: &str, scale: i64) -> i64 {
        s.chars().count() as i64 * 8 * scale
    }

    pub fn save(&self, path: &Path) -> anyhow::Result<()> {
        if let Some(dir) = path.parent() {
            std::fs::create_dir_all(dir)?;
        }
        let file = std::io::BufWriter::new(std::fs::File::create(path)?);
        let mut enc = png::Encoder::new(file, self.w as u32, self.h as u32);
        enc.set_color(png::ColorType::Rgb);
        enc.set_depth(png::BitDepth::Eight);
        let mut writer = enc.write_header()?;
        let data: Vec<u8> = self.px.iter().flatten().copied().collect();
        writer.write_image_data(&data)?;
        Ok(())
    }
}

/// One group of bars (a workload): a value with its spread per series.
pub struct Group {
    pub label: String,
    pub bars: Vec<Option<Spread>>,
}

/// A bar panel in the rectangle (x, y, w, h): bars from 0 with min–max whiskers, a red reference line at 1.0
/// (the no-op filter) and a green dashed line at `target`.
pub fn panel(
    c: &mut Canvas,
    area: (i64, i64, i64, i64),
    title: &str,
    groups: &[Group],
    colours: &[Rgb],
    target: Option<f64>,
) {
    let (x, y, w, h) = area;
    c.text(x, y, title, 2, BLACK);
    let top = y + 30;
    let left = x + 60;
    let bottom = y + h - 30;
    let right = x + w;
    let max = groups.iter().flat_map(|g| g.bars.iter().flatten().map(|s| s.max)).fold(1.2f64, f64::max);
    let step = if max > 3.0 {
        1.0
    } else if max > 1.6 {
        0.5
    } else {
        0.2
    };
    let ymax = (max / step).ceil() * step;
    let to_y = |v: f64| bottom - ((v / ymax) * (bottom - top) as f64).round() as i64;
    // Grid and y labels.
    let mut t = 0.0;
    while t <= ymax + 1e-9 {
        let yy = to_y(t);
        c.rect(left, yy, right, yy + 1, GRID);
        let label = format!("{t:.1}");
        c.text(left - 8 - Canvas::text_width(&label, 2), yy - 8, &label, 2, BLACK);
        t += step;
    }
    c.rect(left, top, left + 2, bottom, BLACK);
    c.rect(left, bottom, right, bottom + 2, BLACK);
    let gw = (right - left) / groups.len().max(1) as i64;
    let n = colours.len().max(1) as i64;
    let bw = ((gw - 24) / n).max(2);
    for (gi, g) in groups.iter().enumerate() {
        let gx = left + gi as i64 * gw + 12;
        for (bi, bar) in g.bars.iter().enumerate() {
            let Some(s) = bar else { continue };
            let bx = gx + bi as i64 * bw;
            c.rect(bx + 1, to_y(s.median), bx + bw - 1, bottom, colours[bi % colours.len()]);
            // Whisker: min to max over the rounds.
            let mid = bx + bw / 2;
            c.rect(mid - 1, to_y(s.max), mid + 1, to_y(s.min) + 1, BLACK);
            c.rect(mid - bw / 4, to_y(s.max), mid + bw / 4 + 1, to_y(s.max) + 2, BLACK);
            c.rect(mid - bw / 4, to_y(s.min) - 1, mid + bw / 4 + 1, to_y(s.min) + 1, BLACK);
        }
        let lw = Canvas::text_width(&g.label, 2);
        c.text(left + gi as i64 * gw + (gw - lw) / 2, bottom + 10, &g.label, 2, BLACK);
    }
    // The no-op filter (1.0) and the target, drawn over the bars.
    let y1 = to_y(1.0);
    c.rect(left, y1, right, y1 + 2, REF);
    if let Some(t) = target {
        let yt = to_y(t);
        let mut xx = left;
        while xx < right {
            c.rect(xx, yt, (xx + 10).min(right), yt + 2, TARGET);
            xx += 18;
        }
    }
}

fn legend(c: &mut Canvas, x: i64, y: i64, items: &[(&str, Rgb)]) {
    let mut xx = x;
    for (label, colour) in items {
        c.rect(xx, y, xx + 16, y + 16, *colour);
        c.text(xx + 22, y, label, 2, BLACK);
        xx += 22 + Canvas::text_width(label, 2) + 30;
    }
}

fn main_groups(r: &Results, f: fn(&Results, Workload, Variant) -> Option<Spread>, only_with: bool) -> Vec<Group> {
    r.workloads
        .iter()
        .filter_map(|w| Workload::from_name(&w.workload))
        .map(|w| Group { label: w.short().into(), bars: Variant::MAIN.iter().map(|&v| f(r, w, v)).collect() })
        .filter(|g| !only_with || g.bars.iter().any(|b| b.is_some()))
        .collect()
}

/// Throughput (top) and p99 (bottom) of Envoy alone, the no-op filter and heartbeat, relative to the no-op
/// filter, per workload.
pub fn throughput(r: &Results, path: &Path) -> anyhow::Result<()> {
    let mut c = Canvas::new(1200, 820);
    c.text(20, 14, "heartbeat vs no-op proxy-wasm filter, Envoy 1.40, 1 worker", 2, BLACK);
    legend(
        &mut c,
        20,
        44,
        &[("Envoy alone", MAIN_COLOURS[0]), ("no-op wasm", MAIN_COLOURS[1]), ("heartbeat", MAIN_COLOURS[2])],
    );
    c.text(20, 70, "bars: median of rounds; whiskers: min-max; red: no-op = 1.0; green: target", 1, BLACK);
    let tp = main_groups(r, throughput_ratio, false);
    panel(&mut c, (20, 100, 1160, 360), "throughput / no-op (higher is better)", &tp, &MAIN_COLOURS, Some(0.95));
    let lat = main_groups(r, p99_ratio, true);
    if !lat.is_empty() {
        panel(&mut c, (20, 470, 1160, 340), "p99 latency / no-op (lower is better)", &lat, &MAIN_COLOURS, Some(1.10));
    }
    c.save(path)
}

/// Throughput of each ablation step relative to the no-op filter, per Redis workload.
pub fn ablation(r: &Results, path: &Path) -> anyhow::Result<()> {
    let variants = Variant::ABLATION;
    let colours: Vec<Rgb> = (0..variants.len())
        .map(|i| {
            let t = i as f64 / (variants.len() - 1) as f64;
            [(60.0 + 190.0 * t) as u8, (120.0 + 40.0 * (1.0 - t)) as u8, (220.0 - 180.0 * t) as u8]
        })
        .collect();
    let mut c = Canvas::new(1200, 560);
    c.text(20, 14, "ablation: throughput / no-op after each step", 2, BLACK);
    let items: Vec<(&str, Rgb)> = variants.iter().zip(&colours).map(|(v, c)| (v.name(), *c)).collect();
    legend(&mut c, 20, 44, &items[..5]);
    legend(&mut c, 20, 68, &items[5..]);
    let groups: Vec<Group> = r
        .workloads
        .iter()
        .filter_map(|w| Workload::from_name(&w.workload))
        .filter(|w| w.ablated())
        .map(|w| Group { label: w.short().into(), bars: variants.iter().map(|&v| throughput_ratio(r, w, v)).collect() })
        .collect();
    panel(&mut c, (20, 100, 1160, 440), "throughput / no-op, each bar adds one step", &groups, &colours, Some(0.95));
    c.save(path)
}
