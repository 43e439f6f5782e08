//! Authentication for the Flight SQL server.
//!
//! `Handshake` takes HTTP Basic credentials (the `authorization: Basic …` header that ADBC,
//! JDBC and `pyarrow.flight`'s `authenticate_basic_token` send, or a `BasicAuth` payload) and
//! answers with a signed bearer token (in the `authorization` response header and as the
//! payload). Every other call must carry `authorization: Bearer <token>`.
//!
//! Tokens are `v2.<payload>.<signature>`: the payload names the user, an expiry, the user's
//! credentials version (a new password revokes older tokens) and a random session id (each
//! login is a session of its own: its `SET`s apply to it alone, see `sql::settings`); the
//! signature is HMAC-SHA256 with a key stored in the warehouse (`_registry/token-key`, created
//! once with a conditional create), so servers sharing a warehouse accept each other's tokens
//! and tokens survive restarts. Verifying a token is a hash, not a registry read, so it costs
//! nothing on the hot path.
//!
//! Users live in the registry with argon2id password hashes. On first start with no users,
//! an `admin` user is created with the password from `FSTORE_ADMIN_PASSWORD`, or a random one
//! printed once.

use std::net::SocketAddr;
use std::pin::Pin;
use std::sync::Arc;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use argon2::{Argon2, PasswordVerifier};
use arrow_flight::{BasicAuth, HandshakeRequest, HandshakeResponse};
use base64::Engine as _;
use base64::engine::general_purpose::{STANDARD, URL_SAFE_NO_PAD};
use datafusion::error::Result;
use futures::Stream;
use hmac::{KeyInit, Mac};
use object_store::ObjectStoreExt;
use prost::Message;
use tonic::metadata::{MetadataMap, MetadataValue};
use tonic::{Request, Response, Status, Streaming};

use crate::config::Config;
use crate::engine::Engine;
use crate::error::{ErrorKind, FStoreError};
use crate::principal::{Principal, hash_password, random_bytes};
use crate::registry::{Change, User};

use super::metrics::Metrics;

type HmacSha256 = hmac::Hmac<sha2::Sha256>;

const KEY_OBJECT: &str = "_registry/token-key";

/// Verifies credentials and tokens.
pub struct Authenticator {
    engine: Arc<Engine>,
    key: Vec<u8>,
    ttl: Duration,
    no_auth: bool,
    /// A hash of a random password: unknown users cost the same time as wrong passwords.
    dummy_hash: String,
    limiter: LoginLimiter,
}

/// Failed logins allowed per user within [`LOGIN_WINDOW`].
pub const MAX_FAILED_LOGINS_PER_USER: u32 = 5;
/// Failed logins allowed per peer address (for any users) within [`LOGIN_WINDOW`].
pub const MAX_FAILED_LOGINS_PER_PEER: u32 = 20;
/// The window failed logins are counted in (from the first failure).
pub const LOGIN_WINDOW: Duration = Duration::from_secs(60);

/// Counts failed logins per user and per peer address; bounded in memory (entries expire
/// with their window, and at most 100,000 are kept).
pub struct LoginLimiter {
    failures: moka::sync::Cache<String, Arc<std::sync::atomic::AtomicU32>>,
}

impl LoginLimiter {
    fn new() -> Self {
        Self {
            failures: moka::sync::Cache::builder()
                .max_capacity(100_000)
                .time_to_live(LOGIN_WINDOW)
                .build(),
        }
    }

    fn keys(user: &str, peer: Option<SocketAddr>) -> Vec<String> {
        let mut keys = vec![format!("user:{user}")];
        if let Some(p) = peer {
            keys.push(format!("peer:{}", p.ip()));
        }
        keys
    }

    fn check(&self, keys: &[String]) -> Result<(), Status> {
        use std::sync::atomic::Ordering;
        for k in keys {
            let limit = if k.starts_with("peer:") {
                MAX_FAILED_LOGINS_PER_PEER
            } else {
                MAX_FAILED_LOGINS_PER_USER
            };
            if self
                .failures
                .get(k)
                .is_some_and(|n| n.load(Ordering::Relaxed) >= limit)
            {
                let (what, who) = k.split_once(':').unwrap_or(("", k));
                return Err(Status::resource_exhausted(format!(
                    "too many failed logins for {what} {who}: wait {} seconds and try again",
                    LOGIN_WINDOW.as_secs()
                )));
            }
        }
        Ok(())
    }

