//! Hugging Face data sets as saved on the hub: Parquet files named
//! `{split}-0000i-of-0000N.parquet`, the image column a `struct<bytes, path>` of PNG or
//! JPEG bytes, the label an integer column; class names come from the `huggingface`
//! schema metadata (`info.features.<label>.names`) when it is there.

use std::path::{Path, PathBuf};

use parquet::file::reader::{FileReader, SerializedFileReader};
use parquet::record::{Field, Row};

use super::decoded::{Decoded, Split, Store, decode};
use super::{ImageShape, SourceImages, held_out, name_of};
use crate::data::DataError;

/// The Parquet files of a split: `listed` (relative to `dir`) when any are, else every
/// file of `dir`; those whose name starts with `split`, in name order.
fn split_files(dir: &Path, listed: &[String], split: &str) -> Result<Vec<PathBuf>, DataError> {
    let io = |source| DataError::Io {
        path: dir.to_path_buf(),
        source,
    };
    let candidates: Vec<PathBuf> = if listed.is_empty() {
        std::fs::read_dir(dir)
            .map_err(io)?
            .map(|e| e.map(|e| e.path()).map_err(io))
            .collect::<Result<_, _>>()?
    } else {
        listed.iter().map(|f| dir.join(f)).collect()
    };
    let mut out: Vec<PathBuf> = candidates
        .into_iter()
        .filter(|path| {
            path.file_name()
                .map(|n| n.to_string_lossy())
                .is_some_and(|n| n.starts_with(split) && n.ends_with(".parquet"))
        })
        .collect();
    out.sort();
    Ok(out)
}

/// Loads the `train*` and `test*` Parquet files of `dir` (or those `listed`, in name
/// order); without test files, the share `test_fraction` of the training rows, spread
/// evenly, is the test split.
pub(super) fn load(
    dir: &Path,
    listed: &[String],
    (image, label): (&str, &str),
    test_fraction: f64,
    shape: Option<ImageShape>,
) -> Result<SourceImages, DataError> {
    let (train_files, test_files) = (
        split_files(dir, listed, "train")?,
        split_files(dir, listed, "test")?,
    );
    if train_files.is_empty() {
        return Err(DataError::Malformed {
            path: dir.to_path_buf(),
            at: "files".into(),
            problem: "no train*.parquet file".into(),
        });
    }
    let columns = (image, label);
    let mut store = Store::new(shape);
    // Without test files, rows are held out evenly across the training files.
    let mut row = 0;
    let mut split = || {
        let held = test_files.is_empty() && held_out(row, test_fraction);
        row += 1;
        if held { Split::Test } else { Split::Train }
    };
    for file in &train_files {
        read_file(file, columns, &mut |d| {
            let s = split();
            store.add(s, d)
        })?;
    }
    for file in &test_files {
        read_file(file, columns, &mut |d| store.add(Split::Test, d))?;
    }
    let (train, test) = store.finish()?;
    let name = name_of(dir, "parquet");
    Ok(SourceImages {
        train,
        test,
        groups: vec![name],
    })
}

/// The rows of the `train*` and `test*` files (of `dir`, or those `listed`), from their
/// footers alone.
pub(super) fn rows(dir: &Path, listed: &[String]) -> Option<(usize, usize)> {
    let count = |split: &str| -> Option<usize> {
        let mut n = 0;
        for path in split_files(dir, listed, split).ok()? {
            let rows = SerializedFileReader::new(std::fs::File::open(&path).ok()?)
                .ok()?
                .metadata()
                .file_metadata()
                .num_rows();
            n += usize::try_from(rows).ok()?;
        }
        Some(n)
    };
    Some((count("train")?, count("test")?))
}

/// Hands every row of one file, decoded, to `out`.
fn read_file(
    path: &Path,
    (image, label): (&str, &str),
    out: &mut dyn FnMut(Decoded) -> Result<(), DataError>,
) -> Result<(), DataError> {
    let malformed = |at: String, problem: String| DataError::Malformed {
        path: path.to_path_buf(),
        at,
        problem,
    };
    let not_parquet = |source| DataError::Parquet {
        path: path.to_path_buf(),
        source,
    };
    let file = std::fs::File::open(path).map_err(|source| DataError::Io {
        path: path.to_path_buf(),
        source,
    })?;
    let reader = SerializedFileReader::new(file).map_err(not_parquet)?;
    let meta = reader.metadata().file_metadata();
    let fields = meta.schema_descr().root_schema().get_fields();
    for column in [image, label] {
        if !fields.iter().any(|f| f.name() == column) {
            let names: Vec<&str> = fields.iter().map(|f| f.name()).collect();
            return Err(malformed(
                "schema".into(),
                format!("no column \"{column}\" (it has {})", names.join(", ")),
            ));
        }
    }
    let classes = class_names(meta.key_value_metadata(), label);
    for (r, row) in reader.get_row_iter(None).map_err(not_parquet)?.enumerate() {
        let row = row.map_err(not_parquet)?;
        let at = || format!("row {r}");
        let bytes = image_bytes(&row, image).ok_or_else(|| {
            malformed(
                at(),
                format!("column \"{image}\" holds no image bytes (struct<bytes, path> or binary)"),
            )
        })?;
        let value = integer(&row, label)
            .ok_or_else(|| malformed(at(), format!("column \"{label}\" holds no integer label")))?;
        let bound = classes.as_ref().map_or(256, Vec::len);
        if !(0..bound as i64).contains(&value) {
            let list = match &classes {
                Some(names) => format!(
                    "the class list ({} classes: {})",
                    names.len(),
                    names.join(", ")
                ),
                None => "0..=255".into(),
            };
            return Err(malformed(at(), format!("label {value} is outside {list}")));
        }
        let origin = PathBuf::from(format!("{} (row {r})", path.display()));
        out(decode(bytes, origin, value as u8, 0)?)?;
    }
    Ok(())
}

/// The class names of `label` in the `huggingface` metadata, when they are there.
fn class_names(
    metadata: Option<&Vec<parquet::file::metadata::KeyValue>>,
    label: &str,
) -> Option<Vec<String>> {
    let json = metadata?
        .iter()
        .find(|kv| kv.key == "huggingface")?
        .value
        .as_deref()?;
    let value: serde_json::Value = serde_json::from_str(json).ok()?;
    let names = value
        .pointer(&format!("/info/features/{label}/names"))?
        .as_array()?;
    names.iter().map(|n| n.as_str().map(String::from)).collect()
}

/// The image bytes in column `name`: a `struct<bytes, path>` or plain binary.
fn image_bytes<'a>(row: &'a Row, name: &str) -> Option<&'a [u8]> {
    match column(row, name)? {
        Field::Bytes(b) => Some(b.data()),
        Field::Group(inner) => match column(inner, "bytes")? {
            Field::Bytes(b) => Some(b.data()),
            _ => None,
        },
        _ => None,
    }
}

/// The integer in column `name`.
fn integer(row: &Row, name: &str) -> Option<i64> {
    Some(match column(row, name)? {
        Field::Byte(v) => *v as i64,
        Field::Short(v) => *v as i64,
        Field::Int(v) => *v as i64,
        Field::Long(v) => *v,
        Field::UByte(v) => *v as i64,
        Field::UShort(v) => *v as i64,
        Field::UInt(v) => *v as i64,
        Field::ULong(v) => i64::try_from(*v).ok()?,
        _ => return None,
    })
}

fn column<'a>(row: &'a Row, name: &str) -> Option<&'a Field> {
    row.get_column_iter()
        .find(|(n, _)| n.as_str() == name)
        .map(|(_, f)| f)
}
