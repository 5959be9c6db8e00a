//! The console log of the programs built on this library: `HH:MM:SS.mmm <target> <message>`
//! lines (UTC) on stderr through the `log` crate. The `deimos` containerizer adds syslog
//! around the same line format; `deimos-executor` logs only here (its stderr is the sandbox's
//! `stderr` file).

use std::io::Write;

use log::{LevelFilter, Log, Metadata, Record};
use time::OffsetDateTime;

/// `HH:MM:SS.mmm <target> <message>` and a newline.
pub fn format_console_line(
    at: OffsetDateTime,
    target: &str,
    message: &std::fmt::Arguments<'_>,
) -> String {
    format!(
        "{:02}:{:02}:{:02}.{:03} {target} {message}\n",
        at.hour(),
        at.minute(),
        at.second(),
        at.millisecond()
    )
}

/// Writes each record at or above its level to stderr as one console line.
#[derive(Debug)]
pub struct ConsoleLogger {
    level: LevelFilter,
}

impl ConsoleLogger {
    /// A logger of the records at or above `level`.
    pub fn new(level: LevelFilter) -> Self {
        Self { level }
    }
}

impl Log for ConsoleLogger {
    fn enabled(&self, metadata: &Metadata<'_>) -> bool {
        metadata.level() <= self.level
    }

    fn log(&self, record: &Record<'_>) {
        if self.enabled(record.metadata()) {
            let line =
                format_console_line(OffsetDateTime::now_utc(), record.target(), record.args());
            // One write per line, so that concurrent lines do not interleave; a failed write
            // has nowhere to be reported.
            let _ = std::io::stderr().lock().write_all(line.as_bytes());
        }
    }

    fn flush(&self) {
        let _ = std::io::stderr().flush();
    }
}

/// Installs a [`ConsoleLogger`] at `level` as the process logger; fails when a logger is
/// already installed.
pub fn init(level: LevelFilter) -> Result<(), log::SetLoggerError> {
    log::set_boxed_logger(Box::new(ConsoleLogger::new(level)))?;
    log::set_max_level(level);
    Ok(())
}

#[cfg(test)]
mod tests {
    use log::Level;
    use time::macros::datetime;

    use super::*;

    #[test]
    fn console_line_has_utc_millisecond_time_target_and_message() {
        let at = datetime!(2024-05-06 07:08:09.012 UTC);
        assert_eq!(
            format_console_line(at, "deimos::runtime", &format_args!("started {}", 3)),
            "07:08:09.012 deimos::runtime started 3\n"
        );
    }

    #[test]
    fn console_logger_passes_only_its_level_and_above() {
        let logger = ConsoleLogger::new(LevelFilter::Info);
        let at = |level| Metadata::builder().level(level).build();
        assert!(logger.enabled(&at(Level::Error)) && logger.enabled(&at(Level::Info)));
        assert!(!logger.enabled(&at(Level::Debug)));
    }
}
