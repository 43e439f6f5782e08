//! The documentation sections FStore's functions appear under (in `SHOW FUNCTIONS`,
//! `information_schema.routines` and generated docs).

use datafusion::logical_expr::DocSection;

pub(crate) const TIME: DocSection = DocSection {
    include: true,
    label: "FStore Time Functions",
    description: Some("Bucketing timestamps for feature windows."),
};

pub(crate) const ENCODING: DocSection = DocSection {
    include: true,
    label: "FStore Encoding Functions",
    description: Some("Feature encoders and scalers: categorical encodings and numeric scaling."),
};

pub(crate) const STATISTICS: DocSection = DocSection {
    include: true,
    label: "FStore Statistics Functions",
    description: Some("Drift, dependence and model-quality statistics, as aggregates."),
};
