//! Where a YAML document went wrong: a serde-saphyr error as line, column and a one-line
//! message naming the field, shared by scenario files and suite manifests.

/// A YAML error located in its text.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Located {
    /// 1-based line (0 if unknown).
    pub line: u64,
    /// 1-based column (0 if unknown).
    pub column: u64,
    /// What is wrong, on one line, with the field when the error does not name one.
    pub message: String,
}

/// Locate `e`, an error in `text`: `field ...: message` without the snippet and without the
/// location serde-saphyr appends.
pub fn locate(e: &serde_saphyr::Error, text: &str) -> Located {
    let (line, column) = e
        .location()
        .map(|l| (l.line(), l.column()))
        .unwrap_or((0, 0));
    let message = e.without_snippet().to_string();
    let mut message = message
        .lines()
        .next()
        .unwrap_or_default()
        .trim()
        .to_string();
    if let Some(i) = message.rfind(" at line ") {
        message.truncate(i);
    }
    if !message.contains("field `") {
        if let Some(key) = key_before(text, line, column) {
            message = format!("field `{key}`: {message}");
        }
    }
    Located {
        line,
        column,
        message,
    }
}

/// The mapping key written before `line:column` (the field a value error is about).
fn key_before(text: &str, line: u64, column: u64) -> Option<String> {
    let l = text
        .lines()
        .nth(usize::try_from(line).ok()?.checked_sub(1)?)?;
    let end = usize::try_from(column).ok()?.saturating_sub(1).min(l.len());
    // The location may point at the key itself ...
    let at: String = l
        .get(end..)?
        .chars()
        .take_while(|c| c.is_ascii_alphanumeric() || *c == '_')
        .collect();
    if !at.is_empty() && l.get(end + at.len()..).is_some_and(|r| r.starts_with(':')) {
        return Some(at);
    }
    // ... or at the value after it.
    let before = l.get(..end)?.trim_end().strip_suffix(':')?;
    let key: String = before
        .chars()
        .rev()
        .take_while(|c| c.is_ascii_alphanumeric() || *c == '_')
        .collect();
    (!key.is_empty()).then(|| key.chars().rev().collect())
}
