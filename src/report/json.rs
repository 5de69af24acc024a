//! The JSON report: the whole [`Report`](super::Report) document, pretty
//! printed, `schemaVersion` first (see the module docs of `report` and the
//! README section "Reports" for every field).

use std::io::Write;

use super::model::Report;
use crate::error::{Error, Result};

/// Writes the report as pretty-printed JSON with a final newline.
pub fn write(r: &Report, mut w: impl Write) -> Result<()> {
    let io = |e: std::io::Error| Error::io("writing the JSON report", e);
    serde_json::to_writer_pretty(&mut w, r)
        .map_err(|e| Error::io("writing the JSON report", std::io::Error::other(e)))?;
    w.write_all(b"\n").map_err(io)?;
    w.flush().map_err(io)
}
