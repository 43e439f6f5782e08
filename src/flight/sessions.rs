//! The server's sessions: the settings each login changed with `SET` (see
//! [`crate::sql::settings`]). A session is named by the id in its bearer token and lives as
//! long as the token; sessions are kept in this server's memory (a restart, or a request that
//! reaches another server of the same warehouse, starts from the server's settings again).

use std::collections::HashMap;
use std::sync::{Arc, Mutex, PoisonError};
use std::time::{Duration, Instant};

use crate::principal::Principal;
use crate::sql::settings::{Scope, SessionSettings};

/// How many sessions are kept before the idle ones are forgotten.
const MAX_SESSIONS: usize = 10_000;
/// A session unused this long may be forgotten when the table is full (tokens last a day by
/// default; few clients keep one idle that long and then rely on its settings).
const IDLE: Duration = Duration::from_secs(3600);

struct Entry {
    settings: Arc<SessionSettings>,
    used: Instant,
}

/// The sessions of this server, by session id.
#[derive(Default)]
pub struct Sessions {
    map: Mutex<HashMap<String, Entry>>,
}

impl Sessions {
    /// Where the `SET` of `principal`'s request goes: its session, or none when the request
    /// carries no token.
    pub fn scope(&self, principal: &Principal) -> Scope {
        // Keyed by the session id alone: it is random and signed into the token, so it
        // names one login of one user (and needs no key built per request).
        let Some(id) = principal.session.as_deref() else {
            return Scope::Sessionless;
        };
        let now = Instant::now();
        let mut map = self.map.lock().unwrap_or_else(PoisonError::into_inner);
        if let Some(e) = map.get_mut(id) {
            e.used = now;
            return Scope::Session(Arc::clone(&e.settings));
        }
        if map.len() >= MAX_SESSIONS {
            // Sessions that changed nothing lose nothing by being forgotten; then the idle.
            map.retain(|_, e| !e.settings.is_empty() && now.duration_since(e.used) < IDLE);
        }
        if map.len() >= MAX_SESSIONS {
            tracing::warn!(
                sessions = map.len(),
                "session table full: this request runs without a session"
            );
            return Scope::Sessionless;
        }
        let settings = Arc::<SessionSettings>::default();
        map.insert(
            id.to_string(),
            Entry {
                settings: Arc::clone(&settings),
                used: now,
            },
        );
        Scope::Session(settings)
    }
}
