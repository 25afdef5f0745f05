//! Text for people, shared by every layer above: a digest grouped for
//! reading aloud, and a TOML error as one line with the line it points at.

/// `sha256=…` grouped in fours, for reading aloud.
pub fn grouped(digest: &str) -> String {
    let hex = digest.strip_prefix("sha256=").unwrap_or(digest);
    hex.as_bytes()
        .chunks(4)
        .map(|c| String::from_utf8_lossy(c).into_owned())
        .collect::<Vec<_>>()
        .join(" ")
}

/// The line of a byte span in `text` (None for the empty span of defaults).
pub fn line_of(text: &str, span: &std::ops::Range<usize>) -> Option<usize> {
    if span.start == 0 && span.end == 0 {
        return None;
    }
    Some(text[..span.start.min(text.len())].matches('\n').count() + 1)
}

/// A TOML error as (line, message on one line): the toml crate's messages
/// can span several lines, and arca's errors are one line each.
pub fn toml_error(text: &str, e: &toml::de::Error) -> (Option<usize>, String) {
    let msg = e
        .message()
        .lines()
        .map(str::trim)
        .filter(|l| !l.is_empty())
        .collect::<Vec<_>>()
        .join("; ");
    (e.span().and_then(|s| line_of(text, &s)), msg)
}
