//! The monitoring records applied to the state: definitions, claims, runs (and the alert
//! lifecycle they drive: see `registry::monitor`), and delivery attempts.

use super::monitor::*;
use super::{Change, ChangeRecord, RegistryState};
use crate::error::{ErrorKind, FStoreError};

impl RegistryState {
    /// The alert channel called `name`, or NotFound.
    pub fn channel(&self, name: &str) -> Result<&AlertChannel, FStoreError> {
        self.alert_channels
            .get(name)
            .ok_or_else(|| FStoreError::not_found(format!("alert channel '{name}' not found")))
    }

    /// The monitor called `name`, or NotFound.
    pub fn monitor(&self, name: &str) -> Result<&Monitor, FStoreError> {
        self.monitors
            .get(name)
            .ok_or_else(|| FStoreError::not_found(format!("monitor '{name}' not found")))
    }

    fn delivery_mut(&mut self, id: &str, channel: &str) -> Option<&mut Delivery> {
        self.notifications
            .get_mut(id)?
            .deliveries
            .iter_mut()
            .find(|d| d.channel == channel)
    }

    fn delivery(&self, id: &str, channel: &str) -> Result<&Delivery, FStoreError> {
        self.notifications
            .get(id)
            .and_then(|n| n.deliveries.iter().find(|d| d.channel == channel))
            .ok_or_else(|| {
                FStoreError::not_found(format!("notification {id} to '{channel}' not found"))
            })
    }

    /// Checks a monitoring change (see [`RegistryState::check`]).
    pub(super) fn check_monitoring(&self, change: &Change) -> Result<(), FStoreError> {
        match change {
            Change::CreateAlertChannel { channel, replace } => {
                if self.alert_channels.contains_key(&channel.name) && !replace {
                    return Err(FStoreError::already_exists(format!(
                        "alert channel '{}' already exists",
                        channel.name
                    )));
                }
                Ok(())
            }
            Change::DropAlertChannel { name } => {
                self.channel(name)?;
                if let Some(m) = self.monitors.values().find(|m| m.channels.contains(name)) {
                    return Err(FStoreError::invalid(format!(
                        "cannot drop alert channel '{name}': monitor '{}' alerts to it (drop or replace the monitor first)",
                        m.name
                    )));
                }
                Ok(())
            }
            Change::CreateMonitor { monitor, replace } => {
                if self.monitors.contains_key(&monitor.name) && !replace {
                    return Err(FStoreError::already_exists(format!(
                        "monitor '{}' already exists",
                        monitor.name
                    )));
                }
                for c in &monitor.channels {
                    self.channel(c)?;
                }
                match &monitor.target {
                    MonitorTarget::FeatureSet { name, version } => {
                        let reference = match version {
                            Some(v) => format!("{name}@{v}"),
                            None => name.clone(),
                        };
                        self.feature_set(&reference)?;
                    }
                    MonitorTarget::FeatureGroup { name } => {
                        self.group(name)?;
                    }
                }
                Ok(())
            }
            Change::DropMonitor { name } | Change::AlterMonitor { name, .. } => {
                self.monitor(name).map(|_| ())
            }
            Change::ClaimRun { job, due, .. } => match self.claims.get(job) {
                Some(c) if c.due >= *due => Err(FStoreError::new(
                    ErrorKind::Conflict,
                    format!(
                        "{job}: the run due at {due} was claimed by server {}",
                        c.server
                    ),
                )),
                _ => Ok(()),
            },
            Change::MonitorRan(run) => self.monitor(&run.monitor).map(|_| ()),
            Change::DeliveryAttempt {
                notification,
                channel,
                attempt,
                ..
            } => {
                let d = self.delivery(notification, channel)?;
                if d.state != DeliveryState::Pending && d.state != DeliveryState::Sending
                    || d.attempts.len() as u32 + 1 != *attempt
                {
                    return Err(FStoreError::new(
                        ErrorKind::Conflict,
                        format!(
                            "notification {notification} to '{channel}': attempt {attempt} was taken"
                        ),
                    ));
                }
                Ok(())
            }
            Change::DeliveryResult {
                notification,
                channel,
                ..
            } => self.delivery(notification, channel).map(|_| ()),
            _ => Ok(()),
        }
    }

