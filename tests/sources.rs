//! Every data source on fixtures written from the bundled real images: the loaded pixels
//! and labels equal the originals (bit for bit in lossless formats), groups and partitions
//! come out as documented, and malformed files name the file and the place.

#![allow(clippy::unwrap_used)] // a test that unwraps fails with the error it met

use std::path::{Path, PathBuf};

use flotilla::data::{
    DataSource, Groups, ImageShape, Loaded, NamedSource, PartitionSpec, partition, read_idx,
};

fn repo() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

/// The first `n` images (28x28 grey) and labels of a bundled IDX set's training split.
fn bundled(set: &str, n: usize) -> (Vec<Vec<u8>>, Vec<u8>) {
    let dir = repo().join("scenarios/data").join(set);
    let images = read_idx(&dir.join("train-images-idx3-ubyte.gz")).unwrap();
    let labels = read_idx(&dir.join("train-labels-idx1-ubyte.gz")).unwrap();
    let images = images
        .data
        .chunks(784)
        .take(n)
        .map(<[u8]>::to_vec)
        .collect();
    (images, labels.data[..n].to_vec())
}

fn load(source: DataSource, base: &Path, shape: Option<ImageShape>) -> Loaded {
    source.load(base, shape).unwrap()
}

fn error(source: DataSource, base: &Path, shape: Option<ImageShape>) -> String {
    match source.load(base, shape).and_then(|l| l.into_split()) {
        Ok(_) => panic!("the source loaded"),
        Err(e) => e.to_string(),
    }
}

/// A 28x28 grey image in the middle of a 32x32 RGB one, as CIFAR's three planes.
fn cifar_record(label: &[u8], img: &[u8]) -> Vec<u8> {
    let mut rec = label.to_vec();
    for _ in 0..3 {
        for y in 0..32 {
            for x in 0..32 {
                let inside = (2..30).contains(&x) && (2..30).contains(&y);
                rec.push(if inside { img[(y - 2) * 28 + x - 2] } else { 0 });
            }
        }
    }
    rec
}

/// The same image as the loader stores it: 32x32, RGB interleaved.
fn padded_rgb(img: &[u8]) -> Vec<u8> {
    let mut out = Vec::new();
    for y in 0..32 {
        for x in 0..32 {
            let inside = (2..30).contains(&x) && (2..30).contains(&y);
            let v = if inside { img[(y - 2) * 28 + x - 2] } else { 0 };
            out.extend([v, v, v]);
        }
    }
    out
}

#[test]
fn cifar10_batches_load_bit_for_bit() {
    let dir = tempfile::tempdir().unwrap();
    let (images, labels) = bundled("fashion-10k", 60);
    let files = [
        "data_batch_1.bin",
        "data_batch_2.bin",
        "data_batch_3.bin",
        "data_batch_4.bin",
        "data_batch_5.bin",
        "test_batch.bin",
    ];
    for (f, name) in files.iter().enumerate() {
        let bytes: Vec<u8> = (f * 10..f * 10 + 10)
            .flat_map(|i| cifar_record(&[labels[i]], &images[i]))
            .collect();
        std::fs::write(dir.path().join(name), bytes).unwrap();
    }
    let loaded = load(DataSource::Cifar10 { dir: ".".into() }, dir.path(), None);
    assert_eq!((loaded.train.side, loaded.train.channels), (32, 3));
    assert_eq!(loaded.train.len(), 50);
    assert_eq!(loaded.test.len(), 10);
    let expected: Vec<u8> = images[..50].iter().flat_map(|i| padded_rgb(i)).collect();
    assert_eq!(loaded.train.pixels, expected);
    assert_eq!(loaded.train.labels, labels[..50]);
    assert_eq!(loaded.test.labels, labels[50..]);
    // Grey on load: luma of equal channels is the channel itself.
    let grey = load(
        DataSource::Cifar10 { dir: ".".into() },
        dir.path(),
        Some(ImageShape {
            side: 32,
            channels: 1,
        }),
    );
    assert_eq!(
        grey.train.pixels,
        expected.iter().step_by(3).copied().collect::<Vec<u8>>()
    );
}

