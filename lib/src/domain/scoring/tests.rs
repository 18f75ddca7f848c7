//! Unit tests of the language (values, operators, folding, errors, limits) and property tests:
//! random input never panics, and random expressions compute exactly what a naive tree-walking
//! evaluator computes.

use super::compiler::Code;
use super::compiler::{Bin, Field, Op, Operand, StrConst, Test};
use super::eval::{
    Val, apply_bin, attr_val, const_val, eq_ci, eq_ci_ascii, fin, same_bytes, truth,
};
use super::lexer::Punct;
use super::parser::{self, bin_of};
use super::*;

/// The bytecode and pools `src` compiles to.
fn compiled(src: &str) -> Code {
    parser::parse(src).unwrap()
}
use crate::domain::lead::TextField;

mod unit {
    use super::*;

    fn lead(v: serde_json::Value) -> Lead {
        let mut base = serde_json::json!({
            "id": "cl_1", "name": "Acme Corp", "source": "website", "description": null,
            "address": null, "city": "Paris", "state": null, "country": "FR",
            "postal_code": "75001", "latitude": 48.85, "longitude": 2.35, "phone": null,
            "email": "a@acme.com", "website": "https://acme.example", "rating": 4.5,
            "review_count": 120, "category": null, "tags": ["VIP", "b2b"], "source_id": null,
            "logo_url": null, "status": "qualified", "score": 40.0,
            "attributes": [
                {"id": "1", "name": "industry", "type": "text", "value": "Software"},
                {"id": "2", "name": "employees", "type": "number", "value": 500.0},
                {"id": "3", "name": "size", "type": "text", "value": "250"},
                {"id": "4", "name": "active", "type": "bool", "value": true},
                {"id": "5", "name": "inactive", "type": "bool", "value": false},
                {"id": "6", "name": "langs", "type": "list", "value": ["en", "DE"]},
                {"id": "7", "name": "none", "type": "list", "value": []},
                {"id": "8", "name": "blank", "type": "text", "value": ""},
                {"id": "9", "name": "meta", "type": "object", "value": {"a": 1}},
                {"id": "10", "name": "ville", "type": "text", "value": "ÉVRY"}
            ],
            "created_at": 1000, "updated_at": 2000, "last_interaction_at": 3000
        });
        for (k, val) in v.as_object().unwrap() {
            base[k] = val.clone();
        }
        serde_json::from_value(base).unwrap()
    }

    fn ev(src: &str) -> f64 {
        ev_on(src, &lead(serde_json::json!({})))
    }

    fn ev_on(src: &str, l: &Lead) -> f64 {
        Expr::parse(src)
            .unwrap_or_else(|e| panic!("{src}: {e}"))
            .eval(l)
    }

    fn err(src: &str) -> String {
        match Expr::parse(src) {
            Ok(_) => panic!("{src:?} should not parse"),
            Err(Error::Invalid(m)) => m,
            Err(other) => panic!("{src:?}: wrong error kind {other:?}"),
        }
    }

    fn empty_lead() -> Lead {
        lead(serde_json::json!({
            "city": null, "country": null, "postal_code": null, "latitude": null,
            "longitude": null, "email": null, "website": null, "rating": null,
            "review_count": null, "tags": [], "attributes": [], "score": 0.0
        }))
    }

    #[test]
    fn rating_times_ten() {
        assert_eq!(ev("rating * 10"), 45.0);
        assert_eq!(ev("rating*10"), 45.0);
    }

    #[test]
    fn numbers() {
        assert_eq!(ev("42"), 42.0);
        assert_eq!(ev("2.5"), 2.5);
        assert_eq!(ev(".5"), 0.5);
        assert_eq!(ev("1e2"), 100.0);
        assert_eq!(ev("1.5E+1"), 15.0);
        assert_eq!(ev("25e-1"), 2.5);
        assert_eq!(ev("true + true"), 2.0);
        assert_eq!(ev("false"), 0.0);
    }

    #[test]
    fn arithmetic_operators() {
        assert_eq!(ev("7 + 3"), 10.0);
        assert_eq!(ev("7 - 3"), 4.0);
        assert_eq!(ev("7 * 3"), 21.0);
        assert_eq!(ev("7 / 2"), 3.5);
        assert_eq!(ev("7 % 3"), 1.0);
        assert_eq!(ev("-7 % 3"), -1.0);
        assert_eq!(ev("7.5 % 2"), 1.5);
        assert_eq!(ev("review_count / 12"), 10.0);
        assert_eq!(ev("review_count % 7"), 1.0);
        assert_eq!(ev("review_count - rating * 2"), 111.0);
    }

    #[test]
    fn division_and_modulo_by_zero_are_zero() {
        assert_eq!(ev("7 / 0"), 0.0);
        assert_eq!(ev("7 % 0"), 0.0);
        assert_eq!(ev("rating / 0"), 0.0);
        assert_eq!(ev("rating % (rating - 4.5)"), 0.0);
        assert_eq!(ev("rating / attr_missing"), 0.0);
        assert_eq!(ev("1 + rating / (review_count - 120)"), 1.0);
    }

    #[test]
    fn non_finite_results_become_zero() {
        assert_eq!(ev("1e308 * 10"), 0.0);
        assert_eq!(ev("rating * 1e308 * 1e308"), 0.0);
        assert_eq!(ev("-(rating * 1e308 * 1e308)"), 0.0);
        assert_eq!(ev("(rating * 1e308 * 10) / 2 + 1"), 1.0);
    }

