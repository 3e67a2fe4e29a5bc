//! Where a step is written: the line of the n-th step of a case in its YAML file, so that a
//! failure report points at the line to look at.

/// The 1-based line of step `step` (1-based) of the case named `case` in the YAML `text`.
/// A file of one document is searched whatever its name (cases expanded from a matrix carry
/// derived names); steps written in flow style (`steps: [...]`) point at the `steps:` line.
pub fn step_line(text: &str, case: &str, step: usize) -> Option<usize> {
    let lines: Vec<&str> = text.lines().collect();
    let docs = documents(&lines);
    let doc = docs
        .iter()
        .find(|(from, to)| lines[*from..*to].iter().any(|l| names(l, case)))
        .or_else(|| (docs.len() == 1).then(|| &docs[0]))?;
    let (from, to) = *doc;
    let steps = (from..to).find(|&i| lines[i].starts_with("steps:"))?;
    let rest = lines[steps]["steps:".len()..].trim();
    if !rest.is_empty() && !rest.starts_with('#') {
        return Some(steps + 1);
    }
    let mut item_indent = None;
    let mut seen = 0;
    for (i, line) in lines.iter().enumerate().take(to).skip(steps + 1) {
        let body = line.trim_start();
        if body.is_empty() || body.starts_with('#') {
            continue;
        }
        let indent = line.len() - body.len();
        let is_item = body == "-" || body.starts_with("- ");
        let want = *item_indent.get_or_insert(indent);
        if indent < want || (indent == want && !is_item) {
            return None;
        }
        if indent == want && is_item {
            seen += 1;
            if seen == step {
                return Some(i + 1);
            }
        }
    }
    None
}

/// The `[from, to)` line ranges of the YAML documents in `lines`.
fn documents(lines: &[&str]) -> Vec<(usize, usize)> {
    let mut docs = Vec::new();
    let mut from = 0;
    for (i, l) in lines.iter().enumerate() {
        if l.starts_with("---") {
            if lines[from..i].iter().any(|l| !l.trim().is_empty()) {
                docs.push((from, i));
            }
            from = i + 1;
        }
    }
    if lines[from..].iter().any(|l| !l.trim().is_empty()) {
        docs.push((from, lines.len()));
    }
    docs
}

/// True when `line` is the top-level `name:` of `case`.
fn names(line: &str, case: &str) -> bool {
    line.strip_prefix("name:").is_some_and(|v| {
        let v = v.split(" #").next().unwrap_or(v).trim();
        v.trim_matches(|c| c == '"' || c == '\'') == case
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    const TWO: &str = "name: a\nsteps:\n  - connect: {client: a}\n  - publish:\n      topic: t\n\n  # c\n  - expect: {}\n---\nname: \"b\"\nclients: {}\nsteps:\n- x: 1\n- y: 2\ntags: []\n";

    #[test]
    fn finds_the_nth_step_of_the_named_case() {
        assert_eq!(step_line(TWO, "a", 1), Some(3));
        assert_eq!(step_line(TWO, "a", 2), Some(4));
        assert_eq!(step_line(TWO, "a", 3), Some(8));
        assert_eq!(step_line(TWO, "a", 4), None);
        assert_eq!(step_line(TWO, "b", 2), Some(14));
        assert_eq!(step_line(TWO, "b", 3), None);
        assert_eq!(step_line(TWO, "c", 1), None, "two documents, none named c");
    }

    #[test]
    fn one_document_and_flow_style() {
        let text = "name: m\nsteps: [{x: 1}, {y: 2}]\n";
        assert_eq!(step_line(text, "m-expanded", 2), Some(2));
    }
}
