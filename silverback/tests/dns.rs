//! DNS through the real binary against a tiny DNS server run by the test: service hosts and
//! target names resolved with TTL caching, stale answers while the resolver fails, Kong's 503
//! "name resolution failed" and the recovery after it, SRV records (ports, weights, priorities,
//! `use_srv_name`), a name with several addresses as several balancer entries, and the `dns_*`
//! settings (hosts file, order, valid TTL), with concurrent misses sharing one query.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod common;

use common::dns::DnsServer;
use common::*;
use hickory_proto::rr::RecordType;
use serde_json::Value;
use std::collections::HashMap;
use std::net::SocketAddr;
use std::time::Duration;

const WAIT: Duration = Duration::from_secs(10);

/// A gateway resolving through `dns`, with extra settings.
fn gateway(cfg: &str, dns: &DnsServer, settings: &[(&str, &str)]) -> Gateway {
    let mut b = Gateway::with_config(cfg).setting("dns_resolver", &dns.addr.to_string());
    for (k, v) in settings {
        b = b.setting(k, v);
    }
    b.start()
}

fn service(host: &str, port: u16) -> String {
    format!(
        "_format_version: \"3.0\"\nservices:\n- name: s\n  url: http://{host}:{port}\n  routes:\n  - paths: [/]\n"
    )
}

fn upstream(target: &str, extra: &str) -> String {
    format!(
        "_format_version: \"3.0\"\nservices:\n- name: s\n  host: pool\n  routes:\n  - paths: [/]\nupstreams:\n- name: pool\n{extra}  targets:\n  - target: \"{target}\"\n"
    )
}

fn served_by(r: &Reply) -> String {
    assert_eq!(r.status, 200, "{}", r.text());
    r.header("x-upstream-name").unwrap_or("none").to_string()
}

