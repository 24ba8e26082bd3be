//! The field list shared by ErrorResponse and NoticeResponse, and message severities.

use bytes::{BufMut, BytesMut};

use crate::buf::{put_cstr, Reader};
use crate::WireError;

/// Severity of an error or notice.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Severity {
    /// The statement failed; the session continues.
    Error,
    /// The session ends.
    Fatal,
    /// Every session of the server ends.
    Panic,
    /// A notice: warning.
    Warning,
    /// A notice.
    Notice,
    /// A notice: debug output.
    Debug,
    /// A notice: information the client asked for.
    Info,
    /// A notice: log output.
    Log,
}

impl Severity {
    /// The non-localized name sent in the `'V'` field.
    pub fn as_str(self) -> &'static str {
        match self {
            Severity::Error => "ERROR",
            Severity::Fatal => "FATAL",
            Severity::Panic => "PANIC",
            Severity::Warning => "WARNING",
            Severity::Notice => "NOTICE",
            Severity::Debug => "DEBUG",
            Severity::Info => "INFO",
            Severity::Log => "LOG",
        }
    }

    /// Reads a non-localized severity name.
    pub fn from_name(name: &str) -> Option<Severity> {
        Some(match name {
            "ERROR" => Severity::Error,
            "FATAL" => Severity::Fatal,
            "PANIC" => Severity::Panic,
            "WARNING" => Severity::Warning,
            "NOTICE" => Severity::Notice,
            "DEBUG" => Severity::Debug,
            "INFO" => Severity::Info,
            "LOG" => Severity::Log,
            _ => return None,
        })
    }
}

/// The `(code, value)` pairs of an ErrorResponse or NoticeResponse, in wire order.
///
/// Values are decoded leniently (server text arrives in the session's `client_encoding`).
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Fields(Vec<(u8, String)>);

impl Fields {
    /// Localized severity (`ERROR`, `FEHLER`, …).
    pub const SEVERITY_LOCALIZED: u8 = b'S';
    /// Non-localized severity (PostgreSQL 9.6+).
    pub const SEVERITY: u8 = b'V';
    /// SQLSTATE code.
    pub const CODE: u8 = b'C';
    /// Primary message.
    pub const MESSAGE: u8 = b'M';
    /// Detail.
    pub const DETAIL: u8 = b'D';
    /// Hint.
    pub const HINT: u8 = b'H';
    /// Cursor position in the query string.
    pub const POSITION: u8 = b'P';

    /// An empty list.
    pub fn new() -> Self {
        Fields(Vec::new())
    }

    /// Appends a field. Code 0 is ignored: on the wire it ends the list.
    pub fn push(&mut self, code: u8, value: impl Into<String>) {
        if code != 0 {
            self.0.push((code, value.into()));
        }
    }

    /// The first value with `code`.
    pub fn get(&self, code: u8) -> Option<&str> {
        self.0
            .iter()
            .find(|(c, _)| *c == code)
            .map(|(_, v)| v.as_str())
    }

    /// All fields in order.
    pub fn iter(&self) -> impl Iterator<Item = (u8, &str)> + '_ {
        self.0.iter().map(|(c, v)| (*c, v.as_str()))
    }

    /// Number of fields.
    pub fn len(&self) -> usize {
        self.0.len()
    }

    /// True when there are no fields.
    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }

    /// The severity name: the non-localized `'V'` field, else the localized `'S'`.
    pub fn severity(&self) -> Option<&str> {
        self.get(Self::SEVERITY)
            .or_else(|| self.get(Self::SEVERITY_LOCALIZED))
    }

    /// The severity, when it is one of the known non-localized names.
    pub fn severity_level(&self) -> Option<Severity> {
        self.get(Self::SEVERITY)
            .and_then(Severity::from_name)
            .or_else(|| {
                self.get(Self::SEVERITY_LOCALIZED)
                    .and_then(Severity::from_name)
            })
    }

    /// The SQLSTATE (`'C'`).
    pub fn sqlstate(&self) -> Option<&str> {
        self.get(Self::CODE)
    }

    /// The SQLSTATE (`'C'`); same as [`Fields::sqlstate`].
    pub fn code(&self) -> Option<&str> {
        self.sqlstate()
    }

    /// The primary message (`'M'`).
    pub fn message(&self) -> Option<&str> {
        self.get(Self::MESSAGE)
    }

    /// The detail (`'D'`).
    pub fn detail(&self) -> Option<&str> {
        self.get(Self::DETAIL)
    }

    /// The hint (`'H'`).
    pub fn hint(&self) -> Option<&str> {
        self.get(Self::HINT)
    }

    /// Parses a field list body: fields, then a terminating zero byte, then nothing.
    pub(crate) fn parse(body: &[u8]) -> Result<Self, WireError> {
        let mut r = Reader::new(body);
        let mut fields = Vec::new();
        loop {
            let code = r.u8("field list is missing its terminator")?;
            if code == 0 {
                break;
            }
            fields.push((code, r.lossy("field value")?));
        }
        r.finish("bytes after the field list terminator")?;
        Ok(Fields(fields))
    }

    /// Size of the encoded body.
    pub(crate) fn encoded_len(&self) -> usize {
        self.0.iter().map(|(_, v)| v.len() + 2).sum::<usize>() + 1
    }

    /// Writes the list and its terminator.
    pub(crate) fn encode_into(&self, b: &mut BytesMut) {
        for (code, value) in &self.0 {
            b.put_u8(*code);
            put_cstr(b, value.as_bytes());
        }
        b.put_u8(0);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_and_reads_the_usual_fields() {
        let f =
            Fields::parse(b"SFEHLER\0VERROR\0C42501\0Mpermission denied\0Dno\0Htry\0\0").unwrap();
        assert_eq!(f.len(), 6);
        assert_eq!(f.severity(), Some("ERROR"));
        assert_eq!(f.severity_level(), Some(Severity::Error));
        assert_eq!(f.sqlstate(), Some("42501"));
        assert_eq!(f.message(), Some("permission denied"));
        assert_eq!(f.detail(), Some("no"));
        assert_eq!(f.hint(), Some("try"));
        let mut b = BytesMut::new();
        f.encode_into(&mut b);
        assert_eq!(b.len(), f.encoded_len());
        assert_eq!(Fields::parse(&b).unwrap(), f);
    }

    #[test]
    fn falls_back_to_the_localized_severity() {
        let f = Fields::parse(b"SFATAL\0\0").unwrap();
        assert_eq!(f.severity(), Some("FATAL"));
        assert_eq!(f.severity_level(), Some(Severity::Fatal));
        assert!(Fields::parse(b"\0").unwrap().is_empty());
    }

    #[test]
    fn rejects_malformed_lists() {
        for body in [&b""[..], b"Mx", b"Mx\0", b"Mx\0\0\0", b"M"] {
            assert!(
                matches!(Fields::parse(body), Err(WireError::Malformed { .. })),
                "{body:?}"
            );
        }
    }

    #[test]
    fn push_ignores_code_zero() {
        let mut f = Fields::new();
        f.push(0, "x");
        f.push(b'M', "y");
        assert_eq!(f.iter().collect::<Vec<_>>(), vec![(b'M', "y")]);
    }

    #[test]
    fn severity_names_round_trip() {
        for s in [
            Severity::Error,
            Severity::Fatal,
            Severity::Panic,
            Severity::Warning,
            Severity::Notice,
            Severity::Debug,
            Severity::Info,
            Severity::Log,
        ] {
            assert_eq!(Severity::from_name(s.as_str()), Some(s));
        }
        assert_eq!(Severity::from_name("FEHLER"), None);
    }
}
