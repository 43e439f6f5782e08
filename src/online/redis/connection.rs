//! Redis URLs, clients and the wording of their errors.

use super::*;

/// Checks a `redis://` or `rediss://` URL and makes a client for it; also returns the
/// `host:port` shown in messages.
pub(super) fn open_client(url: &str) -> Result<(redis::Client, String)> {
    let bad = |why: &str| {
        FStoreError::invalid(format!(
            "bad Redis URL {:?}: {why} (expected redis[s]://[[user]:password@]host[:port][/db])",
            redact(url)
        ))
    };
    let parsed = url::Url::parse(url).map_err(|e| bad(&e.to_string()))?;
    if !matches!(parsed.scheme(), "redis" | "rediss") {
        return Err(bad("the scheme must be redis:// (or rediss:// for TLS)"));
    }
    let host = parsed
        .host_str()
        .filter(|h| !h.is_empty())
        .ok_or_else(|| bad("no host"))?;
    if !parsed.username().is_empty() && parsed.password().is_none() {
        return Err(bad(
            "a user name needs a password (redis://user:password@host)",
        ));
    }
    let path = parsed.path().trim_matches('/');
    if !path.is_empty() && path.parse::<u32>().is_err() {
        return Err(bad("the path must be a database number"));
    }
    let addr = format!("{host}:{}", parsed.port().unwrap_or(6379));
    let client = redis::Client::open(url).map_err(|e| bad(&e.to_string()))?;
    Ok((client, addr))
}

/// The URL without its password, for messages.
pub(super) fn redact(url: &str) -> String {
    match url::Url::parse(url) {
        Ok(mut u) if u.password().is_some() => {
            let _ = u.set_password(Some("***"));
            u.to_string()
        }
        _ => url.to_string(),
    }
}

pub(super) fn truncate(s: &str) -> &str {
    match s.char_indices().nth(200) {
        Some((i, _)) => &s[..i],
        None => s,
    }
}

/// Short description of a reply for error messages (never the whole payload).
pub(super) fn describe(value: &Value) -> String {
    match value {
        Value::Nil => "nil".into(),
        Value::Int(i) => format!("integer {i}"),
        Value::BulkString(b) => format!("a {}-byte string", b.len()),
        Value::Array(a) => format!("an array of {}", a.len()),
        Value::SimpleString(s) => format!("+{}", truncate(s)),
        Value::Okay => "+OK".into(),
        Value::ServerError(e) => format!("error {}", truncate(&e.to_string())),
        other => truncate(&format!("{other:?}")).to_string(),
    }
}

/// The text of the first error reply in `e` (`CODE detail`, as Redis sent it), if `e` is
/// one.
pub(super) fn server_error_text(e: &RedisError) -> Option<String> {
    let errors = e.clone().into_server_errors()?;
    let (_, first) = errors.first()?;
    Some(match first.details() {
        Some(detail) => format!("{} {detail}", first.code()),
        None => first.code().to_string(),
    })
}
