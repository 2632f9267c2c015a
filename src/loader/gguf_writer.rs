//! The GGUF encoder: metadata and tensors in, a GGUF image (or file) out. It knows nothing
//! of models (`synth` builds model files with it).

use std::fs::File;
use std::io::{BufWriter, Write};
use std::path::Path;

use crate::error::Error;
use crate::loader::gguf::{MetaArray, MetaValue, ALIGNMENT_KEY, DEFAULT_ALIGNMENT, GGUF_MAGIC};
use crate::loader::quant::GgmlType;

struct PendingTensor {
    name: String,
    dims: Vec<u64>,
    ty: GgmlType,
    data: TensorData,
}

/// Fills the bytes of blocks `first_block..` of a tensor (the slice holds whole blocks, and
/// `first_block` is a multiple of [`GENERATED_ALIGN_BLOCKS`]).
pub type BlockFill = dyn Fn(u64, &mut [u8]) + Send + Sync;

/// Blocks every generated piece starts on a multiple of (generators draw per run of them).
pub const GENERATED_ALIGN_BLOCKS: u64 = crate::loader::random_blocks::BLOCKS_PER_STREAM;

enum TensorData {
    Bytes(Vec<u8>),
    /// Made while writing, in parallel pieces: a large file never sits in memory.
    Generated {
        bytes: u64,
        fill: Box<BlockFill>,
    },
}

impl TensorData {
    fn len(&self) -> u64 {
        match self {
            TensorData::Bytes(b) => b.len() as u64,
            TensorData::Generated { bytes, .. } => *bytes,
        }
    }
}

/// Bytes generated per batch before writing it (over all threads).
const GENERATED_BATCH_BYTES: u64 = 256 << 20;

/// Builds a GGUF image: metadata in insertion order, tensors laid out at aligned offsets.
pub struct GgufWriter {
    version: u32,
    alignment: u64,
    metadata: Vec<(String, MetaValue)>,
    tensors: Vec<PendingTensor>,
}

impl Default for GgufWriter {
    fn default() -> Self {
        Self::new()
    }
}

impl GgufWriter {
    /// A version 3 writer with the default 32-byte alignment.
    pub fn new() -> GgufWriter {
        GgufWriter {
            version: 3,
            alignment: DEFAULT_ALIGNMENT,
            metadata: Vec::new(),
            tensors: Vec::new(),
        }
    }

    /// GGUF v2 and v3 share one layout for little-endian files.
    pub fn set_version(&mut self, version: u32) {
        self.version = version;
    }

    pub fn set_alignment(&mut self, alignment: u32) -> Result<(), Error> {
        if alignment == 0 || !alignment.is_power_of_two() {
            return Err(Error::InvalidArgument(format!(
                "GGUF alignment {alignment} is not a power of two"
            )));
        }
        self.alignment = alignment.into();
        self.set(ALIGNMENT_KEY, MetaValue::U32(alignment));
        Ok(())
    }

    /// Sets a metadata value, replacing an earlier value of the same key in place.
    pub fn set(&mut self, key: &str, value: MetaValue) {
        match self.metadata.iter_mut().find(|(k, _)| k == key) {
            Some(entry) => entry.1 = value,
            None => self.metadata.push((key.to_string(), value)),
        }
    }

    pub fn remove(&mut self, key: &str) {
        self.metadata.retain(|(k, _)| k != key);
    }

    /// Adds a tensor whose `data` holds `dims` elements of `ty` in ggml block format.
    pub fn add_tensor(
        &mut self,
        name: &str,
        dims: &[u64],
        ty: GgmlType,
        data: Vec<u8>,
    ) -> Result<(), Error> {
        let expected = tensor_bytes(dims, ty);
        if expected != Some(data.len() as u64) {
            return Err(Error::InvalidArgument(format!(
                "tensor '{name}' {dims:?} of type {ty} needs {expected:?} bytes, got {}",
                data.len()
            )));
        }
        self.remove_tensor(name);
        self.tensors.push(PendingTensor {
            name: name.to_string(),
            dims: dims.to_vec(),
            ty,
            data: TensorData::Bytes(data),
        });
        Ok(())
    }