    fn failed(&self, keys: &[String]) {
        for k in keys {
            self.failures
                .get_with(k.clone(), Default::default)
                .fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        }
    }
}

impl std::fmt::Debug for Authenticator {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Authenticator")
            .field("no_auth", &self.no_auth)
            .finish()
    }
}

/// Authentication as a tonic interceptor: every request's credentials (a bearer token, or
/// Basic credentials) are checked before any handler runs, and the [`Principal`] travels in
/// the request's extensions ([`principal_of`]). A request without credentials passes on
/// without a principal: `Handshake` may carry them in its payload, and every other handler
/// refuses it.
#[derive(Clone)]
pub struct AuthInterceptor {
    auth: Arc<Authenticator>,
    metrics: Arc<Metrics>,
}

impl AuthInterceptor {
    pub fn new(auth: Arc<Authenticator>, metrics: Arc<Metrics>) -> Self {
        Self { auth, metrics }
    }
}

impl tonic::service::Interceptor for AuthInterceptor {
    fn call(&mut self, mut request: Request<()>) -> Result<Request<()>, Status> {
        if !request.metadata().contains_key("authorization") && !self.auth.no_auth() {
            return Ok(request);
        }
        let peer = request.remote_addr();
        match self.auth.authenticate(request.metadata(), peer) {
            Ok(principal) => {
                let principal = principal.with_peer(peer.map(|p| p.to_string()));
                request.extensions_mut().insert(principal);
                Ok(request)
            }
            // A revoked token still names its user: closing a prepared statement (the
            // client's clean-up after `ALTER USER me PASSWORD …`) needs no more than that.
            Err(Rejected::Revoked(p)) => {
                request.extensions_mut().insert(RevokedToken(p));
                Ok(request)
            }
            Err(Rejected::Refused(status)) => {
                let code = Some(status.code());
                self.metrics
                    .record(("authenticate", ""), Duration::ZERO, code);
                Err(status)
            }
        }
    }
}

/// Why credentials were not accepted.
#[derive(Debug)]
pub enum Rejected {
    /// A correctly signed, unexpired token whose user changed password or was dropped.
    Revoked(Principal),
    Refused(Status),
}

impl From<Status> for Rejected {
    fn from(s: Status) -> Self {
        Rejected::Refused(s)
    }
}

/// The user of a correctly signed, unexpired token that a new password or `DROP USER`
/// revoked.
#[derive(Debug, Clone)]
pub struct RevokedToken(pub Principal);

/// The format of the bearer tokens this server issues (`v2`: with a session id; `v1` tokens
/// of earlier servers are no longer accepted, their users log in again).
const TOKEN_VERSION: &str = "v2";

const REVOKED: &str =
    "token revoked (the user's password changed or the user was dropped): log in again";

/// The principal of a request that only releases what its user holds (closing a prepared
/// statement): also the user of a revoked token.
pub fn releasing_principal_of<T>(request: &Request<T>) -> Result<Principal, Status> {
    match request.extensions().get::<RevokedToken>() {
        Some(r) => Ok(r.0.clone()),
        None => principal_of(request),
    }
}

/// The principal [`AuthInterceptor`] authenticated, or `Unauthenticated`.
pub fn principal_of<T>(request: &Request<T>) -> Result<Principal, Status> {
    if request.extensions().get::<RevokedToken>().is_some() {
        return Err(Status::unauthenticated(REVOKED));
    }
    request.extensions().get::<Principal>().cloned().ok_or_else(|| {
        Status::unauthenticated(
            "missing authorization: log in with Handshake (HTTP Basic) and send 'authorization: Bearer <token>'",
        )
    })
}

/// The response stream of `Handshake`.
pub type HandshakeStream =
    Pin<Box<dyn Stream<Item = Result<HandshakeResponse, Status>> + Send + 'static>>;

