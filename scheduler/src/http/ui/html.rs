//! A minimal HTML builder whose only way to add markup is a `&'static str` (a template literal
//! compiled into the binary): every runtime value goes through [`Html::text`], which escapes it.
//! That makes forgetting to escape a value a type error rather than a review finding.

use std::fmt::{self, Display, Write as _};

/// A fragment of HTML under construction.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub(crate) struct Html(String);

impl Html {
    /// An empty fragment.
    pub(crate) fn new() -> Html {
        Html(String::new())
    }

    /// Appends trusted markup; only literals compiled into the binary qualify.
    pub(crate) fn raw(&mut self, markup: &'static str) -> &mut Html {
        self.0.push_str(markup);
        self
    }

    /// Appends a value, HTML-escaped (safe in text and in double- or single-quoted attributes).
    pub(crate) fn text(&mut self, value: impl Display) -> &mut Html {
        // Writing into a String cannot fail; the escaper only forwards to it.
        let _ = write!(Escaper(&mut self.0), "{value}");
        self
    }

    /// Appends another fragment (already built from literals and escaped values).
    pub(crate) fn html(&mut self, fragment: &Html) -> &mut Html {
        self.0.push_str(&fragment.0);
        self
    }

    /// The markup.
    pub(crate) fn into_string(self) -> String {
        self.0
    }

    /// The markup, borrowed.
    #[cfg(test)]
    pub(crate) fn as_str(&self) -> &str {
        &self.0
    }
}

/// A `fmt::Write` that escapes `& < > " '` on the way into a `String`.
struct Escaper<'a>(&'a mut String);

impl fmt::Write for Escaper<'_> {
    fn write_str(&mut self, text: &str) -> fmt::Result {
        for character in text.chars() {
            match character {
                '&' => self.0.push_str("&amp;"),
                '<' => self.0.push_str("&lt;"),
                '>' => self.0.push_str("&gt;"),
                '"' => self.0.push_str("&quot;"),
                '\'' => self.0.push_str("&#39;"),
                other => self.0.push(other),
            }
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn escape(text: &str) -> String {
        let mut html = Html::new();
        html.text(text);
        html.into_string()
    }

    #[test]
    fn escape_replaces_every_markup_character() {
        assert_eq!(
            escape(r#"<script>alert("x" & 'y')</script>"#),
            "&lt;script&gt;alert(&quot;x&quot; &amp; &#39;y&#39;)&lt;/script&gt;"
        );
        assert_eq!(escape("plain ünïcode"), "plain ünïcode");
    }

    #[test]
    fn text_escapes_values_and_raw_keeps_literals() {
        let mut html = Html::new();
        html.raw("<td title=\"")
            .text("\"><img src=x onerror=alert(1)>")
            .raw("\">")
            .text(42)
            .raw("</td>");
        assert_eq!(
            html.as_str(),
            "<td title=\"&quot;&gt;&lt;img src=x onerror=alert(1)&gt;\">42</td>"
        );
    }

    #[test]
    fn fragments_nest_without_double_escaping() {
        let mut inner = Html::new();
        inner.raw("<b>").text("a&b").raw("</b>");
        let mut outer = Html::new();
        outer.raw("<p>").html(&inner).raw("</p>");
        assert_eq!(outer.into_string(), "<p><b>a&amp;b</b></p>");
    }
}
