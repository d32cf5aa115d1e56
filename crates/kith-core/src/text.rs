//! What counts as visible text, and what a name may hold.
//!
//! What people write reaches other people's screens, so a writer refuses text
//! that would hide what it says: a name with control characters (a line
//! break that fakes a second line, an escape sequence a terminal obeys) or
//! with bidirectional controls (which reorder what follows them), and a post
//! with nothing visible in it. These are rules for local writers only. A
//! receiver takes another person's signed change as it is, whatever its text:
//! refusing it would make nodes disagree about a document, so displays escape
//! such text instead (the `kith` command does, in its `untrusted` module).
//!
//! ```
//! use kith_core::text::{NameError, check_name, has_visible_text};
//!
//! assert_eq!(check_name("Ada Lovelace"), Ok(()));
//! assert_eq!(check_name("Ada\nBob"), Err(NameError::ControlCharacter('\n')));
//! assert!(!has_visible_text(" \u{200b}\u{feff} "));
//! ```

/// Why a name was refused.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum NameError {
    #[error("a name needs visible characters")]
    NoVisibleText,
    #[error(
        "a name may not contain control characters (it has U+{:04X}): use letters, digits, spaces and punctuation",
        u32::from(*.0)
    )]
    ControlCharacter(char),
    #[error(
        "a name may not contain line or paragraph separators (it has U+{:04X})",
        u32::from(*.0)
    )]
    LineSeparator(char),
    #[error(
        "a name may not contain bidirectional text controls (it has U+{:04X}): they reorder the text around them",
        u32::from(*.0)
    )]
    BidiControl(char),
}

/// Checks that `name` shows as what it says: no control characters (C0,
/// DEL, C1), no line or paragraph separators, no bidirectional embeddings,
/// overrides or isolates, and something visible. Lengths are the caller's.
pub fn check_name(name: &str) -> Result<(), NameError> {
    for c in name.chars() {
        if c.is_control() {
            return Err(NameError::ControlCharacter(c));
        }
        if matches!(c, '\u{2028}' | '\u{2029}') {
            return Err(NameError::LineSeparator(c));
        }
        if is_bidi_control(c) {
            return Err(NameError::BidiControl(c));
        }
    }
    if !has_visible_text(name) {
        return Err(NameError::NoVisibleText);
    }
    Ok(())
}

/// Whether `text` has a character that draws something: one that is not
/// whitespace, a control character or [invisible](is_invisible).
pub fn has_visible_text(text: &str) -> bool {
    text.chars()
        .any(|c| !(c.is_whitespace() || c.is_control() || is_invisible(c)))
}

/// Whether `c` is a bidirectional embedding, override or isolate, or the pop
/// that ends one (U+202A–U+202E, U+2066–U+2069): the characters that make a
/// run of text display in another order than it is stored.
pub fn is_bidi_control(c: char) -> bool {
    matches!(c, '\u{202A}'..='\u{202E}' | '\u{2066}'..='\u{2069}')
}

