//! Span-carrying config errors: every message reads `FILE:LINE:COL: message`
//! so editors and people jump straight to the spot.

use std::ops::Range;

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{file}:{line}:{col}: {message}")]
pub struct ConfigError {
    pub file: String,
    /// 1-based.
    pub line: usize,
    /// 1-based, in characters.
    pub col: usize,
    pub message: String,
}

/// All errors found in one file, in file order; displayed one per line.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{}", one_per_line(.0))]
pub struct ConfigErrors(pub Vec<ConfigError>);

fn one_per_line(errors: &[ConfigError]) -> String {
    errors
        .iter()
        .map(ToString::to_string)
        .collect::<Vec<_>>()
        .join("\n")
}

/// Turns byte spans in one source text into positioned errors.
pub(super) struct Locator<'a> {
    pub file: &'a str,
    pub text: &'a str,
}

impl Locator<'_> {
    pub fn at(&self, span: Option<Range<usize>>, message: impl Into<String>) -> ConfigError {
        let offset = span.map(|s| s.start).unwrap_or(0).min(self.text.len());
        let before = &self.text[..floor_char_boundary(self.text, offset)];
        let line = before.matches('\n').count() + 1;
        let line_start = before.rfind('\n').map(|i| i + 1).unwrap_or(0);
        let col = before[line_start..].chars().count() + 1;
        ConfigError {
            file: self.file.to_string(),
            line,
            col,
            message: message.into(),
        }
    }
}

fn floor_char_boundary(s: &str, mut i: usize) -> usize {
    while !s.is_char_boundary(i) {
        i -= 1;
    }
    i
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn columns_count_characters_not_bytes() {
        let loc = Locator {
            file: "f.toml",
            text: "a = 1\nname = \"thôn-1\" x",
        };
        let offset = loc.text.find(" x").unwrap() + 1;
        let e = loc.at(Some(offset..offset + 1), "bad");
        assert_eq!(e.to_string(), "f.toml:2:17: bad");
    }

    #[test]
    fn errors_display_one_per_line_without_trailing_newline() {
        let loc = Locator {
            file: "f.toml",
            text: "a = 1\nb = 2\n",
        };
        let errors = ConfigErrors(vec![loc.at(None, "first"), loc.at(Some(8..9), "second")]);
        assert_eq!(errors.to_string(), "f.toml:1:1: first\nf.toml:2:3: second");
    }

    #[test]
    fn offsets_past_the_end_point_at_the_last_position() {
        let loc = Locator {
            file: "f.toml",
            text: "a = 1\n",
        };
        assert_eq!(loc.at(Some(99..100), "eof").to_string(), "f.toml:2:1: eof");
    }
}
