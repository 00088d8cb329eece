//! Image folders: `root/<class>/<image>` (PNG or JPEG), or `root/<domain>/<class>/<image>`
//! for multi-domain sets (Office-Caltech, PACS, DomainNet), optionally listed in a file of
//! `path label` lines. Classes are the class folders' names, sorted.

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};

use super::decoded::{Decoded, Split, Store, decode};
use super::{ImageShape, SourceImages, held_out, read};
use crate::data::DataError;

/// One image to read: its file, class index and domain index.
struct Entry {
    path: PathBuf,
    class: usize,
    domain: usize,
}

/// Loads an image folder (see the module docs). Without `root/train` and `root/test`, the
/// share `test_fraction` of each class (spread evenly in name order) is the test split.
pub(super) fn load(
    root: &Path,
    domains: bool,
    list: Option<&Path>,
    test_fraction: f64,
    shape: Option<ImageShape>,
) -> Result<SourceImages, DataError> {
    let (train_dir, test_dir) = (root.join("train"), root.join("test"));
    let (train, test, domain_names) = if list.is_none() && train_dir.is_dir() && test_dir.is_dir() {
        let (train, test) = (walk(&train_dir, domains)?, walk(&test_dir, domains)?);
        let (classes, names) = name_sets(train.iter().chain(&test));
        (
            entries(train, &classes, &names),
            entries(test, &classes, &names),
            names,
        )
    } else {
        let (all, names) = match list {
            Some(list) => listed(root, list, domains)?,
            None => {
                let found = walk(root, domains)?;
                let (classes, names) = name_sets(found.iter());
                (entries(found, &classes, &names), names)
            }
        };
        let (train, test) = hold_out(all, test_fraction);
        (train, test, names)
    };
    let mut store = Store::new(shape);
    for (split, entries) in [(Split::Train, train), (Split::Test, test)] {
        for entry in entries {
            store.add(split, decode_entry(entry)?)?;
        }
    }
    let (train, test) = store.finish()?;
    Ok(SourceImages {
        train,
        test,
        groups: domain_names,
    })
}

/// Image files under `dir` as (path, class folder, domain folder), in name order.
fn walk(dir: &Path, domains: bool) -> Result<Vec<(PathBuf, String, String)>, DataError> {
    let mut found = Vec::new();
    let tops: Vec<(PathBuf, String)> = if domains {
        subdirs(dir)?
    } else {
        vec![(dir.to_path_buf(), String::new())]
    };
    for (top, domain) in tops {
        for (class_dir, class) in subdirs(&top)? {
            for file in files(&class_dir)? {
                found.push((file, class.clone(), domain.clone()));
            }
        }
    }
    Ok(found)
}

/// The sorted class names and domain names of `found`.
fn name_sets<'a>(
    found: impl Iterator<Item = &'a (PathBuf, String, String)>,
) -> (Vec<String>, Vec<String>) {
    let (mut classes, mut domains) = (BTreeSet::new(), BTreeSet::new());
    for (_, class, domain) in found {
        classes.insert(class.clone());
        domains.insert(domain.clone());
    }
    (classes.into_iter().collect(), domains.into_iter().collect())
}

fn entries(
    found: Vec<(PathBuf, String, String)>,
    classes: &[String],
    domains: &[String],
) -> Vec<Entry> {
    let index = |names: &[String], name: &String| names.binary_search(name).unwrap_or(0);
    found
        .into_iter()
        .map(|(path, class, domain)| Entry {
            class: index(classes, &class),
            domain: index(domains, &domain),
            path,
        })
        .collect()
}