impl Authenticator {
    /// `Handshake`: logs in with Basic credentials (the header, checked by the interceptor,
    /// or a `BasicAuth` payload as pyarrow's `ClientAuthHandler` sends) and answers with a
    /// bearer token, in the `authorization` header and as the payload.
    pub async fn handshake(
        &self,
        request: Request<Streaming<HandshakeRequest>>,
    ) -> Result<Response<HandshakeStream>, Status> {
        let peer = request.remote_addr();
        let principal = if request.metadata().contains_key("authorization") {
            principal_of(&request)?
        } else {
            let extension = principal_of(&request);
            match request.into_inner().message().await? {
                Some(msg) if !msg.payload.is_empty() => {
                    let basic = BasicAuth::decode(msg.payload)
                        .map_err(|_| Status::unauthenticated("malformed handshake payload"))?;
                    self.login(&basic.username, &basic.password, peer)?
                }
                _ => extension
                    .map_err(|_| Status::unauthenticated("missing credentials: send HTTP Basic"))?,
            }
        };
        let token = self.issue(&principal);
        let value = MetadataValue::try_from(format!("Bearer {token}"))
            .map_err(|_| Status::internal("token is not a valid header"))?;
        let out = futures::stream::iter([Ok(HandshakeResponse {
            protocol_version: 0,
            payload: token.into(),
        })]);
        let mut response: Response<HandshakeStream> = Response::new(Box::pin(out));
        response.metadata_mut().insert("authorization", value);
        tracing::info!(user = %principal, "login");
        Ok(response)
    }
}

/// A password that was generated for the bootstrap admin user (to print once).
pub struct GeneratedPassword(pub String);

impl Authenticator {
    /// Loads (or creates) the token key and makes sure the configured users exist.
    pub async fn new(
        engine: Arc<Engine>,
        config: &Config,
    ) -> Result<(Self, Option<GeneratedPassword>)> {
        let key = load_or_create_key(&engine).await?;
        let generated = if config.server.no_auth {
            None
        } else {
            bootstrap_users(&engine, config).await?
        };
        Ok((
            Self {
                engine,
                key,
                ttl: Duration::from_secs(config.server.token_ttl_secs.max(60)),
                no_auth: config.server.no_auth,
                dummy_hash: hash_password(&URL_SAFE_NO_PAD.encode(random_bytes::<18>()?))?,
                limiter: LoginLimiter::new(),
            },
            generated,
        ))
    }

    pub fn no_auth(&self) -> bool {
        self.no_auth
    }

    /// Checks a user's password. Failed logins are limited per user and per peer address
    /// (see [`LoginLimiter`]): over the limit, even a right password is refused until the
    /// window passes, so guessing is slow whoever guesses.
    pub fn login(
        &self,
        user: &str,
        password: &str,
        peer: Option<SocketAddr>,
    ) -> Result<Principal, Status> {
        if self.no_auth {
            return Ok(Principal::trusted(if user.is_empty() {
                "anonymous"
            } else {
                user
            }));
        }
        let keys = LoginLimiter::keys(user, peer);
        self.limiter.check(&keys)?;
        let state = self.engine.registry().state();
        let verified = match state.users.get(user) {
            Some(u) => Argon2::default()
                .verify_password(password.as_bytes(), u.password_hash.as_str())
                .is_ok(),
            None => {
                // Same work and same answer for unknown users and wrong passwords.
                let _ = Argon2::default()
                    .verify_password(password.as_bytes(), self.dummy_hash.as_str());
                false
            }
        };
        if !verified {
            self.limiter.failed(&keys);
            tracing::warn!(user, peer = ?peer, "failed login");
            return Err(Status::unauthenticated("invalid username or password"));
        }
        Ok(Principal::new(user.to_string()))
    }

    /// A signed bearer token for `principal`. It carries the user's credentials version:
    /// a new password or a dropped user revokes every token issued before.
    pub fn issue(&self, principal: &Principal) -> String {
        let expiry = now_secs() + self.ttl.as_secs();
        let credentials = self
            .engine
            .registry()
            .state()
            .users
            .get(&principal.name)
            .map_or(0, |u| u.credentials);
        // A random session id: every login is a session of its own (see `sql::settings`).
        // Should the OS have no randomness, a per-process counter keeps sessions apart.
        static NEXT: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(0);
        let id = random_bytes::<12>()
            .map(|b| b.to_vec())
            .unwrap_or_else(|_| {
                let n = NEXT.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
                [now_secs().to_le_bytes(), n.to_le_bytes()].concat()
            });
        let session = URL_SAFE_NO_PAD.encode(id);
        let payload = URL_SAFE_NO_PAD.encode(format!(
            "{}\n{expiry}\n{credentials}\n{session}",
            principal.name
        ));
        let sig = URL_SAFE_NO_PAD.encode(self.sign(payload.as_bytes()));
        format!("{TOKEN_VERSION}.{payload}.{sig}")
    }

