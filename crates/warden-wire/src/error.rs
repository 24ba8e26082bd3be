//! The one error type of the wire layer. Messages name the offending part of the protocol,
//! never its content, so an error can be logged without leaking a password or a token.

use std::fmt;

/// Why bytes could not be framed, parsed or encoded as PostgreSQL protocol messages.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum WireError {
    /// A length field is below the minimum (4 for tagged messages, 8 for startup packets).
    #[error("{} declares length {len}, below the minimum of {min}", TagName(*tag))]
    LengthTooSmall {
        /// Message tag, or 0 for a startup packet.
        tag: u8,
        /// The declared length.
        len: u32,
        /// The smallest legal length.
        min: u32,
    },
    /// A length field exceeds the configured maximum; nothing was allocated for it.
    #[error("{} declares length {len}, above the limit of {max}", TagName(*tag))]
    TooLarge {
        /// Message tag, or 0 for a startup packet.
        tag: u8,
        /// The declared length.
        len: usize,
        /// The configured maximum.
        max: usize,
    },
    /// The message body does not follow the message's layout.
    #[error("malformed message: {what}")]
    Malformed {
        /// Which part was wrong.
        what: &'static str,
    },
    /// A text field that Warden must inspect is not valid UTF-8.
    #[error("{what} is not valid UTF-8")]
    InvalidUtf8 {
        /// Which field.
        what: &'static str,
    },
    /// A message arrived where another one was required.
    #[error("expected {expected}, got {}", TagName(*got))]
    UnexpectedMessage {
        /// The message that was expected.
        expected: &'static str,
        /// The tag that arrived.
        got: u8,
    },
    /// A startup packet asked for a protocol version other than 3.x.
    #[error("unsupported frontend protocol {}.{}", .0 >> 16, .0 & 0xffff)]
    UnsupportedProtocol(u32),
    /// An authentication request Warden does not implement (Kerberos, GSSAPI, SSPI, …).
    #[error("unsupported authentication request (code {0})")]
    UnsupportedAuthentication(i32),
    /// A value cannot be encoded because a count exceeds what its field can carry.
    #[error("too many {what}: {count}, at most {max}")]
    TooMany {
        /// What was counted.
        what: &'static str,
        /// How many were given.
        count: usize,
        /// The most the field can carry.
        max: usize,
    },
    /// A string to be encoded contains a NUL byte, which would end it early on the wire.
    #[error("{what} contains a NUL byte")]
    ContainsNul {
        /// Which field.
        what: &'static str,
    },
    /// The underlying transport failed (required by `tokio_util::codec`).
    #[error("i/o error: {0}")]
    Io(#[from] std::io::Error),
}

impl WireError {
    pub(crate) fn malformed(what: &'static str) -> Self {
        WireError::Malformed { what }
    }
}

/// Renders a tag for error messages: `message 'Q'`, `message 0x01`, or `startup packet`.
struct TagName(u8);

impl fmt::Display for TagName {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.0 {
            0 => f.write_str("startup packet"),
            t if t.is_ascii_graphic() => write!(f, "message '{}'", char::from(t)),
            t => write!(f, "message 0x{t:02x}"),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn messages_name_the_tag_readably() {
        let e = WireError::LengthTooSmall {
            tag: b'Q',
            len: 3,
            min: 4,
        };
        assert_eq!(
            e.to_string(),
            "message 'Q' declares length 3, below the minimum of 4"
        );
        let e = WireError::TooLarge {
            tag: 0,
            len: 20_000,
            max: 10_000,
        };
        assert_eq!(
            e.to_string(),
            "startup packet declares length 20000, above the limit of 10000"
        );
        let e = WireError::UnexpectedMessage {
            expected: "Query",
            got: 0x01,
        };
        assert_eq!(e.to_string(), "expected Query, got message 0x01");
        assert_eq!(
            WireError::UnsupportedProtocol(2 << 16).to_string(),
            "unsupported frontend protocol 2.0"
        );
    }
}