    #[test]
    fn unary_minus_and_not() {
        assert_eq!(ev("-rating"), -4.5);
        assert_eq!(ev("--rating"), 4.5);
        assert_eq!(ev("- -3"), 3.0);
        assert_eq!(ev("-(2 + 3) * 2"), -10.0);
        assert_eq!(ev("2 - -3"), 5.0);
        assert_eq!(ev("-rating * 2"), -9.0);
        assert_eq!(ev("!rating"), 0.0);
        assert_eq!(ev("!0"), 1.0);
        assert_eq!(ev("!!rating"), 1.0);
        assert_eq!(ev("!website"), 0.0);
        assert_eq!(ev("!description"), 1.0);
        assert_eq!(ev("-website"), -1.0);
    }

    #[test]
    fn comparisons_yield_one_or_zero() {
        for (src, want) in [
            ("rating > 4", 1.0),
            ("rating > 4.5", 0.0),
            ("rating >= 4.5", 1.0),
            ("rating < 5", 1.0),
            ("rating < 4.5", 0.0),
            ("rating <= 4.5", 1.0),
            ("rating == 4.5", 1.0),
            ("rating != 4.5", 0.0),
            ("rating != 4", 1.0),
            ("review_count > 100", 1.0),
            ("created_at < updated_at", 1.0),
            ("last_interaction_at == 3000", 1.0),
            ("score == 40", 1.0),
            ("latitude > 48 && longitude < 3", 1.0),
        ] {
            assert_eq!(ev(src), want, "{src}");
        }
    }

    #[test]
    fn logic_operators() {
        assert_eq!(ev("rating > 4 && website"), 1.0);
        assert_eq!(ev("rating > 4 && description"), 0.0);
        assert_eq!(ev("rating && 5"), 1.0);
        assert_eq!(ev("0 && 5"), 0.0);
        assert_eq!(ev("0 || 5"), 1.0);
        assert_eq!(ev("0 || 0"), 0.0);
        assert_eq!(ev("rating || 0"), 1.0);
        assert_eq!(ev("description || phone"), 0.0);
        assert_eq!(ev("description || email"), 1.0);
        assert_eq!(ev("!(rating > 4) || city == 'paris'"), 1.0);
        // `&&` binds tighter than `||`.
        assert_eq!(ev("1 || 0 && 0"), 1.0);
        assert_eq!(ev("(1 || 0) && 0"), 0.0);
        // Logic results are usable in arithmetic.
        assert_eq!(ev("(rating > 4 && website) * 20 + (0 || phone) * 5"), 20.0);
    }

    #[test]
    fn precedence_and_associativity() {
        assert_eq!(ev("2 + 3 * 4"), 14.0);
        assert_eq!(ev("(2 + 3) * 4"), 20.0);
        assert_eq!(ev("10 - 4 - 3"), 3.0);
        assert_eq!(ev("100 / 10 / 5"), 2.0);
        assert_eq!(ev("2 * 3 % 4"), 2.0);
        assert_eq!(ev("1 + 2 > 2"), 1.0);
        assert_eq!(ev("1 < 2 == 1"), 1.0);
        assert_eq!(ev("3 > 2 > 1"), 0.0);
        assert_eq!(ev("1 + 1 == 2 && 2 * 2 == 4"), 1.0);
        assert_eq!(ev("-2 * -3 + 1"), 7.0);
        assert_eq!(ev("rating * 10 + 5 > 49 ? 1 : 2"), 1.0);
        assert_eq!(ev("!0 + 1"), 2.0);
    }

    #[test]
    fn ternary() {
        assert_eq!(ev("rating > 4 ? 30 : 0"), 30.0);
        assert_eq!(ev("rating > 5 ? 30 : 0"), 0.0);
        assert_eq!(ev("website ? 20 : 0"), 20.0);
        assert_eq!(ev("description ? 20 : 0"), 0.0);
        // Right-associative chains.
        assert_eq!(ev("rating > 5 ? 1 : rating > 4 ? 2 : 3"), 2.0);
        assert_eq!(ev("rating > 5 ? 1 : rating > 4.5 ? 2 : 3"), 3.0);
        // Nested in the middle.
        assert_eq!(ev("rating > 4 ? review_count > 100 ? 10 : 5 : 0"), 10.0);
        assert_eq!(ev("rating > 4 ? review_count > 500 ? 10 : 5 : 0"), 5.0);
        // Lowest precedence: the whole sum is the condition / branch.
        assert_eq!(ev("1 + 1 ? 2 + 2 : 3 + 3"), 4.0);
        assert_eq!(ev("(rating > 4 ? 10 : 0) + (website ? 20 : 0)"), 30.0);
        assert_eq!(ev("rating * (email ? 2 : 1)"), 9.0);
        assert_eq!(ev("0 ? rating : -rating"), -4.5);
        assert_eq!(ev("1 ? city : 0"), 1.0);
    }

    #[test]
    fn the_docs_examples() {
        let l = lead(serde_json::json!({"attributes": [
            {"id": "1", "name": "review_count", "type": "number", "value": 120},
            {"id": "2", "name": "employees", "type": "number", "value": 800}
        ]}));
        assert_eq!(ev_on("rating * 20", &l), 90.0);
        assert_eq!(ev_on("attr_review_count > 100 ? 30 : 0", &l), 30.0);
        assert_eq!(
            ev_on("(rating * 10) + (attr_review_count > 50 ? 20 : 0)", &l),
            65.0
        );
        assert_eq!(ev_on("attr_employees > 500 ? 40 : 20", &l), 40.0);
        assert_eq!(ev_on("attr_employees > 500 ? 40 : 20", &empty_lead()), 20.0);
    }