/// Whether `c` draws nothing of its own: a format character (Unicode
/// category Cf) or another default-ignorable code point. That covers
/// zero-width spaces and joiners, the byte order mark, directional marks and
/// [bidirectional controls](is_bidi_control), variation selectors, Hangul
/// fillers and tag characters. Whitespace and control characters are not
/// in this set. The prepended concatenation marks (U+0600–U+0605, U+06DD,
/// …), though format characters, draw a sign over the digits that follow
/// them, so they are not in it either.
pub fn is_invisible(c: char) -> bool {
    // Unicode 15.1: General_Category=Cf and Default_Ignorable_Code_Point,
    // merged into ranges. Unassigned code points inside these blocks are
    // included: Unicode reserves them as ignorable.
    matches!(
        c,
        '\u{00AD}'
            | '\u{034F}'
            | '\u{061C}'
            | '\u{115F}'..='\u{1160}'
            | '\u{17B4}'..='\u{17B5}'
            | '\u{180B}'..='\u{180F}'
            | '\u{200B}'..='\u{200F}'
            | '\u{202A}'..='\u{202E}'
            | '\u{2060}'..='\u{206F}'
            | '\u{3164}'
            | '\u{FE00}'..='\u{FE0F}'
            | '\u{FEFF}'
            | '\u{FFA0}'
            | '\u{FFF0}'..='\u{FFFB}'
            | '\u{13430}'..='\u{1343F}'
            | '\u{1BCA0}'..='\u{1BCA3}'
            | '\u{1D173}'..='\u{1D17A}'
            | '\u{E0000}'..='\u{E0FFF}'
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ordinary_names_in_any_script_are_accepted() {
        for name in [
            "Ada",
            "Ada Lovelace-Byron",
            "José Ñúñez",
            "Zoë O'Brien",
            "李小龍",
            "محمد",
            "שרה",
            "Ана 🚲",
            // Joiners shape emoji and scripts; they are not refused.
            "👩\u{200D}👩\u{200D}👧 family",
            "می\u{200C}خواهم",
        ] {
            assert_eq!(check_name(name), Ok(()), "{name:?}");
        }
    }

    #[test]
    fn names_refuse_control_characters() {
        for (name, c) in [
            ("Ada\nBob", '\n'),
            ("Ada\rBob", '\r'),
            ("Ada\tLovelace", '\t'),
            ("\u{1b}[2JAda", '\u{1b}'),
            ("Ada\u{7f}", '\u{7f}'),
            ("Ada\u{9b}31m", '\u{9b}'),
            ("Ada\u{85}Bob", '\u{85}'),
        ] {
            assert_eq!(
                check_name(name),
                Err(NameError::ControlCharacter(c)),
                "{name:?}"
            );
        }
        assert!(
            NameError::ControlCharacter('\u{1b}')
                .to_string()
                .starts_with("a name may not contain control characters (it has U+001B)")
        );
    }

    #[test]
    fn names_refuse_line_separators() {
        assert_eq!(
            check_name("Ada\u{2028}Bob"),
            Err(NameError::LineSeparator('\u{2028}'))
        );
        assert_eq!(
            check_name("Ada\u{2029}"),
            Err(NameError::LineSeparator('\u{2029}'))
        );
    }

    #[test]
    fn names_refuse_bidi_overrides_embeddings_and_isolates() {
        for c in ('\u{202A}'..='\u{202E}').chain('\u{2066}'..='\u{2069}') {
            let name = format!("Ada{c}evoL");
            assert_eq!(
                check_name(&name),
                Err(NameError::BidiControl(c)),
                "{name:?}"
            );
        }
        assert_eq!(
            NameError::BidiControl('\u{202E}').to_string(),
            "a name may not contain bidirectional text controls (it has U+202E): \
             they reorder the text around them"
        );
    }

    #[test]
    fn names_need_visible_characters() {
        for name in [
            "",
            "   ",
            "\u{200B}",
            "\u{FEFF}\u{2060}",
            "\u{3164}",
            "\u{00A0}",
        ] {
            assert_eq!(check_name(name), Err(NameError::NoVisibleText), "{name:?}");
        }
    }

    #[test]
    fn text_of_whitespace_and_invisible_characters_is_not_visible() {
        for text in [
            "",
            " \n\t ",
            "\u{200B}\u{200C}\u{200D}",
            "\u{2060}\u{FEFF}",
            "\u{202E}\u{2066}\u{2069}\u{200E}\u{200F}",
            "\u{00AD}\u{034F}\u{FE0F}",
            "\u{E0041}\u{E0042}",
            "\u{1b}\u{7}\u{9b}",
            "\u{3000}\u{2028}",
        ] {
            assert!(!has_visible_text(text), "{text:?}");
        }
        for text in [
            "a",
            " . ",
            "\u{200B}x\u{200B}",
            "🙂",
            "\u{0600}",
            "\u{1b}[2J",
        ] {
            assert!(has_visible_text(text), "{text:?}");
        }
    }
}
