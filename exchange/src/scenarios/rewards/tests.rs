use super::policy::yuan;
use super::*;

fn example(name: &str) -> &'static str {
    EXAMPLES.iter().find(|(n, _)| *n == name).unwrap().1
}

#[test]
fn every_example_policy_loads_with_each_rule_kind() {
    let p: Vec<RewardPolicy> = EXAMPLES
        .iter()
        .map(|(n, t)| RewardPolicy::parse(t).unwrap_or_else(|e| panic!("{n}: {e}")))
        .collect();
    assert_eq!(p[0].amount, Amount::Fixed(20_000_000));
    assert!(!p[0].application && p[0].group.as_deref() == Some("tech-recognition"));
    assert_eq!(p[1].eligibility.min_insured_headcount, Some(20));
    let Amount::Tiered { by, tiers, top_up } = &p[2].amount else {
        panic!("tiered")
    };
    assert_eq!(*by, TierMeasure::SpecialisedSmeLevel);
    assert!(*top_up);
    assert_eq!(tiers[1].level.as_deref(), Some("little_giant"));
    let Amount::Tiered { tiers, .. } = &p[3].amount else {
        panic!("tiered")
    };
    assert_eq!(tiers[2].max, None);
    assert!(p[3].application);
    assert_eq!(p[3].approvals, ["ndrc", "tax", "finance"]);
    assert_eq!(yuan(p[3].budget), "2000000.00");
}

/// Each mistake is refused with the policy's id and the rule it breaks.
#[test]
fn a_policy_with_a_mistake_is_refused_with_the_rule() {
    let fixed = example("high_tech_first.toml");
    let tiered = example("tax_contribution.toml");
    let sme = example("specialised_sme.toml");
    let cases: Vec<(String, &str)> = vec![
        (format!("{fixed}\nsurprise = 1\n"), "unknown field"),
        (
            fixed.replace(
                "legal_basis = \"《武昌区关于促进科技创新高质量发展的若干措施》第三条（合成区县示例）\"",
                "",
            ),
            "legal_basis is required",
        ),
        (
            fixed.replace("to = \"2025-12-31\"", "to = \"2024-12-31\""),
            "ends (2024-12-31) before it starts",
        ),
        (fixed.replace("fixed = \"200000.00\"", "fixed = \"200000.001\""), "amount.fixed: positive yuan"),
        (fixed.replace("fixed = \"200000.00\"", "fixed = \"0\""), "amount.fixed: positive yuan"),
        (
            fixed.replace("per_firm_cap = \"200000.00\"", "per_firm_cap = \"150000.00\""),
            "per_firm_cap (150000.00) is below the policy's highest amount (200000.00)",
        ),
        (
            fixed.replace("budget = \"6000000.00\"", "budget = \"100000.00\""),
            "budget (100000.00) is below one firm's cap",
        ),
        (fixed.replace("approvals = [\"sti\", \"finance\"]", "approvals = []"), "at least one department approves"),
        (fixed.replace("approvals = [\"sti\", \"finance\"]", "approvals = [\"sti\", \"sti\"]"), "sti approves twice"),
        (fixed.replace("territory = \"420106\"", "territory = \"武昌区\""), "six-digit"),
        (
            fixed.replace("exclude_credit_grades = [\"D\"]", "exclude_credit_grades = [\"E\"]"),
            "not a taxpayer credit grade",
        ),
        (
            fixed.replace("fixed = \"200000.00\"", "fixed = \"200000.00\"\ntop_up = true"),
            "a fixed amount has no by, tiers or top_up",
        ),
        (
            tiered.replace("{ min = \"2000000.00\", max", "{ min = \"1500000.00\", max"),
            "amount.tiers[0] and [1] overlap",
        ),
        (
            tiered.replace(
                "{ min = \"500000.00\", max = \"2000000.00\", amount",
                "{ min = \"500000.00\", amount",
            ),
            "amount.tiers[0] is open-ended but another tier follows",
        ),
        (
            tiered.replace("max = \"2000000.00\"", "max = \"400000.00\""),
            "amount.tiers[0]: max is not above min",
        ),
        (tiered.replace("by = \"last_year_tax_paid\"\n", ""), "amount.by is required"),
        (
            tiered.replace("by = \"last_year_tax_paid\"", "by = \"specialised_sme_level\""),
            "specialised_sme_level needs eligibility.qualification = specialised_sme",
        ),
        (
            sme.replace("{ level = \"little_giant\", amount = \"500000.00\" }", "{ level = \"province\", amount = \"500000.00\" }"),
            "level province twice",
        ),
        (
            sme.replace("{ level = \"little_giant\", amount = \"500000.00\" }", "{ level = \"national\", amount = \"500000.00\" }"),
            "not a 专精特新 level",
        ),
        (
            sme.replace("amount = \"100000.00\" }", "amount = \"600000.00\" }")
                .replace("per_firm_cap = \"500000.00\"", "per_firm_cap = \"600000.00\""),
            "tiers must pay more as they go up",
        ),
        (
            sme.replace("levels = [\"province\", \"little_giant\"]", "levels = [\"city\"]"),
            "eligibility.levels: \"city\" is not a 专精特新 level",
        ),
        (
            fixed.replace("qualification = \"high_tech_first\"", "qualification = \"high_tech_first\"\nlevels = [\"province\"]"),
            "levels only applies to qualification = specialised_sme",
        ),
        (fixed.replace("policy = \"reward\"", "policy = \"allowance\""), "a reward policy says"),
    ];
    for (text, want) in cases {
        let e = RewardPolicy::parse(&text).expect_err(want).to_string();
        assert!(e.contains(want), "wanted {want:?}, got {e:?}");
        if !want.contains("unknown field") {
            assert!(
                e.starts_with("reward policy high-tech-first-2025:")
                    || e.starts_with("reward policy tax-contribution-2025:")
                    || e.starts_with("reward policy specialised-sme-2025:"),
                "{e}"
            );
        }
    }
}
