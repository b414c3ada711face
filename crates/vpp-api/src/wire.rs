//! Wire format: the 16-byte frame header and the primitive encoders/decoders.
//!
//! Everything here is sans-IO. Integers are big-endian, `f64` is little-endian
//! (VPP does not byte-swap it), structures are packed without padding.
//!
//! * frame = `u64 q (0)` · `u32 data_len` (big-endian, body length) · `u32 (0)` · body
//! * `address` = `u8 af` + 16-byte union (IPv4 in the first 4 bytes) = 17 bytes
//! * `prefix` = `address` + `u8 len` = 18 bytes
//! * fixed string `string x[N]` = N bytes, NUL padded; variable string = `u32 len` + bytes

use std::fmt;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};
use std::str::FromStr;

use bytes::{Buf, BufMut, BytesMut};
use tokio_util::codec::{Decoder, LengthDelimitedCodec};

use crate::error::DecodeError;

/// Size of the frame header that precedes every message body.
pub const FRAME_HEADER_LEN: usize = 16;

/// Largest body accepted by [`FrameCodec`] (the handshake reply of a VPP with
/// every plugin loaded is a few hundred KiB; VPP itself states no limit).
pub const MAX_BODY_LEN: usize = 64 * 1024 * 1024;

/// Appends one frame (header + `body`) to `out`.
pub fn put_frame(out: &mut BytesMut, body: &[u8]) {
    out.reserve(FRAME_HEADER_LEN + body.len());
    out.put_u64(0);
    // Bodies are bounded by MAX_BODY_LEN (< u32::MAX) in every caller.
    out.put_u32(u32::try_from(body.len()).unwrap_or(u32::MAX));
    out.put_u32(0);
    out.put_slice(body);
}

/// Returns a freshly allocated frame (header + `body`).
pub fn frame(body: &[u8]) -> Vec<u8> {
    let mut b = BytesMut::with_capacity(FRAME_HEADER_LEN + body.len());
    put_frame(&mut b, body);
    b.to_vec()
}

/// Tokio codec that splits a byte stream into message bodies (header stripped).
///
/// Decoding reassembles frames split over several reads and splits several
/// frames delivered in one read. Encoding is done by hand with [`put_frame`]
/// because `LengthDelimitedCodec` cannot emit the 8 leading bytes.
#[derive(Debug)]
pub struct FrameCodec {
    inner: LengthDelimitedCodec,
}

impl Default for FrameCodec {
    fn default() -> Self {
        Self::new()
    }
}

impl FrameCodec {
    /// Creates the codec with a body limit of [`MAX_BODY_LEN`].
    pub fn new() -> Self {
        Self {
            inner: LengthDelimitedCodec::builder()
                .big_endian()
                .length_field_offset(8)
                .length_field_length(4)
                .length_adjustment(0)
                .num_skip(FRAME_HEADER_LEN)
                .max_frame_length(MAX_BODY_LEN)
                .new_codec(),
        }
    }
}

impl Decoder for FrameCodec {
    type Item = BytesMut;
    type Error = std::io::Error;

    fn decode(&mut self, src: &mut BytesMut) -> Result<Option<BytesMut>, std::io::Error> {
        self.inner.decode(src)
    }
}

/// Splits complete frames off the front of `buf`, returning the bodies.
/// Incomplete trailing data stays in `buf`. Used by the simulator, which must
/// know when its input buffer is drained (to model VPP's event batching).
pub fn split_frames(buf: &mut BytesMut) -> Result<Vec<BytesMut>, DecodeError> {
    let mut out = Vec::new();
    loop {
        if buf.len() < FRAME_HEADER_LEN {
            return Ok(out);
        }
        let len = u32::from_be_bytes([buf[8], buf[9], buf[10], buf[11]]) as usize;
        if len > MAX_BODY_LEN {
            return Err(DecodeError::TooLong(len));
        }
        if buf.len() < FRAME_HEADER_LEN + len {
            return Ok(out);
        }
        buf.advance(FRAME_HEADER_LEN);
        out.push(buf.split_to(len));
    }
}

/// Bounds-checked big-endian reader over a message body. Never panics.
#[derive(Debug, Clone)]
pub struct Reader<'a> {
    buf: &'a [u8],
    pos: usize,
}

