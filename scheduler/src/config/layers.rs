//! The configuration sources as raw settings: the YAML file, the environment and the flags.
//! Each source yields `key → (text, where it came from)`; later sources override earlier ones.

use std::collections::BTreeMap;
use std::fmt;
use std::path::{Path, PathBuf};

use serde_norway::Value;

use super::keys::{self, KeySpec, KEYS};
use super::ConfigError;

/// Where a setting came from; error messages name it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Source {
    /// The built-in default.
    Default,
    /// The YAML file.
    File(PathBuf),
    /// The environment variable of this name.
    Env(String),
    /// The command-line flag of this name (`--port`).
    Flag(String),
}

impl fmt::Display for Source {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Default => f.write_str("the built-in default"),
            Self::File(path) => write!(f, "file {}", path.display()),
            Self::Env(name) => write!(f, "environment variable {name}"),
            Self::Flag(name) => write!(f, "flag {name}"),
        }
    }
}

/// A value as written, before it is parsed for its key.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum RawValue {
    /// One value (YAML scalars are converted to their text).
    Scalar(String),
    /// A YAML sequence.
    List(Vec<String>),
}

/// One key's raw value and its origin.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Setting {
    pub(crate) value: RawValue,
    pub(crate) source: Source,
}

/// The merged settings, by key name.
pub(crate) type Settings = BTreeMap<&'static str, Setting>;

/// Parses YAML text into settings. An empty document sets nothing; an unknown key is an
/// error naming it, the file and the valid keys; `null` and `""` leave a key unset.
pub(crate) fn parse_yaml(text: &str, file: &Path) -> Result<Settings, ConfigError> {
    let document: Value = serde_norway::from_str(text).map_err(|error| ConfigError::Syntax {
        path: file.to_owned(),
        message: error.to_string(),
    })?;
    let mapping = match document {
        Value::Null => return Ok(Settings::new()),
        Value::Mapping(mapping) => mapping,
        _ => {
            return Err(ConfigError::NotAMapping {
                path: file.to_owned(),
            })
        }
    };
    let mut settings = Settings::new();
    for (key, value) in mapping {
        let spec = known_key(&key, file)?;
        let source = Source::File(file.to_owned());
        let Some(value) = raw_value(value, spec, &source)? else {
            continue;
        };
        settings.insert(spec.name, Setting { value, source });
    }
    Ok(settings)
}

fn known_key(key: &Value, file: &Path) -> Result<&'static KeySpec, ConfigError> {
    let name = match key {
        Value::String(name) => name.clone(),
        other => scalar_text(other).unwrap_or_else(|| format!("{other:?}")),
    };
    keys::find(&name).ok_or_else(|| ConfigError::UnknownKey {
        path: file.to_owned(),
        hint: keys::suggest(&name)
            .map(|known| format!(" (did you mean {known}?)"))
            .unwrap_or_default(),
        key: name,
        valid: keys::all_names(),
    })
}

fn scalar_text(value: &Value) -> Option<String> {
    match value {
        Value::Bool(flag) => Some(flag.to_string()),
        Value::Number(number) => Some(number.to_string()),
        Value::String(text) => Some(text.clone()),
        _ => None,
    }
}

fn raw_value(
    value: Value,
    spec: &KeySpec,
    source: &Source,
) -> Result<Option<RawValue>, ConfigError> {
    let shape_error = |reason: &str| ConfigError::InvalidValue {
        key: spec.name,
        origin: source.clone(),
        reason: reason.to_owned(),
    };
    match value {
        Value::Null => Ok(None),
        Value::Sequence(items) => {
            let texts = items
                .iter()
                .map(scalar_text)
                .collect::<Option<Vec<_>>>()
                .ok_or_else(|| shape_error("list items must be single values"))?;
            Ok(Some(RawValue::List(texts)))
        }
        Value::Mapping(_) | Value::Tagged(_) => Err(shape_error(
            "expected a single value or a list, not a mapping",
        )),
        scalar => Ok(scalar_text(&scalar)
            .filter(|text| !text.is_empty())
            .map(RawValue::Scalar)),
    }
}

/// Settings from the environment: Eremetic's unprefixed names first, then `EREMETIC_<KEY>`
/// over them. An empty variable counts as unset.
pub(crate) fn from_env(env: &dyn Fn(&str) -> Option<String>) -> Settings {
    let mut settings = Settings::new();
    let lookup = |name: String| {
        env(&name)
            .filter(|value| !value.is_empty())
            .map(|value| Setting {
                value: RawValue::Scalar(value),
                source: Source::Env(name),
            })
    };
    for spec in KEYS {
        let prefixed = lookup(spec.prefixed_env());
        let unprefixed = || spec.unprefixed_env().and_then(lookup);
        if let Some(setting) = prefixed.or_else(unprefixed) {
            settings.insert(spec.name, setting);
        }
    }
    settings
}

