//! The rows that grow with a run (`updates.csv`, `availability.csv`), written to their
//! files as they happen rather than held until the end.

use std::fs::File;
use std::io::BufWriter;
use std::path::Path;
use std::sync::{Arc, Mutex};

use flotilla_actors::RecordSink;
use flotilla_actors::record::{AvailabilityRecord, UpdateRecord};

/// A run directory's streamed CSV files, open for writing.
pub(crate) struct Streams {
    updates: csv::Writer<BufWriter<File>>,
    availability: csv::Writer<BufWriter<File>>,
    /// The first write that failed: the rest are skipped and it is reported at the end.
    failed: Option<csv::Error>,
}

impl Streams {
    /// Creates the streamed files in `dir`.
    pub(crate) fn create(dir: &Path) -> std::io::Result<Self> {
        let open = |name: &str| -> std::io::Result<_> {
            Ok(csv::Writer::from_writer(BufWriter::new(File::create(
                dir.join(name),
            )?)))
        };
        Ok(Self {
            updates: open("updates.csv")?,
            availability: open("availability.csv")?,
            failed: None,
        })
    }

    /// A sink that hands the run's rows to these files.
    pub(crate) fn sink(streams: &Arc<Mutex<Streams>>) -> Box<dyn RecordSink> {
        Box::new(StreamSink(streams.clone()))
    }

    /// Flushes the files; the first error of the whole run, if any.
    pub(crate) fn finish(&mut self) -> std::io::Result<()> {
        if let Some(e) = self.failed.take() {
            return Err(e.into());
        }
        self.updates.flush()?;
        self.availability.flush()
    }

    fn write(&mut self, row: Row<'_>) {
        if self.failed.is_some() {
            return;
        }
        let written = match row {
            Row::Update(r) => self.updates.serialize(r),
            Row::Availability(r) => self.availability.serialize(r),
        };
        self.failed = written.err();
    }
}

enum Row<'a> {
    Update(&'a UpdateRecord),
    Availability(&'a AvailabilityRecord),
}

/// The engine's side of [`Streams`].
struct StreamSink(Arc<Mutex<Streams>>);

impl RecordSink for StreamSink {
    fn update(&mut self, row: &UpdateRecord) {
        self.0.lock().expect("streams lock").write(Row::Update(row));
    }

    fn availability(&mut self, row: &AvailabilityRecord) {
        self.0
            .lock()
            .expect("streams lock")
            .write(Row::Availability(row));
    }
}
