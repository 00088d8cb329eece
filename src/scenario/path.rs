//! Field paths such as `population[0].uplink.bandwidth`: how `run --set` and sweeps change
//! one field of a scenario, through its JSON form.
//!
//! A path passes through enum variants, so `algorithm.deadline` reaches FedAvg's deadline.
//! Values are written as in the scenario (RON).

use serde_json::Value;

use super::{Loaded, Scenario, ScenarioError, SweepValue, ron_options};

/// Why a field path cannot be followed.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum PathError {
    /// The text is not a path at all.
    #[error("`{path}` is not a field path (like `population[0].count`)")]
    NotAPath {
        /// The path as written.
        path: String,
    },
    /// A `[` without its `]`.
    #[error("`{path}`: unclosed `[`")]
    Unclosed {
        /// The path as written.
        path: String,
    },
    /// An index that is not a number.
    #[error("`{path}`: `{index}` is not an index")]
    NotAnIndex {
        /// The path as written.
        path: String,
        /// What stands between the brackets.
        index: String,
    },
    /// Text after an index that is not a field.
    #[error("`{path}`: unexpected `{rest}`")]
    Unexpected {
        /// The path as written.
        path: String,
        /// The stray text.
        rest: String,
    },
    /// A field that does not exist where the path reached.
    #[error("{here} has no field `{key}`; valid fields: {}", valid.join(", "))]
    NoField {
        /// Where the path got to.
        here: String,
        /// The field asked for.
        key: String,
        /// The fields there are, sorted.
        valid: Vec<String>,
    },
    /// An index past the end of a list.
    #[error("{here} has {len} entries, so [{index}] is out of range")]
    OutOfRange {
        /// Where the path got to.
        here: String,
        /// Entries in the list.
        len: usize,
        /// The index asked for.
        index: usize,
    },
    /// A field name where the path reached a list.
    #[error("{here} is a list: pick an entry first, e.g. `{here}[0].{key}`")]
    List {
        /// Where the path got to.
        here: String,
        /// The field asked for.
        key: String,
    },
    /// A field or an index where the path reached a plain value.
    #[error("{here} is {value}, which has no {wanted}")]
    Leaf {
        /// Where the path got to.
        here: String,
        /// The value there, described.
        value: String,
        /// The field or entry asked for, described.
        wanted: String,
    },
}

