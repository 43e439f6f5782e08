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
                ("DROP ALERT CHANNEL", "alert_channel", name.clone())
            }
            Change::CreateMonitor { monitor, .. } => {
                let mut m = monitor.clone();
                m.owner = rec.principal.clone();
                m.created_at = rec.committed_at;
                // A replaced monitor starts its schedule again.
                self.claims.remove(&monitor_job(&m.name));
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
