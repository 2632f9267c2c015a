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
    /// `const NAME: u32 = value;` lines put before everything: sizes both sides must agree
    /// on (workgroup size, tile and chunk lengths, register array bounds).
    pub constants: Vec<(&'static str, u32)>,
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
            constants: Vec::new(),
            params_size: std::mem::size_of::<P>(),
            params: P::FIELDS,
            bindings: Io::BINDINGS,
        }
    }

    pub fn include(mut self, files: impl IntoIterator<Item = &'static str>) -> Self {
        self.includes.extend(files);
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
