//! THE test: every suite in `suites/` runs against the in-process reference broker and every
//! case must pass (a skipped case must say why; nothing may fail, time out or be flaky).
#![allow(clippy::unwrap_used)]

mod common;

use std::time::Duration;

use mqtt_conformance::report::console;
use mqtt_conformance::run::Verdict;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_suite_passes_against_the_reference_broker() {
    let root = common::repo();
    let results = common::run_root(&root, "reference", Duration::from_secs(15), false, 16).await;
    assert!(!results.is_empty(), "no case ran");
    let bad: Vec<_> = results
        .iter()
        .filter(|r| !matches!(r.verdict, Verdict::Pass | Verdict::Skipped { .. }))
        .cloned()
        .collect();
    assert!(
        bad.is_empty(),
        "{} of {} runs did not pass:\n{}",
        bad.len(),
        results.len(),
        console::render(&bad, Duration::ZERO)
    );
    for r in &results {
        if let Verdict::Skipped { reason } = &r.verdict {
            assert!(!reason.is_empty());
            eprintln!("skipped {} [{}]: {reason}", r.case, r.version);
        }
    }
    assert!(results.iter().any(|r| matches!(r.verdict, Verdict::Pass)));
}
