//! What may be said by text-to-speech: the same rules for the CLI (before
//! it sends), the config file, the control socket and espeak-ng's caller.
//!
//! Must not touch: espeak-ng, files.

/// Longest text accepted, in characters (a long notice is a few minutes of
/// speech; anything longer belongs in a recorded file).
pub const MAX_CHARS: usize = 5000;

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SayError {
    #[error("the text to say is empty")]
    Empty,
    #[error("the text to say is {0} characters long; the limit is {MAX_CHARS} (record a file for longer notices)")]
    TooLong(usize),
    #[error("voice \"{0}\" is not a voice name; use letters, digits and '-', e.g. vi, vi-vn-x-central or vi-vn-x-south")]
    BadVoice(String),
}

/// A voice name is letters, digits and '-' (never a leading '-', so it
/// cannot be read as an option), at most 64 characters.
pub fn voice_ok(voice: &str) -> bool {
    !voice.is_empty()
        && voice.len() <= 64
        && !voice.starts_with('-')
        && voice.chars().all(|c| c.is_ascii_alphanumeric() || c == '-')
}

pub fn check_voice(voice: &str) -> Result<(), SayError> {
    if voice_ok(voice) {
        Ok(())
    } else {
        Err(SayError::BadVoice(voice.to_string()))
    }
}

/// Checks text from a user: not blank, not longer than `MAX_CHARS`.
pub fn check_text(text: &str) -> Result<(), SayError> {
    if text.trim().is_empty() {
        return Err(SayError::Empty);
    }
    let chars = text.chars().count();
    if chars > MAX_CHARS {
        return Err(SayError::TooLong(chars));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn voice_names_are_letters_digits_and_dashes() {
        for ok in ["vi", "vi-vn-x-central", "vi-vn-x-south", "en-gb", "mb-vi1"] {
            assert!(voice_ok(ok), "{ok}");
        }
        for bad in ["", "-v", "vi vn", "../x", "vi/x", "vi;rm", "việt", &"a".repeat(65)] {
            assert!(!voice_ok(bad), "{bad}");
            assert_eq!(check_voice(bad), Err(SayError::BadVoice(bad.to_string())));
        }
    }

    #[test]
    fn text_must_be_present_and_not_too_long() {
        assert_eq!(check_text("  \n"), Err(SayError::Empty));
        assert_eq!(check_text(&"ạ".repeat(MAX_CHARS)), Ok(()), "counted in characters, not bytes");
        assert_eq!(check_text(&"a".repeat(MAX_CHARS + 1)), Err(SayError::TooLong(MAX_CHARS + 1)));
        assert!(SayError::TooLong(6000).to_string().contains("limit is 5000"));
    }
}
