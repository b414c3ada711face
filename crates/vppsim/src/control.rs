//! Control socket: newline-delimited JSON, one request per line, one
//! response line each. Lets tests drive a `vppsim` running as another process.
//!
//! | request | effect / response |
//! |---|---|
//! | `{"cmd":"ping"}` | `{"ok":true}` |
//! | `{"cmd":"latency","msg":"*","ms":1}` | delay matching messages (`*` is per call: a dump's closing `control_ping` is not delayed again) |
//! | `{"cmd":"hang","msg":"control_ping"}` | swallow matching requests (`msg` defaults to `*`) |
//! | `{"cmd":"disconnect"}` | close every client connection now |
//! | `{"cmd":"disconnect","msg":"X"}` | close the connection when the next X arrives |
//! | `{"cmd":"restart"}` | VPP restart: connections closed, state and indexes wiped (faults, journal and `lcp_tap_fail` stay) |
//! | `{"cmd":"error_on_nth","msg":"X","n":2,"retval":-1}` | answer the 2nd X with -1 |
//! | `{"cmd":"lcp_tap_fail","enable":true}` | linux-cp pair creation fails with -11 |
//! | `{"cmd":"lcp_get_page","n":2}` | `lcp_itf_pair_get` yields (-165) every 2 details (`n` null = off) |
//! | `{"cmd":"reset_faults"}` | remove every fault |
//! | `{"cmd":"faults"}` | `{"ok":true,"faults":{...}}` |
//! | `{"cmd":"journal","since":0}` | `{"ok":true,"entries":[...]}` (entries with seq > since) |
//! | `{"cmd":"clear_journal"}` | empty the in-memory journal |
//! | `{"cmd":"state"}` | `{"ok":true,"state":{...}}` |
//! | `{"cmd":"check_macs","mac":"02:..."}` | `{"ok":true}` or `{"ok":false,"error":"..."}` (`mac` optional) |
//!
//! Errors: `{"ok":false,"error":"..."}`.

use std::sync::Arc;
use std::time::Duration;

use serde_json::{Value, json};
use tokio::io::{AsyncBufReadExt, AsyncWriteExt, BufReader};
use tokio::net::{UnixListener, UnixStream};

use crate::faults::{ErrorOnNth, Faults};
use crate::journal::check_mac_exclusive;
use crate::server::Shared;

pub(crate) async fn serve(sh: Arc<Shared>, listener: UnixListener) {
    while let Ok((s, _)) = listener.accept().await {
        tokio::spawn(conn(sh.clone(), s));
    }
}

async fn conn(sh: Arc<Shared>, s: UnixStream) {
    let (rd, mut wr) = s.into_split();
    let mut lines = BufReader::new(rd).lines();
    while let Ok(Some(line)) = lines.next_line().await {
        if line.trim().is_empty() {
            continue;
        }
        let resp = match serde_json::from_str::<Value>(&line) {
            Ok(v) => command(&sh, &v),
            Err(e) => json!({"ok": false, "error": format!("bad JSON: {e}")}),
        };
        let mut out = resp.to_string();
        out.push('\n');
        if wr.write_all(out.as_bytes()).await.is_err() {
            break;
        }
    }
}

/// Executes one control command.
pub(crate) fn command(sh: &Shared, v: &Value) -> Value {
    let cmd = v["cmd"].as_str().unwrap_or("");
    let msg = v["msg"].as_str().unwrap_or("*").to_owned();
    let with_faults = |f: &dyn Fn(&mut Faults)| {
        if let Ok(mut x) = sh.faults.lock() {
            f(&mut x);
        }
    };
    match cmd {
        "ping" => json!({"ok": true}),
        "latency" => {
            let Some(ms) = v["ms"].as_u64() else {
                return json!({"ok": false, "error": "latency needs \"ms\""});
            };
            with_faults(&|f| {
                f.latency.insert(msg.clone(), Duration::from_millis(ms));
            });
            json!({"ok": true})
        }
        "hang" => {
            with_faults(&|f| f.hang.push(msg.clone()));
            json!({"ok": true})
        }
        "disconnect" => {
            if v.get("msg").is_some() {
                with_faults(&|f| f.disconnect_on.push(msg.clone()));
            } else {
                let _ = sh.kill.send(());
            }
            json!({"ok": true})
        }
        "restart" => {
            sh.restart();
            json!({"ok": true})
        }
        "error_on_nth" => {
            let (Some(n), Some(retval)) = (v["n"].as_u64(), v["retval"].as_i64()) else {
                return json!({"ok": false, "error": "error_on_nth needs \"n\" and \"retval\""});
            };
            let retval = i32::try_from(retval).unwrap_or(vpp_api::rv::UNSPECIFIED);
            with_faults(&|f| {
                f.error_on_nth.push(ErrorOnNth {
                    msg: msg.clone(),
                    n,
                    retval,
                    seen: 0,
                });
            });
            json!({"ok": true})
        }
        "lcp_tap_fail" => {
            let on = v["enable"].as_bool().unwrap_or(true);
            if let Ok(mut m) = sh.model.lock() {
                m.lcp_tap_fail = on;
            }
            json!({"ok": true})
        }
        "lcp_get_page" => {
            let n = v["n"].as_u64().map(|n| n as usize);
            if let Ok(mut m) = sh.model.lock() {
                m.lcp_get_page = n;
            }
            json!({"ok": true})
        }
        "reset_faults" => {
            with_faults(&|f| *f = Faults::default());
            if let Ok(mut m) = sh.model.lock() {
                m.lcp_tap_fail = false;
                m.lcp_get_page = None;
            }
            json!({"ok": true})
        }
        "faults" => {
            let f = sh.faults.lock().map(|f| f.clone()).unwrap_or_default();
            json!({"ok": true, "faults": f})
        }
        "journal" => {
            let since = v["since"].as_u64().unwrap_or(0);
            let entries: Vec<_> = sh
                .journal
                .lock()
                .map(|j| {
                    j.entries()
                        .iter()
                        .filter(|e| e.seq > since)
                        .cloned()
                        .collect()
                })
                .unwrap_or_default();
            json!({"ok": true, "entries": entries})
        }
        "clear_journal" => {
            if let Ok(mut j) = sh.journal.lock() {
                j.clear();
            }
            json!({"ok": true})
        }
        "state" => {
            let st = sh
                .model
                .lock()
                .map(|m| m.st.to_json())
                .unwrap_or(Value::Null);
            json!({"ok": true, "state": st})
        }
        "check_macs" => {
            let entries = sh
                .journal
                .lock()
                .map(|j| j.entries().to_vec())
                .unwrap_or_default();
            match check_mac_exclusive(&entries, &[], v["mac"].as_str()) {
                Ok(()) => json!({"ok": true}),
                Err(e) => json!({"ok": false, "error": e.to_string(), "seq": e.seq}),
            }
        }
        other => json!({"ok": false, "error": format!("unknown cmd {other:?}")}),
    }
}
