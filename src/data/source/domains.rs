//! Several sources side by side as the named domains of one data set.

use std::path::Path;

use super::{ImageShape, NamedSource, SourceImages};
use crate::data::DataError;

/// Loads every part and puts them side by side, one group per part.
pub(super) fn load(
    parts: &[NamedSource],
    base: &Path,
    shape: Option<ImageShape>,
    cache: Option<&Path>,
) -> Result<SourceImages, DataError> {
    let mut out: Option<SourceImages> = None;
    for (g, part) in parts.iter().enumerate() {
        let mut loaded = part.source.load_cached(base, shape, cache)?;
        for set in [&mut loaded.train, &mut loaded.test] {
            set.groups.iter_mut().for_each(|x| *x = g as u32);
        }
        match &mut out {
            None => {
                loaded.groups = vec![part.name.clone()];
                out = Some(loaded);
            }
            Some(all) => {
                if (all.train.side, all.train.channels)
                    != (loaded.train.side, loaded.train.channels)
                {
                    return Err(DataError::Mismatch(format!(
                        "domain \"{}\" holds {2}x{2}x{3} images but \"{}\" {4}x{4}x{5}: give \
                         data.image to bring them to one shape",
                        part.name,
                        parts[0].name,
                        loaded.train.side,
                        loaded.train.channels,
                        all.train.side,
                        all.train.channels
                    )));
                }
                for (to, from) in [(&mut all.train, loaded.train), (&mut all.test, loaded.test)] {
                    to.pixels.extend(from.pixels);
                    to.labels.extend(from.labels);
                    to.groups.extend(from.groups);
                }
                all.groups.push(part.name.clone());
            }
        }
    }
    out.ok_or(DataError::Empty { split: "training" })
}
