//! Credentials out of reports: a broker URL as it may be shown. A leaf module, so that both
//! `sut/` and `run/` use it without importing each other.

/// A URL fit for reports: the client's URL parser prints credentials as `<credentials>`.
pub fn redact_url(url: &str) -> String {
    reference_broker::client::parse_url(url)
        .map(|u| u.to_string())
        .unwrap_or_else(|_| "<invalid broker URL>".to_string())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn credentials_never_show() {
        assert!(!redact_url("mqtt://u:secret@h:1883").contains("secret"));
        assert!(!redact_url("ws://u:secret@h:80/mqtt").contains("secret"));
        assert!(redact_url("mqtt://h:1883").contains("h:1883"));
        assert!(!redact_url("not a url ::: secret@").contains("secret"));
    }
}
