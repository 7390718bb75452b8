//! How a signature is made and written: the hash of an HMAC and the text
//! form of its bytes. Leaf types, shared by config and the providers.

use serde::Deserialize;

/// The hash of an HMAC signature.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize, clap::ValueEnum)]
#[serde(rename_all = "lowercase")]
pub enum HmacAlgorithm {
    #[default]
    Sha256,
    Sha512,
}

/// How a signature is written as text.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize, clap::ValueEnum)]
#[serde(rename_all = "lowercase")]
pub enum SignatureEncoding {
    /// Lower-case hex on the way out; either case accepted.
    #[default]
    Hex,
    /// Standard alphabet; padding optional on the way in.
    Base64,
}
