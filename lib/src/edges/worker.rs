//! The background runtime of one machine (`klozeo serve`, and tests): a dispatcher that turns
//! recorded events into webhook deliveries, and a worker that runs the jobs queue kept in the
//! store. On AWS the same service calls are made by the webhook-worker function, fed by the
//! outbox table's stream and by SQS.

use std::sync::Arc;
use std::time::Duration;

use tokio::task::JoinSet;

use crate::app::App;

/// How often the dispatcher looks for new events when it was not woken.
const DISPATCH_POLL: Duration = Duration::from_millis(100);
/// How long a claimed message is hidden from other claimers; a worker that dies holding it
/// gives it back when this ends. Longer than the longest run of one message (a rescoring step,
/// `KLOZEO_JOB_STEP_SECS`, 20 s by default; a delivery attempt, 5 s).
const LEASE: Duration = Duration::from_secs(30);
/// Messages worked on at once (deliveries wait on slow targets, up to 5 s each).
const CONCURRENCY: usize = 32;
/// Tries of one message before it is dead-lettered.
const MAX_RECEIVES: u32 = 10;

/// The running background tasks; dropping it stops them.
pub struct Workers {
    tasks: JoinSet<()>,
}

impl Workers {
    /// Stops every task.
    pub fn stop(mut self) {
        self.tasks.abort_all();
    }
}

/// Starts the dispatcher and, when jobs are queued in the store, the worker.
pub fn spawn(app: Arc<App>) -> Workers {
    let mut tasks = JoinSet::new();
    tasks.spawn(dispatch_loop(app.clone()));
    if app.job_source.is_some() {
        tasks.spawn(work_loop(app));
    }
    Workers { tasks }
}

async fn dispatch_loop(app: Arc<App>) {
    loop {
        if let Err(e) = app.webhooks.dispatch_pending().await {
            tracing::warn!(error = %e, "outbox scan failed");
        }
        tokio::time::sleep(DISPATCH_POLL).await;
    }
}

async fn work_loop(app: Arc<App>) {
    let Some(queue) = app.job_source.clone() else {
        return;
    };
    let mut running: JoinSet<()> = JoinSet::new();
    loop {
        while running.try_join_next().is_some() {}
        let free = CONCURRENCY.saturating_sub(running.len()) as u32;
        let claimed = if free == 0 {
            Vec::new()
        } else {
            match queue.receive(free.min(10), LEASE).await {
                Ok(c) => c,
                Err(e) => {
                    tracing::warn!(error = %e, "could not claim jobs");
                    Vec::new()
                }
            }
        };
        let idle = claimed.is_empty();
        for c in claimed {
            let app = app.clone();
            let queue = queue.clone();
            running.spawn(async move {
                match app.jobs.run(&c.body).await {
                    Ok(()) => {}
                    Err(e) if c.receive_count >= MAX_RECEIVES => {
                        if let Err(e2) = app.jobs.give_up(&c.body, c.receive_count, &e).await {
                            tracing::warn!(error = %e2, "could not dead-letter a job");
                            return;
                        }
                    }
                    // Left claimed: it comes back when the lease ends.
                    Err(e) => {
                        tracing::warn!(error = %e, tries = c.receive_count, "job failed; will retry");
                        return;
                    }
                }
                if let Err(e) = queue.ack(&c.handle).await {
                    tracing::warn!(error = %e, "could not acknowledge a job; it will run again");
                }
            });
        }
        if idle {
            tokio::select! {
                _ = queue.wait() => {}
                Some(_) = running.join_next(), if !running.is_empty() => {}
            }
        }
    }
}
