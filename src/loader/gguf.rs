//! GGUF v2/v3 reader over a memory map.
//!
//! Layout (little endian): magic `GGUF`, u32 version, u64 tensor count, u64 metadata count,
//! the metadata key/value pairs, the tensor infos (name, n_dims, dims in ggml order, type id,
//! offset into the data section), padding to `general.alignment`, then the data section.
//!
//! Every count, length and offset comes from the file and is checked against the file size
//! before anything is allocated or sliced, so a hostile file gives a [`GgufError`] naming the
//! field and its byte offset, never a panic or a huge allocation.

use std::collections::HashMap;
use std::fmt;
use std::fs::File;
use std::ops::Deref;
use std::path::Path;

use memmap2::Mmap;

use crate::error::GgufError;
use crate::loader::quant::GgmlType;

pub const GGUF_MAGIC: [u8; 4] = *b"GGUF";
pub const DEFAULT_ALIGNMENT: u64 = 32;
pub const ALIGNMENT_KEY: &str = "general.alignment";
/// ggml tensors have at most four dimensions.
pub const MAX_DIMS: u32 = 4;
/// Nested arrays deeper than this are not used by any writer and only serve to blow the stack.
pub const MAX_ARRAY_DEPTH: usize = 8;

/// GGUF metadata value type ids (`enum gguf_type`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[repr(u32)]
pub enum MetaType {
    U8 = 0,
    I8 = 1,
    U16 = 2,
    I16 = 3,
    U32 = 4,
    I32 = 5,
    F32 = 6,
    Bool = 7,
    String = 8,
    Array = 9,
    U64 = 10,
    I64 = 11,
    F64 = 12,
}

impl MetaType {
    fn from_id(id: u32) -> Option<MetaType> {
        use MetaType::*;
        [
            U8, I8, U16, I16, U32, I32, F32, Bool, String, Array, U64, I64, F64,
        ]
        .get(id as usize)
        .copied()
    }

    /// The fewest bytes one value of this type occupies in the file (a string is a u64 length,
    /// an array a u32 type plus a u64 count); used to bound counts before allocating.
    fn min_size(self) -> u64 {
        match self {
            MetaType::U8 | MetaType::I8 | MetaType::Bool => 1,
            MetaType::U16 | MetaType::I16 => 2,
            MetaType::U32 | MetaType::I32 | MetaType::F32 => 4,
            MetaType::U64 | MetaType::I64 | MetaType::F64 | MetaType::String => 8,
            MetaType::Array => 12,
        }
    }

    pub fn name(self) -> &'static str {
        match self {
            MetaType::U8 => "u8",
            MetaType::I8 => "i8",
            MetaType::U16 => "u16",
            MetaType::I16 => "i16",
            MetaType::U32 => "u32",
            MetaType::I32 => "i32",
            MetaType::F32 => "f32",
            MetaType::Bool => "bool",
            MetaType::String => "string",
            MetaType::Array => "array",
            MetaType::U64 => "u64",
            MetaType::I64 => "i64",
            MetaType::F64 => "f64",
        }
    }
}

/// One metadata value.
#[derive(Debug, Clone, PartialEq)]
pub enum MetaValue {
    U8(u8),
    I8(i8),
    U16(u16),
    I16(i16),
    U32(u32),
    I32(i32),
    F32(f32),
    Bool(bool),
    String(String),
    Array(MetaArray),
    U64(u64),
    I64(i64),
    F64(f64),
}

/// A homogeneous metadata array; arrays of arrays may mix element types per inner array.
#[derive(Debug, Clone, PartialEq)]
pub enum MetaArray {
    U8(Vec<u8>),
    I8(Vec<i8>),
    U16(Vec<u16>),
    I16(Vec<i16>),
    U32(Vec<u32>),
    I32(Vec<i32>),
    F32(Vec<f32>),
    Bool(Vec<bool>),
    String(Vec<String>),
    Array(Vec<MetaArray>),
    U64(Vec<u64>),
    I64(Vec<i64>),
    F64(Vec<f64>),
}