    #[test]
    fn text_comparisons_are_case_insensitive() {
        assert_eq!(ev("city == \"Paris\" ? 30 : 0"), 30.0);
        assert_eq!(ev("city == 'paris'"), 1.0);
        assert_eq!(ev("city == 'PARIS'"), 1.0);
        assert_eq!(ev("'PaRiS' == city"), 1.0);
        assert_eq!(ev("city != 'Lyon'"), 1.0);
        assert_eq!(ev("city == 'Lyon'"), 0.0);
        assert_eq!(ev("city == 'Pari'"), 0.0);
        assert_eq!(ev("status == 'QUALIFIED'"), 1.0);
        assert_eq!(ev("source == 'website' && name == 'acme corp'"), 1.0);
        assert_eq!(ev("(city) == ('paris')"), 1.0);
        assert_eq!(ev("city == country"), 0.0);
        assert_eq!(ev("'a' == 'A'"), 1.0);
        assert_eq!(ev("\"it's\" == 'IT\\'S'"), 1.0);
        // Non-ASCII compares by lowercase characters.
        let l = lead(serde_json::json!({"city": "Évry-Courcouronnes"}));
        assert_eq!(ev_on("city == 'évry-courcouronnes'", &l), 1.0);
        assert_eq!(ev_on("city == 'ÉVRY-COURCOURONNES'", &l), 1.0);
        assert_eq!(ev_on("city == 'evry-courcouronnes'", &l), 0.0);
        assert_eq!(ev("attr_ville == 'évry'"), 1.0);
        let l = lead(serde_json::json!({"city": "İstanbul"}));
        assert_eq!(ev_on("city == 'i̇stanbul'", &l), 1.0);
    }

    #[test]
    fn ascii_literal_comparison_matches_the_general_one() {
        // The assumption behind `eq_ci_ascii`: a non-ASCII char whose lowercase is all ASCII is
        // longer in UTF-8 than that lowercase.
        for c in (0..=0x10FFFF_u32)
            .filter_map(char::from_u32)
            .filter(|c| !c.is_ascii())
        {
            let lower: String = c.to_lowercase().collect();
            if lower.is_ascii() {
                assert!(c.len_utf8() > lower.len(), "{c:?} lowercases to {lower:?}");
                // And `StrConst::has_k`'s: the KELVIN SIGN is the only such char.
                assert_eq!((c, lower.as_str()), ('\u{212A}', "k"));
            }
        }
        let kelvin = "\u{212A}";
        for s in [
            "",
            "k",
            "K",
            kelvin,
            "Paris",
            "paris",
            "PARIS",
            "Pari",
            "Pariss",
            "Évry",
            "évry",
            "ÉVRY",
            "evry",
            "İstanbul",
            "istanbul",
            "i̇stanbul",
            "straße",
            "STRASSE",
            "b2b",
        ] {
            for lit in [
                "", "k", "kk", "paris", "evry", "istanbul", "strasse", "B2B", "ok",
            ] {
                assert_eq!(eq_ci_ascii(s, lit), eq_ci(s, lit), "{s:?} vs {lit:?}");
                let c = StrConst::new(lit.to_string());
                assert_eq!(c.eq_ci(s), eq_ci(s, lit), "{s:?} vs literal {lit:?}");
            }
        }
        assert!(eq_ci_ascii(&format!("o{kelvin}"), "ok"));
        assert_eq!(
            ev_on(
                "city == 'ok' && tags == 'K'",
                &lead(serde_json::json!({"city": format!("O{kelvin}"), "tags": [kelvin]}))
            ),
            1.0
        );
    }

    #[test]
    fn text_ordering() {
        assert_eq!(ev("city > 'lyon'"), 1.0);
        assert_eq!(ev("city < 'berlin'"), 0.0);
        assert_eq!(ev("city >= 'PARIS' && city <= 'paris'"), 1.0);
        assert_eq!(ev("'b' > 'A'"), 1.0);
        // Numeric text compares numerically with numeric text.
        assert_eq!(ev("'10' > '9'"), 1.0);
        assert_eq!(ev("attr_size > '99'"), 1.0);
        assert_eq!(ev("'abc' > '9'"), 1.0);
    }

    #[test]
    fn text_fields_alone_are_one_when_non_empty() {
        assert_eq!(ev("website"), 1.0);
        assert_eq!(ev("email"), 1.0);
        assert_eq!(ev("name"), 1.0);
        assert_eq!(ev("status"), 1.0);
        assert_eq!(ev("description"), 0.0);
        assert_eq!(ev("phone"), 0.0);
        assert_eq!(ev("website * 20 + phone * 10"), 20.0);
        assert_eq!(ev("postal_code + 1"), 2.0);
        assert_eq!(ev("'x'"), 1.0);
        assert_eq!(ev("''"), 0.0);
        let l = lead(serde_json::json!({"website": ""}));
        assert_eq!(ev_on("website ? 20 : 0", &l), 0.0);
        for f in [
            "description",
            "address",
            "city",
            "state",
            "country",
            "postal_code",
            "phone",
            "email",
            "website",
            "category",
            "source_id",
            "logo_url",
        ] {
            let l = lead(serde_json::json!({ f: "x" }));
            assert_eq!(ev_on(f, &l), 1.0, "{f}");
            assert_eq!(ev_on(&format!("{f} == 'X'"), &l), 1.0, "{f}");
            assert_eq!(ev_on(f, &empty_lead()), 0.0, "{f}");
        }
    }

    #[test]
    fn text_compared_with_numbers() {
        // A text that parses as a number compares numerically.
        assert_eq!(ev("postal_code == 75001"), 1.0);
        assert_eq!(ev("postal_code > 75000"), 1.0);
        assert_eq!(ev("postal_code == '75001.0'"), 1.0);
        // Otherwise text counts as its truthiness.
        assert_eq!(ev("city == 1"), 1.0);
        assert_eq!(ev("city > 0"), 1.0);
        assert_eq!(ev("description == 0"), 1.0);
        assert_eq!(ev("'5' * 2"), 2.0);
        assert_eq!(ev("'5' == 5"), 1.0);
    }

