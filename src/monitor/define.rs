//! Turns parsed monitoring statements into registry definitions, checking every name,
//! metric, interval and threshold (the errors of `CREATE MONITOR` and `CREATE ALERT
//! CHANNEL`), and resolves a monitor's target at run time.

use arrow_schema::DataType;
use datafusion::error::Result;

use super::statements::{
    CreateChannel, CreateMonitor, MetricArg, MetricSpec, Threshold, WindowSpec,
};
use crate::error::FStoreError;
use crate::registry::{
    AlertChannel, ChannelKind, Comparison, FeatureGroup, MetricKind, Monitor, MonitorMetric,
    MonitorTarget, MonitorWindow, RegistryState, WindowLength,
};

/// The shortest `EVERY` of a monitor (each run is a registry record).
pub const MIN_EVERY_MICROS: i64 = 1_000_000;
/// Drift methods and the names they may be written as.
const METHODS: &[(&str, &str)] = &[
    ("ks", "ks_test"),
    ("ks_test", "ks_test"),
    ("psi", "psi"),
    ("chi2", "chi2"),
    ("wasserstein", "wasserstein"),
];
const METRICS: &str =
    "missing_values, drift, psi, freshness, row_count, expectations_failed, online_staleness";

fn invalid(monitor: &str, message: String) -> datafusion::error::DataFusionError {
    FStoreError::invalid(format!("monitor '{monitor}': {message}")).into()
}

/// `CREATE ALERT CHANNEL`.
pub fn channel(c: &CreateChannel) -> Result<AlertChannel> {
    let what = format!("alert channel '{}'", c.name);
    let kind = match c.kind.as_str() {
        "slack" => ChannelKind::Slack,
        "webhook" => ChannelKind::Webhook,
        other => {
            return Err(FStoreError::invalid(format!(
                "{what}: unknown type '{other}'; types: slack, webhook"
            ))
            .into());
        }
    };
    match url::Url::parse(&c.url) {
        Ok(u) if (u.scheme() == "https" || u.scheme() == "http") && u.has_host() => {}
        _ => {
            return Err(FStoreError::invalid(format!(
                "{what}: the URL must be an http:// or https:// address"
            ))
            .into());
        }
    }
    for (name, _) in &c.headers {
        let valid = !name.is_empty()
            && name
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || b"-_".contains(&b));
        if !valid {
            return Err(
                FStoreError::invalid(format!("{what}: '{name}' is not a header name")).into(),
            );
        }
    }
    let rate = match &c.rate {
        None => match kind {
            ChannelKind::Slack => 1.0,
            ChannelKind::Webhook => 10.0,
        },
        Some(r) => match r.parse::<f64>() {
            Ok(x) if x > 0.0 && x <= 1000.0 => x,
            _ => {
                return Err(FStoreError::invalid(format!(
                    "{what}: RATE must be between 0 and 1000 messages per second, got {r}"
                ))
                .into());
            }
        },
    };
    Ok(AlertChannel {
        name: c.name.clone(),
        kind,
        url: c.url.clone(),
        headers: c.headers.clone(),
        rate_per_second: rate,
        owner: String::new(),
        created_at: 0,
    })
}

fn interval(monitor: &str, text: &str, what: &str) -> Result<WindowLength> {
    crate::features::duration_micros(text, what)
        .map_err(|e| invalid(monitor, crate::error::user_message(&e)))
}

/// What a monitor reads at one run: its groups and the features of each.
#[derive(Debug, Clone)]
pub struct Target {
    /// `set@version` or the group's name.
    pub label: String,
    /// The set and version (None for a group).
    pub set: Option<(String, u64)>,
    pub groups: Vec<(FeatureGroup, Vec<String>)>,
}

impl Target {
    /// Resolves a monitor's target in `state` (a set without a version: its latest).
    pub fn resolve(state: &RegistryState, target: &MonitorTarget) -> Result<Target> {
        match target {
            MonitorTarget::FeatureSet { name, version } => {
                let reference = match version {
                    Some(v) => format!("{name}@{v}"),
                    None => name.clone(),
                };
                let set = state.feature_set(&reference)?;
                let mut groups: Vec<(FeatureGroup, Vec<String>)> = vec![];
                for r in &set.features {
                    let Some(pinned) = set.groups.get(&r.group) else {
                        continue;
                    };
                    match groups.iter_mut().find(|(g, _)| g.name == r.group) {
                        Some((_, fs)) => fs.push(r.feature.clone()),
                        None => groups.push((pinned.def.clone(), vec![r.feature.clone()])),
                    }
                }
                Ok(Target {
                    label: format!("{}@{}", set.name, set.version),
                    set: Some((set.name.clone(), set.version)),
                    groups,
                })
            }
            MonitorTarget::FeatureGroup { name } => {
                let g = state.group(name)?.clone();
                let features = g.feature_names().iter().map(|s| s.to_string()).collect();
                Ok(Target {
                    label: name.clone(),
                    set: None,
                    groups: vec![(g, features)],
                })
            }
        }
    }

