//! Object storage on S3: export files are written by multipart upload (parts of 8 MiB, so at
//! most one part is held in memory), and links are presigned GETs that carry the file name
//! as `response-content-disposition`. The bucket's lifecycle rule (template.yaml) deletes the
//! files a day later.

use std::time::Duration;

use async_trait::async_trait;
use aws_sdk_s3::presigning::PresigningConfig;
use aws_sdk_s3::primitives::ByteStream;
use aws_sdk_s3::types::{CompletedMultipartUpload, CompletedPart};
use bytes::Bytes;

use crate::error::{Error, Result};
use crate::ports::{ObjectStore, Upload};

/// Size of each uploaded part (S3's minimum for all parts but the last is 5 MiB).
const PART_BYTES: usize = 8 * 1024 * 1024;

fn s3_err(what: &str, e: impl std::fmt::Debug) -> Error {
    Error::Unavailable(format!("S3 {what} failed: {e:?}"))
}

/// Export files in one S3 bucket.
pub struct S3Objects {
    client: aws_sdk_s3::Client,
    bucket: String,
}

impl S3Objects {
    /// Files in `bucket` through `client`.
    pub fn new(client: aws_sdk_s3::Client, bucket: impl Into<String>) -> Self {
        S3Objects {
            client,
            bucket: bucket.into(),
        }
    }

    /// Creates the bucket if it does not exist (emulators and tests; on AWS the stack does).
    pub async fn ensure_bucket(&self) -> Result<()> {
        match self
            .client
            .create_bucket()
            .bucket(&self.bucket)
            .send()
            .await
        {
            Ok(_) => Ok(()),
            Err(e) => {
                let text = format!("{e:?}");
                if text.contains("BucketAlreadyOwnedByYou") || text.contains("BucketAlreadyExists")
                {
                    Ok(())
                } else {
                    Err(s3_err("CreateBucket", e))
                }
            }
        }
    }
}

struct S3Upload {
    client: aws_sdk_s3::Client,
    bucket: String,
    key: String,
    upload_id: String,
    parts: Vec<CompletedPart>,
    buf: Vec<u8>,
}

impl S3Upload {
    async fn flush_part(&mut self) -> Result<()> {
        let n = self.parts.len() as i32 + 1;
        let body = std::mem::take(&mut self.buf);
        let out = self
            .client
            .upload_part()
            .bucket(&self.bucket)
            .key(&self.key)
            .upload_id(&self.upload_id)
            .part_number(n)
            .body(ByteStream::from(body))
            .send()
            .await
            .map_err(|e| s3_err("UploadPart", e))?;
        self.parts.push(
            CompletedPart::builder()
                .part_number(n)
                .set_e_tag(out.e_tag().map(String::from))
                .build(),
        );
        Ok(())
    }
}

#[async_trait]
impl Upload for S3Upload {
    async fn write(&mut self, chunk: Bytes) -> Result<()> {
        self.buf.extend_from_slice(&chunk);
        if self.buf.len() >= PART_BYTES {
            self.flush_part().await?;
        }
        Ok(())
    }

    async fn finish(mut self: Box<Self>) -> Result<()> {
        // The last part may be smaller than the minimum (and is the only one of a small file).
        if !self.buf.is_empty() || self.parts.is_empty() {
            self.flush_part().await?;
        }
        self.client
            .complete_multipart_upload()
            .bucket(&self.bucket)
            .key(&self.key)
            .upload_id(&self.upload_id)
            .multipart_upload(
                CompletedMultipartUpload::builder()
                    .set_parts(Some(std::mem::take(&mut self.parts)))
                    .build(),
            )
            .send()
            .await
            .map_err(|e| s3_err("CompleteMultipartUpload", e))?;
        Ok(())
    }

    async fn abort(self: Box<Self>) {
        let r = self
            .client
            .abort_multipart_upload()
            .bucket(&self.bucket)
            .key(&self.key)
            .upload_id(&self.upload_id)
            .send()
            .await;
        if let Err(e) = r {
            tracing::warn!(key = %self.key, error = ?e, "could not abort a multipart upload");
        }
    }
}

#[async_trait]
impl ObjectStore for S3Objects {
    async fn upload(&self, key: &str, content_type: &str) -> Result<Box<dyn Upload>> {
        let out = self
            .client
            .create_multipart_upload()
            .bucket(&self.bucket)
            .key(key)
            .content_type(content_type)
            .send()
            .await
            .map_err(|e| s3_err("CreateMultipartUpload", e))?;
        let upload_id = out
            .upload_id()
            .ok_or_else(|| Error::internal("S3 returned no upload id"))?
            .to_string();
        Ok(Box::new(S3Upload {
            client: self.client.clone(),
            bucket: self.bucket.clone(),
            key: key.to_string(),
            upload_id,
            parts: Vec::new(),
            buf: Vec::with_capacity(PART_BYTES),
        }))
    }

    async fn link(&self, key: &str, file_name: &str, now: i64, expires_at: i64) -> Result<String> {
        let ttl = Duration::from_secs((expires_at - now).max(1) as u64);
        let cfg = PresigningConfig::expires_in(ttl).map_err(Error::internal)?;
        let req = self
            .client
            .get_object()
            .bucket(&self.bucket)
            .key(key)
            .response_content_disposition(format!("attachment; filename=\"{file_name}\""))
            .presigned(cfg)
            .await
            .map_err(|e| s3_err("presigning GetObject", e))?;
        Ok(req.uri().to_string())
    }
}
