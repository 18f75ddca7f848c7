//! Notes attached to a lead.

use serde::{Deserialize, Serialize};

use crate::error::{Error, Result};

/// Largest note, in bytes.
pub const MAX_NOTE_BYTES: usize = 64 * 1024;

/// A note, exactly as the API returns it (wire-contract §4.5).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, schemars::JsonSchema)]
pub struct Note {
    /// `note_<uuidv7>`.
    pub id: String,
    /// The lead it belongs to.
    pub lead_id: String,
    /// The text.
    pub content: String,
    /// Unix seconds.
    pub created_at: i64,
    /// Unix seconds of the last edit.
    pub updated_at: i64,
}

/// Checks note content: required, not blank, at most [`MAX_NOTE_BYTES`].
pub fn validate_content(content: &str) -> Result<String> {
    if content.trim().is_empty() {
        return Err(Error::invalid("content is required and cannot be blank"));
    }
    if content.len() > MAX_NOTE_BYTES {
        return Err(Error::invalid(format!(
            "content: longer than {MAX_NOTE_BYTES} bytes"
        )));
    }
    Ok(content.to_string())
}
