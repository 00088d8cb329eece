//! Pixel tables: one image per line, `width * height` integers row-major, then the label;
//! comma-separated, gzip-compressed when the name ends in `.gz` (the UCI digits).

use std::path::Path;

use super::{ImageShape, Images, SourceImages, held_out, name_of, read_maybe_gz, store_shape};
use crate::data::DataError;

/// Loads a pixel table; pixel values `0..=max` are scaled to `0..=255`, and a share
/// `test_fraction` of the lines, spread evenly, becomes the test split. One group.
pub(super) fn load(
    path: &Path,
    (width, height): (usize, usize),
    max: u16,
    test_fraction: f64,
    shape: Option<ImageShape>,
) -> Result<SourceImages, DataError> {
    let text = read_maybe_gz(path)?;
    let malformed = |line: usize, problem: String| DataError::Malformed {
        path: path.to_path_buf(),
        at: format!("line {line}"),
        problem,
    };
    let text = std::str::from_utf8(&text).map_err(|e| {
        let line = text[..e.valid_up_to()]
            .iter()
            .filter(|&&b| b == b'\n')
            .count()
            + 1;
        malformed(line, "not UTF-8 text".into())
    })?;
    let (side, channels) = store_shape(path, (width, height, 1), shape)?;
    let (mut train, mut test) = (Images::new(side, channels), Images::new(side, channels));
    let pixels = width * height;
    let mut img = Vec::with_capacity(pixels);
    let rows = text
        .lines()
        .enumerate()
        .filter(|(_, l)| !l.trim().is_empty());
    for (n, (i, line)) in rows.enumerate() {
        img.clear();
        let mut label = None;
        for (k, field) in line.split(',').enumerate() {
            let value: u16 = field.trim().parse().map_err(|_| {
                malformed(
                    i + 1,
                    format!("field {} is \"{field}\", not a whole number", k + 1),
                )
            })?;
            if k < pixels {
                if value > max {
                    return Err(malformed(
                        i + 1,
                        format!("pixel {} is {value}, above max = {max}", k + 1),
                    ));
                }
                img.push(((value as u32 * 255 + max as u32 / 2) / max as u32) as u8);
            } else if k == pixels {
                label = Some(
                    u8::try_from(value)
                        .map_err(|_| malformed(i + 1, format!("label {value} is above 255")))?,
                );
            } else {
                label = None;
                break;
            }
        }
        let Some(label) = label.filter(|_| img.len() == pixels) else {
            return Err(malformed(
                i + 1,
                format!(
                    "{} fields, expected {} ({width}x{height} pixels and the label)",
                    line.split(',').count(),
                    pixels + 1
                ),
            ));
        };
        let set = if held_out(n, test_fraction) {
            &mut test
        } else {
            &mut train
        };
        set.push_resized(&img, (width, height, 1), label, 0);
    }
    let name = name_of(path, "csv");
    Ok(SourceImages {
        train,
        test,
        groups: vec![name],
    })
}
