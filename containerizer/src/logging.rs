//! Logging to stderr and/or syslog through the `log` crate, levels from `[log]`.
//!
//! Console lines are `HH:MM:SS.mmm <target> <message>` (UTC) on **stderr** (Deimos wrote its
//! console log to stderr too, but chose the defaults by looking at stdout; we look at stderr,
//! because stdout carries the protobuf replies to the agent). Syslog messages go to the local
//! syslog socket (`/dev/log`, else `/var/run/syslog`) with facility `daemon` and process name
//! `deimos`, as `<target> <message>`.
//!
//! Defaults when `[log]` leaves a level unset: console DEBUG when stderr is a terminal, else
//! off; syslog off when stderr is a terminal, else INFO. When syslog is wanted but cannot be
//! reached, messages go to the console instead at the more verbose of the two levels (no
//! crash, unlike Deimos); both off is simply silent.
//!
//! Callers: never log the VALUES of environment variables (they carry secrets), only names.

use std::io::{IsTerminal, Write};
use std::sync::Mutex;

use log::{Level, LevelFilter, Log, Metadata, Record};
use time::OffsetDateTime;

use deimos_runtime::console::format_console_line;

use crate::config::LogConfig;

/// Logging could not be set up.
#[derive(Debug, thiserror::Error)]
pub enum LoggingError {
    /// A logger is already installed for this process (`init` was called before).
    #[error("cannot install the deimos logger: a logger is already installed in this process")]
    AlreadyInitialized,
}

/// The destinations in effect after [`init`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ActiveOutputs {
    /// Level of the stderr output (`Off` when disabled).
    pub console: LevelFilter,
    /// Level of the syslog output (`Off` when disabled or unreachable).
    pub syslog: LevelFilter,
    /// Syslog was wanted but could not be reached; its messages go to the console.
    pub syslog_fell_back_to_console: bool,
}

/// Installs the process logger according to `config`. Call once, early; a second call returns
/// [`LoggingError::AlreadyInitialized`] and changes nothing.
pub fn init(config: &LogConfig) -> Result<ActiveOutputs, LoggingError> {
    let (console, syslog) = config.resolve(std::io::stderr().is_terminal());
    let mut syslog_sink: Option<Box<dyn SyslogSink>> = None;
    if syslog.to_level_filter() != LevelFilter::Off {
        syslog_sink = LocalSyslog::connect().map(|sink| Box::new(sink) as Box<dyn SyslogSink>);
    }
    let outputs = plan_outputs(
        console.to_level_filter(),
        syslog.to_level_filter(),
        syslog_sink.is_some(),
    );
    let logger = DeimosLogger::new(outputs, Box::new(std::io::stderr()), syslog_sink);
    log::set_boxed_logger(Box::new(logger)).map_err(|_| LoggingError::AlreadyInitialized)?;
    log::set_max_level(outputs.console.max(outputs.syslog));
    Ok(outputs)
}

/// Decides the levels in effect: when syslog is wanted but unavailable, the console takes
/// over at the more verbose of both levels.
fn plan_outputs(
    console: LevelFilter,
    syslog: LevelFilter,
    syslog_available: bool,
) -> ActiveOutputs {
    if syslog == LevelFilter::Off || syslog_available {
        return ActiveOutputs {
            console,
            syslog,
            syslog_fell_back_to_console: false,
        };
    }
    ActiveOutputs {
        console: console.max(syslog),
        syslog: LevelFilter::Off,
        syslog_fell_back_to_console: true,
    }
}

/// Where syslog messages go (the local syslog socket, or a recorder in tests).
trait SyslogSink: Send {
    /// Sends one message; failures are ignored by the caller (a logger cannot report them).
    fn send(&mut self, level: Level, message: &str);
}

type SyslogLogger = syslog::Logger<syslog::LoggerBackend, syslog::Formatter3164>;

/// The local syslog daemon, reconnected once when a send fails (e.g. after a syslog restart).
struct LocalSyslog {
    logger: SyslogLogger,
}

impl LocalSyslog {
    fn formatter() -> syslog::Formatter3164 {
        syslog::Formatter3164 {
            facility: syslog::Facility::LOG_DAEMON,
            hostname: None,
            process: "deimos".to_owned(),
            pid: std::process::id(),
        }
    }

    fn connect() -> Option<Self> {
        syslog::unix(Self::formatter())
            .ok()
            .map(|logger| Self { logger })
    }

    fn send_once(logger: &mut SyslogLogger, level: Level, message: &str) -> syslog::Result<()> {
        match level {
            Level::Error => logger.err(message),
            Level::Warn => logger.warning(message),
            Level::Info => logger.info(message),
            Level::Debug | Level::Trace => logger.debug(message),
        }
    }
}

impl SyslogSink for LocalSyslog {
    fn send(&mut self, level: Level, message: &str) {
        if Self::send_once(&mut self.logger, level, message).is_ok() {
            return;
        }
        if let Some(fresh) = Self::connect() {
            self.logger = fresh.logger;
            // Dropped if it fails again: there is nowhere left to report it.
            let _ = Self::send_once(&mut self.logger, level, message);
        }
    }
}

