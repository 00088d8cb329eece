//! Decoded images kept on disk: formats that decode compressed images (folders, Parquet)
//! write what they decoded to `images-<digest>.bin` in a cache folder, keyed by a SHA-256
//! of the source's settings and the bytes of every file it reads, so that a second run on
//! the same files starts in seconds. A damaged or foreign file is decoded again.

use std::io::{Read, Write};
use std::path::{Path, PathBuf};

use sha2::{Digest, Sha256};

use super::{DataSource, ImageShape, Images, SourceImages};
use crate::data::DataError;

/// The first bytes of a cache file; the number changes with its layout.
const MAGIC: &[u8; 16] = b"FLOTILLA-IMAGES1";

/// The cache file of `source` in `dir`, named by the digest of its settings and files.
pub(super) fn file_for(
    source: &DataSource,
    base: &Path,
    shape: Option<ImageShape>,
    dir: &Path,
) -> Result<PathBuf, DataError> {
    let mut hash = Sha256::new();
    let settings = format!("{source:?} {shape:?} {}", env!("CARGO_PKG_VERSION"));
    hash.update((settings.len() as u64).to_le_bytes());
    hash.update(settings.as_bytes());
    for (_, relative) in source.paths() {
        let root = base.join(relative);
        let mut files = Vec::new();
        walk(&root, &mut files)?;
        files.sort();
        for file in files {
            let name = file
                .strip_prefix(&root)
                .unwrap_or(&file)
                .to_string_lossy()
                .into_owned();
            let bytes = std::fs::read(&file).map_err(|source| DataError::Io {
                path: file.clone(),
                source,
            })?;
            for part in [name.as_bytes(), &bytes[..]] {
                hash.update((part.len() as u64).to_le_bytes());
                hash.update(part);
            }
        }
    }
    let digest: String = hash.finalize().iter().map(|b| format!("{b:02x}")).collect();
    Ok(dir.join(format!("images-{}.bin", &digest[..32])))
}

/// Every file under `path` (itself, when it is a file).
fn walk(path: &Path, out: &mut Vec<PathBuf>) -> Result<(), DataError> {
    if !path.is_dir() {
        out.push(path.to_path_buf());
        return Ok(());
    }
    let io = |source| DataError::Io {
        path: path.to_path_buf(),
        source,
    };
    for entry in std::fs::read_dir(path).map_err(io)? {
        walk(&entry.map_err(io)?.path(), out)?;
    }
    Ok(())
}

/// The images in `file`, if it holds a whole, well-formed cache.
pub(super) fn read(file: &Path) -> Option<SourceImages> {
    let mut bytes = Vec::new();
    std::fs::File::open(file)
        .ok()?
        .read_to_end(&mut bytes)
        .ok()?;
    let mut r = Reader { bytes: &bytes };
    if r.take(MAGIC.len())? != MAGIC {
        return None;
    }
    let groups = (0..r.u64()?)
        .map(|_| {
            let n = r.u64()? as usize;
            String::from_utf8(r.take(n)?.to_vec()).ok()
        })
        .collect::<Option<Vec<String>>>()?;
    let train = r.images()?;
    let test = r.images()?;
    r.bytes.is_empty().then_some(SourceImages {
        train,
        test,
        groups,
    })
}

/// Writes `loaded` to `file` whole or not at all (a temporary file renamed into place).
pub(super) fn write(file: &Path, loaded: &SourceImages) -> Result<(), DataError> {
    let io = |source| DataError::Io {
        path: file.to_path_buf(),
        source,
    };
    if let Some(dir) = file.parent() {
        std::fs::create_dir_all(dir).map_err(io)?;
    }
    let tmp = file.with_extension(format!("tmp{}", std::process::id()));
    let mut w = std::io::BufWriter::new(std::fs::File::create(&tmp).map_err(io)?);
    let mut put = |bytes: &[u8]| w.write_all(bytes);
    let u64 = |v: usize| (v as u64).to_le_bytes();
    let result = (|| {
        put(MAGIC)?;
        put(&u64(loaded.groups.len()))?;
        for g in &loaded.groups {
            put(&u64(g.len()))?;
            put(g.as_bytes())?;
        }
        for set in [&loaded.train, &loaded.test] {
            for v in [set.len(), set.side, set.channels] {
                put(&u64(v))?;
            }
            put(&set.pixels)?;
            put(&set.labels)?;
            let groups: Vec<u8> = set.groups.iter().flat_map(|g| g.to_le_bytes()).collect();
            put(&groups)?;
        }
        Ok(())
    })();
    result.and_then(|()| w.flush()).map_err(io)?;
    drop(w);
    std::fs::rename(&tmp, file).map_err(io)
}

/// Reads a cache file front to back.
struct Reader<'a> {
    bytes: &'a [u8],
}

impl<'a> Reader<'a> {
    fn take(&mut self, n: usize) -> Option<&'a [u8]> {
        if n > self.bytes.len() {
            return None;
        }
        let (head, rest) = self.bytes.split_at(n);
        self.bytes = rest;
        Some(head)
    }

    fn u64(&mut self) -> Option<u64> {
        Some(u64::from_le_bytes(self.take(8)?.try_into().ok()?))
    }

    fn images(&mut self) -> Option<Images> {
        let (len, side, channels) = (
            self.u64()? as usize,
            self.u64()? as usize,
            self.u64()? as usize,
        );
        let pixels = len.checked_mul(side.checked_mul(side)?.checked_mul(channels)?)?;
        Some(Images {
            pixels: self.take(pixels)?.to_vec(),
            labels: self.take(len)?.to_vec(),
            groups: self
                .take(len.checked_mul(4)?)?
                .chunks_exact(4)
                .map(|b| u32::from_le_bytes([b[0], b[1], b[2], b[3]]))
                .collect(),
            side,
            channels,
        })
    }
}