    /// The principal of a request, from its bearer token.
    pub fn authenticate(
        &self,
        metadata: &MetadataMap,
        peer: Option<SocketAddr>,
    ) -> Result<Principal, Rejected> {
        let header = metadata.get("authorization").and_then(|v| v.to_str().ok());
        let Some(header) = header else {
            if self.no_auth {
                return Ok(Principal::trusted("anonymous"));
            }
            return Err(Status::unauthenticated(
                "missing authorization: log in with Handshake (HTTP Basic) and send 'authorization: Bearer <token>'",
            )
            .into());
        };
        if let Some(token) = strip_scheme(header, "Bearer") {
            return self.verify(token.trim());
        }
        if let Some(basic) = strip_scheme(header, "Basic") {
            // Clients that send Basic credentials on every call instead of a handshake.
            let (user, password) = decode_basic(basic.trim())?;
            return Ok(self.login(&user, &password, peer)?);
        }
        if self.no_auth {
            return Ok(Principal::trusted("anonymous"));
        }
        Err(Status::unauthenticated("unsupported authorization scheme: use Bearer").into())
    }

    fn verify(&self, token: &str) -> Result<Principal, Rejected> {
        let invalid = || Status::unauthenticated("invalid or expired token: log in again");
        let mut parts = token.split('.');
        let (Some(TOKEN_VERSION), Some(payload), Some(sig), None) =
            (parts.next(), parts.next(), parts.next(), parts.next())
        else {
            return Err(invalid().into());
        };
        let sig = URL_SAFE_NO_PAD.decode(sig).map_err(|_| invalid())?;
        let mut mac = HmacSha256::new_from_slice(&self.key).map_err(|_| invalid())?;
        mac.update(payload.as_bytes());
        mac.verify_slice(&sig).map_err(|_| invalid())?;
        let payload = URL_SAFE_NO_PAD.decode(payload).map_err(|_| invalid())?;
        let payload = String::from_utf8(payload).map_err(|_| invalid())?;
        let mut fields = payload.rsplitn(4, '\n');
        let (Some(session), Some(credentials), Some(expiry), Some(name)) =
            (fields.next(), fields.next(), fields.next(), fields.next())
        else {
            return Err(invalid().into());
        };
        let expiry: u64 = expiry.parse().map_err(|_| invalid())?;
        let credentials: u64 = credentials.parse().map_err(|_| invalid())?;
        if expiry < now_secs() {
            return Err(Status::unauthenticated("token expired: log in again").into());
        }
        if !self.no_auth {
            let state = self.engine.registry().state();
            match state.users.get(name) {
                Some(u) if u.credentials == credentials => {}
                _ => {
                    return Err(Rejected::Revoked(
                        Principal::new(name).in_session(Some(session.to_string())),
                    ));
                }
            }
        }
        // Without authentication everyone is trusted, token or not.
        Ok(Principal {
            name: name.to_string(),
            trusted: self.no_auth,
            peer: None,
            session: Some(session.to_string()),
        })
    }

    fn sign(&self, data: &[u8]) -> Vec<u8> {
        let mut mac = HmacSha256::new_from_slice(&self.key).expect("HMAC takes keys of any length");
        mac.update(data);
        mac.finalize().into_bytes().to_vec()
    }
}

fn strip_scheme<'a>(header: &'a str, scheme: &str) -> Option<&'a str> {
    let (s, rest) = header.split_once(' ')?;
    s.eq_ignore_ascii_case(scheme).then_some(rest)
}

/// `user:password` from a Basic credential.
pub fn decode_basic(b64: &str) -> Result<(String, String), Status> {
    let bad = || Status::unauthenticated("malformed Basic credentials");
    // Go's Flight client sends unpadded base64; others pad.
    let raw = STANDARD
        .decode(b64)
        .or_else(|_| base64::engine::general_purpose::STANDARD_NO_PAD.decode(b64))
        .map_err(|_| bad())?;
    let raw = String::from_utf8(raw).map_err(|_| bad())?;
    let (u, p) = raw.split_once(':').ok_or_else(bad)?;
    Ok((u.to_string(), p.to_string()))
}

