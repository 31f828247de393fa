//! The [`vocabulary!`] macro that gives every closed set of words the same
//! shape: an enum, its exact spelling, strict parsing and `ALL`.

use std::fmt;

/// A word that is not part of the vocabulary it was parsed as.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("unknown {kind} word {word:?}")]
pub struct UnknownWord {
    /// Which vocabulary was asked (`Cause`, `Layer`, ...).
    pub kind: &'static str,
    /// The word that did not parse.
    pub word: String,
}

impl UnknownWord {
    /// The error for `word` in the vocabulary `kind`.
    pub fn new(kind: &'static str, word: &str) -> Self {
        Self {
            kind,
            word: word.to_string(),
        }
    }
}

/// Writes a word; shared by every vocabulary's `Display`.
pub(crate) fn write_word(f: &mut fmt::Formatter<'_>, word: &str) -> fmt::Result {
    f.write_str(word)
}

/// Declares one closed vocabulary: the enum, `ALL` in declaration order,
/// `as_str`, `FromStr` and `Display`.
macro_rules! vocabulary {
    ($(#[$meta:meta])* $name:ident { $($(#[$vmeta:meta])* $variant:ident => $word:literal,)+ }) => {
        $(#[$meta])*
        #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
        pub enum $name { $($(#[$vmeta])* $variant,)+ }

        impl $name {
            /// Every value, in declaration (TAXONOMY) order.
            pub const ALL: &'static [$name] = &[$($name::$variant,)+];

            /// The exact wire word.
            pub fn as_str(self) -> &'static str {
                match self { $($name::$variant => $word,)+ }
            }
        }

        impl ::std::str::FromStr for $name {
            type Err = $crate::UnknownWord;
            fn from_str(s: &str) -> Result<Self, Self::Err> {
                match s.trim() {
                    $($word => Ok($name::$variant),)+
                    other => Err($crate::UnknownWord::new(stringify!($name), other)),
                }
            }
        }

        impl ::std::fmt::Display for $name {
            fn fmt(&self, f: &mut ::std::fmt::Formatter<'_>) -> ::std::fmt::Result {
                $crate::words::write_word(f, self.as_str())
            }
        }

        impl ::serde::Serialize for $name {
            fn serialize<S: ::serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
                s.serialize_str(self.as_str())
            }
        }
    };
}
