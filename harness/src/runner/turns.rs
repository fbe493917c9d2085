//! Turns on shared peers: jobs that point at the same long-lived peer (or bind the same
//! fixed listen address) must not overlap when one of them changes or depends on the
//! peer's state — two scenarios polling and acknowledging one proxy's data at once each
//! see the other's acknowledgements. Stateless jobs share their turn.

use super::{Job, Share};
use std::collections::BTreeMap;
use std::sync::Arc;

/// One read-write lock per shared resource of a run.
#[derive(Clone, Default)]
pub(super) struct Turns(Arc<BTreeMap<String, Arc<tokio::sync::RwLock<()>>>>);

/// The locks a job holds while it runs.
pub(super) enum Turn {
    Alone(#[allow(dead_code)] tokio::sync::OwnedRwLockWriteGuard<()>),
    Together(#[allow(dead_code)] tokio::sync::OwnedRwLockReadGuard<()>),
}

impl Turns {
    pub(super) fn for_jobs(jobs: &[Job]) -> Turns {
        let map = jobs
            .iter()
            .flat_map(|j| j.share.iter().map(|s| s.key.clone()))
            .map(|k| (k, Arc::new(tokio::sync::RwLock::new(()))))
            .collect();
        Turns(Arc::new(map))
    }

    /// Wait for a turn on every shared resource, in key order (`share` is sorted), so
    /// two jobs never wait for each other.
    pub(super) async fn take(&self, share: &[Share]) -> Vec<Turn> {
        let mut held = Vec::with_capacity(share.len());
        for s in share {
            if let Some(lock) = self.0.get(&s.key) {
                held.push(if s.exclusive {
                    Turn::Alone(lock.clone().write_owned().await)
                } else {
                    Turn::Together(lock.clone().read_owned().await)
                });
            }
        }
        held
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    fn share(key: &str, exclusive: bool) -> Share {
        Share {
            key: key.into(),
            exclusive,
        }
    }

    fn turns(keys: &[&str]) -> Turns {
        Turns(Arc::new(
            keys.iter()
                .map(|k| (k.to_string(), Arc::new(tokio::sync::RwLock::new(()))))
                .collect(),
        ))
    }

    /// Whether `take` completes within a short wait.
    async fn gets_turn(t: &Turns, s: &[Share]) -> bool {
        tokio::time::timeout(Duration::from_millis(100), t.take(s))
            .await
            .is_ok()
    }

    #[tokio::test]
    async fn a_job_that_needs_the_peer_alone_waits_for_every_other_job() {
        let t = turns(&["peer a"]);
        let first = t.take(&[share("peer a", true)]).await;
        assert!(!gets_turn(&t, &[share("peer a", true)]).await);
        assert!(!gets_turn(&t, &[share("peer a", false)]).await);
        drop(first);
        assert!(gets_turn(&t, &[share("peer a", true)]).await);
    }

    #[tokio::test]
    async fn stateless_jobs_share_a_turn_and_keep_exclusive_ones_out() {
        let t = turns(&["peer a"]);
        let one = t.take(&[share("peer a", false)]).await;
        let two = t.take(&[share("peer a", false)]).await;
        assert!(!gets_turn(&t, &[share("peer a", true)]).await);
        drop((one, two));
        assert!(gets_turn(&t, &[share("peer a", true)]).await);
    }

    #[tokio::test]
    async fn different_peers_do_not_wait_for_each_other() {
        let t = turns(&["peer a", "peer b"]);
        let _a = t.take(&[share("peer a", true)]).await;
        assert!(gets_turn(&t, &[share("peer b", true)]).await);
        // A resource no job declared is not waited for.
        assert!(gets_turn(&t, &[share("listen c", true)]).await);
    }
}
