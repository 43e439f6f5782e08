//! The online-serving statements (`ALTER FEATURE SET … SET ONLINE | SET OFFLINE`,
//! `REFRESH ONLINE FEATURE SET`), as the SQL front parses them and this area executes them.

/// `ALTER FEATURE SET name [VERSION n] SET ONLINE [(update_frequency = '1h', cache_ttl = '30m')]`
/// or `ALTER FEATURE SET name SET OFFLINE`.
#[derive(Debug, Clone, PartialEq)]
pub enum AlterFeatureSet {
    SetOnline {
        /// `name` or `name@n`.
        reference: String,
        /// Option names (lower case) and values as written.
        options: Vec<(String, String)>,
    },
    SetOffline {
        name: String,
    },
}

impl AlterFeatureSet {
    pub fn name(&self) -> &str {
        match self {
            AlterFeatureSet::SetOnline { reference, .. } => {
                crate::registry::parse_set_ref(reference).0
            }
            AlterFeatureSet::SetOffline { name } => name,
        }
    }
}

/// `REFRESH ONLINE FEATURE SET name [AS OF 'timestamp']`: materialize now (at the given
/// time instead of the current one, for backfills and reproducible tests).
#[derive(Debug, Clone, PartialEq)]
pub struct RefreshOnline {
    pub name: String,
    pub as_of: Option<String>,
}
