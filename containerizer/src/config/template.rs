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

/// A value a [`CommandTemplate`] can refer to as `{name}`; `{{` and `}}` stand for literal
/// braces.
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

#[derive(Debug, PartialEq)]
enum Segment {
    Literal(String),
    Value(Placeholder),
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

    /// The default observer: the Mesos command executor running `deimos observe`, as Deimos
    /// did: `{libexec_dir}/mesos-executor --override {deimos} observe {container_id}`.
    pub fn default_observer() -> Self {
        let argv = [
            "{libexec_dir}/mesos-executor",
            "--override",
            "{deimos}",
            "observe",
            "{container_id}",
        ];
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
            Segment::Value(Placeholder::Deimos) => out.push_str(values.deimos),
            Segment::Value(Placeholder::ContainerId) => out.push_str(values.container_id),
            Segment::Value(Placeholder::LibexecDir) => {
                let dir = values.libexec_dir.ok_or(PlaceholderUnavailable {
                    template: element.to_owned(),
                    placeholder: Placeholder::LibexecDir.name(),
                    why: "MESOS_LIBEXEC_DIRECTORY is not set",
                })?;
                out.push_str(dir);
            }
        }
    }
    Ok(out)
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
                let placeholder = Placeholder::from_name(&name).ok_or_else(|| {
                    let known: Vec<_> = Placeholder::ALL.iter().map(|p| format!("{{{}}}", p.name())).collect();
                    format!("{element:?} uses unknown placeholder {{{name}}} (known: {}; write {{{{ for a literal brace)", known.join(", "))
                })?;
                if !literal.is_empty() {
                    parts.push(Segment::Literal(std::mem::take(&mut literal)));
                }
                parts.push(Segment::Value(placeholder));
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
    fn default_observer_expands_like_deimos() {
        let argv = CommandTemplate::default_observer()
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

    #[test]
    fn expand_fails_when_libexec_dir_is_used_but_unknown() {
        let err = CommandTemplate::default_observer()
            .expand(&values(None))
            .unwrap_err();
        assert!(err.to_string().contains("MESOS_LIBEXEC_DIRECTORY"), "{err}");
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
