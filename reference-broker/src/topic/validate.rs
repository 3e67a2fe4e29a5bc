//! Validation of topic names and topic filters (MQTT 3.1.1 section 4.7, MQTT 5 sections 4.7
//! and 4.8.2), independent of matching.

/// Why a topic name or topic filter is invalid.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum TopicError {
    /// The name or filter is empty.
    #[error("topic is empty")]
    Empty,
    /// A topic name contains `+` or `#`.
    #[error("topic name contains a wildcard")]
    WildcardInName,
    /// `#` is not the whole last level of a filter.
    #[error("multi-level wildcard '#' is not alone in the last level")]
    MisplacedMultiLevelWildcard,
    /// `+` shares its level with other characters.
    #[error("single-level wildcard '+' is not alone in its level")]
    MisplacedSingleLevelWildcard,
    /// A `$share/` filter has an empty or invalid share name or no filter after it.
    #[error("invalid shared subscription filter")]
    InvalidSharedSubscription,
    /// The topic contains U+0000.
    #[error("topic contains the null character")]
    NullCharacter,
}

/// The prefix of a shared subscription filter (MQTT 5 section 4.8.2).
pub const SHARE_PREFIX: &str = "$share/";

/// Check a topic name (PUBLISH, will topic, response topic): non-empty, no wildcards,
/// no U+0000.
pub fn validate_topic_name(name: &str) -> Result<(), TopicError> {
    // [MQTT-4.7.3-1] at least one character long.
    if name.is_empty() {
        return Err(TopicError::Empty);
    }
    // Fast path without early exit, so the compiler can vectorise it (decoder hot path).
    let suspicious = name.bytes().fold(0u8, |acc, b| {
        acc | u8::from(b == b'+') | u8::from(b == b'#') | u8::from(b == 0)
    });
    if suspicious == 0 {
        return Ok(());
    }
    for b in name.bytes() {
        match b {
            // [MQTT-4.7.1-1] (3.1.1) / [MQTT-4.7.0-1] (5): no wildcards in a topic name.
            b'+' | b'#' => return Err(TopicError::WildcardInName),
            // [MQTT-4.7.3-2] no null character.
            0 => return Err(TopicError::NullCharacter),
            _ => {}
        }
    }
    Ok(())
}

/// Check a topic filter (SUBSCRIBE, UNSUBSCRIBE) without shared-subscription syntax.
pub fn validate_topic_filter(filter: &str) -> Result<(), TopicError> {
    // [MQTT-4.7.3-1] at least one character long.
    if filter.is_empty() {
        return Err(TopicError::Empty);
    }
    if filter.as_bytes().contains(&0) {
        // [MQTT-4.7.3-2]
        return Err(TopicError::NullCharacter);
    }
    let mut levels = filter.split('/').peekable();
    while let Some(level) = levels.next() {
        if level.contains('#') {
            // [MQTT-4.7.1-2] (3.1.1) / [MQTT-4.7.1-1] (5): '#' alone, and last.
            if level != "#" || levels.peek().is_some() {
                return Err(TopicError::MisplacedMultiLevelWildcard);
            }
        }
        // [MQTT-4.7.1-3] (3.1.1) / [MQTT-4.7.1-2] (5): '+' occupies an entire level.
        if level.contains('+') && level != "+" {
            return Err(TopicError::MisplacedSingleLevelWildcard);
        }
    }
    Ok(())
}

/// Split a shared subscription filter `$share/{ShareName}/{filter}` into its share name
/// and filter; `None` when `filter` is not a shared subscription.
pub fn split_shared(filter: &str) -> Option<Result<(&str, &str), TopicError>> {
    let rest = filter.strip_prefix(SHARE_PREFIX)?;
    // [MQTT-4.8.2-1] a ShareName of at least one character; [MQTT-4.8.2-2] without '/',
    // '+' or '#', followed by '/' and a topic filter.
    let Some((share, inner)) = rest.split_once('/') else {
        return Some(Err(TopicError::InvalidSharedSubscription));
    };
    if share.is_empty() || share.contains(['+', '#']) || inner.is_empty() {
        return Some(Err(TopicError::InvalidSharedSubscription));
    }
    Some(Ok((share, inner)))
}

/// Check a topic filter as MQTT 5 reads it: shared subscriptions (`$share/name/filter`)
/// are checked for a valid share name and a valid inner filter.
pub fn validate_topic_filter_v5(filter: &str) -> Result<(), TopicError> {
    match split_shared(filter) {
        Some(Ok((_, inner))) => validate_topic_filter(inner),
        Some(Err(e)) => Err(e),
        None => validate_topic_filter(filter),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names() {
        assert_eq!(validate_topic_name("a/b"), Ok(()));
        assert_eq!(validate_topic_name("/"), Ok(()));
        assert_eq!(validate_topic_name(""), Err(TopicError::Empty));
        assert_eq!(validate_topic_name("a/+"), Err(TopicError::WildcardInName));
        assert_eq!(validate_topic_name("a#"), Err(TopicError::WildcardInName));
    }

    #[test]
    fn filters() {
        for ok in [
            "#",
            "+",
            "a/#",
            "+/+",
            "/+",
            "a/+/c",
            "sport/tennis/#",
            "$SYS/#",
        ] {
            assert_eq!(validate_topic_filter(ok), Ok(()), "{ok}");
        }
        assert_eq!(validate_topic_filter(""), Err(TopicError::Empty));
        for bad in ["a#", "a/#/b", "#/", "a/b#"] {
            assert_eq!(
                validate_topic_filter(bad),
                Err(TopicError::MisplacedMultiLevelWildcard),
                "{bad}"
            );
        }
        for bad in ["a+", "a/+b", "++"] {
            assert_eq!(
                validate_topic_filter(bad),
                Err(TopicError::MisplacedSingleLevelWildcard),
                "{bad}"
            );
        }
    }

    #[test]
    fn shared() {
        assert_eq!(validate_topic_filter_v5("$share/g/a/#"), Ok(()));
        assert_eq!(split_shared("$share/g/a/b"), Some(Ok(("g", "a/b"))));
        for bad in [
            "$share/",
            "$share//a",
            "$share/g",
            "$share/g/",
            "$share/g+/a",
        ] {
            assert_eq!(
                validate_topic_filter_v5(bad),
                Err(TopicError::InvalidSharedSubscription),
                "{bad}"
            );
        }
        assert_eq!(split_shared("a/b"), None);
    }
}
