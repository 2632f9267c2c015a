//! Writing `.npy` files (NumPy format 1.0) so logits can be read with `numpy.load`.

use std::io::Write;
use std::path::Path;

use crate::error::Error;

/// The bytes of a little-endian f32 array of `shape` in NumPy's `.npy` format 1.0: magic,
/// version, a header dict padded with spaces to a 64-byte boundary, then the data.
pub fn npy_f32_bytes(shape: &[usize], data: &[f32]) -> Result<Vec<u8>, Error> {
    let n: usize = shape.iter().product();
    if n != data.len() {
        return Err(Error::InvalidArgument(format!(
            "npy: shape {shape:?} holds {n} values, got {}",
            data.len()
        )));
    }
    let dims: Vec<String> = shape.iter().map(|d| d.to_string()).collect();
    let shape_text = match dims.len() {
        1 => format!("({},)", dims[0]),
        _ => format!("({})", dims.join(", ")),
    };
    let mut header = format!("{{'descr': '<f4', 'fortran_order': False, 'shape': {shape_text}, }}");
    // magic (6) + version (2) + header length (2) + header + '\n' is a multiple of 64.
    while (10 + header.len() + 1) % 64 != 0 {
        header.push(' ');
    }
    header.push('\n');
    let header_len = u16::try_from(header.len())
        .map_err(|_| Error::InvalidArgument(format!("npy: shape {shape:?} is too long")))?;
    let mut out = Vec::with_capacity(10 + header.len() + 4 * data.len());
    out.extend_from_slice(b"\x93NUMPY\x01\x00");
    out.extend_from_slice(&header_len.to_le_bytes());
    out.extend_from_slice(header.as_bytes());
    for v in data {
        out.extend_from_slice(&v.to_le_bytes());
    }
    Ok(out)
}

pub fn write_npy_f32(path: &Path, shape: &[usize], data: &[f32]) -> Result<(), Error> {
    let bytes = npy_f32_bytes(shape, data)?;
    std::fs::File::create(path)
        .and_then(|mut f| f.write_all(&bytes))
        .map_err(|source| Error::Io {
            context: format!("writing {}", path.display()),
            source,
        })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn header_is_padded_to_64_bytes() {
        let b = npy_f32_bytes(&[2, 3], &[0.0, 1.0, 2.0, 3.0, 4.0, 5.0]).unwrap();
        let header_len = u16::from_le_bytes([b[8], b[9]]) as usize;
        assert_eq!((10 + header_len) % 64, 0);
        assert!(std::str::from_utf8(&b[10..10 + header_len])
            .unwrap()
            .contains("'shape': (2, 3)"));
        assert_eq!(b.len(), 10 + header_len + 24);
        assert!(npy_f32_bytes(&[2, 2], &[0.0; 3]).is_err());
    }
}
