//! Summaries of timing samples and the result table.

use std::fmt::Write as _;
use std::time::Duration;

/// Median, 90th percentile (nearest rank), minimum and maximum of a set of samples.
#[derive(Debug, Clone, Copy, PartialEq)]
pub(crate) struct Summary {
    /// Number of samples.
    pub(crate) runs: usize,
    /// The median (mean of the two middle samples for an even count).
    pub(crate) median: Duration,
    /// The smallest sample that is ≥ 90 % of all samples (nearest-rank method).
    pub(crate) p90: Duration,
    /// The fastest sample.
    pub(crate) min: Duration,
    /// The slowest sample.
    pub(crate) max: Duration,
}

impl Summary {
    /// Summarises `samples`; `None` when there are none.
    pub(crate) fn of(samples: &[Duration]) -> Option<Summary> {
        let mut sorted = samples.to_vec();
        sorted.sort_unstable();
        let n = sorted.len();
        let (first, last) = (*sorted.first()?, *sorted.last()?);
        let median = if n % 2 == 1 {
            sorted[n / 2]
        } else {
            (sorted[n / 2 - 1] + sorted[n / 2]) / 2
        };
        // Nearest rank: the ceil(0.9 n)-th smallest sample (1-based).
        let rank = (9 * n).div_ceil(10).max(1);
        Some(Summary {
            runs: n,
            median,
            p90: sorted[rank - 1],
            min: first,
            max: last,
        })
    }
}

/// What a row is compared with.
#[derive(Debug, Clone, Copy, PartialEq)]
pub(crate) enum Target {
    /// The median must not exceed this.
    MedianAtMost(Duration),
    /// A ratio of medians (this row's median over the reference row's) must not exceed this.
    RatioAtMost(f64),
    /// No target: for information.
    None,
}

/// One line of the result table.
#[derive(Debug, Clone, PartialEq)]
pub(crate) enum Row {
    /// Timings of one command.
    Timing {
        /// What was measured.
        name: String,
        /// The samples' summary.
        summary: Summary,
        /// The target of the median.
        target: Target,
    },
    /// A ratio of two medians.
    Ratio {
        /// What was compared.
        name: String,
        /// Pairs measured.
        runs: usize,
        /// The ratio.
        value: f64,
        /// The target.
        target: Target,
    },
}

impl Row {
    /// `Some(true)` when the target is met, `None` without target.
    pub(crate) fn passed(&self) -> Option<bool> {
        match self {
            Row::Timing {
                summary, target, ..
            } => match target {
                Target::MedianAtMost(limit) => Some(summary.median <= *limit),
                _ => None,
            },
            Row::Ratio { value, target, .. } => match target {
                Target::RatioAtMost(limit) => Some(*value <= *limit),
                _ => None,
            },
        }
    }
}

/// Formats a duration in milliseconds with three decimals.
pub(crate) fn ms(duration: Duration) -> String {
    format!("{:.3}", duration.as_secs_f64() * 1000.0)
}

/// The table of all rows, one line each, times in milliseconds.
pub(crate) fn render_table(rows: &[Row]) -> String {
    let mut out = String::new();
    let header = format!(
        "{:<44} {:>5} {:>11} {:>11} {:>11} {:>11} {:>12} {:>6}",
        "benchmark", "runs", "median ms", "p90 ms", "min ms", "max ms", "target", "result"
    );
    let _ = writeln!(out, "{header}\n{}", "-".repeat(header.len()));
    for row in rows {
        let verdict = match row.passed() {
            Some(true) => "PASS",
            Some(false) => "FAIL",
            None => "-",
        };
        let line = match row {
            Row::Timing {
                name,
                summary,
                target,
            } => format!(
                "{name:<44} {:>5} {:>11} {:>11} {:>11} {:>11} {:>12} {verdict:>6}",
                summary.runs,
                ms(summary.median),
                ms(summary.p90),
                ms(summary.min),
                ms(summary.max),
                describe(target),
            ),
            Row::Ratio {
                name,
                runs,
                value,
                target,
            } => format!(
                "{name:<44} {runs:>5} {:>11} {:>11} {:>11} {:>11} {:>12} {verdict:>6}",
                format!("{value:.3}"),
                "-",
                "-",
                "-",
                describe(target),
            ),
        };
        let _ = writeln!(out, "{line}");
    }
    out
}

fn describe(target: &Target) -> String {
    match target {
        Target::MedianAtMost(limit) => format!("<= {} ms", limit.as_millis()),
        Target::RatioAtMost(limit) => format!("<= {limit:.2}"),
        Target::None => "-".to_owned(),
    }
}