    #[test]
    fn tags_and_lists() {
        assert_eq!(ev("tags"), 1.0);
        assert_eq!(ev("tags ? 10 : 0"), 10.0);
        assert_eq!(ev_on("tags", &empty_lead()), 0.0);
        assert_eq!(ev("tags == 'vip'"), 1.0);
        assert_eq!(ev("'B2B' == tags"), 1.0);
        assert_eq!(ev("tags == 'cold'"), 0.0);
        assert_eq!(ev("tags != 'cold'"), 1.0);
        assert_eq!(ev("tags != 'vip'"), 0.0);
        assert_eq!(ev("tags == 1"), 1.0);
        assert_eq!(ev_on("tags == 'vip'", &empty_lead()), 0.0);
        assert_eq!(ev("attr_langs"), 1.0);
        assert_eq!(ev("attr_langs == 'de'"), 1.0);
        assert_eq!(ev("attr_langs == 'fr'"), 0.0);
        assert_eq!(ev("attr_none"), 0.0);
        assert_eq!(ev("attr_none == 'x'"), 0.0);
        assert_eq!(ev("attr_langs * 5 + attr_none * 5"), 5.0);
    }

    #[test]
    fn attributes_of_each_type() {
        // number
        assert_eq!(ev("attr_employees"), 500.0);
        assert_eq!(ev("attr_employees / 10"), 50.0);
        assert_eq!(ev("attr_employees > 100 ? 30 : 0"), 30.0);
        assert_eq!(ev("attr_employees == '500'"), 1.0);
        // bool
        assert_eq!(ev("attr_active"), 1.0);
        assert_eq!(ev("attr_inactive"), 0.0);
        assert_eq!(ev("attr_active ? 7 : 0"), 7.0);
        assert_eq!(ev("attr_active == true && attr_inactive == false"), 1.0);
        // text
        assert_eq!(ev("attr_industry"), 1.0);
        assert_eq!(ev("attr_blank"), 0.0);
        assert_eq!(ev("attr_industry == 'software' ? 15 : 0"), 15.0);
        assert_eq!(ev("attr_industry != 'retail'"), 1.0);
        // text that parses as a number compares numerically
        assert_eq!(ev("attr_size > 100"), 1.0);
        assert_eq!(ev("attr_size >= 250 && attr_size <= 250"), 1.0);
        assert_eq!(ev("attr_size == 250.0"), 1.0);
        assert_eq!(ev("attr_size < 99"), 0.0);
        assert_eq!(ev("attr_size"), 1.0);
        assert_eq!(ev("attr_size == attr_employees / 2"), 1.0);
        // list
        assert_eq!(ev("attr_langs"), 1.0);
        // object
        assert_eq!(ev("attr_meta"), 1.0);
        // repeated references share one pool slot
        let e = Expr::parse("attr_employees + attr_employees").unwrap();
        assert_eq!(compiled("attr_employees + attr_employees").attrs.len(), 1);
        assert_eq!(e.eval(&lead(serde_json::json!({}))), 1000.0);
    }

    #[test]
    fn missing_fields_and_attributes_are_zero() {
        let l = empty_lead();
        for f in [
            "rating",
            "review_count",
            "latitude",
            "longitude",
            "city",
            "attr_employees",
            "attr_nothing",
            "rating * 10",
            "attr_x + 3 - 3",
            "-attr_x",
        ] {
            assert_eq!(ev_on(f, &l), 0.0, "{f}");
        }
        assert_eq!(ev_on("rating == 0", &l), 1.0);
        assert_eq!(ev_on("city == ''", &l), 1.0);
        assert_eq!(ev_on("city == 'Paris'", &l), 0.0);
        assert_eq!(ev_on("city != 'Paris'", &l), 1.0);
        assert_eq!(ev_on("attr_x == ''", &l), 1.0);
        assert_eq!(ev_on("attr_x == 0", &l), 1.0);
        assert_eq!(ev_on("attr_x < 5", &l), 1.0);
        assert_eq!(ev_on("attr_x == 'a'", &l), 0.0);
        assert_eq!(ev_on("attr_x ? 1 : 2", &l), 2.0);
        let null_attr = lead(serde_json::json!({"attributes": [
            {"id": "1", "name": "x", "type": "text", "value": null}
        ]}));
        assert_eq!(ev_on("attr_x", &null_attr), 0.0);
        assert_eq!(ev_on("attr_X", &lead(serde_json::json!({}))), 0.0);
    }

