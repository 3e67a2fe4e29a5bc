//! Where each deviation of a manifest is written: a second, lenient read of the YAML that
//! keeps only locations, so that an invalid deviation is reported at `file:line:column`.

use std::collections::BTreeMap;

use serde::de::IgnoredAny;
use serde::Deserialize;
use serde_saphyr::Spanned;

use super::deviation::Field;

type At = Option<Spanned<IgnoredAny>>;

#[derive(Debug, Default, Deserialize)]
struct DeviationSpans {
    #[serde(default)]
    case: At,
    #[serde(default)]
    version: At,
    #[serde(default)]
    statement: At,
    #[serde(default)]
    step: At,
    #[serde(default)]
    kind: At,
}

#[derive(Debug, Default, Deserialize)]
struct ManifestSpans {
    #[serde(default)]
    deviations: BTreeMap<String, Vec<Spanned<DeviationSpans>>>,
}

/// The locations of a manifest's deviations, by broker and position.
#[derive(Debug, Default)]
pub(super) struct Spans(ManifestSpans);

/// Read the locations of the deviations in manifest `text` (none if it does not parse: the
/// manifest's own read reports that).
pub(super) fn deviations(text: &str) -> Spans {
    Spans(serde_saphyr::from_str(text).unwrap_or_default())
}

impl Spans {
    /// 1-based line and column of `field` of deviation `index` of `broker`: the field's value,
    /// else the deviation itself, else `(0, 0)`.
    pub(super) fn locate(&self, broker: &str, index: usize, field: Field) -> (u32, u32) {
        let Some(d) = self.0.deviations.get(broker).and_then(|l| l.get(index)) else {
            return (0, 0);
        };
        let v = &d.value;
        let at = match field {
            Field::Case => &v.case,
            Field::Version => &v.version,
            Field::Statement => &v.statement,
            Field::Step => &v.step,
            Field::Kind => &v.kind,
        };
        let loc = at.as_ref().map_or(d.referenced, |s| s.referenced);
        (
            u32::try_from(loc.line()).unwrap_or(u32::MAX),
            u32::try_from(loc.column()).unwrap_or(u32::MAX),
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fields_of_block_and_flow_deviations_are_located() {
        let text = "name: s\ndeviations:\n  m:\n    - {case: a, statement: S, step: 1, kind: missing-packet, reason: r}\n    - case: b\n      version: \"5\"\n      step: 9\n";
        let s = deviations(text);
        assert_eq!(s.locate("m", 0, Field::Step), (4, 37));
        assert_eq!(s.locate("m", 1, Field::Step), (7, 13));
        assert_eq!(s.locate("m", 1, Field::Version), (6, 16));
        assert_eq!(s.locate("x", 0, Field::Step), (0, 0));
    }
}
