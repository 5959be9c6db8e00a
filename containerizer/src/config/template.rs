//! Command templates: argv arrays with `{name}` placeholders filled in at run time.

use std::fmt;

/// A command template uses a placeholder its caller could not provide a value for.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("command template {template:?} uses {{{placeholder}}}, which has no value: {why}")]
pub struct PlaceholderUnavailable {
    /// The argv element.
    pub template: String,
    /// The placeholder name.
    pub placeholder: &'static str,
    /// Why there is no value.
    pub why: &'static str,
}

/// A value a [`CommandTemplate`] can refer to as `{name}`, or as `{name:json}` for the value
/// escaped as the inside of a JSON string (for placeholders within a JSON argument, such as
/// `mesos-executor --task_command`); `{{` and `}}` stand for literal braces.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Placeholder {
    /// `{deimos}`: the absolute path of the running `deimos` binary.
    Deimos,
    /// `{container_id}`: the Mesos container id.
    ContainerId,
    /// `{libexec_dir}`: `$MESOS_LIBEXEC_DIRECTORY`, where the agent's helper programs live.
    LibexecDir,
}

impl Placeholder {
    const ALL: [Placeholder; 3] = [Self::Deimos, Self::ContainerId, Self::LibexecDir];

    /// The name written between braces.
    pub fn name(self) -> &'static str {
        match self {
            Self::Deimos => "deimos",
            Self::ContainerId => "container_id",
            Self::LibexecDir => "libexec_dir",
        }
    }

    fn from_name(name: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|p| p.name() == name)
    }
}

/// The values substituted for placeholders.
#[derive(Debug, Clone, Copy)]
pub struct PlaceholderValues<'a> {
    /// Value of `{deimos}`.
    pub deimos: &'a str,
    /// Value of `{container_id}`.
    pub container_id: &'a str,
    /// Value of `{libexec_dir}`; `None` when `MESOS_LIBEXEC_DIRECTORY` is not set.
    pub libexec_dir: Option<&'a str>,
}

/// A non-empty argv whose elements may contain placeholders, all known (checked when built).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CommandTemplate(Vec<String>);

/// How a placeholder's value is written into the argv element.
#[derive(Debug, Clone, Copy, PartialEq)]
enum Encoding {
    /// `{name}`: the value as it is.
    Raw,
    /// `{name:json}`: the value escaped for the inside of a JSON string (quotes, backslashes
    /// and control characters escaped; no surrounding quotes).
    Json,
}

#[derive(Debug, PartialEq)]
enum Segment {
    Literal(String),
    Value(Placeholder, Encoding),
}

impl CommandTemplate {
    /// Checks that `argv` is non-empty and only uses known placeholders.
    pub fn new(argv: Vec<String>) -> Result<Self, String> {
        if argv.is_empty() {
            return Err("the command must not be empty".to_owned());
        }
        for element in &argv {
            segments(element)?;
        }
        Ok(Self(argv))
    }

    /// The observer Deimos ran, for agents before Mesos 1.0: the command executor with
    /// `--override` (removed from `mesos-executor` in 1.0.0), running `deimos observe`.
    pub fn observer_override_form() -> Self {
        Self::builtin(&[
            "{libexec_dir}/mesos-executor",
            "--override",
            "{deimos}",
            "observe",
            "{container_id}",
        ])
    }

    /// The observer for Mesos 1.0 agents (and 0.28, which has the flag too): the command
    /// executor with `--task_command`, a JSON `CommandInfo` running `deimos observe` without a
    /// shell; the values are JSON-escaped, so any path makes a valid command.
    pub fn observer_task_command_form() -> Self {
        Self::builtin(&[
            "{libexec_dir}/mesos-executor",
            "--task_command={{\"shell\":false,\"value\":\"{deimos:json}\",\
             \"arguments\":[\"deimos\",\"observe\",\"{container_id:json}\"]}}",
        ])
    }

    /// A template written in this file (valid by construction; checked by the tests).
    fn builtin(argv: &[&str]) -> Self {
        Self(argv.iter().map(|s| (*s).to_owned()).collect())
    }

