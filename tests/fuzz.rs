//! Random mutations of the shipped scenarios: validation answers every one of them with
//! a scenario or an error, never a panic, and a sample of the mutants that validate runs
//! one round as a child process that exits on its own, without a panic or a kill.
//!
//! The mutations are drawn from a fixed seed, so a failure names a mutant that the next
//! run draws again.

use std::panic::{AssertUnwindSafe, catch_unwind};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use flotilla::scenario::{self, Loaded};

/// Mutants checked by validation.
const MUTANTS: usize = 5_000;
/// Valid mutants run for one round.
const RUNS: usize = 6;
/// The shipped scenarios whose round takes seconds in a test build: the runs' sample is
/// drawn from their mutants, to keep the suite short.
const QUICK: &[&str] = &[
    "quickstart.ron",
    "stragglers-sync.ron",
    "stragglers-fedasync.ron",
    "stragglers-fedbuff.ron",
];
/// Wall time a one-round run may take before it counts as a hang.
const RUN_LIMIT: Duration = Duration::from_secs(300);

fn repo() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

/// SplitMix64: small, seeded, and independent of the code under test.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9e37_79b9_7f4a_7c15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        z ^ (z >> 31)
    }

    fn below(&mut self, n: usize) -> usize {
        (self.next() % n as u64) as usize
    }

    fn pick<'a, T>(&mut self, items: &'a [T]) -> &'a T {
        &items[self.below(items.len())]
    }
}

/// A shipped scenario: its file and text.
struct Seed {
    file: PathBuf,
    text: String,
}

fn seeds() -> Vec<Seed> {
    let mut files = Vec::new();
    for dir in ["scenarios", "scenarios/baselines"] {
        for entry in std::fs::read_dir(repo().join(dir)).unwrap() {
            let path = entry.unwrap().path();
            if path.extension().is_some_and(|e| e == "ron") {
                files.push(path);
            }
        }
    }
    files.sort();
    assert!(files.len() >= 10, "the shipped scenarios are missing");
    files
        .into_iter()
        .map(|file| Seed {
            text: std::fs::read_to_string(&file).unwrap(),
            file,
        })
        .collect()
}

/// Numbers that break code written for the usual ones.
const NUMBERS: &[&str] = &[
    "0",
    "1",
    "2",
    "-1",
    "0.0",
    "-0.5",
    "0.999999",
    "1.5",
    "65536",
    "999999999",
    "4294967296",
    "18446744073709551615",
    "18446744073709551616",
    "1e308",
    "1e-308",
    "NaN",
    "inf",
    "-inf",
];

/// Quantities (durations, rates, sizes) that break code written for the usual ones.
const QUANTITIES: &[&str] = &[
    "0s",
    "-1s",
    "1e20s",
    "1e-30s",
    "NaN s",
    "18446744073709551616us",
    "",
    "4 parsecs",
    "0Mbit/s",
    "1e30Gbit/s",
    "0 samples/s",
    "1e-9 samples/s",
    "999999999h",
];

/// `(start, end)` of every number in `text` that is not part of a name.
fn numbers(text: &str) -> Vec<(usize, usize)> {
    let b = text.as_bytes();
    let mut spans = Vec::new();
    let mut i = 0;
    while i < b.len() {
        let starts = b[i].is_ascii_digit() && (i == 0 || !is_name_byte(b[i - 1]));
        if starts {
            let start = i;
            while i < b.len() && (b[i].is_ascii_alphanumeric() || b[i] == b'.') {
                i += 1;
            }
            spans.push((start, i));
        } else {
            i += 1;
        }
    }
    spans
}

fn is_name_byte(b: u8) -> bool {
    b.is_ascii_alphanumeric() || b == b'_' || b == b'"'
}

/// `(start, end)` of every string literal's contents.
fn strings(text: &str) -> Vec<(usize, usize)> {
    let quotes: Vec<usize> = text.match_indices('"').map(|(i, _)| i).collect();
    quotes.chunks_exact(2).map(|q| (q[0] + 1, q[1])).collect()
}

