//! A timeout that is cheap to push back: moving the deadline is a plain store, and the runtime's
//! timer is only touched when it first arms, fires early (then re-arms to the later deadline) or
//! must fire sooner. Per-request timeouts on keep-alive connections would otherwise insert and
//! remove a timer-wheel entry for every request.

use std::pin::Pin;
use std::task::{Context, Poll};
use tokio::time::{Instant, Sleep};

#[derive(Debug, Default)]
pub struct LazyTimer {
    sleep: Option<Pin<Box<Sleep>>>,
    deadline: Option<Instant>,
}

impl LazyTimer {
    pub fn new() -> Self {
        Self::default()
    }

    /// The instant after which [`poll_expired`](Self::poll_expired) resolves.
    pub fn set(&mut self, deadline: Instant) {
        self.deadline = Some(deadline);
    }

    /// Ready once the current deadline has passed; registers for a wake-up otherwise.
    pub fn poll_expired(&mut self, cx: &mut Context<'_>) -> Poll<()> {
        let Some(deadline) = self.deadline else {
            return Poll::Pending;
        };
        let sleep = self
            .sleep
            .get_or_insert_with(|| Box::pin(tokio::time::sleep_until(deadline)));
        loop {
            if sleep.deadline() > deadline {
                // The deadline moved earlier: the timer must fire sooner.
                sleep.as_mut().reset(deadline);
            }
            match sleep.as_mut().poll(cx) {
                Poll::Pending => return Poll::Pending,
                Poll::Ready(()) if Instant::now() >= deadline => return Poll::Ready(()),
                // Fired for an older, earlier deadline: wait for the current one.
                Poll::Ready(()) => sleep.as_mut().reset(deadline),
            }
        }
    }
}

use std::future::Future;

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    #[tokio::test(start_paused = true)]
    async fn fires_at_the_latest_deadline() {
        let mut t = LazyTimer::new();
        let start = Instant::now();
        t.set(start + Duration::from_millis(100));
        let expired = std::future::poll_fn(|cx| {
            if Instant::now() >= start + Duration::from_millis(50) {
                // Push the deadline back while waiting, as a new request would.
                t.set(start + Duration::from_millis(300));
            }
            t.poll_expired(cx)
        });
        tokio::time::timeout(Duration::from_secs(5), expired)
            .await
            .unwrap();
        assert!(Instant::now() >= start + Duration::from_millis(300));
    }
}
