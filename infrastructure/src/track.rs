//! The tracking handle: start an invocation, then complete or fail it; a
//! handle dropped without either records an abandoned invocation.

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Instant;

use chrono::{DateTime, Utc};
use domain::{Invocation, InvocationId, SessionId, SkillName};
use serde_json::{Map, Value};
use tokio::sync::Notify;

use crate::{SkillMetricsStore, StoreError};

/// The `error_type` of an invocation whose handle was dropped unfinished.
pub const DROPPED_ERROR: &str = "HandleDropped";

/// Records started from `Drop`, so that [`SkillMetricsStore::flush`] can wait for them.
#[derive(Debug, Default)]
pub(crate) struct InFlight {
    count: AtomicUsize,
    idle: Notify,
}

impl InFlight {
    /// Counts one record in flight until the returned guard is dropped:
    /// after the record, or when its task is dropped unrun (a runtime
    /// shutting down, a thread that could not start), so that
    /// [`SkillMetricsStore::flush`] always returns.
    fn enter(self: &Arc<Self>) -> InFlightGuard {
        self.count.fetch_add(1, Ordering::SeqCst);
        InFlightGuard {
            in_flight: Arc::clone(self),
            attempted: false,
        }
    }
}

struct InFlightGuard {
    in_flight: Arc<InFlight>,
    /// The record was tried (its outcome is logged where it failed).
    attempted: bool,
}

impl InFlightGuard {
    /// The record ran (its failure, if any, was logged); leaves the count.
    fn attempted(mut self) {
        self.attempted = true;
    }
}

impl Drop for InFlightGuard {
    fn drop(&mut self) {
        if !self.attempted {
            tracing::warn!(
                "a dropped tracking handle's record never ran (its runtime was shutting down): \
                 the invocation is not recorded"
            );
        }
        if self.in_flight.count.fetch_sub(1, Ordering::SeqCst) == 1 {
            self.in_flight.idle.notify_waiters();
        }
    }
}

/// Builds a [`Tracking`] handle; see [`SkillMetricsStore::track`].
#[must_use = "call .start() to begin tracking"]
pub struct TrackBuilder {
    store: SkillMetricsStore,
    skill: Result<SkillName, StoreError>,
    invocation_fields: Fields,
}

#[derive(Default)]
struct Fields {
    workflow: Option<String>,
    session: Option<String>,
    project: Option<String>,
    context: Option<Map<String, Value>>,
    at: Option<DateTime<Utc>>,
}

impl TrackBuilder {
    /// The workflow path taken.
    pub fn workflow(mut self, path: impl Into<String>) -> Self {
        self.invocation_fields.workflow = Some(path.into());
        self
    }
    /// The session it belongs to.
    pub fn session(mut self, id: impl Into<String>) -> Self {
        self.invocation_fields.session = Some(id.into());
        self
    }
    /// The project it runs in.
    pub fn project(mut self, path: impl Into<String>) -> Self {
        self.invocation_fields.project = Some(path.into());
        self
    }
    /// Free-form context (a JSON object of at most 64 KiB).
    pub fn context(mut self, context: Map<String, Value>) -> Self {
        self.invocation_fields.context = Some(context);
        self
    }
    /// When it was invoked, if not now (for replaying past work).
    pub fn at(mut self, at: DateTime<Utc>) -> Self {
        self.invocation_fields.at = Some(at);
        self
    }

    /// Starts the clock.
    ///
    /// # Errors
    /// [`StoreError::Invalid`] for an invalid skill name, session id or field.
    pub fn start(self) -> Result<Tracking, StoreError> {
        let f = self.invocation_fields;
        let mut inv = Invocation::new(self.skill?, f.at.unwrap_or_else(Utc::now), false);
        inv.workflow_path = f.workflow;
        inv.session_id = f.session.map(SessionId::parse).transpose()?;
        inv.project_path = f.project;
        inv.user_context = f.context;
        inv.validate()?;
        Ok(Tracking {
            store: self.store,
            invocation: Some(inv),
            started: Instant::now(),
            duration: None,
        })
    }
}

/// A running invocation. Finish it with [`complete`](Self::complete) or
/// [`fail`](Self::fail); dropping it unfinished records it as abandoned
/// (error type [`DROPPED_ERROR`]) in the background — call
/// [`SkillMetricsStore::flush`] before shutdown to wait for such records.
pub struct Tracking {
    store: SkillMetricsStore,
    invocation: Option<Invocation>,
    started: Instant,
    duration: Option<f64>,
}

