//! A small reader of the running kernel's BTF (`/sys/kernel/btf/vmlinux`), enough to find
//! where a struct field lives. Rust eBPF has no CO-RE relocations, so the daemon resolves the
//! offsets its programs need here and hands them over as a global at load time.

mod offsets;
mod raw;
#[cfg(test)]
mod tests;

use std::collections::HashMap;
use std::path::{Path, PathBuf};

pub use offsets::resolve_offsets;
use raw::{Raw, Type};

/// Where the kernel publishes its own BTF (`CONFIG_DEBUG_INFO_BTF`).
pub const VMLINUX_BTF: &str = "/sys/kernel/btf/vmlinux";

/// Anonymous members nest a few levels at most; the limit only guards malformed blobs.
const MAX_DEPTH: u8 = 16;

/// Why BTF could not be read or a field not be found.
#[derive(Debug, thiserror::Error)]
pub enum BtfError {
    #[error("reading BTF from {path}: {source}")]
    Read {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("malformed BTF: {0}")]
    Malformed(String),
    #[error("the kernel's BTF has no struct `{struct_name}`")]
    NoStruct { struct_name: String },
    #[error("struct `{struct_name}` has no field `{field}` (anonymous members searched too)")]
    NoField { struct_name: String, field: String },
    #[error("`{struct_name}.{field}` is a bitfield: it has no byte offset")]
    Bitfield { struct_name: String, field: String },
    #[error("`{struct_name}.{field}` is {found} bytes wide where {expected} were expected")]
    Size {
        struct_name: String,
        field: String,
        expected: u32,
        found: u32,
    },
}

/// A field found in a struct: its byte offset from the start of the outermost struct (the
/// offsets of the anonymous structs/unions on the way summed in) and its size when BTF says.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Member {
    pub offset: u32,
    pub size: Option<u32>,
}

/// A parsed BTF blob with an index of its named structs.
pub struct Btf {
    raw: Raw,
    structs: HashMap<String, u32>,
}

/// A member found during the search, before it is checked for being byte-addressable.
struct Found {
    bits: u32,
    bitfield: bool,
    type_id: u32,
}

impl Btf {
    /// Reads the running kernel's BTF.
    pub fn from_sys() -> Result<Self, BtfError> {
        Self::from_file(Path::new(VMLINUX_BTF))
    }

    /// Reads a raw BTF file (e.g. a saved copy of another kernel's `vmlinux` BTF).
    pub fn from_file(path: &Path) -> Result<Self, BtfError> {
        let bytes = std::fs::read(path).map_err(|source| BtfError::Read {
            path: path.to_owned(),
            source,
        })?;
        Self::from_bytes(&bytes)
    }

    /// Parses a raw BTF blob (either byte order).
    pub fn from_bytes(bytes: &[u8]) -> Result<Self, BtfError> {
        let raw = Raw::parse(bytes)?;
        let mut structs: HashMap<String, u32> = HashMap::new();
        for (id, t) in raw.types.iter().enumerate() {
            let name = raw.name(t.name_off);
            if t.kind != raw::KIND_STRUCT || name.is_empty() {
                continue;
            }
            let id = u32::try_from(id).map_err(|_| BtfError::Malformed("too many types".into()))?;
            // A name could repeat (an empty placeholder and the real thing): keep the first
            // definition that has members.
            let keep = structs
                .get(name)
                .and_then(|&old| raw.get(old))
                .is_some_and(|old| old.vlen > 0);
            if !keep {
                structs.insert(name.to_owned(), id);
            }
        }
        Ok(Self { raw, structs })
    }

    /// Number of types, `void` excluded.
    pub fn type_count(&self) -> usize {
        self.raw.types.len() - 1
    }

    /// Size in bytes of `struct <name>`.
    pub fn struct_size(&self, struct_name: &str) -> Result<u32, BtfError> {
        Ok(self.struct_type(struct_name)?.size_or_type)
    }

    /// Byte offset of `field` in `struct <struct_name>`.
    pub fn member_offset(&self, struct_name: &str, field: &str) -> Result<u32, BtfError> {
        Ok(self.member(struct_name, field)?.offset)
    }