impl MetaValue {
    pub fn meta_type(&self) -> MetaType {
        match self {
            MetaValue::U8(_) => MetaType::U8,
            MetaValue::I8(_) => MetaType::I8,
            MetaValue::U16(_) => MetaType::U16,
            MetaValue::I16(_) => MetaType::I16,
            MetaValue::U32(_) => MetaType::U32,
            MetaValue::I32(_) => MetaType::I32,
            MetaValue::F32(_) => MetaType::F32,
            MetaValue::Bool(_) => MetaType::Bool,
            MetaValue::String(_) => MetaType::String,
            MetaValue::Array(_) => MetaType::Array,
            MetaValue::U64(_) => MetaType::U64,
            MetaValue::I64(_) => MetaType::I64,
            MetaValue::F64(_) => MetaType::F64,
        }
    }

    /// Any integer type as i128, so that every u64 and i64 fits; `None` for other types.
    pub fn as_int(&self) -> Option<i128> {
        Some(match *self {
            MetaValue::U8(v) => v.into(),
            MetaValue::I8(v) => v.into(),
            MetaValue::U16(v) => v.into(),
            MetaValue::I16(v) => v.into(),
            MetaValue::U32(v) => v.into(),
            MetaValue::I32(v) => v.into(),
            MetaValue::U64(v) => v.into(),
            MetaValue::I64(v) => v.into(),
            _ => return None,
        })
    }

    /// Any float or integer type as f64.
    pub fn as_f64(&self) -> Option<f64> {
        match *self {
            MetaValue::F32(v) => Some(v.into()),
            MetaValue::F64(v) => Some(v),
            _ => self.as_int().map(|v| v as f64),
        }
    }

    pub fn as_str(&self) -> Option<&str> {
        match self {
            MetaValue::String(s) => Some(s),
            _ => None,
        }
    }

    pub fn as_bool(&self) -> Option<bool> {
        match *self {
            MetaValue::Bool(b) => Some(b),
            _ => None,
        }
    }

    pub fn as_array(&self) -> Option<&MetaArray> {
        match self {
            MetaValue::Array(a) => Some(a),
            _ => None,
        }
    }
}

impl MetaArray {
    pub fn len(&self) -> usize {
        match self {
            MetaArray::U8(v) => v.len(),
            MetaArray::I8(v) => v.len(),
            MetaArray::U16(v) => v.len(),
            MetaArray::I16(v) => v.len(),
            MetaArray::U32(v) => v.len(),
            MetaArray::I32(v) => v.len(),
            MetaArray::F32(v) => v.len(),
            MetaArray::Bool(v) => v.len(),
            MetaArray::String(v) => v.len(),
            MetaArray::Array(v) => v.len(),
            MetaArray::U64(v) => v.len(),
            MetaArray::I64(v) => v.len(),
            MetaArray::F64(v) => v.len(),
        }
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    pub fn element_type(&self) -> MetaType {
        match self {
            MetaArray::U8(_) => MetaType::U8,
            MetaArray::I8(_) => MetaType::I8,
            MetaArray::U16(_) => MetaType::U16,
            MetaArray::I16(_) => MetaType::I16,
            MetaArray::U32(_) => MetaType::U32,
            MetaArray::I32(_) => MetaType::I32,
            MetaArray::F32(_) => MetaType::F32,
            MetaArray::Bool(_) => MetaType::Bool,
            MetaArray::String(_) => MetaType::String,
            MetaArray::Array(_) => MetaType::Array,
            MetaArray::U64(_) => MetaType::U64,
            MetaArray::I64(_) => MetaType::I64,
            MetaArray::F64(_) => MetaType::F64,
        }
    }

    /// The elements as i128 if this is an array of integers.
    pub fn to_ints(&self) -> Option<Vec<i128>> {
        fn conv<T: Copy + Into<i128>>(v: &[T]) -> Vec<i128> {
            v.iter().map(|&x| x.into()).collect()
        }
        Some(match self {
            MetaArray::U8(v) => conv(v),
            MetaArray::I8(v) => conv(v),
            MetaArray::U16(v) => conv(v),
            MetaArray::I16(v) => conv(v),
            MetaArray::U32(v) => conv(v),
            MetaArray::I32(v) => conv(v),
            MetaArray::U64(v) => conv(v),
            MetaArray::I64(v) => conv(v),
            _ => return None,
        })
    }

    pub fn as_strings(&self) -> Option<&[String]> {
        match self {
            MetaArray::String(v) => Some(v),
            _ => None,
        }
    }

    pub fn as_bools(&self) -> Option<&[bool]> {
        match self {
            MetaArray::Bool(v) => Some(v),
            _ => None,
        }
    }
}

impl fmt::Display for MetaValue {
    /// Short human form; long arrays are summarised so `inspect` stays readable.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            MetaValue::U8(v) => write!(f, "{v}"),
            MetaValue::I8(v) => write!(f, "{v}"),
            MetaValue::U16(v) => write!(f, "{v}"),
            MetaValue::I16(v) => write!(f, "{v}"),
            MetaValue::U32(v) => write!(f, "{v}"),
            MetaValue::I32(v) => write!(f, "{v}"),
            MetaValue::F32(v) => write!(f, "{v}"),
            MetaValue::Bool(v) => write!(f, "{v}"),
            MetaValue::String(s) if s.chars().count() > 60 => {
                let head: String = s.chars().take(57).collect();
                write!(f, "{head:?}...")
            }
            MetaValue::String(s) => write!(f, "{s:?}"),
            MetaValue::U64(v) => write!(f, "{v}"),
            MetaValue::I64(v) => write!(f, "{v}"),
            MetaValue::F64(v) => write!(f, "{v}"),
            MetaValue::Array(a) => match a.to_ints() {
                Some(ints) if ints.len() <= 16 => write!(f, "{ints:?}"),
                _ => write!(f, "[{} x {}]", a.len(), a.element_type().name()),
            },
        }
    }
}

