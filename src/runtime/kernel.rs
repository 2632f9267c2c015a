//! What a kernel is, declared once beside its launcher: the WGSL file and entry point, the
//! shared pieces joined before it, the constants Rust injects into it, its params type and
//! its bindings by name.
//!
//! A launcher module (`ops/<family>/<kernel>.rs`) holds three things: a params struct made
//! with [`kernel_params!`], a bindings struct made with [`kernel_io!`], and a
//! `declaration(..)` returning the [`Declaration`]. The pipeline cache assembles the shader
//! from the declaration; [`super::ops::Dispatch::new`] binds the bindings struct's buffers
//! at the declared numbers (0 the params, then each field in order) and refuses a struct
//! that is not the kernel's; the naga test checks the WGSL against the declaration (names,
//! order and access of the bindings, field offsets of `Params`).

/// How a kernel uses one of its buffers.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Access {
    Read,
    ReadWrite,
}

/// One binding: the name of its WGSL variable, how the kernel uses it, and its shape.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Binding {
    pub name: &'static str,
    pub access: Access,
    /// PyTorch-order shape and element type, e.g. `[n_tokens, channels] f32`.
    pub shape: &'static str,
}

/// One field of a params struct: its name and byte offset (`_`-prefixed fields are padding).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ParamsField {
    pub name: &'static str,
    pub offset: usize,
}

/// A `#[repr(C)]` mirror of a kernel's WGSL `struct Params` (made by [`kernel_params!`]).
pub trait KernelParams: bytemuck::Pod {
    const FIELDS: &'static [ParamsField];
}

/// A kernel's buffers by name (made by [`kernel_io!`]), in binding order.
pub trait KernelIo {
    const BINDINGS: &'static [Binding];
    /// The buffers in [`KernelIo::BINDINGS`] order: binding `i + 1` is `buffers()[i]`.
    fn buffers(&self) -> Vec<&wgpu::Buffer>;
}

/// A kernel variant's complete description, enough to build its pipeline and check its
/// WGSL.
#[derive(Debug, Clone)]
pub struct Declaration {
    /// The entry point, which is also the kernel's name stem through the stack.
    pub entry: &'static str,
    /// The kernel's own file under `shaders/`.
    pub file: &'static str,
    /// Shared pieces joined before the file, in order (decoders, helpers).
    pub includes: Vec<&'static str>,
    /// Weight readers joined after the includes, one copy per weight binding the kernel
    /// reads (see [`Namespace`]).
    pub namespaces: Vec<Namespace>,
    /// `const NAME: u32 = value;` lines put before everything: sizes both sides must agree
    /// on (workgroup size, tile and chunk lengths, register array bounds).
    pub constants: Vec<(&'static str, u32)>,
    /// WGSL extensions the source enables (`enable f16;` ..), put first of all: the
    /// adapter must have the matching features for the kernel to be chosen.
    pub enables: Vec<&'static str>,
    /// The kernel reads subgroup builtins whatever the reduction variant, so it exists only
    /// on adapters with subgroups.
    pub needs_subgroups: bool,
    pub params_size: usize,
    pub params: &'static [ParamsField],
    pub bindings: &'static [Binding],
}

impl Declaration {
    /// The kernel at `entry` of `file`, with params `P` and bindings `Io`.
    pub fn of<P: KernelParams, Io: KernelIo>(entry: &'static str, file: &'static str) -> Self {
        Declaration {
            entry,
            file,
            includes: Vec::new(),
            namespaces: Vec::new(),
            constants: Vec::new(),
            enables: Vec::new(),
            needs_subgroups: false,
            params_size: std::mem::size_of::<P>(),
            params: P::FIELDS,
            bindings: Io::BINDINGS,
        }
    }

    pub fn include(mut self, files: impl IntoIterator<Item = &'static str>) -> Self {
        self.includes.extend(files);
        self
    }

    /// Joins `files` once more with every name they declare suffixed by `suffix` and their
    /// `weights` array renamed to the binding `weights{suffix}`: a kernel reading several
    /// weight matrices, each in its own block format, gets one reader per matrix.
    pub fn namespace(mut self, suffix: &'static str, files: Vec<&'static str>) -> Self {
        self.namespaces.push(Namespace { suffix, files });
        self
    }

    /// Enables a WGSL extension (`f16`, `wgpu_cooperative_matrix`).
    pub fn enable(mut self, extension: &'static str) -> Self {
        self.enables.push(extension);
        self
    }

    /// Marks the kernel as reading subgroup builtins in every variant.
    pub fn with_subgroups(mut self) -> Self {
        self.needs_subgroups = true;
        self
    }