async fn counts(proxy: SocketAddr, n: usize) -> HashMap<String, usize> {
    let mut conn = OneConn::open(proxy).await;
    let mut seen = HashMap::new();
    for _ in 0..n {
        *seen.entry(served_by(&conn.get("/").await)).or_insert(0) += 1;
    }
    seen
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn service_hosts_are_cached_for_their_ttl() {
    let up = Upstream::start("up");
    let dns = DnsServer::start();
    dns.set_a("api.dns.test", &["127.0.0.1"], 1);
    let gw = gateway(&service("api.dns.test", up.addr.port()), &dns, &[]);
    let mut conn = OneConn::open(gw.proxy).await;
    for _ in 0..5 {
        assert_eq!(served_by(&conn.get("/").await), "up");
    }
    // Kong's order: SRV first (nothing), then A; the answer is cached.
    assert_eq!(dns.queries("api.dns.test", RecordType::A), 1);
    assert_eq!(dns.queries("api.dns.test", RecordType::SRV), 1);
    tokio::time::sleep(Duration::from_millis(1200)).await;
    assert_eq!(served_by(&conn.get("/").await), "up");
    eventually(WAIT, "the expired answer is asked again", || async {
        dns.queries("api.dns.test", RecordType::A) == 2
    })
    .await;
    // `LAST`: the type that answered is asked first now; no more SRV queries.
    assert_eq!(dns.queries("api.dns.test", RecordType::SRV), 1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn stale_answers_outlive_a_failing_resolver_then_fail_then_recover() {
    let up = Upstream::start("up");
    let dns = DnsServer::start();
    dns.set_a("api.dns.test", &["127.0.0.1"], 1);
    let gw = gateway(
        &service("api.dns.test", up.addr.port()),
        &dns,
        &[("dns_stale_ttl", "2"), ("dns_error_ttl", "0.2")],
    );
    let mut conn = OneConn::open(gw.proxy).await;
    assert_eq!(served_by(&conn.get("/").await), "up");
    dns.set_failing(true);
    tokio::time::sleep(Duration::from_millis(1200)).await;
    // Expired, the resolver fails: the stale answer is served while refreshes are tried.
    for _ in 0..5 {
        assert_eq!(served_by(&conn.get("/").await), "up");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert!(dns.queries("api.dns.test", RecordType::A) >= 2);
    // Past the stale time: Kong's 503.
    eventually(WAIT, "the stale answer runs out", || async {
        get(&client(), &gw.url("/"), &[]).await.status == 503
    })
    .await;
    let r = get(&client(), &gw.url("/"), &[("accept", "application/json")]).await;
    assert_eq!(r.status, 503);
    assert_eq!(r.json()["message"], "name resolution failed");
    // The resolver comes back: so does the service, by itself.
    dns.set_failing(false);
    eventually(WAIT, "the service is reachable again", || async {
        get(&client(), &gw.url("/"), &[]).await.status == 200
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn unknown_names_are_503_until_they_exist() {
    let up = Upstream::start("up");
    let dns = DnsServer::start();
    let gw = gateway(
        &service("later.dns.test", up.addr.port()),
        &dns,
        &[("dns_not_found_ttl", "0.3")],
    );
    let cl = client();
    let r = get(&cl, &gw.url("/"), &[("accept", "application/json")]).await;
    assert_eq!(r.status, 503);
    assert_eq!(r.json()["message"], "name resolution failed");
    let asked = dns.queries_for("later.dns.test");
    // Remembered as not found for dns_not_found_ttl.
    assert_eq!(get(&cl, &gw.url("/"), &[]).await.status, 503);
    assert_eq!(dns.queries_for("later.dns.test"), asked);
    dns.set_a("later.dns.test", &["127.0.0.1"], 60);
    eventually(WAIT, "the new name is found", || async {
        get(&cl, &gw.url("/"), &[]).await.status == 200
    })
    .await;
}

/// Upstream servers on 127.0.0.1 for SRV records.
fn srv_zone(dns: &DnsServer, a: &Upstream, b: &Upstream, backup: &Upstream) {
    dns.set_srv(
        "_http._tcp.svc.dns.test",
        &[
            ("a.dns.test", a.addr.port(), 1, 10),
            ("b.dns.test", b.addr.port(), 3, 10),
            ("backup.dns.test", backup.addr.port(), 100, 20),
        ],
        60,
    );
    for name in ["a.dns.test", "b.dns.test", "backup.dns.test"] {
        dns.set_a(name, &["127.0.0.1"], 60);
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn srv_targets_take_ports_and_weights_from_the_records() {
    let (a, b, backup) = (
        Upstream::start("a"),
        Upstream::start("b"),
        Upstream::start("backup"),
    );
    let dns = DnsServer::start();
    srv_zone(&dns, &a, &b, &backup);
    let gw = gateway(&upstream("_http._tcp.svc.dns.test", ""), &dns, &[]);
    let seen = counts(gw.proxy, 400).await;
    assert_eq!(seen.get("a"), Some(&100), "{seen:?}");
    assert_eq!(seen.get("b"), Some(&300), "{seen:?}");
    assert_eq!(backup.hits(), 0, "only the best priority is used");

    let r = gw.admin("GET", "/upstreams/pool/health", Value::Null).await;
    let data = &r.json()["data"][0]["data"];
    assert_eq!(data["dns"], "SRV");
    let mut addresses: Vec<(u64, u64)> = data["addresses"]
        .as_array()
        .unwrap()
        .iter()
        .map(|a| (a["port"].as_u64().unwrap(), a["weight"].as_u64().unwrap()))
        .collect();
    addresses.sort_by_key(|(_, w)| *w);
    assert_eq!(
        addresses,
        vec![(u64::from(a.addr.port()), 1), (u64::from(b.addr.port()), 3)]
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn srv_service_hosts_and_use_srv_name() {
    let (a, b, backup) = (
        Upstream::start("a"),
        Upstream::start("b"),
        Upstream::start("backup"),
    );
    let dns = DnsServer::start();
    srv_zone(&dns, &a, &b, &backup);
    // A service host with SRV records: the port comes from the record.
    let cfg = format!(
        "{}- name: srv-names\n  host: pool\n  routes:\n  - paths: [/named]\n- name: plain\n  host: pool2\n  routes:\n  - paths: [/plain]\nupstreams:\n- name: pool\n  use_srv_name: true\n  targets: [{{target: \"_http._tcp.svc.dns.test\"}}]\n- name: pool2\n  targets: [{{target: \"_http._tcp.svc.dns.test\"}}]\n",
        service("_http._tcp.svc.dns.test", 1).replace(
            "  routes:\n  - paths: [/]\n",
            "  routes:\n  - paths: [/service]\n"
        )
    );
    let gw = gateway(&cfg, &dns, &[]);
    let mut conn = OneConn::open(gw.proxy).await;
    let mut seen = HashMap::new();
    for _ in 0..40 {
        *seen
            .entry(served_by(&conn.get("/service").await))
            .or_insert(0) += 1;
    }
    assert_eq!(
        (seen.get("a"), seen.get("b")),
        (Some(&10), Some(&30)),
        "{seen:?}"
    );
    // Host: the SRV record's name with use_srv_name, else the target's.
    for _ in 0..4 {
        let e = echo(&conn.get("/named").await);
        let host = e.header("host").unwrap();
        assert!(
            host == format!("a.dns.test:{}", a.addr.port())
                || host == format!("b.dns.test:{}", b.addr.port()),
            "{host}"
        );
        let e = echo(&conn.get("/plain").await);
        assert!(
            e.header("host")
                .unwrap()
                .starts_with("_http._tcp.svc.dns.test:"),
            "{:?}",
            e.header("host")
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_name_with_several_addresses_is_several_entries() {
    // The same port on two loopback addresses.
    let (one, _two) = loop {
        let two = Upstream::start_on("127.0.0.2:0".parse().unwrap(), "two");
        let addr: SocketAddr = format!("127.0.0.1:{}", two.addr.port()).parse().unwrap();
        if let Ok(one) = Upstream::try_start_on(addr, "one") {
            break (one, two);
        }
    };
    let port = one.addr.port();
    let dns = DnsServer::start();
    dns.set_a("multi.dns.test", &["127.0.0.1", "127.0.0.2"], 1);
    let gw = gateway(&upstream(&format!("multi.dns.test:{port}"), ""), &dns, &[]);
    let seen = counts(gw.proxy, 40).await;
    assert_eq!((seen.get("one"), seen.get("two")), (Some(&20), Some(&20)));
    let r = gw.admin("GET", "/upstreams/pool/health", Value::Null).await;
    let target = &r.json()["data"][0];
    assert_eq!(target["data"]["dns"], "A");
    assert_eq!(target["data"]["addresses"].as_array().unwrap().len(), 2);
    assert_eq!(target["data"]["weight"]["total"], 200);

    // The answer changes: the balancer follows once the TTL ran out.
    dns.set_a("multi.dns.test", &["127.0.0.2"], 1);
    eventually(WAIT, "only the remaining address is used", || async {
        let r = gw.admin("GET", "/upstreams/pool/health", Value::Null).await;
        r.json()["data"][0]["data"]["addresses"]
            .as_array()
            .is_some_and(|a| a.len() == 1)
    })
    .await;
    let before = one.hits();
    let seen = counts(gw.proxy, 10).await;
    assert_eq!(seen.get("two"), Some(&10));
    assert_eq!(one.hits(), before);

    // A name that stops resolving leaves the target without addresses: DNS_ERROR.
    dns.remove("multi.dns.test");
    eventually(WAIT, "the target reports DNS_ERROR", || async {
        let r = gw.admin("GET", "/upstreams/pool/health", Value::Null).await;
        r.json()["data"][0]["health"] == "DNS_ERROR"
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn hosts_file_order_and_valid_ttl() {
    let up = Upstream::start("up");
    let dns = DnsServer::start();
    let dir = TempDir::new("hosts");
    let hosts = dir.path().join("hosts");
    std::fs::write(&hosts, "# test hosts\n127.0.0.1 local.hosts.test\n").unwrap();
    // Both SRV and A records: with dns_order A only the A record is asked.
    dns.set_a("ordered.dns.test", &["127.0.0.1"], 3600);
    dns.set_srv("ordered.dns.test", &[("nowhere.dns.test", 1, 1, 1)], 3600);
    let cfg = format!(
        "{}- name: ordered\n  url: http://ordered.dns.test:{}\n  routes:\n  - paths: [/ordered]\n",
        service("local.hosts.test", up.addr.port()),
        up.addr.port()
    );
    let gw = gateway(
        &cfg,
        &dns,
        &[
            ("dns_hostsfile", hosts.to_str().unwrap()),
            ("dns_order", "A,SRV"),
            ("dns_valid_ttl", "0.5"),
        ],
    );
    let mut conn = OneConn::open(gw.proxy).await;
    assert_eq!(served_by(&conn.get("/").await), "up");
    assert_eq!(
        dns.queries_for("local.hosts.test"),
        0,
        "answered by the hosts file"
    );
    assert_eq!(served_by(&conn.get("/ordered").await), "up");
    assert_eq!(dns.queries("ordered.dns.test", RecordType::SRV), 0);
    assert_eq!(dns.queries("ordered.dns.test", RecordType::A), 1);
    // dns_valid_ttl replaces the record's hour.
    tokio::time::sleep(Duration::from_millis(700)).await;
    assert_eq!(served_by(&conn.get("/ordered").await), "up");
    eventually(
        WAIT,
        "the answer is refreshed after dns_valid_ttl",
        || async { dns.queries("ordered.dns.test", RecordType::A) >= 2 },
    )
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn concurrent_misses_share_one_query() {
    let up = Upstream::start("up");
    let dns = DnsServer::start();
    dns.set_a("shared.dns.test", &["127.0.0.1"], 60);
    dns.set_delay(Duration::from_millis(200));
    let gw = gateway(
        &service("shared.dns.test", up.addr.port()),
        &dns,
        &[("dns_order", "A")],
    );
    let mut requests = Vec::new();
    for _ in 0..4 {
        let url = gw.url("/");
        requests.push(tokio::spawn(async move {
            get(&client(), &url, &[]).await.status
        }));
    }
    for r in requests {
        assert_eq!(r.await.unwrap(), 200);
    }
    assert_eq!(dns.queries("shared.dns.test", RecordType::A), 1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn aaaa_records_when_dns_order_asks_for_them() {
    let up = Upstream::start_on("[::1]:0".parse().unwrap(), "six");
    let port = up.addr.port();
    let dns = DnsServer::start();
    dns.set_a("six.dns.test", &["::1"], 60);
    let cfg = format!(
        "{}upstreams:\n- name: pool\n  targets: [{{target: \"six.dns.test:{port}\"}}]\n",
        service("six.dns.test", port).replace(
            "  routes:\n  - paths: [/]\n",
            "  routes:\n  - paths: [/service]\n- name: balanced\n  host: pool\n  routes:\n  - paths: [/balanced]\n"
        )
    );
    // Kong's default order has no AAAA: the name does not resolve.
    let gw = gateway(&cfg, &dns, &[("dns_not_found_ttl", "0.1")]);
    assert_eq!(get(&client(), &gw.url("/service"), &[]).await.status, 503);
    drop(gw);

    let gw = gateway(&cfg, &dns, &[("dns_order", "LAST,SRV,A,AAAA")]);
    let mut conn = OneConn::open(gw.proxy).await;
    let e = echo(&conn.get("/service").await);
    assert_eq!(e.upstream, "six");
    assert_eq!(
        e.header("host"),
        Some(format!("six.dns.test:{port}").as_str())
    );
    assert_eq!(served_by(&conn.get("/balanced").await), "six");
    let r = gw.admin("GET", "/upstreams/pool/health", Value::Null).await;
    let data = &r.json()["data"][0]["data"];
    assert_eq!(data["dns"], "AAAA");
    assert_eq!(data["addresses"][0]["ip"], "::1");
}
