//! Object storage in a directory on this machine (`klozeo serve`): export files are written
//! under `<data dir>/exports`, and a link is `/downloads/<key>?expires=<unix s>&sig=<hex>`, an
//! HMAC-SHA256 over the key and the expiry with the process's signing secret. The server
//! answers it without an API key until it expires; a changed key, expiry or signature is
//! refused.

use std::path::{Path, PathBuf};

use async_trait::async_trait;
use bytes::Bytes;
use hmac::{Hmac, Mac};
use sha2::Sha256;
use tokio::io::{AsyncReadExt, AsyncWriteExt};

use crate::error::{Error, Result};
use crate::ports::{Download, ObjectStore, Upload};

/// Path prefix of the download route that serves the links.
pub const DOWNLOAD_PREFIX: &str = "/downloads/";

/// How long a written file is kept past its link's expiry before a later export sweeps it.
const KEEP_AFTER_EXPIRY_SECS: u64 = 3600;

/// Export files in a local directory, behind signed links.
pub struct LocalFiles {
    root: PathBuf,
    secret: Vec<u8>,
    keep_secs: u64,
}

impl LocalFiles {
    /// Files under `root`, links signed with `secret`; files older than `ttl_secs` plus an
    /// hour are removed by later uploads.
    pub fn new(root: impl Into<PathBuf>, secret: &[u8], ttl_secs: u64) -> Self {
        LocalFiles {
            root: root.into(),
            secret: [b"klozeo-download\n".as_slice(), secret].concat(),
            keep_secs: ttl_secs + KEEP_AFTER_EXPIRY_SECS,
        }
    }

    fn sign(&self, key: &str, expires: i64) -> String {
        #[allow(clippy::expect_used)]
        let mut mac = Hmac::<Sha256>::new_from_slice(&self.secret).expect("HMAC takes any key");
        mac.update(key.as_bytes());
        mac.update(b"\n");
        mac.update(expires.to_string().as_bytes());
        hex::encode(mac.finalize().into_bytes())
    }

    /// The file of `key`; keys are made of safe segments only, so none escapes the root.
    fn path_of(&self, key: &str) -> Result<PathBuf> {
        let ok = !key.is_empty()
            && key.split('/').all(|seg| {
                !seg.is_empty()
                    && seg != "."
                    && seg != ".."
                    && seg
                        .bytes()
                        .all(|b| b.is_ascii_alphanumeric() || b"-_.".contains(&b))
            });
        if !ok {
            return Err(Error::NotFound("No such download".into()));
        }
        Ok(self.root.join(key))
    }

    fn sweep(root: &Path, keep_secs: u64) {
        let Some(cutoff) =
            std::time::SystemTime::now().checked_sub(std::time::Duration::from_secs(keep_secs))
        else {
            return;
        };
        let mut stack = vec![root.join("exports")];
        while let Some(dir) = stack.pop() {
            let Ok(entries) = std::fs::read_dir(&dir) else {
                continue;
            };
            for e in entries.flatten() {
                let p = e.path();
                match e.metadata() {
                    Ok(m) if m.is_dir() => stack.push(p),
                    Ok(m) if m.modified().is_ok_and(|t| t < cutoff) => {
                        let _ = std::fs::remove_file(&p);
                        if let Some(parent) = p.parent() {
                            let _ = std::fs::remove_dir(parent);
                        }
                    }
                    _ => {}
                }
            }
        }
    }
}

struct FileUpload {
    tmp: PathBuf,
    dest: PathBuf,
    file: tokio::fs::File,
}

#[async_trait]
impl Upload for FileUpload {
    async fn write(&mut self, chunk: Bytes) -> Result<()> {
        self.file.write_all(&chunk).await.map_err(Error::internal)
    }

    async fn finish(mut self: Box<Self>) -> Result<()> {
        self.file.flush().await.map_err(Error::internal)?;
        self.file.sync_all().await.map_err(Error::internal)?;
        tokio::fs::rename(&self.tmp, &self.dest)
            .await
            .map_err(Error::internal)
    }

    async fn abort(self: Box<Self>) {
        drop(self.file);
        let _ = tokio::fs::remove_file(&self.tmp).await;
    }
}

#[async_trait]
impl ObjectStore for LocalFiles {
    async fn upload(&self, key: &str, _content_type: &str) -> Result<Box<dyn Upload>> {
        let dest = self.path_of(key)?;
        let (root, keep) = (self.root.clone(), self.keep_secs);
        let _ = tokio::task::spawn_blocking(move || LocalFiles::sweep(&root, keep)).await;
        if let Some(dir) = dest.parent() {
            tokio::fs::create_dir_all(dir)
                .await
                .map_err(|e| Error::internal(format!("cannot create {}: {e}", dir.display())))?;
        }
        let tmp = dest.with_extension("part");
        let file = tokio::fs::File::create(&tmp)
            .await
            .map_err(|e| Error::internal(format!("cannot create {}: {e}", tmp.display())))?;
        Ok(Box::new(FileUpload { tmp, dest, file }))
    }

    async fn link(
        &self,
        key: &str,
        _file_name: &str,
        _now: i64,
        expires_at: i64,
    ) -> Result<String> {
        Ok(format!(
            "{DOWNLOAD_PREFIX}{key}?expires={expires_at}&sig={}",
            self.sign(key, expires_at)
        ))
    }

    fn local_path(&self, key: &str) -> Option<PathBuf> {
        self.path_of(key).ok()
    }

    async fn open_signed(&self, key: &str, expires: i64, sig: &str, now: i64) -> Result<Download> {
        let expected = self.sign(key, expires);
        // Compared in constant time, so the signature cannot be guessed byte by byte.
        let same = expected.len() == sig.len()
            && expected
                .bytes()
                .zip(sig.bytes())
                .fold(0u8, |acc, (a, b)| acc | (a ^ b))
                == 0;
        if !same {
            return Err(Error::Unauthenticated(
                "This download link is not valid".into(),
            ));
        }
        if now > expires {
            return Err(Error::Unauthenticated(
                "This download link has expired; export again for a new one".into(),
            ));
        }
        let path = self.path_of(key)?;
        let file = tokio::fs::File::open(&path)
            .await
            .map_err(|_| Error::NotFound("No such download".into()))?;
        let len = file.metadata().await.map_err(Error::internal)?.len();
        let body = futures_util::stream::unfold(Some(file), |state| async move {
            let mut file = state?;
            let mut buf = vec![0u8; 256 * 1024];
            match file.read(&mut buf).await {
                Ok(0) => None,
                Ok(n) => {
                    buf.truncate(n);
                    Some((Ok(Bytes::from(buf)), Some(file)))
                }
                Err(e) => Some((Err(Error::internal(e)), None)),
            }
        });
        Ok(Download {
            body: Box::pin(body),
            len,
        })
    }
}
