//! Percentiles of latency samples and the result table.

use std::fmt::Write as _;
use std::time::Duration;

/// The `q`-quantile (0 < q ≤ 1) of `sorted` by the nearest-rank method: the smallest sample
/// that is ≥ a fraction `q` of all samples. `None` for no samples.
pub(crate) fn nearest_rank(sorted: &[Duration], q: f64) -> Option<Duration> {
    if sorted.is_empty() {
        return None;
    }
    let rank = ((q * sorted.len() as f64).ceil() as usize).clamp(1, sorted.len());
    Some(sorted[rank - 1])
}

/// The median (mean of the two middle samples for an even count); `None` for no samples.
pub(crate) fn median(samples: &[Duration]) -> Option<Duration> {
    let mut sorted = samples.to_vec();
    sorted.sort_unstable();
    let n = sorted.len();
    match n {
        0 => None,
        _ if n % 2 == 1 => Some(sorted[n / 2]),
        _ => Some((sorted[n / 2 - 1] + sorted[n / 2]) / 2),
    }
}

/// p50 and p99 (nearest rank) of `samples`.
pub(crate) fn p50_p99(samples: &[Duration]) -> (Option<Duration>, Option<Duration>) {
    let mut sorted = samples.to_vec();
    sorted.sort_unstable();
    (nearest_rank(&sorted, 0.50), nearest_rank(&sorted, 0.99))
}

/// What a row's value is compared with.
#[derive(Debug, Clone, Copy, PartialEq)]
pub(crate) enum Target {
    /// The value must be at least this.
    AtLeast(f64),
    /// The value must be at most this.
    AtMost(f64),
    /// The value must be exactly this (counts).
    Exactly(f64),
    /// For information.
    None,
}

/// One line of the result table.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct Row {
    /// What was measured.
    pub(crate) name: String,
    /// Samples, requests or items behind the value.
    pub(crate) runs: u64,
    /// The value compared with the target.
    pub(crate) value: f64,
    /// Its unit (`/s`, `ms`, `MiB`, `x`, `tasks`).
    pub(crate) unit: &'static str,
    /// Latency percentiles, where they apply.
    pub(crate) p50: Option<Duration>,
    /// 99th percentile (nearest rank).
    pub(crate) p99: Option<Duration>,
    /// The target.
    pub(crate) target: Target,
}

impl Row {
    /// A row without percentiles.
    pub(crate) fn value(name: impl Into<String>, runs: u64, value: f64, unit: &'static str) -> Row {
        Row {
            name: name.into(),
            runs,
            value,
            unit,
            p50: None,
            p99: None,
            target: Target::None,
        }
    }

    /// The same row with a target.
    pub(crate) fn target(self, target: Target) -> Row {
        Row { target, ..self }
    }

    /// The same row with latency percentiles of `samples`.
    pub(crate) fn percentiles(self, samples: &[Duration]) -> Row {
        let (p50, p99) = p50_p99(samples);
        Row { p50, p99, ..self }
    }

    /// `Some(true)` when the target is met, `None` without target.
    pub(crate) fn passed(&self) -> Option<bool> {
        match self.target {
            Target::AtLeast(limit) => Some(self.value >= limit),
            Target::AtMost(limit) => Some(self.value <= limit),
            Target::Exactly(expected) => Some(self.value == expected),
            Target::None => None,
        }
    }
}

/// Milliseconds with two decimals.
pub(crate) fn ms(duration: Duration) -> String {
    format!("{:.2}", duration.as_secs_f64() * 1000.0)
}

fn number(value: f64) -> String {
    if value.fract() == 0.0 && value.abs() < 1e15 {
        format!("{value:.0}")
    } else if value.abs() >= 100.0 {
        format!("{value:.1}")
    } else {
        format!("{value:.3}")
    }
}

fn describe(target: Target, unit: &str) -> String {
    match target {
        Target::AtLeast(limit) => format!(">= {} {unit}", number(limit)),
        Target::AtMost(limit) => format!("<= {} {unit}", number(limit)),
        Target::Exactly(expected) => format!("= {}", number(expected)),
        Target::None => "-".to_owned(),
    }
}

/// The table of all rows, one line each.
pub(crate) fn render_table(rows: &[Row]) -> String {
    let mut out = String::new();
    let header = format!(
        "{:<52} {:>7} {:>16} {:>9} {:>9} {:>16} {:>6}",
        "benchmark", "runs", "value", "p50 ms", "p99 ms", "target", "result"
    );
    let _ = writeln!(out, "{header}\n{}", "-".repeat(header.len()));
    for row in rows {
        let verdict = match row.passed() {
            Some(true) => "PASS",
            Some(false) => "FAIL",
            None => "-",
        };
        let optional = |d: Option<Duration>| d.map_or_else(|| "-".to_owned(), ms);
        let _ = writeln!(
            out,
            "{:<52} {:>7} {:>16} {:>9} {:>9} {:>16} {verdict:>6}",
            row.name,
            row.runs,
            format!("{} {}", number(row.value), row.unit),
            optional(row.p50),
            optional(row.p99),
            describe(row.target, row.unit),
        );
    }
    out
}

/// Prints the table and notes of a run and exits: 0 when every target is met, 1 when one is
/// missed, 2 when a measurement could not be made.
pub(crate) fn report_and_exit<E: std::fmt::Display>(outcome: Result<(Vec<Row>, Vec<String>), E>) {
    match outcome {
        Ok((rows, notes)) => {
            println!("\n{}", render_table(&rows));
            for note in notes {
                println!("note: {note}");
            }
            let missed = rows.iter().filter(|r| r.passed() == Some(false)).count();
            if missed > 0 {
                println!("{missed} target(s) missed");
                std::process::exit(1);
            }
            println!("all targets met");
        }
        Err(error) => {
            eprintln!("bench: {error}");
            std::process::exit(2);
        }
    }
}
