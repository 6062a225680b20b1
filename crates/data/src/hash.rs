//! How categorical strings become row ids.
//!
//! - [`fnv1a64`]: FNV-1a, 64-bit (offset basis `0xcbf29ce484222325`, prime `0x100000001b3`) over the
//!   field's raw bytes; the id is `hash % rows`. Used by the schema kind `"hash"`.
//! - [`parse_hex`]: the field read as a hexadecimal number (1 to 16 digits, either case); the id is
//!   `value % rows`. Used by the schema kind `"hex"` and the Criteo preset: this is what
//!   facebookresearch/dlrm (`int(x, 16) % max_ind_range`) and TorchRec's Criteo preprocessing do,
//!   so ids match models trained there on the same table sizes.
//!
//! A missing (empty) one-hot field maps to id 0 in both kinds, as in dlrm and TorchRec (which read a
//! missing category as `"0"`).

/// FNV-1a 64-bit hash of `bytes`.
#[inline]
pub fn fnv1a64(bytes: &[u8]) -> u64 {
    let mut h: u64 = 0xcbf2_9ce4_8422_2325;
    for &b in bytes {
        h ^= u64::from(b);
        h = h.wrapping_mul(0x0000_0100_0000_01b3);
    }
    h
}

/// `bytes` as a hexadecimal number of 1 to 16 digits; `None` if empty, too long or not hex.
#[inline]
pub fn parse_hex(bytes: &[u8]) -> Option<u64> {
    if bytes.is_empty() || bytes.len() > 16 {
        return None;
    }
    let mut v = 0u64;
    for &b in bytes {
        let d = match b {
            b'0'..=b'9' => b - b'0',
            b'a'..=b'f' => b - b'a' + 10,
            b'A'..=b'F' => b - b'A' + 10,
            _ => return None,
        };
        v = (v << 4) | u64::from(d);
    }
    Some(v)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fnv_reference_values() {
        // Published FNV-1a 64 test vectors.
        assert_eq!(fnv1a64(b""), 0xcbf29ce484222325);
        assert_eq!(fnv1a64(b"a"), 0xaf63dc4c8601ec8c);
        assert_eq!(fnv1a64(b"foobar"), 0x85944171f73967e8);
    }

    #[test]
    fn hex_parsing() {
        assert_eq!(parse_hex(b"68fd1e64"), Some(0x68fd1e64));
        assert_eq!(parse_hex(b"FFFFFFFFFFFFFFFF"), Some(u64::MAX));
        assert_eq!(parse_hex(b"0"), Some(0));
        assert_eq!(parse_hex(b""), None);
        assert_eq!(parse_hex(b"12345678901234567"), None);
        assert_eq!(parse_hex(b"12g4"), None);
        assert_eq!(parse_hex(b"-1"), None);
    }
}
