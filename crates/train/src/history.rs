//! The record of a `fit` run (`keras/src/callbacks/history.py`): which epochs ran and every
//! epoch log value, keyed by log name in first-seen order (`history.history`), plus a PNG plot
//! of the training curves.
//!
//! The plot uses `plotters` with only its bitmap backend and the `ab_glyph` text renderer; the
//! font (DejaVu Sans, Bitstream Vera license, `assets/DejaVuSans-LICENSE.txt`) is embedded, so no
//! system library (fontconfig, freetype) is needed. The PNG file itself is written here (one
//! IDAT chunk through `flate2`), which keeps `image`/`png`/`jpeg-decoder` out of the build.

use crate::callbacks::{Callback, Logs, TrainContext};
use crate::error::{Error, Result};
use plotters::prelude::*;
use std::io::Write;
use std::path::Path;
use strata_format::json::Json;

/// What `fit` returns: `epoch` (0-based indices of the epochs run) and `history` (each log
/// name's values, one per epoch, names in first-seen order as Keras's dict keeps them).
#[derive(Clone, Debug, Default, PartialEq)]
pub struct History {
    /// The epochs run, 0-based (`history.epoch`).
    pub epoch: Vec<usize>,
    /// Each log name with its values (`history.history`).
    pub history: Vec<(String, Vec<f64>)>,
}

impl History {
    /// An empty history.
    pub fn new() -> History {
        History::default()
    }

    /// The values logged under `name` (`history.history[name]`).
    pub fn get(&self, name: &str) -> Option<&[f64]> {
        self.history.iter().find(|(k, _)| k == name).map(|(_, v)| v.as_slice())
    }

    /// Appends one epoch's logs (`on_epoch_end`).
    pub fn record(&mut self, epoch: usize, logs: &Logs) {
        self.epoch.push(epoch);
        for (k, v) in logs.iter() {
            match self.history.iter_mut().find(|(n, _)| n == k) {
                Some((_, vals)) => vals.push(v),
                None => self.history.push((k.to_string(), vec![v])),
            }
        }
    }

    /// `history.history` as the JSON object `json.dumps` writes: `{"loss": [0.5, 0.25], ...}`
    /// (non-finite values as `NaN`/`Infinity`, as Python's `json` does).
    pub fn to_json(&self) -> Json {
        Json::object(self.history.iter().map(|(k, v)| (k.clone(), Json::array(v.iter().map(|x| Json::from(*x))))))
    }

    /// The curves' families: each base name (`val_` removed) in first-seen order, with the names
    /// plotted in its panel (`loss` then `val_loss`).
    pub fn families(&self) -> Vec<(String, Vec<String>)> {
        let mut fams: Vec<(String, Vec<String>)> = Vec::new();
        for (k, _) in &self.history {
            let base = k.strip_prefix("val_").unwrap_or(k).to_string();
            match fams.iter_mut().find(|(b, _)| *b == base) {
                Some((_, names)) => names.push(k.clone()),
                None => fams.push((base, vec![k.clone()])),
            }
        }
        for (base, names) in &mut fams {
            // Training curve first, then validation.
            names.sort_by_key(|n| n != base);
        }
        fams
    }

    /// Draws the curves to a PNG file: one panel per family (`loss` with `val_loss`, each metric
    /// with its `val_` twin, `learning_rate` alone), two panels per row, x = 1-based epoch.
    /// Non-finite values are left out.
    pub fn plot_png(&self, path: impl AsRef<Path>, title: &str) -> Result<()> {
        let path = path.as_ref();
        let png = self.plot_png_bytes(title).map_err(|problem| Error::Plot { path: path.to_path_buf(), problem })?;
        let mut f = std::fs::File::create(path).map_err(|e| Error::io("creating the plot", path, e))?;
        f.write_all(&png).and_then(|_| f.flush()).map_err(|e| Error::io("writing the plot", path, e))
    }

