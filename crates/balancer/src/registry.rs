//! What outlives config snapshots: the DNS resolver and cache, the state of every address
//! (health, connections, latency) keyed by upstream, target and address so that a rebuilt
//! balancer finds its addresses as they were, and the start and stop of balancers' background
//! work when snapshots are swapped.

use crate::address::AddressState;
use crate::dns::Dns;
use crate::upstream::Balancer;
use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex, PoisonError, Weak};
use uuid::Uuid;

#[derive(Debug, Clone, PartialEq, Eq, Hash)]
struct StateKey {
    upstream: Uuid,
    target: String,
    addr: SocketAddr,
}

pub struct Registry {
    dns: Dns,
    /// Weak: an address no balancer uses any more is forgotten.
    states: Mutex<HashMap<StateKey, Weak<AddressState>>>,
}

impl std::fmt::Debug for Registry {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Registry").finish_non_exhaustive()
    }
}

impl Registry {
    pub fn new(dns: Dns) -> Arc<Registry> {
        Arc::new(Registry {
            dns,
            states: Mutex::new(HashMap::new()),
        })
    }

    pub fn dns(&self) -> &Dns {
        &self.dns
    }

    /// The state of an address, the one already known when some balancer still has it.
    pub(crate) fn state(
        &self,
        upstream: Uuid,
        target: &str,
        addr: SocketAddr,
    ) -> Arc<AddressState> {
        let key = StateKey {
            upstream,
            target: target.to_string(),
            addr,
        };
        let mut states = self.states.lock().unwrap_or_else(PoisonError::into_inner);
        if let Some(s) = states.get(&key).and_then(Weak::upgrade) {
            return s;
        }
        let s = Arc::new(AddressState::default());
        states.insert(key, Arc::downgrade(&s));
        s
    }

    /// Called when a snapshot replaces another: starts the background work (DNS, health
    /// checks) of balancers `next` brings and stops that of balancers `previous` had and `next`
    /// dropped. Balancers kept as they were keep running untouched.
    pub fn switch(&self, previous: &[Arc<Balancer>], next: &[Arc<Balancer>]) {
        let kept =
            |b: &Arc<Balancer>, list: &[Arc<Balancer>]| list.iter().any(|x| Arc::ptr_eq(x, b));
        for b in next.iter().filter(|b| !kept(b, previous)) {
            b.start();
        }
        for b in previous.iter().filter(|b| !kept(b, next)) {
            b.stop();
        }
        self.states
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .retain(|_, s| s.strong_count() > 0);
    }
}
