//! Errors written with their causes: every error type keeps what caused it as its
//! `source()`, so its own message never repeats it; [`Chain`] writes the whole story.

use std::error::Error;
use std::fmt;

/// An error and every cause behind it, written `what: why: why`.
///
/// ```
/// use flotilla::Chain;
/// let io = std::io::Error::new(std::io::ErrorKind::NotFound, "no such file");
/// #[derive(Debug, thiserror::Error)]
/// #[error("cannot read the scenario")]
/// struct Unreadable(#[source] std::io::Error);
/// assert_eq!(
///     Chain(&Unreadable(io)).to_string(),
///     "cannot read the scenario: no such file"
/// );
/// ```
pub struct Chain<'a>(pub &'a (dyn Error + 'static));

impl fmt::Display for Chain<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", self.0)?;
        let mut cause = self.0.source();
        while let Some(e) = cause {
            write!(f, ": {e}")?;
            cause = e.source();
        }
        Ok(())
    }
}

impl fmt::Debug for Chain<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Display::fmt(self, f)
    }
}
