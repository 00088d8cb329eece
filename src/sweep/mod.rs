//! Sweeps: a scenario's `sweep` section expanded into points, each run to its own
//! directory, then `sweep.csv` (one row per point) and a comparison report.
//!
//! - `grid`: the axes expanded into validated points;
//! - `runner`: running them, several at once;
//! - `table`: `sweep.csv`, written and read back;
//! - `report`: the markdown table and the plots.
//!
//! A field is named by its path in the scenario (see [`crate::scenario::set_field`]).

mod grid;
mod report;
mod runner;
mod table;

pub(crate) use grid::axis_names;
pub use grid::{AxisError, Point, points};
pub use report::write_sweep_report;
pub use runner::{SweepError, SweepOptions, run_sweep};
pub use table::{SweepData, SweepReadError, SweepRow};
