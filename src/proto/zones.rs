//! Which zones a request or schedule means.

use serde::{Deserialize, Serialize};

/// `"all"` (every zone configured at the time it plays) or zone names.
/// On the wire: the string `"all"` or a list of names; a single name is a
/// one-element list (`"a,b"` is not split: it is no zone's name).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ZoneSelection {
    All,
    Named(Vec<String>),
}

impl ZoneSelection {
    /// What the command line takes: `all` or `a,b,c`.
    pub fn from_arg(text: &str) -> ZoneSelection {
        if text.trim() == "all" {
            ZoneSelection::All
        } else {
            ZoneSelection::Named(text.split(',').map(str::trim).filter(|z| !z.is_empty()).map(String::from).collect())
        }
    }

    /// `all`, or the names joined with `,`.
    pub fn to_arg(&self) -> String {
        match self {
            ZoneSelection::All => "all".into(),
            ZoneSelection::Named(names) => names.join(","),
        }
    }
}

impl Serialize for ZoneSelection {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        match self {
            ZoneSelection::All => s.serialize_str("all"),
            ZoneSelection::Named(names) => names.serialize(s),
        }
    }
}

impl<'de> Deserialize<'de> for ZoneSelection {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<ZoneSelection, D::Error> {
        struct Visitor;
        impl<'de> serde::de::Visitor<'de> for Visitor {
            type Value = ZoneSelection;

            fn expecting(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                f.write_str(r#""all" or a list of zone names, e.g. ["thon-1", "thon-2"]"#)
            }

            fn visit_str<E: serde::de::Error>(self, word: &str) -> Result<ZoneSelection, E> {
                Ok(if word == "all" {
                    ZoneSelection::All
                } else {
                    ZoneSelection::Named(vec![word.to_string()])
                })
            }

            fn visit_seq<A: serde::de::SeqAccess<'de>>(self, mut seq: A) -> Result<ZoneSelection, A::Error> {
                let mut names = Vec::new();
                while let Some(name) = seq.next_element::<String>()? {
                    names.push(name);
                }
                Ok(ZoneSelection::Named(names))
            }
        }
        d.deserialize_any(Visitor)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn all_or_names_on_the_wire_and_on_the_command_line() {
        let all: ZoneSelection = serde_json::from_str(r#""all""#).unwrap();
        assert_eq!(all, ZoneSelection::All);
        let two: ZoneSelection = serde_json::from_str(r#"["a","b"]"#).unwrap();
        assert_eq!(two, ZoneSelection::Named(vec!["a".into(), "b".into()]));
        let one: ZoneSelection = serde_json::from_str(r#""a,b""#).unwrap();
        assert_eq!(one, ZoneSelection::Named(vec!["a,b".into()]), "a comma is part of a name on the wire");
        assert!(serde_json::from_str::<ZoneSelection>("3").unwrap_err().to_string().contains(r#"expected "all" or a list of zone names"#));
        assert_eq!(ZoneSelection::from_arg("a, b,,c"), ZoneSelection::Named(vec!["a".into(), "b".into(), "c".into()]));
        assert_eq!(ZoneSelection::from_arg("all").to_arg(), "all");
        assert_eq!(serde_json::to_string(&two).unwrap(), r#"["a","b"]"#);
    }
}
