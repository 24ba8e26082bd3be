//! Messages sent by the server: authentication, session status, errors and notices, and the
//! result messages masking works on (RowDescription, DataRow).
//!
//! Server text (error messages, column names, command tags) arrives in the session's
//! `client_encoding`; it is decoded leniently, since Warden only displays or records it and
//! forwards the original frame.

mod authentication;
mod backend_key_data;
mod bind_complete;
mod close_complete;
mod command_complete;
mod copy_response;
mod data_row;
mod empty_query_response;
mod error_response;
mod fields;
mod negotiate_protocol_version;
mod no_data;
mod notice_response;
mod notification_response;
mod parameter_status;
mod parse_complete;
mod portal_suspended;
mod ready_for_query;
mod row_description;

pub use authentication::Authentication;
pub use backend_key_data::BackendKeyData;
pub use bind_complete::BindComplete;
pub use close_complete::CloseComplete;
pub use command_complete::CommandComplete;
pub use copy_response::{CopyBothResponse, CopyInResponse, CopyOutResponse};
pub use data_row::{DataRow, DataRowColumns};
pub use empty_query_response::EmptyQueryResponse;
pub use error_response::ErrorResponse;
pub use fields::{Fields, Severity};
pub use negotiate_protocol_version::NegotiateProtocolVersion;
pub use no_data::NoData;
pub use notice_response::NoticeResponse;
pub use notification_response::NotificationResponse;
pub use parameter_status::ParameterStatus;
pub use parse_complete::ParseComplete;
pub use portal_suspended::PortalSuspended;
pub use ready_for_query::{ReadyForQuery, TransactionStatus};
pub use row_description::{FieldDescription, RowDescription};