    /// Applies a monitoring change; returns its history line (action, kind, name).
    pub(super) fn apply_monitoring(
        &mut self,
        rec: &ChangeRecord,
    ) -> (&'static str, &'static str, String) {
        match &rec.change {
            Change::CreateAlertChannel { channel, .. } => {
                let mut c = channel.clone();
                c.owner = rec.principal.clone();
                c.created_at = rec.committed_at;
                self.alert_channels.insert(c.name.clone(), c);
                (
                    "CREATE ALERT CHANNEL",
                    "alert_channel",
                    channel.name.clone(),
                )
            }
            Change::DropAlertChannel { name } => {
                self.alert_channels.remove(name);
                // Nothing can be sent to it any more.
                for n in self.notifications.values_mut() {
                    n.deliveries.retain(|d| &d.channel != name);
                }
                ("DROP ALERT CHANNEL", "alert_channel", name.clone())
            }
            Change::CreateMonitor { monitor, .. } => {
                let mut m = monitor.clone();
                m.owner = rec.principal.clone();
                m.created_at = rec.committed_at;
                // A replaced monitor starts again: its schedule, and its alerts (the metrics
                // that opened them may be gone; the new definition re-opens what still holds).
                self.claims.remove(&monitor_job(&m.name));
                self.alerts.retain(|_, a| a.monitor != m.name);
                self.notifications
                    .retain(|_, n| n.monitor != m.name || !n.is_pending());
                self.monitors.insert(m.name.clone(), m);
                ("CREATE MONITOR", "monitor", monitor.name.clone())
            }
            Change::DropMonitor { name } => {
                self.monitors.remove(name);
                self.monitor_runs.remove(name);
                self.claims.remove(&monitor_job(name));
                self.alerts.retain(|_, a| a.monitor != *name);
                self.notifications.retain(|_, n| n.monitor != *name);
                ("DROP MONITOR", "monitor", name.clone())
            }
            Change::AlterMonitor { name, paused } => {
                if let Some(m) = self.monitors.get_mut(name) {
                    m.paused = *paused;
                }
                let action = if *paused {
                    "PAUSE MONITOR"
                } else {
                    "RESUME MONITOR"
                };
                (action, "monitor", name.clone())
            }
            Change::ClaimRun { job, due, server } => {
                self.claims.insert(
                    job.clone(),
                    Claim {
                        due: *due,
                        server: server.clone(),
                        at: rec.committed_at,
                    },
                );
                ("CLAIM RUN", "job", job.clone())
            }
            Change::MonitorRan(run) => {
                let mut run = run.clone();
                run.run = rec.seq;
                self.open_and_resolve(rec, &run);
                let runs = self.monitor_runs.entry(run.monitor.clone()).or_default();
                let name = format!("{}#{}", run.monitor, run.run);
                runs.push(run);
                if runs.len() > MONITOR_RUNS_KEPT {
                    runs.drain(..runs.len() - MONITOR_RUNS_KEPT);
                }
                ("RUN MONITOR", "monitor", name)
            }
            Change::DeliveryAttempt {
                notification,
                channel,
                attempt,
                server,
            } => {
                if let Some(d) = self.delivery_mut(notification, channel) {
                    d.state = DeliveryState::Sending;
                    d.attempts.push(Attempt {
                        attempt: *attempt,
                        server: server.clone(),
                        at: rec.committed_at,
                        ok: None,
                        http_status: None,
                        error: None,
                        finished: None,
                    });
                }
                (
                    "ALERT DELIVERY",
                    "alert_channel",
                    format!("{channel} {notification}"),
                )
            }
            Change::DeliveryResult {
                notification,
                channel,
                attempt,
                ok,
                http_status,
                error,
            } => {
                let created = self.notifications.get(notification).map(|n| n.created_at);
                if let Some(d) = self.delivery_mut(notification, channel) {
                    if let Some(a) = d.attempts.iter_mut().find(|a| a.attempt == *attempt) {
                        a.ok = Some(*ok);
                        a.http_status = *http_status;
                        a.error = error.clone();
                        a.finished = Some(rec.committed_at);
                    }
                    if d.state != DeliveryState::Delivered {
                        d.state = if *ok {
                            DeliveryState::Delivered
                        } else if created.is_some_and(|c| rec.committed_at - c > GIVE_UP_MICROS) {
                            DeliveryState::Failed
                        } else {
                            DeliveryState::Pending
                        };
                    }
                }
                self.trim_notifications();
                let outcome = if *ok { "delivered" } else { "failed" };
                (
                    "ALERT DELIVERY",
                    "alert_channel",
                    format!("{channel} {notification} {outcome}"),
                )
            }
            _ => ("", "", String::new()),
        }
    }

