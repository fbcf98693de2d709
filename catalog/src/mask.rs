//! Masks by PII kind (DESIGN §5).
//!
//! Data flow: a field's [`PiiKind`] (from the catalog) picks the rule; [`mask`] turns a value
//! into what a `masked` consumer may see. Every rule reveals a bounded number of characters of
//! the input and never more than half of a short value; the rest becomes `*`.

use serde::{Deserialize, Serialize};

/// What kind of personal or sensitive value a field holds; picks its default mask.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum PiiKind {
    IdNumber,
    Name,
    Phone,
    Address,
    BankCard,
    Uscc,
    CertificateNo,
    BirthDate,
    Email,
}

impl PiiKind {
    /// Personal kinds describe a natural person; the catalog requires them at level ≥ 3.
    pub fn is_personal(self) -> bool {
        !matches!(self, PiiKind::Uscc)
    }

    pub fn as_str(self) -> &'static str {
        match self {
            PiiKind::IdNumber => "id_number",
            PiiKind::Name => "name",
            PiiKind::Phone => "phone",
            PiiKind::Address => "address",
            PiiKind::BankCard => "bank_card",
            PiiKind::Uscc => "uscc",
            PiiKind::CertificateNo => "certificate_no",
            PiiKind::BirthDate => "birth_date",
            PiiKind::Email => "email",
        }
    }

    /// The most characters of the input this kind's mask may reveal (for names and
    /// addresses: the surname, or the address down to the street/community).
    pub fn max_revealed(self) -> Option<usize> {
        match self {
            PiiKind::IdNumber | PiiKind::BankCard => Some(10),
            PiiKind::Phone => Some(7),
            PiiKind::Uscc => Some(10),
            PiiKind::CertificateNo => Some(8),
            PiiKind::BirthDate => Some(4),
            PiiKind::Name => Some(2),
            PiiKind::Email | PiiKind::Address => None,
        }
    }
}

/// Compound (two-character) surnames; the mask keeps both characters.
const COMPOUND_SURNAMES: &[&str] = &[
    "欧阳", "司马", "上官", "诸葛", "东方", "皇甫", "尉迟", "公孙", "慕容", "长孙", "宇文", "司徒",
    "令狐", "夏侯", "轩辕", "端木", "独孤", "南宫", "西门", "闻人", "呼延", "申屠", "太史", "澹台",
    "公冶", "濮阳", "淳于", "单于", "钟离", "万俟", "百里", "东郭", "拓跋", "赫连", "第五", "鲜于",
    "闾丘", "司空", "亓官", "司寇", "子车", "颛孙", "壤驷", "公良", "漆雕", "乐正", "宰父", "谷梁",
    "拓拔", "夹谷", "段干", "公西", "巫马", "公羊", "梁丘", "左丘", "东门", "羊舌", "微生", "南门",
];

/// Separators kept as they are inside names (ethnic-minority and foreign names).
fn is_name_separator(c: char) -> bool {
    matches!(c, '·' | '•' | '・' | '.' | ' ' | '-')
}

/// Masks `value` by the rule of `kind`.
pub fn mask(kind: PiiKind, value: &str) -> String {
    let chars: Vec<char> = value.trim().chars().collect();
    match kind {
        PiiKind::Name => mask_name(&chars),
        PiiKind::IdNumber | PiiKind::BankCard => keep_ends(&chars, 6, 4),
        PiiKind::Phone => keep_ends(&chars, 3, 4),
        PiiKind::Uscc => keep_ends(&chars, 8, 2),
        PiiKind::CertificateNo => keep_ends(&chars, 4, 4),
        PiiKind::Address => mask_address(&chars),
        PiiKind::BirthDate => mask_birth_date(&chars),
        PiiKind::Email => mask_email(&chars),
    }
}

/// Keeps `head` leading and `tail` trailing characters when at least four stay hidden;
/// shorter values keep at most a quarter of their characters at each end.
fn keep_ends(chars: &[char], head: usize, tail: usize) -> String {
    let n = chars.len();
    let (h, t) = if n >= head + tail + 4 {
        (head, tail)
    } else {
        (head.min(n / 4), tail.min(n / 4))
    };
    let mut out = String::with_capacity(n + 8);
    out.extend(&chars[..h]);
    out.extend(std::iter::repeat_n('*', n - h - t));
    out.extend(&chars[n - t..]);
    out
}

fn mask_name(chars: &[char]) -> String {
    let letters = chars.iter().filter(|c| !is_name_separator(**c)).count();
    if letters <= 1 {
        return chars
            .iter()
            .map(|c| if is_name_separator(*c) { *c } else { '*' })
            .collect();
    }
    let has_separator = chars.iter().any(|c| is_name_separator(*c));
    let prefix: String = chars.iter().take(2).collect();
    // Keep the surname only when something of the given name stays hidden.
    let keep = if !has_separator && letters >= 3 && COMPOUND_SURNAMES.contains(&prefix.as_str()) {
        2
    } else {
        1
    };
    chars
        .iter()
        .enumerate()
        .map(|(i, &c)| {
            if i < keep || is_name_separator(c) {
                c
            } else {
                '*'
            }
        })
        .collect()
}

/// Markers after which the address is kept: the street or community level (街道/社区/...).
const ADDRESS_MARKERS: &[&str] = &["社区", "居委会", "村委会", "街道", "村", "镇", "乡"];
/// Fallback markers when no street or community is named: the district or county.
const DISTRICT_MARKERS: &[&str] = &["区", "县", "市"];

