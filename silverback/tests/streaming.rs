//! Large bodies through the real binary with bounded gateway memory: 1 GiB streamed uploads and
//! downloads, and a buffered upload that spills to disk. The test client and upstream never hold
//! a body in memory either (bodies are produced and counted frame by frame).
//!
//! Memory is the gateway's peak resident set (VmHWM) before and after the transfer.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod common;

use common::*;
use std::time::Instant;

const GIB: u64 = 1 << 30;
const MIB: u64 = 1 << 20;
/// Largest growth of the gateway's peak RSS a transfer may cause.
const MEMORY_BOUND_KIB: u64 = 64 * 1024;

fn config(up: &Upstream) -> String {
    format!(
        "_format_version: \"3.0\"\nservices:\n- name: s\n  url: http://{}\n  routes:\n  - paths: [/buffered]\n    strip_path: false\n  - paths: [/streamed]\n    strip_path: false\n    request_buffering: false\n  - paths: [/down]\n    strip_path: false\n",
        up.addr
    )
}

/// A gateway that has served a few requests already, so its baseline includes warm buffers.
async fn warm_gateway(up: &Upstream) -> Gateway {
    let gw = Gateway::with_config(&config(up)).start();
    let cl = client();
    for _ in 0..4 {
        assert_eq!(get(&cl, &gw.url("/down/echo"), &[]).await.status, 200);
        let r = upload(gw.proxy, "/streamed/sink", 1 << 20, false).await;
        assert_eq!(r.status, 200, "{}", r.text());
        let r = upload(gw.proxy, "/buffered/sink", 1 << 20, false).await;
        assert_eq!(r.status, 200, "{}", r.text());
    }
    gw
}

/// The gateway's peak resident memory so far (KiB).
fn peak_kib(gw: &Gateway) -> u64 {
    let (hwm, rss) = gw.memory_kib();
    hwm.max(rss)
}

