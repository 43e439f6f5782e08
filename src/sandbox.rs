//! The sandbox: which locations a statement may read (`CREATE EXTERNAL TABLE … LOCATION`) or
//! write (`COPY … TO`, `EXPORT FEATURE SET … TO`).
//!
//! Rules, for a location after normalisation (`file://` URLs decoded, the path made
//! absolute, `.`/`..` removed, symbolic links of its existing part resolved; other URLs parsed
//! and their dot segments and percent-encoding resolved by the URL parser):
//! 1. the warehouse (its registry, token key, managed tables) and the configuration file are
//!    never readable or writable through SQL, by anyone: neither they nor a directory that
//!    holds them may be named;
//! 2. only an administrator may name a server-local path (a client of the server has no
//!    business with the server's file system); remote URLs (`s3://…`) are for everyone;
//! 3. when `[security] allowed_locations` is configured, every location must lie inside one
//!    of them, for everyone.
//!
//! A refusal is `PermissionDenied` and names the location and the rule.

use std::path::{Component, Path, PathBuf};

use datafusion::error::Result;
use url::Url;

use crate::config::Config;
use crate::error::FStoreError;

/// What a statement does with a location.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Access {
    Read,
    Write,
}

impl Access {
    fn verb(self) -> &'static str {
        match self {
            Access::Read => "read",
            Access::Write => "write",
        }
    }
}

/// A location, normalised.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Place {
    Local(PathBuf),
    /// A URL without a trailing slash.
    Remote(String),
}

impl Place {
    fn parse(location: &str) -> Option<Place> {
        let text = location.trim();
        match Url::parse(text) {
            Ok(url) if url.scheme() == "file" => {
                url.to_file_path().ok().map(|p| Place::Local(resolve(&p)))
            }
            // A Windows drive letter parses as a scheme; anything else of one letter too.
            Ok(url) if url.scheme().len() > 1 => Some(Place::Remote(
                url.as_str().trim_end_matches('/').to_string(),
            )),
            _ => Some(Place::Local(resolve(Path::new(text)))),
        }
    }

    /// Whether `self` lies inside `outer` (or is it).
    fn within(&self, outer: &Place) -> bool {
        match (self, outer) {
            (Place::Local(a), Place::Local(b)) => a.starts_with(b),
            (Place::Remote(a), Place::Remote(b)) => {
                a == b
                    || a.strip_prefix(b.as_str())
                        .is_some_and(|rest| rest.starts_with('/'))
            }
            _ => false,
        }
    }

    /// Whether one of `self` and `other` holds the other.
    fn overlaps(&self, other: &Place) -> bool {
        self.within(other) || other.within(self)
    }
}

/// An absolute path without `.`/`..`, with the symbolic links of its longest existing prefix
/// resolved (what the operating system would open).
fn resolve(path: &Path) -> PathBuf {
    let absolute = std::path::absolute(path).unwrap_or_else(|_| path.to_path_buf());
    let mut clean = PathBuf::new();
    for c in absolute.components() {
        match c {
            Component::ParentDir => {
                clean.pop();
            }
            Component::CurDir => {}
            other => clean.push(other),
        }
    }
    // Resolve links in the part that exists; keep the rest as written.
    let mut existing = clean.as_path();
    let mut rest = Vec::new();
    loop {
        if let Ok(real) = existing.canonicalize() {
            let mut out = real;
            out.extend(rest.iter().rev());
            return out;
        }
        match (existing.parent(), existing.file_name()) {
            (Some(parent), Some(name)) => {
                rest.push(name.to_os_string());
                existing = parent;
            }
            _ => return clean,
        }
    }
}

fn denied(location: &str, access: Access, why: &str) -> datafusion::error::DataFusionError {
    FStoreError::permission_denied(format!("cannot {} '{location}': {why}", access.verb())).into()
}

