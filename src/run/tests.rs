//! Unit tests of `run`: how attempts aggregate into a verdict, deviations and skips.

use super::*;
use crate::scenario::Observation;
use crate::suite::StepRef;

fn at(step: usize, kind: Observation) -> Attempt {
    let mut f = Failure::general("no");
    f.step = Some(step);
    f.kind = Some(kind);
    Attempt {
        result: Err(Outcome::Fail(f)),
        warnings: Vec::new(),
        notes: Vec::new(),
    }
}

fn fail() -> Attempt {
    at(2, Observation::UnexpectedPacket)
}

fn pass() -> Attempt {
    Attempt {
        result: Ok(()),
        warnings: Vec::new(),
        notes: Vec::new(),
    }
}

fn verdict(attempts: Vec<Attempt>, d: Option<&Deviation>) -> Verdict {
    aggregate(attempts, d).verdict
}

#[test]
fn repetitions_aggregate_into_pass_fail_flaky_or_deviation() {
    assert!(matches!(verdict(vec![pass(), pass()], None), Verdict::Pass));
    assert!(matches!(
        verdict(vec![fail(), fail()], None),
        Verdict::Fail { .. }
    ));
    assert!(matches!(
        verdict(vec![pass(), fail(), pass()], None),
        Verdict::Flaky {
            passed: 2,
            failed: 1,
            ..
        }
    ));
    let timeout = Attempt {
        result: Err(Outcome::Timeout(Failure::general("slow"))),
        warnings: Vec::new(),
        notes: Vec::new(),
    };
    assert!(matches!(
        verdict(vec![timeout], None),
        Verdict::Timeout { .. }
    ));
    let d = Deviation {
        case: "c".into(),
        version: None,
        statement: "MQTT-1".into(),
        step: StepRef::Index(2),
        kind: Observation::UnexpectedPacket,
        reason: "r".into(),
    };
    assert!(matches!(
        verdict(vec![fail()], Some(&d)),
        Verdict::Deviation { .. }
    ));
    // A documented case that sometimes passes is flaky, not a deviation.
    assert!(matches!(
        verdict(vec![fail(), pass()], Some(&d)),
        Verdict::Flaky { .. }
    ));
}

#[test]
fn an_allowed_refusal_skips_the_run_and_is_never_a_deviation_or_stale() {
    let refused = || Attempt {
        result: Err(Outcome::NotApplicable("refused Keep Alive 0".into())),
        warnings: Vec::new(),
        notes: Vec::new(),
    };
    let d = Deviation {
        case: "c".into(),
        version: None,
        statement: "MQTT-1".into(),
        step: StepRef::Index(1),
        kind: Observation::ConnectionClosed,
        reason: "r".into(),
    };
    for deviation in [None, Some(&d)] {
        let a = aggregate(vec![pass(), refused()], deviation);
        match a.verdict {
            Verdict::Skipped { reason } => assert_eq!(reason, "refused Keep Alive 0"),
            v => panic!("{v:?}"),
        }
        assert_eq!(a.stale, None);
    }
}

#[test]
fn a_deviation_excuses_only_its_step_and_kind() {
    let d = Deviation {
        case: "c".into(),
        version: None,
        statement: "MQTT-1".into(),
        step: StepRef::Index(2),
        kind: Observation::ConnectionKeptOpen,
        reason: "r".into(),
    };
    assert!(matches!(
        verdict(vec![at(2, Observation::ConnectionKeptOpen)], Some(&d)),
        Verdict::Deviation { .. }
    ));
    for other in [
        at(3, Observation::ConnectionKeptOpen),
        at(2, Observation::MissingPacket),
        at(2, Observation::ConnectionRefused),
        at(2, Observation::ConnectionClosed),
        at(2, Observation::Harness),
        Attempt {
            result: Err(Outcome::Fail(Failure::general("Connection refused"))),
            warnings: Vec::new(),
            notes: Vec::new(),
        },
    ] {
        match verdict(vec![other], Some(&d)) {
            Verdict::Fail { failure } => assert!(failure.not_excused.is_some()),
            v => panic!("{v:?}"),
        }
    }
    let mut f = Failure::general("slow");
    f.step = Some(2);
    f.kind = Some(Observation::ConnectionKeptOpen);
    let timeout = Attempt {
        result: Err(Outcome::Timeout(f)),
        warnings: Vec::new(),
        notes: Vec::new(),
    };
    assert!(matches!(
        verdict(vec![timeout], Some(&d)),
        Verdict::Timeout { .. }
    ));
    // A deviation whose case passes is stale.
    let a = aggregate(vec![pass()], Some(&d));
    assert!(matches!(a.verdict, Verdict::Pass));
    assert_eq!(a.stale, Some(d));
}

#[test]
fn warnings_make_a_passing_run_a_warning() {
    let warned = Attempt {
        result: Ok(()),
        warnings: vec![Warning {
            step: 3,
            step_text: "expect".into(),
            statement: Some("MQTT-4.13.1-1".into()),
            kind: Observation::WrongReasonCode,
            message: "m".into(),
            expected: None,
            received: None,
        }],
        notes: Vec::new(),
    };
    let a = aggregate(vec![warned], None);
    assert!(matches!(a.verdict, Verdict::Warning));
    assert_eq!(a.warnings.len(), 1);
    assert!(!a.verdict.is_failure());
}
