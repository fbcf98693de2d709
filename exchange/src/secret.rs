//! API keys and other secrets: random from the OS, stored only as hashes.
//!
//! Data flow: `gdx principal add` draws a key ([`new_api_key`], 256 random bits) → prints it
//! once → the journal keeps only [`key_hash`] (SHA-256: the key is random and long, so a
//! slow password hash adds nothing) → each call's bearer key is hashed and looked up.

use sha2::{Digest, Sha256};

/// `n` random bytes as lowercase hex.
pub fn random_hex(n: usize) -> String {
    let mut buf = vec![0u8; n];
    getrandom::fill(&mut buf).expect("the OS random source");
    hex::encode(buf)
}

/// Prefix of every API key (lets secret scanners recognise a leaked key).
pub const KEY_PREFIX: &str = "gdx_";

/// A new API key: `gdx_` and 64 hex digits.
pub fn new_api_key() -> String {
    format!("{KEY_PREFIX}{}", random_hex(32))
}

/// The stored form of an API key.
pub fn key_hash(key: &str) -> String {
    hex::encode(Sha256::digest(key.as_bytes()))
}

/// SHA-256 of `bytes`, hex.
pub fn sha256_hex(bytes: &[u8]) -> String {
    hex::encode(Sha256::digest(bytes))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keys_are_random_and_only_their_hash_is_kept() {
        let (a, b) = (new_api_key(), new_api_key());
        assert_ne!(a, b);
        assert_eq!(a.len(), 4 + 64);
        assert_eq!(key_hash(&a).len(), 64);
        assert_ne!(key_hash(&a), key_hash(&b));
        assert!(!key_hash(&a).contains(&a[4..20]));
    }
}