fn mask_address(chars: &[char]) -> String {
    let s: String = chars.iter().collect();
    let cut =
        last_marker_end(&s, ADDRESS_MARKERS).or_else(|| last_marker_end(&s, DISTRICT_MARKERS));
    match cut {
        Some(end) if end < s.len() => format!("{}****", &s[..end]),
        // The whole value is the street/community: nothing finer to hide, but keep no more
        // than the marker-bounded prefix (the whole of it here).
        Some(_) => s,
        None => "****".to_owned(),
    }
}

/// Byte offset just past the last occurrence of any marker, if the prefix before it is not empty.
fn last_marker_end(s: &str, markers: &[&str]) -> Option<usize> {
    markers
        .iter()
        .filter_map(|m| s.rfind(m).filter(|&i| i > 0).map(|i| i + m.len()))
        .max()
}

fn mask_birth_date(chars: &[char]) -> String {
    let year_like = chars.len() >= 4 && chars[..4].iter().all(char::is_ascii_digit);
    if year_like {
        let mut out: String = chars[..4].iter().collect();
        out.extend(chars[4..].iter().map(|&c| {
            if matches!(c, '-' | '/' | '.' | '年' | '月' | '日') {
                c
            } else {
                '*'
            }
        }));
        out
    } else {
        "*".repeat(chars.len())
    }
}

fn mask_email(chars: &[char]) -> String {
    match chars.iter().position(|c| *c == '@') {
        Some(at) if at > 0 => {
            let mut out = String::new();
            out.push(chars[0]);
            out.push_str("***");
            out.extend(&chars[at..]);
            out
        }
        _ => "***".to_owned(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn design_examples() {
        assert_eq!(mask(PiiKind::Name, "张三"), "张*");
        assert_eq!(mask(PiiKind::Name, "欧阳娜娜"), "欧阳**");
        assert_eq!(mask(PiiKind::Name, "欧阳"), "欧*");
        assert_eq!(mask(PiiKind::Name, "买买提·艾力"), "买**·**");
        assert_eq!(mask(PiiKind::Name, "张"), "*");
        assert_eq!(
            mask(PiiKind::IdNumber, "42010619560229123X"),
            "420106********123X"
        );
        assert_eq!(mask(PiiKind::Phone, "13812341234"), "138****1234");
        assert_eq!(
            mask(PiiKind::BankCard, "6222020200112233445"),
            "622202*********3445"
        );
        assert_eq!(
            mask(
                PiiKind::Address,
                "湖北省武汉市武昌区中华路街道司门口社区解放路123号2单元301室"
            ),
            "湖北省武汉市武昌区中华路街道司门口社区****"
        );
        assert_eq!(
            mask(PiiKind::Address, "武汉市武昌区解放路123号"),
            "武汉市武昌区****"
        );
        assert_eq!(mask(PiiKind::Address, "解放路123号"), "****");
        assert_eq!(mask(PiiKind::BirthDate, "1956-02-29"), "1956-**-**");
        assert_eq!(mask(PiiKind::Email, "zhang@example.cn"), "z***@example.cn");
        assert_eq!(mask(PiiKind::Phone, ""), "");
        assert_eq!(mask(PiiKind::IdNumber, "1234"), "1**4");
    }

    /// Characters shown as themselves at the same position (stars and, with
    /// `skip_separators`, name separators excluded).
    fn revealed(masked: &str, original: &str, skip_separators: bool) -> usize {
        masked
            .chars()
            .zip(original.trim().chars())
            .filter(|(m, o)| m == o && *m != '*' && !(skip_separators && is_name_separator(*m)))
            .count()
    }

    proptest! {
        #[test]
        fn masks_never_reveal_more_than_allowed(s in ".{0,300}") {
            for kind in [PiiKind::IdNumber, PiiKind::BankCard, PiiKind::Phone, PiiKind::Uscc,
                         PiiKind::CertificateNo] {
                let m = mask(kind, &s);
                let n = s.trim().chars().count();
                let shown = revealed(&m, &s, false);
                prop_assert!(shown <= kind.max_revealed().unwrap(), "{:?} {:?} -> {:?}", kind, s, m);
                // At least four characters stay hidden, or at most half is shown.
                prop_assert!(n == 0 || shown + 4 <= n || shown * 2 <= n, "{:?} {:?} -> {:?}", kind, s, m);
            }
            let m = mask(PiiKind::Name, &s);
            let letters = s.trim().chars().filter(|c| !is_name_separator(*c)).count();
            let shown = revealed(&m, &s, true);
            prop_assert!(shown <= 2, "{:?} -> {:?}", s, m);
            prop_assert!(letters == 0 || shown < letters, "{:?} -> {:?}", s, m);
            let m = mask(PiiKind::BirthDate, &s);
            prop_assert!(revealed(&m, &s, false) <= 4 + m.chars().filter(|c| !c.is_ascii_digit() && *c != '*').count());
        }

        #[test]
        fn chinese_names_keep_only_the_surname(s in "[\\u{4e00}-\\u{9fa5}]{1,12}") {
            let m = mask(PiiKind::Name, &s);
            prop_assert_eq!(m.chars().count(), s.chars().count());
            prop_assert!(m.chars().skip(2).all(|c| c == '*'));
        }

        #[test]
        fn addresses_keep_only_a_marker_bounded_prefix(s in ".{0,200}") {
            let m = mask(PiiKind::Address, &s);
            let kept = m.strip_suffix("****").unwrap_or(&m);
            prop_assert!(s.trim().starts_with(kept));
            let ok = kept.is_empty()
                || ADDRESS_MARKERS.iter().chain(DISTRICT_MARKERS).any(|mk| kept.ends_with(mk));
            prop_assert!(ok, "{:?} -> {:?}", s, m);
        }
    }
}
