//! The id of one run: it makes client ids, topics and secrets of concurrent runs distinct.
//! A leaf module, so that both `sut/` and `run/` use it without importing each other.

use std::time::SystemTime;

/// A short id that differs between runs: base 36 of the clock and the process id.
pub fn new_run_id() -> String {
    let nanos = SystemTime::now()
        .duration_since(SystemTime::UNIX_EPOCH)
        .map(|d| d.as_nanos())
        .unwrap_or(0);
    let mut n = (nanos ^ (u128::from(std::process::id()) << 40)) % 36u128.pow(6);
    let mut s = String::new();
    for _ in 0..6 {
        let d = u32::try_from(n % 36).unwrap_or(0);
        s.push(char::from_digit(d, 36).unwrap_or('0'));
        n /= 36;
    }
    s
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn run_ids_are_six_base36_characters() {
        let id = new_run_id();
        assert_eq!(id.len(), 6);
        assert!(id
            .chars()
            .all(|c| c.is_ascii_digit() || c.is_ascii_lowercase()));
    }
}
