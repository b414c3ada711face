//! Issue 13 item 3 through evpnd's API, against real BIRD 2.20: a BIRD read that evpnd cuts
//! short (GetBirdInfo bounds its reads to 300 ms) after the command was written must not leave
//! its reply for the next command. Seen in the field as `unexpected BIRD reply to "configure
//! check …": 0013 Daemon is up and running` on every later write, until evpnd restarted.
mod common;

use common::*;
use evpn_api::v1;
use nix::sys::signal::{Signal, kill};
use nix::unistd::Pid;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_bird_read_cut_short_never_hands_its_reply_to_the_next_command() {
    let mut h = Host::new(
        "a_bird_read_cut_short_never_hands_its_reply_to_the_next_command",
        "r1",
    )
    .await;
    h.start_evpnd();
    let mut c = h.client().await;
    let info = c
        .get_bird_info(v1::InstanceRef::default())
        .await
        .unwrap()
        .into_inner();
    assert_eq!(info.health(), v1::Health::Ok, "{info:?}");

    // BIRD stops answering: GetBirdInfo writes `show status` and `show protocols` and gives up
    // on both replies. BIRD answers them once it runs again.
    let bird = Pid::from_raw(h.bird.pid().unwrap() as i32);
    kill(bird, Signal::SIGSTOP).unwrap();
    let info = c.get_bird_info(v1::InstanceRef::default()).await;
    kill(bird, Signal::SIGCONT).unwrap();
    let info = info.unwrap().into_inner();
    assert_eq!(info.health(), v1::Health::Down, "{info:?}");

    // Every later command reads its own reply: the eVPN is applied to BIRD (`configure check`,
    // `configure`, `show protocols`), and BIRD reports healthy with the eVPN's protocols.
    c.create_evpn_instance(v1::CreateEvpnInstanceRequest {
        slug: "test".into(),
        vni: 100,
        ..Default::default()
    })
    .await
    .unwrap();
    assert!(h.snippet("test").is_some());
    let info = c
        .get_bird_info(v1::InstanceRef::default())
        .await
        .unwrap()
        .into_inner();
    assert_eq!(info.health(), v1::Health::Ok, "{info:?}");
    let names: Vec<_> = info.protocols.iter().map(|p| p.name.as_str()).collect();
    assert!(names.contains(&"evpn_test"), "{names:?}");
}
