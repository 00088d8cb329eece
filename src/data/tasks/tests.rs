//! Dealing images to tasks, slots per client, and a task's source domain.

use super::*;
use crate::data::Pixels;

/// 60 training and 20 test 2x2 images; image i has label i % 3 and pixel value i.
fn data() -> DataSplit {
    let set = |n: usize| Dataset {
        pixels: Pixels::Floats((0..n * 4).map(|v| (v / 4) as f32).collect()),
        labels: (0..n).map(|i| (i % 3) as u8).collect(),
        // Images of 0..n/2 are domain "a", the rest "b".
        groups: (0..n).map(|i| u32::from(i >= n / 2)).collect(),
        side: 2,
        channels: 1,
        classes: 3,
    };
    DataSplit {
        train: set(60),
        test: set(20),
        groups: vec!["a".into(), "b".into()],
    }
}

fn task(name: &str, classes: Vec<u8>, clients: Vec<usize>) -> TaskSpec {
    TaskSpec {
        name: name.into(),
        classes,
        source: None,
        domain: Vec::new(),
        clients,
    }
}

fn layout(tasks: &[TaskSpec], separate: bool) -> Layout<'_> {
    Layout {
        tasks,
        clients: 3,
        partition: &PartitionSpec::Iid,
        min_samples: 1,
        test_fraction: 0.0,
        seed: 5,
        separate,
    }
}

#[test]
fn images_are_dealt_without_overlap_and_slots_follow_the_tasks() {
    let tasks = [
        task("a", vec![0, 1], vec![0, 2]),
        task("b", vec![1, 2], vec![1, 2]),
    ];
    let data = layout(&tasks, true).apply(data()).unwrap();
    // Label 0 only in a, label 2 only in b, label 1 split evenly: 30 images each.
    assert_eq!(data.train.len(), 60);
    let labels = |t: usize| -> Vec<u8> {
        let mut v: Vec<u8> = data
            .slots
            .iter()
            .flatten()
            .filter(|s| s.task == Some(t))
            .flat_map(|s| s.train.iter().map(|&i| data.train.labels[i as usize]))
            .collect();
        v.sort_unstable();
        v
    };
    assert_eq!(labels(0), [vec![0; 20], vec![1; 10]].concat());
    assert_eq!(labels(1), [vec![1; 10], vec![2; 20]].concat());
    // Every training image belongs to exactly one slot.
    let mut all: Vec<u32> = data
        .slots
        .iter()
        .flatten()
        .flat_map(|s| s.train.clone())
        .collect();
    all.sort_unstable();
    assert_eq!(all, (0..60).collect::<Vec<u32>>());
    let tasks_of: Vec<Vec<Option<usize>>> = data
        .slots
        .iter()
        .map(|s| s.iter().map(|s| s.task).collect())
        .collect();
    assert_eq!(
        tasks_of,
        vec![vec![Some(0)], vec![Some(1)], vec![Some(0), Some(1)]]
    );
    assert_eq!(tasks_of, slot_tasks(&tasks, 3, true));
    // Central test sets: labels 0-1 (14 of 20 images) and 1-2 (13 of 20).
    assert_eq!(data.task_test[0].len(), 14);
    assert_eq!(data.task_test[1].len(), 13);
    assert_eq!(data.test.len(), 27);
}

#[test]
fn shared_slots_merge_a_clients_tasks() {
    let tasks = [task("a", vec![], vec![0, 1, 2]), task("b", vec![], vec![2])];
    let separate = layout(&tasks, true).apply(data()).unwrap();
    let merged = layout(&tasks, false).apply(data()).unwrap();
    assert_eq!(merged.slots[2].len(), 1);
    assert_eq!(merged.slots[2][0].task, None);
    let tasks_of: Vec<Vec<Option<usize>>> = merged
        .slots
        .iter()
        .map(|s| s.iter().map(|s| s.task).collect())
        .collect();
    assert_eq!(tasks_of, slot_tasks(&tasks, 3, false));
    let both: Vec<u32> = separate.slots[2]
        .iter()
        .flat_map(|s| s.train.clone())
        .collect();
    assert_eq!(merged.slots[2][0].train, both);
    assert_eq!(merged.slots[0], separate.slots[0]);
}

#[test]
fn a_class_outside_the_data_names_its_field() {
    let tasks = [task("a", vec![3], vec![0, 1, 2])];
    let err = layout(&tasks, true).apply(data()).err().unwrap();
    assert_eq!(err.field(), "data.tasks[0].classes");
}

#[test]
fn a_task_with_a_source_takes_only_that_domains_images() {
    let mut a = task("from-a", vec![], vec![0, 1]);
    a.source = Some("a".into());
    let mut b = task("from-b", vec![], vec![2]);
    b.source = Some("b".into());
    let data = data();
    // Pixel value i / 4 of image i: images 0..30 are domain "a" in training, 0..10 in test.
    let laid = layout(&[a.clone(), b], true).apply(data).unwrap();
    let value = |set: &Dataset, i: u32| set.pixels.slice(i as usize * 4..i as usize * 4 + 1)[0];
    for (client, want_a) in [(0, true), (1, true), (2, false)] {
        for &i in &laid.slots[client][0].train {
            assert_eq!(value(&laid.train, i) < 30.0, want_a, "client {client}");
        }
    }
    assert_eq!(laid.task_test[0].len(), 10);
    assert!(
        laid.task_test[0]
            .iter()
            .all(|&i| value(&laid.test, i) < 10.0)
    );
    let mut unknown = a;
    unknown.source = Some("c".into());
    let err = layout(&[unknown], true).apply(self::data()).err().unwrap();
    assert_eq!(err.field(), "data.tasks[0].source");
    assert_eq!(
        err.to_string(),
        "source \"c\" is not a domain of the data (a, b)"
    );
}
