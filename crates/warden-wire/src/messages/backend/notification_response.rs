//! NotificationResponse: a NOTIFY delivered to a session that LISTENs on the channel.

use bytes::{BufMut, Bytes};

use crate::buf::{frame_bytes, put_cstr, Reader};
use crate::messages::{Message, Side};
use crate::{tags, Frame, WireError};

/// A notification on `channel` with `payload`, raised by backend `process_id`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct NotificationResponse {
    /// The notifying backend's process id.
    pub process_id: i32,
    /// The channel name.
    pub channel: String,
    /// The payload (empty when none was given).
    pub payload: String,
}

impl Message for NotificationResponse {
    const TAG: u8 = tags::backend::NOTIFICATION_RESPONSE;
    const NAME: &'static str = "NotificationResponse";
    const SENT_BY: &'static [Side] = &[Side::Backend];

    fn parse(frame: &Frame) -> Result<Self, WireError> {
        let mut r = Reader::new(frame.body());
        let process_id = r.i32("notifying process id")?;
        let channel = r.lossy("notification channel")?;
        let payload = r.lossy("notification payload")?;
        r.finish("bytes after the notification payload")?;
        Ok(NotificationResponse {
            process_id,
            channel,
            payload,
        })
    }

    fn encode(&self) -> Bytes {
        frame_bytes(
            Self::TAG,
            6 + self.channel.len() + self.payload.len(),
            |b| {
                b.put_i32(self.process_id);
                put_cstr(b, self.channel.as_bytes());
                put_cstr(b, self.payload.as_bytes());
            },
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::testutil::check_parser;
    use postgres_protocol::message::backend::Message as PgMessage;

    #[test]
    fn round_trips_and_postgres_protocol_agrees() {
        let n = NotificationResponse {
            process_id: 77,
            channel: "warden_reviews".into(),
            payload: "{\"id\":1}".into(),
        };
        assert_eq!(NotificationResponse::from_frame(&n.to_frame()).unwrap(), n);
        let mut buf = bytes::BytesMut::from(&n.encode()[..]);
        let Some(PgMessage::NotificationResponse(m)) = PgMessage::parse(&mut buf).unwrap() else {
            panic!("not NotificationResponse");
        };
        assert_eq!(m.process_id(), 77);
        assert_eq!(m.channel().unwrap(), "warden_reviews");
        assert_eq!(m.message().unwrap(), "{\"id\":1}");
    }

    #[test]
    fn rejects_malformed_bodies() {
        for body in [
            &b""[..],
            b"\0\0\0",
            b"\0\0\0\x01",
            b"\0\0\0\x01ch\0",
            b"\0\0\0\x01ch\0p\0x",
        ] {
            assert!(
                matches!(
                    NotificationResponse::from_frame(&Frame::new(b'A', body)),
                    Err(WireError::Malformed { .. })
                ),
                "{body:?}"
            );
        }
    }

    #[test]
    fn random_bodies_never_panic() {
        assert!(check_parser::<NotificationResponse>(&[b"\0\0\0\x01ch\0payload\0"], false) > 50);
    }
}
