//! VPP's `vnet_api_error` codes (`src/vnet/error.h`): the one table of
//! names, what each means to an operator and what kind of refusal it is.
//! The client names retvals from it ([`crate::VppError::Retval`]), evpnd maps
//! [`RetvalClass`] to gRPC codes, and vppsim answers with [`rv`]'s constants.

/// What kind of refusal a retval is, for the caller's status code.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RetvalClass {
    /// Success (0).
    Ok,
    /// VPP's state does not allow it: something is in use, exists already,
    /// or is gone (`FAILED_PRECONDITION`).
    Conflict,
    /// A value was refused (`INVALID_ARGUMENT`).
    Invalid,
    /// VPP cannot do this here: a feature, plugin or system resource is
    /// missing (`FAILED_PRECONDITION`).
    Unsupported,
    /// Temporary; try again (evpnd: `ABORTED`).
    Retry,
    /// Unexpected (`INTERNAL`).
    Internal,
}

/// One retval: its code, name, class and meaning.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RetvalInfo {
    /// The (negative) code.
    pub code: i32,
    /// VPP's name, e.g. `BD_IN_USE`.
    pub name: &'static str,
    /// The kind of refusal.
    pub class: RetvalClass,
    /// What it means, for an operator.
    pub meaning: &'static str,
}

macro_rules! retvals {
    ($($name:ident = $code:literal, $class:ident, $meaning:literal;)*) => {
        /// The codes as constants (what vppsim answers with).
        pub mod rv {
            $(
                #[doc = $meaning]
                pub const $name: i32 = $code;
            )*
        }
        /// Every known retval, by code (descending).
        pub const RETVALS: &[RetvalInfo] = &[
            $( RetvalInfo {
                code: $code,
                name: stringify!($name),
                class: RetvalClass::$class,
                meaning: $meaning,
            }, )*
        ];
    };
}