/// The entries of a list file of `path label` lines (paths relative to `root`); class
/// names are the images' folders, sorted, and labels must index them.
fn listed(root: &Path, list: &Path, domains: bool) -> Result<(Vec<Entry>, Vec<String>), DataError> {
    let bytes = read(list)?;
    let text = String::from_utf8_lossy(&bytes);
    let malformed = |line: usize, problem: String| DataError::Malformed {
        path: list.to_path_buf(),
        at: format!("line {line}"),
        problem,
    };
    let mut rows = Vec::new();
    for (i, line) in text.lines().enumerate() {
        if line.trim().is_empty() {
            continue;
        }
        let (file, label) = line
            .trim()
            .rsplit_once(char::is_whitespace)
            .ok_or_else(|| malformed(i + 1, format!("\"{line}\" is not `path label`")))?;
        let label: usize = label
            .parse()
            .map_err(|_| malformed(i + 1, format!("label \"{label}\" is not a whole number")))?;
        let parts: Vec<&str> = file.trim().split('/').collect();
        let need = if domains { 3 } else { 2 };
        if parts.len() < need {
            return Err(malformed(
                i + 1,
                format!(
                    "\"{file}\" is not {}<class>/<image>",
                    if domains { "<domain>/" } else { "" }
                ),
            ));
        }
        let class = parts[parts.len() - 2].to_string();
        let domain = if domains {
            parts[0].to_string()
        } else {
            String::new()
        };
        rows.push((i + 1, root.join(file.trim()), class, domain, label));
    }
    let classes: BTreeSet<&String> = rows.iter().map(|r| &r.2).collect();
    let domain_names: Vec<String> = rows
        .iter()
        .map(|r| r.3.clone())
        .collect::<BTreeSet<_>>()
        .into_iter()
        .collect();
    let mut out = Vec::with_capacity(rows.len());
    for (line, path, _, domain, label) in &rows {
        if *label >= classes.len() {
            return Err(malformed(
                *line,
                format!(
                    "label {label} is outside the class list ({} classes: {})",
                    classes.len(),
                    classes
                        .iter()
                        .map(|c| c.as_str())
                        .collect::<Vec<_>>()
                        .join(", ")
                ),
            ));
        }
        out.push(Entry {
            path: path.clone(),
            class: *label,
            domain: domain_names.binary_search(domain).unwrap_or(0),
        });
    }
    Ok((out, domain_names))
}

/// Every entry's place in the train or test split: the share `fraction` of each class,
/// spread evenly in order, is held out.
fn hold_out(all: Vec<Entry>, fraction: f64) -> (Vec<Entry>, Vec<Entry>) {
    let mut seen = Vec::new();
    let (mut train, mut test) = (Vec::new(), Vec::new());
    for e in all {
        if seen.len() <= e.class {
            seen.resize(e.class + 1, 0);
        }
        let held = held_out(seen[e.class], fraction);
        seen[e.class] += 1;
        if held { test.push(e) } else { train.push(e) }
    }
    (train, test)
}

/// Decodes one entry's file.
fn decode_entry(entry: Entry) -> Result<Decoded, DataError> {
    let label = u8::try_from(entry.class).map_err(|_| DataError::Malformed {
        path: entry.path.clone(),
        at: "class".into(),
        problem: "beyond the 256th class folder: labels are bytes".into(),
    })?;
    decode(&read(&entry.path)?, entry.path, label, entry.domain as u32)
}

/// The folders in `dir`, sorted by name, with their names.
fn subdirs(dir: &Path) -> Result<Vec<(PathBuf, String)>, DataError> {
    let mut out: Vec<(PathBuf, String)> = listing(dir)?
        .into_iter()
        .filter(|p| p.is_dir())
        .map(|p| {
            let name = p
                .file_name()
                .map(|n| n.to_string_lossy().into_owned())
                .unwrap_or_default();
            (p, name)
        })
        .collect();
    out.sort_by(|a, b| a.1.cmp(&b.1));
    Ok(out)
}

/// The image files (`.png`, `.jpg`, `.jpeg`, any case) in `dir`, sorted by name.
fn files(dir: &Path) -> Result<Vec<PathBuf>, DataError> {
    let mut out: Vec<PathBuf> = listing(dir)?
        .into_iter()
        .filter(|p| p.is_file() && is_image(p))
        .collect();
    out.sort();
    Ok(out)
}

/// Whether the file's name ends in `.png`, `.jpg` or `.jpeg`, in any case.
fn is_image(path: &Path) -> bool {
    path.extension().is_some_and(|e| {
        let e = e.to_string_lossy().to_ascii_lowercase();
        matches!(e.as_str(), "png" | "jpg" | "jpeg")
    })
}

fn listing(dir: &Path) -> Result<Vec<PathBuf>, DataError> {
    let io = |source| DataError::Io {
        path: dir.to_path_buf(),
        source,
    };
    std::fs::read_dir(dir)
        .map_err(io)?
        .map(|e| e.map(|e| e.path()).map_err(io))
        .collect()
}

/// The image files anywhere under `root`, counted without decoding them.
pub(super) fn count(root: &Path) -> Option<usize> {
    let mut n = 0;
    for path in listing(root).ok()? {
        if path.is_dir() {
            n += count(&path)?;
        } else if is_image(&path) {
            n += 1;
        }
    }
    Some(n)
}
