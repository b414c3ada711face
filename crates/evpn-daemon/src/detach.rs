//! Run a state-changing operation to completion even if its caller goes away.
//!
//! tonic drops a handler's future when the client disconnects or its
//! deadline passes. For a write that means stopping between two steps: a
//! VPP interface that already has the group's vMAC but no addresses, and a
//! record that never learnt of it. Handlers that change state therefore wrap
//! the change in [`to_completion`]: it runs in the handler's task while the
//! caller waits, and is handed to a task of its own if the handler is dropped
//! first; either way it finishes (including its own rollback on failure) and
//! the next operation finds a state the record describes.
//!
//! Limits: a write still running when the process stops (after the
//! shutdown drain, or `kill -9`) is cut; evpnd's start-up reconcile and
//! evpnr's resync repair what it left, as after any crash. In evpnr the
//! wrapped operation includes waiting for the group's lock, so a client that
//! gave up while queued behind a slow move still gets its operation done
//! later (the events and the registry show it).
use std::{
    future::Future,
    marker::PhantomData,
    pin::Pin,
    task::{Context, Poll},
};

use evpn_model::Error;

/// Wait for `op`; if the returned future is dropped before `op` is done,
/// `op` goes on as a task of its own and runs to its end (its result is then
/// only in its own logs and events).
///
/// While the caller waits, `op` is polled in the caller's task: no extra task
/// and no cross-thread wake-up on the latency path of a bind or a move.
/// Either way `op` keeps the audit context of the request that started it
/// (`crate::audit::layer::keep_cause`), so the calls it makes to members
/// are linked to that request's audit record.
pub fn to_completion<T, F>(op: F) -> ToCompletion<F>
where
    F: Future<Output = Result<T, Error>> + Send + 'static,
    T: Send + 'static,
{
    ToCompletion {
        op: Some(Box::pin(crate::audit::layer::keep_cause(op))),
        _op: PhantomData,
    }
}

/// The future of [`to_completion`].
#[must_use = "the operation only runs when awaited"]
pub struct ToCompletion<F: Future + Send + 'static>
where
    F::Output: Send + 'static,
{
    op: Option<Pin<Box<dyn Future<Output = F::Output> + Send + 'static>>>,
    _op: PhantomData<fn() -> F>,
}

impl<F: Future + Send + 'static> Future for ToCompletion<F>
where
    F::Output: Send + 'static,
{
    type Output = F::Output;

    fn poll(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<F::Output> {
        let Some(op) = self.op.as_mut() else {
            panic!("ToCompletion polled after it completed");
        };
        let out = op.as_mut().poll(cx);
        if out.is_ready() {
            self.op = None;
        }
        out
    }
}

impl<F: Future + Send + 'static> Drop for ToCompletion<F>
where
    F::Output: Send + 'static,
{
    fn drop(&mut self) {
        let Some(op) = self.op.take() else { return };
        match tokio::runtime::Handle::try_current() {
            Ok(rt) => {
                tracing::debug!("caller gone; the operation runs to its end");
                drop(rt.spawn(op));
            }
            // Only outside a runtime (never in the daemons): nothing can run it.
            Err(_) => tracing::error!("caller gone outside a runtime; operation abandoned"),
        }
    }
}

#[cfg(test)]
mod tests {
    use std::{
        sync::{
            Arc,
            atomic::{AtomicUsize, Ordering},
        },
        time::Duration,
    };

    use super::*;

    #[tokio::test]
    async fn dropped_caller_does_not_cut_the_operation() {
        let steps = Arc::new(AtomicUsize::new(0));
        let (s, done) = (steps.clone(), Arc::new(tokio::sync::Notify::new()));
        let gate = Arc::new(tokio::sync::Notify::new());
        let (d, g) = (done.clone(), gate.clone());
        let caller = to_completion(async move {
            s.fetch_add(1, Ordering::SeqCst);
            // The second step waits until the caller has given up.
            g.notified().await;
            s.fetch_add(1, Ordering::SeqCst);
            d.notify_one();
            Ok::<_, Error>(())
        });
        // The caller gives up during the first step (a client deadline).
        assert!(
            tokio::time::timeout(Duration::from_millis(5), caller)
                .await
                .is_err()
        );
        gate.notify_one();
        done.notified().await;
        assert_eq!(steps.load(Ordering::SeqCst), 2);
    }

    #[tokio::test]
    async fn results_come_back() {
        assert_eq!(to_completion(async { Ok::<_, Error>(7) }).await.unwrap(), 7);
        let e = to_completion(async { Err::<(), _>(Error::invalid("f", "bad")) })
            .await
            .unwrap_err();
        assert!(e.to_string().contains("bad"), "{e}");
    }

    #[tokio::test]
    async fn the_operation_runs_in_the_callers_task() {
        // Nothing spawned while the caller waits: a task-local is visible.
        tokio::task_local! { static K: u8; }
        let v = K
            .scope(9, to_completion(async { Ok::<_, Error>(K.get()) }))
            .await
            .unwrap();
        assert_eq!(v, 9);
    }
}