    /// The alert transitions of a run (see the module docs).
    fn open_and_resolve(&mut self, rec: &ChangeRecord, run: &MonitorRun) {
        let Some(monitor) = self.monitors.get(&run.monitor).cloned() else {
            return;
        };
        let now = rec.committed_at;
        let mut sent = 0usize;
        for r in &run.results {
            let key = alert_key(&run.monitor, &r.metric, &r.feature);
            let open = self
                .alerts
                .get(&key)
                .filter(|a| a.state == AlertState::Open)
                .cloned();
            let kind = match (r.status, &open) {
                (MetricStatus::Alert, None) => {
                    self.alerts.insert(
                        key.clone(),
                        Alert {
                            monitor: run.monitor.clone(),
                            metric: r.metric.clone(),
                            feature: r.feature.clone(),
                            state: AlertState::Open,
                            opened_at: now,
                            resolved_at: None,
                            opened_run: run.run,
                            last_run: run.run,
                            value: r.value,
                            op: r.op,
                            threshold: r.threshold,
                            last_notified: now,
                            notifications: 1,
                        },
                    );
                    Some(NotificationKind::Opened)
                }
                (MetricStatus::Alert, Some(a)) => {
                    let remind = monitor
                        .renotify
                        .as_ref()
                        .is_some_and(|every| now - a.last_notified >= every.micros);
                    if let Some(alert) = self.alerts.get_mut(&key) {
                        alert.last_run = run.run;
                        alert.value = r.value;
                        if remind {
                            alert.last_notified = now;
                            alert.notifications += 1;
                        }
                    }
                    remind.then_some(NotificationKind::Reminder)
                }
                (MetricStatus::Ok, Some(_)) => {
                    if let Some(alert) = self.alerts.get_mut(&key) {
                        alert.state = AlertState::Resolved;
                        alert.resolved_at = Some(now);
                        alert.last_run = run.run;
                        alert.value = r.value;
                        alert.last_notified = now;
                        alert.notifications += 1;
                    }
                    Some(NotificationKind::Resolved)
                }
                _ => None,
            };
            let Some(kind) = kind else { continue };
            if monitor.channels.is_empty() {
                continue;
            }
            let id = format!("{}.{sent}", rec.seq);
            sent += 1;
            self.notifications.insert(
                id.clone(),
                Notification {
                    id,
                    kind,
                    created_at: now,
                    monitor: run.monitor.clone(),
                    target: run.target.clone(),
                    run: run.run,
                    result: r.clone(),
                    window_start: run.window_start,
                    as_of: run.as_of,
                    deliveries: monitor
                        .channels
                        .iter()
                        .map(|c| Delivery {
                            channel: c.clone(),
                            state: DeliveryState::Pending,
                            attempts: vec![],
                        })
                        .collect(),
                },
            );
        }
    }