impl<'a> Reader<'a> {
    /// Reads `buf` from offset 0.
    pub fn new(buf: &'a [u8]) -> Self {
        Self { buf, pos: 0 }
    }
    /// Current offset.
    pub fn pos(&self) -> usize {
        self.pos
    }
    /// Bytes left.
    pub fn remaining(&self) -> usize {
        self.buf.len().saturating_sub(self.pos)
    }
    /// Takes the next `n` bytes.
    pub fn take(&mut self, n: usize) -> Result<&'a [u8], DecodeError> {
        let end = self.pos.checked_add(n).ok_or(DecodeError::Short {
            need: usize::MAX,
            have: self.buf.len(),
        })?;
        let s = self.buf.get(self.pos..end).ok_or(DecodeError::Short {
            need: end,
            have: self.buf.len(),
        })?;
        self.pos = end;
        Ok(s)
    }
    /// Takes exactly `N` bytes as an array.
    pub fn array<const N: usize>(&mut self) -> Result<[u8; N], DecodeError> {
        let s = self.take(N)?;
        let mut a = [0u8; N];
        a.copy_from_slice(s);
        Ok(a)
    }
    /// Big-endian u8.
    pub fn u8(&mut self) -> Result<u8, DecodeError> {
        Ok(self.array::<1>()?[0])
    }
    /// Big-endian u16.
    pub fn u16(&mut self) -> Result<u16, DecodeError> {
        Ok(u16::from_be_bytes(self.array()?))
    }
    /// Big-endian u32.
    pub fn u32(&mut self) -> Result<u32, DecodeError> {
        Ok(u32::from_be_bytes(self.array()?))
    }
    /// Big-endian i32.
    pub fn i32(&mut self) -> Result<i32, DecodeError> {
        Ok(i32::from_be_bytes(self.array()?))
    }
    /// Big-endian u64.
    pub fn u64(&mut self) -> Result<u64, DecodeError> {
        Ok(u64::from_be_bytes(self.array()?))
    }
}