    /// Offset and size of `field` in `struct <struct_name>`, looking through anonymous
    /// struct/union members (whose offsets add up).
    pub fn member(&self, struct_name: &str, field: &str) -> Result<Member, BtfError> {
        let names = || (struct_name.to_owned(), field.to_owned());
        let found = self
            .find(self.struct_type(struct_name)?, field, 0)
            .ok_or_else(|| {
                let (struct_name, field) = names();
                BtfError::NoField { struct_name, field }
            })?;
        if found.bitfield || found.bits % 8 != 0 {
            let (struct_name, field) = names();
            return Err(BtfError::Bitfield { struct_name, field });
        }
        Ok(Member {
            offset: found.bits / 8,
            size: self.size_of(found.type_id, 0),
        })
    }

    fn struct_type(&self, struct_name: &str) -> Result<&Type, BtfError> {
        self.structs
            .get(struct_name)
            .and_then(|&id| self.raw.get(id))
            .ok_or_else(|| BtfError::NoStruct {
                struct_name: struct_name.to_owned(),
            })
    }

    /// Depth-first search of `field` among the members of `t` and of its anonymous members.
    /// C forbids a name to repeat across them, so the first hit is the only one.
    fn find(&self, t: &Type, field: &str, depth: u8) -> Option<Found> {
        for i in 0..t.vlen {
            let m = self.raw.member(t, i)?;
            // kind_flag: the top 8 bits hold the bitfield size, the low 24 the bit offset.
            let (bits, bitfield_size) = if t.kind_flag {
                (m.offset & 0x00ff_ffff, m.offset >> 24)
            } else {
                (m.offset, 0)
            };
            let name = self.raw.name(m.name_off);
            if name == field {
                let bitfield = bitfield_size != 0 || self.is_int_bitfield(m.type_id);
                return Some(Found {
                    bits,
                    bitfield,
                    type_id: m.type_id,
                });
            }
            if name.is_empty() && depth < MAX_DEPTH {
                let inner = self
                    .resolve(m.type_id)
                    .filter(|t| matches!(t.kind, raw::KIND_STRUCT | raw::KIND_UNION));
                if let Some(found) = inner.and_then(|inner| self.find(inner, field, depth + 1)) {
                    return Some(Found {
                        bits: bits.checked_add(found.bits)?,
                        ..found
                    });
                }
            }
        }
        None
    }

    /// Follows typedefs and qualifiers to the type they name.
    fn resolve(&self, mut id: u32) -> Option<&Type> {
        for _ in 0..MAX_DEPTH {
            let t = self.raw.get(id)?;
            match t.kind {
                raw::KIND_TYPEDEF
                | raw::KIND_CONST
                | raw::KIND_VOLATILE
                | raw::KIND_RESTRICT
                | raw::KIND_TYPE_TAG => id = t.size_or_type,
                _ => return Some(t),
            }
        }
        None
    }

    /// Without kind_flag, an old-style bitfield is an INT whose bit count is not its size.
    fn is_int_bitfield(&self, id: u32) -> bool {
        self.resolve(id)
            .filter(|t| t.kind == raw::KIND_INT)
            .and_then(|t| self.raw.int_bits(t).map(|bits| bits != t.size_or_type * 8))
            .unwrap_or(false)
    }

    /// Size in bytes of a type, when it has one.
    fn size_of(&self, id: u32, depth: u8) -> Option<u32> {
        let t = self.resolve(id).filter(|_| depth < MAX_DEPTH)?;
        match t.kind {
            raw::KIND_INT
            | raw::KIND_STRUCT
            | raw::KIND_UNION
            | raw::KIND_ENUM
            | raw::KIND_ENUM64
            | raw::KIND_FLOAT => Some(t.size_or_type),
            // BTF does not record pointer width; it is the running kernel's, i.e. ours.
            raw::KIND_PTR => u32::try_from(size_of::<usize>()).ok(),
            raw::KIND_ARRAY => {
                let (elem, nelems) = self.raw.array(t)?;
                self.size_of(elem, depth + 1)?.checked_mul(nelems)
            }
            _ => None,
        }
    }
}
