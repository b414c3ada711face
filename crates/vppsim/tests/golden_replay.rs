//! Replays the golden requests against vppsim and compares every reply,
//! details and event byte for byte (outside the volatile ranges).

mod common;

use std::time::Duration;

use bytes::BytesMut;
use serde_json::Value;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::UnixStream;
use vpp_api::wire::{put_frame, split_frames};
use vppsim::SimOptions;

fn body(e: &Value) -> Vec<u8> {
    hex::decode(e["hex"].as_str().expect("hex")).expect("hex")
}

fn volatile(e: &Value) -> Vec<(usize, usize)> {
    e["volatile_bytes"]
        .as_array()
        .map(|a| {
            a.iter()
                .map(|r| {
                    (
                        r[0].as_u64().unwrap_or(0) as usize,
                        r[1].as_u64().unwrap_or(0) as usize,
                    )
                })
                .collect()
        })
        .unwrap_or_default()
}

struct Reader {
    s: UnixStream,
    buf: BytesMut,
    queue: std::collections::VecDeque<Vec<u8>>,
}

impl Reader {
    async fn next(&mut self) -> Option<Vec<u8>> {
        loop {
            if let Some(f) = self.queue.pop_front() {
                return Some(f);
            }
            let n = tokio::time::timeout(Duration::from_secs(2), self.s.read_buf(&mut self.buf))
                .await
                .ok()?
                .ok()?;
            if n == 0 {
                return None;
            }
            for f in split_frames(&mut self.buf).expect("frames") {
                self.queue.push_back(f.to_vec());
            }
        }
    }
}

#[tokio::test]
async fn golden_requests_yield_golden_replies() {
    let v = common::vectors();
    // Seq 74: the capture host had no /dev/vhost-net, so pair creation failed with -11.
    let sim = common::Sim::start(SimOptions {
        lcp_tap_fail: true,
        ..SimOptions::default()
    })
    .await;
    let table = sim.handle.message_table().clone();
    let s = UnixStream::connect(sim.handle.socket_path())
        .await
        .expect("connect");
    let mut rd = Reader {
        s,
        buf: BytesMut::new(),
        queue: Default::default(),
    };
    let id_for = |e: &Value| -> Option<u16> { table.get(e["name"].as_str().unwrap_or("")) };

    // Handshake (seq 1 → 2).
    let mut out = BytesMut::new();
    put_frame(&mut out, &body(&v[0]));
    rd.s.write_all(&out).await.expect("write");
    let rep = rd.next().await.expect("handshake reply");
    let want = body(&v[1]);
    assert_eq!(
        rep.len(),
        want.len(),
        "handshake reply length (866 entries)"
    );
    assert_eq!(&rep[..14], &want[..14], "handshake reply header");
    assert_eq!(&rep[18..20], &want[18..20], "entry count");
    let ci: [u8; 4] = rep[14..18].try_into().expect("index");

    let mut i = 2;
    let mut compared = 0;
    while i < v.len() {
        // A batch of consecutive requests, written at once.
        let mut out = BytesMut::new();
        while i < v.len() && v[i]["direction"] == "request" {
            let e = &v[i];
            let mut b = body(e);
            if let Some(id) = id_for(e) {
                b[0..2].copy_from_slice(&id.to_be_bytes());
            }
            b[2..6].copy_from_slice(&ci);
            if e["name"] == "sockclnt_delete_8ac76db6" {
                b[10..14].copy_from_slice(&ci);
            }
            put_frame(&mut out, &b);
            i += 1;
        }
        rd.s.write_all(&out).await.expect("write");
        // Then the frames VPP sent before the next request.
        while i < v.len() && v[i]["direction"] != "request" {
            let e = &v[i];
            let seq = e["seq"].as_u64().unwrap_or(0);
            let got = rd
                .next()
                .await
                .unwrap_or_else(|| panic!("seq {seq} ({}): no frame", e["name"]));
            let mut want = body(e);
            if let Some(id) = id_for(e) {
                want[0..2].copy_from_slice(&id.to_be_bytes());
            }
            assert_eq!(
                got.len(),
                want.len(),
                "seq {seq} ({}): length\n got {}\nwant {}",
                e["name"],
                hex::encode(&got),
                hex::encode(&want)
            );
            let vol = volatile(e);
            for k in 0..got.len() {
                if vol.iter().any(|&(a, b)| k >= a && k < b) {
                    continue;
                }
                assert_eq!(
                    got[k],
                    want[k],
                    "seq {seq} ({}): byte {k}\n got {}\nwant {}",
                    e["name"],
                    hex::encode(&got),
                    hex::encode(&want)
                );
            }
            compared += 1;
            i += 1;
        }
    }
    assert_eq!(compared, 68, "replies + details + events compared");
    // After sockclnt_delete_reply the server closes the socket.
    assert!(
        rd.next().await.is_none(),
        "socket closed after sockclnt_delete"
    );
    // The journal saw the state changes in order.
    let j = sim.handle.journal();
    assert_eq!(
        j.first().map(|e| e.msg.as_str()),
        Some("create_loopback_instance")
    );
    assert!(
        j.windows(2)
            .all(|w| w[0].seq + 1 == w[1].seq && w[0].mono_ns <= w[1].mono_ns)
    );
    assert!(sim.handle.check_mac_exclusive(None).is_ok());
}

/// The embedded table is the golden one.
#[test]
fn embedded_table_is_the_golden_table() {
    let golden =
        std::fs::read_to_string(common::golden_dir().join("message-table.txt")).expect("golden");
    assert_eq!(vppsim::MESSAGE_TABLE, golden);
    let t = vppsim::message_table(&[]).expect("table");
    assert_eq!(t.len(), 866);
    let without = vppsim::message_table(&["linux_cp_plugin.so".into(), "vxlan".into()]).expect("t");
    assert!(without.get("lcp_itf_pair_get_f75ba505").is_none());
    assert!(without.get("vxlan_tunnel_v2_dump_f9e6675e").is_none());
    assert!(without.get("arping_48817482").is_some());
    assert!(vppsim::message_table(&["dpdk".into()]).is_err());
}
