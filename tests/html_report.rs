//! The HTML report in a real browser: headless Chromium renders `run --html` (a passing and a
//! failing case), every case appears, the URL-fragment verdict filter hides the others, and a
//! phone-sized screenshot is kept in `reports/html-report.png`. Skips with a printed reason
//! when Chromium is not installed (`.ci/run` installs Debian's `chromium`).
#![allow(clippy::unwrap_used)]

mod common;

use std::path::Path;
use std::process::Command;
use std::time::Duration;

fn chromium() -> Option<&'static str> {
    ["chromium", "chromium-browser", "google-chrome"]
        .into_iter()
        .find(|b| {
            Command::new(b)
                .arg("--version")
                .output()
                .is_ok_and(|o| o.status.success())
        })
}

fn headless(browser: &str, extra: &[&str], url: &str) -> String {
    let mut child = Command::new(browser)
        .args([
            "--headless",
            "--no-sandbox",
            "--disable-gpu",
            "--window-size=412,900",
        ])
        .args(extra)
        .arg(url)
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::null())
        .spawn()
        .unwrap();
    // Bounded: a browser that hangs fails the test instead of blocking it.
    let deadline = std::time::Instant::now() + Duration::from_secs(60);
    while child.try_wait().unwrap().is_none() {
        assert!(
            std::time::Instant::now() < deadline,
            "chromium did not finish"
        );
        std::thread::sleep(Duration::from_millis(50));
    }
    let out = child.wait_with_output().unwrap();
    String::from_utf8_lossy(&out.stdout).into_owned()
}

fn count(dom: &str, needle: &str) -> usize {
    dom.split("<details class=\"case\"")
        .skip(1)
        .filter(|c| c.split('>').next().unwrap_or("").contains(needle))
        .count()
}

#[test]
fn chromium_renders_every_case_and_the_verdict_filter_hides_the_rest() {
    let Some(browser) = chromium() else {
        eprintln!("skipped: chromium is not installed (apt-get install chromium)");
        return;
    };
    let dir = common::temp_root(&[
        common::ALL_SUITE,
        ("scenarios/x/pass.yaml", common::PASSING),
        ("scenarios/x/fail.yaml", common::FAILING),
    ]);
    let html = dir.path().join("out/report.html");
    let out = common::cli(
        dir.path(),
        &["run", "--no-junit", "--html", html.to_str().unwrap()],
    );
    assert_eq!(out.status.code(), Some(1), "{:?}", common::text(&out));
    let url = format!("file://{}", html.display());
    let all = headless(browser, &["--dump-dom"], &url);
    assert_eq!(count(&all, ""), 3, "every case run appears");
    assert_eq!(count(&all, "hidden"), 0);
    assert!(all.contains("3 of 3 case runs shown"), "the script ran");
    let failed = headless(browser, &["--dump-dom"], &format!("{url}#verdict=fail"));
    assert_eq!(count(&failed, "hidden"), 2, "the filter hides the passes");
    assert!(failed.contains("1 of 3 case runs shown"));
    let shown: Vec<&str> = failed
        .split("<details class=\"case\"")
        .skip(1)
        .filter(|c| !c.split('>').next().unwrap_or("").contains("hidden"))
        .collect();
    assert!(shown[0].contains("fail-wrong-payload"));
    let png = Path::new(env!("CARGO_MANIFEST_DIR")).join("reports/html-report.png");
    std::fs::create_dir_all(png.parent().unwrap()).unwrap();
    let _ = std::fs::remove_file(&png);
    let shot = format!("--screenshot={}", png.display());
    headless(browser, &[&shot], &format!("{url}#verdict=fail"));
    assert!(
        std::fs::metadata(&png).unwrap().len() > 1000,
        "screenshot written"
    );
}
