//! The registry journal's record format, sans IO: each record is
//! `len: u32 LE | crc32: u32 LE | seq: u64 LE | payload (len bytes)`, the
//! CRC-32 (IEEE) covering `seq` and the payload. Sequence numbers strictly
//! increase along the journal and continue across compactions.
use std::ops::Range;

/// Bytes before a record's payload.
pub const HEADER: usize = 16;

/// A payload longer than this is not a record (a corrupt length).
const MAX_PAYLOAD: usize = 256 << 20;

/// One record's bytes.
pub fn encode(seq: u64, payload: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(HEADER + payload.len());
    let len = u32::try_from(payload.len()).unwrap_or(u32::MAX);
    out.extend_from_slice(&len.to_le_bytes());
    out.extend_from_slice(&checksum(seq, payload).to_le_bytes());
    out.extend_from_slice(&seq.to_le_bytes());
    out.extend_from_slice(payload);
    out
}

/// Why a scan stopped.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Stop {
    /// At the end of the journal, after a whole record (or an empty journal).
    End,
    /// At a record cut short or mis-checksummed at the journal's end: an
    /// append interrupted by a crash, never acknowledged.
    Torn,
    /// At a bad record followed by more bytes: the journal is damaged.
    Corrupt(String),
}

/// The journal's valid prefix.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Scan {
    /// Whole, valid records in the prefix.
    pub records: usize,
    /// Length of the valid prefix (where the journal is cut back to).
    pub good_end: usize,
    /// The last valid record: its sequence number and payload range.
    pub last: Option<(u64, Range<usize>)>,
    pub stop: Stop,
}

/// Scan `bytes` (a whole journal) for its valid prefix.
pub fn scan(bytes: &[u8]) -> Scan {
    let mut s = Scan {
        records: 0,
        good_end: 0,
        last: None,
        stop: Stop::End,
    };
    let mut at = 0;
    while at < bytes.len() {
        let rest = &bytes[at..];
        if rest.len() < HEADER {
            s.stop = Stop::Torn;
            return s;
        }
        let word = |r: Range<usize>| {
            rest[r]
                .iter()
                .rev()
                .fold(0u64, |a, b| a << 8 | u64::from(*b))
        };
        let (len, crc, seq) = (word(0..4) as usize, word(4..8) as u32, word(8..16));
        if len > MAX_PAYLOAD || rest.len() < HEADER + len {
            s.stop = Stop::Torn;
            return s;
        }
        let end = at + HEADER + len;
        let payload = at + HEADER..end;
        let bad = if checksum(seq, &bytes[payload.clone()]) != crc {
            Some("checksum mismatch")
        } else if s.last.as_ref().is_some_and(|(prev, _)| seq <= *prev) {
            Some("sequence number not increasing")
        } else {
            None
        };
        if let Some(reason) = bad {
            s.stop = if end == bytes.len() && reason.starts_with("checksum") {
                Stop::Torn
            } else {
                Stop::Corrupt(format!("record at byte {at}: {reason}"))
            };
            return s;
        }
        s.records += 1;
        s.good_end = end;
        s.last = Some((seq, payload));
        at = end;
    }
    s
}

fn checksum(seq: u64, payload: &[u8]) -> u32 {
    !payload
        .iter()
        .chain(seq.to_le_bytes().iter())
        .fold(!0u32, |c, b| {
            TABLE[((c ^ u32::from(*b)) & 0xff) as usize] ^ (c >> 8)
        })
}

const TABLE: [u32; 256] = {
    let mut t = [0u32; 256];
    let mut i = 0;
    while i < 256 {
        let mut c = i as u32;
        let mut k = 0;
        while k < 8 {
            c = if c & 1 != 0 {
                0xedb8_8320 ^ (c >> 1)
            } else {
                c >> 1
            };
            k += 1;
        }
        t[i] = c;
        i += 1;
    }
    t
};

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn crc32_is_the_ieee_one() {
        // CRC-32 of "123456789" is 0xcbf43926; here over payload + seq,
        // so check the table and fold on the payload alone.
        let c = !b"123456789".iter().fold(!0u32, |c, b| {
            TABLE[((c ^ u32::from(*b)) & 0xff) as usize] ^ (c >> 8)
        });
        assert_eq!(c, 0xcbf4_3926);
    }

    #[test]
    fn scan_table() {
        let a = encode(1, b"one");
        let b = encode(2, b"two");
        let old = encode(1, b"old");
        let mut flipped = b.clone();
        flipped[HEADER] ^= 1;
        let cat = |parts: &[&[u8]]| parts.concat();
        // (journal, records, good_end, last seq, stop)
        type Case = (Vec<u8>, usize, usize, Option<u64>, Stop);
        let cases: Vec<Case> = vec![
            (vec![], 0, 0, None, Stop::End),
            (cat(&[&a]), 1, a.len(), Some(1), Stop::End),
            (cat(&[&a, &b]), 2, a.len() + b.len(), Some(2), Stop::End),
            (cat(&[&a, &b[..5]]), 1, a.len(), Some(1), Stop::Torn),
            (cat(&[&a, &flipped]), 1, a.len(), Some(1), Stop::Torn),
            (
                cat(&[&flipped, &a]),
                0,
                0,
                None,
                Stop::Corrupt("record at byte 0: checksum mismatch".into()),
            ),
            (
                cat(&[&a, &old]),
                1,
                a.len(),
                Some(1),
                Stop::Corrupt(format!(
                    "record at byte {}: sequence number not increasing",
                    a.len()
                )),
            ),
        ];
        for (i, (j, records, good_end, last, stop)) in cases.into_iter().enumerate() {
            let s = scan(&j);
            assert_eq!(
                (s.records, s.good_end, s.last.map(|l| l.0), s.stop),
                (records, good_end, last, stop),
                "case {i}"
            );
        }
    }
}
