//! Round trips of evaluation parts and their counts.

use super::*;

fn chunks() -> Vec<EvalChunk> {
    let served = Arc::new(vec![0.5, -1.25, f32::MIN_POSITIVE]);
    let own = Arc::new(vec![3.0]);
    vec![
        EvalChunk {
            source: Source::Central(1, 250, 500),
            params: served.clone(),
            own: None,
        },
        EvalChunk {
            source: Source::Slot(7, 2),
            params: served,
            own: Some(own),
        },
    ]
}

#[test]
fn an_evaluation_part_round_trips_with_each_model_written_once() {
    let bytes = encode_job(&Job::Eval(chunks()));
    // Tag, table of two vectors (3 and 1 floats), two chunks.
    let table = 8 + (8 + 3 * 4) + (8 + 4);
    let chunk = |fields: usize| 1 + fields * 8 + 8 + 1 + 8;
    assert_eq!(bytes.len(), 1 + table + 8 + chunk(3) + chunk(2));
    let Some(Job::Eval(back)) = decode_job(&bytes) else {
        panic!("not an evaluation");
    };
    assert_eq!(format!("{back:?}"), format!("{:?}", chunks()));
    assert!(Arc::ptr_eq(&back[0].params, &back[1].params));
    assert!(decode_job(&bytes[..bytes.len() - 1]).is_none());
}

#[test]
fn chunk_counts_round_trip_bit_for_bit() {
    let a = EvalCounts {
        correct: 3,
        total: 250,
        loss_sum: 0.1 + 0.2,
    };
    let b = EvalCounts {
        correct: 0,
        total: 1,
        loss_sum: f64::MIN_POSITIVE,
    };
    let bytes = encode_answer(&Answer::Eval(vec![(a, b), (b, a)]));
    let Some(Answer::Eval(back)) = decode_answer(&bytes) else {
        panic!("not an evaluation's counts");
    };
    assert_eq!(back, vec![(a, b), (b, a)]);
    assert_eq!(back[0].0.loss_sum.to_bits(), (0.1f64 + 0.2).to_bits());
    let mut longer = bytes.clone();
    longer.push(0);
    assert!(decode_answer(&longer).is_none());
}
