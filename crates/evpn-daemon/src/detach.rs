//! Run a state-changing operation to completion even if its caller goes away.
//!
//! tonic drops a handler's future when the client disconnects or its
//! deadline passes. For a write that means stopping between two steps: a
//! VPP interface that already has the group's vMAC but no addresses, and a
//! record that never learnt of it. Handlers that change state therefore run
//! the change as its own task and only *wait* for it; when the caller is
//! gone, the task still finishes (including its own rollback on failure) and
//! the next operation finds a state the record describes.
use std::future::Future;

use evpn_model::Error;

/// Spawn `op` and wait for it. Dropping the returned future does not cancel
/// `op`. A panic inside `op` is reported as an internal error.
pub async fn to_completion<T, F>(op: F) -> Result<T, Error>
where
    F: Future<Output = Result<T, Error>> + Send + 'static,
    T: Send + 'static,
{
    match tokio::spawn(op).await {
        Ok(r) => r,
        Err(e) => Err(Error::Internal(format!("operation task failed: {e}"))),
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
        let d = done.clone();
        let caller = to_completion(async move {
            s.fetch_add(1, Ordering::SeqCst);
            tokio::time::sleep(Duration::from_millis(20)).await;
            s.fetch_add(1, Ordering::SeqCst);
            d.notify_one();
            Ok::<_, Error>(())
        });
        // The caller gives up after the first step (a client deadline).
        assert!(
            tokio::time::timeout(Duration::from_millis(5), caller)
                .await
                .is_err()
        );
        done.notified().await;
        assert_eq!(steps.load(Ordering::SeqCst), 2);
    }

    #[tokio::test]
    async fn results_and_panics_come_back() {
        assert_eq!(to_completion(async { Ok::<_, Error>(7) }).await.unwrap(), 7);
        let e = to_completion(async { Err::<(), _>(Error::invalid("f", "bad")) })
            .await
            .unwrap_err();
        assert!(e.to_string().contains("bad"), "{e}");
        let p = to_completion(async {
            if true {
                panic!("boom");
            }
            Ok::<(), Error>(())
        })
        .await
        .unwrap_err();
        assert!(matches!(p, Error::Internal(_)), "{p:?}");
    }
}
