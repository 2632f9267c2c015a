//! Error types at the library's boundaries, one enum per boundary.
//!
//! Every message names what was wrong (the field, key or tensor), where (a byte offset for
//! the file format), and the values involved, so that a user can tell a truncated download
//! from an unsupported model without reading the source.

use std::path::PathBuf;

use thiserror::Error;

use crate::loader::quant::GgmlType;

/// A GGUF file that cannot be read: the format itself is broken or unsupported.
#[derive(Debug, Error)]
pub enum GgufError {
    #[error("cannot open {path}: {source}")]
    Io {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("not a GGUF file: magic bytes are {found:02x?}, expected \"GGUF\" (47 47 55 46)")]
    BadMagic { found: [u8; 4] },
    #[error(
        "GGUF version {version} at byte 4 is not supported (this reader handles v2 and v3){hint}"
    )]
    UnsupportedVersion { version: u32, hint: &'static str },
    #[error("file truncated: {what} at byte {offset} needs {needed} bytes but the file is {file_len} bytes long")]
    Truncated {
        what: String,
        offset: u64,
        needed: u64,
        file_len: u64,
    },
    #[error("{what} at byte {offset} claims {count} entries, more than the {remaining} bytes left in the file can hold")]
    CountTooLarge {
        what: String,
        offset: u64,
        count: u64,
        remaining: u64,
    },
    #[error("{what} at byte {offset} is not valid UTF-8")]
    InvalidUtf8 { what: String, offset: u64 },
    #[error("metadata key '{key}' at byte {offset} has unknown value type {type_id}")]
    UnknownValueType {
        key: String,
        type_id: u32,
        offset: u64,
    },
    #[error("metadata key '{key}' at byte {offset}: arrays nested deeper than {max} levels")]
    NestingTooDeep {
        key: String,
        offset: u64,
        max: usize,
    },
    #[error("metadata key '{key}' at byte {offset}: boolean byte is {value}, expected 0 or 1")]
    InvalidBool { key: String, offset: u64, value: u8 },
    #[error("metadata key '{key}' appears twice (second at byte {offset})")]
    DuplicateKey { key: String, offset: u64 },
    #[error("general.alignment at byte {offset} is {value}: {reason}")]
    BadAlignment {
        value: u64,
        offset: u64,
        reason: &'static str,
    },
    #[error(
        "tensor '{tensor}' (info at byte {offset}) has {n_dims} dimensions; at most 4 are allowed"
    )]
    TooManyDims {
        tensor: String,
        offset: u64,
        n_dims: u32,
    },
    #[error("tensor '{tensor}' (info at byte {offset}) has a zero dimension in {dims:?}")]
    ZeroDim {
        tensor: String,
        offset: u64,
        dims: Vec<u64>,
    },
    #[error("tensor '{tensor}' (info at byte {offset}): element count or byte size of {dims:?} overflows 64 bits")]
    ElementCountOverflow {
        tensor: String,
        offset: u64,
        dims: Vec<u64>,
    },
    #[error("tensor '{tensor}' (info at byte {offset}) has unknown ggml type id {type_id}")]
    UnknownTensorType {
        tensor: String,
        offset: u64,
        type_id: u32,
    },
    #[error("tensor '{tensor}' (info at byte {offset}) has type {ty} (id {}), which qwen-wgpu does not support; supported: {}", .ty.id(), supported_type_list())]
    UnsupportedTensorType {
        tensor: String,
        offset: u64,
        ty: GgmlType,
    },
    #[error("tensor '{tensor}' (info at byte {offset}): row length {ne0} is not a multiple of {ty}'s block size {block_size}")]
    RowNotBlockAligned {
        tensor: String,
        offset: u64,
        ty: GgmlType,
        ne0: u64,
        block_size: u64,
    },
    #[error("tensor '{tensor}' (info at byte {offset}): data offset {data_offset} is not a multiple of the alignment {alignment}")]
    MisalignedTensor {
        tensor: String,
        offset: u64,
        data_offset: u64,
        alignment: u64,
    },
    #[error("tensor '{tensor}' (info at byte {offset}): bytes {start}..{end} of the data section lie outside it ({data_len} bytes, starting at byte {data_start})")]
    TensorOutOfBounds {
        tensor: String,
        offset: u64,
        start: u64,
        end: u64,
        data_start: u64,
        data_len: u64,
    },
    #[error("tensors '{first}' (data bytes {first_start}..{first_end}) and '{second}' (from byte {second_start}) overlap")]
    OverlappingTensors {
        first: String,
        first_start: u64,
        first_end: u64,
        second: String,
        second_start: u64,
    },
    #[error("tensor '{tensor}' appears twice (second info at byte {offset})")]
    DuplicateTensor { tensor: String, offset: u64 },
}