#[test]
fn cifar100_reads_fine_or_coarse_labels() {
    let dir = tempfile::tempdir().unwrap();
    let (images, _) = bundled("mnist-10k", 4);
    let rec = |coarse: u8, fine: u8, i: usize| cifar_record(&[coarse, fine], &images[i]);
    let train: Vec<u8> = [rec(3, 77, 0), rec(19, 99, 1), rec(0, 5, 2)].concat();
    std::fs::write(dir.path().join("train.bin"), train).unwrap();
    std::fs::write(dir.path().join("test.bin"), rec(19, 42, 3)).unwrap();
    let source = |labels| DataSource::Cifar100 {
        dir: ".".into(),
        labels,
    };
    let fine = load(source(flotilla::data::CifarLabels::Fine), dir.path(), None);
    assert_eq!(fine.train.labels, vec![77, 99, 5]);
    let coarse = load(
        source(flotilla::data::CifarLabels::Coarse),
        dir.path(),
        None,
    );
    assert_eq!(coarse.train.labels, vec![3, 19, 0]);
    assert_eq!(coarse.test.pixels, padded_rgb(&images[3]));
}

/// Writes `images` into `root/<label>/<i>.png`, every fourth one as JPEG instead.
fn write_folder(root: &Path, images: &[Vec<u8>], labels: &[u8]) {
    for (i, (img, &label)) in images.iter().zip(labels).enumerate() {
        let dir = root.join(label.to_string());
        std::fs::create_dir_all(&dir).unwrap();
        let buffer = image::GrayImage::from_raw(28, 28, img.clone()).unwrap();
        let ext = if i % 4 == 3 { "jpg" } else { "png" };
        buffer.save(dir.join(format!("{i:04}.{ext}"))).unwrap();
    }
}

#[test]
fn an_image_folder_loads_png_exactly_and_jpeg_closely() {
    let dir = tempfile::tempdir().unwrap();
    let (images, labels) = bundled("mnist-10k", 80);
    write_folder(dir.path(), &images, &labels);
    let loaded = load(
        DataSource::ImageFolder {
            dir: ".".into(),
            domains: false,
            list: None,
            test_fraction: 0.25,
        },
        dir.path(),
        None,
    );
    assert_eq!((loaded.train.side, loaded.train.channels), (28, 1));
    assert_eq!(loaded.train.len() + loaded.test.len(), 80);
    // Every loaded image is one of the originals under its label: PNGs bit for bit,
    // JPEGs within a small mean error.
    let mut exact = 0;
    for set in [&loaded.train, &loaded.test] {
        for (img, &label) in set.pixels.chunks(784).zip(&set.labels) {
            let best = images
                .iter()
                .zip(&labels)
                .filter(|(_, l)| **l == label)
                .map(|(orig, _)| {
                    orig.iter()
                        .zip(img)
                        .map(|(&a, &b)| (a as f64 - b as f64).abs())
                        .sum::<f64>()
                        / 784.0
                })
                .fold(f64::INFINITY, f64::min);
            assert!(
                best < 8.0,
                "mean error {best} against every original of its class"
            );
            exact += usize::from(best == 0.0);
        }
    }
    assert_eq!(exact, 60, "the 60 PNGs are bit-exact");
    // The class folders are 0..9 sorted, so labels are the originals'.
    let mut want: Vec<u8> = labels.clone();
    want.sort_unstable();
    let mut got: Vec<u8> = [loaded.train.labels, loaded.test.labels].concat();
    got.sort_unstable();
    assert_eq!(got, want);
}

