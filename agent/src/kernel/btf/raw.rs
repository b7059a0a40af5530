//! Decoding of the raw BTF encoding (`Documentation/bpf/btf.rst`): a header, a type section
//! of variable-length records and a string section. Only what is needed to walk structs is
//! kept; every record is still stepped over correctly, since a record's length depends on its
//! kind.

use super::BtfError;

/// `BTF_MAGIC`, read in the blob's own byte order.
const MAGIC: u16 = 0xeb9f;
/// Bytes of `struct btf_header` up to and including `str_len`.
const HEADER_LEN: usize = 24;
/// Bytes of `struct btf_type` (name_off, info, size/type).
const TYPE_LEN: usize = 12;

pub(super) const KIND_INT: u8 = 1;
pub(super) const KIND_PTR: u8 = 2;
pub(super) const KIND_ARRAY: u8 = 3;
pub(super) const KIND_STRUCT: u8 = 4;
pub(super) const KIND_UNION: u8 = 5;
pub(super) const KIND_ENUM: u8 = 6;
pub(super) const KIND_FWD: u8 = 7;
pub(super) const KIND_TYPEDEF: u8 = 8;
pub(super) const KIND_VOLATILE: u8 = 9;
pub(super) const KIND_CONST: u8 = 10;
pub(super) const KIND_RESTRICT: u8 = 11;
pub(super) const KIND_FUNC: u8 = 12;
pub(super) const KIND_FUNC_PROTO: u8 = 13;
pub(super) const KIND_VAR: u8 = 14;
pub(super) const KIND_DATASEC: u8 = 15;
pub(super) const KIND_FLOAT: u8 = 16;
pub(super) const KIND_DECL_TAG: u8 = 17;
pub(super) const KIND_TYPE_TAG: u8 = 18;
pub(super) const KIND_ENUM64: u8 = 19;

/// One `struct btf_type`, with where its kind-specific data starts in the type section.
#[derive(Clone, Copy, Debug)]
pub(super) struct Type {
    pub name_off: u32,
    pub kind: u8,
    /// For structs and unions: member offsets carry a bitfield size in their top 8 bits.
    pub kind_flag: bool,
    pub vlen: u16,
    /// `size` for sized kinds, `type` for referring kinds.
    pub size_or_type: u32,
    /// Offset of the data following the record, inside [`Raw::type_data`].
    pub data: usize,
}

/// One `struct btf_member` as encoded.
#[derive(Clone, Copy, Debug)]
pub(super) struct Member {
    pub name_off: u32,
    pub type_id: u32,
    pub offset: u32,
}

/// A decoded BTF blob. `types[0]` stands for `void` (type id 0).
pub(super) struct Raw {
    big_endian: bool,
    pub types: Vec<Type>,
    type_data: Vec<u8>,
    strings: Vec<u8>,
}

impl Raw {
    /// Decodes a whole blob, checking every length against the buffer.
    pub fn parse(bytes: &[u8]) -> Result<Self, BtfError> {
        let big_endian = match bytes.get(..2) {
            Some(m) if u16::from_le_bytes([m[0], m[1]]) == MAGIC => false,
            Some(m) if u16::from_be_bytes([m[0], m[1]]) == MAGIC => true,
            _ => return Err(malformed("bad magic: not a raw BTF blob")),
        };
        let hdr =
            |off: usize| read_u32(bytes, off, big_endian).ok_or(malformed("truncated header"));
        let hdr_len = hdr(4)? as usize;
        if hdr_len < HEADER_LEN {
            return Err(malformed("header shorter than 24 bytes"));
        }
        let section = |off_at: usize, len_at: usize, what: &str| -> Result<Vec<u8>, BtfError> {
            let (off, len) = (hdr(off_at)? as usize, hdr(len_at)? as usize);
            hdr_len
                .checked_add(off)
                .and_then(|start| Some((start, start.checked_add(len)?)))
                .and_then(|(start, end)| bytes.get(start..end))
                .map(<[u8]>::to_vec)
                .ok_or_else(|| malformed(&format!("{what} section lies outside the blob")))
        };
        let type_data = section(8, 12, "type")?;
        let strings = section(16, 20, "string")?;
        let types = decode_types(&type_data, big_endian)?;
        Ok(Self {
            big_endian,
            types,
            type_data,
            strings,
        })
    }