    /// Adds a tensor of `dims` elements of `ty` whose blocks `fill` writes when the file is
    /// written, on all cores.
    pub fn add_generated_tensor(
        &mut self,
        name: &str,
        dims: &[u64],
        ty: GgmlType,
        fill: Box<BlockFill>,
    ) -> Result<(), Error> {
        let bytes = tensor_bytes(dims, ty).ok_or_else(|| {
            Error::InvalidArgument(format!(
                "tensor '{name}' {dims:?}: rows are not whole blocks of {ty}"
            ))
        })?;
        self.remove_tensor(name);
        self.tensors.push(PendingTensor {
            name: name.to_string(),
            dims: dims.to_vec(),
            ty,
            data: TensorData::Generated { bytes, fill },
        });
        Ok(())
    }

    pub fn remove_tensor(&mut self, name: &str) {
        self.tensors.retain(|t| t.name != name);
    }

    /// The whole file in memory.
    pub fn to_bytes(&self) -> Vec<u8> {
        let mut out = Vec::new();
        self.write_into(&mut out)
            .expect("writing into a Vec<u8> cannot fail");
        out
    }

    /// Writes the file to `path` (through a temporary name, so a crash leaves no half file).
    pub fn write_to(&self, path: &Path) -> Result<(), Error> {
        let tmp = path.with_extension("gguf.partial");
        let io = |source| Error::Io {
            context: format!("writing {}", tmp.display()),
            source,
        };
        let mut w = BufWriter::new(File::create(&tmp).map_err(io)?);
        self.write_into(&mut w).map_err(io)?;
        w.flush().map_err(io)?;
        drop(w);
        std::fs::rename(&tmp, path).map_err(|source| Error::Io {
            context: format!("renaming {} to {}", tmp.display(), path.display()),
            source,
        })
    }

    fn write_into(&self, w: &mut impl Write) -> std::io::Result<()> {
        let mut header = Vec::new();
        header.extend_from_slice(&GGUF_MAGIC);
        header.extend_from_slice(&self.version.to_le_bytes());
        header.extend_from_slice(&(self.tensors.len() as u64).to_le_bytes());
        header.extend_from_slice(&(self.metadata.len() as u64).to_le_bytes());
        for (key, value) in &self.metadata {
            encode_string(&mut header, key);
            header.extend_from_slice(&(value.meta_type() as u32).to_le_bytes());
            encode_value(&mut header, value);
        }
        let mut offset = 0u64;
        let mut offsets = Vec::with_capacity(self.tensors.len());
        for t in &self.tensors {
            encode_string(&mut header, &t.name);
            header.extend_from_slice(&(t.dims.len() as u32).to_le_bytes());
            for d in &t.dims {
                header.extend_from_slice(&d.to_le_bytes());
            }
            header.extend_from_slice(&t.ty.id().to_le_bytes());
            header.extend_from_slice(&offset.to_le_bytes());
            offsets.push(offset);
            offset = align(offset + t.data.len(), self.alignment);
        }
        let data_start = align(header.len() as u64, self.alignment);
        header.resize(data_start as usize, 0);
        w.write_all(&header)?;
        let mut written = 0u64;
        let mut batch = Vec::new();
        for (t, &off) in self.tensors.iter().zip(&offsets) {
            w.write_all(&vec![0u8; (off - written) as usize])?;
            match &t.data {
                TensorData::Bytes(b) => w.write_all(b)?,
                TensorData::Generated { bytes, fill } => {
                    write_generated(w, &mut batch, *bytes, t.ty.layout().type_size, fill)?
                }
            }
            written = off + t.data.len();
        }
        Ok(())
    }
}

