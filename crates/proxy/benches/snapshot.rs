//! Cost of compiling a config snapshot at scale (what every Admin API change pays before it is
//! live). Run: `cargo bench -p silverback-proxy --bench snapshot [-- ROUTES]`.

use silverback_model::{Change, Context, declarative};
use silverback_plugins::registry::BUNDLED;
use silverback_proxy::Snapshot;
use std::fmt::Write;
use std::sync::Arc;
use std::time::Instant;

fn main() {
    let routes: usize = std::env::args()
        .nth(1)
        .and_then(|a| a.parse().ok())
        .unwrap_or(10_000);
    let doc = config_text(routes);
    let ctx = Context { plugins: &*BUNDLED };
    let t = Instant::now();
    let config = match declarative::load_text(&doc, &ctx, 0) {
        Ok(c) => Arc::new(c),
        Err(e) => {
            eprintln!("bench config rejected: {e:?}");
            std::process::exit(1);
        }
    };
    println!("load {routes} routes: {:?}", t.elapsed());
    let runtime = match tokio::runtime::Runtime::new() {
        Ok(r) => r,
        Err(e) => {
            eprintln!("cannot start a runtime: {e}");
            std::process::exit(1);
        }
    };
    let registry = match silverback_balancer::Dns::system(runtime.handle().clone()) {
        Ok(dns) => silverback_balancer::Registry::new(dns),
        Err(e) => {
            eprintln!("cannot configure DNS: {e}");
            std::process::exit(1);
        }
    };
    let t = Instant::now();
    let mut snap = match Snapshot::build(config.clone(), false, &registry) {
        Ok(s) => s,
        Err(e) => {
            eprintln!("bench config does not compile: {e}");
            std::process::exit(1);
        }
    };
    println!("first snapshot: {:?}", t.elapsed());
    // One route changed at a time, as an Admin API PATCH does.
    let mut apply = Vec::new();
    let mut build = Vec::new();
    for i in 0..20 {
        let mut row = snap.config.rows("routes")[i * 7].map().clone();
        row.insert("paths".into(), serde_json::json!([format!("/changed{i}")]));
        let t = Instant::now();
        let next = Arc::new(snap.config.apply(&[Change::Upserted("routes", row)]));
        apply.push(t.elapsed());
        let t = Instant::now();
        snap = match snap.rebuild(next) {
            Ok(s) => s,
            Err(e) => {
                eprintln!("changed config does not compile: {e}");
                std::process::exit(1);
            }
        };
        build.push(t.elapsed());
    }
    apply.sort();
    build.sort();
    println!(
        "one change: apply median {:?} max {:?}; snapshot median {:?} max {:?}",
        apply[apply.len() / 2],
        apply[apply.len() - 1],
        build[build.len() / 2],
        build[build.len() - 1]
    );
}

/// One service per 10 routes; routes mix prefix paths, hosts, methods and a regex every 20th.
fn config_text(routes: usize) -> String {
    let mut s = String::from("_format_version: \"3.0\"\nservices:\n");
    for svc in 0..routes.div_ceil(10) {
        let _ = writeln!(
            s,
            "- name: svc{svc}\n  url: http://127.0.0.1:19000\n  routes:"
        );
        for r in svc * 10..((svc + 1) * 10).min(routes) {
            let _ = writeln!(s, "  - name: r{r}");
            if r % 20 == 0 {
                let _ = writeln!(s, "    paths: [\"~/re{r}/(?<id>\\\\d+)$\"]");
            } else {
                let _ = writeln!(s, "    paths: [/p{r}]");
            }
            if r % 3 == 0 {
                let _ = writeln!(s, "    hosts: [h{r}.example.com]");
            }
            if r % 7 == 0 {
                let _ = writeln!(s, "    methods: [GET, POST]");
            }
        }
    }
    s
}