/// `(start, end)` of every name (identifiers, field names, variants).
fn names(text: &str) -> Vec<(usize, usize)> {
    let b = text.as_bytes();
    let mut spans = Vec::new();
    let mut i = 0;
    while i < b.len() {
        if (b[i].is_ascii_alphabetic() || b[i] == b'_') && (i == 0 || !is_name_byte(b[i - 1])) {
            let start = i;
            while i < b.len() && (b[i].is_ascii_alphanumeric() || b[i] == b'_') {
                i += 1;
            }
            spans.push((start, i));
        } else {
            i += 1;
        }
    }
    spans
}

fn splice(text: &str, (start, end): (usize, usize), with: &str) -> String {
    format!("{}{}{}", &text[..start], with, &text[end..])
}

/// One random edit of `text`; `names` are every name in the shipped scenarios.
fn mutate(rng: &mut Rng, text: &str, vocabulary: &[String]) -> String {
    let lines: Vec<&str> = text.lines().collect();
    if lines.is_empty() {
        return text.to_owned();
    }
    match rng.below(10) {
        // Numbers and quantities get extreme values most often: they pass the parser.
        0..=4 => match numbers(text) {
            spans if spans.is_empty() => text.to_owned(),
            spans => splice(text, *rng.pick(&spans), NUMBERS[rng.below(NUMBERS.len())]),
        },
        5 | 6 => match strings(text) {
            spans if spans.is_empty() => text.to_owned(),
            spans => splice(
                text,
                *rng.pick(&spans),
                QUANTITIES[rng.below(QUANTITIES.len())],
            ),
        },
        7 => match names(text) {
            spans if spans.is_empty() => text.to_owned(),
            spans => splice(text, *rng.pick(&spans), rng.pick(vocabulary).as_str()),
        },
        8 if rng.below(2) == 0 => {
            let drop = rng.below(lines.len());
            let kept: Vec<&str> = (0..lines.len())
                .filter(|&i| i != drop)
                .map(|i| lines[i])
                .collect();
            kept.join("\n")
        }
        8 => {
            let copy = rng.below(lines.len());
            let mut out: Vec<&str> = lines.clone();
            out.insert(rng.below(lines.len() + 1), lines[copy]);
            out.join("\n")
        }
        _ => {
            let mut cut = rng.below(text.len() + 1);
            while !text.is_char_boundary(cut) {
                cut -= 1;
            }
            text[..cut].to_owned()
        }
    }
}

/// What validation made of a mutant.
enum Verdict {
    Syntax,
    Invalid,
    Valid(Box<Loaded>),
}

/// Parses and validates `text` as if it were `seed`'s file, with the checks every command
/// makes: the footprint `validate` prints and the sweep's points.
fn judge(seed: &Seed, text: &str) -> Verdict {
    let Ok(parsed) = scenario::parse(text) else {
        return Verdict::Syntax;
    };
    let loaded = Loaded {
        scenario: parsed,
        file: seed.file.clone(),
        base: seed.file.parent().unwrap().to_path_buf(),
    };
    if let Err(e) = loaded.validate() {
        assert!(!e.to_string().is_empty(), "an empty error");
        return Verdict::Invalid;
    }
    let _ = loaded.footprint();
    if flotilla::sweep::points(&loaded).is_err() {
        return Verdict::Invalid;
    }
    Verdict::Valid(Box::new(loaded))
}

