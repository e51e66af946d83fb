//! The `auth` section (`config/auth.rs`): one test per rule.

use super::assert_err;
use super::principals::two_issuers;

#[test]
fn group_issuers_is_required_with_several_issuers_and_must_name_them() {
    assert_err(
        &two_issuers("{}", ""),
        "auth.jwt.group_issuers",
        "required when auth.jwt.issuers lists more than one issuer",
    );
    assert_err(
        &two_issuers("{}", "group_issuers: [https://idp-a, https://idp-x]"),
        "auth.jwt.group_issuers[1]",
        "not one of auth.jwt.issuers",
    );
}

#[test]
fn an_issuer_cannot_contain_a_hash_or_be_api_key() {
    for bad in ["https://idp-a#x", "api-key"] {
        let y = two_issuers("{}", "group_issuers: []").replace(
            "issuers: [https://idp-a, https://idp-b]",
            &format!("issuers: [https://idp-a, \"{bad}\"]"),
        );
        assert_err(&y, "auth.jwt.issuers[1]", "contain no '#'");
    }
}
