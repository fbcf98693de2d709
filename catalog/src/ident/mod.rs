//! Coded identifiers as validating newtypes.
//!
//! Data flow: raw text from a department record → [`normalize`] (NFKC, so full-width digits
//! and letters become ASCII; spaces and dashes removed; lowercase `x` upper-cased) → the
//! type's parser, which checks length, alphabet, embedded dates and the check digit, and
//! returns an [`IdError`] that says exactly which of those failed.

mod bank_card;
mod mobile;
mod resident_id;
mod uscc;

pub use bank_card::BankCard;
pub use mobile::Mobile;
pub use resident_id::ResidentId;
pub use uscc::Uscc;

use unicode_normalization::UnicodeNormalization;

/// Why a coded identifier was rejected.
///
/// The message (`Display`) names the rule that failed and never any part of the value: it
/// reaches dead-letter rows, `gdx publish` output and logs, where the value is not to be
/// repeated. The fields keep the particulars for the person who typed the value
/// ([`IdError::detail`], used by `gdx id check`).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum IdError {
    #[error("empty value")]
    Empty,
    #[error("wrong length: {got} characters, expected {expected}")]
    Length { got: usize, expected: &'static str },
    #[error("invalid character at position {pos}")]
    Character { pos: usize, ch: char },
    #[error("invalid birth date (characters 7-14): {why}")]
    BirthDate { date: String, why: &'static str },
    #[error("invalid area code (the leading characters name no region)")]
    Area { code: String },
    #[error("the check digit does not match the other characters")]
    Checksum { got: char, expected: char },
    #[error("not a mobile number: {why}")]
    Mobile { why: &'static str },
}

impl IdError {
    /// The message with the particulars of the value (the character, the date, the digit
    /// expected): for the person who typed the value, never for stored or logged messages.
    pub fn detail(&self) -> String {
        match self {
            IdError::Character { pos, ch } => format!("invalid character {ch:?} at position {pos}"),
            IdError::BirthDate { date, why } => format!("invalid birth date {date}: {why}"),
            IdError::Area { code } => format!("invalid area code {code}"),
            IdError::Checksum { got, expected } => {
                format!("check digit is {got}, expected {expected}")
            }
            other => other.to_string(),
        }
    }
}

/// The kinds of coded identifier gdx knows how to check.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum IdKind {
    ResidentId,
    Uscc,
    BankCard,
    Mobile,
}

impl IdKind {
    pub const ALL: [IdKind; 4] = [
        IdKind::ResidentId,
        IdKind::Uscc,
        IdKind::BankCard,
        IdKind::Mobile,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            IdKind::ResidentId => "resident_id",
            IdKind::Uscc => "uscc",
            IdKind::BankCard => "bank_card",
            IdKind::Mobile => "mobile",
        }
    }

    /// Checks `raw` as this kind and returns its canonical form.
    pub fn check(self, raw: &str) -> Result<String, IdError> {
        self.check_at(raw, chrono::Utc::now().date_naive())
    }

    /// [`IdKind::check`] with `today` as the latest possible birth date (read the clock once
    /// for a whole batch, not per value).
    pub fn check_at(self, raw: &str, today: chrono::NaiveDate) -> Result<String, IdError> {
        Ok(match self {
            IdKind::ResidentId => ResidentId::parse_at(raw, today)?.as_str().to_owned(),
            IdKind::Uscc => Uscc::parse(raw)?.as_str().to_owned(),
            IdKind::BankCard => BankCard::parse(raw)?.as_str().to_owned(),
            IdKind::Mobile => Mobile::parse(raw)?.as_str().to_owned(),
        })
    }

    /// The kinds a value could plausibly be, most likely first, judged by its normalised shape.
    pub fn candidates(raw: &str) -> Vec<IdKind> {
        let n = normalize(raw);
        let len = n.chars().count();
        let digits = n.chars().all(|c| c.is_ascii_digit());
        let mut out = Vec::new();
        if len == 18 || (len == 15 && digits) {
            let id_like = n
                .chars()
                .enumerate()
                .all(|(i, c)| c.is_ascii_digit() || (i == 17 && c == 'X'));
            if id_like {
                out.push(IdKind::ResidentId);
            }
            if len == 18 {
                out.push(IdKind::Uscc);
            }
        }
        let mobile_like = n
            .strip_prefix("+86")
            .or_else(|| n.strip_prefix("86"))
            .unwrap_or(&n);
        if mobile_like.len() == 11 && mobile_like.starts_with('1') && digits_only(mobile_like) {
            out.push(IdKind::Mobile);
        }
        // 18 characters are read as a resident ID or USCC only (18-digit cards are rare;
        // check them with an explicit kind).
        if digits && (12..=19).contains(&len) && len != 18 {
            out.push(IdKind::BankCard);
        }
        if out.is_empty() {
            // Nothing fits the shape: report against every kind so the caller sees why.
            out.extend(IdKind::ALL);
        }
        out
    }
}

impl std::str::FromStr for IdKind {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        IdKind::ALL
            .into_iter()
            .find(|k| k.as_str() == s)
            .ok_or_else(|| {
                format!("unknown identifier kind {s:?} (resident_id, uscc, bank_card, mobile)")
            })
    }
}