    fn plot_png_bytes(&self, title: &str) -> std::result::Result<Vec<u8>, String> {
        register_font();
        let fams = self.families();
        if fams.is_empty() {
            return Err("the history is empty (no epoch was recorded)".into());
        }
        let cols = fams.len().min(2);
        let rows = fams.len().div_ceil(cols);
        let (pw, ph) = (560u32, 380u32);
        let (w, h) = (pw * cols as u32, ph * rows as u32 + 40);
        let mut buf = vec![0u8; (w * h * 3) as usize];
        {
            let root = BitMapBackend::with_buffer(&mut buf, (w, h)).into_drawing_area();
            root.fill(&WHITE).map_err(|e| e.to_string())?;
            let root = root.titled(title, (FONT, 24)).map_err(|e| e.to_string())?;
            let panels = root.split_evenly((rows, cols));
            let colors = [RGBColor(31, 119, 180), RGBColor(255, 127, 14), RGBColor(44, 160, 44), RGBColor(214, 39, 40)];
            for (area, (base, names)) in panels.iter().zip(&fams) {
                let series: Vec<(&str, Vec<(f64, f64)>)> = names
                    .iter()
                    .map(|n| {
                        let vals = self.get(n).unwrap_or(&[]);
                        let pts = self
                            .epoch
                            .iter()
                            .zip(vals)
                            .filter(|(_, v)| v.is_finite())
                            .map(|(e, v)| (*e as f64 + 1.0, *v))
                            .collect();
                        (n.as_str(), pts)
                    })
                    .collect();
                let all = series.iter().flat_map(|(_, p)| p.iter());
                let (mut x0, mut x1, mut y0, mut y1) = (f64::MAX, f64::MIN, f64::MAX, f64::MIN);
                for &(x, y) in all {
                    x0 = x0.min(x);
                    x1 = x1.max(x);
                    y0 = y0.min(y);
                    y1 = y1.max(y);
                }
                if x0 > x1 {
                    (x0, x1, y0, y1) = (1.0, 2.0, 0.0, 1.0);
                }
                if x1 - x0 < 1.0 {
                    x1 = x0 + 1.0;
                }
                let pad = if y1 > y0 { (y1 - y0) * 0.05 } else { y0.abs().max(1.0) * 0.05 };
                let mut chart = ChartBuilder::on(area)
                    .caption(base, (FONT, 18))
                    .margin(12)
                    .x_label_area_size(36)
                    .y_label_area_size(60)
                    .build_cartesian_2d(x0..x1, (y0 - pad)..(y1 + pad))
                    .map_err(|e| e.to_string())?;
                chart
                    .configure_mesh()
                    .x_desc("epoch")
                    .x_label_formatter(&|x| format!("{x:.0}"))
                    .label_style((FONT, 12))
                    .axis_desc_style((FONT, 14))
                    .draw()
                    .map_err(|e| e.to_string())?;
                for (i, (name, pts)) in series.into_iter().enumerate() {
                    let color = colors[i % colors.len()];
                    chart
                        .draw_series(LineSeries::new(pts, color.stroke_width(2)))
                        .map_err(|e| e.to_string())?
                        .label(name)
                        .legend(move |(x, y)| PathElement::new(vec![(x, y), (x + 20, y)], color.stroke_width(2)));
                }
                chart
                    .configure_series_labels()
                    .label_font((FONT, 13))
                    .background_style(WHITE.mix(0.8))
                    .border_style(BLACK)
                    .draw()
                    .map_err(|e| e.to_string())?;
            }
            root.present().map_err(|e| e.to_string())?;
        }
        encode_png(&buf, w, h).map_err(|e| e.to_string())
    }
}

const FONT: &str = "sans-serif";
static FONT_BYTES: &[u8] = include_bytes!("../assets/DejaVuSans.ttf");

fn register_font() {
    static ONCE: std::sync::Once = std::sync::Once::new();
    ONCE.call_once(|| {
        // The embedded font is a valid TrueType file; a failure would only make text blank.
        let _ = plotters::style::register_font(FONT, FontStyle::Normal, FONT_BYTES);
    });
}

/// An 8-bit RGB PNG: signature, IHDR, one zlib IDAT (filter 0 on every row), IEND.
fn encode_png(rgb: &[u8], w: u32, h: u32) -> std::io::Result<Vec<u8>> {
    let mut raw = Vec::with_capacity(rgb.len() + h as usize);
    for row in rgb.chunks_exact(w as usize * 3) {
        raw.push(0);
        raw.extend_from_slice(row);
    }
    let mut z = flate2::write::ZlibEncoder::new(Vec::new(), flate2::Compression::default());
    z.write_all(&raw)?;
    let idat = z.finish()?;
    let mut ihdr = Vec::with_capacity(13);
    ihdr.extend_from_slice(&w.to_be_bytes());
    ihdr.extend_from_slice(&h.to_be_bytes());
    ihdr.extend_from_slice(&[8, 2, 0, 0, 0]); // depth 8, RGB, deflate, adaptive filter, no interlace
    let mut out = b"\x89PNG\r\n\x1a\n".to_vec();
    for (kind, data) in [(b"IHDR", &ihdr[..]), (b"IDAT", &idat[..]), (b"IEND", &[][..])] {
        out.extend_from_slice(&(data.len() as u32).to_be_bytes());
        let start = out.len();
        out.extend_from_slice(kind);
        out.extend_from_slice(data);
        let crc = crc32fast::hash(&out[start..]);
        out.extend_from_slice(&crc.to_be_bytes());
    }
    Ok(out)
}

