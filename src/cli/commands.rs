//! The smaller subcommands: `selftest`, `probe`, `compare`, `list` and `validate`.

use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::time::Duration;

use anyhow::Context;
use mqtt_conformance::profile::Profile;
use mqtt_conformance::report::compare;
use mqtt_conformance::run;
use mqtt_conformance::scenario;
use mqtt_conformance::suite;
use mqtt_conformance::sut;
use mqtt_conformance::{coverage, exit, selftest};
use reference_broker::client::TransportOptions;

use super::args::{CompareArgs, ListArgs, ProbeArgs, SelftestArgs};
use crate::load_suites;

pub(crate) async fn selftest(root: &Path, args: SelftestArgs) -> anyhow::Result<ExitCode> {
    let (suites, invalid) = load_suites(root, &[])?;
    if invalid > 0 {
        anyhow::bail!("{invalid} invalid scenario file(s): fix them before a selftest");
    }
    let mut opts = selftest::Options {
        jobs: args.jobs,
        filter: args.filter,
        ..selftest::Options::default()
    };
    if let Some(n) = args.subjects {
        opts.subjects_at_once = n;
    }
    let (results, elapsed) = selftest::run(&suites, &opts).await?;
    let summary = selftest::report::summarise(root, &suites, &results, elapsed)?;
    let mut out = std::io::stdout().lock();
    if args.json {
        serde_json::to_writer_pretty(&mut out, &summary)?;
        writeln!(out)?;
    } else {
        selftest::report::print(&mut out, &summary)?;
    }
    Ok(ExitCode::from(if summary.ok() {
        exit::SUCCESS
    } else {
        exit::FAILURES
    }))
}

/// The `probe` subcommand: discovery only, printed as a table (or JSON).
pub(crate) async fn probe(args: ProbeArgs) -> anyhow::Result<ExitCode> {
    let (url, mut credentials) = sut::split_credentials(&args.url);
    let profile = match &args.profile {
        Some(path) => Profile::load(path)?,
        None => Profile::default(),
    };
    if credentials.is_none() {
        credentials = profile.credential_pair();
    }
    let root = profile
        .acl
        .topic_root
        .as_deref()
        .unwrap_or(sut::probe::DEFAULT_ROOT);
    let transport = TransportOptions {
        insecure_tls: args.insecure,
        ca_file: args.ca_file.clone(),
        connect_timeout: Some(Duration::from_secs(5)),
        ..TransportOptions::default()
    };
    let run_id = run::new_run_id();
    let found =
        sut::probe::discover_rooted(&url, &transport, &run_id, credentials.as_ref(), root).await?;
    if let Some(path) = &args.write_profile {
        let mut written = found.profile(credentials.as_ref());
        written.acl = profile.acl.clone();
        written.broker = profile.broker.clone();
        std::fs::write(path, written.to_toml())
            .with_context(|| format!("cannot write {}", path.display()))?;
        eprintln!("profile written to {}", path.display());
    }
    let mut out = std::io::stdout().lock();
    if args.json {
        serde_json::to_writer_pretty(&mut out, &found)?;
        writeln!(out)?;
    } else {
        writeln!(out, "probe of {}", found.url)?;
        let rows = found.rows();
        let width = rows.iter().map(|(k, _)| k.len()).max().unwrap_or(0);
        for (what, finding) in rows {
            writeln!(out, "  {what:<width$}  {finding}")?;
        }
    }
    Ok(ExitCode::from(exit::SUCCESS))
}

pub(crate) fn compare_runs(args: &CompareArgs) -> anyhow::Result<ExitCode> {
    let columns = compare::load(&args.runs)?;
    if let Some(path) = &args.html {
        mqtt_conformance::report::html::write_file(path, &compare::html(&columns))?;
    }
    let text = if args.markdown {
        compare::markdown(&columns)
    } else {
        compare::text(&columns)
    };
    std::io::stdout().write_all(text.as_bytes())?;
    Ok(ExitCode::from(exit::SUCCESS))
}

