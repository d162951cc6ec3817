//! Uniform parameters. Each kernel's are one Rust struct, declared once with `kernel_params!`;
//! its WGSL `struct Params` is generated from that declaration into the shader's prelude, and its
//! bytes are laid out by WGSL's uniform rules (u32 and f32 at 4-byte alignment, vec4<u32> at
//! 16). Shaders never declare `Params` themselves, so the two sides cannot disagree on names,
//! order or offsets; `Run::push` checks that a dispatch passes its kernel's struct, and the naga
//! test compares the generated layout with the compiler's.

/// The WGSL types a parameter may have.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ParamType {
    U32,
    F32,
    Vec4U32,
}

impl ParamType {
    pub fn wgsl(self) -> &'static str {
        match self {
            ParamType::U32 => "u32",
            ParamType::F32 => "f32",
            ParamType::Vec4U32 => "vec4<u32>",
        }
    }
    pub fn align(self) -> usize {
        match self {
            ParamType::Vec4U32 => 16,
            _ => 4,
        }
    }
    pub fn size(self) -> usize {
        match self {
            ParamType::Vec4U32 => 16,
            _ => 4,
        }
    }
}

/// A Rust value that is written as one WGSL parameter. `usize` is a u32 cut to 32 bits, as
/// sizes, offsets and strides are (the ops bound them, and some kernels rely on the wrap).
pub trait ParamField {
    const TYPE: ParamType;
    fn put(&self, out: &mut Vec<u8>);
}

impl ParamField for usize {
    const TYPE: ParamType = ParamType::U32;
    fn put(&self, out: &mut Vec<u8>) {
        out.extend_from_slice(&(*self as u32).to_le_bytes());
    }
}

impl ParamField for u32 {
    const TYPE: ParamType = ParamType::U32;
    fn put(&self, out: &mut Vec<u8>) {
        out.extend_from_slice(&self.to_le_bytes());
    }
}

impl ParamField for bool {
    const TYPE: ParamType = ParamType::U32;
    fn put(&self, out: &mut Vec<u8>) {
        out.extend_from_slice(&(*self as u32).to_le_bytes());
    }
}

impl ParamField for f32 {
    const TYPE: ParamType = ParamType::F32;
    fn put(&self, out: &mut Vec<u8>) {
        out.extend_from_slice(&self.to_le_bytes());
    }
}

impl ParamField for [u32; 4] {
    const TYPE: ParamType = ParamType::Vec4U32;
    fn put(&self, out: &mut Vec<u8>) {
        for v in self {
            out.extend_from_slice(&v.to_le_bytes());
        }
    }
}

/// A kernel's parameter struct, by name and fields in declaration order.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ParamsDef {
    pub name: &'static str,
    pub fields: &'static [(&'static str, ParamType)],
}

impl ParamsDef {
    /// Byte offsets of the fields under WGSL's uniform layout rules.
    pub fn offsets(&self) -> Vec<usize> {
        let mut at = 0usize;
        self.fields
            .iter()
            .map(|(_, t)| {
                at = at.div_ceil(t.align()) * t.align();
                let here = at;
                at += t.size();
                here
            })
            .collect()
    }

    /// The WGSL declaration the shader's prelude gets.
    pub fn wgsl(&self) -> String {
        let mut s = format!("// {}\nstruct Params {{\n", self.name);
        for (name, t) in self.fields {
            s.push_str(&format!("    {name}: {},\n", t.wgsl()));
        }
        s.push_str("}\n");
        s
    }
}

pub trait KernelParams {
    const DEF: ParamsDef;
    /// The uniform's bytes: each field at its `ParamsDef::offsets` place.
    fn bytes(&self) -> Vec<u8>;
}

/// Declares parameter structs: `pub struct Name { field: type, .. }` with types from
/// `ParamField` (usize, u32, bool and f32 become WGSL u32/f32, [u32; 4] a vec4<u32>).
macro_rules! kernel_params {
    ($($(#[$meta:meta])* pub struct $name:ident { $($(#[$fmeta:meta])* $field:ident: $ty:ty),* $(,)? })*) => {$(
        $(#[$meta])*
        #[derive(Clone, Copy, Debug, Default)]
        pub struct $name {
            $($(#[$fmeta])* pub $field: $ty,)*
        }

        impl $crate::gpu::params::KernelParams for $name {
            const DEF: $crate::gpu::params::ParamsDef = $crate::gpu::params::ParamsDef {
                name: stringify!($name),
                fields: &[$((stringify!($field), <$ty as $crate::gpu::params::ParamField>::TYPE)),*],
            };
            fn bytes(&self) -> Vec<u8> {
                #[allow(unused_mut)]
                let mut out = Vec::new();
                $(
                    let align = <$ty as $crate::gpu::params::ParamField>::TYPE.align();
                    out.resize(out.len().div_ceil(align) * align, 0);
                    $crate::gpu::params::ParamField::put(&self.$field, &mut out);
                )*
                out
            }
        }
    )*};
}
pub(crate) use kernel_params;

/// Dims or strides of a 4-D view as one vec4.
pub fn vec4(v: &[usize]) -> [u32; 4] {
    let mut out = [0u32; 4];
    for (o, &x) in out.iter_mut().zip(v) {
        *o = x as u32;
    }
    out
}
