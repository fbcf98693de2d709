//! Bank card numbers (12–19 digits, Luhn check).

use super::{IdError, first_non_digit, normalize};

/// A validated bank card number.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct BankCard(String);

/// The Luhn check digit for `body` (all digits, check digit not included).
pub(crate) fn luhn_digit(body: &str) -> u8 {
    let sum: u32 = body
        .bytes()
        .rev()
        .enumerate()
        .map(|(i, b)| {
            let d = u32::from(b - b'0');
            if i % 2 == 0 {
                let x = d * 2;
                if x > 9 { x - 9 } else { x }
            } else {
                d
            }
        })
        .sum();
    ((10 - sum % 10) % 10) as u8
}

impl BankCard {
    pub fn parse(raw: &str) -> Result<Self, IdError> {
        let s = normalize(raw);
        if s.is_empty() {
            return Err(IdError::Empty);
        }
        if let Some((pos, ch)) = first_non_digit(&s, None) {
            return Err(IdError::Character { pos, ch });
        }
        if !(12..=19).contains(&s.len()) {
            return Err(IdError::Length {
                got: s.len(),
                expected: "12 to 19",
            });
        }
        let (body, last) = s.split_at(s.len() - 1);
        let expected = (b'0' + luhn_digit(body)) as char;
        let got = last.as_bytes()[0] as char;
        if got != expected {
            return Err(IdError::Checksum { got, expected });
        }
        Ok(BankCard(s))
    }

    /// Appends the Luhn digit to `body` (digits only).
    pub fn compose(body: &str) -> Option<Self> {
        if body.is_empty() || !body.bytes().all(|b| b.is_ascii_digit()) {
            return None;
        }
        Self::parse(&format!("{body}{}", luhn_digit(body))).ok()
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn luhn() {
        assert!(BankCard::parse("4111111111111111").is_ok());
        assert!(BankCard::parse("4111 1111 1111 1111").is_ok());
        assert!(matches!(
            BankCard::parse("4111111111111112"),
            Err(IdError::Checksum { expected: '1', .. })
        ));
        assert!(matches!(
            BankCard::parse("41111"),
            Err(IdError::Length { .. })
        ));
        assert!(matches!(
            BankCard::parse("4111a11111111111"),
            Err(IdError::Character { pos: 5, .. })
        ));
        let c = BankCard::compose("622202020011223344").unwrap();
        assert_eq!(c.as_str().len(), 19);
        for pos in 0..19 {
            let mut b = c.as_str().as_bytes().to_vec();
            b[pos] = if b[pos] == b'9' { b'0' } else { b[pos] + 1 };
            assert!(BankCard::parse(std::str::from_utf8(&b).unwrap()).is_err());
        }
    }
}