/// Where a tensor lives in the file and what it holds.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TensorInfo {
    pub name: String,
    /// ggml `ne` order: the fastest-varying dimension first (numpy's shape reversed).
    pub dims: Vec<u64>,
    pub ggml_type: GgmlType,
    /// Offset of the first byte within the data section.
    pub data_offset: u64,
    pub n_bytes: u64,
    /// Byte offset of this tensor's info record in the file, for error messages.
    pub info_offset: u64,
}

impl TensorInfo {
    pub fn n_elements(&self) -> u64 {
        self.dims.iter().product()
    }
}

enum Storage {
    Mapped(Mmap),
    Owned(Vec<u8>),
}

impl Deref for Storage {
    type Target = [u8];
    fn deref(&self) -> &[u8] {
        match self {
            Storage::Mapped(m) => m,
            Storage::Owned(v) => v,
        }
    }
}

/// A parsed, validated GGUF file. Tensor bytes are borrowed from the map, never copied.
pub struct GgufFile {
    storage: Storage,
    version: u32,
    metadata: Vec<(String, MetaValue)>,
    metadata_index: HashMap<String, usize>,
    tensors: Vec<TensorInfo>,
    tensor_index: HashMap<String, usize>,
    alignment: u64,
    data_start: u64,
}

impl GgufFile {
    /// Maps `path` and parses it.
    pub fn open(path: impl AsRef<Path>) -> Result<GgufFile, GgufError> {
        let path = path.as_ref();
        let io_err = |source| GgufError::Io {
            path: path.to_path_buf(),
            source,
        };
        let file = File::open(path).map_err(io_err)?;
        // Safety: the map is read-only; a file truncated by another process while mapped is
        // the one hazard memmap2 cannot rule out, as for every mmap-based model loader.
        let mmap = unsafe { Mmap::map(&file) }.map_err(io_err)?;
        Self::parse(Storage::Mapped(mmap))
    }

    /// Parses a GGUF image held in memory (tests, generated fixtures).
    pub fn from_bytes(bytes: Vec<u8>) -> Result<GgufFile, GgufError> {
        Self::parse(Storage::Owned(bytes))
    }

    fn parse(storage: Storage) -> Result<GgufFile, GgufError> {
        let header = Header::parse(&storage)?;
        let data_start = align_up(header.end, header.alignment).ok_or(GgufError::Truncated {
            what: "data section start".into(),
            offset: header.end,
            needed: header.alignment,
            file_len: storage.len() as u64,
        })?;
        let data_len = (storage.len() as u64).saturating_sub(data_start);
        validate_tensor_ranges(&header.tensors, header.alignment, data_start, data_len)?;
        let tensor_index = header
            .tensors
            .iter()
            .enumerate()
            .map(|(i, t)| (t.name.clone(), i))
            .collect();
        let metadata_index = header
            .metadata
            .iter()
            .enumerate()
            .map(|(i, (k, _))| (k.clone(), i))
            .collect();
        Ok(GgufFile {
            storage,
            version: header.version,
            metadata: header.metadata,
            metadata_index,
            tensors: header.tensors,
            tensor_index,
            alignment: header.alignment,
            data_start,
        })
    }

