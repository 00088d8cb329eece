//! LEAF's JSON (FEMNIST, CelebA's pixels, ...): `train/*.json` and `test/*.json`, each
//! `{"users": [...], "num_samples": [...], "user_data": {user: {"x": [...], "y": [...]}}}`
//! with every image a flat list of intensities in `[0, 1]`. Every user is one group, the
//! same in both splits.

use std::collections::HashMap;
use std::path::{Path, PathBuf};

use serde::Deserialize;

use super::{ImageShape, Images, SourceImages, read, store_shape};
use crate::data::DataError;

#[derive(Deserialize)]
struct File {
    users: Vec<String>,
    #[serde(default)]
    num_samples: Vec<usize>,
    user_data: HashMap<String, UserData>,
}

#[derive(Deserialize)]
struct UserData {
    x: Vec<Vec<f32>>,
    y: Vec<i64>,
}

/// Loads `dir/train/*.json` and `dir/test/*.json`, files in name order.
pub(super) fn load(dir: &Path, shape: Option<ImageShape>) -> Result<SourceImages, DataError> {
    let mut groups = Groups::default();
    let mut store = None;
    let mut splits = Vec::new();
    for split in ["train", "test"] {
        let mut images: Option<Images> = None;
        for path in json_files(&dir.join(split))? {
            let file: File =
                serde_json::from_slice(&read(&path)?).map_err(|source| DataError::Json {
                    path: path.clone(),
                    source,
                })?;
            read_file(&path, file, &mut groups, &mut store, shape, &mut images)?;
        }
        splits.push(images.unwrap_or_default());
    }
    let test = splits.pop().unwrap_or_default();
    let train = splits.pop().unwrap_or_default();
    Ok(SourceImages {
        train,
        test,
        groups: groups.names,
    })
}

/// User names to group indices, in order of first appearance.
#[derive(Default)]
struct Groups {
    names: Vec<String>,
    index: HashMap<String, u32>,
}

impl Groups {
    fn of(&mut self, user: &str) -> u32 {
        if let Some(&g) = self.index.get(user) {
            return g;
        }
        let g = self.names.len() as u32;
        self.names.push(user.to_string());
        self.index.insert(user.to_string(), g);
        g
    }
}

/// The `.json` files of `dir`, sorted by name.
fn json_files(dir: &Path) -> Result<Vec<PathBuf>, DataError> {
    let io = |source| DataError::Io {
        path: dir.to_path_buf(),
        source,
    };
    let mut files = Vec::new();
    for entry in std::fs::read_dir(dir).map_err(io)? {
        let path = entry.map_err(io)?.path();
        if path.extension().is_some_and(|e| e == "json") {
            files.push(path);
        }
    }
    files.sort();
    Ok(files)
}

/// Appends every user's images of one file, in the order of `users`.
fn read_file(
    path: &Path,
    file: File,
    groups: &mut Groups,
    store: &mut Option<(usize, usize)>,
    shape: Option<ImageShape>,
    images: &mut Option<Images>,
) -> Result<(), DataError> {
    let mut user_data = file.user_data;
    for (u, user) in file.users.iter().enumerate() {
        let malformed = |problem: String| DataError::Malformed {
            path: path.to_path_buf(),
            at: format!("user \"{user}\""),
            problem,
        };
        let data = user_data
            .remove(user)
            .ok_or_else(|| malformed("listed in users but has no entry in user_data".into()))?;
        if data.x.len() != data.y.len() {
            return Err(malformed(format!(
                "{} images but {} labels",
                data.x.len(),
                data.y.len()
            )));
        }
        if let Some(&n) = file.num_samples.get(u)
            && n != data.y.len()
        {
            return Err(malformed(format!(
                "num_samples says {n} but user_data holds {}",
                data.y.len()
            )));
        }
        let group = groups.of(user);
        for (k, (x, &y)) in data.x.iter().zip(&data.y).enumerate() {
            let side = x.len().isqrt();
            if side * side != x.len() || side == 0 {
                return Err(malformed(format!(
                    "image {k} has {} values, not a square image",
                    x.len()
                )));
            }
            if store.is_none() {
                *store = Some(store_shape(path, (side, side, 1), shape)?);
            }
            let (to_side, to_channels) = store.expect("set above");
            let out = images.get_or_insert_with(|| Images::new(to_side, to_channels));
            if shape.is_none() && side != to_side {
                return Err(DataError::Malformed {
                    path: path.to_path_buf(),
                    at: format!("user \"{user}\", image {k}"),
                    problem: format!(
                        "{side}x{side} among {to_side}x{to_side} images; give data.image to \
                         resize them to one size"
                    ),
                });
            }
            let label = u8::try_from(y)
                .map_err(|_| malformed(format!("label {y} of image {k} is not in 0..=255")))?;
            let mut pixels = Vec::with_capacity(x.len());
            for &v in x {
                if !(0.0..=1.0).contains(&v) {
                    return Err(malformed(format!(
                        "image {k} has intensity {v}, outside [0, 1]"
                    )));
                }
                pixels.push((v * 255.0).round() as u8);
            }
            out.push_resized(&pixels, (side, side, 1), label, group);
        }
    }
    Ok(())
}