/// Checks the peak during the transfer (VmHWM after it, and VmRSS sampled during it) against
/// the peak before it.
fn assert_memory_bound(gw: &Gateway, before_kib: u64, sampled_kib: u64, what: &str) {
    let (hwm, rss) = gw.memory_kib();
    let peak = hwm.max(sampled_kib);
    let grew = peak.saturating_sub(before_kib);
    eprintln!(
        "{what}: gateway peak {before_kib} -> {peak} KiB (+{grew} KiB; VmHWM {hwm}, sampled VmRSS max {sampled_kib}, VmRSS now {rss})"
    );
    assert!(
        grew < MEMORY_BOUND_KIB,
        "{what}: gateway peak RSS grew by {grew} KiB ({before_kib} -> {peak}), bound {MEMORY_BOUND_KIB} KiB"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn streamed_upload_of_1gib_with_bounded_memory() {
    let up = Upstream::start("u");
    let gw = warm_gateway(&up).await;
    let before = peak_kib(&gw);
    let watch = gw.watch_memory();
    let started = Instant::now();
    // Chunked from the client (no Content-Length), request_buffering off.
    let r = upload(gw.proxy, "/streamed/sink", GIB, false).await;
    let took = started.elapsed();
    eprintln!(
        "streamed upload 1 GiB: {took:?} ({:.0} MiB/s)",
        GIB as f64 / MIB as f64 / took.as_secs_f64()
    );
    assert_eq!(r.status, 200, "{}", r.text());
    let v = r.json();
    assert_eq!(v["received"], GIB, "bytes that reached the upstream");
    // Nothing was buffered, so the length was never known: the upstream got a chunked body.
    assert!(v["content_length"].is_null(), "{v}");
    assert_eq!(v["transfer_encoding"], "chunked", "{v}");
    assert_memory_bound(&gw, before, watch.finish(), "streamed upload 1 GiB");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn streamed_upload_keeps_the_client_content_length() {
    let up = Upstream::start("u");
    let gw = Gateway::with_config(&config(&up)).start();
    let n = 64 * MIB;
    let r = upload(gw.proxy, "/streamed/sink", n, true).await;
    assert_eq!(r.status, 200, "{}", r.text());
    let v = r.json();
    assert_eq!(v["received"], n);
    assert_eq!(v["content_length"], n.to_string(), "{v}");
    assert!(v["transfer_encoding"].is_null(), "{v}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn download_of_1gib_with_bounded_memory() {
    let up = Upstream::start("u");
    let gw = warm_gateway(&up).await;
    let before = peak_kib(&gw);
    let watch = gw.watch_memory();
    let started = Instant::now();
    let (status, headers, n) = download(gw.proxy, &format!("/down/big/{GIB}")).await;
    let took = started.elapsed();
    eprintln!(
        "download 1 GiB: {took:?} ({:.0} MiB/s)",
        GIB as f64 / MIB as f64 / took.as_secs_f64()
    );
    assert_eq!(status, 200);
    assert_eq!(
        headers.get("content-length").and_then(|v| v.to_str().ok()),
        Some(GIB.to_string().as_str())
    );
    assert_eq!(n, GIB, "bytes that reached the client");
    assert_memory_bound(&gw, before, watch.finish(), "download 1 GiB");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn buffered_upload_of_256mib_spills_to_disk_with_bounded_memory() {
    let up = Upstream::start("u");
    let gw = warm_gateway(&up).await;
    let before = peak_kib(&gw);
    let n = 256 * MIB;
    let watch = gw.watch_memory();
    let started = Instant::now();
    // Chunked from the client: the gateway reads it all (client_body_buffer_size is 8k, so it
    // goes to a temp file) and sends it with the length it counted.
    let r = upload(gw.proxy, "/buffered/sink", n, false).await;
    let took = started.elapsed();
    eprintln!(
        "buffered upload 256 MiB: {took:?} ({:.0} MiB/s)",
        n as f64 / MIB as f64 / took.as_secs_f64()
    );
    assert_eq!(r.status, 200, "{}", r.text());
    let v = r.json();
    assert_eq!(v["received"], n, "bytes that reached the upstream");
    assert_eq!(v["content_length"], n.to_string(), "{v}");
    assert!(v["transfer_encoding"].is_null(), "{v}");
    assert_memory_bound(&gw, before, watch.finish(), "buffered upload 256 MiB");
    // The spill file is unlinked as soon as it is created: nothing is left in the temp dir.
    let temp = gw.prefix().join("client_body_temp");
    let left: Vec<_> = std::fs::read_dir(&temp)
        .unwrap_or_else(|e| panic!("{}: {e}", temp.display()))
        .collect();
    assert!(
        left.is_empty(),
        "files left in {}: {left:?}",
        temp.display()
    );
}

/// A control for the measurement above: a body held in memory (client_body_buffer_size raised
/// to 512m) does show up in the gateway's peak RSS, so a streaming regression would be caught.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn memory_measurement_sees_bodies_buffered_in_memory() {
    let up = Upstream::start("u");
    let gw = Gateway::with_config(&config(&up))
        .setting("client_body_buffer_size", "512m")
        .start();
    let before = peak_kib(&gw);
    let watch = gw.watch_memory();
    let n = 128 * MIB;
    let r = upload(gw.proxy, "/buffered/sink", n, false).await;
    assert_eq!(r.status, 200, "{}", r.text());
    assert_eq!(r.json()["received"], n);
    let (hwm, _) = gw.memory_kib();
    let peak = hwm.max(watch.finish());
    let grew = peak.saturating_sub(before);
    eprintln!("in-memory buffered upload 128 MiB: peak +{grew} KiB");
    assert!(
        grew >= 96 * 1024,
        "a 128 MiB body buffered in memory raised the peak RSS by only {grew} KiB"
    );
}

/// Backpressure towards the upstream: a client that stops reading makes the gateway stop
/// reading the upstream, instead of buffering the rest of a 256 MiB body.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_slow_client_holds_back_the_upstream() {
    let up = Upstream::start("u");
    let gw = warm_gateway(&up).await;
    let before = peak_kib(&gw);
    let watch = gw.watch_memory();
    let n = 256 * MIB;
    let mut send = h1_connect::<http_body_util::Empty<bytes::Bytes>>(gw.proxy).await;
    let req = hyper::Request::builder()
        .uri(format!("/down/big/{n}"))
        .header("host", "x")
        .body(http_body_util::Empty::new())
        .unwrap();
    let resp = send.send_request(req).await.unwrap();
    assert_eq!(resp.status(), 200);
    let mut body = resp.into_body();
    use http_body_util::BodyExt;
    let mut got = 0u64;
    while got < MIB {
        got += body
            .frame()
            .await
            .unwrap()
            .unwrap()
            .into_data()
            .unwrap()
            .len() as u64;
    }
    // The client pauses; the upstream could send the remaining 255 MiB in well under this time.
    tokio::time::sleep(std::time::Duration::from_millis(1500)).await;
    assert_memory_bound(&gw, before, watch.finish(), "slow client, 256 MiB download");
    while let Some(f) = body.frame().await {
        got += f.unwrap().into_data().unwrap().len() as u64;
    }
    assert_eq!(got, n);
}

/// Backpressure towards the client: an upstream that does not read yet (it waits 1.5 s) makes
/// the gateway stop reading a streamed upload, instead of buffering it.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_slow_upstream_holds_back_a_streamed_upload() {
    let up = Upstream::start("u");
    let gw = warm_gateway(&up).await;
    let before = peak_kib(&gw);
    let watch = gw.watch_memory();
    let n = 256 * MIB;
    let r = upload(gw.proxy, "/streamed/delay/1500/sink", n, false).await;
    assert_eq!(r.status, 200, "{}", r.text());
    assert_eq!(r.json()["received"], n);
    assert_memory_bound(&gw, before, watch.finish(), "slow upstream, 256 MiB upload");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn head_responses_keep_the_upstream_content_length() {
    let up = Upstream::start("u");
    let gw = Gateway::with_config(&config(&up)).start();
    let cl = client();
    for n in [1000u64, 100_000, GIB] {
        let r = send(&cl, "HEAD", &gw.url(&format!("/down/big/{n}")), &[], "").await;
        assert_eq!(r.status, 200);
        assert_eq!(r.header("content-length"), Some(n.to_string().as_str()));
        assert!(r.body.is_empty());
    }
    // The connection is still usable after bodiless responses.
    assert_eq!(get(&cl, &gw.url("/down/echo"), &[]).await.status, 200);
}

/// nginx enforces client_max_body_size on chunked bodies as they are read, whether or not they
/// are buffered ("client intended to send too large chunked body": 413).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn client_max_body_size_applies_to_streamed_chunked_bodies() {
    let up = Upstream::start("u");
    let gw = Gateway::with_config(&config(&up))
        .setting("client_max_body_size", "1k")
        .start();
    // The same limit works for buffered bodies and for a declared Content-Length.
    let r = upload(gw.proxy, "/buffered/sink", 64 * 1024, false).await;
    assert_eq!(r.status, 413, "{}", r.text());
    let r = upload(gw.proxy, "/streamed/sink", 64 * 1024, true).await;
    assert_eq!(r.status, 413, "{}", r.text());
    let r = upload(gw.proxy, "/streamed/sink", 64 * 1024, false).await;
    assert_eq!(r.status, 413, "{}", r.text());
}