/// Encoding and decoding of one field type `T` on the wire.
///
/// Implemented by the domain types themselves (`u32`, `bool`, [`MacAddress`],
/// `IpAddr` as the 17-byte `address`, [`Prefix`]) and by marker types that
/// pick a wire form for a domain type ([`FixedStr`], [`VarStr`]).
pub trait Codec<T> {
    /// Minimum encoded size in bytes (exact size for fixed-size types).
    const MIN: usize;
    /// Appends the encoding of `v`.
    fn put(v: &T, out: &mut Vec<u8>);
    /// Decodes one value.
    fn get(r: &mut Reader<'_>) -> Result<T, DecodeError>;
}

macro_rules! int_codec {
    ($t:ty, $n:expr) => {
        impl Codec<$t> for $t {
            const MIN: usize = $n;
            fn put(v: &$t, out: &mut Vec<u8>) {
                out.extend_from_slice(&v.to_be_bytes());
            }
            fn get(r: &mut Reader<'_>) -> Result<$t, DecodeError> {
                Ok(<$t>::from_be_bytes(r.array()?))
            }
        }
    };
}
int_codec!(u8, 1);
int_codec!(u16, 2);
int_codec!(u32, 4);
int_codec!(i32, 4);
int_codec!(u64, 8);

impl Codec<bool> for bool {
    const MIN: usize = 1;
    fn put(v: &bool, out: &mut Vec<u8>) {
        out.push(u8::from(*v));
    }
    fn get(r: &mut Reader<'_>) -> Result<bool, DecodeError> {
        Ok(r.u8()? != 0)
    }
}

/// `f64` is sent in host order by VPP, i.e. little-endian on every supported host.
impl Codec<f64> for f64 {
    const MIN: usize = 8;
    fn put(v: &f64, out: &mut Vec<u8>) {
        out.extend_from_slice(&v.to_le_bytes());
    }
    fn get(r: &mut Reader<'_>) -> Result<f64, DecodeError> {
        Ok(f64::from_le_bytes(r.array()?))
    }
}

impl<const N: usize> Codec<[u32; N]> for [u32; N] {
    const MIN: usize = 4 * N;
    fn put(v: &[u32; N], out: &mut Vec<u8>) {
        for x in v {
            out.extend_from_slice(&x.to_be_bytes());
        }
    }
    fn get(r: &mut Reader<'_>) -> Result<[u32; N], DecodeError> {
        let mut a = [0u32; N];
        for x in &mut a {
            *x = r.u32()?;
        }
        Ok(a)
    }
}

/// An Ethernet MAC address (`mac_address`, 6 bytes): the workspace's one
/// MAC type, [`evpn_model::Mac`] (one grammar, one EUI-64 derivation).
pub use evpn_model::Mac as MacAddress;

impl Codec<MacAddress> for MacAddress {
    const MIN: usize = 6;
    fn put(v: &MacAddress, out: &mut Vec<u8>) {
        out.extend_from_slice(&v.0);
    }
    fn get(r: &mut Reader<'_>) -> Result<MacAddress, DecodeError> {
        Ok(MacAddress(r.array()?))
    }
}

/// `ip6_address`: 16 bytes in network order.
impl Codec<Ipv6Addr> for Ipv6Addr {
    const MIN: usize = 16;
    fn put(v: &Ipv6Addr, out: &mut Vec<u8>) {
        out.extend_from_slice(&v.octets());
    }
    fn get(r: &mut Reader<'_>) -> Result<Ipv6Addr, DecodeError> {
        Ok(Ipv6Addr::from(r.array::<16>()?))
    }
}

/// `address`: `u8 af` (0 = IPv4, 1 = IPv6) + 16-byte union = 17 bytes.
impl Codec<IpAddr> for IpAddr {
    const MIN: usize = 17;
    fn put(v: &IpAddr, out: &mut Vec<u8>) {
        match v {
            IpAddr::V4(a) => {
                out.push(0);
                out.extend_from_slice(&a.octets());
                out.extend_from_slice(&[0u8; 12]);
            }
            IpAddr::V6(a) => {
                out.push(1);
                out.extend_from_slice(&a.octets());
            }
        }
    }
    fn get(r: &mut Reader<'_>) -> Result<IpAddr, DecodeError> {
        let af = r.u8()?;
        let un: [u8; 16] = r.array()?;
        match af {
            0 => Ok(IpAddr::V4(Ipv4Addr::new(un[0], un[1], un[2], un[3]))),
            1 => Ok(IpAddr::V6(Ipv6Addr::from(un))),
            other => Err(DecodeError::AddressFamily(other)),
        }
    }
}

/// An IP prefix / interface address (`prefix` and `address_with_prefix`,
/// 18 bytes). Host bits may be set: for interface addresses they are the
/// address itself.
#[derive(Clone, Copy, PartialEq, Eq, Hash, Debug, PartialOrd, Ord)]
pub struct Prefix {
    /// The address.
    pub addr: IpAddr,
    /// Prefix length in bits.
    pub len: u8,
}

impl Prefix {
    /// Builds a prefix.
    pub fn new(addr: IpAddr, len: u8) -> Self {
        Self { addr, len }
    }
    /// True when `len` does not exceed the address family's bit width.
    pub fn is_valid(&self) -> bool {
        match self.addr {
            IpAddr::V4(_) => self.len <= 32,
            IpAddr::V6(_) => self.len <= 128,
        }
    }
}

impl fmt::Display for Prefix {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}/{}", self.addr, self.len)
    }
}

/// Error parsing a prefix string.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("invalid prefix {0:?} (expected ADDRESS/LEN)")]
pub struct ParsePrefixError(pub String);

impl FromStr for Prefix {
    type Err = ParsePrefixError;
    fn from_str(s: &str) -> Result<Self, ParsePrefixError> {
        let err = || ParsePrefixError(s.to_owned());
        let (a, l) = s.split_once('/').ok_or_else(err)?;
        let p = Prefix {
            addr: a.parse().map_err(|_| err())?,
            len: l.parse().map_err(|_| err())?,
        };
        if p.is_valid() { Ok(p) } else { Err(err()) }
    }
}