    /// `feature` or `group.feature` → (group, feature): None when the target has no such
    /// feature, an error when a bare name is in several of its groups.
    pub fn find(&self, name: &str) -> Result<Option<(String, String)>> {
        let (group, feature) = match name.split_once('.') {
            Some((g, f)) => (Some(g), f),
            None => (None, name),
        };
        let found: Vec<(String, String)> = self
            .groups
            .iter()
            .filter(|(g, fs)| group.is_none_or(|x| x == g.name) && fs.iter().any(|f| f == feature))
            .map(|(g, _)| (g.name.clone(), feature.to_string()))
            .collect();
        if found.len() > 1 {
            let groups: Vec<&str> = found.iter().map(|(g, _)| g.as_str()).collect();
            return Err(FStoreError::invalid(format!(
                "feature '{name}' is ambiguous: it is in feature groups {}; write group.feature",
                groups.join(", ")
            ))
            .into());
        }
        Ok(found.into_iter().next())
    }

    /// The data type of a feature of the target.
    pub fn data_type(&self, group: &str, feature: &str) -> Option<DataType> {
        self.groups
            .iter()
            .find(|(g, _)| g.name == group)
            .and_then(|(g, _)| g.schema.field_with_name(feature).ok())
            .map(|f| f.data_type().clone())
    }
}

/// `CREATE MONITOR`.
pub fn monitor(c: &CreateMonitor, state: &RegistryState) -> Result<Monitor> {
    let m = c.name.as_str();
    let target = if c.on_set {
        let (name, version) = crate::registry::parse_set_ref(&c.target);
        MonitorTarget::FeatureSet {
            name: name.to_string(),
            version,
        }
    } else {
        MonitorTarget::FeatureGroup {
            name: c.target.clone(),
        }
    };
    let resolved =
        Target::resolve(state, &target).map_err(|e| invalid(m, crate::error::user_message(&e)))?;
    let every = interval(m, &c.every, "EVERY")?;
    if every.micros < MIN_EVERY_MICROS {
        return Err(invalid(
            m,
            format!(
                "EVERY '{}' is shorter than the minimum of 1 second",
                c.every
            ),
        ));
    }
    let window = match &c.window {
        WindowSpec::All => MonitorWindow::All,
        WindowSpec::SinceLastRun => MonitorWindow::SinceLastRun,
        WindowSpec::Last(t) => MonitorWindow::Last {
            length: interval(m, t, "WINDOW")?,
        },
    };
    let renotify = c
        .renotify
        .as_deref()
        .map(|t| interval(m, t, "RENOTIFY EVERY"))
        .transpose()?;
    for ch in &c.channels {
        state
            .channel(ch)
            .map_err(|e| invalid(m, format!("{} (CREATE ALERT CHANNEL {ch} …)", e.message)))?;
    }
    let mut metrics: Vec<MonitorMetric> = vec![];
    for spec in &c.metrics {
        let metric = metric(m, spec, &resolved, state)?;
        if metrics
            .iter()
            .any(|x| x.kind == metric.kind && x.feature == metric.feature)
        {
            return Err(invalid(
                m,
                format!("metric {} is given twice", metric.to_sql()),
            ));
        }
        // One threshold per metric and feature: a metric of every feature and one of a
        // named feature would measure the same value twice (and share one alert).
        if let Some(x) = metrics
            .iter()
            .find(|x| x.kind == metric.kind && (x.feature.is_none() || metric.feature.is_none()))
        {
            return Err(invalid(
                m,
                format!(
                    "metrics {} and {} overlap (one covers every feature); give each feature one threshold",
                    x.to_sql(),
                    metric.to_sql()
                ),
            ));
        }
        metrics.push(metric);
    }
    Ok(Monitor {
        name: c.name.clone(),
        target,
        every,
        window,
        metrics,
        channels: c.channels.clone(),
        renotify,
        paused: false,
        owner: String::new(),
        created_at: 0,
    })
}