#[test]
fn a_multi_domain_folder_gives_one_group_per_domain_and_natural_one_client_each() {
    let dir = tempfile::tempdir().unwrap();
    let (digits, digit_labels) = bundled("mnist-10k", 40);
    let (clothes, clothing_labels) = bundled("fashion-10k", 40);
    write_folder(&dir.path().join("digits"), &digits, &digit_labels);
    write_folder(&dir.path().join("clothing"), &clothes, &clothing_labels);
    let split = DataSource::ImageFolder {
        dir: ".".into(),
        domains: true,
        list: None,
        test_fraction: 0.2,
    }
    .load(dir.path(), None)
    .unwrap()
    .into_split()
    .unwrap();
    assert_eq!(split.groups, vec!["clothing", "digits"]);
    let part = partition(
        &split.train.labels,
        Groups {
            of: &split.train.groups,
            names: &split.groups,
        },
        2,
        &PartitionSpec::Natural,
        1,
        0.0,
        7,
    )
    .unwrap();
    assert_eq!(part.train[0].len() + part.train[1].len(), split.train.len());
    for (c, shard) in part.train.iter().enumerate() {
        assert!(
            shard
                .iter()
                .all(|&i| split.train.groups[i as usize] == c as u32)
        );
    }
}

#[test]
fn leaf_json_keeps_writers_and_natural_gives_one_client_per_writer() {
    let dir = tempfile::tempdir().unwrap();
    let (images, labels) = bundled("mnist-10k", 30);
    let user = |range: std::ops::Range<usize>| {
        serde_json::json!({
            "x": range.clone().map(|i| images[i].iter().map(|&p| p as f32 / 255.0).collect::<Vec<_>>()).collect::<Vec<_>>(),
            "y": range.map(|i| labels[i]).collect::<Vec<_>>(),
        })
    };
    let file = |users: &[(&str, std::ops::Range<usize>)]| {
        serde_json::json!({
            "users": users.iter().map(|u| u.0).collect::<Vec<_>>(),
            "num_samples": users.iter().map(|u| u.1.len()).collect::<Vec<_>>(),
            "user_data": users.iter().map(|u| (u.0.to_string(), user(u.1.clone()))).collect::<serde_json::Map<_, _>>(),
        })
    };
    for split in ["train", "test"] {
        std::fs::create_dir_all(dir.path().join(split)).unwrap();
    }
    let write = |path: &str, v: serde_json::Value| {
        std::fs::write(dir.path().join(path), v.to_string()).unwrap();
    };
    write(
        "train/a.json",
        file(&[("f0001_07", 0..8), ("f0002_11", 8..14)]),
    );
    write("train/b.json", file(&[("f0003_42", 14..24)]));
    write(
        "test/a.json",
        file(&[("f0002_11", 24..27), ("f0001_07", 27..30)]),
    );
    let loaded = load(DataSource::Leaf { dir: ".".into() }, dir.path(), None);
    assert_eq!(loaded.groups, vec!["f0001_07", "f0002_11", "f0003_42"]);
    let train: Vec<u8> = images[..24].concat();
    assert_eq!(loaded.train.pixels, train);
    assert_eq!(loaded.train.labels, labels[..24]);
    assert_eq!(
        loaded.train.groups,
        [vec![0; 8], vec![1; 6], vec![2; 10]].concat()
    );
    assert_eq!(loaded.test.groups, [vec![1; 3], vec![0; 3]].concat());
    let split = loaded.into_split().unwrap();
    let groups = Groups {
        of: &split.train.groups,
        names: &split.groups,
    };
    let part = partition(
        &split.train.labels,
        groups,
        3,
        &PartitionSpec::Natural,
        5,
        0.0,
        1,
    )
    .unwrap();
    let sizes: Vec<usize> = part.train.iter().map(Vec::len).collect();
    assert_eq!(sizes, vec![8, 6, 10]);
    let wrong = partition(
        &split.train.labels,
        groups,
        4,
        &PartitionSpec::Natural,
        5,
        0.0,
        1,
    );
    assert!(
        wrong
            .unwrap_err()
            .to_string()
            .contains("the data has 3 of them, but data.clients is 4")
    );
}

