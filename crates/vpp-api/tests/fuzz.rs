//! Property tests: decoders never panic on arbitrary bytes, and typed
//! messages survive an encode/decode round trip.

use bytes::BytesMut;
use proptest::prelude::*;
use tokio_util::codec::Decoder;
use vpp_api::msgs::{self, Message};
use vpp_api::wire::{FrameCodec, split_frames};

fn decode_everything(b: &[u8]) {
    macro_rules! all {
        ($($t:ty),* $(,)?) => { $( let _ = msgs::decode_msg::<$t>(b); )* };
    }
    all!(
        msgs::SockclntCreate,
        msgs::SockclntCreateReply,
        msgs::SockclntDelete,
        msgs::SockclntDeleteReply,
        msgs::ControlPing,
        msgs::ControlPingReply,
        msgs::ShowVersionReply,
        msgs::CreateLoopbackInstance,
        msgs::CreateLoopbackInstanceReply,
        msgs::CreateLoopback,
        msgs::DeleteLoopback,
        msgs::DeleteLoopbackReply,
        msgs::SwInterfaceSetMacAddress,
        msgs::SwInterfaceSetFlags,
        msgs::SwInterfaceAddDelAddress,
        msgs::SwInterfaceSetMtu,
        msgs::HwInterfaceSetMtu,
        msgs::SwInterfaceDump,
        msgs::SwInterfaceDetails,
        msgs::WantInterfaceEvents,
        msgs::SwInterfaceEvent,
        msgs::SwInterfaceIp6SetLinkLocalAddress,
        msgs::SwInterfaceIp6GetLinkLocalAddressReply,
        msgs::IpAddressDump,
        msgs::IpAddressDetails,
        msgs::BridgeDomainAddDelV2,
        msgs::BridgeDomainAddDelV2Reply,
        msgs::BridgeDomainDump,
        msgs::BridgeDomainDetails,
        msgs::SwInterfaceSetL2Bridge,
        msgs::L2fibAddDel,
        msgs::LcpItfPairAddDelV3,
        msgs::LcpItfPairAddDelV3Reply,
        msgs::LcpItfPairGet,
        msgs::LcpItfPairGetReply,
        msgs::LcpItfPairDetails,
        msgs::IpNeighborAddDel,
        msgs::IpNeighborAddDelReply,
        msgs::IpNeighborDump,
        msgs::IpNeighborDetails,
        msgs::Arping,
        msgs::ArpingReply,
        msgs::VxlanAddDelTunnelV3,
        msgs::VxlanAddDelTunnelV3Reply,
        msgs::VxlanTunnelV2Dump,
        msgs::VxlanTunnelV2Details,
    );
    let _ = msgs::body_msg_id(b);
    let _ = msgs::reply_context(b);
    let _ = msgs::request_header(b);
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(2000))]

    #[test]
    fn decoders_never_panic(b in proptest::collection::vec(any::<u8>(), 0..400)) {
        decode_everything(&b);
    }

    #[test]
    fn frame_splitters_never_panic(b in proptest::collection::vec(any::<u8>(), 0..200)) {
        let mut buf = BytesMut::from(&b[..]);
        let _ = split_frames(&mut buf);
        let mut buf = BytesMut::from(&b[..]);
        let mut c = FrameCodec::new();
        while let Ok(Some(_)) = c.decode(&mut buf) {}
    }

    #[test]
    fn counts_cannot_overflow(count in any::<u32>(), tail in proptest::collection::vec(any::<u8>(), 0..64)) {
        // bridge_domain_details with a huge n_sw_ifs.
        let mut b = vec![0u8; 89];
        b.extend_from_slice(&count.to_be_bytes());
        b.extend_from_slice(&tail);
        prop_assert!(msgs::decode_msg::<msgs::BridgeDomainDetails>(&b).is_ok() == (count as usize * 9 <= tail.len()));
    }

    #[test]
    fn arping_roundtrips(a in any::<[u8; 16]>(), v6 in any::<bool>(), idx in any::<u32>(), interval in any::<f64>(), repeat in any::<u32>()) {
        let address = if v6 {
            std::net::IpAddr::V6(a.into())
        } else {
            std::net::IpAddr::V4(std::net::Ipv4Addr::new(a[0], a[1], a[2], a[3]))
        };
        let m = msgs::Arping { address, sw_if_index: idx, is_garp: true, repeat, interval };
        let body = msgs::encode_msg(&m, 7, 0x8000_0001, 9);
        prop_assert_eq!(body.len(), msgs::Arping::MIN_LEN);
        let (h, back) = msgs::decode_msg::<msgs::Arping>(&body).expect("decode");
        prop_assert_eq!((h.msg_id, h.client_index, h.context), (7, 0x8000_0001, 9));
        prop_assert_eq!(back.address, address);
        prop_assert_eq!(back.interval.to_bits(), interval.to_bits());
    }

    #[test]
    fn names_roundtrip(name in "[a-z0-9_]{0,80}") {
        let m = msgs::LcpItfPairAddDelV3 {
            is_add: true, sw_if_index: 1, host_if_name: name.clone(), host_if_type: 0, netns: name.clone(),
        };
        let body = msgs::encode_msg(&m, 1, 2, 3);
        prop_assert_eq!(body.len(), msgs::LcpItfPairAddDelV3::MIN_LEN);
        let (_, back) = msgs::decode_msg::<msgs::LcpItfPairAddDelV3>(&body).expect("decode");
        let n16: String = name.chars().take(15).collect();
        let n32: String = name.chars().take(31).collect();
        prop_assert_eq!(back.host_if_name, n16);
        prop_assert_eq!(back.netns, n32);
    }
}