impl Tracking {
    /// The id the invocation will be recorded under.
    pub fn id(&self) -> Option<InvocationId> {
        self.invocation.as_ref().map(|i| i.id)
    }

    /// Uses `seconds` instead of the measured time (for replaying past work).
    pub fn with_duration(mut self, seconds: f64) -> Self {
        self.duration = Some(seconds);
        self
    }

    fn finish(
        &mut self,
        completed: bool,
        error: Option<String>,
        actions: Vec<String>,
    ) -> Option<Invocation> {
        let mut inv = self.invocation.take()?;
        inv.completed = completed;
        inv.error_type = error;
        inv.follow_up_actions = actions;
        inv.duration_seconds = Some(
            self.duration
                .unwrap_or_else(|| self.started.elapsed().as_secs_f64()),
        );
        Some(inv)
    }

    /// Records a completed invocation with the measured duration.
    ///
    /// # Errors
    /// As [`SkillMetricsStore::record`].
    pub async fn complete(self) -> Result<InvocationId, StoreError> {
        self.complete_with(Vec::<String>::new()).await
    }

    /// Records a completed invocation and the actions taken afterwards.
    ///
    /// # Errors
    /// As [`SkillMetricsStore::record`].
    pub async fn complete_with<S: Into<String>>(
        mut self,
        follow_ups: impl IntoIterator<Item = S>,
    ) -> Result<InvocationId, StoreError> {
        let actions = follow_ups.into_iter().map(Into::into).collect();
        let inv = self
            .finish(true, None, actions)
            .expect("a handle is finished once");
        self.store.record(inv).await
    }

    /// Records an abandoned invocation with `error_type`.
    ///
    /// # Errors
    /// As [`SkillMetricsStore::record`].
    pub async fn fail(mut self, error_type: impl Into<String>) -> Result<InvocationId, StoreError> {
        let inv = self
            .finish(false, Some(error_type.into()), Vec::new())
            .expect("a handle is finished once");
        self.store.record(inv).await
    }
}

impl Drop for Tracking {
    fn drop(&mut self) {
        let Some(inv) = self.finish(false, Some(DROPPED_ERROR.to_owned()), Vec::new()) else {
            return;
        };
        let store = self.store.clone();
        let guard = store.in_flight.enter();
        let work = async move {
            if let Err(e) = store.record(inv).await {
                tracing::warn!(error = %e, "recording a dropped tracking handle failed");
            }
            guard.attempted();
        };
        // Never block inside Drop: hand the record to the runtime, or to a
        // thread of its own outside one. If neither can run it, the future
        // is dropped unrun, its guard with it, and the loss is logged.
        match tokio::runtime::Handle::try_current() {
            Ok(handle) => {
                handle.spawn(work);
            }
            Err(_) => {
                let spawned = std::thread::Builder::new()
                    .name("skill-metrics-dropped-handle".to_owned())
                    .spawn(move || {
                        match tokio::runtime::Builder::new_current_thread()
                            .enable_all()
                            .build()
                        {
                            Ok(rt) => rt.block_on(work),
                            Err(e) => tracing::warn!(
                                error = %e,
                                "no runtime for a dropped tracking handle: its invocation is not recorded"
                            ),
                        }
                    });
                if let Err(e) = spawned {
                    tracing::warn!(
                        error = %e,
                        "no thread for a dropped tracking handle: its invocation is not recorded"
                    );
                }
            }
        }
    }
}

impl SkillMetricsStore {
    /// Starts building a tracking handle for `skill`:
    /// `store.track("crackerjack-run").workflow("daily").start()?`.
    pub fn track(&self, skill: impl Into<String>) -> TrackBuilder {
        TrackBuilder {
            store: self.clone(),
            skill: SkillName::parse(skill).map_err(StoreError::from),
            invocation_fields: Fields::default(),
        }
    }

    /// Waits until every invocation recorded on behalf of a dropped
    /// [`Tracking`] handle is written.
    pub async fn flush(&self) {
        loop {
            let notified = self.in_flight.idle.notified();
            if self.in_flight.count.load(Ordering::SeqCst) == 0 {
                return;
            }
            notified.await;
        }
    }
}