#[test]
fn the_uci_digits_csv_loads_scaled_with_every_fifth_line_for_testing() {
    let loaded = load(
        DataSource::Csv {
            file: "digits.csv.gz".into(),
            width: 8,
            height: 8,
            max: 16,
            test_fraction: 0.2,
        },
        &repo().join("scenarios/data/uci-digits"),
        None,
    );
    assert_eq!((loaded.train.len(), loaded.test.len()), (1438, 359));
    assert_eq!((loaded.train.side, loaded.train.channels), (8, 1));
    // The first line of the file: pixel values 0..=16 scaled to 0..=255.
    let first = "0,0,5,13,9,1,0,0,0,0,13,15,10,15,5,0,0,3,15,2,0,11,8,0,0,4,12,0,0,8,8,0,0,5,8,0,0,9,8,0,0,4,11,0,1,12,7,0,0,2,14,5,10,12,0,0,0,0,6,13,10,0,0,0";
    let want: Vec<u8> = first
        .split(',')
        .map(|v| ((v.parse::<u32>().unwrap() * 255 + 8) / 16) as u8)
        .collect();
    assert_eq!(&loaded.train.pixels[..64], &want[..]);
    assert_eq!(loaded.train.labels[..10], [0, 1, 2, 3, 5, 6, 7, 8, 0, 1]);
}

#[test]
fn domains_put_sources_side_by_side_in_one_shape() {
    let data = repo().join("scenarios/data");
    let source = DataSource::Domains(vec![
        NamedSource {
            name: "mnist".into(),
            source: DataSource::Idx {
                dir: "mnist-10k".into(),
            },
        },
        NamedSource {
            name: "uci".into(),
            source: DataSource::Csv {
                file: "uci-digits/digits.csv.gz".into(),
                width: 8,
                height: 8,
                max: 16,
                test_fraction: 0.2,
            },
        },
    ]);
    let shape = ImageShape {
        side: 28,
        channels: 1,
    };
    let split = source
        .load(&data, Some(shape))
        .unwrap()
        .into_split()
        .unwrap();
    assert_eq!(split.groups, vec!["mnist", "uci"]);
    assert_eq!(split.train.len(), 8000 + 1438);
    assert_eq!(split.test.len(), 2000 + 359);
    assert_eq!(split.train.side, 28);
    assert_eq!(split.train.groups.iter().filter(|&&g| g == 1).count(), 1438);
    // Without a shape the 8x8 and 28x28 domains cannot sit side by side.
    let err = error(source, &data, None);
    assert!(
        err.contains("domain \"uci\" holds 8x8x1 images but \"mnist\" 28x28x1"),
        "{err}"
    );
}

/// The PNG bytes of a 28x28 grey image.
fn png(img: &[u8]) -> Vec<u8> {
    let mut out = std::io::Cursor::new(Vec::new());
    image::GrayImage::from_raw(28, 28, img.to_vec())
        .unwrap()
        .write_to(&mut out, image::ImageFormat::Png)
        .unwrap();
    out.into_inner()
}

/// Writes a Parquet file as the Hugging Face hub saves image data sets: an `image`
/// column `struct<bytes, path>` (path null), an int64 label column named `label`, snappy
/// pages, and the class names in the `huggingface` metadata.
fn write_parquet(path: &Path, images: &[Vec<u8>], labels: &[i64], names: &[&str]) {
    use parquet::basic::Compression;
    use parquet::data_type::{ByteArray, ByteArrayType, Int64Type};
    use parquet::file::metadata::KeyValue;
    use parquet::file::properties::WriterProperties;
    use parquet::file::writer::SerializedFileWriter;
    let schema = parquet::schema::parser::parse_message_type(
        "message hf { required group image { optional binary bytes; optional binary path (STRING); } optional int64 label; }",
    )
    .unwrap();
    let features = serde_json::json!({"info": {"features": {
        "image": {"_type": "Image"},
        "label": {"names": names, "_type": "ClassLabel"},
    }}});
    let props = WriterProperties::builder()
        .set_compression(Compression::SNAPPY)
        .set_key_value_metadata(Some(vec![KeyValue::new(
            "huggingface".into(),
            features.to_string(),
        )]))
        .build();
    let file = std::fs::File::create(path).unwrap();
    let mut writer = SerializedFileWriter::new(
        file,
        std::sync::Arc::new(schema),
        std::sync::Arc::new(props),
    )
    .unwrap();
    let mut group = writer.next_row_group().unwrap();
    let bytes: Vec<ByteArray> = images.iter().map(|i| ByteArray::from(png(i))).collect();
    let present = vec![1i16; images.len()];
    let mut column = 0;
    while let Some(mut c) = group.next_column().unwrap() {
        match column {
            0 => c
                .typed::<ByteArrayType>()
                .write_batch(&bytes, Some(&present), None),
            1 => c
                .typed::<ByteArrayType>()
                .write_batch(&[], Some(&vec![0; images.len()]), None),
            _ => c
                .typed::<Int64Type>()
                .write_batch(labels, Some(&present), None),
        }
        .unwrap();
        c.close().unwrap();
        column += 1;
    }
    group.close().unwrap();
    writer.close().unwrap();
}

