//! FStore's own settings, kept with DataFusion's in the session configuration so that they are
//! set, reset and shown the same way (`SET fstore.query_timeout = '30s'`, `SHOW
//! fstore.query_timeout`, `information_schema.df_settings`) and follow the session.

use std::any::Any;
use std::time::Duration;

use datafusion::common::config::{ConfigEntry, ConfigExtension, ConfigOptions, ExtensionOptions};
use datafusion::error::Result;

use crate::error::{invalid, user_message};

/// The namespace of FStore's settings.
pub const PREFIX: &str = "fstore";
/// The key of the query time limit.
pub const QUERY_TIMEOUT: &str = "fstore.query_timeout";

/// FStore's settings (namespace `fstore`). Listed under their full names
/// (`fstore.query_timeout`) in `information_schema.df_settings` and by `SHOW`.
#[derive(Debug, Clone, Default)]
pub struct FStoreOptions {
    /// The longest a query may run before it is stopped, such as '30s' or '5m'; empty,
    /// 'none' or '0': no limit.
    pub query_timeout: String,
}

impl ConfigExtension for FStoreOptions {
    const PREFIX: &'static str = PREFIX;
}

impl ExtensionOptions for FStoreOptions {
    fn as_any(&self) -> &dyn Any {
        self
    }

    fn as_any_mut(&mut self) -> &mut dyn Any {
        self
    }

    fn cloned(&self) -> Box<dyn ExtensionOptions> {
        Box::new(self.clone())
    }

    fn set(&mut self, key: &str, value: &str) -> Result<()> {
        match key {
            "query_timeout" => {
                parse_timeout(value)?;
                self.query_timeout = value.trim().to_string();
                Ok(())
            }
            _ => Err(invalid(format!("unknown setting '{PREFIX}.{key}'"))),
        }
    }

    fn entries(&self) -> Vec<ConfigEntry> {
        let shown = if self.query_timeout.is_empty() {
            "none"
        } else {
            &self.query_timeout
        };
        vec![ConfigEntry {
            key: QUERY_TIMEOUT.to_string(),
            value: Some(shown.to_string()),
            description: "The longest a query may run before it is stopped ('30s', '5m'); 'none': no limit. A user may set a shorter limit than the server's.",
        }]
    }
}

/// Parses a time limit: a duration (`'30s'`, `'5m'`, `'1h 30m'`), or no limit (`''`,
/// `'none'`, `'0'`).
pub fn parse_timeout(text: &str) -> Result<Option<Duration>> {
    let t = text.trim();
    if t.is_empty() || t.eq_ignore_ascii_case("none") || t == "0" {
        return Ok(None);
    }
    let nanos = fstore_udfs::duration::parse_duration(t)
        .map_err(|e| invalid(format!("query timeout: {}", user_message(&e))))?;
    Ok((nanos > 0).then(|| Duration::from_nanos(nanos as u64)))
}

/// The query time limit of a session's settings (an unparsable value, which `SET` refuses,
/// counts as none).
pub fn query_timeout(options: &ConfigOptions) -> Option<Duration> {
    options
        .extensions
        .get::<FStoreOptions>()
        .and_then(|o| parse_timeout(&o.query_timeout).ok().flatten())
}

/// The time limit of the session a DataFrame runs in, and the DataFrame (read from its
/// session state in place: `DataFrame::task_ctx` would copy every function registry).
pub fn query_timeout_of(
    df: datafusion::dataframe::DataFrame,
) -> (datafusion::dataframe::DataFrame, Option<Duration>) {
    let (state, plan) = df.into_parts();
    let limit = query_timeout(state.config_options());
    (datafusion::dataframe::DataFrame::new(state, plan), limit)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn timeouts_parse_and_none_means_no_limit() {
        assert_eq!(parse_timeout("30s").unwrap(), Some(Duration::from_secs(30)));
        assert_eq!(
            parse_timeout(" 1m 30s ").unwrap(),
            Some(Duration::from_secs(90))
        );
        assert_eq!(
            parse_timeout("250ms").unwrap(),
            Some(Duration::from_millis(250))
        );
        for none in ["", "none", "NONE", "0"] {
            assert_eq!(parse_timeout(none).unwrap(), None, "{none}");
        }
        let e = parse_timeout("soon").unwrap_err().to_string();
        assert!(e.contains("query timeout") && e.contains("soon"), "{e}");
    }

    #[test]
    fn the_setting_follows_the_options() {
        let mut options = ConfigOptions::new();
        options.extensions.insert(FStoreOptions::default());
        assert_eq!(query_timeout(&options), None);
        options.set(QUERY_TIMEOUT, "2s").unwrap();
        assert_eq!(query_timeout(&options), Some(Duration::from_secs(2)));
        assert!(options.set(QUERY_TIMEOUT, "whenever").is_err());
        assert!(options.set("fstore.nope", "1s").is_err());
        assert_eq!(query_timeout(&options), Some(Duration::from_secs(2)));
        let shown: Vec<_> = options
            .entries()
            .into_iter()
            .filter(|e| e.key.starts_with("fstore."))
            .collect();
        assert_eq!(shown.len(), 1);
        assert_eq!(shown[0].value.as_deref(), Some("2s"));
    }
}
