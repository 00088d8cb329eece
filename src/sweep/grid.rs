//! A sweep's grid: its axes expanded into points, each a validated scenario.

use serde_json::Value;

use crate::scenario::{
    Loaded, PathError, Rule, Scenario, ScenarioError, SweepAxis, SweepSection, SweepValue,
    is_variant, set_field, to_json,
};

/// One point of a sweep: its scenario and its place in the grid.
#[derive(Clone, Debug)]
pub struct Point {
    /// Position in the grid, from 0 (the first axis varies slowest, repeats fastest).
    pub index: usize,
    /// One label per axis.
    pub labels: Vec<String>,
    /// Which repeat of the point, from 0.
    pub repeat: u32,
    /// The point's scenario, validated.
    pub loaded: Loaded,
}

impl Point {
    /// The point's directory name: its index and labels.
    pub(crate) fn dir_name(&self) -> String {
        let mut name = format!("p{:03}", self.index);
        for l in &self.labels {
            name.push('-');
            name.extend(l.chars().map(|c| {
                if c.is_ascii_alphanumeric() || c == '.' {
                    c
                } else {
                    '_'
                }
            }));
        }
        if self.repeat > 0 {
            name += &format!("-r{}", self.repeat);
        }
        name
    }
}

/// The axes' names (their `name`, else the field).
pub(crate) fn axis_names(sweep: &SweepSection) -> Vec<String> {
    sweep
        .axes
        .iter()
        .map(|a| a.name.clone().unwrap_or_else(|| a.field.clone()))
        .collect()
}

/// Expands the scenario's sweep into validated points; `None` without a sweep section.
pub fn points(loaded: &Loaded) -> Result<Option<Vec<Point>>, ScenarioError> {
    let Some(sweep) = &loaded.scenario.sweep else {
        return Ok(None);
    };
    if sweep.axes.is_empty() {
        return Err(loaded.invalid("sweep.axes", "name at least one axis"));
    }
    loaded.require("sweep.repeat", sweep.repeat, Rule::AtLeastOne)?;
    let mut base = loaded.scenario.clone();
    base.sweep = None;
    let base = to_json(&base);
    // Check every axis's paths and values once, against the base scenario.
    let mut labels = Vec::new();
    for (a, axis) in sweep.axes.iter().enumerate() {
        let at = |f: &str| format!("sweep.axes[{a}].{f}");
        if axis.values.is_empty() {
            return Err(loaded.invalid(at("values"), "list at least one value"));
        }
        if !axis.labels.is_empty() && axis.labels.len() != axis.values.len() {
            return Err(loaded.invalid(
                at("labels"),
                format!(
                    "{} labels for {} values",
                    axis.labels.len(),
                    axis.values.len()
                ),
            ));
        }
        for (v, value) in axis.values.iter().enumerate() {
            let mut probe = base.clone();
            apply(&mut probe, axis, value).map_err(|e| loaded.refused(at("field"), e))?;
            serde_json::from_value::<Scenario>(probe)
                .map_err(|e| loaded.refused(format!("sweep.axes[{a}].values[{v}]"), e))?;
        }
        labels.push(if axis.labels.is_empty() {
            axis.values
                .iter()
                .map(|SweepValue::Value(v)| label(v))
                .collect()
        } else {
            axis.labels.clone()
        });
    }
    let mut out = Vec::new();
    let sizes: Vec<usize> = sweep.axes.iter().map(|a| a.values.len()).collect();
    let combos: usize = sizes.iter().product();
    for combo in 0..combos {
        // Mixed-radix digits, the first axis most significant.
        let mut rest = combo;
        let mut choice = vec![0; sizes.len()];
        for (i, &n) in sizes.iter().enumerate().rev() {
            choice[i] = rest % n;
            rest /= n;
        }
        let mut json = base.clone();
        for (axis, &c) in sweep.axes.iter().zip(&choice) {
            apply(&mut json, axis, &axis.values[c]).expect("checked above");
        }
        let scenario: Scenario = serde_json::from_value(json).expect("checked above");
        let point_labels: Vec<String> = choice
            .iter()
            .enumerate()
            .map(|(a, &c)| labels[a][c].clone())
            .collect();
        for repeat in 0..sweep.repeat {
            let mut scenario = scenario.clone();
            scenario.seed = scenario.seed.wrapping_add(repeat as u64);
            // Points share one process: only a single run may serve metrics.
            scenario.monitoring.prometheus = None;
            let point = Loaded {
                scenario,
                file: loaded.file.clone(),
                base: loaded.base.clone(),
            };
            point.validate().map_err(|e| ScenarioError::Point {
                file: loaded.file.clone(),
                point: point_labels.join(", "),
                source: Box::new(e),
            })?;
            out.push(Point {
                index: out.len(),
                labels: point_labels.clone(),
                repeat,
                loaded: point,
            });
        }
    }
    Ok(Some(out))
}

/// Why an axis's value cannot be set.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum AxisError {
    /// A field path that leads nowhere.
    #[error(transparent)]
    Path(#[from] PathError),
    /// Several fields set together, but a value that is not a list of one entry each.
    #[error(
        "{fields} fields are set together, so each value must list {fields} entries, e.g. ({example}), got {value}"
    )]
    NotAList {
        /// Fields the axis sets.
        fields: usize,
        /// What such a value looks like.
        example: String,
        /// The value given.
        value: String,
    },
    /// A list whose length is not the number of fields.
    #[error("{fields} fields but a value with {entries} entries: {value}")]
    Arity {
        /// Fields the axis sets.
        fields: usize,
        /// Entries the value lists.
        entries: usize,
        /// The value given.
        value: String,
    },
}

/// Sets the axis's field(s) to `value` in a scenario's JSON form.
fn apply(
    json: &mut Value,
    axis: &SweepAxis,
    SweepValue::Value(value): &SweepValue,
) -> Result<(), AxisError> {
    let fields: Vec<&str> = axis.field.split(',').map(str::trim).collect();
    if fields.len() == 1 {
        return Ok(set_field(json, fields[0], value.clone())?);
    }
    let Value::Array(parts) = value else {
        return Err(AxisError::NotAList {
            fields: fields.len(),
            example: vec!["..."; fields.len()].join(", "),
            value: value.to_string(),
        });
    };
    if parts.len() != fields.len() {
        return Err(AxisError::Arity {
            fields: fields.len(),
            entries: parts.len(),
            value: value.to_string(),
        });
    }
    for (f, v) in fields.iter().zip(parts) {
        set_field(json, f, v.clone())?;
    }
    Ok(())
}

/// A short label for a value: strings as they are, enum variants with their scalars.
pub(super) fn label(v: &Value) -> String {
    match v {
        Value::Null => "none".into(),
        Value::String(s) => s.clone(),
        Value::Number(n) => n.to_string(),
        Value::Bool(b) => b.to_string(),
        Value::Array(items) => items.iter().map(label).collect::<Vec<_>>().join("/"),
        Value::Object(map) if is_variant(map) => {
            let (name, inner) = map.iter().next().expect("one variant");
            let scalars: Vec<String> = match inner {
                Value::Object(fields) => fields
                    .values()
                    .filter(|f| !f.is_object() && !f.is_array())
                    .map(label)
                    .collect(),
                Value::Array(_) => vec![],
                other => vec![label(other)],
            };
            if scalars.is_empty() {
                name.clone()
            } else {
                format!("{name}({})", scalars.join(", "))
            }
        }
        Value::Object(map) => map.values().map(label).collect::<Vec<_>>().join("/"),
    }
}