retvals! {
    OK = 0, Ok, "success";
    UNSPECIFIED = -1, Internal, "VPP failed without saying why (see VPP's log)";
    INVALID_SW_IF_INDEX = -2, Conflict, "the interface does not exist (any more), or is not in the mode the call needs (e.g. not in a bridge domain)";
    NO_SUCH_FIB = -3, Conflict, "the FIB (routing table) does not exist";
    NO_SUCH_INNER_FIB = -4, Conflict, "the inner FIB does not exist";
    NO_SUCH_LABEL = -5, Conflict, "the MPLS label does not exist";
    NO_SUCH_ENTRY = -6, Conflict, "the entry does not exist";
    INVALID_VALUE = -7, Invalid, "a value is out of range";
    INVALID_VALUE_2 = -8, Invalid, "a second value is out of range";
    UNIMPLEMENTED = -9, Unsupported, "VPP does not implement this";
    INVALID_SW_IF_INDEX_2 = -10, Conflict, "the second interface does not exist";
    SYSCALL_ERROR_1 = -11, Unsupported, "a system call inside VPP failed (linux-cp: its TAP could not be created, e.g. no /dev/vhost-net; see VPP's log)";
    SYSCALL_ERROR_2 = -12, Unsupported, "a system call inside VPP failed (see VPP's log)";
    SYSCALL_ERROR_3 = -13, Unsupported, "a system call inside VPP failed (see VPP's log)";
    SYSCALL_ERROR_4 = -14, Unsupported, "a system call inside VPP failed (see VPP's log)";
    SYSCALL_ERROR_5 = -15, Unsupported, "a system call inside VPP failed (see VPP's log)";
    SYSCALL_ERROR_6 = -16, Unsupported, "a system call inside VPP failed (see VPP's log)";
    SYSCALL_ERROR_7 = -17, Unsupported, "a system call inside VPP failed (see VPP's log)";
    SYSCALL_ERROR_8 = -18, Unsupported, "a system call inside VPP failed (see VPP's log)";
    SYSCALL_ERROR_9 = -19, Unsupported, "a system call inside VPP failed (see VPP's log)";
    SYSCALL_ERROR_10 = -20, Unsupported, "a system call inside VPP failed (see VPP's log)";
    FEATURE_DISABLED = -30, Unsupported, "the feature is disabled or does not apply to this interface";
    INVALID_REGISTRATION = -31, Conflict, "already registered or taken (a loopback instance in use, a duplicate subscription)";
    NEXT_HOP_NOT_IN_FIB = -50, Conflict, "the next hop is not in the FIB";
    UNKNOWN_DESTINATION = -51, Conflict, "unknown destination";
    NO_MATCHING_INTERFACE = -54, Conflict, "no matching interface";
    INVALID_VLAN = -55, Invalid, "invalid VLAN";
    VLAN_ALREADY_EXISTS = -56, Conflict, "the VLAN exists already";
    INVALID_SRC_ADDRESS = -57, Invalid, "invalid source address";
    INVALID_DST_ADDRESS = -58, Invalid, "invalid destination address";
    ADDRESS_LENGTH_MISMATCH = -59, Invalid, "address length mismatch";
    ADDRESS_NOT_FOUND_FOR_INTERFACE = -60, Conflict, "the address is not on the interface";
    ADDRESS_NOT_DELETABLE = -61, Conflict, "the address cannot be deleted";
    IP6_NOT_ENABLED = -62, Conflict, "IPv6 is not enabled on the interface";
    NO_SUCH_NODE = -63, Unsupported, "no such graph node (plugin not loaded?)";
    NO_SUCH_TABLE = -65, Conflict, "the table does not exist";
    INVALID_INTERFACE = -71, Invalid, "the interface cannot be used for this";
    INVALID_ARGUMENT = -73, Invalid, "an argument is invalid";
    UNEXPECTED_INTF_STATE = -74, Conflict, "the interface is not in the expected state";
    TUNNEL_EXIST = -75, Conflict, "the tunnel exists already";
    INVALID_DECAP_NEXT = -76, Invalid, "invalid decap-next";
    RESPONSE_NOT_READY = -77, Retry, "VPP is not ready to answer; try again";
    NOT_CONNECTED = -78, Retry, "not connected";
    IF_ALREADY_EXISTS = -79, Conflict, "the interface exists already";
    VALUE_EXIST = -81, Conflict, "the entry exists already";
    SAME_SRC_DST = -82, Invalid, "source and destination are the same";
    IP_PREFIX_INVALID = -88, Invalid, "invalid IP prefix";
    INVALID_ADDRESS_FAMILY = -97, Invalid, "invalid address family";
    ADDRESS_IN_USE = -105, Conflict, "the address overlaps an address on an interface of the same FIB (VPP refuses overlapping subnets, and the same address twice)";
    ADDRESS_NOT_IN_USE = -106, Conflict, "the address is not in use";
    QUEUE_FULL = -107, Retry, "VPP's queue is full; try again";
    ADDRESS_FOUND_FOR_INTERFACE = -114, Conflict, "the interface has addresses, which the change does not allow";
    ENTRY_ALREADY_EXISTS = -116, Conflict, "the entry exists already";
    BD_ALREADY_EXISTS = -119, Conflict, "the bridge domain exists already";
    BD_IN_USE = -120, Conflict, "the bridge domain still has member interfaces (remove them from it first)";
    BD_NOT_MODIFIABLE = -121, Conflict, "bridge domain 0 cannot be changed";
    BD_ID_EXCEED_MAX = -122, Invalid, "the bridge-domain ID is above VPP's maximum (16777215)";
    SUBIF_DOESNT_EXIST = -123, Conflict, "the sub-interface does not exist";
    UNSUPPORTED = -126, Unsupported, "the interface does not support this (e.g. a MAC on a non-Ethernet interface)";
    DUPLICATE_IF_ADDRESS = -127, Conflict, "the address (IPv6: or an overlapping one) is already on an interface of the same FIB";
    ILLEGAL_NAME = -133, Invalid, "the name is not allowed";
    INIT_FAILED = -144, Internal, "initialisation failed";
    NETLINK_ERROR = -145, Internal, "netlink error inside VPP";
    INSTANCE_IN_USE = -147, Conflict, "the instance number is in use";
    NON_ETHERNET = -151, Unsupported, "the interface is not an Ethernet interface";
    BD_ALREADY_HAS_BVI = -152, Conflict, "the bridge domain has another BVI already";
    RSRC_IN_USE = -155, Conflict, "the resource is in use";
    NO_CHANGE = -160, Conflict, "nothing would change";
    LIMIT_EXCEEDED = -162, Unsupported, "a limit is exceeded";
    EAGAIN = -165, Retry, "call again (with the returned cursor)";
    INVALID_VALUE_4 = -166, Invalid, "a fourth value is out of range";
    BUSY = -167, Retry, "VPP is busy; try again";
    BUG = -168, Internal, "a bug in VPP";
    FEATURE_ALREADY_DISABLED = -169, Conflict, "the feature is disabled already";
    FEATURE_ALREADY_ENABLED = -170, Conflict, "the feature is enabled already";
    INVALID_PREFIX_LENGTH = -171, Invalid, "invalid prefix length";
}

/// The table entry of `code`, if VPP 25.10 defines it.
pub fn retval_info(code: i32) -> Option<&'static RetvalInfo> {
    RETVALS.iter().find(|r| r.code == code)
}

/// Name of a VPP `vnet_api_error` code, e.g. `-2` → `INVALID_SW_IF_INDEX`.
/// Unknown codes give `None`.
pub fn retval_name(code: i32) -> Option<&'static str> {
    retval_info(code).map(|r| r.name)
}

/// The class of `code`; unknown codes are [`RetvalClass::Internal`].
pub fn retval_class(code: i32) -> RetvalClass {
    retval_info(code).map_or(RetvalClass::Internal, |r| r.class)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn table_is_consistent() {
        for (i, r) in RETVALS.iter().enumerate() {
            assert!(r.code <= 0 && !r.meaning.is_empty(), "{r:?}");
            assert!(
                RETVALS[..i]
                    .iter()
                    .all(|o| o.code != r.code && o.name != r.name)
            );
        }
        assert_eq!(rv::BD_IN_USE, -120);
        assert_eq!(retval_name(-105), Some("ADDRESS_IN_USE"));
        assert_eq!(retval_class(-120), RetvalClass::Conflict);
        assert_eq!(retval_class(-165), RetvalClass::Retry);
        assert_eq!(retval_class(-9999), RetvalClass::Internal);
        assert!(retval_info(-120).unwrap().meaning.contains("member"));
    }
}