/// Generates a tensor's bytes batch by batch, each batch split over the cores in pieces of
/// whole generator runs, and writes them in order.
fn write_generated(
    w: &mut impl Write,
    batch: &mut Vec<u8>,
    bytes: u64,
    block_bytes: u64,
    fill: &BlockFill,
) -> std::io::Result<()> {
    let piece = GENERATED_ALIGN_BLOCKS * block_bytes;
    let per_batch = (GENERATED_BATCH_BYTES / piece).max(1) * piece;
    let threads = std::thread::available_parallelism().map_or(1, |n| n.get());
    let mut start = 0u64;
    while start < bytes {
        let len = per_batch.min(bytes - start);
        batch.resize(len as usize, 0);
        let first_block = start / block_bytes;
        let pieces: Vec<(usize, &mut [u8])> =
            batch.chunks_mut(piece as usize).enumerate().collect();
        let per_thread = pieces.len().div_ceil(threads);
        std::thread::scope(|scope| {
            let mut pieces = pieces.into_iter();
            loop {
                let mine: Vec<(usize, &mut [u8])> = pieces.by_ref().take(per_thread).collect();
                if mine.is_empty() {
                    break;
                }
                scope.spawn(move || {
                    for (i, out) in mine {
                        fill(first_block + i as u64 * GENERATED_ALIGN_BLOCKS, out);
                    }
                });
            }
        });
        w.write_all(batch)?;
        start += len;
    }
    Ok(())
}

/// Bytes of a tensor of `dims` elements of `ty`, if its rows are whole blocks.
fn tensor_bytes(dims: &[u64], ty: GgmlType) -> Option<u64> {
    let n: u64 = dims.iter().product();
    let ne0 = *dims.first()?;
    ty.row_bytes(ne0)
        .map(|row| row * n.checked_div(ne0).unwrap_or(0))
}

fn align(x: u64, a: u64) -> u64 {
    x.div_ceil(a) * a
}

fn encode_string(buf: &mut Vec<u8>, s: &str) {
    buf.extend_from_slice(&(s.len() as u64).to_le_bytes());
    buf.extend_from_slice(s.as_bytes());
}

fn encode_value(buf: &mut Vec<u8>, v: &MetaValue) {
    match v {
        MetaValue::U8(x) => buf.push(*x),
        MetaValue::I8(x) => buf.extend_from_slice(&x.to_le_bytes()),
        MetaValue::U16(x) => buf.extend_from_slice(&x.to_le_bytes()),
        MetaValue::I16(x) => buf.extend_from_slice(&x.to_le_bytes()),
        MetaValue::U32(x) => buf.extend_from_slice(&x.to_le_bytes()),
        MetaValue::I32(x) => buf.extend_from_slice(&x.to_le_bytes()),
        MetaValue::F32(x) => buf.extend_from_slice(&x.to_le_bytes()),
        MetaValue::Bool(x) => buf.push(u8::from(*x)),
        MetaValue::String(s) => encode_string(buf, s),
        MetaValue::Array(a) => encode_array(buf, a),
        MetaValue::U64(x) => buf.extend_from_slice(&x.to_le_bytes()),
        MetaValue::I64(x) => buf.extend_from_slice(&x.to_le_bytes()),
        MetaValue::F64(x) => buf.extend_from_slice(&x.to_le_bytes()),
    }
}

fn encode_array(buf: &mut Vec<u8>, a: &MetaArray) {
    buf.extend_from_slice(&(a.element_type() as u32).to_le_bytes());
    buf.extend_from_slice(&(a.len() as u64).to_le_bytes());
    macro_rules! le {
        ($v:expr) => {
            for x in $v {
                buf.extend_from_slice(&x.to_le_bytes());
            }
        };
    }
    match a {
        MetaArray::U8(v) => buf.extend_from_slice(v),
        MetaArray::I8(v) => le!(v),
        MetaArray::U16(v) => le!(v),
        MetaArray::I16(v) => le!(v),
        MetaArray::U32(v) => le!(v),
        MetaArray::I32(v) => le!(v),
        MetaArray::F32(v) => le!(v),
        MetaArray::Bool(v) => buf.extend(v.iter().map(|&b| u8::from(b))),
        MetaArray::String(v) => v.iter().for_each(|s| encode_string(buf, s)),
        MetaArray::Array(v) => v.iter().for_each(|inner| encode_array(buf, inner)),
        MetaArray::U64(v) => le!(v),
        MetaArray::I64(v) => le!(v),
        MetaArray::F64(v) => le!(v),
    }
}
