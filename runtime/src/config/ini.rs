//! The INI syntax of `deimos.cfg`: the subset of Python's `ConfigParser` that Deimos' files use.
//!
//! - `[section]` headers (the name is trimmed; callers decide about case);
//! - `key = value` and `key: value` (the first `=` or `:` separates; key and value trimmed);
//! - comment lines whose first non-blank character is `;` or `#`, and blank lines;
//! - continuation lines: a line that starts with a space or tab after a key continues that
//!   key's value, joined with a newline (so a long JSON list can span lines);
//! - values are literal: no quotes, escapes, inline comments or `%(name)s` interpolation;
//! - a key repeated in a section, or a section repeated in the file, is kept in file order, so
//!   a reader that applies entries in order gets ConfigParser's "last value wins".
//!
//! Pure: text in, sections out, every entry with its line number for error messages.

use super::ConfigError;

/// One `[section]` of a file, with its entries in file order.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct IniSection {
    /// The name between the brackets, trimmed, as written (case kept).
    pub name: String,
    /// 1-based line of the header.
    pub line: usize,
    /// The `key = value` entries of this header, in file order.
    pub entries: Vec<IniEntry>,
}

/// One `key = value` (or `key: value`) entry.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct IniEntry {
    /// The key, trimmed, as written (case kept).
    pub key: String,
    /// The value, trimmed; continuation lines are joined with `\n`.
    pub value: String,
    /// 1-based line of the key.
    pub line: usize,
}

/// Parses INI text into its sections; `file` names it in error messages.
pub fn parse_ini(text: &str, file: &str) -> Result<Vec<IniSection>, ConfigError> {
    let mut sections: Vec<IniSection> = Vec::new();
    for (index, raw) in text.lines().enumerate() {
        let line = index + 1;
        let raw = raw.strip_suffix('\r').unwrap_or(raw);
        let trimmed = raw.trim();
        if trimmed.is_empty() || trimmed.starts_with(['#', ';']) {
            continue;
        }
        let indented = raw.starts_with([' ', '\t']);
        if indented {
            if let Some(entry) = sections.last_mut().and_then(|s| s.entries.last_mut()) {
                entry.value.push('\n');
                entry.value.push_str(trimmed);
                continue;
            }
        }
        if let Some(header) = trimmed.strip_prefix('[') {
            sections.push(IniSection {
                name: section_name(header, file, line)?,
                line,
                entries: Vec::new(),
            });
            continue;
        }
        let entry = entry(trimmed, file, line)?;
        match sections.last_mut() {
            Some(section) => section.entries.push(entry),
            None => {
                return Err(ConfigError::KeyOutsideSection {
                    file: file.to_owned(),
                    line,
                    key: entry.key,
                })
            }
        }
    }
    Ok(sections)
}

/// The name of a `[section]` header (the text after `[`).
fn section_name(header: &str, file: &str, line: usize) -> Result<String, ConfigError> {
    let Some(name) = header.strip_suffix(']') else {
        return Err(syntax(file, line, "a section header must end with ']'"));
    };
    let name = name.trim();
    if name.is_empty() || name.contains(['[', ']']) {
        return Err(syntax(
            file,
            line,
            "a section header must hold a name without brackets",
        ));
    }
    Ok(name.to_owned())
}

/// A `key = value` or `key: value` line (trimmed).
fn entry(trimmed: &str, file: &str, line: usize) -> Result<IniEntry, ConfigError> {
    let Some(at) = trimmed.find(['=', ':']) else {
        return Err(syntax(
            file,
            line,
            "expected `key: value`, `key = value`, a [section] header or a comment",
        ));
    };
    let key = trimmed[..at].trim();
    if key.is_empty() {
        return Err(syntax(
            file,
            line,
            "the key before the separator is missing",
        ));
    }
    Ok(IniEntry {
        key: key.to_owned(),
        value: trimmed[at + 1..].trim().to_owned(),
        line,
    })
}

fn syntax(file: &str, line: usize, message: &str) -> ConfigError {
    ConfigError::Syntax {
        file: file.to_owned(),
        line,
        message: message.to_owned(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(text: &str) -> Vec<IniSection> {
        parse_ini(text, "test.cfg").unwrap()
    }

    fn entries(section: &IniSection) -> Vec<(&str, &str, usize)> {
        section
            .entries
            .iter()
            .map(|e| (e.key.as_str(), e.value.as_str(), e.line))
            .collect()
    }

    #[test]
    fn sections_keep_entries_in_order_with_lines_and_both_separators() {
        let sections = parse("[docker]\nhost: unix:///x.sock\n\n[State]\n root = /var/lib/d \n");
        assert_eq!(sections.len(), 2);
        assert_eq!((sections[0].name.as_str(), sections[0].line), ("docker", 1));
        assert_eq!(entries(&sections[0]), [("host", "unix:///x.sock", 2)]);
        assert_eq!((sections[1].name.as_str(), sections[1].line), ("State", 4));
        assert_eq!(entries(&sections[1]), [("root", "/var/lib/d", 5)]);
    }

    #[test]
    fn the_first_separator_splits_so_values_may_hold_colons_and_equals() {
        let sections = parse("[s]\nhost = tcp://h:1\nopt: [\"-e\", \"A=b\"]\n");
        assert_eq!(
            entries(&sections[0]),
            [("host", "tcp://h:1", 2), ("opt", "[\"-e\", \"A=b\"]", 3)]
        );
    }

    #[test]
    fn comment_and_blank_lines_are_skipped_and_values_are_literal() {
        let text = "; top\n# also\n[s]\n  # indented comment\nk: a ; not a comment \"q\" \\n\n";
        let sections = parse(text);
        assert_eq!(
            entries(&sections[0]),
            [("k", "a ; not a comment \"q\" \\n", 5)]
        );
    }

    #[test]
    fn indented_lines_continue_the_previous_value() {
        let text = "[hooks]\nondestroy: [\"/bin/echo\",\n    \"done\"]\n\tx\nnext: 1\n";
        let sections = parse(text);
        assert_eq!(
            entries(&sections[0]),
            [
                ("ondestroy", "[\"/bin/echo\",\n\"done\"]\nx", 2),
                ("next", "1", 5)
            ]
        );
    }

    #[test]
    fn repeated_keys_and_sections_are_kept_in_file_order() {
        let sections = parse("[log]\nconsole: INFO\nconsole: error\n[log]\nsyslog: off\n");
        assert_eq!(sections.len(), 2);
        assert_eq!(
            entries(&sections[0]),
            [("console", "INFO", 2), ("console", "error", 3)]
        );
        assert_eq!(entries(&sections[1]), [("syslog", "off", 5)]);
    }

    #[test]
    fn crlf_line_ends_are_accepted() {
        let sections = parse("[s]\r\nk: v\r\n");
        assert_eq!(entries(&sections[0]), [("k", "v", 2)]);
    }

    #[test]
    fn malformed_lines_are_errors_naming_file_and_line() {
        let error = |text: &str| parse_ini(text, "/etc/deimos.cfg").unwrap_err().to_string();
        assert_eq!(
            error("[docker\n"),
            "/etc/deimos.cfg: INI syntax error at line 1: a section header must end with ']'"
        );
        assert!(error("[s]\njust words\n").contains("at line 2: expected `key: value`"));
        assert!(error("[s]\n: value\n").contains("at line 2: the key"));
        assert!(error("[]\n").contains("at line 1"));
        assert_eq!(
            error("# c\nroot: /x\n[state]\n"),
            "/etc/deimos.cfg:2: key \"root\" appears before any [section] header"
        );
    }
}