    /// Keeps every pending notification and the newest finished ones.
    fn trim_notifications(&mut self) {
        let finished: Vec<String> = self
            .notifications
            .values()
            .filter(|n| !n.is_pending())
            .map(|n| n.id.clone())
            .collect();
        if finished.len() > NOTIFICATIONS_KEPT {
            let mut by_age: Vec<(i64, String)> = finished
                .into_iter()
                .filter_map(|id| self.notifications.get(&id).map(|n| (n.created_at, id)))
                .collect();
            by_age.sort();
            let drop = by_age.len() - NOTIFICATIONS_KEPT;
            for (_, id) in by_age.into_iter().take(drop) {
                self.notifications.remove(&id);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::registry::{MetricKind, MonitorMetric, MonitorTarget, MonitorWindow, WindowLength};

    const HOUR: i64 = 3_600_000_000;

    fn length(text: &str, micros: i64) -> WindowLength {
        WindowLength {
            text: text.into(),
            micros,
        }
    }

    fn commit(s: &mut RegistryState, at: i64, change: Change) {
        let rec = ChangeRecord {
            seq: s.seq + 1,
            committed_at: at,
            principal: "t".into(),
            statement: String::new(),
            change,
        };
        s.check(&rec.change).expect("valid change");
        s.apply(&rec).expect("applies");
    }

    fn ran(value: f64, threshold: f64) -> Change {
        let status = if value > threshold {
            MetricStatus::Alert
        } else {
            MetricStatus::Ok
        };
        Change::MonitorRan(MonitorRun {
            monitor: "m".into(),
            run: 0,
            trigger: "run".into(),
            target: "g".into(),
            as_of: 0,
            window_start: None,
            started: 0,
            finished: 0,
            rows: 10,
            results: vec![MetricResult {
                metric: "missing_values".into(),
                feature: "g.x".into(),
                value: Some(value),
                op: Comparison::Gt,
                threshold,
                status,
                note: None,
                query: None,
            }],
            error: None,
            server: "s".into(),
        })
    }

    fn kinds(s: &RegistryState) -> Vec<NotificationKind> {
        let mut n: Vec<_> = s.notifications.values().collect();
        n.sort_by_key(|n| n.created_at);
        n.iter().map(|n| n.kind).collect()
    }

    /// Opened once, reminded only after RENOTIFY EVERY, resolved once; a delivery attempt is
    /// claimed once per number; a period is claimed once.
    #[test]
    fn alert_lifecycle_reminders_claims_and_attempts() {
        let mut s = RegistryState::default();
        let channel = AlertChannel {
            name: "c".into(),
            kind: ChannelKind::Webhook,
            url: "http://127.0.0.1:1/x".into(),
            headers: vec![],
            rate_per_second: 1.0,
            owner: String::new(),
            created_at: 0,
        };
        commit(
            &mut s,
            0,
            Change::CreateAlertChannel {
                channel,
                replace: false,
            },
        );
        s.relations.clear();
        let monitor = Monitor {
            name: "m".into(),
            target: MonitorTarget::FeatureGroup { name: "g".into() },
            every: length("1 hour", HOUR),
            window: MonitorWindow::All,
            metrics: vec![MonitorMetric {
                kind: MetricKind::MissingValues,
                feature: None,
                op: Comparison::Gt,
                threshold: 0.1,
                threshold_text: "0.1".into(),
            }],
            channels: vec!["c".into()],
            renotify: Some(length("6 hours", 6 * HOUR)),
            paused: false,
            owner: String::new(),
            created_at: 0,
        };
        // The target must exist for CREATE MONITOR: apply without the check.
        let rec = ChangeRecord {
            seq: s.seq + 1,
            committed_at: 0,
            principal: "t".into(),
            statement: String::new(),
            change: Change::CreateMonitor {
                monitor,
                replace: false,
            },
        };
        s.apply(&rec).expect("applies");

        commit(&mut s, HOUR, ran(0.5, 0.1));
        commit(&mut s, 2 * HOUR, ran(0.6, 0.1));
        assert_eq!(kinds(&s), vec![NotificationKind::Opened]);
        commit(&mut s, 7 * HOUR, ran(0.6, 0.1));
        assert_eq!(
            kinds(&s),
            vec![NotificationKind::Opened, NotificationKind::Reminder]
        );
        commit(&mut s, 8 * HOUR, ran(0.6, 0.1));
        commit(&mut s, 9 * HOUR, ran(0.0, 0.1));
        commit(&mut s, 10 * HOUR, ran(0.0, 0.1));
        assert_eq!(
            kinds(&s),
            vec![
                NotificationKind::Opened,
                NotificationKind::Reminder,
                NotificationKind::Resolved
            ]
        );
        let alert = s.alerts.values().next().expect("one alert");
        assert_eq!(
            (alert.state, alert.notifications),
            (AlertState::Resolved, 3)
        );

        // Attempt 1 is taken once; a failure makes it pending; attempt 2 follows.
        let id = s
            .notifications
            .keys()
            .next()
            .expect("a notification")
            .clone();
        let attempt = |n: u32| Change::DeliveryAttempt {
            notification: id.clone(),
            channel: "c".into(),
            attempt: n,
            server: "a".into(),
        };
        commit(&mut s, 11 * HOUR, attempt(1));
        assert!(s.check(&attempt(1)).is_err());
        assert!(s.check(&attempt(3)).is_err());
        let result = |n: u32, ok: bool| Change::DeliveryResult {
            notification: id.clone(),
            channel: "c".into(),
            attempt: n,
            ok,
            http_status: Some(if ok { 200 } else { 503 }),
            error: None,
        };
        commit(&mut s, 11 * HOUR, result(1, false));
        commit(&mut s, 11 * HOUR, attempt(2));
        commit(&mut s, 11 * HOUR, result(2, true));
        assert!(!s.notifications[&id].is_pending());
        assert!(
            s.check(&attempt(3)).is_err(),
            "a delivered message is never sent again"
        );

        // A period is claimed once; a later one may be claimed.
        let claim = |due: i64, server: &str| Change::ClaimRun {
            job: "monitor:m".into(),
            due,
            server: server.into(),
        };
        commit(&mut s, 12 * HOUR, claim(12 * HOUR, "a"));
        assert!(s.check(&claim(12 * HOUR, "b")).is_err());
        assert!(s.check(&claim(13 * HOUR, "b")).is_ok());
    }

    #[test]
    fn missed_periods_are_caught_up_once() {
        assert_eq!(due_at(0, 10, 9), None);
        assert_eq!(due_at(0, 10, 10), Some(10));
        assert_eq!(due_at(0, 10, 95), Some(90));
        assert_eq!(due_at(90, 10, 99), None);
    }
}