impl Codec<Prefix> for Prefix {
    const MIN: usize = 18;
    fn put(v: &Prefix, out: &mut Vec<u8>) {
        <IpAddr as Codec<IpAddr>>::put(&v.addr, out);
        out.push(v.len);
    }
    fn get(r: &mut Reader<'_>) -> Result<Prefix, DecodeError> {
        let addr = <IpAddr as Codec<IpAddr>>::get(r)?;
        let len = r.u8()?;
        Ok(Prefix { addr, len })
    }
}

/// Wire form `string x[N]`: exactly `N` bytes, NUL padded. Encoding truncates
/// to `N - 1` bytes so a terminating NUL always remains; decoding stops at the
/// first NUL and replaces invalid UTF-8.
#[derive(Debug, Clone, Copy)]
pub struct FixedStr<const N: usize>;

impl<const N: usize> Codec<String> for FixedStr<N> {
    const MIN: usize = N;
    fn put(v: &String, out: &mut Vec<u8>) {
        put_fixed_str(v, N, out);
    }
    fn get(r: &mut Reader<'_>) -> Result<String, DecodeError> {
        Ok(fixed_str(r.take(N)?))
    }
}

/// Appends `s` as a NUL-padded fixed string of `n` bytes.
pub fn put_fixed_str(s: &str, n: usize, out: &mut Vec<u8>) {
    let b = s.as_bytes();
    let k = b.len().min(n.saturating_sub(1));
    out.extend_from_slice(&b[..k]);
    out.resize(out.len() + (n - k), 0);
}

/// Decodes a NUL-terminated/padded byte field.
pub fn fixed_str(b: &[u8]) -> String {
    let end = b.iter().position(|&c| c == 0).unwrap_or(b.len());
    String::from_utf8_lossy(&b[..end]).into_owned()
}

/// Wire form `string x[]`: `u32` big-endian length followed by the bytes, no NUL.
#[derive(Debug, Clone, Copy)]
pub struct VarStr;

impl Codec<String> for VarStr {
    const MIN: usize = 4;
    fn put(v: &String, out: &mut Vec<u8>) {
        out.extend_from_slice(&u32::try_from(v.len()).unwrap_or(u32::MAX).to_be_bytes());
        out.extend_from_slice(v.as_bytes());
    }
    fn get(r: &mut Reader<'_>) -> Result<String, DecodeError> {
        let n = r.u32()? as usize;
        let b = r.take(n)?;
        Ok(String::from_utf8_lossy(b).into_owned())
    }
}

/// Formats bytes as lowercase hex (diagnostics).
pub fn to_hex(b: &[u8]) -> String {
    b.iter().map(|x| format!("{x:02x}")).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn codec_reassembles_split_and_joined_frames() {
        let mut all = Vec::new();
        all.extend(frame(&[0, 23, 0, 0, 0, 1, 0, 0, 0, 2]));
        all.extend(frame(&[0, 24, 0, 0, 0, 2]));
        let mut codec = FrameCodec::new();
        let mut buf = BytesMut::new();
        let mut got = Vec::new();
        for b in all {
            buf.put_u8(b);
            while let Some(f) = codec.decode(&mut buf).unwrap_or(None) {
                got.push(f.to_vec());
            }
        }
        assert_eq!(got.len(), 2);
        assert_eq!(got[0], vec![0, 23, 0, 0, 0, 1, 0, 0, 0, 2]);
        assert_eq!(got[1], vec![0, 24, 0, 0, 0, 2]);
    }

    #[test]
    fn header_layout() {
        let f = frame(&[1, 2, 3]);
        assert_eq!(&f[..16], &[0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 3, 0, 0, 0, 0]);
    }

    #[test]
    fn mac_and_prefix_parse() {
        let m: MacAddress = "42:6c:fa:d6:82:98".parse().unwrap_or_default();
        assert_eq!(m.to_string(), "42:6c:fa:d6:82:98");
        assert_eq!(m.link_local().to_string(), "fe80::406c:faff:fed6:8298");
        // The model's grammar: no signs, two digits per octet.
        assert!("+f:00:00:00:00:01".parse::<MacAddress>().is_err());
        assert!("1.2.3.4/33".parse::<Prefix>().is_err());
        assert!("fec0::32/64".parse::<Prefix>().is_ok());
    }
}
