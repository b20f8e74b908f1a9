//! CRC-32 (IEEE 802.3, as AWS event-stream frames use it), one byte at a time over a
//! 1 KB table built at compile time. `crc32fast` reads 16 bytes at a time over a 16 KB
//! table, which is about 15 KB of the wasm's gzip size; Bedrock's frames are small.

const TABLE: [u32; 256] = {
    let mut table = [0u32; 256];
    let mut i = 0;
    while i < 256 {
        let mut crc = i as u32;
        let mut bit = 0;
        while bit < 8 {
            crc = if crc & 1 == 1 { (crc >> 1) ^ 0xEDB8_8320 } else { crc >> 1 };
            bit += 1;
        }
        table[i] = crc;
        i += 1;
    }
    table
};

pub fn hash(bytes: &[u8]) -> u32 {
    let mut crc = !0u32;
    for &b in bytes {
        crc = TABLE[usize::from((crc as u8) ^ b)] ^ (crc >> 8);
    }
    !crc
}

#[cfg(test)]
mod tests {
    use super::hash;

    #[test]
    fn matches_crc32fast() {
        assert_eq!(hash(b"123456789"), 0xCBF4_3926);
        assert_eq!(hash(b""), 0);
        let data: Vec<u8> = (0..5000u32).map(|i| (i.wrapping_mul(2_654_435_761) >> 13) as u8).collect();
        for len in [0, 1, 7, 8, 15, 16, 17, 255, 256, 1000, 5000] {
            assert_eq!(hash(&data[..len]), crc32fast::hash(&data[..len]), "{len} bytes");
        }
    }
}
