//! Embeds every WGSL file under `shaders/` (by its path there), so adding a shader needs no
//! registry entry.

use std::fmt::Write as _;
use std::path::{Path, PathBuf};

fn wgsl_files(dir: &Path, out: &mut Vec<PathBuf>) -> std::io::Result<()> {
    for entry in std::fs::read_dir(dir)? {
        let path = entry?.path();
        if path.is_dir() {
            wgsl_files(&path, out)?;
        } else if path.extension().is_some_and(|e| e == "wgsl") {
            out.push(path);
        }
    }
    Ok(())
}

fn main() -> std::io::Result<()> {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("shaders");
    println!("cargo:rerun-if-changed={}", root.display());
    let mut files = Vec::new();
    wgsl_files(&root, &mut files)?;
    files.sort();
    let mut table = String::from("&[\n");
    for path in &files {
        println!("cargo:rerun-if-changed={}", path.display());
        let rel = path.strip_prefix(&root).map_err(std::io::Error::other)?;
        let rel = rel.to_string_lossy().replace('\\', "/");
        writeln!(
            table,
            "    ({rel:?}, include_str!({:?})),",
            path.display().to_string()
        )
        .map_err(std::io::Error::other)?;
    }
    table.push(']');
    let out = PathBuf::from(std::env::var("OUT_DIR").map_err(std::io::Error::other)?);
    std::fs::write(out.join("shader_files.rs"), table)
}
