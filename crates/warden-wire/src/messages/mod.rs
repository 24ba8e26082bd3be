//! The protocol messages Warden inspects or originates, one type per file.
//!
//! Every tagged message implements [`Message`]: [`Message::from_frame`] checks the tag and
//! validates the whole body once; [`Message::encode`] produces the complete wire form.
//! Messages that are usually forwarded after inspection (Query, Parse, Bind, RowDescription,
//! DataRow) keep their [`Frame`] and hand it back untouched; the rest are small owned structs.

use bytes::Bytes;

use crate::{Frame, WireError};

pub mod backend;
mod copy_data;
mod copy_done;
mod copy_fail;
pub mod frontend;

pub use copy_data::CopyData;
pub use copy_done::CopyDone;
pub use copy_fail::CopyFail;

/// Which end of a connection sends a message.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Side {
    /// The client (an agent, psql, a driver), or Warden towards the target.
    Frontend,
    /// The server (the target), or Warden towards the client.
    Backend,
}

impl Side {
    /// The message name for `tag` as sent by this side, for logs and recordings.
    pub fn message_name(self, tag: u8) -> &'static str {
        match self {
            Side::Frontend => crate::tags::frontend::name(tag),
            Side::Backend => crate::tags::backend::name(tag),
        }
    }
}

/// A tagged protocol message with a validated parse and an encoder.
pub trait Message: Sized {
    /// The tag byte.
    const TAG: u8;
    /// The protocol's name for the message, used in errors.
    const NAME: &'static str;
    /// Which sides send it (CopyData and CopyDone travel both ways).
    const SENT_BY: &'static [Side];

    /// Parses `frame`'s body, whose tag the caller has checked; prefer [`Message::from_frame`].
    fn parse(frame: &Frame) -> Result<Self, WireError>;

    /// The complete message on the wire: tag, length and body.
    fn encode(&self) -> Bytes;

    /// Parses `frame` after checking its tag is [`Message::TAG`].
    fn from_frame(frame: &Frame) -> Result<Self, WireError> {
        if frame.tag() != Self::TAG {
            return Err(WireError::UnexpectedMessage {
                expected: Self::NAME,
                got: frame.tag(),
            });
        }
        Self::parse(frame)
    }

    /// The encoded message as a [`Frame`].
    fn to_frame(&self) -> Frame {
        Frame::from_encoded(Self::TAG, self.encode())
    }
}

/// What a Describe or Close refers to.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum ObjectKind {
    /// A prepared statement (`'S'`).
    Statement,
    /// A portal (`'P'`).
    Portal,
}

impl ObjectKind {
    /// The wire byte.
    pub fn as_byte(self) -> u8 {
        match self {
            ObjectKind::Statement => b'S',
            ObjectKind::Portal => b'P',
        }
    }

    pub(crate) fn from_byte(b: u8) -> Result<Self, WireError> {
        match b {
            b'S' => Ok(ObjectKind::Statement),
            b'P' => Ok(ObjectKind::Portal),
            _ => Err(WireError::malformed("object kind is neither 'S' nor 'P'")),
        }
    }
}

/// Format code for text values.
pub const FORMAT_TEXT: i16 = 0;
/// Format code for binary values.
pub const FORMAT_BINARY: i16 = 1;

/// Defines a message whose body is always empty, with its parse, encoder and tests.
macro_rules! empty_message {
    ($(#[$doc:meta])* $name:ident, $tag:expr, $sent_by:expr) => {
        $(#[$doc])*
        #[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
        pub struct $name;

        impl $crate::messages::Message for $name {
            const TAG: u8 = $tag;
            const NAME: &'static str = stringify!($name);
            const SENT_BY: &'static [$crate::messages::Side] = $sent_by;

            fn parse(frame: &$crate::Frame) -> Result<Self, $crate::WireError> {
                if frame.body().is_empty() {
                    Ok($name)
                } else {
                    Err($crate::WireError::Malformed {
                        what: concat!(stringify!($name), " must have an empty body"),
                    })
                }
            }

            fn encode(&self) -> bytes::Bytes {
                bytes::Bytes::from_static(&[$tag, 0, 0, 0, 4])
            }
        }

        #[cfg(test)]
        mod tests {
            use super::*;
            use $crate::messages::Message;
            use $crate::Frame;

            #[test]
            fn round_trips_and_rejects_a_body() {
                let raw = $name.encode();
                assert_eq!(&raw[..], &[$tag, 0, 0, 0, 4]);
                let frame = Frame::from_raw(raw, 4).unwrap();
                assert_eq!($name::from_frame(&frame).unwrap(), $name);
                assert!(matches!(
                    $name::from_frame(&Frame::new($tag, b"\0")),
                    Err($crate::WireError::Malformed { .. })
                ));
                assert!(matches!(
                    $name::from_frame(&Frame::new($tag.wrapping_add(1), b"")),
                    Err($crate::WireError::UnexpectedMessage { got, .. }) if got == $tag.wrapping_add(1)
                ));
            }

            #[test]
            fn random_bodies_never_panic() {
                assert!($crate::testutil::check_parser::<$name>(&[&b""[..]], true) > 0);
            }
        }
    };
}
pub(crate) use empty_message;
