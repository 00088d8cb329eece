//! Whether two runs' outputs are the same: their summaries without wall-clock figures, and
//! the records that must not depend on how or where the jobs ran.

use std::path::Path;

/// The record files that must match byte for byte.
const SAME: [&str; 3] = ["timeline.csv", "clients.csv", "updates.csv"];

/// `summary.json` without its wall-clock figures.
pub(crate) fn summary(dir: &Path) -> serde_json::Value {
    let text = std::fs::read_to_string(dir.join("summary.json")).expect("summary.json");
    let mut v: serde_json::Value = serde_json::from_str(&text).expect("summary.json is JSON");
    if let Some(fields) = v.as_object_mut() {
        fields.remove("wall");
    }
    v
}

/// Fails, naming `what` and the file, unless `dir` holds `reference`'s results.
pub(crate) fn assert_same(reference: &Path, dir: &Path, what: &str) {
    assert_eq!(summary(reference), summary(dir), "{what}: summary.json");
    for file in SAME {
        let a = std::fs::read(reference.join(file)).expect("reference record");
        let b = std::fs::read(dir.join(file)).expect("record");
        assert!(a == b, "{what}: {file} differs");
    }
}
