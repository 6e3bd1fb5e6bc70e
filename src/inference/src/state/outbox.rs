//! Notifications on their way out: the flap-control state (which alerts are notified as
//! firing), the notices the forecast loop made and the notify service has not spooled yet,
//! and per-receiver counters for `/metrics`.

use nordiq_core::assess::Assessed;
use nordiq_core::config::Config;
use nordiq_core::notify::{observations, Notice, Notifier};
use std::sync::atomic::AtomicU64;
use std::sync::{Arc, Mutex};
use tokio::sync::Notify;

#[derive(Default)]
pub struct Outbox {
    pub flap: Mutex<Notifier>,
    queue: Mutex<Vec<Notice>>,
    /// Wakes the notify service when notices are queued.
    pub wake: Notify,
    /// One entry per receiver, in config order.
    pub receivers: Mutex<Vec<Arc<ReceiverStats>>>,
}

/// What one receiver was sent.
#[derive(Debug, Default)]
pub struct ReceiverStats {
    /// `alertmanager` or `webhook`.
    pub kind: &'static str,
    /// The URL (Alertmanager) or the webhook's name.
    pub name: String,
    pub delivered: AtomicU64,
    pub failed_attempts: AtomicU64,
    /// Refused for good (4xx) or dropped by the spool bound.
    pub dropped: AtomicU64,
    /// Waiting in the spool now.
    pub pending: AtomicU64,
}

impl Outbox {
    /// One refresh's assessments through flap control; the notices it makes are queued
    /// for the notify service. Nothing is built or tracked while no receiver is configured.
    pub fn observe(&self, config: &Config, now_ms: i64, assessed: &[Assessed]) {
        if !config.notify.any_receiver() {
            return;
        }
        let observations = observations(config, assessed);
        let notices = self.flap.lock().unwrap_or_else(|p| p.into_inner()).observe(
            &config.notify,
            now_ms,
            observations,
        );
        if notices.is_empty() {
            return;
        }
        self.queue
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .extend(notices);
        self.wake.notify_one();
    }

    /// The queued notices, oldest first, leaving the queue empty.
    pub fn take(&self) -> Vec<Notice> {
        std::mem::take(&mut *self.queue.lock().unwrap_or_else(|p| p.into_inner()))
    }
}
