//! Active health checks: a task per balancer on the control runtime probes its healthy
//! addresses every `healthy.interval` and its unhealthy ones every `unhealthy.interval` (a
//! zero interval skips that group), at most `concurrency` probes at a time, and feeds the
//! results to the addresses' state machines.

use super::probe::probe;
use crate::upstream::Balancer;
use std::sync::Weak;
use std::time::{Duration, Instant};
use tokio::task::JoinSet;

/// When a group of addresses is probed next (`None`: never).
fn first_run(interval: Duration, now: Instant) -> Option<Instant> {
    (!interval.is_zero()).then(|| now + interval)
}

/// Runs until the balancer is stopped or dropped.
pub(crate) async fn run(balancer: Weak<Balancer>) {
    let (healthy_every, unhealthy_every) = match balancer.upgrade() {
        Some(b) => (
            b.checks.active.healthy_interval,
            b.checks.active.unhealthy_interval,
        ),
        None => return,
    };
    let now = Instant::now();
    let mut next_healthy = first_run(healthy_every, now);
    let mut next_unhealthy = first_run(unhealthy_every, now);
    loop {
        let Some(wake) = [next_healthy, next_unhealthy].into_iter().flatten().min() else {
            return;
        };
        tokio::time::sleep_until(wake.into()).await;
        let now = Instant::now();
        let due = |next: &mut Option<Instant>, every: Duration| match next {
            Some(at) if *at <= now => {
                *next = Some(now + every);
                true
            }
            _ => false,
        };
        let healthy = due(&mut next_healthy, healthy_every);
        let unhealthy = due(&mut next_unhealthy, unhealthy_every);
        let Some(b) = balancer.upgrade() else { return };
        check(&b, healthy, unhealthy).await;
    }
}

/// Probes the addresses of the groups that are due.
async fn check(b: &Balancer, healthy: bool, unhealthy: bool) {
    let entries = b.entries();
    let active = &b.checks.active;
    let mut probes = JoinSet::new();
    for a in entries.addresses.iter().filter(|a| a.weight > 0) {
        let available = a.state.health.is_available();
        if !((available && healthy) || (!available && unhealthy)) {
            continue;
        }
        while probes.len() >= active.concurrency {
            probes.join_next().await;
        }
        let (addr, state) = (a.addr, a.state.clone());
        let host = b.probe_host(a.target);
        let active = active.clone();
        let upstream = b.name.clone();
        probes.spawn(async move {
            let outcome = probe(addr, &host, &active).await;
            if let Some(up) = state.health.report(&active.limits, outcome) {
                tracing::warn!(
                    upstream,
                    address = %addr,
                    ?outcome,
                    "[healthchecks] active check: address is {}",
                    if up { "healthy" } else { "unhealthy" }
                );
            }
        });
    }
    while probes.join_next().await.is_some() {}
}