    pub fn version(&self) -> u32 {
        self.version
    }

    pub fn alignment(&self) -> u64 {
        self.alignment
    }

    /// File offset of the data section.
    pub fn data_start(&self) -> u64 {
        self.data_start
    }

    pub fn file_len(&self) -> u64 {
        self.storage.len() as u64
    }

    /// Metadata in file order.
    pub fn metadata(&self) -> &[(String, MetaValue)] {
        &self.metadata
    }

    pub fn get(&self, key: &str) -> Option<&MetaValue> {
        self.metadata_index.get(key).map(|&i| &self.metadata[i].1)
    }

    /// Tensor infos in file order.
    pub fn tensors(&self) -> &[TensorInfo] {
        &self.tensors
    }

    pub fn tensor(&self, name: &str) -> Option<&TensorInfo> {
        self.tensor_index.get(name).map(|&i| &self.tensors[i])
    }

    /// The raw bytes of a tensor (its GGUF blocks), borrowed from the map.
    /// `None` if `name` is not a tensor of this file.
    pub fn tensor_data(&self, name: &str) -> Option<&[u8]> {
        let t = self.tensor(name)?;
        let start = usize::try_from(self.data_start + t.data_offset).ok()?;
        let len = usize::try_from(t.n_bytes).ok()?;
        self.storage.get(start..start.checked_add(len)?)
    }
}

/// Everything before the data section.
struct Header {
    version: u32,
    metadata: Vec<(String, MetaValue)>,
    tensors: Vec<TensorInfo>,
    alignment: u64,
    /// File offset just past the last tensor info.
    end: u64,
}

impl Header {
    fn parse(buf: &[u8]) -> Result<Header, GgufError> {
        let mut c = Cursor { buf, pos: 0 };
        let magic = c.take(4, || "magic".into())?;
        if magic != GGUF_MAGIC {
            let mut found = [0u8; 4];
            found.copy_from_slice(magic);
            return Err(GgufError::BadMagic { found });
        }
        let version = c.u32(|| "version".into())?;
        match version {
            2 | 3 => {}
            1 => {
                return Err(GgufError::UnsupportedVersion {
                    version,
                    hint: " (v1 used 32-bit counts; re-convert the model with a current llama.cpp)",
                })
            }
            v if v.swap_bytes() <= 3 => return Err(GgufError::UnsupportedVersion {
                version,
                hint:
                    " (this looks like a big-endian GGUF; only little-endian files are supported)",
            }),
            _ => {
                return Err(GgufError::UnsupportedVersion { version, hint: "" });
            }
        }
        let n_tensors = c.u64(|| "tensor count".into())?;
        let n_kv = c.u64(|| "metadata count".into())?;
        // The smallest key/value pair is an empty key (8) + type (4) + one byte value.
        c.check_count(n_kv, 13, || "metadata count".into(), 16)?;

        let mut metadata: Vec<(String, MetaValue)> = Vec::with_capacity(n_kv as usize);
        let mut seen = HashMap::with_capacity(n_kv as usize);
        let mut alignment = DEFAULT_ALIGNMENT;
        for i in 0..n_kv {
            let key_offset = c.pos as u64;
            let key = c.string(|| format!("metadata[{i}] key"))?;
            let type_id = c.u32(|| format!("type of metadata key '{key}'"))?;
            let value = c.value(&key, type_id, 0)?;
            if key == ALIGNMENT_KEY {
                alignment = parse_alignment(&value, key_offset)?;
            }
            if seen.insert(key.clone(), ()).is_some() {
                return Err(GgufError::DuplicateKey {
                    key,
                    offset: key_offset,
                });
            }
            metadata.push((key, value));
        }

        // The smallest tensor info: empty name (8) + n_dims (4) + type (4) + offset (8).
        c.check_count(n_tensors, 24, || "tensor count".into(), 8)?;
        let mut tensors: Vec<TensorInfo> = Vec::with_capacity(n_tensors as usize);
        let mut names = HashMap::with_capacity(n_tensors as usize);
        for i in 0..n_tensors {
            let t = c.tensor_info(i)?;
            if names.insert(t.name.clone(), ()).is_some() {
                return Err(GgufError::DuplicateTensor {
                    tensor: t.name,
                    offset: t.info_offset,
                });
            }
            tensors.push(t);
        }
        Ok(Header {
            version,
            metadata,
            tensors,
            alignment,
            end: c.pos as u64,
        })
    }
}