fn metric(
    m: &str,
    spec: &MetricSpec,
    target: &Target,
    state: &RegistryState,
) -> Result<MonitorMetric> {
    let name = spec.name.as_str();
    let mut feature: Option<String> = None;
    let mut method: Option<String> = None;
    for a in &spec.args {
        match a {
            MetricArg::Feature(f) if feature.is_none() => feature = Some(f.clone()),
            MetricArg::Text(t) if method.is_none() && name == "drift" => method = Some(t.clone()),
            _ => {
                return Err(invalid(
                    m,
                    format!("{name}: unexpected argument; write {}", usage(name)),
                ));
            }
        }
    }
    let kind = match name {
        "missing_values" => MetricKind::MissingValues,
        "drift" | "psi" => {
            let method = if name == "psi" {
                "psi".to_string()
            } else {
                let written = method.unwrap_or_else(|| "ks_test".into());
                METHODS
                    .iter()
                    .find(|(alias, _)| *alias == written)
                    .map(|(_, m)| m.to_string())
                    .ok_or_else(|| {
                        invalid(
                            m,
                            format!("drift: unknown method '{written}'; methods: ks, ks_test, psi, chi2, wasserstein"),
                        )
                    })?
            };
            MetricKind::Drift { method }
        }
        "freshness" => MetricKind::Freshness,
        "row_count" => MetricKind::RowCount,
        "expectations_failed" => MetricKind::ExpectationsFailed,
        "online_staleness" => MetricKind::OnlineStaleness,
        other => {
            return Err(invalid(
                m,
                format!("unknown metric '{other}'; metrics: {METRICS}"),
            ));
        }
    };
    let per_feature = matches!(kind, MetricKind::MissingValues | MetricKind::Drift { .. });
    if feature.is_some() && !per_feature {
        return Err(invalid(
            m,
            format!("{name} takes no feature; write {}", usage(name)),
        ));
    }
    // The feature, resolved to `group.feature`.
    let resolved = match &feature {
        None => None,
        Some(f) => Some(
            target
                .find(f)
                .map_err(|e| invalid(m, format!("{name}: {}", crate::error::user_message(&e))))?
                .ok_or_else(|| {
                    FStoreError::not_found(format!(
                        "monitor '{m}': {name}: '{f}' is not a feature of {}",
                        target.label
                    ))
                })?,
        ),
    };
    if let MetricKind::Drift { method } = &kind {
        let Some((set, version)) = &target.set else {
            return Err(invalid(
                m,
                format!(
                    "{name} compares with a feature set's drift baseline; monitor a feature set (ON FEATURE SET …)"
                ),
            ));
        };
        let key = format!("{set}@{version}");
        let Some(baseline) = state.baselines.get(&key) else {
            return Err(invalid(
                m,
                format!(
                    "{name}: feature set '{set}' version {version} has no drift baseline (SET DRIFT BASELINE FOR FEATURE SET {set} FROM '…' TO '…')"
                ),
            ));
        };
        if let Some((g, f)) = &resolved {
            if !baseline
                .features
                .iter()
                .any(|b| &b.group == g && &b.feature == f)
            {
                return Err(invalid(
                    m,
                    format!("{name}: the baseline of {key} has no feature {g}.{f}"),
                ));
            }
            let numeric = target.data_type(g, f).is_some_and(|t| t.is_numeric());
            if !numeric && method != "chi2" && method != "psi" {
                return Err(invalid(
                    m,
                    format!(
                        "{name}: {g}.{f} is not numeric; {method} needs a numeric feature (use chi2 or psi)"
                    ),
                ));
            }
        }
    }
    if matches!(kind, MetricKind::OnlineStaleness) && target.set.is_none() {
        return Err(invalid(
            m,
            "online_staleness is a metric of an online feature set (ON FEATURE SET …)".into(),
        ));
    }
    let op = match spec.op.as_str() {
        ">" => Comparison::Gt,
        ">=" => Comparison::Ge,
        "<" => Comparison::Lt,
        _ => Comparison::Le,
    };
    let duration = matches!(kind, MetricKind::Freshness | MetricKind::OnlineStaleness);
    let threshold = match (&spec.threshold, duration) {
        (Threshold::Number(n), _) => n
            .parse::<f64>()
            .ok()
            .filter(|x| x.is_finite())
            .ok_or_else(|| invalid(m, format!("{name}: threshold {n} is not a number")))?,
        (Threshold::Text(t), true) => interval(m, t, name)?.micros as f64 / 1e6,
        (Threshold::Text(t), false) => {
            return Err(invalid(
                m,
                format!("{name}: the threshold must be a number, got '{t}'"),
            ));
        }
    };
    if matches!(kind, MetricKind::MissingValues) && !(0.0..=1.0).contains(&threshold) {
        return Err(invalid(
            m,
            format!(
                "missing_values is a fraction of the rows; the threshold {threshold} is not between 0 and 1"
            ),
        ));
    }
    Ok(MonitorMetric {
        kind,
        feature: resolved.map(|(g, f)| format!("{g}.{f}")),
        op,
        threshold,
        threshold_text: spec.threshold.to_string(),
    })
}

fn usage(name: &str) -> &'static str {
    match name {
        "missing_values" => "missing_values[(feature)] > fraction",
        "drift" => "drift([feature, ]['method']) > statistic",
        "psi" => "psi[(feature)] > index",
        "freshness" => "freshness > 'interval'",
        "online_staleness" => "online_staleness > 'interval'",
        "row_count" => "row_count < n",
        _ => "expectations_failed > n",
    }
}
