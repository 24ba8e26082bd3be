//! Message tag bytes. The same byte means different messages depending on the sender
//! (`'D'` is Describe from a client and DataRow from a server), hence two modules.

/// Tags of messages sent by the client.
pub mod frontend {
    /// Bind a prepared statement to parameters, creating a portal.
    pub const BIND: u8 = b'B';
    /// Close a statement or portal.
    pub const CLOSE: u8 = b'C';
    /// COPY payload (client to server during COPY FROM STDIN).
    pub const COPY_DATA: u8 = b'd';
    /// End of COPY payload.
    pub const COPY_DONE: u8 = b'c';
    /// Abort COPY FROM STDIN.
    pub const COPY_FAIL: u8 = b'f';
    /// Describe a statement or portal.
    pub const DESCRIBE: u8 = b'D';
    /// Run a portal.
    pub const EXECUTE: u8 = b'E';
    /// Ask the server to flush pending output.
    pub const FLUSH: u8 = b'H';
    /// Fast-path function call. It names a function by OID and carries no SQL, so it cannot
    /// be inspected: the session engine should refuse it.
    pub const FUNCTION_CALL: u8 = b'F';
    /// Prepare a statement (extended query protocol).
    pub const PARSE: u8 = b'P';
    /// PasswordMessage, SASLInitialResponse, SASLResponse and GSSResponse all use `'p'`;
    /// the authentication exchange in progress says which one it is.
    pub const PASSWORD: u8 = b'p';
    /// Simple query.
    pub const QUERY: u8 = b'Q';
    /// End of an extended-query batch.
    pub const SYNC: u8 = b'S';
    /// Orderly disconnect.
    pub const TERMINATE: u8 = b'X';

    /// The protocol's name for a frontend tag (`"Unknown"` otherwise).
    pub fn name(tag: u8) -> &'static str {
        match tag {
            BIND => "Bind",
            CLOSE => "Close",
            COPY_DATA => "CopyData",
            COPY_DONE => "CopyDone",
            COPY_FAIL => "CopyFail",
            DESCRIBE => "Describe",
            EXECUTE => "Execute",
            FLUSH => "Flush",
            FUNCTION_CALL => "FunctionCall",
            PARSE => "Parse",
            PASSWORD => "PasswordMessage",
            QUERY => "Query",
            SYNC => "Sync",
            TERMINATE => "Terminate",
            _ => "Unknown",
        }
    }
}

/// Tags of messages sent by the server.
pub mod backend {
    /// Authentication request or result (AuthenticationOk, …SASL, …).
    pub const AUTHENTICATION: u8 = b'R';
    /// Cancel key for this session.
    pub const BACKEND_KEY_DATA: u8 = b'K';
    /// Bind succeeded.
    pub const BIND_COMPLETE: u8 = b'2';
    /// Close succeeded.
    pub const CLOSE_COMPLETE: u8 = b'3';
    /// A statement finished; carries the command tag.
    pub const COMMAND_COMPLETE: u8 = b'C';
    /// COPY payload (server to client during COPY TO STDOUT).
    pub const COPY_DATA: u8 = b'd';
    /// End of COPY payload.
    pub const COPY_DONE: u8 = b'c';
    /// COPY FROM STDIN started.
    pub const COPY_IN_RESPONSE: u8 = b'G';
    /// COPY TO STDOUT started.
    pub const COPY_OUT_RESPONSE: u8 = b'H';
    /// Streaming replication COPY started.
    pub const COPY_BOTH_RESPONSE: u8 = b'W';
    /// One result row.
    pub const DATA_ROW: u8 = b'D';
    /// The query string was empty.
    pub const EMPTY_QUERY_RESPONSE: u8 = b'I';
    /// An error.
    pub const ERROR_RESPONSE: u8 = b'E';
    /// Result of a fast-path function call.
    pub const FUNCTION_CALL_RESPONSE: u8 = b'V';
    /// The server does not support the requested minor version or protocol options.
    pub const NEGOTIATE_PROTOCOL_VERSION: u8 = b'v';
    /// The statement returns no rows (answer to Describe).
    pub const NO_DATA: u8 = b'n';
    /// A notice or warning.
    pub const NOTICE_RESPONSE: u8 = b'N';
    /// A NOTIFY delivered to a listening session.
    pub const NOTIFICATION_RESPONSE: u8 = b'A';
    /// Parameter types of a prepared statement.
    pub const PARAMETER_DESCRIPTION: u8 = b't';
    /// A run-time parameter's value (server_version, TimeZone, …).
    pub const PARAMETER_STATUS: u8 = b'S';
    /// Parse succeeded.
    pub const PARSE_COMPLETE: u8 = b'1';
    /// Execute stopped at its row limit.
    pub const PORTAL_SUSPENDED: u8 = b's';
    /// Ready for the next query; carries the transaction status.
    pub const READY_FOR_QUERY: u8 = b'Z';
    /// Column descriptions of the rows that follow.
    pub const ROW_DESCRIPTION: u8 = b'T';

    /// The protocol's name for a backend tag (`"Unknown"` otherwise).
    pub fn name(tag: u8) -> &'static str {
        match tag {
            AUTHENTICATION => "Authentication",
            BACKEND_KEY_DATA => "BackendKeyData",
            BIND_COMPLETE => "BindComplete",
            CLOSE_COMPLETE => "CloseComplete",
            COMMAND_COMPLETE => "CommandComplete",
            COPY_DATA => "CopyData",
            COPY_DONE => "CopyDone",
            COPY_IN_RESPONSE => "CopyInResponse",
            COPY_OUT_RESPONSE => "CopyOutResponse",
            COPY_BOTH_RESPONSE => "CopyBothResponse",
            DATA_ROW => "DataRow",
            EMPTY_QUERY_RESPONSE => "EmptyQueryResponse",
            ERROR_RESPONSE => "ErrorResponse",
            FUNCTION_CALL_RESPONSE => "FunctionCallResponse",
            NEGOTIATE_PROTOCOL_VERSION => "NegotiateProtocolVersion",
            NO_DATA => "NoData",
            NOTICE_RESPONSE => "NoticeResponse",
            NOTIFICATION_RESPONSE => "NotificationResponse",
            PARAMETER_DESCRIPTION => "ParameterDescription",
            PARAMETER_STATUS => "ParameterStatus",
            PARSE_COMPLETE => "ParseComplete",
            PORTAL_SUSPENDED => "PortalSuspended",
            READY_FOR_QUERY => "ReadyForQuery",
            ROW_DESCRIPTION => "RowDescription",
            _ => "Unknown",
        }
    }
}

#[cfg(test)]
mod tests {
    use crate::Side;

    #[test]
    fn names_depend_on_the_sender() {
        assert_eq!(Side::Frontend.message_name(b'D'), "Describe");
        assert_eq!(Side::Backend.message_name(b'D'), "DataRow");
        assert_eq!(Side::Frontend.message_name(b'F'), "FunctionCall");
        assert_eq!(Side::Backend.message_name(0), "Unknown");
    }
}
