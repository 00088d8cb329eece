//! Malformed data files: each stops the load with a message naming the file and the
//! record, line, user, row or image; through the CLI, with exit code 2.

use std::path::Path;

use crate::fixtures::{FASHION, bundled, cifar_record, error, repo, write_folder, write_parquet};
use flotilla::data::{DataSource, ImageShape};

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

/// The quickstart with `edit` applied, its bundled paths made absolute, run from `dir`:
/// the exit code and what it printed on stderr.
fn run_quickstart(dir: &Path, edit: impl Fn(String) -> String) -> (Option<i32>, String) {
    let absolute = |text: String, folder: &str| {
        text.replace(
            &format!("\"{folder}/"),
            &format!("\"{}/", repo().join("scenarios").join(folder).display()),
        )
    };
    let text = std::fs::read_to_string(repo().join("scenarios/quickstart.ron")).unwrap();
    let scenario = absolute(absolute(edit(text), "data"), "models");
    let file = dir.join("edited.ron");
    std::fs::write(&file, scenario).unwrap();
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_flotilla"))
        .args(["run", file.to_str().unwrap(), "--out"])
        .arg(dir.join("out"))
        .output()
        .unwrap();
    (
        out.status.code(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

#[test]
fn a_bad_data_file_stops_the_run_with_exit_code_2() {
    let dir = tempfile::tempdir().unwrap();
    // 4x4 images (the quickstart's patch of 4 divides them), the second line spoilt.
    let good = format!("{}1", "7,".repeat(16));
    let bad = format!("0,1,2,x,{}2", "7,".repeat(12));
    std::fs::write(dir.path().join("digits.csv"), format!("{good}\n{bad}\n")).unwrap();
    let (code, stderr) = run_quickstart(dir.path(), |text| {
        assert!(text.contains("source: Idx(dir: \"data/mnist-10k\")"));
        text.replace(
            "source: Idx(dir: \"data/mnist-10k\")",
            &format!(
                "source: Csv(file: \"{}\", width: 4, height: 4, test_fraction: 0.5)",
                dir.path().join("digits.csv").display()
            ),
        )
    });
    assert_eq!(code, Some(2), "{stderr}");
    assert!(
        stderr.contains("digits.csv: line 2: field 4 is \"x\", not a whole number"),
        "{stderr}"
    );
}

#[test]
fn a_natural_partition_that_does_not_fit_the_clients_says_so() {
    let dir = tempfile::tempdir().unwrap();
    let (code, stderr) = run_quickstart(dir.path(), |text| {
        assert!(text.contains("partition: Dirichlet(alpha: 1.0)"));
        text.replace("partition: Dirichlet(alpha: 1.0)", "partition: Natural")
    });
    assert_eq!(code, Some(2), "{stderr}");
    assert!(
        stderr.contains(
            "data.partition: a Natural partition gives one client per writer, user or domain: \
             the data has 1 of them, but data.clients is"
        ),
        "{stderr}"
    );
}
