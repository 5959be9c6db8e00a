//! Value syntax the sections of `deimos.cfg` share: arrays, booleans, host directories.
//!
//! Every function is pure and returns the reason a value is rejected; the caller adds the
//! file, line, section and key. Sizes are [`crate::size`].

use std::path::PathBuf;

/// Parses an array: a JSON list of strings when the value starts with `[`, an empty list for
/// an empty value, otherwise a one-element list holding the value.
pub fn parse_array(raw: &str) -> Result<Vec<String>, String> {
    let raw = raw.trim();
    if raw.is_empty() {
        return Ok(Vec::new());
    }
    if !raw.starts_with('[') {
        return Ok(vec![raw.to_owned()]);
    }
    serde_json::from_str::<Vec<String>>(raw)
        .map_err(|err| format!("{raw:?} starts with '[' but is not a JSON list of strings: {err}"))
}

/// A JSON list, the array syntax [`parse_array`] reads back.
pub fn format_array(items: &[String]) -> String {
    // Serializing a slice of strings cannot fail; fall back to an empty list regardless.
    serde_json::to_string(items).unwrap_or_else(|_| "[]".to_owned())
}

/// Parses a boolean: `true/false/yes/no/on/off/1/0`, any case.
pub fn parse_bool(raw: &str) -> Result<bool, String> {
    match raw.trim().to_ascii_lowercase().as_str() {
        "true" | "yes" | "on" | "1" => Ok(true),
        "false" | "no" | "off" | "0" => Ok(false),
        _ => Err(format!(
            "{raw:?} is not a boolean (true/false, yes/no, on/off, 1/0)"
        )),
    }
}

/// Parses a list of host directories: absolute paths without `..`.
pub fn parse_host_dirs(raw: &str) -> Result<Vec<PathBuf>, String> {
    parse_array(raw)?
        .into_iter()
        .map(|dir| parse_host_dir(&dir))
        .collect()
}

/// Parses one host directory (an absolute path without `..`), `None` for an empty value.
pub fn parse_optional_dir(raw: &str) -> Result<Option<PathBuf>, String> {
    match raw.trim() {
        "" => Ok(None),
        dir => parse_host_dir(dir).map(Some),
    }
}

fn parse_host_dir(dir: &str) -> Result<PathBuf, String> {
    let path = PathBuf::from(dir.trim());
    if !path.is_absolute() {
        return Err(format!("{dir:?} must be an absolute path"));
    }
    if path
        .components()
        .any(|c| c == std::path::Component::ParentDir)
    {
        return Err(format!("{dir:?} must not contain '..'"));
    }
    Ok(path)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn array_from_json_list_of_strings() {
        assert_eq!(
            parse_array(r#"["-e", "A=b c"]"#),
            Ok(vec!["-e".to_owned(), "A=b c".to_owned()])
        );
        assert_eq!(parse_array("[]"), Ok(vec![]));
    }

    #[test]
    fn array_from_plain_value_is_one_element() {
        assert_eq!(parse_array("/bin/true"), Ok(vec!["/bin/true".to_owned()]));
    }

    #[test]
    fn array_from_empty_value_is_empty() {
        assert_eq!(parse_array("  "), Ok(vec![]));
    }

    #[test]
    fn array_rejects_list_of_non_strings_and_broken_json() {
        assert!(parse_array("[1, 2]")
            .unwrap_err()
            .contains("not a JSON list of strings"));
        assert!(parse_array("[\"a\"").is_err());
        assert!(parse_array("[\"a\", true]").is_err());
    }

    #[test]
    fn array_format_reads_back() {
        let items = vec!["-e".to_owned(), "A=\"x\"".to_owned(), "C:\\tmp".to_owned()];
        assert_eq!(parse_array(&format_array(&items)), Ok(items));
    }

    #[test]
    fn bool_accepts_common_spellings_in_any_case() {
        for yes in ["true", "True", "YES", "on", "1"] {
            assert_eq!(parse_bool(yes), Ok(true), "{yes}");
        }
        for no in ["false", "FALSE", "No", "off", "0"] {
            assert_eq!(parse_bool(no), Ok(false), "{no}");
        }
        assert!(parse_bool("maybe").is_err());
        assert!(parse_bool("").is_err());
    }

    #[test]
    fn host_dirs_must_be_absolute_without_parent_components() {
        assert_eq!(
            parse_host_dirs(r#"["/srv/a", "/data"]"#),
            Ok(vec![PathBuf::from("/srv/a"), PathBuf::from("/data")])
        );
        assert_eq!(parse_host_dirs(""), Ok(vec![]));
        assert!(parse_host_dirs("srv").unwrap_err().contains("absolute"));
        assert!(parse_host_dirs("/srv/../etc").unwrap_err().contains(".."));
    }
}