fn parse_alignment(value: &MetaValue, offset: u64) -> Result<u64, GgufError> {
    let MetaValue::U32(a) = *value else {
        return Err(GgufError::BadAlignment {
            value: value
                .as_int()
                .map_or(0, |v| v.clamp(0, u64::MAX as i128) as u64),
            offset,
            reason: "it must be a u32",
        });
    };
    if a == 0 || !a.is_power_of_two() {
        return Err(GgufError::BadAlignment {
            value: a.into(),
            offset,
            reason: "it must be a non-zero power of two",
        });
    }
    Ok(a.into())
}

fn align_up(x: u64, alignment: u64) -> Option<u64> {
    Some(x.checked_add(alignment - 1)? / alignment * alignment)
}

/// Alignment, bounds and overlap of every tensor's bytes within the data section.
fn validate_tensor_ranges(
    tensors: &[TensorInfo],
    alignment: u64,
    data_start: u64,
    data_len: u64,
) -> Result<(), GgufError> {
    for t in tensors {
        if t.data_offset % alignment != 0 {
            return Err(GgufError::MisalignedTensor {
                tensor: t.name.clone(),
                offset: t.info_offset,
                data_offset: t.data_offset,
                alignment,
            });
        }
        let end = t.data_offset.checked_add(t.n_bytes);
        if end.is_none_or(|end| end > data_len) {
            return Err(GgufError::TensorOutOfBounds {
                tensor: t.name.clone(),
                offset: t.info_offset,
                start: t.data_offset,
                end: end.unwrap_or(u64::MAX),
                data_start,
                data_len,
            });
        }
    }
    let mut by_offset: Vec<&TensorInfo> = tensors.iter().collect();
    by_offset.sort_by_key(|t| t.data_offset);
    for pair in by_offset.windows(2) {
        let (a, b) = (pair[0], pair[1]);
        if a.data_offset + a.n_bytes > b.data_offset {
            return Err(GgufError::OverlappingTensors {
                first: a.name.clone(),
                first_start: a.data_offset,
                first_end: a.data_offset + a.n_bytes,
                second: b.name.clone(),
                second_start: b.data_offset,
            });
        }
    }
    Ok(())
}

/// A bounds-checked little-endian reader. `what` closures name the field for errors and
/// only run on failure, so reading 250k vocabulary strings allocates no messages.
struct Cursor<'a> {
    buf: &'a [u8],
    pos: usize,
}

impl<'a> Cursor<'a> {
    fn remaining(&self) -> u64 {
        (self.buf.len() - self.pos) as u64
    }