impl std::fmt::Display for IdKind {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

fn digits_only(s: &str) -> bool {
    !s.is_empty() && s.bytes().all(|b| b.is_ascii_digit())
}

/// NFKC-normalises an identifier: full-width characters become ASCII, surrounding and inner
/// spaces and dashes are dropped, letters are upper-cased.
pub fn normalize(raw: &str) -> String {
    // Fast path: plain ASCII with nothing to fold is already canonical (NFKC leaves ASCII as it is).
    if raw
        .bytes()
        .all(|b| b.is_ascii_digit() || b.is_ascii_uppercase() || b == b'+')
    {
        return raw.to_owned();
    }
    raw.nfkc()
        .filter(|c| !c.is_whitespace() && *c != '-' && *c != '\u{2010}' && *c != '\u{2014}')
        .flat_map(char::to_uppercase)
        .collect()
}

/// NFKC-normalises free text compared for equality (certificate numbers, names, addresses):
/// full-width letters, digits and brackets become ASCII (（２０２４）→ (2024)), the other
/// bracket forms 〔〕【】[] become (), middle-dot variants in names become `·`, and all
/// white space is dropped (第 0123456 号 → 第0123456号). Letters keep their case.
pub fn normalize_text(raw: &str) -> String {
    raw.nfkc()
        .filter(|c| !c.is_whitespace())
        .map(|c| match c {
            '〔' | '【' | '[' => '(',
            '〕' | '】' | ']' => ')',
            '\u{30FB}' | '\u{2022}' | '\u{2027}' | '\u{FF65}' | '\u{00B7}' => '·',
            c => c,
        })
        .collect()
}

/// Returns the first character that is not an ASCII digit, with its 1-based position.
fn first_non_digit(s: &str, allowed_last: Option<char>) -> Option<(usize, char)> {
    let n = s.chars().count();
    s.chars().enumerate().find_map(|(i, c)| {
        let ok = c.is_ascii_digit() || (i + 1 == n && Some(c) == allowed_last);
        (!ok).then_some((i + 1, c))
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn free_text_is_compared_after_folding_widths_brackets_dots_and_spaces() {
        assert_eq!(
            normalize_text("鄂（２０２４）武汉市不动产权第 ０１２３４５６ 号"),
            "鄂(2024)武汉市不动产权第0123456号"
        );
        assert_eq!(
            normalize_text("鄂〔2024〕武汉市不动产权第0123456号"),
            "鄂(2024)武汉市不动产权第0123456号"
        );
        assert_eq!(normalize_text(" 买买提・艾力 "), "买买提·艾力");
        assert_eq!(normalize_text("买买提•艾力"), "买买提·艾力");
        assert_eq!(normalize_text("Ab c"), "Abc");
        assert_eq!(normalize_text("张三"), "张三");
    }

    #[test]
    fn normalize_folds_full_width_and_case() {
        assert_eq!(
            normalize(" １１０１０５１９４９１２３１００２ｘ "),
            "11010519491231002X"
        );
        assert_eq!(normalize("138-0013-8000"), "13800138000");
        assert_eq!(normalize("9135 0100 m000 100y43"), "91350100M000100Y43");
    }

    #[test]
    fn candidates_follow_shape() {
        assert_eq!(
            IdKind::candidates("11010519491231002X"),
            vec![IdKind::ResidentId, IdKind::Uscc]
        );
        assert_eq!(IdKind::candidates("91350100M000100Y43"), vec![IdKind::Uscc]);
        assert_eq!(IdKind::candidates("13800138000"), vec![IdKind::Mobile]);
        assert_eq!(
            IdKind::candidates("6222020200112233445"),
            vec![IdKind::BankCard]
        );
        assert_eq!(IdKind::candidates("abc").len(), 4);
    }
}

#[cfg(test)]
mod message_tests {
    use super::IdError;

    #[test]
    fn messages_name_the_rule_and_no_part_of_the_value() {
        let cases = [
            (IdError::Empty, vec![]),
            (
                IdError::Length {
                    got: 17,
                    expected: "18",
                },
                vec![],
            ),
            (IdError::Character { pos: 5, ch: '§' }, vec!["§"]),
            (
                IdError::BirthDate {
                    date: "19491331".into(),
                    why: "not a calendar date",
                },
                vec!["19491331", "1949"],
            ),
            (
                IdError::Area {
                    code: "073421".into(),
                },
                vec!["073421"],
            ),
            (
                IdError::Checksum {
                    got: '¤',
                    expected: '¥',
                },
                vec!["¤", "¥"],
            ),
            (
                IdError::Mobile {
                    why: "must start with 1",
                },
                vec![],
            ),
        ];
        for (e, parts) in cases {
            let message = e.to_string();
            assert!(!message.is_empty());
            for p in &parts {
                assert!(!message.contains(p), "{message:?} quotes {p:?}");
                assert!(e.detail().contains(p), "{:?} lacks {p:?}", e.detail());
            }
        }
    }
}