pub(crate) fn list(root: &Path, args: &ListArgs) -> anyhow::Result<ExitCode> {
    let mut out = std::io::stdout().lock();
    if args.coverage {
        let mut cases = Vec::new();
        let mut invalid = 0;
        for f in suite::walk(&root.join("scenarios")) {
            if !f.extension().is_some_and(|e| e == "yaml" || e == "yml") {
                continue;
            }
            match scenario::load_file(&f) {
                Ok(c) => cases.extend(c),
                Err(e) => {
                    eprintln!("invalid scenario: {e}");
                    invalid += 1;
                }
            }
        }
        let cov = coverage::compute(root, &cases)?;
        if args.json {
            serde_json::to_writer_pretty(&mut out, &cov)?;
            writeln!(out)?;
        } else {
            for (version, c) in &cov {
                writeln!(
                    out,
                    "MQTT {version}: {} statements, {} covered, {} explained as unobservable, {} open",
                    c.total,
                    c.covered,
                    c.explained,
                    c.uncovered.len()
                )?;
                let mut sections: Vec<_> = c.sections.iter().collect();
                sections.sort_by_key(|(name, _)| coverage::section_key(name));
                for (section, s) in sections {
                    writeln!(
                        out,
                        "  {section:<6} {:>3} total {:>3} covered {:>3} explained",
                        s.total, s.covered, s.explained
                    )?;
                }
                if !c.uncovered.is_empty() {
                    writeln!(out, "  open: {}", c.uncovered.join(", "))?;
                }
                if !c.unknown.is_empty() {
                    writeln!(
                        out,
                        "  cited but not statements of {version}: {}",
                        c.unknown.join(", ")
                    )?;
                }
            }
        }
        return Ok(ExitCode::from(if invalid > 0 {
            exit::USAGE
        } else {
            exit::SUCCESS
        }));
    }
    let (suites, invalid) = load_suites(root, &[])?;
    if args.json {
        let doc: Vec<serde_json::Value> = suites
            .iter()
            .map(|s| {
                serde_json::json!({
                    "suite": s.manifest.name,
                    "cases": s.cases.iter().map(|c| serde_json::json!({
                        "name": c.scenario.name,
                        "feature": c.feature,
                        "file": c.file,
                        "versions": c.scenario.versions,
                        "tags": c.scenario.tags,
                    })).collect::<Vec<_>>(),
                })
            })
            .collect();
        serde_json::to_writer_pretty(&mut out, &doc)?;
        writeln!(out)?;
    } else {
        for s in &suites {
            writeln!(out, "{} ({} cases)", s.manifest.name, s.cases.len())?;
            for c in &s.cases {
                let versions: Vec<&str> = c
                    .scenario
                    .versions
                    .iter()
                    .filter(|v| s.runs_version(**v))
                    .map(|v| v.label())
                    .collect();
                if versions.is_empty() {
                    continue;
                }
                writeln!(
                    out,
                    "  {:<40} [{}] {}",
                    c.scenario.name,
                    versions.join(", "),
                    c.file.display()
                )?;
            }
        }
    }
    Ok(ExitCode::from(if invalid > 0 {
        exit::USAGE
    } else {
        exit::SUCCESS
    }))
}

/// A suite manifest: every invalid scenario it selects, and a selection that is empty.
fn validate_manifest(f: &Path, root: &Path) -> Result<String, Vec<String>> {
    let (s, errors) = suite::load(f, root).map_err(|e| vec![e.to_string()])?;
    if !errors.is_empty() {
        return Err(errors.iter().map(ToString::to_string).collect());
    }
    if s.cases.is_empty() {
        return Err(vec![format!(
            "{}: suite {} selects no case (its scenario globs match no file under {})",
            f.display(),
            s.manifest.name,
            root.join("scenarios").display()
        )]);
    }
    Ok(format!(
        "suite {} ({} cases)",
        s.manifest.name,
        s.cases.len()
    ))
}

/// A scenario file: the typed model's error, every schema violation, and every cited
/// statement ID that is not a statement of its version.
fn validate_scenario(
    f: &Path,
    validator: &scenario::schema::SchemaValidator,
) -> Result<String, Vec<String>> {
    let text = std::fs::read_to_string(f).map_err(|e| vec![format!("{}: {e}", f.display())])?;
    let mut errors: Vec<String> = Vec::new();
    let loaded = scenario::load_file(f);
    if let Err(e) = &loaded {
        errors.push(e.to_string());
    }
    // Generated cases are checked as generated: the schema sees each expanded document.
    let parts = scenario::matrix::expand(&text, f).unwrap_or_default();
    for v in parts.iter().flat_map(|p| validator.check(&p.text, f)) {
        let v = v.to_string();
        if !errors.contains(&v) {
            errors.push(v);
        }
    }
    let cases = loaded.unwrap_or_default();
    for case in &cases {
        for (version, ids) in &case.scenario.spec {
            for id in ids {
                if coverage::statement(*version, id).is_none() {
                    errors.push(format!(
                        "{}: case {}: {id} is not a normative statement of MQTT {version} (see suites/spec/)",
                        f.display(),
                        case.scenario.name
                    ));
                }
            }
        }
    }
    if errors.is_empty() {
        Ok(format!("{} case(s)", cases.len()))
    } else {
        Err(errors)
    }
}

pub(crate) fn validate(root: &Path, paths: &[PathBuf]) -> anyhow::Result<ExitCode> {
    let mut files = Vec::new();
    for p in paths {
        if p.is_dir() {
            files.extend(
                suite::walk(p)
                    .into_iter()
                    .filter(|f| f.extension().is_some_and(|e| e == "yaml" || e == "yml")),
            );
        } else {
            files.push(p.clone());
        }
    }
    let schema_path = root.join("suites/schema.json");
    let schema = match std::fs::read_to_string(&schema_path) {
        Ok(text) => serde_json::from_str(&text)
            .with_context(|| format!("{} is not JSON", schema_path.display()))?,
        Err(_) => scenario::schema::json_schema(),
    };
    let validator = scenario::schema::SchemaValidator::new(&schema).map_err(|e| {
        anyhow::anyhow!("{} is not a valid JSON Schema: {e}", schema_path.display())
    })?;
    if files.is_empty() {
        anyhow::bail!("nothing to validate: no .yaml file in the paths given");
    }
    let mut bad = 0;
    for f in &files {
        if f.file_name().is_some_and(|n| n == "unobservable.yaml") {
            continue;
        }
        let is_manifest = f
            .parent()
            .and_then(|d| d.file_name())
            .is_some_and(|n| n == "suites");
        let result = if is_manifest {
            validate_manifest(f, root)
        } else {
            validate_scenario(f, &validator)
        };
        match result {
            Ok(what) => println!("ok {}: {what}", f.display()),
            Err(errors) => {
                for e in &errors {
                    eprintln!("{e}");
                }
                bad += 1;
            }
        }
    }
    if bad > 0 {
        eprintln!("{bad} of {} file(s) invalid", files.len());
        return Ok(ExitCode::from(exit::USAGE));
    }
    Ok(ExitCode::from(exit::SUCCESS))
}
