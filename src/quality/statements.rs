//! The quality statements (`CREATE | DROP EXPECTATION`, `SET DRIFT BASELINE`), as the SQL
//! front parses them and this area executes them.

/// A value written in an expectation.
#[derive(Debug, Clone, PartialEq)]
pub enum ExpectationValue {
    /// A number, as written.
    Number(String),
    Text(String),
    Bool(bool),
    List(Vec<String>),
}

impl std::fmt::Display for ExpectationValue {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            ExpectationValue::Number(n) => f.write_str(n),
            ExpectationValue::Text(t) => write!(f, "'{t}'"),
            ExpectationValue::Bool(b) => write!(f, "{b}"),
            ExpectationValue::List(l) => write!(f, "({})", l.join(", ")),
        }
    }
}

/// `CREATE EXPECTATION ON FEATURE …`.
#[derive(Debug, Clone, PartialEq)]
pub struct CreateExpectation {
    /// `feature` or `group.feature`, as written (normalised).
    pub feature: Vec<String>,
    pub expectations: Vec<(String, ExpectationValue)>,
}

/// `DROP EXPECTATION ON FEATURE …`.
#[derive(Debug, Clone, PartialEq)]
pub struct DropExpectation {
    pub feature: Vec<String>,
    /// Empty: every expectation of the feature.
    pub names: Vec<String>,
    pub if_exists: bool,
}

/// `SET DRIFT BASELINE FOR FEATURE SET …`.
#[derive(Debug, Clone, PartialEq)]
pub struct SetDriftBaseline {
    /// `name` or `name@version`.
    pub set: String,
    pub from: String,
    pub to: String,
}