    #[test]
    fn constants_are_folded() {
        let c = compiled("2 * 3 + 4");
        assert_eq!(c.code.len(), 1, "{:?}", c.code);
        assert_eq!(ev_on("2 * 3 + 4", &empty_lead()), 10.0);
        let src = "rating * 10 + (website ? 20 : 0) + (city == \"Paris\" ? 5 : 0)";
        let (e, c) = (Expr::parse(src).unwrap(), compiled(src));
        // The module documentation's example.
        assert_eq!(compiled("rating * 10 + (website ? 20 : 0)").code.len(), 3);
        // `rating * 10`, `website ? 20 : 0`, `+`, `city == "Paris" ? 5 : 0`, `+`.
        assert!(
            matches!(
                *c.code,
                [
                    Op::ArithFK(Bin::Mul, Field::Rating, _),
                    Op::SelectK(Operand::Field(Field::Text(TextField::Website)), _, _),
                    Op::ArithSS(Bin::Add),
                    Op::TestK(Test::TextEq(Field::Text(TextField::City), _, true), _, _),
                    Op::ArithSS(Bin::Add),
                ]
            ),
            "{:?}",
            c.code
        );
        assert!(c.max_sp <= 2);
        assert_eq!(e.eval(&lead(serde_json::json!({}))), 70.0);
        assert_eq!(e.source(), e.to_string());
        // Constant conditions pick their branch at parse time; the result is still a number.
        let src = "(1 ? 'a' : 'b') + (0 ? 5 : 7) + (true ? rating : 0)";
        let c = compiled(src);
        assert_eq!(c.code.len(), 2, "{:?}", c.code);
        assert_eq!(ev(src), 12.5);
        // A ternary is a number even when folded: compared with text it is not text equality.
        assert_eq!(ev("(1 ? city : 0) == 'lyon'"), 1.0);
        assert_eq!(ev("(rating ? city : 0) == 'lyon'"), 1.0);
        assert_eq!(ev("(1 ? city : 0) == 1"), 1.0);
        assert_eq!(ev("(0 ? 1 : '') == 0"), 1.0);
    }

    #[test]
    fn names_compare_word_by_word_like_bytes() {
        let base: Vec<u8> = (0u8..70).map(|i| b'a' + i % 26).collect();
        for n in 0..=base.len() {
            let a = &base[..n];
            assert!(same_bytes(a, a));
            assert!(!same_bytes(
                a,
                &base[..n.saturating_sub(1).max(usize::from(n == 0))]
            ));
            for i in 0..n {
                let mut b = a.to_vec();
                b[i] ^= 0x20;
                assert!(!same_bytes(a, &b), "length {n}, byte {i}");
            }
        }
    }

    #[test]
    fn deep_expressions_use_bigger_stacks() {
        // Each level keeps a computed value pending, so the stack grows with nesting.
        let mut src = String::from("rating");
        for _ in 0..60 {
            src = format!("rating * 1 + ({src})");
        }
        let sp = compiled(&src).max_sp;
        assert!(sp > 32, "{sp}");
        // 61 levels of closures: one tree, under the depth at which it would be cut.
        let e = Expr::parse(&src).unwrap();
        assert!(e.program.chunks.is_empty());
        assert_eq!(e.eval(&lead(serde_json::json!({}))), 61.0 * 4.5);
        // A long left-deep chain keeps at most two values on the stack, and is one level per
        // operator: three chunks for 200 terms, none for 60.
        let chain = vec!["rating"; 200].join(" + ");
        let sp = compiled(&chain).max_sp;
        assert!(sp <= 2, "{sp}");
        let e = Expr::parse(&chain).unwrap();
        assert_eq!(e.program.chunks.len(), 3);
        assert_eq!(e.eval(&lead(serde_json::json!({}))), 200.0 * 4.5);
        let chain = vec!["rating"; 60].join(" + ");
        assert!(Expr::parse(&chain).unwrap().program.chunks.is_empty());
        let mut src = String::from("rating");
        for _ in 0..10 {
            src = format!("rating * 1 + ({src})");
        }
        let sp = compiled(&src).max_sp;
        assert!(sp > 4 && sp <= 32, "{sp}");
        assert_eq!(ev(&src), 11.0 * 4.5);
    }

    #[test]
    fn errors_point_at_the_problem() {
        assert_eq!(
            err("ratng * 10"),
            "expression: unknown field 'ratng' at position 0"
        );
        assert_eq!(err("(rating))"), "expression: unexpected ')' at position 8");
        assert_eq!(err("rating )"), "expression: unexpected ')' at position 7");
        assert_eq!(
            err("rating * "),
            "expression: unexpected end of expression at position 9"
        );
        assert_eq!(
            err("city == \"Paris ? 1 : 0"),
            "expression: unterminated string at position 8"
        );
        assert_eq!(
            err("city == 'x\\"),
            "expression: unterminated string at position 8"
        );
        assert_eq!(err(""), "expression: empty expression at position 0");
        assert_eq!(err("   "), "expression: empty expression at position 0");
        assert_eq!(
            err("rating > 4 ? 1"),
            "expression: expected ':' (for the one at position 11) but found end of expression at position 14"
        );
        assert_eq!(
            err("(rating + 1"),
            "expression: expected ')' (for the one at position 0) but found end of expression at position 11"
        );
        assert_eq!(
            err("(rating 1)"),
            "expression: expected ')' (for the one at position 0) but found '1' at position 8"
        );
        assert_eq!(
            err("rating = 4"),
            "expression: unexpected '=' (use '==') at position 7"
        );
        assert_eq!(
            err("rating & 4"),
            "expression: unexpected '&' (use '&&') at position 7"
        );
        assert_eq!(
            err("rating | 4"),
            "expression: unexpected '|' (use '||') at position 7"
        );
        assert_eq!(
            err("rating # 4"),
            "expression: unexpected character '#' at position 7"
        );
        assert_eq!(err("1e"), "expression: invalid number '1e' at position 0");
        assert_eq!(
            err("10abc"),
            "expression: invalid number '10abc' at position 0"
        );
        assert_eq!(
            err("1.2.3"),
            "expression: invalid number '1.2.3' at position 0"
        );
        assert_eq!(
            err("1e999"),
            "expression: number '1e999' out of range at position 0"
        );
        assert_eq!(
            err("attr_ > 1"),
            "expression: missing attribute name after 'attr_' at position 0"
        );
        assert_eq!(
            err("'a\\q'"),
            "expression: invalid escape '\\q' in string at position 2"
        );
        assert_eq!(err("* 2"), "expression: unexpected '*' at position 0");
        assert_eq!(err("rating 4"), "expression: unexpected '4' at position 7");
        assert_eq!(err("? 1 : 2"), "expression: unexpected '?' at position 0");
        assert!(err(&format!("attr_{}", "a".repeat(65))).contains("longer than 64"));
        // Positions count characters, not bytes.
        assert_eq!(
            err("'é' == ville"),
            "expression: unknown field 'ville' at position 7"
        );
        assert_eq!(
            err("Rating"),
            "expression: unknown field 'Rating' at position 0"
        );
    }

