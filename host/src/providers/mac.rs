//! HMAC and signature-text helpers shared by the signing providers (meta,
//! oneroute, standard-webhooks, hmac), and [`BodySignature`], the whole
//! check of a MAC of the raw body carried in one header. Every comparison
//! goes through `hmac`'s `verify_slice`, which is constant-time.

use axum::http::HeaderName;
use base64::Engine as _;
use base64::engine::general_purpose::{GeneralPurpose, GeneralPurposeConfig, STANDARD};
use base64::engine::{DecodePaddingMode, general_purpose};
use hmac::{Hmac, Mac};
use sha2::{Sha256, Sha512};

use super::{Rejection, Request, Signed};
use crate::algorithm::{HmacAlgorithm, SignatureEncoding};
use crate::secret::Secret;

/// Standard base64, padding optional (senders differ), trailing bits
/// checked so that each digest has exactly one spelling per padding mode.
const BASE64_LENIENT_PADDING: GeneralPurpose = GeneralPurpose::new(
    &base64::alphabet::STANDARD,
    GeneralPurposeConfig::new().with_decode_padding_mode(DecodePaddingMode::Indifferent),
);

/// The MAC of the concatenation of `parts` under `key`.
pub fn sign(algorithm: HmacAlgorithm, key: &[u8], parts: &[&[u8]]) -> Vec<u8> {
    match algorithm {
        HmacAlgorithm::Sha256 => {
            let mut mac = Hmac::<Sha256>::new_from_slice(key).expect("HMAC takes any key length");
            parts.iter().for_each(|p| mac.update(p));
            mac.finalize().into_bytes().to_vec()
        }
        HmacAlgorithm::Sha512 => {
            let mut mac = Hmac::<Sha512>::new_from_slice(key).expect("HMAC takes any key length");
            parts.iter().for_each(|p| mac.update(p));
            mac.finalize().into_bytes().to_vec()
        }
    }
}

/// Whether `expected` is the MAC of the concatenation of `parts`, compared
/// in constant time.
pub fn verify(algorithm: HmacAlgorithm, key: &[u8], parts: &[&[u8]], expected: &[u8]) -> bool {
    match algorithm {
        HmacAlgorithm::Sha256 => {
            let mut mac = Hmac::<Sha256>::new_from_slice(key).expect("HMAC takes any key length");
            parts.iter().for_each(|p| mac.update(p));
            mac.verify_slice(expected).is_ok()
        }
        HmacAlgorithm::Sha512 => {
            let mut mac = Hmac::<Sha512>::new_from_slice(key).expect("HMAC takes any key length");
            parts.iter().for_each(|p| mac.update(p));
            mac.verify_slice(expected).is_ok()
        }
    }
}

/// A digest as text.
pub fn encode(encoding: SignatureEncoding, digest: &[u8]) -> String {
    match encoding {
        SignatureEncoding::Hex => hex::encode(digest),
        SignatureEncoding::Base64 => STANDARD.encode(digest),
    }
}

/// A digest from text: hex in either case, base64 with or without padding.
/// `None` when the text is not in that encoding.
pub fn decode(encoding: SignatureEncoding, text: &[u8]) -> Option<Vec<u8>> {
    match encoding {
        SignatureEncoding::Hex => hex::decode(text).ok(),
        SignatureEncoding::Base64 => BASE64_LENIENT_PADDING.decode(text).ok(),
    }
}

/// Decodes a base64 secret (Standard Webhooks' `whsec_` part), strictly.
pub fn decode_base64_key(text: &str) -> Option<Vec<u8>> {
    general_purpose::STANDARD.decode(text).ok()
}

/// A MAC of the raw body in one header, written as `prefix` + digest:
/// Meta's `X-Hub-Signature-256`, and whatever the generic `hmac` route
/// configures.
pub struct BodySignature {
    pub header: HeaderName,
    /// The header as configured, for `wirehook sign`'s output.
    pub header_text: String,
    pub algorithm: HmacAlgorithm,
    pub encoding: SignatureEncoding,
    pub prefix: String,
}

impl BodySignature {
    /// Proves the body with `key`, then that it claims to be JSON.
    pub fn verify(&self, key: &Secret, req: &Request<'_>) -> Result<(), Rejection> {
        let name = &self.header;
        let value = req
            .headers
            .get(name)
            .ok_or_else(|| Rejection::unauthorized(format!("missing `{name}` header")))?;
        let text = value
            .as_bytes()
            .strip_prefix(self.prefix.as_bytes())
            .ok_or_else(|| {
                Rejection::unauthorized(format!("`{name}` does not start with `{}`", self.prefix))
            })?;
        let encoding = match self.encoding {
            SignatureEncoding::Hex => "hex",
            SignatureEncoding::Base64 => "base64",
        };
        let signature = decode(self.encoding, text)
            .ok_or_else(|| Rejection::unauthorized(format!("`{name}` is not {encoding}")))?;
        if !verify(self.algorithm, key.expose(), &[req.body], &signature) {
            return Err(Rejection::unauthorized("signature does not match"));
        }
        super::require_json_content_type(req.headers)
    }

    /// The request a sender holding `key` makes for `payload`.
    pub fn sign(&self, key: &Secret, payload: &[u8]) -> Signed {
        let digest = sign(self.algorithm, key.expose(), &[payload]);
        let value = format!("{}{}", self.prefix, encode(self.encoding, &digest));
        Signed::json(payload, [(self.header_text.clone(), value)])
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rfc4231_case_2() {
        // RFC 4231 test case 2: key "Jefe", data "what do ya want for nothing?".
        let parts: &[&[u8]] = &[b"what do ya want ", b"for nothing?"];
        let digest = sign(HmacAlgorithm::Sha256, b"Jefe", parts);
        assert_eq!(
            encode(SignatureEncoding::Hex, &digest),
            "5bdcc146bf60754e6a042426089575c75a003f089d2739839dec58b964ec3843"
        );
        assert!(verify(HmacAlgorithm::Sha256, b"Jefe", parts, &digest));
        assert!(!verify(HmacAlgorithm::Sha256, b"Jeff", parts, &digest));
        let digest = sign(HmacAlgorithm::Sha512, b"Jefe", parts);
        assert!(encode(SignatureEncoding::Hex, &digest).starts_with("164b7a7bfcf819e2"));
    }

    #[test]
    fn decoding_is_strict_about_alphabet_and_lenient_about_padding() {
        let digest = [0xfbu8, 0xff, 0x01];
        let b64 = encode(SignatureEncoding::Base64, &digest);
        assert_eq!(
            decode(SignatureEncoding::Base64, b64.as_bytes()).unwrap(),
            digest
        );
        assert_eq!(decode(SignatureEncoding::Base64, b"+/8B").unwrap(), digest);
        assert_eq!(decode(SignatureEncoding::Base64, b"-_8B"), None);
        assert_eq!(decode(SignatureEncoding::Hex, b"FBff01").unwrap(), digest);
        assert_eq!(decode(SignatureEncoding::Hex, b"fbff0"), None);
    }
}
