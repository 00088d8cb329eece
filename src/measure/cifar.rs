//! A CIFAR-10-format data set written from the bundled MNIST and Fashion-MNIST pixels,
//! for the load measurement.

use std::path::Path;

use crate::run::RunError;

/// Writes a CIFAR-10-format data set of `images` records into `dir`: the bundled MNIST
/// digit (red), Fashion-MNIST garment (green) and their mean (blue) of the same index, each
/// 28x28 in the middle of 32x32, with the digit's label; five batches share five sixths of
/// the images, the test batch the rest.
pub fn write_cifar_fixture(dir: &Path, images: usize) -> Result<(), RunError> {
    use std::io::Write;
    let data = Path::new(env!("CARGO_MANIFEST_DIR")).join("scenarios/data");
    let read = |set: &str, split: &str| -> Result<(Vec<u8>, Vec<u8>), RunError> {
        let dir = data.join(set);
        let px = crate::data::read_idx(&crate::data::idx_file(
            &dir,
            &format!("{split}-images-idx3-ubyte"),
        ))
        .map_err(crate::data::DataError::from)?;
        let lb = crate::data::read_idx(&crate::data::idx_file(
            &dir,
            &format!("{split}-labels-idx1-ubyte"),
        ))
        .map_err(crate::data::DataError::from)?;
        Ok((px.data, lb.data))
    };
    let mut digits = read("mnist-10k", "train")?;
    let mut clothes = read("fashion-10k", "train")?;
    for (all, set) in [(&mut digits, "mnist-10k"), (&mut clothes, "fashion-10k")] {
        let test = read(set, "t10k")?;
        all.0.extend(test.0);
        all.1.extend(test.1);
    }
    let bundled = digits.1.len().min(clothes.1.len());
    let record = |i: usize| -> Vec<u8> {
        let k = i % bundled;
        let (d, f) = (
            &digits.0[k * 784..(k + 1) * 784],
            &clothes.0[k * 784..(k + 1) * 784],
        );
        let mut rec = vec![digits.1[k]];
        for plane in 0..3 {
            for y in 0..32 {
                for x in 0..32 {
                    let inside = (2..30).contains(&x) && (2..30).contains(&y);
                    let at = (y.max(2) - 2) * 28 + x.max(2) - 2;
                    let (a, b) = if inside { (d[at], f[at]) } else { (0, 0) };
                    rec.push(match plane {
                        0 => a,
                        1 => b,
                        _ => ((a as u16 + b as u16) / 2) as u8,
                    });
                }
            }
        }
        rec
    };
    let io = |source| RunError::Write {
        dir: dir.to_path_buf(),
        source,
    };
    std::fs::create_dir_all(dir).map_err(io)?;
    let train = images * 5 / 6;
    let names = [
        "data_batch_1.bin",
        "data_batch_2.bin",
        "data_batch_3.bin",
        "data_batch_4.bin",
        "data_batch_5.bin",
    ];
    for (b, name) in names.iter().enumerate() {
        let mut file = std::io::BufWriter::new(std::fs::File::create(dir.join(name)).map_err(io)?);
        for i in train * b / 5..train * (b + 1) / 5 {
            file.write_all(&record(i)).map_err(io)?;
        }
        file.flush().map_err(io)?;
    }
    let mut file =
        std::io::BufWriter::new(std::fs::File::create(dir.join("test_batch.bin")).map_err(io)?);
    for i in train..images {
        file.write_all(&record(i)).map_err(io)?;
    }
    file.flush().map_err(io)?;
    Ok(())
}