    /// The template as written.
    pub fn argv(&self) -> &[String] {
        &self.0
    }

    /// The argv with every placeholder replaced. Fails only when a placeholder that is used
    /// has no value (`{libexec_dir}` without `MESOS_LIBEXEC_DIRECTORY`).
    pub fn expand(
        &self,
        values: &PlaceholderValues<'_>,
    ) -> Result<Vec<String>, PlaceholderUnavailable> {
        self.0
            .iter()
            .map(|element| expand_element(element, values))
            .collect()
    }
}

impl fmt::Display for CommandTemplate {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0.join(" "))
    }
}

fn expand_element(
    element: &str,
    values: &PlaceholderValues<'_>,
) -> Result<String, PlaceholderUnavailable> {
    // Elements were validated when the template was built; a failure here cannot happen, but
    // is reported rather than panicking.
    let parts = segments(element).map_err(|_| PlaceholderUnavailable {
        template: element.to_owned(),
        placeholder: "?",
        why: "the template is malformed",
    })?;
    let mut out = String::new();
    for part in parts {
        match part {
            Segment::Literal(text) => out.push_str(&text),
            Segment::Value(placeholder, encoding) => {
                let value = match placeholder {
                    Placeholder::Deimos => values.deimos,
                    Placeholder::ContainerId => values.container_id,
                    Placeholder::LibexecDir => {
                        values.libexec_dir.ok_or(PlaceholderUnavailable {
                            template: element.to_owned(),
                            placeholder: Placeholder::LibexecDir.name(),
                            why: "MESOS_LIBEXEC_DIRECTORY is not set",
                        })?
                    }
                };
                match encoding {
                    Encoding::Raw => out.push_str(value),
                    Encoding::Json => out.push_str(&json_string_body(value)),
                }
            }
        }
    }
    Ok(out)
}

/// `value` as the inside of a JSON string literal.
fn json_string_body(value: &str) -> String {
    let quoted = serde_json::Value::from(value).to_string();
    // Always `"…"`: a JSON string serialises with its quotes.
    quoted[1..quoted.len() - 1].to_owned()
}