    #[test]
    fn too_deep_is_rejected() {
        let ok = format!("{}1{}", "(".repeat(64), ")".repeat(64));
        assert_eq!(ev(&ok), 1.0);
        let deep = format!("{}1{}", "(".repeat(65), ")".repeat(65));
        assert_eq!(
            err(&deep),
            "expression: nested deeper than 64 levels at position 64"
        );
        assert!(err(&"-".repeat(100)).contains("nested deeper than 64 levels"));
        assert_eq!(ev(&format!("{}rating", "-".repeat(64))), 4.5);
        let chain = "1 ? 1 : ".repeat(70) + "0";
        assert!(err(&chain).contains("nested deeper than 64 levels"));
        let chain = "0 ? 1 : ".repeat(60) + "7";
        assert_eq!(ev(&chain), 7.0);
        // Unbalanced deep input is rejected as too deep before anything else.
        assert!(err(&"(".repeat(4000)).contains("nested deeper"));
    }

    #[test]
    fn too_long_is_rejected() {
        let long = format!("1{}", " + 1".repeat(1100));
        assert!(long.len() > MAX_EXPR_LEN);
        assert_eq!(
            err(&long),
            "expression: longer than 4096 bytes at position 4096"
        );
        let multi = "é".repeat(3000);
        assert_eq!(
            err(&multi),
            "expression: longer than 4096 bytes at position 2048"
        );
        // Just under the limit is fine, even as one long flat sum.
        let flat = format!("1{}", " + rating".repeat(450));
        assert!(flat.len() <= MAX_EXPR_LEN);
        assert_eq!(ev(&flat), 1.0 + 450.0 * 4.5);
    }

    #[test]
    fn the_biggest_accepted_expressions_evaluate_on_a_small_stack() {
        // The longest chains that fit in `MAX_EXPR_LEN` (over 800 operators, each applied to
        // the result of the one before), the deepest nesting with a value kept pending at every
        // level, and the longest ternary chain. They parse on a test thread's stack (2 MiB, as
        // a tokio worker's), and evaluating them is one loop over the bytecode, so it needs no
        // more than a thread with a 64 KiB stack.
        let chain = |op: &str, len: usize| {
            let mut s = String::from("tags");
            while s.len() + op.len() + "tags".len() <= len {
                s.push_str(op);
                s.push_str("tags");
            }
            s
        };
        let sum = chain("+", MAX_EXPR_LEN);
        let terms = sum.matches("tags").count();
        assert!(terms > 800, "{terms}");
        let srcs: Vec<(String, Option<f64>)> = vec![
            (sum, Some(terms as f64)),
            (chain("*", MAX_EXPR_LEN), Some(1.0)),
            (chain("<", MAX_EXPR_LEN), None),
            (chain("==", MAX_EXPR_LEN), None),
            (chain("&&", MAX_EXPR_LEN), Some(1.0)),
            (format!("-({})", chain("-", MAX_EXPR_LEN - 3)), None),
            (
                format!("{}rating{}", "(rating * 1 + ".repeat(63), ")".repeat(63)),
                Some(64.0 * 4.5),
            ),
            (format!("{}0", "rating > 5 ? 1 : ".repeat(64)), Some(0.0)),
        ];
        let exprs: Vec<(Expr, Option<f64>)> = srcs
            .iter()
            .map(|(src, want)| (Expr::parse(src).unwrap_or_else(|e| panic!("{e}")), *want))
            .collect();
        let l = lead(serde_json::json!({}));
        std::thread::Builder::new()
            .stack_size(64 * 1024)
            .spawn(move || {
                for (e, want) in exprs {
                    let got = e.eval(&l);
                    assert!(got.is_finite());
                    if let Some(want) = want {
                        assert_eq!(got, want, "{}…", &e.source()[..40]);
                    }
                }
            })
            .unwrap()
            .join()
            .unwrap();
    }

    #[test]
    fn score_and_explain() {
        let a = Expr::parse("rating * 10").unwrap();
        let b = Expr::parse("website ? 20 : 0").unwrap();
        let c = Expr::parse("city == 'Paris' ? 30 : 0").unwrap();
        let l = lead(serde_json::json!({}));
        assert_eq!(score(&[(&a, 1.0), (&b, 1.0)], &l), 65.0);
        assert_eq!(score(&[(&a, 1.0), (&b, 1.0), (&c, 1.0)], &l), 95.0);
        assert_eq!(score(&[(&a, 2.0), (&b, 1.0), (&c, 1.0)], &l), 100.0);
        assert_eq!(score(&[(&a, -1.0)], &l), 0.0);
        assert_eq!(score(&[(&a, f64::NAN)], &l), 0.0);
        assert_eq!(score(&[(&a, f64::INFINITY)], &l), 0.0);
        assert_eq!(score(&[], &l), 0.0);
        assert_eq!(score(&[(&a, 0.5)], &l), 22.5);
        assert_eq!(
            explain(&[(&a, 2.0), (&b, 1.0), (&c, 0.0)], &l),
            vec![(45.0, 90.0), (20.0, 20.0), (30.0, 0.0)]
        );
        assert_eq!(explain(&[(&a, f64::NAN)], &l), vec![(45.0, 0.0)]);
        // A total is clamped to 0..=100, and a negative zero is shown as zero.
        let neg = Expr::parse("0 - rating").unwrap();
        let zero = Expr::parse("0").unwrap();
        assert_eq!(score(&[(&a, 10.0), (&neg, 1.0), (&zero, -1.0)], &l), 100.0);
        assert_eq!(score(&[(&neg, 1.0)], &l), 0.0);
        assert_eq!(score(&[(&zero, -1.0)], &l).to_bits(), 0.0f64.to_bits());
    }

