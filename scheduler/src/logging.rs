//! Structured logs on stderr through `tracing`: human-readable text, or one JSON object per
//! line (`logformat: json`), at the configured `loglevel`.
//!
//! Records of the `log` crate (the `deimos` library and some dependencies log through it) are
//! bridged into the same output. Chatty HTTP and TLS libraries are held at `info` unless the
//! level is `trace`, so that `debug` shows this service's own detail.
//!
//! Callers: never log secret values (masked env, credentials, tokens); their types print a mask.

use tracing::Subscriber;
use tracing_subscriber::fmt::MakeWriter;
use tracing_subscriber::util::SubscriberInitExt;
use tracing_subscriber::EnvFilter;

use crate::config::{LogFormat, LogLevel};

/// Libraries whose debug output drowns ours.
const NOISY_TARGETS: &[&str] = &[
    "hyper",
    "hyper_util",
    "h2",
    "rustls",
    "reqwest",
    "tower",
    "bollard",
];

/// Logging could not be set up.
#[derive(Debug, thiserror::Error)]
pub enum LoggingError {
    /// A global subscriber or `log` logger is already installed.
    #[error("cannot install the eremetic logger: {reason}")]
    AlreadyInitialized {
        /// What the installer reported.
        reason: String,
    },
    /// The filter could not be built (a bug in [`filter_directives`]).
    #[error("invalid log filter {directives:?}: {reason}")]
    Filter {
        /// The directives.
        directives: String,
        /// The parser's message.
        reason: String,
    },
}

/// Installs the process-wide logger writing to stderr. Call once, early; a second call fails
/// with [`LoggingError::AlreadyInitialized`].
pub fn init(level: LogLevel, format: LogFormat) -> Result<(), LoggingError> {
    install(subscriber(level, format, std::io::stderr)?)
}

fn install(subscriber: Box<dyn Subscriber + Send + Sync>) -> Result<(), LoggingError> {
    // With tracing-subscriber's `tracing-log` feature this also installs the `log` bridge.
    subscriber
        .try_init()
        .map_err(|error| LoggingError::AlreadyInitialized {
            reason: error.to_string(),
        })
}

/// The filter for `level`: everything at `level`, noisy libraries at most `info`.
pub fn filter_directives(level: LogLevel) -> String {
    // The Docker client logs request bodies (with the container environment, masked values
    // included) at debug and trace: those libraries stay at info whatever the level.
    let mut directives = level.as_str().to_owned();
    if matches!(level, LogLevel::Debug | LogLevel::Trace) {
        for target in NOISY_TARGETS {
            directives.push_str(&format!(",{target}=info"));
        }
    }
    directives
}

/// A subscriber writing to `writer` in `format` at `level`.
fn subscriber<W>(
    level: LogLevel,
    format: LogFormat,
    writer: W,
) -> Result<Box<dyn Subscriber + Send + Sync>, LoggingError>
where
    W: for<'w> MakeWriter<'w> + Send + Sync + 'static,
{
    let directives = filter_directives(level);
    let filter = EnvFilter::try_new(&directives).map_err(|error| LoggingError::Filter {
        directives: directives.clone(),
        reason: error.to_string(),
    })?;
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(writer);
    Ok(match format {
        LogFormat::Text => Box::new(builder.with_ansi(false).finish()),
        LogFormat::Json => Box::new(
            builder
                .json()
                .flatten_event(true)
                .with_current_span(true)
                .finish(),
        ),
    })
}

#[cfg(test)]
mod tests {
    use std::io::Write;
    use std::sync::{Arc, Mutex};

    use super::*;

    #[derive(Clone, Default)]
    struct Buffer(Arc<Mutex<Vec<u8>>>);

    impl Buffer {
        fn text(&self) -> String {
            String::from_utf8(self.0.lock().unwrap().clone()).unwrap()
        }
    }

    impl Write for Buffer {
        fn write(&mut self, bytes: &[u8]) -> std::io::Result<usize> {
            self.0.lock().unwrap().extend_from_slice(bytes);
            Ok(bytes.len())
        }
        fn flush(&mut self) -> std::io::Result<()> {
            Ok(())
        }
    }

    impl<'w> MakeWriter<'w> for Buffer {
        type Writer = Buffer;
        fn make_writer(&'w self) -> Self::Writer {
            self.clone()
        }
    }

    #[test]
    fn json_format_writes_one_object_per_line_with_fields() {
        let buffer = Buffer::default();
        let subscriber = subscriber(LogLevel::Info, LogFormat::Json, buffer.clone()).unwrap();
        tracing::subscriber::with_default(subscriber, || {
            tracing::info!(task_id = "eremetic-task.1", "task queued");
            tracing::warn!("second");
        });
        let text = buffer.text();
        let lines: Vec<_> = text.lines().collect();
        assert_eq!(lines.len(), 2, "{text}");
        let first: serde_json::Value = serde_json::from_str(lines[0]).unwrap();
        assert_eq!(first["message"], "task queued");
        assert_eq!(first["task_id"], "eremetic-task.1");
        assert_eq!(first["level"], "INFO");
        serde_json::from_str::<serde_json::Value>(lines[1]).unwrap();
    }

    #[test]
    fn level_filters_out_more_verbose_records() {
        let buffer = Buffer::default();
        let subscriber = subscriber(LogLevel::Warn, LogFormat::Text, buffer.clone()).unwrap();
        tracing::subscriber::with_default(subscriber, || {
            tracing::info!("hidden");
            tracing::error!("shown");
        });
        let text = buffer.text();
        assert!(!text.contains("hidden") && text.contains("shown"), "{text}");
    }

    #[test]
    fn debug_and_trace_hold_libraries_that_log_request_bodies_at_info() {
        let debug = filter_directives(LogLevel::Debug);
        assert!(
            debug.starts_with("debug,") && debug.contains("hyper=info"),
            "{debug}"
        );
        let trace = filter_directives(LogLevel::Trace);
        assert!(
            trace.starts_with("trace,") && trace.contains("bollard=info"),
            "{trace}"
        );
        for level in [
            LogLevel::Trace,
            LogLevel::Debug,
            LogLevel::Info,
            LogLevel::Warn,
            LogLevel::Error,
        ] {
            EnvFilter::try_new(filter_directives(level)).unwrap();
        }
    }

    /// The only test that installs the global logger (it can be installed once per process).
    #[test]
    fn log_crate_records_reach_the_output_and_a_second_init_fails() {
        let buffer = Buffer::default();
        install(subscriber(LogLevel::Info, LogFormat::Json, buffer.clone()).unwrap()).unwrap();
        log::warn!(target: "deimos_runtime::runtime", "bridged from the log crate");
        let text = buffer.text();
        let line = text
            .lines()
            .find(|line| line.contains("bridged from the log crate"))
            .unwrap_or_else(|| panic!("log record missing: {text}"));
        let record: serde_json::Value = serde_json::from_str(line).unwrap();
        assert_eq!(record["level"], "WARN");
        let error = init(LogLevel::Info, LogFormat::Text).unwrap_err();
        assert!(
            matches!(error, LoggingError::AlreadyInitialized { .. }),
            "{error}"
        );
    }
}