fn supported_type_list() -> String {
    GgmlType::SUPPORTED
        .iter()
        .map(|t| t.name())
        .collect::<Vec<_>>()
        .join(", ")
}

/// A GGUF file that is well formed but does not describe a model qwen-wgpu can run.
#[derive(Debug, Error)]
pub enum ConfigError {
    #[error("general.architecture is '{0}'; qwen-wgpu runs qwen35moe, qwen35 and qwen3moe")]
    UnknownArchitecture(String),
    #[error("required metadata key '{0}' is missing")]
    MissingKey(String),
    #[error("metadata key '{key}' has type {found}, expected {expected}")]
    WrongType {
        key: String,
        found: &'static str,
        expected: &'static str,
    },
    #[error("metadata key '{key}' = {value}: {reason}")]
    InvalidValue {
        key: String,
        value: String,
        reason: String,
    },
    #[error("invalid model geometry: {0}")]
    Geometry(String),
    #[error("tensor '{0}' is required by this architecture but missing from the file")]
    MissingTensor(String),
    #[error("tensor '{tensor}' has shape {found:?}, expected {expected:?} (ggml order, fastest dimension first)")]
    TensorShape {
        tensor: String,
        expected: Vec<u64>,
        found: Vec<u64>,
    },
    #[error("unknown preset '{name}'; known presets: {known}")]
    UnknownPreset { name: String, known: String },
}

/// A GGUF's tokenizer or chat template that cannot be built or used.
#[derive(Debug, Error)]
pub enum TokenizerError {
    #[error("tokenizer metadata '{0}' is missing")]
    MissingKey(String),
    #[error("tokenizer metadata '{0}' is not {1}")]
    WrongType(String, &'static str),
    #[error("tokenizer.ggml.model is '{0}'; qwen-wgpu reads byte-level BPE ('gpt2') vocabularies")]
    UnsupportedModel(String),
    #[error(
        "tokenizer.ggml.pre is '{0}'; qwen-wgpu knows the 'qwen35' and 'qwen2' pre-tokenizers"
    )]
    UnsupportedPre(String),
    #[error("{key} = {value} is not a token id (vocabulary of {n_vocab})")]
    BadTokenId {
        key: String,
        value: String,
        n_vocab: usize,
    },
    #[error("merge {index} ('{merge}') is not two tokens of the vocabulary")]
    BadMerge { index: usize, merge: String },
    #[error("inconsistent tokenizer metadata: {0}")]
    Inconsistent(String),
    #[error("cannot build the tokenizer: {0}")]
    Build(String),
    #[error("tokenization failed: {0}")]
    Encode(String),
    #[error("chat template: {0}")]
    Template(String),
}

/// The GPU cannot be used as asked.
#[derive(Debug, Error)]
pub enum GpuError {
    #[error("no GPU adapter found on Vulkan, Metal or DX12; without a GPU install Mesa's software Vulkan device (`apt-get install mesa-vulkan-drivers`) and set XDG_RUNTIME_DIR=/tmp if the Vulkan loader complains")]
    NoAdapter,
    #[error("no adapter matches {wanted}; available: {available}")]
    AdapterNotFound { wanted: String, available: String },
    #[error("the adapter's {limit} is {have}, but qwen-wgpu needs at least {need}")]
    LimitTooSmall {
        limit: &'static str,
        have: u64,
        need: u64,
    },
    #[error("cannot open a device on {adapter}: {reason}")]
    RequestDevice { adapter: String, reason: String },
    #[error("no GPU kernel reads {0} weights")]
    UnsupportedType(GgmlType),
    #[error("cannot build a GPU pipeline: {0}")]
    Pipeline(String),
    #[error("shape error: {0}")]
    Shape(String),
    #[error("GPU device error: {0}")]
    Device(String),
    #[error("out of GPU memory: {0}")]
    OutOfMemory(String),
}

/// Anything the library can fail with, for callers that do not care which boundary failed.
#[derive(Debug, Error)]
pub enum Error {
    #[error(transparent)]
    Gguf(#[from] GgufError),
    #[error(transparent)]
    Config(#[from] ConfigError),
    #[error(transparent)]
    Gpu(#[from] GpuError),
    #[error(transparent)]
    Tokenizer(#[from] TokenizerError),
    #[error(transparent)]
    Placement(#[from] crate::model::placement::PlacementError),
    #[error("{context}: {source}")]
    Io {
        context: String,
        #[source]
        source: std::io::Error,
    },
    #[error("invalid argument: {0}")]
    InvalidArgument(String),
    #[error("context full: {needed} tokens do not fit the session's context of {capacity}; start a new conversation (/reset) or raise --ctx")]
    ContextFull { needed: u64, capacity: u32 },
}

pub type Result<T, E = Error> = std::result::Result<T, E>;
