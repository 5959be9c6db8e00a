//! `deimos.cfg`, as far as the programs built on this library share it: the INI reader
//! ([`ini`]), finding the file ([`read_first`]), the value syntax the sections share
//! ([`values`]) and the operator's sections that every launcher enforces (`[policy]` and
//! `[uris]`, [`operator`]).
//!
//! The `deimos` containerizer reads every section of the file with the same reader (its own
//! sections are its business); `deimos-executor` reads only [`OperatorConfig`].

pub mod ini;
pub mod operator;
pub mod values;

use std::io::ErrorKind;
use std::path::{Path, PathBuf};

pub use ini::{parse_ini, IniEntry, IniSection};
pub use operator::{
    load_operator_config, parse_operator_config, KeyProblem, OperatorConfig, PolicyConfig,
    UrisConfig,
};

/// Environment variable naming the configuration file explicitly.
pub const CONFIG_ENV_VAR: &str = "DEIMOS_CONFIG";

/// The system locations of Deimos' search path (`/etc/deimos.cfg`, `/usr/etc/deimos.cfg`,
/// `/usr/local/etc/deimos.cfg` under `system_root`), without the current or home directory.
pub fn system_search_path(system_root: &Path) -> Vec<PathBuf> {
    [
        "etc/deimos.cfg",
        "usr/etc/deimos.cfg",
        "usr/local/etc/deimos.cfg",
    ]
    .iter()
    .map(|system| system_root.join(system))
    .collect()
}

/// Reads `config_file` when given (it must exist: it came from [`CONFIG_ENV_VAR`]), else the
/// first existing file of `paths`. `None` when there is no file at all. A candidate that
/// exists but cannot be read is an error, not skipped in favour of the next one.
pub fn read_first(
    config_file: Option<&Path>,
    paths: &[PathBuf],
) -> Result<Option<(PathBuf, String)>, ConfigError> {
    if let Some(path) = config_file {
        return match read_if_exists(path)? {
            Some(text) => Ok(Some((path.to_owned(), text))),
            None => Err(ConfigError::EnvFileMissing {
                path: path.to_owned(),
            }),
        };
    }
    for path in paths {
        if let Some(text) = read_if_exists(path)? {
            return Ok(Some((path.clone(), text)));
        }
    }
    Ok(None)
}

/// Reads a file; `None` when it does not exist.
fn read_if_exists(path: &Path) -> Result<Option<String>, ConfigError> {
    match std::fs::read_to_string(path) {
        Ok(text) => Ok(Some(text)),
        Err(err) if err.kind() == ErrorKind::NotFound => Ok(None),
        Err(source) => Err(ConfigError::Read {
            path: path.to_owned(),
            source,
        }),
    }
}

/// A configuration that could not be loaded; every message names the file and, where one is
/// concerned, the line, section and key.
#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    /// `$DEIMOS_CONFIG` names a file that does not exist.
    #[error("{CONFIG_ENV_VAR} names {path}, which does not exist")]
    EnvFileMissing {
        /// The path from the environment variable.
        path: PathBuf,
    },
    /// A configuration file exists but could not be read.
    #[error("cannot read configuration file {path}: {source}")]
    Read {
        /// The file.
        path: PathBuf,
        /// Why.
        source: std::io::Error,
    },
    /// A line that is not INI.
    #[error("{file}: INI syntax error at line {line}: {message}")]
    Syntax {
        /// The file (or `<string>`).
        file: String,
        /// 1-based line.
        line: usize,
        /// What is wrong with the line.
        message: String,
    },
    /// A key appears before any `[section]` header.
    #[error("{file}:{line}: key {key:?} appears before any [section] header")]
    KeyOutsideSection {
        /// The file.
        file: String,
        /// 1-based line of the key.
        line: usize,
        /// The key.
        key: String,
    },
    /// A section the program does not know.
    #[error("{file}:{line}: unknown section [{section}]; known sections: {known}")]
    UnknownSection {
        /// The file.
        file: String,
        /// 1-based line of the header.
        line: usize,
        /// The section as written.
        section: String,
        /// The known sections, comma-separated.
        known: String,
    },
    /// A key its section does not have.
    #[error("{file}:{line}: [{section}] has no key {key:?}{hint}; supported keys: {supported}")]
    UnknownKey {
        /// The file.
        file: String,
        /// 1-based line of the key.
        line: usize,
        /// The section.
        section: String,
        /// The key as written.
        key: String,
        /// Extra explanation (may be empty), starting with a separator.
        hint: &'static str,
        /// The keys the section supports, comma-separated.
        supported: String,
    },
    /// A value that does not have the key's type or violates its constraint.
    #[error("{file}:{line}: [{section}] {key}: {reason}")]
    InvalidValue {
        /// The file.
        file: String,
        /// 1-based line of the key.
        line: usize,
        /// The section.
        section: String,
        /// The key.
        key: String,
        /// What is wrong with the value.
        reason: String,
    },
}

impl ConfigError {
    /// The error for one entry of `section` that [`KeyProblem`] rejected; `keys` are the
    /// section's supported keys, `hint` (empty, or starting with a separator) explains more.
    pub fn for_entry(
        file: &str,
        section: &str,
        keys: &[&str],
        entry: &IniEntry,
        problem: KeyProblem,
        hint: &'static str,
    ) -> ConfigError {
        match problem {
            KeyProblem::Unknown => ConfigError::UnknownKey {
                file: file.to_owned(),
                line: entry.line,
                section: section.to_owned(),
                key: entry.key.trim().to_ascii_lowercase(),
                hint,
                supported: keys.join(", "),
            },
            KeyProblem::Invalid(reason) => ConfigError::InvalidValue {
                file: file.to_owned(),
                line: entry.line,
                section: section.to_owned(),
                key: entry.key.trim().to_ascii_lowercase(),
                reason,
            },
        }
    }
}
