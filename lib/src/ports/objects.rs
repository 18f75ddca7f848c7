//! The object storage port: where `delivery=url` exports are written and how a caller gets a
//! time-limited link to them. S3 on AWS (multipart upload, presigned GET); files under the data
//! directory on one machine, served by `klozeo serve` behind a signed, expiring link.

use async_trait::async_trait;
use bytes::Bytes;

use crate::error::{Error, Result};

/// An object being written, part by part.
#[async_trait]
pub trait Upload: Send {
    /// Appends bytes to the object.
    async fn write(&mut self, chunk: Bytes) -> Result<()>;
    /// Completes the object; it becomes readable.
    async fn finish(self: Box<Self>) -> Result<()>;
    /// Gives up; nothing readable is left behind.
    async fn abort(self: Box<Self>);
}

/// A stored object opened for reading through a signed link.
pub struct Download {
    /// The object's bytes, chunk by chunk.
    pub body: std::pin::Pin<Box<dyn futures_util::Stream<Item = Result<Bytes>> + Send>>,
    /// Its size in bytes.
    pub len: u64,
}

/// Object storage for export files.
#[async_trait]
pub trait ObjectStore: Send + Sync {
    /// Starts writing the object `key`.
    async fn upload(&self, key: &str, content_type: &str) -> Result<Box<dyn Upload>>;
    /// A link that reads `key` without credentials until `expires_at` (Unix seconds) and not
    /// after. `file_name` is what the browser saves it as. A link that starts with `/` is
    /// relative to the server that answered the request (the local adapter).
    async fn link(&self, key: &str, file_name: &str, now: i64, expires_at: i64) -> Result<String>;
    /// Opens `key` for a request carrying a link's `expires` and `sig`, checked against `now`.
    /// Only stores whose links this process serves implement it.
    async fn open_signed(&self, key: &str, expires: i64, sig: &str, now: i64) -> Result<Download> {
        let _ = (key, expires, sig, now);
        Err(Error::NotFound("No such download".into()))
    }
    /// Where `key` lies on this machine's disk, for stores that keep files locally: a caller
    /// with no server to serve the link (MCP over stdio) can hand out the file itself.
    fn local_path(&self, key: &str) -> Option<std::path::PathBuf> {
        let _ = key;
        None
    }
}