    #[test]
    fn expr_is_shareable() {
        fn assert_send_sync<T: Send + Sync>() {}
        assert_send_sync::<Expr>();
        assert!(
            std::mem::size_of::<Op>() <= 16,
            "{}",
            std::mem::size_of::<Op>()
        );
    }
}

mod properties {
    use super::*;
    use proptest::prelude::*;

    fn leads() -> Vec<Lead> {
        let full: Lead = serde_json::from_value(serde_json::json!({
            "id": "cl_1", "name": "n", "source": "s", "description": "Ünïcode",
            "address": null, "city": "İstanbul", "state": "\u{212A}", "country": "FR",
            "postal_code": "1e3", "latitude": 1.0, "longitude": null, "phone": "0123",
            "email": null, "website": "w", "rating": 4.5, "review_count": 3,
            "category": null, "tags": ["é", "x", "\u{212A}"], "source_id": null, "logo_url": null,
            "status": "new", "score": 1e300,
            "attributes": [
                {"id": "1", "name": "x", "type": "list", "value": ["a"]},
                {"id": "2", "name": "n", "type": "number", "value": 1e308},
                {"id": "3", "name": "t", "type": "text", "value": "NaN"},
                {"id": "4", "name": "b", "type": "bool", "value": true},
                {"id": "5", "name": "o", "type": "object", "value": {}}
            ],
            "created_at": i64::MAX, "updated_at": i64::MIN, "last_interaction_at": 0
        }))
        .unwrap();
        let empty: Lead = serde_json::from_value(serde_json::json!({
            "id": "cl_2", "name": "", "source": "", "description": null, "address": null,
            "city": null, "state": null, "country": null, "postal_code": null,
            "latitude": null, "longitude": null, "phone": null, "email": null,
            "website": null, "rating": null, "review_count": null, "category": null,
            "tags": [], "source_id": null, "logo_url": null,
            "created_at": 0, "updated_at": 0, "last_interaction_at": 0
        }))
        .unwrap();
        vec![full, empty]
    }

