//! HMAC and signature-text helpers shared by the signing providers (meta,
//! oneroute, standard-webhooks, hmac). Every comparison goes through
//! `hmac`'s `verify_slice`, which is constant-time.

use base64::Engine as _;
use base64::engine::general_purpose::{GeneralPurpose, GeneralPurposeConfig, STANDARD};
use base64::engine::{DecodePaddingMode, general_purpose};
use hmac::{Hmac, Mac};
use sha2::{Sha256, Sha512};

use crate::config::{HmacAlgorithm, SignatureEncoding};

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
