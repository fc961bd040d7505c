//! A tiny authoritative DNS server over UDP for the tests: A, AAAA and SRV records set while it
//! runs, NXDOMAIN for unknown names, an empty answer for known names asked another type, and a
//! switch that makes it answer SERVFAIL to everything. It counts the queries it gets.
#![allow(dead_code, clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use hickory_proto::op::{Message, MessageType, OpCode, ResponseCode};
use hickory_proto::rr::rdata::{A, AAAA, SRV};
use hickory_proto::rr::{Name, RData, Record, RecordType};
use std::collections::HashMap;
use std::net::{IpAddr, SocketAddr, UdpSocket};
use std::str::FromStr;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

#[derive(Default)]
struct Zone {
    /// Lower-case name without the final dot → records (and their TTL).
    records: HashMap<String, Vec<(RData, u32)>>,
    failing: bool,
    /// Each answer waits this long (queries are answered one at a time).
    delay: Duration,
    /// Every query: (name, type).
    queries: Vec<(String, RecordType)>,
}

pub struct DnsServer {
    pub addr: SocketAddr,
    zone: Arc<Mutex<Zone>>,
    stop: Arc<AtomicBool>,
    thread: Option<std::thread::JoinHandle<()>>,
}

impl DnsServer {
    pub fn start() -> DnsServer {
        let socket = UdpSocket::bind("127.0.0.1:0").unwrap();
        socket
            .set_read_timeout(Some(Duration::from_millis(50)))
            .unwrap();
        let addr = socket.local_addr().unwrap();
        let zone = Arc::new(Mutex::new(Zone::default()));
        let stop = Arc::new(AtomicBool::new(false));
        let (z, s) = (zone.clone(), stop.clone());
        let thread = std::thread::spawn(move || {
            let mut buf = [0u8; 4096];
            while !s.load(Ordering::Relaxed) {
                let Ok((n, peer)) = socket.recv_from(&mut buf) else {
                    continue;
                };
                if let Some(reply) = answer(&z, &buf[..n]) {
                    let delay = z.lock().unwrap().delay;
                    std::thread::sleep(delay);
                    let _ = socket.send_to(&reply, peer);
                }
            }
        });
        DnsServer {
            addr,
            zone,
            stop,
            thread: Some(thread),
        }
    }

    fn set(&self, name: &str, records: Vec<(RData, u32)>) {
        let mut zone = self.zone.lock().unwrap();
        let entry = zone.records.entry(name.to_ascii_lowercase()).or_default();
        let kind = records.first().map(|(r, _)| r.record_type());
        entry.retain(|(r, _)| Some(r.record_type()) != kind);
        entry.extend(records);
    }

    /// Replaces the A records of `name`.
    pub fn set_a(&self, name: &str, ips: &[&str], ttl: u32) {
        let records = ips
            .iter()
            .map(|ip| match ip.parse::<IpAddr>().unwrap() {
                IpAddr::V4(v4) => (RData::A(A(v4)), ttl),
                IpAddr::V6(v6) => (RData::AAAA(AAAA(v6)), ttl),
            })
            .collect();
        self.set(name, records);
    }

    /// Replaces the SRV records of `name`: (target, port, weight, priority).
    pub fn set_srv(&self, name: &str, records: &[(&str, u16, u16, u16)], ttl: u32) {
        let records = records
            .iter()
            .map(|(target, port, weight, priority)| {
                let target = Name::from_str(&format!("{target}.")).unwrap();
                (RData::SRV(SRV::new(*priority, *weight, *port, target)), ttl)
            })
            .collect();
        self.set(name, records);
    }

    /// Forgets every record of `name` (it becomes NXDOMAIN).
    pub fn remove(&self, name: &str) {
        self.zone.lock().unwrap().records.remove(name);
    }

    /// SERVFAIL to every query while on.
    pub fn set_failing(&self, failing: bool) {
        self.zone.lock().unwrap().failing = failing;
    }

    /// Makes every answer wait (one query at a time is answered).
    pub fn set_delay(&self, delay: Duration) {
        self.zone.lock().unwrap().delay = delay;
    }

    /// How many queries of that type came for `name`.
    pub fn queries(&self, name: &str, kind: RecordType) -> usize {
        self.zone
            .lock()
            .unwrap()
            .queries
            .iter()
            .filter(|(n, k)| n == name && *k == kind)
            .count()
    }

    /// How many queries came for `name`, any type.
    pub fn queries_for(&self, name: &str) -> usize {
        self.zone
            .lock()
            .unwrap()
            .queries
            .iter()
            .filter(|(n, _)| n == name)
            .count()
    }
}

impl Drop for DnsServer {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

fn answer(zone: &Mutex<Zone>, packet: &[u8]) -> Option<Vec<u8>> {
    let request = Message::from_vec(packet).ok()?;
    let query = request.queries.first()?.clone();
    let name = query
        .name()
        .to_utf8()
        .trim_end_matches('.')
        .to_ascii_lowercase();
    let mut zone = zone.lock().unwrap();
    zone.queries.push((name.clone(), query.query_type()));
    let mut reply = Message::new(request.metadata.id, MessageType::Response, OpCode::Query);
    reply.metadata.recursion_desired = request.metadata.recursion_desired;
    reply.metadata.recursion_available = true;
    reply.metadata.authoritative = true;
    reply.add_query(query.clone());
    if zone.failing {
        reply.metadata.response_code = ResponseCode::ServFail;
        return reply.to_vec().ok();
    }
    match zone.records.get(&name) {
        None => reply.metadata.response_code = ResponseCode::NXDomain,
        Some(records) => {
            for (data, ttl) in records
                .iter()
                .filter(|(r, _)| r.record_type() == query.query_type())
            {
                reply.add_answer(Record::from_rdata(query.name().clone(), *ttl, data.clone()));
            }
        }
    }
    reply.to_vec().ok()
}