/// Settings from flags given as `(key, value)`; empty values count as unset.
pub(crate) fn from_flags<'a>(
    flags: impl IntoIterator<Item = (&'static str, Option<&'a str>)>,
) -> Settings {
    let mut settings = Settings::new();
    for (name, value) in flags {
        let (Some(value), Some(spec)) = (value, keys::find(name)) else {
            continue;
        };
        if value.is_empty() {
            continue;
        }
        settings.insert(
            spec.name,
            Setting {
                value: RawValue::Scalar(value.to_owned()),
                source: Source::Flag(spec.flag()),
            },
        );
    }
    settings
}

#[cfg(test)]
mod tests {
    use super::*;

    fn file() -> PathBuf {
        PathBuf::from("/etc/eremetic/eremetic.yml")
    }

    #[test]
    fn yaml_scalars_and_lists_become_text() {
        let text = "port: 9000\ncheckpoint: true\nbearer_tokens: [a, b]\naddress: ''\nmaster: ~\n";
        let settings = parse_yaml(text, &file()).unwrap();
        assert_eq!(settings["port"].value, RawValue::Scalar("9000".into()));
        assert_eq!(
            settings["checkpoint"].value,
            RawValue::Scalar("true".into())
        );
        assert_eq!(
            settings["bearer_tokens"].value,
            RawValue::List(vec!["a".into(), "b".into()])
        );
        assert!(!settings.contains_key("address"), "empty string is unset");
        assert!(!settings.contains_key("master"), "null is unset");
        assert_eq!(settings["port"].source, Source::File(file()));
    }

    #[test]
    fn empty_yaml_document_sets_nothing() {
        assert!(parse_yaml("", &file()).unwrap().is_empty());
        assert!(parse_yaml("# only a comment\n", &file())
            .unwrap()
            .is_empty());
    }

    #[test]
    fn unknown_yaml_key_names_key_file_and_suggestion() {
        let error = parse_yaml("prot: 80\n", &file()).unwrap_err().to_string();
        assert!(error.contains("\"prot\""), "{error}");
        assert!(error.contains("/etc/eremetic/eremetic.yml"), "{error}");
        assert!(error.contains("did you mean port?"), "{error}");
        assert!(error.contains("queue_size"), "lists valid keys: {error}");
    }

    #[test]
    fn yaml_syntax_errors_and_non_mappings_are_errors() {
        let error = parse_yaml("port: [\n", &file()).unwrap_err().to_string();
        assert!(error.contains("YAML"), "{error}");
        let error = parse_yaml("- port\n", &file()).unwrap_err().to_string();
        assert!(error.contains("mapping"), "{error}");
        let error = parse_yaml("port: {a: 1}\n", &file())
            .unwrap_err()
            .to_string();
        assert!(
            error.contains("port") && error.contains("mapping"),
            "{error}"
        );
    }

    #[test]
    fn prefixed_env_wins_over_unprefixed_and_empty_counts_as_unset() {
        let env = |name: &str| match name {
            "PORT" => Some("1".to_owned()),
            "EREMETIC_PORT" => Some("2".to_owned()),
            "MASTER" => Some("zk://x".to_owned()),
            "EREMETIC_MASTER" => Some(String::new()),
            "QUEUE_SIZE" => Some(String::new()),
            _ => None,
        };
        let settings = from_env(&env);
        assert_eq!(settings["port"].value, RawValue::Scalar("2".into()));
        assert_eq!(settings["port"].source, Source::Env("EREMETIC_PORT".into()));
        assert_eq!(settings["master"].source, Source::Env("MASTER".into()));
        assert!(!settings.contains_key("queue_size"));
    }

    #[test]
    fn unprefixed_user_and_name_are_not_read() {
        let env = |name: &str| match name {
            "USER" | "NAME" | "DATA_DIR" => Some("leaked".to_owned()),
            _ => None,
        };
        assert!(from_env(&env).is_empty());
    }

    #[test]
    fn flags_are_attributed_to_their_kebab_case_name() {
        let settings = from_flags([
            ("queue_size", Some("5")),
            ("port", None),
            ("cpus", Some("")),
        ]);
        assert_eq!(settings.len(), 1);
        assert_eq!(
            settings["queue_size"].source,
            Source::Flag("--queue-size".into())
        );
    }
}