    fn take(&mut self, n: u64, what: impl FnOnce() -> String) -> Result<&'a [u8], GgufError> {
        if n > self.remaining() {
            return Err(GgufError::Truncated {
                what: what(),
                offset: self.pos as u64,
                needed: n,
                file_len: self.buf.len() as u64,
            });
        }
        let start = self.pos;
        self.pos += n as usize;
        Ok(&self.buf[start..self.pos])
    }

    fn array<const N: usize>(
        &mut self,
        what: impl FnOnce() -> String,
    ) -> Result<[u8; N], GgufError> {
        let mut out = [0u8; N];
        out.copy_from_slice(self.take(N as u64, what)?);
        Ok(out)
    }

    fn u32(&mut self, what: impl FnOnce() -> String) -> Result<u32, GgufError> {
        self.array(what).map(u32::from_le_bytes)
    }

    fn u64(&mut self, what: impl FnOnce() -> String) -> Result<u64, GgufError> {
        self.array(what).map(u64::from_le_bytes)
    }

    /// Rejects a count (read from the field at `field_offset`) whose smallest encoding would
    /// not fit in what is left of the file.
    fn check_count(
        &self,
        count: u64,
        min_size: u64,
        what: impl FnOnce() -> String,
        field_offset: u64,
    ) -> Result<(), GgufError> {
        if count.saturating_mul(min_size) > self.remaining() {
            return Err(GgufError::CountTooLarge {
                what: what(),
                offset: field_offset,
                count,
                remaining: self.remaining(),
            });
        }
        Ok(())
    }

    fn string(&mut self, what: impl Fn() -> String) -> Result<String, GgufError> {
        let len_offset = self.pos as u64;
        let len = self.u64(|| format!("{} length", what()))?;
        let bytes = self.take(len, &what)?;
        String::from_utf8(bytes.to_vec()).map_err(|_| GgufError::InvalidUtf8 {
            what: what(),
            offset: len_offset,
        })
    }

    fn value(&mut self, key: &str, type_id: u32, depth: usize) -> Result<MetaValue, GgufError> {
        let offset = self.pos as u64;
        let ty = MetaType::from_id(type_id).ok_or_else(|| GgufError::UnknownValueType {
            key: key.to_string(),
            type_id,
            offset: offset.saturating_sub(4),
        })?;
        let what = || format!("value of '{key}'");
        Ok(match ty {
            MetaType::U8 => MetaValue::U8(u8::from_le_bytes(self.array(what)?)),
            MetaType::I8 => MetaValue::I8(i8::from_le_bytes(self.array(what)?)),
            MetaType::U16 => MetaValue::U16(u16::from_le_bytes(self.array(what)?)),
            MetaType::I16 => MetaValue::I16(i16::from_le_bytes(self.array(what)?)),
            MetaType::U32 => MetaValue::U32(u32::from_le_bytes(self.array(what)?)),
            MetaType::I32 => MetaValue::I32(i32::from_le_bytes(self.array(what)?)),
            MetaType::F32 => MetaValue::F32(f32::from_le_bytes(self.array(what)?)),
            MetaType::U64 => MetaValue::U64(u64::from_le_bytes(self.array(what)?)),
            MetaType::I64 => MetaValue::I64(i64::from_le_bytes(self.array(what)?)),
            MetaType::F64 => MetaValue::F64(f64::from_le_bytes(self.array(what)?)),
            MetaType::Bool => MetaValue::Bool(self.bool(key)?),
            MetaType::String => MetaValue::String(self.string(what)?),
            MetaType::Array => MetaValue::Array(self.meta_array(key, depth)?),
        })
    }

    fn bool(&mut self, key: &str) -> Result<bool, GgufError> {
        let offset = self.pos as u64;
        match self.array::<1>(|| format!("value of '{key}'"))?[0] {
            0 => Ok(false),
            1 => Ok(true),
            value => Err(GgufError::InvalidBool {
                key: key.to_string(),
                offset,
                value,
            }),
        }
    }

    fn meta_array(&mut self, key: &str, depth: usize) -> Result<MetaArray, GgufError> {
        let offset = self.pos as u64;
        if depth >= MAX_ARRAY_DEPTH {
            return Err(GgufError::NestingTooDeep {
                key: key.to_string(),
                offset,
                max: MAX_ARRAY_DEPTH,
            });
        }
        let elem_id = self.u32(|| format!("array element type of '{key}'"))?;
        let elem = MetaType::from_id(elem_id).ok_or_else(|| GgufError::UnknownValueType {
            key: key.to_string(),
            type_id: elem_id,
            offset,
        })?;
        let n_offset = self.pos as u64;
        let n = self.u64(|| format!("array length of '{key}'"))?;
        self.check_count(n, elem.min_size(), || format!("array '{key}'"), n_offset)?;
        let n = n as usize;
        let what = || format!("array '{key}'");
        fn fixed<const N: usize, T>(
            c: &mut Cursor,
            n: usize,
            what: impl Fn() -> String,
            from: fn([u8; N]) -> T,
        ) -> Result<Vec<T>, GgufError> {
            let bytes = c.take((n * N) as u64, what)?;
            Ok(bytes
                .chunks_exact(N)
                .map(|ch| {
                    let mut a = [0u8; N];
                    a.copy_from_slice(ch);
                    from(a)
                })
                .collect())
        }
        Ok(match elem {
            MetaType::U8 => MetaArray::U8(fixed(self, n, what, u8::from_le_bytes)?),
            MetaType::I8 => MetaArray::I8(fixed(self, n, what, i8::from_le_bytes)?),
            MetaType::U16 => MetaArray::U16(fixed(self, n, what, u16::from_le_bytes)?),
            MetaType::I16 => MetaArray::I16(fixed(self, n, what, i16::from_le_bytes)?),
            MetaType::U32 => MetaArray::U32(fixed(self, n, what, u32::from_le_bytes)?),
            MetaType::I32 => MetaArray::I32(fixed(self, n, what, i32::from_le_bytes)?),
            MetaType::F32 => MetaArray::F32(fixed(self, n, what, f32::from_le_bytes)?),
            MetaType::U64 => MetaArray::U64(fixed(self, n, what, u64::from_le_bytes)?),
            MetaType::I64 => MetaArray::I64(fixed(self, n, what, i64::from_le_bytes)?),
            MetaType::F64 => MetaArray::F64(fixed(self, n, what, f64::from_le_bytes)?),
            MetaType::Bool => {
                MetaArray::Bool((0..n).map(|_| self.bool(key)).collect::<Result<_, _>>()?)
            }
            MetaType::String => MetaArray::String(
                (0..n)
                    .map(|i| self.string(|| format!("array '{key}' element {i}")))
                    .collect::<Result<_, _>>()?,
            ),
            MetaType::Array => MetaArray::Array(
                (0..n)
                    .map(|_| self.meta_array(key, depth + 1))
                    .collect::<Result<_, _>>()?,
            ),
        })
    }

    fn tensor_info(&mut self, index: u64) -> Result<TensorInfo, GgufError> {
        let info_offset = self.pos as u64;
        let name = self.string(|| format!("tensor info {index} name"))?;
        let n_dims = self.u32(|| format!("n_dims of tensor '{name}'"))?;
        if n_dims > MAX_DIMS {
            return Err(GgufError::TooManyDims {
                tensor: name,
                offset: info_offset,
                n_dims,
            });
        }
        let dims = (0..n_dims)
            .map(|d| self.u64(|| format!("dimension {d} of tensor '{name}'")))
            .collect::<Result<Vec<u64>, _>>()?;
        let type_id = self.u32(|| format!("type of tensor '{name}'"))?;
        let data_offset = self.u64(|| format!("data offset of tensor '{name}'"))?;

        if dims.contains(&0) {
            return Err(GgufError::ZeroDim {
                tensor: name,
                offset: info_offset,
                dims,
            });
        }
        let n_elements = dims
            .iter()
            .try_fold(1u64, |acc, &d| acc.checked_mul(d))
            .filter(|&n| n <= i64::MAX as u64);
        let Some(n_elements) = n_elements else {
            return Err(GgufError::ElementCountOverflow {
                tensor: name,
                offset: info_offset,
                dims,
            });
        };
        let Some(ggml_type) = GgmlType::from_id(type_id) else {
            return Err(GgufError::UnknownTensorType {
                tensor: name,
                offset: info_offset,
                type_id,
            });
        };
        if !ggml_type.is_supported() {
            return Err(GgufError::UnsupportedTensorType {
                tensor: name,
                offset: info_offset,
                ty: ggml_type,
            });
        }
        let layout = ggml_type.layout();
        let ne0 = dims.first().copied().unwrap_or(1);
        if ne0 % layout.block_size != 0 {
            return Err(GgufError::RowNotBlockAligned {
                tensor: name,
                offset: info_offset,
                ty: ggml_type,
                ne0,
                block_size: layout.block_size,
            });
        }
        let Some(n_bytes) = (n_elements / layout.block_size).checked_mul(layout.type_size) else {
            return Err(GgufError::ElementCountOverflow {
                tensor: name,
                offset: info_offset,
                dims,
            });
        };
        Ok(TensorInfo {
            name,
            dims,
            ggml_type,
            data_offset,
            n_bytes,
            info_offset,
        })
    }
}
