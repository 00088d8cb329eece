//! What a scenario's `data.source` and `data.image` say: the formats and their settings.

use serde::{Deserialize, Serialize};

/// A data set on disk (paths relative to the scenario file).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
#[non_exhaustive]
pub enum DataSource {
    /// A directory of MNIST-style IDX files (train-* and t10k-*, gzip or not).
    Idx {
        /// The directory, relative to the scenario.
        dir: String,
    },
    /// CIFAR-10's binary version: `data_batch_1.bin` .. `data_batch_5.bin` and
    /// `test_batch.bin`.
    Cifar10 {
        /// The directory, relative to the scenario.
        dir: String,
    },
    /// CIFAR-100's binary version: `train.bin` and `test.bin`.
    Cifar100 {
        /// The directory, relative to the scenario.
        dir: String,
        /// Which labels to learn: the 100 fine ones or the 20 coarse superclasses.
        #[serde(default)]
        labels: CifarLabels,
    },
    /// A table of pixels, one image per line: `width * height` integers row-major, then
    /// the label (gzip or not), like the UCI digits.
    Csv {
        /// The file, relative to the scenario.
        file: String,
        /// Pixels per row.
        width: usize,
        /// Rows per image.
        height: usize,
        /// The largest pixel value (it becomes 255): 16 for the UCI digits.
        #[serde(default = "full_scale")]
        max: u16,
        /// Share of the lines held out as the central test set, spread evenly.
        #[serde(default = "default_holdout")]
        test_fraction: f64,
    },
    /// LEAF's JSON (FEMNIST, ...): `train/*.json` and `test/*.json`, each with `users`,
    /// `num_samples` and `user_data: {user: {x, y}}`; every user is a writer group.
    Leaf {
        /// The directory holding `train/` and `test/`, relative to the scenario.
        dir: String,
    },
    /// Images (PNG or JPEG) in `root/<class>/<image>`, classes sorted by name, or in
    /// `root/<domain>/<class>/<image>` with `domains`; `root/train/...` and
    /// `root/test/...` when both exist, else a held-out share of each class.
    ImageFolder {
        /// The root, relative to the scenario.
        dir: String,
        /// One more folder level: every top folder is a domain (a group).
        #[serde(default)]
        domains: bool,
        /// A list of `path label` lines (DomainNet's `<domain>_train.txt`), paths relative
        /// to the root; labels index the sorted class folders.
        #[serde(default)]
        list: Option<String>,
        /// Share of each class held out as the central test set without `train/`+`test/`.
        #[serde(default = "default_holdout")]
        test_fraction: f64,
    },
    /// A Hugging Face data set as saved on the hub: `train-*.parquet` and `test-*.parquet`
    /// files in `dir`, an image column of PNG or JPEG bytes (`struct<bytes, path>`), an
    /// integer label column; class names from the schema metadata when present.
    Parquet {
        /// The directory holding the files, relative to the scenario.
        dir: String,
        /// The files to read, relative to `dir` (each a split by its name's prefix);
        /// every `train*` and `test*` Parquet file in `dir` when empty.
        #[serde(default)]
        files: Vec<String>,
        /// The image column.
        #[serde(default = "image_column")]
        image: String,
        /// The label column.
        #[serde(default = "label_column")]
        label: String,
        /// Share of the training rows held out as the test set when there is no test file.
        #[serde(default = "default_holdout")]
        test_fraction: f64,
    },
    /// Several sources side by side as named domains of one data set (one group each);
    /// they must share one image shape (see `data.image`).
    Domains(Vec<NamedSource>),
}

/// One domain of [`DataSource::Domains`].
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct NamedSource {
    /// The domain's name, which tasks select it by.
    pub name: String,
    /// Where its images come from.
    pub source: DataSource,
}

fn image_column() -> String {
    "image".into()
}

fn label_column() -> String {
    "label".into()
}

fn full_scale() -> u16 {
    255
}

fn default_holdout() -> f64 {
    0.2
}

/// The shape every image is brought to on load.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ImageShape {
    /// Images become `side` x `side` pixels (bilinear).
    pub side: usize,
    /// 1 (grey: ITU-R 601 luma of colour images) or 3 (RGB: grey replicated).
    pub channels: usize,
}

impl DataSource {
    /// The files or folders the source reads, by the field naming each (for validation).
    pub fn paths(&self) -> Vec<(String, &str)> {
        match self {
            DataSource::Idx { dir }
            | DataSource::Cifar10 { dir }
            | DataSource::Cifar100 { dir, .. }
            | DataSource::Leaf { dir }
            | DataSource::Parquet { dir, .. } => vec![("dir".into(), dir)],
            DataSource::Csv { file, .. } => vec![("file".into(), file)],
            DataSource::ImageFolder { dir, list, .. } => {
                let mut p = vec![("dir".to_string(), dir.as_str())];
                p.extend(list.as_deref().map(|l| ("list".to_string(), l)));
                p
            }
            DataSource::Domains(parts) => parts
                .iter()
                .enumerate()
                .flat_map(|(i, part)| {
                    part.source
                        .paths()
                        .into_iter()
                        .map(move |(field, p)| (format!("[{i}].source.{field}"), p))
                })
                .collect(),
        }
    }
}

/// Which of CIFAR-100's labels to learn.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub enum CifarLabels {
    /// The 100 classes.
    #[default]
    Fine,
    /// The 20 superclasses.
    Coarse,
}