/// Splits one argv element into literal text and placeholders.
fn segments(element: &str) -> Result<Vec<Segment>, String> {
    let mut parts = Vec::new();
    let mut literal = String::new();
    let mut chars = element.chars().peekable();
    while let Some(c) = chars.next() {
        match (c, chars.peek()) {
            ('{', Some('{')) | ('}', Some('}')) => {
                literal.push(c);
                chars.next();
            }
            ('{', _) => {
                let mut name = String::new();
                let closed = chars.by_ref().any(|c| {
                    c == '}' || {
                        name.push(c);
                        false
                    }
                });
                if !closed {
                    return Err(format!(
                        "{element:?} has an unclosed '{{' (write {{{{ for a literal brace)"
                    ));
                }
                let (name, encoding) = match name.strip_suffix(":json") {
                    Some(base) => (base.to_owned(), Encoding::Json),
                    None => (name, Encoding::Raw),
                };
                let placeholder = Placeholder::from_name(&name).ok_or_else(|| {
                    let known: Vec<_> = Placeholder::ALL.iter().map(|p| format!("{{{}}}", p.name())).collect();
                    format!("{element:?} uses unknown placeholder {{{name}}} (known: {}, each also as {{name:json}}; write {{{{ for a literal brace)", known.join(", "))
                })?;
                if !literal.is_empty() {
                    parts.push(Segment::Literal(std::mem::take(&mut literal)));
                }
                parts.push(Segment::Value(placeholder, encoding));
            }
            ('}', _) => {
                return Err(format!(
                    "{element:?} has an unmatched '}}' (write }}}} for a literal brace)"
                ))
            }
            _ => literal.push(c),
        }
    }
    if !literal.is_empty() {
        parts.push(Segment::Literal(literal));
    }
    Ok(parts)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn values(libexec: Option<&str>) -> PlaceholderValues<'_> {
        PlaceholderValues {
            deimos: "/usr/bin/deimos",
            container_id: "c-1",
            libexec_dir: libexec,
        }
    }

    #[test]
    fn override_form_expands_like_deimos() {
        let argv = CommandTemplate::observer_override_form()
            .expand(&values(Some("/usr/libexec/mesos")))
            .unwrap();
        assert_eq!(
            argv,
            [
                "/usr/libexec/mesos/mesos-executor",
                "--override",
                "/usr/bin/deimos",
                "observe",
                "c-1"
            ]
        );
    }

    /// The JSON `CommandInfo` of an expanded `--task_command=` argument.
    fn task_command(argv: &[String]) -> serde_json::Value {
        let json = argv[1].strip_prefix("--task_command=").unwrap();
        serde_json::from_str(json).unwrap_or_else(|e| panic!("invalid JSON {json}: {e}"))
    }

    #[test]
    fn task_command_form_runs_deimos_observe_without_a_shell() {
        let argv = CommandTemplate::observer_task_command_form()
            .expand(&values(Some("/usr/libexec/mesos")))
            .unwrap();
        assert_eq!(argv.len(), 2);
        assert_eq!(argv[0], "/usr/libexec/mesos/mesos-executor");
        assert_eq!(
            task_command(&argv),
            serde_json::json!({
                "shell": false,
                "value": "/usr/bin/deimos",
                "arguments": ["deimos", "observe", "c-1"]
            })
        );
    }

    #[test]
    fn task_command_form_is_valid_json_for_paths_with_quotes_and_backslashes() {
        let deimos = "/opt/we\"ird\\dir\n/deimos";
        let container_id = "id-\"\\-\u{1}";
        let argv = CommandTemplate::observer_task_command_form()
            .expand(&PlaceholderValues {
                deimos,
                container_id,
                libexec_dir: Some("/lib\"exec"),
            })
            .unwrap();
        let command = task_command(&argv);
        assert_eq!(command["value"], deimos);
        assert_eq!(command["arguments"][2], container_id);
        // Outside JSON the value is written as it is.
        assert_eq!(argv[0], "/lib\"exec/mesos-executor");
    }

    #[test]
    fn json_suffix_escapes_only_where_asked() {
        let template =
            CommandTemplate::new(vec!["{container_id}|{container_id:json}".to_owned()]).unwrap();
        let argv = template
            .expand(&PlaceholderValues {
                container_id: "a\"b",
                ..values(None)
            })
            .unwrap();
        assert_eq!(argv, ["a\"b|a\\\"b"]);
        let err = CommandTemplate::new(vec!["{deimos:yaml}".to_owned()]).unwrap_err();
        assert!(err.contains("unknown placeholder {deimos:yaml}"), "{err}");
    }

    #[test]
    fn expand_fails_when_libexec_dir_is_used_but_unknown() {
        for template in [
            CommandTemplate::observer_override_form(),
            CommandTemplate::observer_task_command_form(),
        ] {
            let err = template.expand(&values(None)).unwrap_err();
            assert!(err.to_string().contains("MESOS_LIBEXEC_DIRECTORY"), "{err}");
        }
    }

    #[test]
    fn double_braces_are_literal() {
        let template = CommandTemplate::new(vec!["x{{y}}{container_id}".to_owned()]).unwrap();
        assert_eq!(template.expand(&values(None)).unwrap(), ["x{y}c-1"]);
    }

    #[test]
    fn unknown_placeholder_and_unmatched_brace_are_rejected() {
        let err = CommandTemplate::new(vec!["{pid}".to_owned()]).unwrap_err();
        assert!(err.contains("unknown placeholder {pid}"), "{err}");
        assert!(CommandTemplate::new(vec!["a}".to_owned()]).is_err());
        assert!(CommandTemplate::new(vec!["{deimos".to_owned()]).is_err());
    }

    #[test]
    fn empty_template_is_rejected() {
        assert!(CommandTemplate::new(vec![]).is_err());
    }
}
