//! `mqtt-conformance selftest` as a test: the suites run in-process against every broker
//! variant (each must pass every case) and every deliberate defect (each must be caught by at
//! least one case). A failure names the variant and its failing cases, or the missed defects.

use std::path::Path;

use mqtt_conformance::selftest::{self, report};
use mqtt_conformance::suite;

// Runs every suite about 90 times (about 4 minutes on 2 idle cores) and times keep alive: kept
// out of the everyday `cargo test --workspace` on shared machines; `.ci/run` runs it.
#[ignore = "4 minutes; run with: cargo test --test selftest -- --ignored"]
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_variant_passes_and_every_defect_is_caught() -> Result<(), Box<dyn std::error::Error>>
{
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let mut suites = Vec::new();
    for file in suite::resolve(root, &[])? {
        let (s, errors) = suite::load(&file, root)?;
        assert!(errors.is_empty(), "invalid scenarios: {errors:?}");
        suites.push(s);
    }
    let (results, elapsed) = selftest::run(&suites, &selftest::Options::default()).await?;
    let summary = report::summarise(root, &suites, &results, elapsed)?;
    let mut text = Vec::new();
    report::print(&mut text, &summary)?;
    let text = String::from_utf8_lossy(&text);
    println!("{text}");
    assert!(summary.variants.total >= 25, "{text}");
    assert!(summary.defects.total >= 40, "{text}");
    assert!(summary.ok(), "{text}");
    Ok(())
}
