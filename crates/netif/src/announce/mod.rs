//! Gratuitous ARP and unsolicited IPv6 NA: pure frame builders ([`frame`]), a pure paced
//! schedule ([`schedule`]) and the raw sockets that send them ([`sock`], the crate's only
//! `unsafe` module).

pub mod frame;
pub mod schedule;
pub mod sock;

pub use frame::{ArpInfo, NaFlags, NaInfo, garp_frame, na_message, parse_arp, parse_na};
pub use schedule::Schedule;
pub use sock::{Announcer, RawCapture};
