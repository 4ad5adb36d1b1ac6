//! Rates over time: each row's download and upload rates of the last minute, kept as samples
//! and drawn as sparklines (as bmon, iftop and nload draw theirs). Pure: the times are the
//! readings' own, so tests give any they like.

use crate::view::Report;
use std::collections::{HashMap, VecDeque};

/// Seconds of history shown.
pub const WINDOW: f64 = 60.0;
/// Cells of a sparkline: 4 s each, so that the table stays near 120 columns.
pub const WIDTH: usize = 15;
/// The eight levels, lowest first. The lowest is a measured zero; blank is "not measured yet".
const LEVELS: [char; 8] = ['▁', '▂', '▃', '▄', '▅', '▆', '▇', '█'];

/// A rate measured over the time span `from..to` (seconds on the readings' clock).
#[derive(Debug, Clone, Copy, PartialEq)]
struct Sample {
    from: f64,
    to: f64,
    bps: f64,
}

/// One rate's samples of the last `WINDOW` seconds.
#[derive(Debug, Clone, Default)]
pub struct Series {
    samples: VecDeque<Sample>,
}

impl Series {
    /// Add the rate over `from..to`; samples wholly older than a window before `to` go.
    pub fn push(&mut self, from: f64, to: f64, bps: f64) {
        if to <= from {
            return;
        }
        self.samples.push_back(Sample { from, to, bps });
        while self.samples.front().is_some_and(|s| s.to <= to - WINDOW) {
            self.samples.pop_front();
        }
    }

    /// When the newest sample ends.
    fn last(&self) -> Option<f64> {
        self.samples.back().map(|s| s.to)
    }

    /// The last `WINDOW` seconds before `now` cut into `width` equal cells: in each, the mean
    /// rate over the part of it that was measured, `None` where nothing was.
    pub fn cells(&self, now: f64, width: usize) -> Vec<Option<f64>> {
        let cell = WINDOW / width as f64;
        (0..width)
            .map(|i| {
                let a = now - WINDOW + i as f64 * cell;
                let b = a + cell;
                let (mut sum, mut span) = (0.0, 0.0);
                for s in &self.samples {
                    let overlap = s.to.min(b) - s.from.max(a);
                    if overlap > 0.0 {
                        sum += s.bps * overlap;
                        span += overlap;
                    }
                }
                // Less than a millisecond of overlap is rounding at a cell's edge.
                (span > 1e-3).then(|| sum / span)
            })
            .collect()
    }
}

/// A sparkline of `cells` against `top` (the rate drawn as a full block): a measured zero is
/// the lowest block, any traffic at least the second, so that a trickle is not taken for
/// silence.
pub fn sparkline(cells: &[Option<f64>], top: f64) -> String {
    cells
        .iter()
        .map(|c| match *c {
            None => ' ',
            Some(v) if v <= 0.0 || top <= 0.0 => LEVELS[0],
            Some(v) => {
                let level = (v / top * 7.0).ceil().clamp(1.0, 7.0);
                LEVELS[level as usize]
            }
        })
        .collect()
}

/// The largest value among the cells of `series`, the scale they are drawn to.
pub fn peak<'a>(series: impl IntoIterator<Item = &'a [Option<f64>]>) -> f64 {
    series
        .into_iter()
        .flatten()
        .flatten()
        .fold(0.0, |m, &v| if v > m { v } else { m })
}

/// The history of every row, by its label.
#[derive(Debug, Default)]
pub struct History {
    rows: HashMap<String, (Series, Series)>,
}

impl History {
    /// The rates of report `r`, measured over `from..to`. Rows gone for a whole window are
    /// forgotten.
    pub fn record(&mut self, r: &Report, from: f64, to: f64) {
        for row in &r.rows {
            let (down, up) = self.rows.entry(row.label.clone()).or_default();
            down.push(from, to, row.down_bps);
            up.push(from, to, row.up_bps);
        }
        self.rows
            .retain(|_, (d, _)| d.last().is_some_and(|t| t > to - WINDOW));
    }