    const TOKENS: &[&str] = &[
        "rating",
        "score",
        "city",
        "tags",
        "name",
        "status",
        "postal_code",
        "created_at",
        "attr_x",
        "attr_n",
        "attr_t",
        "attr_b",
        "attr_o",
        "attr_missing",
        "0",
        "1",
        "-1",
        "1e308",
        "0.5",
        "'İ'",
        "\"x\"",
        "''",
        "true",
        "+",
        "-",
        "*",
        "/",
        "%",
        ">",
        ">=",
        "<",
        "<=",
        "==",
        "!=",
        "&&",
        "||",
        "!",
        "?",
        ":",
        "(",
        ")",
        "(",
        ")",
    ];

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(2000))]

        /// Any input parses or fails with a 400; it never panics.
        #[test]
        fn parse_never_panics(s in "\\PC{0,300}") {
            if let Ok(e) = Expr::parse(&s) {
                for l in leads() {
                    prop_assert!(e.eval(&l).is_finite());
                }
            }
        }

        /// Token soup gets much further into the parser; whatever parses evaluates to a finite
        /// number on any lead and the score stays within 0..=100.
        #[test]
        fn token_soup_never_panics(toks in prop::collection::vec(prop::sample::select(TOKENS), 1..60)) {
            let src = toks.join(" ");
            match Expr::parse(&src) {
                Ok(e) => {
                    for l in leads() {
                        let v = e.eval(&l);
                        prop_assert!(v.is_finite(), "{src} -> {v}");
                        let s = score(&[(&e, 1.0), (&e, -3.0)], &l);
                        prop_assert!((0.0..=100.0).contains(&s));
                    }
                }
                Err(Error::Invalid(m)) => prop_assert!(m.starts_with("expression: "), "{m}"),
                Err(other) => prop_assert!(false, "wrong error kind {other:?}"),
            }
        }

        /// Arithmetic agrees with plain f64 arithmetic when nothing divides by zero.
        #[test]
        fn arithmetic_matches_f64(a in -1e6f64..1e6, b in 1f64..1e6, c in -1e6f64..1e6) {
            let src = format!("{a:?} + {b:?} * {c:?} - {a:?} / {b:?}");
            let want = a + b * c - a / b;
            let got = ev_const(&src);
            prop_assert!((got - want).abs() <= 1e-9 * want.abs().max(1.0), "{src}: {got} vs {want}");
        }
    }

    /// A generated expression tree, printed fully parenthesized.
    #[derive(Debug, Clone)]
    enum T {
        Leaf(&'static str),
        Un(&'static str, Box<T>),
        Bin(Box<T>, &'static str, Box<T>),
        Tern(Box<T>, Box<T>, Box<T>),
    }

    impl T {
        fn src(&self) -> String {
            match self {
                T::Leaf(s) => (*s).to_string(),
                T::Un(op, a) => format!("{op}{}", a.src()),
                T::Bin(a, op, b) => format!("({} {op} {})", a.src(), b.src()),
                T::Tern(c, a, b) => format!("({} ? {} : {})", c.src(), a.src(), b.src()),
            }
        }
    }

    const LEAVES: &[&str] = &[
        "rating",
        "score",
        "city",
        "tags",
        "name",
        "postal_code",
        "description",
        "attr_x",
        "attr_n",
        "attr_t",
        "attr_b",
        "attr_o",
        "attr_missing",
        "0",
        "1",
        "2.5",
        "-3",
        "1e308",
        "'İ'",
        "'k'",
        "state",
        "'new'",
        "'1000'",
        "''",
        "true",
    ];
    const BINOPS: &[&str] = &[
        "+", "-", "*", "/", "%", ">", ">=", "<", "<=", "==", "!=", "&&", "||",
    ];

    fn tree() -> impl Strategy<Value = T> {
        tree_of(6, 48)
    }

    /// Trees at most `depth` deep with about `size` nodes.
    fn tree_of(depth: u32, size: u32) -> impl Strategy<Value = T> {
        prop::sample::select(LEAVES)
            .prop_map(T::Leaf)
            .prop_recursive(depth, size, 3, |inner| {
                prop_oneof![
                    (inner.clone(), prop::sample::select(BINOPS), inner.clone())
                        .prop_map(|(a, op, b)| T::Bin(Box::new(a), op, Box::new(b))),
                    (prop::sample::select(vec!["-", "!"]), inner.clone())
                        .prop_map(|(op, a)| T::Un(op, Box::new(a))),
                    (inner.clone(), inner.clone(), inner).prop_map(|(c, a, b)| T::Tern(
                        Box::new(c),
                        Box::new(a),
                        Box::new(b)
                    )),
                ]
            })
    }

    /// Calls `f` with the value of `t`: a leaf keeps its text, anything else is a number.
    fn with_val(t: &T, l: &Lead, f: impl FnOnce(Val<'_>) -> f64) -> f64 {
        match t {
            T::Leaf(s) => {
                let c = compiled(s);
                let Some(Op::Push(o)) = c.code.first().copied() else {
                    panic!("{s} compiles to {:?}", c.code);
                };
                f(match o {
                    Operand::Field(field) => field.get(l),
                    Operand::Attr(i) => attr_val(&c.attrs[usize::from(i)], l),
                    o => const_val(&c.nums, &c.strs, o).unwrap(),
                })
            }
            _ => f(Val::Num(reference(t, l))),
        }
    }

    /// A straightforward tree-walking evaluator with the same operator semantics.
    fn reference(t: &T, l: &Lead) -> f64 {
        match t {
            T::Leaf(_) => with_val(t, l, |v| v.num()),
            T::Un("-", a) => -reference(a, l),
            T::Un(_, a) => truth(reference(a, l) == 0.0),
            T::Tern(c, a, b) => {
                if reference(c, l) != 0.0 {
                    reference(a, l)
                } else {
                    reference(b, l)
                }
            }
            T::Bin(a, "&&", b) => truth(reference(a, l) != 0.0 && reference(b, l) != 0.0),
            T::Bin(a, "||", b) => truth(reference(a, l) != 0.0 || reference(b, l) != 0.0),
            T::Bin(a, op, b) => {
                let p = match *op {
                    "+" => Punct::Plus,
                    "-" => Punct::Minus,
                    "*" => Punct::Star,
                    "/" => Punct::Slash,
                    "%" => Punct::Percent,
                    ">" => Punct::Gt,
                    ">=" => Punct::Ge,
                    "<" => Punct::Lt,
                    "<=" => Punct::Le,
                    "==" => Punct::EqEq,
                    _ => Punct::Ne,
                };
                with_val(a, l, |va| with_val(b, l, |vb| apply_bin(bin_of(p), va, vb)))
            }
        }
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(3000))]

        /// The compiled bytecode (leaf operands, folding, jumps, stack tracking) computes exactly
        /// what a naive tree walk computes.
        #[test]
        fn bytecode_matches_tree_walk(t in tree()) {
            let src = t.src();
            let e = Expr::parse(&src).unwrap();
            for l in leads() {
                let want = fin(reference(&t, &l)) + 0.0;
                let got = e.eval(&l);
                prop_assert!(got.is_finite());
                prop_assert_eq!(got.to_bits(), want.to_bits(), "{} on {}", src, l.id);
            }
        }
    }

    /// Operators of one precedence level, so that a chain of them is left-deep.
    const LEVELS: &[&[&str]] = &[
        &["+", "-"],
        &["*", "/", "%"],
        &[">", ">=", "<", "<="],
        &["==", "!="],
        &["&&"],
        &["||"],
    ];

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(300))]

        /// Chains long enough to be cut into chunks (one closure level per operator) compute
        /// exactly what a naive tree walk computes, wherever the cuts fall.
        #[test]
        fn chunked_trees_match_tree_walk(
            level in prop::sample::select(LEVELS),
            parts in prop::collection::vec((tree_of(2, 4), any::<prop::sample::Index>()), 40..140),
        ) {
            let mut src = String::new();
            let mut t: Option<T> = None;
            for (part, i) in parts {
                let op = i.get(level);
                let piece = part.src();
                if src.len() + piece.len() + op.len() + 2 > MAX_EXPR_LEN {
                    break;
                }
                t = Some(match t {
                    None => {
                        src = piece;
                        part
                    }
                    Some(acc) => {
                        src = format!("{src} {op} {piece}");
                        T::Bin(Box::new(acc), op, Box::new(part))
                    }
                });
            }
            let t = t.unwrap();
            let e = Expr::parse(&src).unwrap();
            for l in leads() {
                let want = fin(reference(&t, &l)) + 0.0;
                prop_assert_eq!(e.eval(&l).to_bits(), want.to_bits(), "{} on {}", src, l.id);
            }
        }
    }

    fn ev_const(src: &str) -> f64 {
        Expr::parse(src).unwrap().eval(&leads()[1])
    }
}
