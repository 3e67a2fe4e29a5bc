//! Matching one topic name against one topic filter, and parsing shared subscription filters.

/// Whether `topic` (a topic name, no wildcards) matches `filter` (a valid topic filter).
///
/// Implements the wildcard rules of MQTT section 4.7: `+` matches exactly one level, `#`
/// matches any number of levels including the parent, and wildcards in the first level do not
/// match topics starting with `$`.
pub fn matches(filter: &str, topic: &str) -> bool {
    // [MQTT-4.7.2-1] a filter starting with a wildcard does not match a `$` topic.
    if topic.starts_with('$') && (filter.starts_with('+') || filter.starts_with('#')) {
        return false;
    }
    let mut f = filter.split('/');
    let mut t = topic.split('/');
    loop {
        match (f.next(), t.next()) {
            // [MQTT-4.7.1-2] `#` matches the parent level and any number of children.
            (Some("#"), _) => return true,
            // [MQTT-4.7.1-3] `+` matches exactly one level (possibly empty).
            (Some("+"), Some(_)) => {}
            (Some(fl), Some(tl)) if fl == tl => {}
            (None, None) => return true,
            _ => return false,
        }
    }
}

/// A shared subscription filter `$share/{group}/{filter}` split into its parts (MQTT 5 4.8.2).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SharedFilter<'a> {
    /// The share name.
    pub group: &'a str,
    /// The topic filter proper.
    pub filter: &'a str,
}

impl<'a> SharedFilter<'a> {
    /// Parse a shared subscription filter; `None` when `filter` is not one.
    ///
    /// Returns `Some(Err(()))` when it starts with `$share/` but is not well formed
    /// ([MQTT-4.8.2-1], [MQTT-4.8.2-2]): the share name must be non-empty without `+`, `#`, `/`,
    /// and a filter must follow.
    pub fn parse(filter: &'a str) -> Option<Result<SharedFilter<'a>, ()>> {
        let rest = filter.strip_prefix("$share/")?;
        let Some((group, inner)) = rest.split_once('/') else {
            return Some(Err(()));
        };
        // [MQTT-4.8.2-1] the ShareName is at least one character, no wildcards.
        if group.is_empty() || group.contains(['+', '#']) || inner.is_empty() {
            return Some(Err(()));
        }
        Some(Ok(SharedFilter {
            group,
            filter: inner,
        }))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn exact_and_wildcards() {
        assert!(matches("a/b/c", "a/b/c"));
        assert!(!matches("a/b/c", "a/b"));
        assert!(!matches("a/b", "a/b/c"));
        assert!(matches("a/+/c", "a/x/c"));
        assert!(matches("a/+/c", "a//c"));
        assert!(!matches("a/+/c", "a/x/y/c"));
        assert!(matches("a/#", "a"));
        assert!(matches("a/#", "a/b/c"));
        assert!(matches("#", "a/b"));
        assert!(matches("+", "a"));
        assert!(!matches("+", "a/b"));
        assert!(matches("+/+", "/a"));
        assert!(matches("/+", "/a"));
        assert!(!matches("a/b/#", "a"));
    }

    #[test]
    fn dollar_topics_not_matched_by_leading_wildcards() {
        assert!(!matches("#", "$SYS/x"));
        assert!(!matches("+/x", "$SYS/x"));
        assert!(matches("$SYS/#", "$SYS/x"));
        assert!(matches("$SYS/+", "$SYS/x"));
    }

    #[test]
    fn shared_filter_parse() {
        assert_eq!(
            SharedFilter::parse("$share/g/a/#"),
            Some(Ok(SharedFilter {
                group: "g",
                filter: "a/#"
            }))
        );
        assert_eq!(SharedFilter::parse("a/b"), None);
        assert_eq!(SharedFilter::parse("$share/g"), Some(Err(())));
        assert_eq!(SharedFilter::parse("$share//a"), Some(Err(())));
        assert_eq!(SharedFilter::parse("$share/g+/a"), Some(Err(())));
    }
}
