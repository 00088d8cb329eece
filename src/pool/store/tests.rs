//! The store against torn, foreign and damaged files.

use super::*;
use crate::notice::ignored;
use flotilla_actors::learner::SlotOutcome;

fn outcome(seed: f32) -> TrainOutcome {
    TrainOutcome {
        slots: vec![SlotOutcome {
            params: vec![seed, -0.0, f32::MIN_POSITIVE, 1e-3 * seed],
            num_samples: 17,
        }],
        loss: 0.25 + seed as f64,
        personal: Some(vec![seed; 3]),
    }
}

#[test]
fn results_come_back_bit_for_bit_and_a_torn_tail_is_cut() {
    let dir = tempfile::tempdir().expect("temp dir");
    let path = dir.path().join(STORE_FILE);
    let store = JobStore::create(&path, "test", ignored()).expect("create");
    store.put_train(&[1; 32], &outcome(1.0));
    let eval = EvalOutcome {
        global_accuracy: 0.5,
        global_loss: 1.25,
        task_accuracy: vec![0.5],
        client_accuracy: vec![Some(0.75), None],
        personalized_accuracy: vec![None, Some(1.0)],
    };
    store.put_eval(&[2; 32], &eval);
    store.put_train(&[3; 32], &outcome(3.0));
    drop(store);
    // A crash in the middle of the last record's write.
    let len = std::fs::metadata(&path).expect("store").len();
    let file = OpenOptions::new().write(true).open(&path).expect("open");
    file.set_len(len - 5).expect("truncate");
    drop(file);

    let store = JobStore::open(&path, "test", false, ignored()).expect("reopen");
    let back = store.train(&[1; 32]).expect("stored");
    assert_eq!(back.slots[0].params, outcome(1.0).slots[0].params);
    assert_eq!(back.loss.to_bits(), outcome(1.0).loss.to_bits());
    assert_eq!(back.personal, outcome(1.0).personal);
    assert_eq!(store.eval(&[2; 32]), Some(eval));
    assert!(store.train(&[3; 32]).is_none(), "the torn record is gone");
    assert!(
        store.train(&[2; 32]).is_none(),
        "an evaluation is not a training"
    );
    // Appending after the cut works.
    store.put_train(&[3; 32], &outcome(3.0));
    drop(store);
    let store = JobStore::open(&path, "test", false, ignored()).expect("reopen");
    assert_eq!(store.train(&[3; 32]).expect("stored").loss, 3.25);
    assert_eq!(store.taken_and_computed(), (1, 0));
}

#[test]
fn foreign_and_damaged_stores_are_refused() {
    let dir = tempfile::tempdir().expect("temp dir");
    let path = dir.path().join(STORE_FILE);
    let store = JobStore::create(&path, "flotilla 0.1.0 flex", ignored()).expect("create");
    store.put_train(&[1; 32], &outcome(1.0));
    store.put_train(&[2; 32], &outcome(2.0));
    drop(store);
    let err = JobStore::open(&path, "flotilla 0.2.0 flex", false, ignored()).err();
    assert!(matches!(err, Some(StoreError::Foreign { .. })), "{err:?}");
    // A flipped byte inside the first record, which is not the last.
    let mut bytes = std::fs::read(&path).expect("read");
    let first = MAGIC.len() + "flotilla 0.1.0 flex".len() + 2;
    bytes[first + HEAD + 3] ^= 0x40;
    std::fs::write(&path, &bytes).expect("write");
    let err = JobStore::open(&path, "flotilla 0.1.0 flex", false, ignored()).err();
    assert!(
        matches!(err, Some(StoreError::Corrupt { offset, .. }) if offset == first as u64),
        "{err:?}"
    );
    let missing = JobStore::open(&dir.path().join("none"), "x", false, ignored()).err();
    assert!(matches!(missing, Some(StoreError::Missing { .. })));
}