    /// The string at `off` in the string section; empty for anonymous names or bad offsets.
    pub fn name(&self, off: u32) -> &str {
        let tail = self.strings.get(off as usize..).unwrap_or_default();
        let end = tail.iter().position(|&b| b == 0).unwrap_or(tail.len());
        std::str::from_utf8(&tail[..end]).unwrap_or_default()
    }

    /// The type with this id, if any (id 0, `void`, is a placeholder).
    pub fn get(&self, id: u32) -> Option<&Type> {
        self.types.get(id as usize)
    }

    /// Member `i` of a struct or union. Only called with `i < t.vlen` on such kinds, whose
    /// data length was checked while decoding.
    pub fn member(&self, t: &Type, i: u16) -> Option<Member> {
        let at = t.data + usize::from(i) * 12;
        Some(Member {
            name_off: self.u32_at(at)?,
            type_id: self.u32_at(at + 4)?,
            offset: self.u32_at(at + 8)?,
        })
    }

    /// Element type and `nelems` of an array record (`struct btf_array`).
    pub fn array(&self, t: &Type) -> Option<(u32, u32)> {
        Some((self.u32_at(t.data)?, self.u32_at(t.data + 8)?))
    }

    /// `BTF_INT_BITS` of an INT record: how many bits the value really uses.
    pub fn int_bits(&self, t: &Type) -> Option<u32> {
        Some(self.u32_at(t.data)? & 0xff)
    }

    fn u32_at(&self, off: usize) -> Option<u32> {
        read_u32(&self.type_data, off, self.big_endian)
    }
}

/// Walks the type section record by record; a record's length depends on its kind and vlen.
fn decode_types(data: &[u8], big_endian: bool) -> Result<Vec<Type>, BtfError> {
    let void = Type {
        name_off: 0,
        kind: 0,
        kind_flag: false,
        vlen: 0,
        size_or_type: 0,
        data: 0,
    };
    let mut types = vec![void];
    let mut at = 0;
    while at < data.len() {
        let word = |i: usize| {
            read_u32(data, at + 4 * i, big_endian).ok_or(malformed("truncated type record"))
        };
        let (name_off, info, size_or_type) = (word(0)?, word(1)?, word(2)?);
        let kind = ((info >> 24) & 0x1f) as u8;
        let vlen = (info & 0xffff) as u16;
        let extra = extra_len(kind, vlen).ok_or_else(|| {
            malformed(&format!("type id {} has unknown kind {kind}", types.len()))
        })?;
        let start = at + TYPE_LEN;
        at = start + extra;
        if at > data.len() {
            return Err(malformed("type section ends inside a record"));
        }
        types.push(Type {
            name_off,
            kind,
            kind_flag: info >> 31 == 1,
            vlen,
            size_or_type,
            data: start,
        });
    }
    Ok(types)
}

/// Bytes of kind-specific data after the 12-byte record; `None` for kinds we do not know.
fn extra_len(kind: u8, vlen: u16) -> Option<usize> {
    let n = usize::from(vlen);
    Some(match kind {
        KIND_PTR | KIND_FWD | KIND_TYPEDEF | KIND_VOLATILE | KIND_CONST | KIND_RESTRICT
        | KIND_FUNC | KIND_FLOAT | KIND_TYPE_TAG => 0,
        KIND_INT | KIND_VAR | KIND_DECL_TAG => 4,
        KIND_ARRAY => 12,
        KIND_STRUCT | KIND_UNION | KIND_DATASEC | KIND_ENUM64 => 12 * n,
        KIND_ENUM | KIND_FUNC_PROTO => 8 * n,
        _ => return None,
    })
}

fn read_u32(buf: &[u8], off: usize, big_endian: bool) -> Option<u32> {
    let b: [u8; 4] = buf.get(off..off.checked_add(4)?)?.try_into().ok()?;
    Some(if big_endian {
        u32::from_be_bytes(b)
    } else {
        u32::from_le_bytes(b)
    })
}

fn malformed(what: &str) -> BtfError {
    BtfError::Malformed(what.to_owned())
}