const FASHION: [&str; 10] = [
    "T-shirt/top",
    "Trouser",
    "Pullover",
    "Dress",
    "Coat",
    "Sandal",
    "Shirt",
    "Sneaker",
    "Bag",
    "Ankle boot",
];

#[test]
fn hugging_face_parquet_loads_bit_for_bit() {
    let dir = tempfile::tempdir().unwrap();
    let (images, labels) = bundled("fashion-10k", 50);
    let labels: Vec<i64> = labels.iter().map(|&l| l as i64).collect();
    write_parquet(
        &dir.path().join("train-00000-of-00002.parquet"),
        &images[..20],
        &labels[..20],
        &FASHION,
    );
    write_parquet(
        &dir.path().join("train-00001-of-00002.parquet"),
        &images[20..40],
        &labels[20..40],
        &FASHION,
    );
    write_parquet(
        &dir.path().join("test-00000-of-00001.parquet"),
        &images[40..],
        &labels[40..],
        &FASHION,
    );
    let source = DataSource::Parquet {
        dir: ".".into(),
        files: Vec::new(),
        image: "image".into(),
        label: "label".into(),
        test_fraction: 0.2,
    };
    let loaded = load(source, dir.path(), None);
    assert_eq!((loaded.train.side, loaded.train.channels), (28, 1));
    assert_eq!(loaded.train.pixels, images[..40].concat());
    assert_eq!(loaded.test.pixels, images[40..].concat());
    let want: Vec<u8> = labels.iter().map(|&l| l as u8).collect();
    assert_eq!(loaded.train.labels, want[..40]);
    assert_eq!(loaded.test.labels, want[40..]);
    // Without a test file, every fifth training row is held out.
    std::fs::remove_file(dir.path().join("test-00000-of-00001.parquet")).unwrap();
    let source = DataSource::Parquet {
        dir: ".".into(),
        files: Vec::new(),
        image: "image".into(),
        label: "label".into(),
        test_fraction: 0.2,
    };
    let loaded = load(source, dir.path(), None);
    assert_eq!((loaded.train.len(), loaded.test.len()), (32, 8));
    assert_eq!(&loaded.test.pixels[..784], &images[4][..]);
    // Listed files only: the second training file alone.
    let source = DataSource::Parquet {
        dir: ".".into(),
        files: vec!["train-00001-of-00002.parquet".into()],
        image: "image".into(),
        label: "label".into(),
        test_fraction: 0.5,
    };
    let loaded = load(source, dir.path(), None);
    assert_eq!(
        loaded.train.pixels,
        images[20..40]
            .iter()
            .step_by(2)
            .flatten()
            .copied()
            .collect::<Vec<u8>>()
    );
}