struct DeimosLogger {
    outputs: ActiveOutputs,
    console: Mutex<Box<dyn Write + Send>>,
    syslog: Option<Mutex<Box<dyn SyslogSink>>>,
}

impl DeimosLogger {
    fn new(
        outputs: ActiveOutputs,
        console: Box<dyn Write + Send>,
        syslog: Option<Box<dyn SyslogSink>>,
    ) -> Self {
        let syslog = syslog
            .filter(|_| outputs.syslog != LevelFilter::Off)
            .map(Mutex::new);
        Self {
            outputs,
            console: Mutex::new(console),
            syslog,
        }
    }
}

impl Log for DeimosLogger {
    fn enabled(&self, metadata: &Metadata<'_>) -> bool {
        metadata.level() <= self.outputs.console
            || (self.syslog.is_some() && metadata.level() <= self.outputs.syslog)
    }

    fn log(&self, record: &Record<'_>) {
        if record.level() <= self.outputs.console {
            let line =
                format_console_line(OffsetDateTime::now_utc(), record.target(), record.args());
            // A poisoned lock only means another thread panicked mid-write; keep logging.
            let mut console = self
                .console
                .lock()
                .unwrap_or_else(|poisoned| poisoned.into_inner());
            let _ = console.write_all(line.as_bytes());
        }
        if let Some(syslog) = &self.syslog {
            if record.level() <= self.outputs.syslog {
                let message = format!("{} {}", record.target(), record.args());
                syslog
                    .lock()
                    .unwrap_or_else(|poisoned| poisoned.into_inner())
                    .send(record.level(), &message);
            }
        }
    }

    fn flush(&self) {
        let _ = self
            .console
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
            .flush();
    }
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use super::*;

    #[derive(Clone, Default)]
    struct Shared(Arc<Mutex<Vec<u8>>>);

    impl Write for Shared {
        fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
            self.0.lock().unwrap().extend_from_slice(buf);
            Ok(buf.len())
        }
        fn flush(&mut self) -> std::io::Result<()> {
            Ok(())
        }
    }

    #[derive(Clone, Default)]
    struct Recorder(Arc<Mutex<Vec<(Level, String)>>>);

    impl SyslogSink for Recorder {
        fn send(&mut self, level: Level, message: &str) {
            self.0.lock().unwrap().push((level, message.to_owned()));
        }
    }

    fn emit(logger: &DeimosLogger, level: Level, message: &str) {
        logger.log(
            &Record::builder()
                .level(level)
                .target("deimos::test")
                .args(format_args!("{message}"))
                .build(),
        );
    }

    #[test]
    fn unreachable_syslog_falls_back_to_console_at_the_more_verbose_level() {
        let planned = plan_outputs(LevelFilter::Off, LevelFilter::Info, false);
        assert_eq!(
            planned,
            ActiveOutputs {
                console: LevelFilter::Info,
                syslog: LevelFilter::Off,
                syslog_fell_back_to_console: true
            }
        );
        let planned = plan_outputs(LevelFilter::Debug, LevelFilter::Warn, false);
        assert_eq!(planned.console, LevelFilter::Debug);
    }

    #[test]
    fn reachable_or_disabled_syslog_keeps_levels() {
        let planned = plan_outputs(LevelFilter::Off, LevelFilter::Info, true);
        assert_eq!(
            planned,
            ActiveOutputs {
                console: LevelFilter::Off,
                syslog: LevelFilter::Info,
                syslog_fell_back_to_console: false
            }
        );
        let planned = plan_outputs(LevelFilter::Off, LevelFilter::Off, false);
        assert_eq!(
            planned,
            ActiveOutputs {
                console: LevelFilter::Off,
                syslog: LevelFilter::Off,
                syslog_fell_back_to_console: false
            }
        );
    }

    #[test]
    fn each_destination_filters_by_its_own_level() {
        let console = Shared::default();
        let syslog = Recorder::default();
        let outputs = plan_outputs(LevelFilter::Warn, LevelFilter::Debug, true);
        let logger = DeimosLogger::new(
            outputs,
            Box::new(console.clone()),
            Some(Box::new(syslog.clone())),
        );
        emit(&logger, Level::Debug, "detail");
        emit(&logger, Level::Error, "broken");
        emit(&logger, Level::Trace, "noise");
        let written = String::from_utf8(console.0.lock().unwrap().clone()).unwrap();
        assert_eq!(written.lines().count(), 1, "{written}");
        assert!(written.ends_with(" deimos::test broken\n"), "{written}");
        let sent = syslog.0.lock().unwrap().clone();
        assert_eq!(
            sent,
            [
                (Level::Debug, "deimos::test detail".to_owned()),
                (Level::Error, "deimos::test broken".to_owned())
            ]
        );
        assert!(!logger.enabled(&Metadata::builder().level(Level::Trace).build()));
    }

    #[test]
    fn both_destinations_off_is_silent() {
        let console = Shared::default();
        let logger = DeimosLogger::new(
            plan_outputs(LevelFilter::Off, LevelFilter::Off, false),
            Box::new(console.clone()),
            None,
        );
        emit(&logger, Level::Error, "x");
        assert!(console.0.lock().unwrap().is_empty());
        assert!(!logger.enabled(&Metadata::builder().level(Level::Error).build()));
    }
}