impl Callback for History {
    fn on_train_begin(&mut self, _ctx: &mut dyn TrainContext) -> Result<()> {
        // Keras resets `epoch` only; `history` keeps accumulating if the same object is reused.
        self.epoch.clear();
        Ok(())
    }
    fn on_epoch_end(&mut self, epoch: usize, logs: &mut Logs, _ctx: &mut dyn TrainContext) -> Result<()> {
        self.record(epoch, logs);
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sample() -> History {
        let mut h = History::new();
        for e in 0..5 {
            let x = e as f64;
            let logs: Logs = [
                ("loss", 1.0 / (x + 1.0)),
                ("accuracy", 0.5 + 0.1 * x),
                ("val_loss", if e == 2 { f64::NAN } else { 1.2 / (x + 1.0) }),
                ("val_accuracy", 0.45 + 0.1 * x),
                ("learning_rate", 0.01),
            ]
            .into_iter()
            .collect();
            h.record(e, &logs);
        }
        h
    }

    #[test]
    fn records_in_first_seen_order() {
        let h = sample();
        assert_eq!(h.epoch, vec![0, 1, 2, 3, 4]);
        assert_eq!(h.get("loss").map(|v| v.len()), Some(5));
        let fams = h.families();
        assert_eq!(fams[0], ("loss".to_string(), vec!["loss".to_string(), "val_loss".to_string()]));
        assert_eq!(fams.len(), 3);
        let json = h.to_json().to_string_python();
        assert!(json.starts_with("{\"loss\": [1.0, 0.5, "), "{json}");
        assert!(json.contains("NaN"), "{json}");
    }

    #[test]
    fn plot_is_a_nonblank_png() {
        let dir = std::env::temp_dir().join(format!("strata-history-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let path = dir.join("history.png");
        sample().plot_png(&path, "training").unwrap();
        let bytes = std::fs::read(&path).unwrap();
        assert_eq!(&bytes[..8], b"\x89PNG\r\n\x1a\n");
        assert_eq!(&bytes[12..16], b"IHDR");
        let w = u32::from_be_bytes(bytes[16..20].try_into().unwrap());
        let h = u32::from_be_bytes(bytes[20..24].try_into().unwrap());
        assert_eq!((w, h), (1120, 800));
        // Decode the one IDAT and count non-white pixels.
        let idat_len = u32::from_be_bytes(bytes[33..37].try_into().unwrap()) as usize;
        assert_eq!(&bytes[37..41], b"IDAT");
        let mut raw = Vec::new();
        std::io::Read::read_to_end(&mut flate2::read::ZlibDecoder::new(&bytes[41..41 + idat_len]), &mut raw).unwrap();
        assert_eq!(raw.len(), (w as usize * 3 + 1) * h as usize);
        let rows: Vec<&[u8]> = raw.chunks_exact(w as usize * 3 + 1).collect();
        let dark = rows.iter().flat_map(|r| r[1..].chunks_exact(3)).filter(|p| p.iter().all(|&c| c < 100)).count();
        let colored = rows.iter().flat_map(|r| r[1..].chunks_exact(3)).filter(|p| p[2] > 150 && p[0] < 80).count();
        assert!(dark > 2000, "text and axes are drawn ({dark} dark pixels)");
        assert!(colored > 200, "the blue training curves are drawn ({colored} pixels)");
        // The title text is drawn with the embedded font: dark pixels in the top 40 rows.
        let title_dark = rows[..40].iter().flat_map(|r| r[1..].chunks_exact(3)).filter(|p| p[0] < 100).count();
        assert!(title_dark > 50, "title drawn ({title_dark})");
        std::fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn empty_history_is_an_error() {
        let e = History::new().plot_png("/nonexistent/x.png", "t").unwrap_err();
        assert_eq!(
            e.to_string(),
            "plotting the training history to `/nonexistent/x.png`: the history is empty (no epoch was recorded)"
        );
    }
}
