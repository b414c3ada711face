//! Messages of `interface.api` and `ip.api`.

use std::net::Ipv6Addr;

use super::{Message, Reply, SW_IF_INDEX_NONE, Shape};
use crate::error::DecodeError;
use crate::wire::{Codec, FixedStr, MacAddress, Prefix, Reader, VarStr};

// ---------------------------------------------------------------- interface

message! {
    /// `create_loopback_instance`: creates `loop<instance>`.
    Request CreateLoopbackInstance = "create_loopback_instance", "d36a3ee2" {
        /// MAC; all-zero lets VPP pick `de:ad:00:00:00:<instance>`.
        mac_address: MacAddress,
        /// Use `user_instance`.
        is_specified: bool,
        /// Requested instance number.
        user_instance: u32,
    }
}
message! {
    /// `create_loopback_instance_reply`.
    Reply CreateLoopbackInstanceReply = "create_loopback_instance_reply", "5383d31f" {
        /// Result code (-31 when the instance is taken).
        retval: i32,
        /// The new interface.
        sw_if_index: u32,
    }
}
impl_reply!(CreateLoopbackInstanceReply {
    sw_if_index: SW_IF_INDEX_NONE
});

message! {
    /// `create_loopback`: creates a loopback with an automatic instance.
    Request CreateLoopback = "create_loopback", "42bb5d22" {
        /// MAC; all-zero lets VPP pick one.
        mac_address: MacAddress,
    }
}
message! {
    /// `create_loopback_reply`.
    Reply CreateLoopbackReply = "create_loopback_reply", "5383d31f" {
        /// Result code.
        retval: i32,
        /// The new interface.
        sw_if_index: u32,
    }
}
impl_reply!(CreateLoopbackReply {
    sw_if_index: SW_IF_INDEX_NONE
});

message! {
    /// `delete_loopback`.
    Request DeleteLoopback = "delete_loopback", "f9e6675e" {
        /// The loopback to delete.
        sw_if_index: u32,
    }
}
message! {
    /// `sw_interface_set_mac_address`.
    Request SwInterfaceSetMacAddress = "sw_interface_set_mac_address", "c536e7eb" {
        /// Interface.
        sw_if_index: u32,
        /// New MAC.
        mac_address: MacAddress,
    }
}
message! {
    /// `sw_interface_set_flags` (only ADMIN_UP is honoured).
    Request SwInterfaceSetFlags = "sw_interface_set_flags", "f5aec1b8" {
        /// Interface.
        sw_if_index: u32,
        /// `if_status_flags`.
        flags: u32,
    }
}
message! {
    /// `sw_interface_add_del_address`.
    Request SwInterfaceAddDelAddress = "sw_interface_add_del_address", "5463d73b" {
        /// Interface.
        sw_if_index: u32,
        /// Add (true) or delete.
        is_add: bool,
        /// Delete every address (prefix ignored).
        del_all: bool,
        /// The interface address with its prefix length.
        prefix: Prefix,
    }
}
message! {
    /// `sw_interface_set_mtu`: per-protocol MTUs `[L3, IP4, IP6, MPLS]`.
    Request SwInterfaceSetMtu = "sw_interface_set_mtu", "5cbe85e5" {
        /// Interface.
        sw_if_index: u32,
        /// MTUs; 0 = inherit the L3 value.
        mtu: [u32; 4],
    }
}
message! {
    /// `hw_interface_set_mtu` (hardware ethernet interfaces only).
    Request HwInterfaceSetMtu = "hw_interface_set_mtu", "e6746899" {
        /// Interface.
        sw_if_index: u32,
        /// MTU.
        mtu: u16,
    }
}
message! {
    /// `sw_interface_dump`.
    Request SwInterfaceDump = "sw_interface_dump", "aa610c27" {
        /// 0 or `~0` = all, else only that interface.
        sw_if_index: u32,
        /// Apply `name_filter`.
        name_filter_valid: bool,
        /// Case-insensitive substring filter on the name.
        name_filter: String as VarStr,
    }
}
message! {
    /// `sw_interface_details` (295 bytes).
    Reply SwInterfaceDetails = "sw_interface_details", "6c221fc7" {
        /// Interface.
        sw_if_index: u32,
        /// Parent (self for non-sub-interfaces).
        sup_sw_if_index: u32,
        /// MAC.
        l2_address: MacAddress,
        /// `if_status_flags`.
        flags: u32,
        /// `if_type`.
        r#type: u32,
        /// `link_duplex`.
        link_duplex: u32,
        /// Link speed in kbps.
        link_speed: u32,
        /// Link (hardware) MTU.
        link_mtu: u16,
        /// `[L3, IP4, IP6, MPLS]` MTUs.
        mtu: [u32; 4],
        /// Sub-interface id.
        sub_id: u32,
        /// VLAN tag count.
        sub_number_of_tags: u8,
        /// Outer VLAN.
        sub_outer_vlan_id: u16,
        /// Inner VLAN.
        sub_inner_vlan_id: u16,
        /// Sub-interface flags.
        sub_if_flags: u32,
        /// VLAN tag rewrite op.
        vtr_op: u32,
        /// VTR push dot1q.
        vtr_push_dot1q: u32,
        /// VTR tag 1.
        vtr_tag1: u32,
        /// VTR tag 2.
        vtr_tag2: u32,
        /// PBB outer tag.
        outer_tag: u16,
        /// PBB destination MAC.
        b_dmac: MacAddress,
        /// PBB source MAC.
        b_smac: MacAddress,
        /// PBB VLAN.
        b_vlanid: u16,
        /// PBB I-SID.
        i_sid: u32,
        /// Interface name, e.g. `loop100`.
        interface_name: String as FixedStr<64>,
        /// Device type, e.g. `Loopback`.
        interface_dev_type: String as FixedStr<64>,
        /// User tag.
        tag: String as FixedStr<64>,
    }
}
message! {
    /// `want_interface_events`: (un)subscribe to `sw_interface_event`.
    Request WantInterfaceEvents = "want_interface_events", "476f5a08" {
        /// 1 = enable, 0 = disable.
        enable_disable: u32,
        /// Echoed in every event.
        pid: u32,
    }
}
message! {
    /// `sw_interface_event` (no context).
    Event SwInterfaceEvent = "sw_interface_event", "2d3d95a7" {
        /// The subscriber's pid.
        pid: u32,
        /// Interface.
        sw_if_index: u32,
        /// OR of the event kinds since the last event (not necessarily current).
        flags: u32,
        /// Interface deleted.
        deleted: bool,
    }
}

