//! The policy as written: serde structs that refuse unknown fields and keep every value's
//! position. Values stay strings here (numbers, booleans, actions too) so that validation,
//! not serde, writes the error messages and can report every problem at once.

use marked_yaml::{Span, Spanned};
use serde::{
    de::{IgnoredAny, SeqAccess, Visitor},
    Deserialize, Deserializer,
};

/// A string with its position.
pub type Str = Spanned<String>;

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawAgent {
    pub name: Str,
    pub cgroup: Str,
    pub default: Option<Spanned<RawDefaults>>,
    pub monitor: Option<Str>,
    pub accounts: Option<Spanned<OneOrMany>>,
    pub permit: Option<Spanned<OneOrMany>>,
    pub agent_written: Option<Str>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawDefaults {
    pub exec: Option<Str>,
    pub network: Option<Str>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawRule {
    pub id: Str,
    pub description: Option<Str>,
    pub agents: Option<Spanned<OneOrMany>>,
    pub exec: Option<Spanned<RawExec>>,
    pub network: Option<Spanned<RawNet>>,
    pub action: Str,
    pub approvers: Option<Spanned<RawApprovers>>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawExec {
    pub binary: Option<Spanned<OneOrMany>>,
    pub args: Option<Spanned<Vec<Str>>>,
    pub parent: Option<Spanned<OneOrMany>>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawNet {
    pub cidr: Option<Spanned<OneOrMany>>,
    pub ports: Option<Spanned<OneOrMany>>,
    pub protocol: Option<Str>,
    /// Accepted by the parser only to be refused with a clear message by validation.
    pub domains: Option<Spanned<IgnoredAny>>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawApprovers {
    pub groups: Option<Spanned<OneOrMany>>,
    pub min: Option<Str>,
    pub grant: Option<Spanned<RawGrant>>,
    /// Lifetime of a pending request (a duration).
    pub expires: Option<Str>,
    /// Whether the launching user may approve (`true`/`false`).
    pub allow_launcher: Option<Str>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawGrant {
    pub uses: Option<Str>,
    pub ttl: Option<Str>,
}

/// `x` or `[x, y]`. A single value has no span of its own: [`items`] gives it the span of the
/// enclosing `Spanned`.
pub struct OneOrMany(Vec<Str>);

impl<'de> Deserialize<'de> for OneOrMany {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V;
        impl<'de> Visitor<'de> for V {
            type Value = OneOrMany;
            fn expecting(&self, f: &mut std::fmt::Formatter) -> std::fmt::Result {
                f.write_str("a string or a list of strings")
            }
            fn visit_str<E: serde::de::Error>(self, v: &str) -> Result<OneOrMany, E> {
                Ok(OneOrMany(vec![Spanned::new(
                    Span::new_blank(),
                    v.to_owned(),
                )]))
            }
            fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<OneOrMany, A::Error> {
                let mut v = Vec::new();
                while let Some(s) = seq.next_element::<Str>()? {
                    v.push(s);
                }
                Ok(OneOrMany(v))
            }
        }
        d.deserialize_any(V)
    }
}

/// 1-based line of a span (0 when unknown, which the loader never produces).
pub fn line(span: &Span) -> usize {
    span.start().map_or(0, |m| m.line())
}

/// The values of a `OneOrMany` with their lines.
pub fn items(v: &Spanned<OneOrMany>) -> Vec<(&str, usize)> {
    let outer = line(v.span());
    v.0.iter()
        .map(|s| {
            let l = line(s.span());
            (s.as_str(), if l == 0 { outer } else { l })
        })
        .collect()
}
