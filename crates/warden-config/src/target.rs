//! Target URLs: `postgres://[user@]host[:port]/dbname`, never with a password.

use url::Url;

/// A parsed target address.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct TargetUrl {
    /// Host name or address.
    pub host: String,
    /// TCP port (default 5432).
    pub port: u16,
    /// Database on the target.
    pub database: String,
    /// Target role named in the URL, if any.
    pub user: Option<String>,
}

impl TargetUrl {
    /// Parses and checks a target URL. Errors never repeat a password found in it.
    pub fn parse(s: &str) -> Result<TargetUrl, String> {
        let url = Url::parse(s).map_err(|e| format!("not a valid URL: {e}"))?;
        if url.scheme() != "postgres" && url.scheme() != "postgresql" {
            return Err(format!(
                "scheme must be postgres:// (got {}://)",
                url.scheme()
            ));
        }
        if url.password().is_some() {
            return Err("must not contain a password; use password_env or password_file".into());
        }
        let host = url
            .host_str()
            .filter(|h| !h.is_empty())
            .ok_or("a host is required")?
            .trim_start_matches('[')
            .trim_end_matches(']')
            .to_owned();
        let database = url.path().trim_start_matches('/').to_owned();
        if database.is_empty() {
            return Err("a database name is required (postgres://host:port/DBNAME)".into());
        }
        let database = percent_decode(&database)?;
        for (k, v) in url.query_pairs() {
            match (k.as_ref(), v.as_ref()) {
                ("sslmode", "disable") => {}
                ("sslmode", other) => {
                    return Err(format!(
                        "sslmode={other} is not supported yet; TLS to targets is planned"
                    ))
                }
                (other, _) => return Err(format!("unknown parameter {other:?}")),
            }
        }
        let user = if url.username().is_empty() {
            None
        } else {
            Some(percent_decode(url.username())?)
        };
        Ok(TargetUrl {
            host,
            port: url.port().unwrap_or(5432),
            database,
            user,
        })
    }
}

fn percent_decode(s: &str) -> Result<String, String> {
    let bytes = s.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i] == b'%' {
            let hex = s.get(i + 1..i + 3).ok_or("bad percent-encoding")?;
            out.push(u8::from_str_radix(hex, 16).map_err(|_| "bad percent-encoding")?);
            i += 3;
        } else {
            out.push(bytes[i]);
            i += 1;
        }
    }
    String::from_utf8(out).map_err(|_| "percent-encoding is not UTF-8".to_owned())
}
