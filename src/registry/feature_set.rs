//! Feature sets: named, versioned, immutable lists of features.
//!
//! Creating a set under an existing name makes a new version (1, 2, …); versions are never
//! changed or removed by later definitions. Each version pins the definitions of the feature
//! groups it reads, as they were when it was created, so it keeps computing exactly the same
//! values after those groups are altered or replaced (`training_set('name@1', …)`).

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use super::feature_group::FeatureGroup;

/// A feature of a set: which group, which feature.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq, PartialOrd, Ord)]
pub struct FeatureRef {
    pub group: String,
    pub feature: String,
}

impl std::fmt::Display for FeatureRef {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}.{}", self.group, self.feature)
    }
}

/// A group definition as a feature-set version pinned it.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct PinnedGroup {
    /// The registry version (sequence number) of the definition.
    pub version: u64,
    pub def: FeatureGroup,
}

/// One version of a feature set.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct FeatureSetVersion {
    pub name: String,
    /// 1, 2, … (assigned when the version is committed).
    pub version: u64,
    pub features: Vec<FeatureRef>,
    /// The definitions of every group the set reads, as of this version.
    pub groups: BTreeMap<String, PinnedGroup>,
    /// `WITH (key = 'value', …)`
    pub metadata: BTreeMap<String, String>,
    pub tags: Vec<String>,
    pub description: Option<String>,
    /// `metadata.author` when given, else the principal who created it.
    pub author: String,
    /// Commit time, microseconds since the epoch (set when applied).
    pub created_at: i64,
}

/// A version reference: `name` (latest) or `name@version`.
pub fn parse_set_ref(s: &str) -> (&str, Option<u64>) {
    match s.rsplit_once('@') {
        Some((name, v)) => match v.parse::<u64>() {
            Ok(v) => (name, Some(v)),
            Err(_) => (s, None),
        },
        None => (s, None),
    }
}

/// A finished `EXPORT FEATURE SET` (lineage: a set version's data written to a location).
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct ExportRecord {
    pub set: String,
    pub version: u64,
    /// The location as written in the statement.
    pub path: String,
    /// The files written.
    pub files: Vec<String>,
    pub rows: u64,
    /// Commit time (µs), assigned when the record is applied.
    #[serde(default)]
    pub at: i64,
}

/// The latest exports kept in the registry state (the log keeps every one).
pub const EXPORTS_KEPT: usize = 1000;
