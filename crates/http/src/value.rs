//! Header values made on every request, without an allocation where it can be helped.

use bytes::Bytes;
use http::HeaderValue;

/// Integers below this are served from a table built at compile time.
const SMALL: usize = 10_000;

/// The decimal digits of every integer below [`SMALL`], four bytes each, right-aligned.
static DIGITS: [u8; SMALL * 4] = {
    let mut table = [b'0'; SMALL * 4];
    let mut i = 0;
    while i < SMALL {
        let mut n = i;
        let mut at = i * 4 + 3;
        loop {
            table[at] = b'0' + (n % 10) as u8;
            n /= 10;
            if n == 0 {
                break;
            }
            at -= 1;
        }
        i += 1;
    }
    table
};

/// [`DIGITS`] as text, checked once at compile time.
const DIGITS_TEXT: &str = match std::str::from_utf8(&DIGITS) {
    Ok(text) => text,
    Err(_) => panic!("the digit table is ASCII"),
};

/// An integer as a header value. Small ones (latencies in ms, statuses, most rate limits and
/// their remainders) point into a static table: no allocation, and cloning or dropping one
/// touches no shared counter. Larger ones take one allocation (http's `From<u64>` takes two).
pub fn int_value(n: u64) -> HeaderValue {
    if let Ok(i) = usize::try_from(n)
        && i < SMALL
    {
        let width = match i {
            0..=9 => 1,
            10..=99 => 2,
            100..=999 => 3,
            _ => 4,
        };
        let end = i * 4 + 4;
        if let Some(digits) = DIGITS_TEXT.get(end - width..end) {
            return HeaderValue::from_static(digits);
        }
    }
    let mut buf = itoa::Buffer::new();
    HeaderValue::from_maybe_shared(Bytes::copy_from_slice(buf.format(n).as_bytes()))
        .unwrap_or_else(|_| HeaderValue::from(n))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_integer_reads_back() {
        for n in (0..20_000u64).chain([99_999, 1_000_000_000, u64::MAX]) {
            assert_eq!(int_value(n).to_str().ok(), Some(n.to_string().as_str()));
        }
    }
}
