//! The hosts file (`dns_hostsfile`), read once at start: its names are answered from memory
//! with A and AAAA records that never expire, as Kong's DNS client does.

use super::{Answer, Record, RecordKind};
use std::collections::HashMap;
use std::net::IpAddr;
use std::path::Path;
use std::sync::Arc;
use std::time::{Duration, Instant};

/// How long a hosts entry stays valid (never refreshed; a reload re-reads the file).
const FOREVER: Duration = Duration::from_secs(10 * 365 * 24 * 3600);

#[derive(Debug, Default)]
pub(super) struct Hosts {
    v4: HashMap<String, Arc<Answer>>,
    v6: HashMap<String, Arc<Answer>>,
}

impl Hosts {
    /// An unreadable file gives no entries (and a warning), as an empty one would.
    pub(super) fn read(path: &Path) -> Hosts {
        match std::fs::read_to_string(path) {
            Ok(text) => Hosts::parse(&text),
            Err(e) => {
                tracing::warn!(path = %path.display(), error = %e, "cannot read dns_hostsfile");
                Hosts::default()
            }
        }
    }

    fn parse(text: &str) -> Hosts {
        let mut v4: HashMap<String, Vec<Record>> = HashMap::new();
        let mut v6: HashMap<String, Vec<Record>> = HashMap::new();
        for line in text.lines() {
            let line = line.split('#').next().unwrap_or_default();
            let mut words = line.split_whitespace();
            let Some(ip) = words.next().and_then(|w| w.parse::<IpAddr>().ok()) else {
                continue;
            };
            for name in words {
                let map = if ip.is_ipv4() { &mut v4 } else { &mut v6 };
                let records = map.entry(name.to_ascii_lowercase()).or_default();
                if !records.contains(&Record::Ip(ip)) {
                    records.push(Record::Ip(ip));
                }
            }
        }
        let until = Instant::now() + FOREVER;
        let answers = |m: HashMap<String, Vec<Record>>, kind| {
            m.into_iter()
                .map(|(name, records)| (name, Arc::new(Answer::new(kind, records, until))))
                .collect()
        };
        Hosts {
            v4: answers(v4, RecordKind::A),
            v6: answers(v6, RecordKind::Aaaa),
        }
    }

    /// The entry of `name` for a record type (`None` for SRV: hosts files have none).
    pub(super) fn get(&self, name: &str, kind: RecordKind) -> Option<&Arc<Answer>> {
        match kind {
            RecordKind::A => self.v4.get(name),
            RecordKind::Aaaa => self.v6.get(name),
            RecordKind::Srv => None,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_comments_and_families() {
        let h = Hosts::parse(
            "127.0.0.1 localhost Local.Test # comment\n::1 localhost ip6-localhost\n# 10.0.0.1 gone\nbad line\n10.0.0.2 local.test\n",
        );
        let a = h.get("local.test", RecordKind::A).unwrap();
        assert_eq!(
            a.records,
            vec![
                Record::Ip("127.0.0.1".parse().unwrap()),
                Record::Ip("10.0.0.2".parse().unwrap())
            ]
        );
        assert_eq!(
            h.get("localhost", RecordKind::Aaaa).unwrap().kind,
            RecordKind::Aaaa
        );
        assert!(h.get("gone", RecordKind::A).is_none());
        assert!(h.get("localhost", RecordKind::Srv).is_none());
    }
}