    /// Row `label`'s download and upload series.
    pub fn get(&self, label: &str) -> Option<&(Series, Series)> {
        self.rows.get(label)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::view::Row;

    #[test]
    fn levels() {
        let c = [
            None,
            Some(0.0),
            Some(1.0),
            Some(50.0),
            Some(99.0),
            Some(100.0),
            Some(250.0),
        ];
        assert_eq!(sparkline(&c, 100.0), " ▁▂▅███");
        // Eight steps up to the top, each in its own level.
        let c: Vec<Option<f64>> = (0..8)
            .map(|i| Some((f64::from(i) - 0.5).max(0.0) * 100.0 / 7.0))
            .collect();
        assert_eq!(sparkline(&c, 100.0), "▁▂▃▄▅▆▇█");
        // Nothing measured anywhere, or all zero: no division by zero.
        assert_eq!(sparkline(&[Some(0.0), None], 0.0), "▁ ");
        assert_eq!(sparkline(&[], 5.0), "");
    }

    #[test]
    fn cells_and_window() {
        let mut s = Series::default();
        // One reading a second for 90 s: the rate is the second's number, in kbit/s.
        for t in 0..90 {
            let t = f64::from(t);
            s.push(t, t + 1.0, t * 1000.0);
        }
        // The ring keeps only the last minute.
        assert_eq!(s.samples.len(), 60);
        assert_eq!(s.samples.front().unwrap().from, 30.0);
        let c = s.cells(90.0, 15);
        assert_eq!(c.len(), 15);
        // Cell 0 is 30..34: the mean of 30, 31, 32 and 33 kbit/s.
        assert_eq!(c[0], Some(31_500.0));
        assert_eq!(c[14], Some(87_500.0));
        // Sixty cells: one reading each.
        let c = s.cells(90.0, 60);
        assert_eq!((c[0], c[59]), (Some(30_000.0), Some(89_000.0)));
        // Thirty seconds on with no readings: the right half is unmeasured.
        let c = s.cells(120.0, 2);
        assert_eq!(c, [Some(74_500.0), None]);
        let line = sparkline(&s.cells(90.0, 15), peak([s.cells(90.0, 15).as_slice()]));
        assert_eq!(line.chars().count(), 15);
        assert!(line.ends_with('█') && line.starts_with('▄'), "{line}");
    }

    #[test]
    fn slow_readings_span_cells() {
        // One reading every 10 s at 1 Mbit/s: every 4 s cell since the first is covered.
        let mut s = Series::default();
        for k in 0..3 {
            let t = f64::from(k) * 10.0;
            s.push(t, t + 10.0, 1e6);
        }
        let c = s.cells(30.0, 15);
        assert!(c[..7].iter().all(Option::is_none), "{c:?}");
        assert!(c[8..].iter().all(|v| *v == Some(1e6)), "{c:?}");
        // A cell partly measured shows the measured part's mean.
        assert_eq!(c[7], Some(1e6));
        // A reading of no length is no reading.
        s.push(40.0, 40.0, 5.0);
        assert_eq!(s.samples.len(), 3);
    }

    #[test]
    fn rows_come_and_go() {
        let row = |label: &str, down| Row {
            label: label.into(),
            down_bps: down,
            ..Row::default()
        };
        let mut h = History::default();
        let r = Report {
            rows: vec![row("10.0.1.2", 8000.0), row("imq0:1:99", 0.0)],
            devices: Vec::new(),
        };
        h.record(&r, 0.0, 1.0);
        let only = Report {
            rows: vec![row("10.0.1.2", 16000.0)],
            devices: Vec::new(),
        };
        h.record(&only, 1.0, 2.0);
        let (d, u) = h.get("10.0.1.2").unwrap();
        assert_eq!(d.cells(2.0, 60)[58..], [Some(8000.0), Some(16000.0)]);
        assert_eq!(u.cells(2.0, 60)[59], Some(0.0));
        assert!(h.get("imq0:1:99").is_some());
        // A minute later the row that went away is forgotten, the other kept.
        h.record(&only, 61.0, 62.0);
        assert!(h.get("imq0:1:99").is_none());
        assert!(h.get("10.0.1.2").is_some());
        assert_eq!(peak(h.rows.values().map(|_| &[Some(3.0), None][..])), 3.0);
    }
}
