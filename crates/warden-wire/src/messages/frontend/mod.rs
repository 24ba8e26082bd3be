//! Messages sent by the client: the startup packets and the tagged messages Warden
//! inspects (queries and the extended protocol) or consumes (authentication replies).

mod bind;
mod cancel_request;
mod close;
mod describe;
mod execute;
mod flush;
mod parse;
mod password_message;
mod query;
mod sasl_initial_response;
mod sasl_response;
mod startup_message;
mod sync;
mod terminate;

pub use bind::{Bind, BindRef};
pub use cancel_request::CancelRequest;
pub use close::Close;
pub use describe::Describe;
pub use execute::Execute;
pub use flush::Flush;
pub use parse::{parse_text, Parse};
pub use password_message::PasswordMessage;
pub use query::{query_text, Query};
pub use sasl_initial_response::SaslInitialResponse;
pub use sasl_response::SaslResponse;
pub use startup_message::StartupMessage;
pub use sync::Sync;
pub use terminate::Terminate;