/// Checks that a statement of an administrator (`admin`) or not may `access` `location`,
/// under `config` with the warehouse at `warehouse` (see the module documentation).
pub fn check(
    location: &str,
    access: Access,
    admin: bool,
    config: &Config,
    warehouse: &Url,
) -> Result<()> {
    let Some(place) = Place::parse(location) else {
        return Err(denied(location, access, "not a valid location"));
    };
    let protected = [Place::parse(warehouse.as_str())]
        .into_iter()
        .chain([config
            .source
            .as_deref()
            .and_then(|p| Place::parse(&p.to_string_lossy()))])
        .flatten();
    for p in protected {
        if place.overlaps(&p) {
            return Err(denied(
                location,
                access,
                "the warehouse and the server's configuration are not accessible through SQL",
            ));
        }
    }
    if matches!(place, Place::Local(_)) && !admin {
        return Err(denied(
            location,
            access,
            "only an administrator may name a path on the server",
        ));
    }
    let allowed = &config.security.allowed_locations;
    if !allowed.is_empty()
        && !allowed
            .iter()
            .filter_map(|a| Place::parse(a))
            .any(|a| place.within(&a))
    {
        return Err(denied(
            location,
            access,
            &format!("outside the allowed locations ({})", allowed.join(", ")),
        ));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::error::{ErrorKind, user_message};

    fn setup() -> (tempfile::TempDir, Config, Url) {
        let dir = tempfile::tempdir().unwrap();
        let wh = dir.path().join("wh");
        std::fs::create_dir_all(wh.join("_registry")).unwrap();
        std::fs::write(dir.path().join("fstore.toml"), "").unwrap();
        std::fs::create_dir_all(dir.path().join("data")).unwrap();
        let config = Config {
            source: Some(dir.path().join("fstore.toml")),
            ..Config::default()
        };
        let url = Url::from_directory_path(wh.canonicalize().unwrap()).unwrap();
        (dir, config, url)
    }

    fn refused(r: Result<()>) -> String {
        let e = r.unwrap_err();
        assert_eq!(ErrorKind::of(&e), ErrorKind::PermissionDenied, "{e}");
        user_message(&e)
    }

    #[test]
    fn the_warehouse_and_the_config_are_never_reachable() {
        let (dir, config, wh) = setup();
        let d = dir.path().display();
        for loc in [
            format!("{d}/wh/_registry/log/"),
            format!("{d}/wh"),
            format!("{d}/wh/../wh/_registry/token-key"),
            format!("{d}/data/../wh/tables/"),
            format!("file://{d}/wh/_registry/"),
            format!("file://{d}/data/%2e%2e/wh/_registry/"),
            format!("{d}/fstore.toml"),
            format!("{d}/"),
            "/".to_string(),
        ] {
            for access in [Access::Read, Access::Write] {
                let msg = refused(check(&loc, access, true, &config, &wh));
                assert!(msg.contains("warehouse"), "{loc}: {msg}");
            }
        }
        // A symbolic link into the warehouse is the warehouse.
        #[cfg(unix)]
        {
            std::os::unix::fs::symlink(dir.path().join("wh"), dir.path().join("data/link"))
                .unwrap();
            let msg = refused(check(
                &format!("{d}/data/link/_registry/"),
                Access::Read,
                true,
                &config,
                &wh,
            ));
            assert!(msg.contains("warehouse"), "{msg}");
        }
        assert!(check(&format!("{d}/data/x.csv"), Access::Read, true, &config, &wh).is_ok());
        assert!(
            check(
                &format!("{d}/data/new/out.parquet"),
                Access::Write,
                true,
                &config,
                &wh
            )
            .is_ok()
        );
    }

    #[test]
    fn only_administrators_name_server_paths() {
        let (dir, config, wh) = setup();
        let local = format!("{}/data/x.csv", dir.path().display());
        let msg = refused(check(&local, Access::Read, false, &config, &wh));
        assert!(msg.contains("only an administrator"), "{msg}");
        refused(check("/etc/shadow", Access::Read, false, &config, &wh));
        refused(check(
            "file:///etc/passwd",
            Access::Read,
            false,
            &config,
            &wh,
        ));
        assert!(
            check(
                "s3://bucket/landing/x.csv",
                Access::Read,
                false,
                &config,
                &wh
            )
            .is_ok()
        );
    }

    #[test]
    fn allowed_locations_bound_everyone() {
        let (dir, mut config, wh) = setup();
        let d = dir.path().display();
        config.security.allowed_locations =
            vec!["s3://bucket/landing".to_string(), format!("{d}/data")];
        assert!(
            check(
                "s3://bucket/landing/x.csv",
                Access::Read,
                false,
                &config,
                &wh
            )
            .is_ok()
        );
        assert!(check(&format!("{d}/data/out/"), Access::Write, true, &config, &wh).is_ok());
        for loc in [
            "s3://bucket/landing-other/x.csv".to_string(),
            "s3://bucket/landing/../secret/x.csv".to_string(),
            "s3://other/x.csv".to_string(),
            format!("{d}/data/../elsewhere/x.csv"),
            "/tmp/x.csv".to_string(),
        ] {
            let msg = refused(check(&loc, Access::Write, true, &config, &wh));
            assert!(
                msg.contains("outside the allowed locations"),
                "{loc}: {msg}"
            );
        }
    }
}
