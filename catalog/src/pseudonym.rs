//! Keyed pseudonyms: HMAC-SHA256 over the normalised value.
//!
//! Data flow: a secret key (from configuration, never logged) → [`Pseudonymizer`] → for each
//! value, `kind || 0x1f || value` is MACed and the first 16 bytes are hex-encoded with a `p_`
//! prefix. The same key and value always give the same pseudonym, so masked tables still join;
//! without the key the pseudonym cannot be recomputed or reversed.

use hmac::{Hmac, KeyInit, Mac};
use sha2::Sha256;

use crate::ident::normalize;
use crate::mask::PiiKind;

/// Computes stable keyed pseudonyms.
#[derive(Clone)]
pub struct Pseudonymizer {
    mac: Hmac<Sha256>,
}

impl std::fmt::Debug for Pseudonymizer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Pseudonymizer(<key hidden>)")
    }
}

/// The key was too short to be a secret.
#[derive(Debug, thiserror::Error)]
#[error("pseudonym key must be at least 16 bytes, got {0}")]
pub struct WeakKey(pub usize);

impl Pseudonymizer {
    pub fn new(key: &[u8]) -> Result<Self, WeakKey> {
        if key.len() < 16 {
            return Err(WeakKey(key.len()));
        }
        let mac = Hmac::<Sha256>::new_from_slice(key).map_err(|_| WeakKey(key.len()))?;
        Ok(Self { mac })
    }

    /// The pseudonym of `value` as a value of `kind`. Identifiers are normalised first so
    /// that `11010519491231002x` and `11010519491231002X` map to the same pseudonym.
    pub fn pseudonym(&self, kind: PiiKind, value: &str) -> String {
        let canonical = match kind {
            PiiKind::IdNumber | PiiKind::Uscc | PiiKind::BankCard | PiiKind::Phone => {
                normalize(value)
            }
            _ => value.trim().to_owned(),
        };
        self.pseudonym_in(kind.as_str(), &canonical)
    }

    /// The pseudonym of `value` (as given) in a named domain: for values that have no PII
    /// kind, such as a household number, the domain is the column's name.
    pub fn pseudonym_in(&self, domain: &str, value: &str) -> String {
        let mut mac = self.mac.clone();
        mac.update(domain.as_bytes());
        mac.update(&[0x1f]);
        mac.update(value.as_bytes());
        let tag = mac.finalize().into_bytes();
        format!("p_{}", hex::encode(&tag[..16]))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn stable_per_key_and_different_across_keys() {
        let a = Pseudonymizer::new(b"district-420106-secret-key").unwrap();
        let b = Pseudonymizer::new(b"another-secret-key-of-length").unwrap();
        let x = a.pseudonym(PiiKind::IdNumber, "11010519491231002X");
        assert_eq!(x, a.pseudonym(PiiKind::IdNumber, " 11010519491231002x"));
        assert_ne!(x, b.pseudonym(PiiKind::IdNumber, "11010519491231002X"));
        assert_ne!(x, a.pseudonym(PiiKind::Phone, "11010519491231002X"));
        assert_eq!(x.len(), 2 + 32);
        assert!(!x.contains("1101051949"));
        assert!(Pseudonymizer::new(b"short").is_err());
        assert_eq!(format!("{a:?}"), "Pseudonymizer(<key hidden>)");
    }
}