#[test]
fn thousands_of_mutated_scenarios_validate_without_a_panic() {
    let seeds = seeds();
    let mut vocabulary: Vec<String> = seeds
        .iter()
        .flat_map(|s| {
            names(&s.text)
                .into_iter()
                .map(|n| s.text[n.0..n.1].to_owned())
        })
        .collect();
    vocabulary.sort();
    vocabulary.dedup();

    let mut rng = Rng(0x5eed_f1a7);
    let (mut syntax, mut invalid, mut valid) = (0, 0, Vec::new());
    let mut panics = Vec::new();
    for _ in 0..MUTANTS {
        let seed = rng.pick(&seeds);
        let mut text = seed.text.clone();
        for _ in 0..1 + rng.below(3) {
            text = mutate(&mut rng, &text, &vocabulary);
        }
        match catch_unwind(AssertUnwindSafe(|| judge(seed, &text))) {
            Ok(Verdict::Syntax) => syntax += 1,
            Ok(Verdict::Invalid) => invalid += 1,
            Ok(Verdict::Valid(loaded)) => {
                if text != seed.text {
                    valid.push((seed.file.clone(), text, loaded));
                }
            }
            Err(_) => panics.push((seed.file.display().to_string(), text)),
        }
    }
    eprintln!(
        "{MUTANTS} mutants: {syntax} syntax errors, {invalid} invalid, {} valid",
        valid.len()
    );
    if let Some((file, text)) = panics.first() {
        panic!(
            "{} mutants panicked; the first, of {file}:\n{text}",
            panics.len()
        );
    }
    // Every outcome is common enough that the mutations reach past the parser.
    assert!(syntax > MUTANTS / 20, "{syntax} syntax errors");
    assert!(invalid > MUTANTS / 20, "{invalid} invalid");
    assert!(valid.len() > MUTANTS / 20, "{} valid", valid.len());

    // A sample of the valid mutants, one round each, as `flotilla run` would do it.
    let runnable: Vec<_> = valid
        .iter()
        .filter(|(file, _, l)| {
            QUICK.iter().any(|q| file.ends_with(q)) && l.scenario.sweep.is_none()
        })
        .collect();
    let dir = tempfile::tempdir().unwrap();
    for k in 0..RUNS {
        let (file, text, _) = runnable[rng.below(runnable.len())];
        run_one_round(dir.path(), k, file, text);
    }
}

/// Runs `text` (a mutant of `file`) for one round in a child process, which must exit on
/// its own within the limit: 0, or 1 for a run that ends in error, or 2 for a scenario
/// refused; never a panic or a signal.
fn run_one_round(dir: &Path, k: usize, file: &Path, text: &str) {
    let mutant = dir.join(format!("mutant-{k}.ron"));
    std::fs::write(&mutant, absolute_paths(text, file.parent().unwrap())).unwrap();
    let mut child = Command::new(env!("CARGO_BIN_EXE_flotilla"))
        .args(["run", mutant.to_str().unwrap(), "--quiet", "--out"])
        .arg(dir.join(format!("run-{k}")))
        .args([
            "--set",
            "stop.rounds=1",
            "--set",
            "stop.virtual_time=\"1h\"",
        ])
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let start = Instant::now();
    let status = loop {
        if let Some(status) = child.try_wait().unwrap() {
            break status;
        }
        if start.elapsed() > RUN_LIMIT {
            child.kill().unwrap();
            panic!(
                "mutant {k} of {} ran past {RUN_LIMIT:?}:\n{text}",
                file.display()
            );
        }
        std::thread::sleep(Duration::from_millis(50));
    };
    let stderr = std::io::read_to_string(child.stderr.take().unwrap()).unwrap();
    eprintln!(
        "mutant {k} of {}: {status} after {:.1} s",
        file.display(),
        start.elapsed().as_secs_f64()
    );
    assert!(
        matches!(status.code(), Some(0..=2)) && !stderr.contains("panicked"),
        "mutant {k} of {} exited with {status}:\n{stderr}\n{text}",
        file.display()
    );
}

/// `text` with every string that names a file or folder next to the scenario made
/// absolute, so that the mutant runs from another folder.
fn absolute_paths(text: &str, base: &Path) -> String {
    let mut out = text.to_owned();
    for (start, end) in strings(text).into_iter().rev() {
        let literal = &text[start..end];
        if literal.contains('/') && base.join(literal).exists() {
            let absolute = base.join(literal).canonicalize().unwrap();
            out = splice(&out, (start, end), &absolute.display().to_string());
        }
    }
    out
}