    pub fn constant(mut self, name: &'static str, value: u32) -> Self {
        self.constants.push((name, value));
        self
    }

    /// The value of one of the injected constants.
    pub fn constant_value(&self, name: &str) -> Option<u32> {
        self.constants
            .iter()
            .find(|(n, _)| *n == name)
            .map(|&(_, v)| v)
    }
}

/// A copy of the weight-reading files (byte helpers, decoder, row dot) bound to one weight
/// binding: WGSL has no generics, so a kernel over two matrices of different types includes
/// the readers twice under different names.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Namespace {
    pub suffix: &'static str,
    pub files: Vec<&'static str>,
}

impl Namespace {
    /// The weight binding this copy reads.
    pub const WEIGHTS: &'static str = "weights";

    /// `sources` (the namespace's files) with their declared names and `weights` suffixed.
    pub fn rename(&self, sources: &[&str]) -> String {
        let mut declared: Vec<String> = vec![Self::WEIGHTS.to_string()];
        for src in sources {
            declared.extend(src.lines().filter_map(declared_name));
        }
        let mut out = String::new();
        for src in sources {
            out.push_str(&rename_identifiers(src, &declared, self.suffix));
            out.push('\n');
        }
        out
    }
}

/// The name a module-scope declaration line introduces (`fn`, `const`, `var<..>`).
fn declared_name(line: &str) -> Option<String> {
    let rest = line
        .strip_prefix("fn ")
        .or_else(|| line.strip_prefix("const "))
        .or_else(|| {
            line.strip_prefix("var<")
                .and_then(|r| r.split_once("> ").map(|(_, n)| n))
        })?;
    let name: String = rest
        .chars()
        .take_while(|c| c.is_ascii_alphanumeric() || *c == '_')
        .collect();
    (!name.is_empty()).then_some(name)
}

/// `src` with every identifier in `names` (whole words) followed by `suffix`.
fn rename_identifiers(src: &str, names: &[String], suffix: &str) -> String {
    let mut out = String::with_capacity(src.len() + 256);
    let mut word = String::new();
    let flush = |word: &mut String, out: &mut String| {
        out.push_str(word);
        if names.iter().any(|n| n == word) {
            out.push_str(suffix);
        }
        word.clear();
    };
    for c in src.chars() {
        if c.is_ascii_alphanumeric() || c == '_' {
            word.push(c);
        } else {
            flush(&mut word, &mut out);
            out.push(c);
        }
    }
    flush(&mut word, &mut out);
    out
}

/// Defines a kernel's params struct (`#[repr(C)]`, Pod) and its [`KernelParams`] field table.
macro_rules! kernel_params {
    (
        $(#[$meta:meta])*
        pub struct $name:ident {
            $( $(#[$field_meta:meta])* pub $field:ident : $ty:ty ),* $(,)?
        }
    ) => {
        $(#[$meta])*
        #[repr(C)]
        #[derive(Debug, Clone, Copy, bytemuck::Pod, bytemuck::Zeroable, PartialEq)]
        pub struct $name {
            $( $(#[$field_meta])* pub $field: $ty ),*
        }

        impl $crate::runtime::kernel::KernelParams for $name {
            const FIELDS: &'static [$crate::runtime::kernel::ParamsField] = &[
                $( $crate::runtime::kernel::ParamsField {
                    name: stringify!($field),
                    offset: std::mem::offset_of!($name, $field),
                } ),*
            ];
        }

        const _: () = assert!(std::mem::size_of::<$name>() % 16 == 0);
    };
}
pub(crate) use kernel_params;

/// Defines a kernel's bindings struct: one `&wgpu::Buffer` field per binding, each with
/// its access (`Read` or `ReadWrite`) and shape, in binding order.
macro_rules! kernel_io {
    (
        $(#[$meta:meta])*
        pub struct $name:ident {
            $( $field:ident : $access:ident $shape:literal ),* $(,)?
        }
    ) => {
        $(#[$meta])*
        #[derive(Clone, Copy)]
        pub struct $name<'a> {
            $( #[doc = $shape] pub $field: &'a wgpu::Buffer ),*
        }

        impl $crate::runtime::kernel::KernelIo for $name<'_> {
            const BINDINGS: &'static [$crate::runtime::kernel::Binding] = &[
                $( $crate::runtime::kernel::Binding {
                    name: stringify!($field),
                    access: $crate::runtime::kernel::Access::$access,
                    shape: $shape,
                } ),*
            ];

            fn buffers(&self) -> Vec<&wgpu::Buffer> {
                vec![$( self.$field ),*]
            }
        }
    };
}
pub(crate) use kernel_io;