/// Why a `--set path=value` cannot be applied.
#[derive(Debug, thiserror::Error)]
pub enum OverrideError {
    /// No `=` in the assignment.
    #[error("write it as path=value, e.g. pool.backend=Tch")]
    NotAnAssignment,
    /// The value does not parse.
    #[error("the value is not RON")]
    NotRon(#[source] ron::error::SpannedError),
    /// The path does not lead to a field.
    #[error(transparent)]
    Path(#[from] PathError),
    /// The value does not fit the field.
    #[error("the value does not fit the field")]
    Mismatch(#[source] serde_json::Error),
}

/// The scenario with one field changed, not yet validated: `assignment` is `path=value`,
/// the value written as in the scenario (RON), e.g. `pool.backend=Tch` or
/// `training.batch_size=64`.
pub(super) fn assign(loaded: &Loaded, assignment: &str) -> Result<Loaded, ScenarioError> {
    let apply = || -> Result<Scenario, OverrideError> {
        let (path, text) = assignment
            .split_once('=')
            .ok_or(OverrideError::NotAnAssignment)?;
        let SweepValue::Value(value) = ron_options()
            .from_str::<SweepValue>(text.trim())
            .map_err(OverrideError::NotRon)?;
        let mut json = to_json(&loaded.scenario);
        set_field(&mut json, path.trim(), value)?;
        let mut scenario: Scenario =
            serde_json::from_value(json).map_err(OverrideError::Mismatch)?;
        scenario.sweep = loaded.scenario.sweep.clone();
        Ok(scenario)
    };
    let scenario = apply().map_err(|e| loaded.refused(format!("--set {assignment}"), e))?;
    Ok(Loaded {
        scenario,
        file: loaded.file.clone(),
        base: loaded.base.clone(),
    })
}

/// A scenario's JSON form, which field paths walk (enums as `{"Variant": ...}`).
pub(crate) fn to_json(scenario: &Scenario) -> Value {
    serde_json::to_value(scenario).expect("a scenario serializes to JSON")
}

/// Sets the field at `path` (`a.b[2].c`) of `root` to `value`; enum variants are passed
/// through. Errors name the path and list the valid fields where it went wrong.
pub(crate) fn set_field(root: &mut Value, path: &str, value: Value) -> Result<(), PathError> {
    let mut node = root;
    let mut walked = String::new();
    for seg in segments(path)? {
        node = step(node, &seg, &walked)?;
        match seg {
            Seg::Key(k) => {
                if !walked.is_empty() {
                    walked.push('.');
                }
                walked += &k;
            }
            Seg::Index(i) => walked += &format!("[{i}]"),
        }
    }
    *node = value;
    Ok(())
}

/// Whether `map` is an enum variant's JSON form: a single key naming the variant.
pub(crate) fn is_variant(map: &serde_json::Map<String, Value>) -> bool {
    map.len() == 1 && map.keys().all(|k| k.starts_with(char::is_uppercase))
}

#[derive(Debug)]
enum Seg {
    Key(String),
    Index(usize),
}

fn segments(path: &str) -> Result<Vec<Seg>, PathError> {
    let mut out = Vec::new();
    for part in path.split('.') {
        let (key, mut rest) = part.split_at(part.find('[').unwrap_or(part.len()));
        if key.is_empty() && (out.is_empty() || rest.is_empty()) {
            return Err(PathError::NotAPath { path: path.into() });
        }
        if !key.is_empty() {
            out.push(Seg::Key(key.to_string()));
        }
        while let Some(r) = rest.strip_prefix('[') {
            let end = r
                .find(']')
                .ok_or_else(|| PathError::Unclosed { path: path.into() })?;
            let i = r[..end].parse().map_err(|_| PathError::NotAnIndex {
                path: path.into(),
                index: r[..end].into(),
            })?;
            out.push(Seg::Index(i));
            rest = &r[end + 1..];
        }
        if !rest.is_empty() {
            return Err(PathError::Unexpected {
                path: path.into(),
                rest: rest.into(),
            });
        }
    }
    Ok(out)
}

fn step<'a>(node: &'a mut Value, seg: &Seg, walked: &str) -> Result<&'a mut Value, PathError> {
    let here = if walked.is_empty() {
        "the scenario".to_string()
    } else {
        walked.to_string()
    };
    // An enum variant is passed through unless the segment names it.
    let through = matches!(&*node, Value::Object(map)
        if is_variant(map) && !matches!(seg, Seg::Key(k) if map.contains_key(k)));
    if through && let Value::Object(map) = node {
        let inner = map.values_mut().next().expect("a variant holds one value");
        return step(inner, seg, walked);
    }
    match (node, seg) {
        (Value::Object(map), Seg::Key(k)) => {
            if !map.contains_key(k) {
                let mut valid: Vec<String> = map.keys().cloned().collect();
                valid.sort_unstable();
                return Err(PathError::NoField {
                    here,
                    key: k.clone(),
                    valid,
                });
            }
            Ok(map.get_mut(k).expect("present"))
        }
        (Value::Array(items), Seg::Index(i)) => {
            let len = items.len();
            items.get_mut(*i).ok_or(PathError::OutOfRange {
                here,
                len,
                index: *i,
            })
        }
        (Value::Array(_), Seg::Key(k)) => Err(PathError::List {
            here: walked.to_string(),
            key: k.clone(),
        }),
        (other, seg) => Err(PathError::Leaf {
            here,
            value: match other {
                Value::Null => "not set (none)".to_string(),
                Value::String(s) => format!("the value \"{s}\""),
                v => format!("the value {v}"),
            },
            wanted: match seg {
                Seg::Key(k) => format!("field `{k}`"),
                Seg::Index(i) => format!("entry [{i}]"),
            },
        }),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fields_are_set_through_enum_variants_and_a_wrong_name_is_an_error() {
        let mut v = serde_json::json!({"pool": {"workers": 2}, "algorithm": {"FedAvg": {"deadline": null}}});
        set_field(&mut v, "pool.workers", 4.into()).unwrap();
        set_field(&mut v, "algorithm.deadline", "2m".into()).unwrap();
        assert_eq!(v["pool"]["workers"], 4);
        assert_eq!(v["algorithm"]["FedAvg"]["deadline"], "2m");
        assert!(set_field(&mut v, "pool.wrokers", 1.into()).is_err());
    }
}
