//! Every data source on fixtures written from the bundled real images: the loaded pixels
//! and labels equal the originals (bit for bit in lossless formats), groups and partitions
//! come out as documented (malformed files: `source_errors.rs`).

use std::path::Path;

use crate::fixtures::{FASHION, bundled, cifar_record, error, repo, write_folder, write_parquet};
use flotilla::data::{
    DataSource, Groups, ImageShape, NamedSource, PartitionSpec, SourceImages, partition,
};

fn load(source: DataSource, base: &Path, shape: Option<ImageShape>) -> SourceImages {
    source.load(base, shape).unwrap()
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
    let loaded = load(source.clone(), dir.path(), None);
    assert_eq!((loaded.train.side, loaded.train.channels), (28, 1));
    assert_eq!(loaded.train.pixels, images[..40].concat());
    assert_eq!(loaded.test.pixels, images[40..].concat());
    let want: Vec<u8> = labels.iter().map(|&l| l as u8).collect();
    assert_eq!(loaded.train.labels, want[..40]);
    assert_eq!(loaded.test.labels, want[40..]);
    // Without a test file, every fifth training row is held out.
    std::fs::remove_file(dir.path().join("test-00000-of-00001.parquet")).unwrap();
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
