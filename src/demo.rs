//! The embedded default model: written on first use into the cache directory, so a fresh
//! machine runs something with no download.

use std::path::{Path, PathBuf};

use crate::error::Error;
use crate::loader::presets;
use crate::loader::synth::{synthetic_file_name, synthetic_model, SynthOptions, Vocabulary};
use crate::loader::GgmlType;

/// Where generated defaults live: `$XDG_CACHE_HOME/qwen-wgpu`, else `~/.cache/qwen-wgpu`.
pub fn cache_dir() -> PathBuf {
    let base = std::env::var_os("XDG_CACHE_HOME")
        .map(PathBuf::from)
        .or_else(|| std::env::var_os("HOME").map(|h| Path::new(&h).join(".cache")))
        .unwrap_or_else(std::env::temp_dir);
    base.join("qwen-wgpu")
}

/// The preset the demo model takes.
pub const DEMO_PRESET: &str = "demo-qwen35moe";

/// Bumped when the chat template synthetic files carry changes, so that a demo model
/// written by an older version is not reused with the old template.
const TEMPLATE_REVISION: u32 = 2;

/// The embedded default model, written on first use: Qwen3.5 MoE layers at a small width,
/// the real Qwen3.5 vocabulary and chat template, random q8_0 weights.
pub fn demo_model() -> Result<PathBuf, Error> {
    let config = presets::preset(DEMO_PRESET)?;
    let opts = SynthOptions {
        weight_type: GgmlType::Q8_0,
        vocabulary: Vocabulary::Qwen35,
        ..SynthOptions::default()
    };
    let dir = cache_dir();
    let name = synthetic_file_name(&config, &opts)
        .replace(".gguf", &format!("-t{TEMPLATE_REVISION}.gguf"));
    let path = dir.join(name);
    if !path.exists() {
        std::fs::create_dir_all(&dir).map_err(|source| Error::Io {
            context: format!("creating the cache directory {}", dir.display()),
            source,
        })?;
        eprintln!("writing the demo model (random weights, real Qwen3.5 vocabulary) ...");
        synthetic_model(&config, &opts)?.write_to(&path)?;
        eprintln!("wrote {}", path.display());
    }
    Ok(path)
}
