//! Reloading the declarative config of a running gateway: `silverback reload` and SIGHUP, under
//! load, with bad files refused while the old config keeps serving.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod common;

use common::*;
use std::sync::Arc;
use std::sync::Mutex;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::time::Duration;

const HASH_WAIT: Duration = Duration::from_secs(10);

/// Config A: the steady route only. Config B: the steady route (tagged differently) and a second
/// service on another upstream at /added.
fn config(steady: &Upstream, added: &Upstream, with_added: bool) -> String {
    let mut s = format!(
        "_format_version: \"3.0\"\nservices:\n- name: steady\n  url: http://{}\n  tags: [{}]\n  routes:\n  - name: steady-route\n    paths: [/steady]\n",
        steady.addr,
        if with_added { "b" } else { "a" }
    );
    if with_added {
        s.push_str(&format!(
            "- name: added\n  url: http://{}\n  routes:\n  - name: added-route\n    paths: [/added]\n",
            added.addr
        ));
    }
    s
}

/// Config A with two field errors and a plugin this build does not have.
fn invalid_config(steady: &Upstream) -> String {
    format!(
        "_format_version: \"3.0\"\nservices:\n- name: steady\n  host: {}\n  port: 99999\n  routes:\n  - name: steady-route\n    paths: [/steady]\n  - name: broken-route\n    paths: [nope]\nplugins:\n- name: openid-connect\n",
        steady.addr.ip()
    )
}

