//! Text that other people wrote, made safe to print on a terminal.
//!
//! Names, posts, bios, group names, reactions and peer addresses come from
//! other people's signed changes and from the network, and nodes keep them as
//! they were signed (`kith_core::text` says why). Printed raw, they could
//! drive the terminal: an escape sequence can write to the clipboard (OSC 52),
//! clear the screen or move the cursor; a carriage return or a line break
//! inside a name can fake a line of output; bidirectional controls make text
//! display in another order than it is stored. [`Untrusted`] shows each such
//! character as an escape instead (`\u{1b}`, `\r`, `\u{202e}`), and every
//! other character as itself.
//!
//! A backslash is printed as it is: text that spells out an escape can only
//! pretend to contain a character, never hide one.

use std::fmt::{self, Write as _};

use kith_core::text::is_invisible;

/// Text from someone else, displayed with every character that could drive
/// the terminal or disguise the text escaped. Line breaks are escaped too:
/// a caller that shows several lines (a post) splits the text itself, so
/// that each line is indented as its own.
#[derive(Debug, Clone, Copy)]
pub struct Untrusted<'a>(pub &'a str);

impl fmt::Display for Untrusted<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        // Whether the text shown so far ends with a character that a
        // shaping mark (a joiner, a variation selector) may follow: one that
        // is visible and not ASCII, with only kept marks after it.
        let mut shapeable = false;
        let mut chars = self.0.chars().peekable();
        while let Some(c) = chars.next() {
            let next = chars.peek().copied();
            if !shows_as_itself(c, shapeable, next) {
                escape(f, c)?;
                shapeable = false;
                continue;
            }
            f.write_char(c)?;
            if !is_shaping_mark(c) {
                shapeable = is_shapeable(c);
            }
        }
        Ok(())
    }
}

/// Whether `c` may be printed as it is, given whether it follows a character
/// a shaping mark may follow and which character comes next.
fn shows_as_itself(c: char, shapeable: bool, next: Option<char>) -> bool {
    // Control characters (C0, DEL, C1) are what terminals obey; line and
    // paragraph separators are line breaks to some viewers.
    if c.is_control() || matches!(c, '\u{2028}' | '\u{2029}') {
        return false;
    }
    if !is_invisible(c) {
        return true;
    }
    // Of the characters that draw nothing, only the marks that shape their
    // neighbours are kept, and only where they do that: emoji sequences
    // (👩‍👩‍👧, ❤️), joined scripts (Persian, Indic, Mongolian). A mark
    // between ASCII letters, as in "ad\u{200d}min", shapes nothing and
    // hides in the word, so it is escaped; so is every other invisible
    // character (zero-width space, byte order mark, directional marks and
    // controls, tags).
    match c {
        // Joiners sit between the two characters they join.
        '\u{200C}' | '\u{200D}' => shapeable && next.is_some_and(is_shapeable),
        // A keycap (1️⃣) is an ASCII digit, U+FE0F and U+20E3.
        '\u{FE0F}' if next == Some('\u{20E3}') => true,
        c if is_shaping_mark(c) => shapeable,
        _ => false,
    }
}

/// Invisible marks that change how the character before them is drawn or
/// joined: zero-width non-joiner and joiner, the combining grapheme joiner,
/// Mongolian free variation selectors and variation selectors. None of them
/// moves text or the cursor.
fn is_shaping_mark(c: char) -> bool {
    matches!(
        c,
        '\u{200C}'
            | '\u{200D}'
            | '\u{034F}'
            | '\u{180B}'..='\u{180D}'
            | '\u{180F}'
            | '\u{FE00}'..='\u{FE0F}'
            | '\u{E0100}'..='\u{E01EF}'
    )
}

/// A visible character outside ASCII: the kind shaping marks follow.
fn is_shapeable(c: char) -> bool {
    !c.is_ascii() && !c.is_control() && !c.is_whitespace() && !is_invisible(c)
}

/// Writes `c` as an escape: `\t`, `\r`, `\n`, else `\u{…}` in hex.
fn escape(f: &mut fmt::Formatter<'_>, c: char) -> fmt::Result {
    match c {
        '\t' => f.write_str("\\t"),
        '\r' => f.write_str("\\r"),
        '\n' => f.write_str("\\n"),
        c => write!(f, "\\u{{{:x}}}", u32::from(c)),
    }
}

