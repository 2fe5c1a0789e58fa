//! Content hashing for the audit trail: the SHA-256 of what went on air.

use std::fs::File;
use std::io;
use std::os::unix::fs::FileExt;
use std::path::Path;

use sha2::{Digest, Sha256};

/// Fixed-size reads keep memory flat however long the recording is.
const READ_BYTES: usize = 64 * 1024;

/// SHA-256 of the file's bytes as 64 lowercase hex digits.
pub fn sha256_file(path: &Path) -> io::Result<String> {
    sha256_open(&File::open(path)?)
}

/// SHA-256 of an already-open file, read with positional reads from byte 0
/// (the handle may share its offset with a decoder reading the same file).
/// Works after the path was deleted: the open file keeps its data.
pub fn sha256_open(file: &File) -> io::Result<String> {
    let mut hasher = Sha256::new();
    let mut buf = vec![0u8; READ_BYTES];
    let mut offset = 0u64;
    loop {
        let n = match file.read_at(&mut buf, offset) {
            Ok(0) => break,
            Ok(n) => n,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
            Err(e) => return Err(e),
        };
        hasher.update(&buf[..n]);
        offset += n as u64;
    }
    Ok(to_hex(&hasher.finalize()))
}

fn to_hex(bytes: &[u8]) -> String {
    const DIGITS: &[u8; 16] = b"0123456789abcdef";
    let mut out = String::with_capacity(bytes.len() * 2);
    for &b in bytes {
        out.push(DIGITS[usize::from(b >> 4)] as char);
        out.push(DIGITS[usize::from(b & 0x0f)] as char);
    }
    out
}
