//! Terminal output to HTML: SGR sequences (`ESC [ ... m`) become `<span>`s with classes
//! (`ansi-bold`, `ansi-fg-1`, `ansi-bg-12`...), every other escape or control sequence is
//! dropped, and all text is escaped. `static/ansi.js` implements the same mapping for output
//! that arrives while the page is open; keep the two in step.

use super::html::Html;

const ESC: char = '\u{1b}';

/// The text attributes an SGR sequence can set (16 colours; 256-colour and RGB colours are
/// parsed but not shown).
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Style {
    bold: bool,
    faint: bool,
    italic: bool,
    underline: bool,
    fg: Option<u8>,
    bg: Option<u8>,
}

impl Style {
    /// Applies the parameters of one SGR sequence (`1;31` → `[1, 31]`; empty means reset).
    pub(crate) fn apply(&mut self, params: &[u16]) {
        if params.is_empty() {
            *self = Style::default();
            return;
        }
        let mut index = 0;
        while index < params.len() {
            let code = params[index];
            index += 1;
            match code {
                0 => *self = Style::default(),
                1 => self.bold = true,
                2 => self.faint = true,
                3 => self.italic = true,
                4 => self.underline = true,
                22 => (self.bold, self.faint) = (false, false),
                23 => self.italic = false,
                24 => self.underline = false,
                30..=37 => self.fg = Some((code - 30) as u8),
                39 => self.fg = None,
                40..=47 => self.bg = Some((code - 40) as u8),
                49 => self.bg = None,
                90..=97 => self.fg = Some((code - 90 + 8) as u8),
                100..=107 => self.bg = Some((code - 100 + 8) as u8),
                38 | 48 => {
                    let (colour, used) = extended_colour(&params[index..]);
                    index += used;
                    if code == 38 {
                        self.fg = colour;
                    } else {
                        self.bg = colour;
                    }
                }
                _ => {}
            }
        }
    }

    /// The CSS classes of this style, `None` for the default style.
    fn classes(&self) -> Option<Html> {
        if *self == Style::default() {
            return None;
        }
        let mut classes = Vec::new();
        let flags = [
            (self.bold, "ansi-bold"),
            (self.faint, "ansi-faint"),
            (self.italic, "ansi-italic"),
            (self.underline, "ansi-underline"),
        ];
        classes.extend(
            flags
                .iter()
                .filter(|(on, _)| *on)
                .map(|(_, name)| name.to_string()),
        );
        if let Some(fg) = self.fg {
            classes.push(format!("ansi-fg-{fg}"));
        }
        if let Some(bg) = self.bg {
            classes.push(format!("ansi-bg-{bg}"));
        }
        let mut html = Html::new();
        html.text(classes.join(" "));
        Some(html)
    }
}

/// A `38;5;n` / `38;2;r;g;b` tail: the colour when it is one of the 16 basic ones, and how many
/// parameters it used.
fn extended_colour(rest: &[u16]) -> (Option<u8>, usize) {
    match rest.first() {
        Some(5) => match rest.get(1) {
            Some(&n) if n < 16 => (Some(n as u8), 2),
            Some(_) => (None, 2),
            None => (None, 1),
        },
        Some(2) => (None, rest.len().min(4)),
        _ => (None, 0),
    }
}

/// Renders terminal output as HTML (without the enclosing `<pre>`).
pub(crate) fn render(input: &str) -> Html {
    let mut out = Html::new();
    let mut style = Style::default();
    let mut run = String::new();
    let mut chars = input.chars().peekable();
    while let Some(character) = chars.next() {
        if character != ESC {
            if !character.is_control() || matches!(character, '\n' | '\t') {
                run.push(character);
            }
            continue;
        }
        if chars.peek() != Some(&'[') {
            // A non-CSI escape (`ESC ( B`, `ESC 7`...): drop its intermediates and final byte.
            while chars
                .next_if(|next| ('\u{20}'..='\u{2f}').contains(next))
                .is_some()
            {}
            chars.next();
            continue;
        }
        chars.next();
        let mut body = String::new();
        let mut final_byte = None;
        for next in chars.by_ref() {
            if ('\u{40}'..='\u{7e}').contains(&next) {
                final_byte = Some(next);
                break;
            }
            body.push(next);
        }
        if final_byte == Some('m') {
            flush(&mut out, &style, &mut run);
            style.apply(&sgr_params(&body));
        }
    }
    flush(&mut out, &style, &mut run);
    out
}

/// The numeric parameters of an SGR body (`1;31` → `[1, 31]`, empty fields → 0).
fn sgr_params(body: &str) -> Vec<u16> {
    if body.is_empty() {
        return Vec::new();
    }
    body.split([';', ':'])
        .map(|field| field.parse::<u16>().unwrap_or(0))
        .collect()
}

fn flush(out: &mut Html, style: &Style, run: &mut String) {
    if run.is_empty() {
        return;
    }
    match style.classes() {
        Some(classes) => {
            out.raw("<span class=\"")
                .html(&classes)
                .raw("\">")
                .text(run.as_str())
                .raw("</span>");
        }
        None => {
            out.text(run.as_str());
        }
    }
    run.clear();
}

#[cfg(test)]
mod tests {
    use super::*;

    fn html(input: &str) -> String {
        render(input).into_string()
    }

    #[test]
    fn plain_text_is_escaped_only() {
        assert_eq!(html("a < b & c\n"), "a &lt; b &amp; c\n");
    }

    #[test]
    fn colours_and_bold_become_classed_spans() {
        assert_eq!(
            html("\u{1b}[1;31mred\u{1b}[0m plain"),
            "<span class=\"ansi-bold ansi-fg-1\">red</span> plain"
        );
        assert_eq!(
            html("\u{1b}[92;44mx\u{1b}[39my\u{1b}[m"),
            "<span class=\"ansi-fg-10 ansi-bg-4\">x</span><span class=\"ansi-bg-4\">y</span>"
        );
    }

    #[test]
    fn extended_colours_map_basic_ones_and_skip_the_rest() {
        assert_eq!(
            html("\u{1b}[38;5;3mA\u{1b}[38;5;200mB\u{1b}[38;2;1;2;3;1mC"),
            "<span class=\"ansi-fg-3\">A</span>B<span class=\"ansi-bold\">C</span>"
        );
    }

    #[test]
    fn other_sequences_and_controls_are_dropped() {
        assert_eq!(html("a\u{1b}[2Kb\u{1b}[1;1Hc\u{7}d\re"), "abcde");
        assert_eq!(html("x\u{1b}(By\u{1b}"), "xy");
    }

    #[test]
    fn escaped_text_inside_spans_cannot_break_out() {
        assert_eq!(
            html("\u{1b}[31m<script>alert(1)</script>"),
            "<span class=\"ansi-fg-1\">&lt;script&gt;alert(1)&lt;/script&gt;</span>"
        );
    }

    #[test]
    fn unterminated_sequence_is_dropped() {
        assert_eq!(html("ok\u{1b}[31"), "ok");
    }

    #[test]
    fn normal_intensity_clears_bold_and_faint() {
        let mut style = Style::default();
        style.apply(&[1, 2, 4]);
        style.apply(&[22]);
        assert_eq!(
            style,
            Style {
                underline: true,
                ..Style::default()
            }
        );
    }
}