/// Runs a blocking CLI call without stalling the runtime's workers.
fn blocking<T>(f: impl FnOnce() -> T) -> T {
    tokio::task::block_in_place(f)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn twenty_reloads_under_load_lose_no_requests() {
    let steady = Upstream::start("steady");
    let added = Upstream::start("added");
    let cfg_a = config(&steady, &added, false);
    let cfg_b = config(&steady, &added, true);
    let gw = Arc::new(Gateway::with_config(&cfg_a).start());
    let hash_a = gw.config_hash().await;

    let stop = Arc::new(AtomicBool::new(false));
    let ok = Arc::new(AtomicUsize::new(0));
    let failures = Arc::new(Mutex::new(Vec::<String>::new()));
    let mut tasks = Vec::new();
    for t in 0..8 {
        let (gw, stop, ok, failures) = (gw.clone(), stop.clone(), ok.clone(), failures.clone());
        tasks.push(tokio::spawn(async move {
            // No silent retry of requests whose pooled connection was closed: every reset shows.
            let cl: HttpClient =
                hyper_util::client::legacy::Client::builder(hyper_util::rt::TokioExecutor::new())
                    .retry_canceled_requests(false)
                    .build_http();
            let mut i = 0u64;
            while !stop.load(Ordering::Relaxed) {
                i += 1;
                // Plain GETs, requests still in flight when a reload lands, and bodies.
                let (method, path, body) = match i % 3 {
                    0 => ("GET", format!("/steady/t{t}/{i}"), String::new()),
                    1 => ("GET", format!("/steady/delay/25/t{t}/{i}"), String::new()),
                    _ => ("POST", format!("/steady/t{t}/{i}"), format!("body {t} {i}")),
                };
                let mut req = hyper::Request::builder().method(method).uri(gw.url(&path));
                if !body.is_empty() {
                    req = req.header("content-type", "text/plain");
                }
                let req = req
                    .body(http_body_util::Full::new(bytes::Bytes::from(body.clone())))
                    .unwrap();
                let outcome = match cl.request(req).await {
                    Err(e) => Err(format!("{method} {path}: {e:?}")),
                    Ok(resp) => {
                        let status = resp.status();
                        use http_body_util::BodyExt;
                        match resp.into_body().collect().await {
                            Err(e) => Err(format!("{method} {path}: body: {e:?}")),
                            Ok(_) if status != 200 => Err(format!("{method} {path}: {status}")),
                            Ok(b) => {
                                let e: upstream::Echo = serde_json::from_slice(&b.to_bytes())
                                    .unwrap_or_else(|e| panic!("{path}: {e}"));
                                if e.body == body {
                                    Ok(())
                                } else {
                                    Err(format!("{path}: body {:?} != {body:?}", e.body))
                                }
                            }
                        }
                    }
                };
                match outcome {
                    Ok(()) => {
                        ok.fetch_add(1, Ordering::Relaxed);
                    }
                    Err(e) => failures.lock().unwrap().push(e),
                }
            }
        }));
    }

    let cl = client();
    let mut hash = hash_a.clone();
    let mut hashes = std::collections::BTreeSet::new();
    eventually(HASH_WAIT, "load is running", || async {
        ok.load(Ordering::Relaxed) >= 8
    })
    .await;
    for i in 0..20 {
        let with_added = i % 2 == 0;
        let before = ok.load(Ordering::Relaxed);
        let (code, out) = blocking(|| gw.reload_with(if with_added { &cfg_b } else { &cfg_a }));
        assert_eq!(code, 0, "reload {i}: {out}");
        hash = gw.wait_hash_change(&hash, HASH_WAIT).await;
        hashes.insert(hash.clone());
        // The change took effect: the second route answers only while configured.
        let r = get(&cl, &gw.url("/added/x"), &[]).await;
        if with_added {
            assert_eq!(r.status, 200, "reload {i}: {}", r.text());
            assert_eq!(r.header("x-upstream-name"), Some("added"));
        } else {
            assert_eq!(r.status, 404, "reload {i}: {}", r.text());
        }
        // The load kept going through the reload.
        eventually(HASH_WAIT, "requests complete after the reload", || async {
            ok.load(Ordering::Relaxed) > before
        })
        .await;
    }
    stop.store(true, Ordering::Relaxed);
    for t in tasks {
        t.await.unwrap();
    }
    let failures = failures.lock().unwrap();
    let total = ok.load(Ordering::Relaxed);
    eprintln!("{total} requests across 20 reloads");
    assert!(
        failures.is_empty(),
        "{} of {} requests failed during reloads, first: {:?}",
        failures.len(),
        total + failures.len(),
        &failures[..failures.len().min(5)]
    );
    assert!(total >= 200, "only {total} requests ran");
    assert_eq!(
        hashes.len(),
        2,
        "the two configs alternate between two hashes: {hashes:?}"
    );
    assert!(hashes.contains(&hash_a));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn invalid_reload_is_refused_and_the_old_config_keeps_serving() {
    let steady = Upstream::start("steady");
    let added = Upstream::start("added");
    let gw = Gateway::with_config(&config(&steady, &added, false)).start();
    let hash = gw.config_hash().await;
    let cl = client();

    let (code, out) = blocking(|| gw.reload_with(&invalid_config(&steady)));
    assert_ne!(code, 0, "{out}");
    for line in [
        "services[0] (service 'steady'): port: value should be between 0 and 65535",
        "services[0].routes[1] (route 'broken-route'): paths[0]: should start with: / (fixed path) or ~/ (regex path)",
        "plugin 'openid-connect' is not available",
        "not reloading",
    ] {
        assert!(out.contains(line), "missing {line:?} in:\n{out}");
    }
    assert!(out.contains("plugins[0]"), "{out}");
    assert_eq!(gw.config_hash().await, hash);
    assert_eq!(get(&cl, &gw.url("/steady/x"), &[]).await.status, 200);

    // The same file signalled directly (no CLI check): the gateway refuses it itself.
    gw.signal("HUP");
    eventually(
        HASH_WAIT,
        "the gateway logs the rejected reload",
        || async { gw.log_text().contains("reload rejected") },
    )
    .await;
    assert!(
        gw.log_text()
            .contains("port: value should be between 0 and 65535"),
        "{}",
        gw.log_text()
    );
    assert_eq!(gw.config_hash().await, hash);
    assert_eq!(get(&cl, &gw.url("/steady/x"), &[]).await.status, 200);

    // Not YAML at all.
    std::fs::write(gw.config_file(), "services: [\n  - {name: x,\n").unwrap();
    let (code, out) = blocking(|| gw.cli(&["reload"]));
    assert_ne!(code, 0, "{out}");
    assert!(out.contains("not a valid declarative config"), "{out}");
    assert!(out.contains("invalid YAML"), "{out}");
    gw.signal("HUP");
    eventually(HASH_WAIT, "the second rejection is logged", || async {
        gw.log_text().matches("reload rejected").count() >= 2
    })
    .await;
    assert_eq!(gw.config_hash().await, hash);
    assert_eq!(get(&cl, &gw.url("/steady/x"), &[]).await.status, 200);

    // A good file again: taken.
    let (code, out) = blocking(|| gw.reload_with(&config(&steady, &added, true)));
    assert_eq!(code, 0, "{out}");
    gw.wait_hash_change(&hash, HASH_WAIT).await;
    assert_eq!(get(&cl, &gw.url("/added/x"), &[]).await.status, 200);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sighup_reloads_the_declarative_file() {
    let steady = Upstream::start("steady");
    let added = Upstream::start("added");
    let gw = Gateway::with_config(&config(&steady, &added, false)).start();
    let hash = gw.config_hash().await;
    // A connection opened before the reload sees the new config on its next request.
    let mut conn = OneConn::open(gw.proxy).await;
    assert_eq!(conn.get("/added/x").await.status, 404);
    std::fs::write(gw.config_file(), config(&steady, &added, true)).unwrap();
    gw.signal("HUP");
    let new_hash = gw.wait_hash_change(&hash, HASH_WAIT).await;
    let r = conn.get("/added/x").await;
    assert_eq!(r.status, 200, "{}", r.text());
    assert_eq!(r.header("x-upstream-name"), Some("added"));
    assert_eq!(echo(&r).uri, "/x");
    assert_eq!(conn.get("/steady/y").await.status, 200);
    assert!(gw.log_text().contains("declarative config reloaded"));
    // Signalling again with the same file changes nothing.
    gw.signal("HUP");
    eventually(HASH_WAIT, "second reload logged", || async {
        gw.log_text().matches("declarative config reloaded").count() >= 2
    })
    .await;
    assert_eq!(gw.config_hash().await, new_hash);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn removed_routes_stop_answering_and_reload_needs_a_running_instance() {
    let steady = Upstream::start("steady");
    let added = Upstream::start("added");
    let mut gw = Gateway::with_config(&config(&steady, &added, true)).start();
    let cl = client();
    assert_eq!(get(&cl, &gw.url("/added/x"), &[]).await.status, 200);
    let hash = gw.config_hash().await;
    let (code, out) = blocking(|| gw.reload_with(&config(&steady, &added, false)));
    assert_eq!(code, 0, "{out}");
    gw.wait_hash_change(&hash, HASH_WAIT).await;
    let r = get(&cl, &gw.url("/added/x"), &[]).await;
    assert_eq!(r.status, 404);
    assert_eq!(r.json()["message"], "no Route matched with those values");
    assert!(gw.stop().success());
    let (code, out) = gw.cli(&["reload"]);
    assert_eq!(code, 1, "{out}");
    assert!(out.contains("not running"), "{out}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_request_in_flight_finishes_on_the_config_it_started_with() {
    let steady = Upstream::start("steady");
    let added = Upstream::start("added");
    let gw = Gateway::with_config(&config(&steady, &added, true)).start();
    let hash = gw.config_hash().await;
    let url = gw.url("/added/delay/1000");
    let slow = tokio::spawn(async move { get(&client(), &url, &[]).await });
    eventually(
        HASH_WAIT,
        "the slow request reaches its upstream",
        || async { added.hits() == 1 },
    )
    .await;
    // Its route and service go away while it waits for the upstream.
    let (code, out) = blocking(|| gw.reload_with(&config(&steady, &added, false)));
    assert_eq!(code, 0, "{out}");
    gw.wait_hash_change(&hash, HASH_WAIT).await;
    assert_eq!(get(&client(), &gw.url("/added/x"), &[]).await.status, 404);
    let r = slow.await.unwrap();
    assert_eq!(r.status, 200, "{}", r.text());
    assert_eq!(r.header("x-upstream-name"), Some("added"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn reloaded_upstream_targets_are_used() {
    let one = Upstream::start("one");
    let two = Upstream::start("two");
    let cfg = |target: &Upstream| {
        format!(
            "_format_version: \"3.0\"\nservices:\n- name: s\n  host: pool.internal\n  routes:\n  - paths: [/]\nupstreams:\n- name: pool.internal\n  targets:\n  - target: {}\n",
            target.addr
        )
    };
    let gw = Gateway::with_config(&cfg(&one)).start();
    let cl = client();
    for _ in 0..3 {
        assert_eq!(
            get(&cl, &gw.url("/x"), &[]).await.header("x-upstream-name"),
            Some("one")
        );
    }
    let hash = gw.config_hash().await;
    let (code, out) = blocking(|| gw.reload_with(&cfg(&two)));
    assert_eq!(code, 0, "{out}");
    gw.wait_hash_change(&hash, HASH_WAIT).await;
    for _ in 0..3 {
        assert_eq!(
            get(&cl, &gw.url("/x"), &[]).await.header("x-upstream-name"),
            Some("two")
        );
    }
    assert_eq!(one.hits(), 3);
}
