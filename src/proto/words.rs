//! Closed sets spelled as lowercase words on the wire, in the config and
//! in the database. One macro gives each the same behaviour: `as_str`,
//! `Display`, `FromStr` with an error that lists the valid words, and serde
//! as the word — so a bad stored or sent value is an error in plain words,
//! never a silent default.

/// A word that is not one of a closed set's words.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("unknown {what} {word:?}; valid: {valid}")]
pub struct UnknownWord {
    /// What the set is called, e.g. "priority", "on_busy".
    pub what: &'static str,
    pub word: String,
    /// The valid words, comma-separated.
    pub valid: &'static str,
}

/// `words! { /// doc  pub enum Name("what") { Variant = "word", ... } }`
#[macro_export]
macro_rules! words {
    (
        $(#[$meta:meta])*
        pub enum $name:ident($what:literal) {
            $( $(#[$vmeta:meta])* $variant:ident = $word:literal ),+ $(,)?
        }
    ) => {
        $(#[$meta])*
        #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
        pub enum $name {
            $( $(#[$vmeta])* $variant ),+
        }

        impl $name {
            /// Every value, in declaration order.
            pub const ALL: &'static [$name] = &[$($name::$variant),+];
            /// The valid words, as error messages list them.
            pub const WORDS: &'static str = $crate::words!(@join $($word),+);

            pub fn as_str(self) -> &'static str {
                match self {
                    $( $name::$variant => $word ),+
                }
            }
        }

        impl std::fmt::Display for $name {
            fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                f.write_str(self.as_str())
            }
        }

        impl std::str::FromStr for $name {
            type Err = $crate::proto::words::UnknownWord;

            fn from_str(s: &str) -> Result<$name, Self::Err> {
                match s {
                    $( $word => Ok($name::$variant), )+
                    _ => Err($crate::proto::words::UnknownWord {
                        what: $what,
                        word: s.to_string(),
                        valid: Self::WORDS,
                    }),
                }
            }
        }

        impl serde::Serialize for $name {
            fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
                s.serialize_str(self.as_str())
            }
        }

        impl<'de> serde::Deserialize<'de> for $name {
            fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<$name, D::Error> {
                let word = <std::borrow::Cow<'de, str> as serde::Deserialize>::deserialize(d)?;
                word.parse().map_err(serde::de::Error::custom)
            }
        }
    };
    (@join $first:literal $(, $rest:literal)*) => {
        concat!($first $(, ", ", $rest)*)
    };
}

#[cfg(test)]
mod tests {
    crate::words! {
        /// A test set.
        pub enum Colour("colour") {
            Red = "red",
            Green = "green",
        }
    }

    #[test]
    fn words_round_trip_and_unknown_words_say_what_is_valid() {
        for c in Colour::ALL {
            assert_eq!(c.as_str().parse::<Colour>(), Ok(*c));
            let json = serde_json::to_string(c).unwrap();
            assert_eq!(serde_json::from_str::<Colour>(&json).unwrap(), *c);
        }
        let err = "blue".parse::<Colour>().unwrap_err();
        assert_eq!(err.to_string(), r#"unknown colour "blue"; valid: red, green"#);
        let err = serde_json::from_str::<Colour>(r#""Red""#).unwrap_err();
        assert!(err.to_string().contains(r#"unknown colour "Red"; valid: red, green"#), "{err}");
    }
}