#[test]
fn decoded_images_are_cached_by_the_digest_of_their_files() {
    let dir = tempfile::tempdir().unwrap();
    let (images, labels) = bundled("mnist-10k", 40);
    write_folder(&dir.path().join("digits"), &images, &labels);
    let cache = dir.path().join("cache");
    let source = DataSource::ImageFolder {
        dir: "digits".into(),
        domains: false,
        list: None,
        test_fraction: 0.2,
    };
    let cached = |shape| source.load_cached(dir.path(), shape, Some(&cache)).unwrap();
    let entries = || std::fs::read_dir(&cache).unwrap().count();
    let first = cached(None);
    assert_eq!(entries(), 1);
    assert_eq!(first, load(source.clone(), dir.path(), None));
    // The same files: read back, nothing new written.
    let file = std::fs::read_dir(&cache)
        .unwrap()
        .next()
        .unwrap()
        .unwrap()
        .path();
    let written = std::fs::metadata(&file).unwrap().modified().unwrap();
    assert_eq!(cached(None), first);
    assert_eq!(
        std::fs::metadata(&file).unwrap().modified().unwrap(),
        written
    );
    // Another shape, or one changed image, is another key.
    let small = cached(Some(ImageShape {
        side: 14,
        channels: 1,
    }));
    assert_eq!(small.train.side, 14);
    assert_eq!(entries(), 2);
    image::GrayImage::new(28, 28)
        .save(dir.path().join(format!("digits/{}/0000.png", labels[0])))
        .unwrap();
    let changed = cached(None);
    assert_eq!(entries(), 3);
    assert_ne!(changed, first);
    // A damaged cache file is decoded again (and rewritten whole).
    let bytes = std::fs::read(&file).unwrap();
    std::fs::write(&file, &bytes[..bytes.len() / 2]).unwrap();
    image::GrayImage::from_raw(28, 28, images[0].clone())
        .unwrap()
        .save(dir.path().join(format!("digits/{}/0000.png", labels[0])))
        .unwrap();
    assert_eq!(cached(None), first);
    assert_eq!(std::fs::read(&file).unwrap(), bytes);
}