// ---------------------------------------------------------------- ip

message! {
    /// `sw_interface_ip6_set_link_local_address` (enables IPv6 if needed).
    Request SwInterfaceIp6SetLinkLocalAddress = "sw_interface_ip6_set_link_local_address", "1c10f15f" {
        /// Interface.
        sw_if_index: u32,
        /// Link-local address.
        ip: Ipv6Addr,
    }
}
message! {
    /// `sw_interface_ip6_get_link_local_address`.
    Request SwInterfaceIp6GetLinkLocalAddress = "sw_interface_ip6_get_link_local_address", "f9e6675e" {
        /// Interface.
        sw_if_index: u32,
    }
}
message! {
    /// `sw_interface_ip6_get_link_local_address_reply`.
    Reply SwInterfaceIp6GetLinkLocalAddressReply = "sw_interface_ip6_get_link_local_address_reply", "d16b7130" {
        /// Result code.
        retval: i32,
        /// Link-local address.
        ip: Ipv6Addr,
    }
}
impl_reply!(SwInterfaceIp6GetLinkLocalAddressReply {
    ip: Ipv6Addr::UNSPECIFIED
});

message! {
    /// `sw_interface_get_table`: the FIB (VRF id) of an interface for one family.
    Request SwInterfaceGetTable = "sw_interface_get_table", "2d033de4" {
        /// Interface.
        sw_if_index: u32,
        /// IPv6 (true) or IPv4.
        is_ipv6: bool,
    }
}
message! {
    /// `sw_interface_get_table_reply`.
    Reply SwInterfaceGetTableReply = "sw_interface_get_table_reply", "a6eb0109" {
        /// Result code (-2: no such interface).
        retval: i32,
        /// VRF id (0 = the default table).
        vrf_id: u32,
    }
}
impl_reply!(SwInterfaceGetTableReply { vrf_id: 0 });

message! {
    /// `ip_address_dump`: interface addresses of one family.
    Request IpAddressDump = "ip_address_dump", "2d033de4" {
        /// Interface.
        sw_if_index: u32,
        /// IPv6 (true) or IPv4.
        is_ipv6: bool,
    }
}
message! {
    /// `ip_address_details`.
    Reply IpAddressDetails = "ip_address_details", "ee29b797" {
        /// Interface.
        sw_if_index: u32,
        /// Address with prefix length.
        prefix: Prefix,
    }
}