fn now_secs() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or(0)
}

async fn load_or_create_key(engine: &Engine) -> Result<Vec<u8>> {
    let wh = engine.warehouse();
    let path = wh.path(KEY_OBJECT);
    let unavailable = |e: object_store::Error| {
        FStoreError::unavailable(format!(
            "cannot read the token key in {}: {}",
            wh.url(),
            crate::warehouse::describe_store_error(&e)
        ))
    };
    match wh.store().get(&path).await {
        Ok(r) => return Ok(r.bytes().await.map_err(unavailable)?.to_vec()),
        Err(object_store::Error::NotFound { .. }) => {}
        Err(e) => return Err(unavailable(e).into()),
    }
    let key = random_bytes::<32>()?.to_vec();
    match wh.create(KEY_OBJECT, key.clone()).await {
        Ok(_) => {
            // Only the server's own OS user may read the key (it signs every token).
            #[cfg(unix)]
            if let Some(dir) = wh.local_dir() {
                use std::os::unix::fs::PermissionsExt;
                let file = dir.join(KEY_OBJECT);
                std::fs::set_permissions(&file, std::fs::Permissions::from_mode(0o600)).map_err(
                    |e| FStoreError::unavailable(format!("cannot protect {}: {e}", file.display())),
                )?;
            }
            wh.sync(KEY_OBJECT)?;
            Ok(key)
        }
        // Another server created it first: use theirs.
        Err(object_store::Error::AlreadyExists { .. }) => Ok(wh
            .store()
            .get(&path)
            .await
            .map_err(unavailable)?
            .bytes()
            .await
            .map_err(unavailable)?
            .to_vec()),
        Err(e) => Err(unavailable(e).into()),
    }
}

/// Creates the users of the configuration that do not exist yet, and an `admin` user when
/// there are no users at all. Returns the admin password if it was generated.
async fn bootstrap_users(engine: &Engine, config: &Config) -> Result<Option<GeneratedPassword>> {
    let system = Principal::trusted("fstore");
    let mut wanted: Vec<(String, String, bool, bool)> = config
        .server
        .users
        .iter()
        .map(|u| (u.name.clone(), u.password.clone(), u.admin, false))
        .collect();
    let state = engine.registry().state();
    let has_admin_configured = wanted.iter().any(|u| u.0 == "admin");
    if state.users.is_empty() && !has_admin_configured {
        let (password, generated) = match std::env::var("FSTORE_ADMIN_PASSWORD") {
            Ok(p) if !p.is_empty() => (p, false),
            _ => (URL_SAFE_NO_PAD.encode(random_bytes::<18>()?), true),
        };
        wanted.push(("admin".to_string(), password, true, generated));
    }
    let mut generated_password = None;
    for (name, password, admin, generated) in wanted {
        if engine.registry().state().users.contains_key(&name) {
            continue;
        }
        let user = User {
            name: name.clone(),
            password_hash: hash_password(&password)?,
            admin,
            roles: vec![],
            credentials: 0,
        };
        let statement = format!("CREATE USER {name} (from the server configuration)");
        match engine
            .registry()
            .commit(&system, &statement, Change::CreateUser(user))
            .await
        {
            Ok(_) => {
                if generated {
                    generated_password = Some(GeneratedPassword(password));
                }
            }
            // Another server created it meanwhile.
            Err(e) if ErrorKind::of(&e) == ErrorKind::AlreadyExists => {}
            Err(e) => return Err(e),
        }
    }
    Ok(generated_password)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn passwords_verify_only_against_their_own_hash() {
        let h = hash_password("secret").unwrap();
        assert!(
            Argon2::default()
                .verify_password(b"secret", h.as_str())
                .is_ok()
        );
        assert!(
            Argon2::default()
                .verify_password(b"Secret", h.as_str())
                .is_err()
        );
    }

    #[test]
    fn basic_credentials_decode() {
        let (u, p) = decode_basic(&STANDARD.encode("ana:pa:ss")).unwrap();
        assert_eq!((u.as_str(), p.as_str()), ("ana", "pa:ss"));
        let unpadded = base64::engine::general_purpose::STANDARD_NO_PAD.encode("admin:pw");
        assert_eq!(decode_basic(&unpadded).unwrap().1, "pw");
        assert!(decode_basic("%%%").is_err());
    }
}