#[test]
fn malformed_data_names_the_file_and_the_place() {
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path();
    let (images, labels) = bundled("mnist-10k", 12);
    let cifar = |name: &str| DataSource::Cifar10 { dir: name.into() };
    let write = |path: &str, bytes: &[u8]| {
        let path = root.join(path);
        std::fs::create_dir_all(path.parent().unwrap()).unwrap();
        std::fs::write(path, bytes).unwrap();
    };
    let mut cases: Vec<(DataSource, Option<ImageShape>, String)> = Vec::new();

    // 1. A CIFAR batch cut short in its third record.
    let good: Vec<u8> = (0..3)
        .flat_map(|i| cifar_record(&[labels[i]], &images[i]))
        .collect();
    for f in [
        "data_batch_1.bin",
        "data_batch_2.bin",
        "data_batch_3.bin",
        "data_batch_4.bin",
        "test_batch.bin",
    ] {
        write(&format!("cut/{f}"), &good);
    }
    write("cut/data_batch_5.bin", &good[..good.len() - 100]);
    cases.push((
        cifar("cut"),
        None,
        "data_batch_5.bin: record 2: cut short: 9119 bytes are not a whole number of 3073-byte records".into(),
    ));
    // 2. A CIFAR-10 label beyond its ten classes.
    let mut bad_label = good.clone();
    bad_label[3073] = 12;
    for f in [
        "data_batch_1.bin",
        "data_batch_2.bin",
        "data_batch_3.bin",
        "data_batch_4.bin",
        "data_batch_5.bin",
        "test_batch.bin",
    ] {
        write(
            &format!("label/{f}"),
            if f == "data_batch_3.bin" {
                &bad_label
            } else {
                &good
            },
        );
    }
    cases.push((
        cifar("label"),
        None,
        "data_batch_3.bin: record 1: label 12 is outside the 10 classes".into(),
    ));
    // 3. A corrupt image in a folder.
    write_folder(&root.join("corrupt"), &images, &labels);
    write(
        &format!("corrupt/{}/0099.png", labels[0]),
        b"\x89PNG\r\n\x1a\nnot really",
    );
    cases.push((
        DataSource::ImageFolder {
            dir: "corrupt".into(),
            domains: false,
            list: None,
            test_fraction: 0.2,
        },
        None,
        format!(
            "corrupt/{}/0099.png: not a readable PNG or JPEG image",
            labels[0]
        ),
    ));
    // 4. Images of mixed sizes where resizing is off.
    write_folder(&root.join("mixed"), &images, &labels);
    image::GrayImage::new(20, 20)
        .save(root.join(format!("mixed/{}/0098.png", labels[0])))
        .unwrap();
    let folder = |dir: &str| DataSource::ImageFolder {
        dir: dir.into(),
        domains: false,
        list: None,
        test_fraction: 0.2,
    };
    cases.push((
        folder("mixed"),
        None,
        format!(
            "mixed/{}/0098.png: size: 20x20 among 28x28 images; give data.image",
            labels[0]
        ),
    ));
    // 5. A list file whose label is outside the class list.
    write_folder(&root.join("listed"), &images[..4], &labels[..4]);
    write(
        "listed.txt",
        format!("{}/0000.png 0\n{}/0001.png 7\n", labels[0], labels[1]).as_bytes(),
    );
    cases.push((
        DataSource::ImageFolder {
            dir: "listed".into(),
            domains: false,
            list: Some("listed.txt".into()),
            test_fraction: 0.5,
        },
        None,
        "listed.txt: line 2: label 7 is outside the class list (2 classes".into(),
    ));
    // 6. A LEAF user listed without data.
    write("leaf/train/a.json", br#"{"users": ["f0001_07", "f0009_99"], "num_samples": [1, 1], "user_data": {"f0001_07": {"x": [[0.5, 0.5, 0.5, 0.5]], "y": [3]}}}"#);
    write("leaf/test/a.json", br#"{"users": [], "user_data": {}}"#);
    cases.push((
        DataSource::Leaf { dir: "leaf".into() },
        None,
        "leaf/train/a.json: user \"f0009_99\": listed in users but has no entry in user_data"
            .into(),
    ));
    // 7. A LEAF user with more labels than images.
    write(
        "leaf2/train/a.json",
        br#"{"users": ["u"], "user_data": {"u": {"x": [[0.5, 0.5, 0.5, 0.5]], "y": [3, 4]}}}"#,
    );
    write("leaf2/test/a.json", br#"{"users": [], "user_data": {}}"#);
    cases.push((
        DataSource::Leaf {
            dir: "leaf2".into(),
        },
        None,
        "leaf2/train/a.json: user \"u\": 1 images but 2 labels".into(),
    ));
    // 8. LEAF JSON that is not JSON.
    write("leaf3/train/a.json", br#"{"users": ["u"], "user_data": "#);
    write("leaf3/test/a.json", br#"{"users": [], "user_data": {}}"#);
    cases.push((
        DataSource::Leaf {
            dir: "leaf3".into(),
        },
        None,
        "leaf3/train/a.json: EOF while parsing".into(),
    ));
    // 9. A CSV line with a missing pixel, and 10. one with a pixel above max.
    write("short.csv", b"0,1,2,3,4\n0,1,2,3\n");
    let csv = |file: &str| DataSource::Csv {
        file: file.into(),
        width: 2,
        height: 2,
        max: 16,
        test_fraction: 0.5,
    };
    cases.push((
        csv("short.csv"),
        None,
        "short.csv: line 2: 4 fields, expected 5 (2x2 pixels and the label)".into(),
    ));
    write("bright.csv", b"0,1,2,3,4\n0,1,17,3,4\n");
    cases.push((
        csv("bright.csv"),
        None,
        "bright.csv: line 2: pixel 3 is 17, above max = 16".into(),
    ));
    // 11. Non-square images without data.image.
    write("wide.csv", b"0,1,2,3,4,5,1\n0,1,2,3,4,5,2\n");
    cases.push((
        DataSource::Csv {
            file: "wide.csv".into(),
            width: 3,
            height: 2,
            max: 16,
            test_fraction: 0.5,
        },
        None,
        "wide.csv: images are 3x2; give data.image to resize them to a square".into(),
    ));
    // 12. A missing CIFAR batch.
    cases.push((
        cifar("nowhere"),
        None,
        "nowhere/data_batch_1.bin: No such file".into(),
    ));

    // 13. A Parquet file without the named label column, and 14. a label beyond the
    // class names in its metadata.
    std::fs::create_dir_all(root.join("hf")).unwrap();
    let wide: Vec<i64> = vec![1, 2, 3, 4];
    write_parquet(
        &root.join("hf/train-00000-of-00001.parquet"),
        &images[..4],
        &wide,
        &FASHION[..4],
    );
    let hf = |label: &str| DataSource::Parquet {
        dir: "hf".into(),
        files: Vec::new(),
        image: "image".into(),
        label: label.into(),
        test_fraction: 0.5,
    };
    cases.push((
        hf("fine_label"),
        None,
        "hf/train-00000-of-00001.parquet: schema: no column \"fine_label\" (it has image, label)"
            .into(),
    ));
    cases.push((hf("label"), None, "hf/train-00000-of-00001.parquet: row 3: label 4 is outside the class list (4 classes: T-shirt/top, Trouser, Pullover, Dress)".into()));

    assert!(cases.len() >= 8);
    for (source, shape, want) in cases {
        let err = error(source, root, shape);
        let err = err.replace(&format!("{}/", root.display()), "");
        assert!(err.contains(&want), "\n got: {err}\nwant: {want}");
    }
}

#[test]
fn a_bad_data_file_stops_the_run_with_exit_code_2() {
    let dir = tempfile::tempdir().unwrap();
    // 4x4 images (the quickstart's patch of 4 divides them), the second line spoilt.
    let good = format!("{}1", "7,".repeat(16));
    let bad = format!("0,1,2,x,{}2", "7,".repeat(12));
    std::fs::write(dir.path().join("digits.csv"), format!("{good}\n{bad}\n")).unwrap();
    let scenario = std::fs::read_to_string(repo().join("scenarios/quickstart.ron"))
        .unwrap()
        .replace(
            "source: Idx(dir: \"data/mnist-10k\")",
            "source: Csv(file: \"digits.csv\", width: 4, height: 4, test_fraction: 0.5)",
        )
        .replace(
            "\"models/",
            &format!("\"{}/", repo().join("scenarios/models").display()),
        );
    assert!(scenario.contains("digits.csv"), "the quickstart reads IDX");
    let file = dir.path().join("bad.ron");
    std::fs::write(&file, scenario).unwrap();
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_flotilla"))
        .args(["run", file.to_str().unwrap(), "--out"])
        .arg(dir.path().join("out"))
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(2), "{stderr}");
    assert!(
        stderr.contains("digits.csv: line 2: field 4 is \"x\", not a whole number"),
        "{stderr}"
    );
}

#[test]
fn a_natural_partition_that_does_not_fit_the_clients_says_so() {
    let dir = tempfile::tempdir().unwrap();
    let scenario = std::fs::read_to_string(repo().join("scenarios/quickstart.ron"))
        .unwrap()
        .replace("partition: Dirichlet(alpha: 1.0)", "partition: Natural")
        .replace(
            "\"data/",
            &format!("\"{}/", repo().join("scenarios/data").display()),
        )
        .replace(
            "\"models/",
            &format!("\"{}/", repo().join("scenarios/models").display()),
        );
    assert!(scenario.contains("partition: Natural"));
    let file = dir.path().join("natural.ron");
    std::fs::write(&file, scenario).unwrap();
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_flotilla"))
        .args(["run", file.to_str().unwrap(), "--out"])
        .arg(dir.path().join("out"))
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(2), "{stderr}");
    assert!(
        stderr.contains(
            "data.partition: a Natural partition gives one client per writer, user or domain: \
             the data has 1 of them, but data.clients is"
        ),
        "{stderr}"
    );
}
