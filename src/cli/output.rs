//! Output formatting: JSON or text for people.

/// Prints a read-only result as JSON or as text for people.
pub(super) fn output<T: serde::Serialize>(json: bool, v: &T, text: impl Fn(&T) -> String) {
    if json {
        print_json(v);
    } else {
        print!("{}", text(v));
    }
}

pub(super) fn print_json<T: serde::Serialize>(v: &T) {
    println!("{}", serde_json::to_string_pretty(v).unwrap_or_default());
}
