//! Small I/O helpers for the startup phase (the proxy loop has its own, batched, path).

use bytes::BytesMut;
use tokio::io::{AsyncRead, AsyncReadExt};
use warden_wire::{scan_frame, Frame, WireError};

/// Errors while reading one message.
#[derive(Debug, thiserror::Error)]
pub enum ReadError {
    /// The peer closed the connection.
    #[error("connection closed")]
    Eof,
    /// The socket failed.
    #[error("{0}")]
    Io(#[from] std::io::Error),
    /// The bytes were not a valid message.
    #[error("{0}")]
    Wire(#[from] WireError),
}

/// Reads exactly one tagged message, keeping any further bytes in `buf`.
pub async fn read_frame<S: AsyncRead + Unpin>(
    stream: &mut S,
    buf: &mut BytesMut,
    max_len: usize,
) -> Result<Frame, ReadError> {
    loop {
        if let Some((_, len)) = scan_frame(buf, max_len)? {
            let raw = buf.split_to(len).freeze();
            return Ok(Frame::from_raw(raw, max_len)?);
        }
        buf.reserve(8192);
        if stream.read_buf(buf).await? == 0 {
            return Err(ReadError::Eof);
        }
    }
}