/// Makes serialised JSON safe to print on a terminal without changing what
/// it means. serde_json escapes C0 control characters inside strings but
/// leaves DEL, C1 controls (which some terminals obey as escape sequences
/// in UTF-8), line separators and invisible characters raw; this writes
/// each of those as a `\uXXXX` escape, which a JSON reader decodes to the
/// same character. Outside strings JSON holds only ASCII punctuation,
/// digits, letters and whitespace, none of which is touched.
pub fn json(serialised: &str) -> String {
    let mut out = String::with_capacity(serialised.len());
    for c in serialised.chars() {
        let raw_in_json = c == '\u{7F}'
            || ('\u{80}'..='\u{9F}').contains(&c)
            || matches!(c, '\u{2028}' | '\u{2029}')
            || is_invisible(c);
        if !raw_in_json {
            out.push(c);
            continue;
        }
        for unit in c.encode_utf16(&mut [0; 2]) {
            write!(out, "\\u{unit:04x}").expect("writing to a String cannot fail");
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn shown(text: &str) -> String {
        Untrusted(text).to_string()
    }

    /// Whether `text` holds a character a terminal would obey or that
    /// reorders text.
    fn has_raw_control(text: &str) -> bool {
        text.chars()
            .any(|c| c.is_control() || kith_core::text::is_bidi_control(c) || c == '\u{2028}')
    }

    #[test]
    fn osc_52_clipboard_write_is_escaped() {
        let hostile = "nice post\u{1b}]52;c;Y3VybCBldmlsLnNoIHwgc2g=\u{7}";
        let out = shown(hostile);
        assert_eq!(out, "nice post\\u{1b}]52;c;Y3VybCBldmlsLnNoIHwgc2g=\\u{7}");
        assert!(!has_raw_control(&out));
    }

    #[test]
    fn screen_clear_and_cursor_movement_are_escaped() {
        assert_eq!(shown("\u{1b}[2J\u{1b}[H"), "\\u{1b}[2J\\u{1b}[H");
        assert_eq!(shown("a\u{1b}[3Ab"), "a\\u{1b}[3Ab");
        // The same sequences introduced by C1 controls.
        assert_eq!(
            shown("\u{9b}2J\u{9d}52;c;eA==\u{9c}"),
            "\\u{9b}2J\\u{9d}52;c;eA==\\u{9c}"
        );
    }

    #[test]
    fn carriage_return_cannot_overwrite_the_line() {
        assert_eq!(shown("Bob\rAlice"), "Bob\\rAlice");
    }

    #[test]
    fn a_newline_in_a_name_cannot_fake_a_line() {
        let name = "Bob\n01ARZ3NDEKTSV4RRFFQ69G5FAV  Alice  2025-01-01T00:00:00Z";
        let out = shown(name);
        assert_eq!(out.lines().count(), 1, "{out}");
        assert!(out.starts_with("Bob\\n01ARZ"), "{out}");
        assert_eq!(
            shown("a\u{2028}b\u{2029}c\u{85}d"),
            "a\\u{2028}b\\u{2029}c\\u{85}d"
        );
    }

    #[test]
    fn bidi_controls_are_escaped() {
        assert_eq!(shown("invoice\u{202E}fdp.exe"), "invoice\\u{202e}fdp.exe");
        for c in ('\u{202A}'..='\u{202E}').chain('\u{2066}'..='\u{2069}') {
            let out = shown(&format!("x{c}y"));
            assert_eq!(out, format!("x\\u{{{:x}}}y", u32::from(c)));
        }
    }

    #[test]
    fn tab_del_and_other_c0_controls_are_escaped() {
        assert_eq!(shown("a\tb"), "a\\tb");
        assert_eq!(shown("a\u{7f}b\u{0}c\u{8}d"), "a\\u{7f}b\\u{0}c\\u{8}d");
    }

    #[test]
    fn invisible_characters_that_hide_in_words_are_escaped() {
        assert_eq!(shown("ad\u{200B}min"), "ad\\u{200b}min");
        assert_eq!(shown("ad\u{200D}min"), "ad\\u{200d}min");
        assert_eq!(shown("\u{FEFF}Ada"), "\\u{feff}Ada");
        assert_eq!(shown("Ada\u{200F}"), "Ada\\u{200f}");
        assert_eq!(shown("a\u{FE0F}"), "a\\u{fe0f}");
        assert_eq!(shown("🏴\u{E0067}\u{E007F}"), "🏴\\u{e0067}\\u{e007f}");
    }

    #[test]
    fn ordinary_text_in_any_script_shows_as_itself() {
        for text in [
            "hello, kith",
            "José Ñúñez — “quoted” ‘text’ …",
            "李小龍 محمد שרה Ана",
            "C:\\Users\\ada",
            "👍 🎉",
            // Emoji sequences and joined scripts keep their marks.
            "👩\u{200D}👩\u{200D}👧",
            "❤\u{FE0F}\u{200D}🔥",
            "👋🏽",
            "1\u{FE0F}\u{20E3}",
            "©\u{FE0F}",
            "می\u{200C}خواهم",
            "क्\u{200D}ष",
        ] {
            assert_eq!(shown(text), text);
        }
    }

    #[test]
    fn json_escapes_what_serde_json_leaves_raw_and_means_the_same() {
        let hostile = "a\u{1b}[2J b\u{9b}31m c\u{202E} d\u{200B} e\u{7F} f\u{2028} 🏴\u{E0067}";
        let value = serde_json::json!({ "name": hostile, "n": 1 });
        let raw = serde_json::to_string_pretty(&value).unwrap();
        assert!(
            has_raw_control(raw.replace('\n', "").as_str()),
            "the premise: serde_json leaves some raw"
        );

        let safe = json(&raw);
        assert!(!has_raw_control(&safe.replace('\n', "")), "{safe}");
        assert!(!safe.chars().any(is_invisible), "{safe}");
        assert!(
            safe.contains("\\u009b") && safe.contains("\\u202e"),
            "{safe}"
        );
        assert!(
            safe.contains("\\udb40\\udc67"),
            "a tag is a surrogate pair: {safe}"
        );
        let back: serde_json::Value = serde_json::from_str(&safe).unwrap();
        assert_eq!(back, value);
        assert_eq!(safe.lines().count(), raw.lines().count(), "layout kept");
    }
}
