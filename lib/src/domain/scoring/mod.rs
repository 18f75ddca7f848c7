//! The scoring expression language: rules such as `rating * 10 + (website ? 20 : 0)` evaluated
//! against one lead.
//!
//! An expression is parsed once by [`Expr::parse`] into a compact, flat, straight-line bytecode
//! (a slice of instructions of at most 16 bytes whose operands are either the evaluation stack or
//! leaves such as a field, an attribute or a constant, plus pools of numbers, string literals and
//! attribute names); constant sub-expressions are folded, and the common shapes (`rating * 10`,
//! `website ? 20 : 0`, `rating > 4 ? 30 : 0`, `city == "Paris"`, `tags == "vip"`) get dedicated
//! instructions, so the example above is 3 instructions. The bytecode is then turned into a tree
//! of closures, one per instruction, each specialized for its operator and the leaves it reads,
//! so that evaluating makes no decision that parsing could make. [`Expr::eval`] walks that tree
//! against a [`Lead`] without allocating and without panicking, and [`score`] combines weighted
//! rules into the 0–100 lead score (docs: "Lead Scoring").
//!
//! The stages live in their own files: `lexer.rs` (text to tokens), `parser.rs` (the grammar
//! below), `compiler.rs` (the bytecode and its generation, folding and fused instructions) and
//! `eval.rs` (the values, the operators' meaning and the closure tree); `tests.rs` holds the unit
//! tests and the property tests, which check the compiled code against a naive tree-walking
//! evaluator.
//!
//! # Grammar
//!
//! ```text
//! expr     = or [ "?" expr ":" expr ]            ternary: lowest precedence, right-associative
//! or       = and { "||" and }
//! and      = equality { "&&" equality }
//! equality = relation { ( "==" | "!=" ) relation }
//! relation = additive { ( ">" | ">=" | "<" | "<=" ) additive }
//! additive = term { ( "+" | "-" ) term }
//! term     = unary { ( "*" | "/" | "%" ) unary }
//! unary    = ( "-" | "!" ) unary | primary
//! primary  = number | string | "true" | "false" | field | "attr_" name | "(" expr ")"
//! number   = digits [ "." digits ] [ exponent ] | "." digits [ exponent ]
//! exponent = ( "e" | "E" ) [ "+" | "-" ] digits
//! string   = '"' { char | escape } '"' | "'" { char | escape } "'"
//! escape   = "\" ( "\" | '"' | "'" | "n" | "t" )
//! field    = rating | review_count | score | latitude | longitude | created_at | updated_at
//!          | last_interaction_at | name | source | status | description | address | city
//!          | state | country | postal_code | phone | email | website | category | source_id
//!          | logo_url | tags
//! name     = 1-64 of [A-Za-z0-9_]
//! ```
//!
//! Binary operators are left-associative (`a - b - c` is `(a - b) - c`, `a < b < c` is
//! `(a < b) < c`). Whitespace is free between tokens. Field names are case-sensitive; attribute
//! names are matched exactly, so an attribute whose name contains `-` cannot be referenced.
//!
//! # Values
//!
//! Every computation is done on `f64`; the value of a rule is always finite (a non-finite result
//! becomes 0).
//!
//! - Numeric fields are their value; a missing one (`rating: null`) is 0. Timestamps are Unix
//!   seconds.
//! - Text fields (`name`, `source`, `status`, the optional text fields), string literals and text
//!   attributes are *text*. Wherever a number is needed (alone, in arithmetic, as a condition, with
//!   `!`, `&&`, `||`) text counts as 1 when non-empty and 0 when empty or missing; so
//!   `website ? 20 : 0` gives 20 to leads with a website.
//! - `tags` and list attributes are *lists*: 1 when non-empty, 0 otherwise.
//! - `attr_<name>`: a number attribute is its value, a bool is 1/0, a text is text, a list is a
//!   list, an object is 1 when non-empty; a missing or null attribute is 0 (and empty text).
//! - `true` and `false` are 1 and 0.
//!
//! # Operators
//!
//! - `+ - * /` and `%` (remainder, with the sign of the dividend) on numbers; division or
//!   remainder by zero is 0. Unary `-` negates.
//! - Comparisons yield 1 or 0. Text is compared with text case-insensitively (`city == "paris"`
//!   matches `Paris`); `==` between two texts also holds when both parse as the same number, and
//!   the ordering operators compare two texts numerically when both parse as numbers, else
//!   lexicographically by lowercase characters. Text compared with a number is its numeric value
//!   when it parses as one (`attr_size > 100` on the text `"250"` holds), else its 1/0 truthiness.
//!   A list compared with text by `==` / `!=` tests membership, case-insensitively
//!   (`tags == "vip"`); otherwise a list counts as 1/0.
//! - Text survives only as the direct operand of a comparison (a field, attribute or literal,
//!   possibly parenthesized): any computed value, including a ternary, is a number.
//! - `!` yields 1 or 0; `&&` and `||` yield 1 or 0 by truthiness (non-zero).
//! - `c ? a : b` yields `a` when `c` is truthy, else `b`.
//!
//! Nothing has side effects or can fail, so evaluating both sides of `&&`, `||` and `?:` (which
//! the straight-line bytecode does, instead of jumping) gives the same result as short-circuiting.
//!
//! # Errors
//!
//! [`Expr::parse`] rejects an invalid expression with [`Error::Invalid`] whose message names the
//! problem and where it is, as a **0-based character offset** into the source, e.g.
//! `expression: unexpected ')' at position 7` or `expression: unknown field 'ratng' at position 0`.
//! Input longer than [`MAX_EXPR_LEN`] bytes or nested deeper than [`MAX_NESTING`] levels is
//! rejected, so parsing and evaluation have bounded cost and stack use.
//!
//! # Why evaluation cannot allocate or overflow the stack
//!
//! Parsing resolves every name once: fields become closures that read them, attribute names and
//! literals are owned by the closures, and every closure is allocated at parse time. Evaluation
//! only reads the lead by reference (`&str`, `&[String]`, `&serde_json::Value`), keeps
//! intermediate numbers in locals, compares text with `eq_ignore_ascii_case` or
//! `char::to_lowercase` iterators, and parses numeric text with `str::parse::<f64>`, none of
//! which allocate. The walk recurses at most 64 calls deep: a deeper expression (a long
//! left-deep chain such as `a + b + c + …` is one level per operator) is cut into chunks of at
//! most that depth, run one after another, each leaving its value in a slot of a fixed-size
//! array on the stack for the chunks above it. Parsing recurses only as deep as [`MAX_NESTING`]
//! allows.

use std::fmt;
use std::sync::Arc;

use crate::domain::lead::Lead;
use crate::error::{Error, Result};

mod compiler;
mod eval;
mod lexer;
mod parser;
#[cfg(test)]
mod tests;

use eval::{Program, fin};

/// Longest accepted expression, in bytes.
pub const MAX_EXPR_LEN: usize = 4096;
/// Deepest accepted nesting of parentheses, unary operators and ternary branches.
pub const MAX_NESTING: usize = 64;

/// A compiled scoring expression; see the [module documentation](self) for the language.
///
/// Build one with [`Expr::parse`], keep it, and call [`Expr::eval`] for each lead.
#[derive(Clone)]
pub struct Expr {
    src: Box<str>,
    /// The closure tree, shared by the clones.
    program: Arc<Program>,
}

impl PartialEq for Expr {
    /// Compilation is deterministic, so two expressions are equal when their sources are.
    fn eq(&self, other: &Expr) -> bool {
        self.src == other.src
    }
}

impl fmt::Debug for Expr {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Expr")
            .field("src", &self.src)
            .field("chunks", &self.program.chunks.len())
            .finish()
    }
}

impl fmt::Display for Expr {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.src)
    }
}

impl Expr {
    /// Parses and compiles an expression.
    ///
    /// Fails with [`Error::Invalid`] when the expression is empty, longer than [`MAX_EXPR_LEN`]
    /// bytes, nested deeper than [`MAX_NESTING`] levels, names an unknown field, or is not
    /// well-formed. The message gives the position of the problem as a 0-based character offset,
    /// e.g. `expression: unknown field 'ratng' at position 0`. Never panics.
    pub fn parse(src: &str) -> Result<Expr> {
        if src.len() > MAX_EXPR_LEN {
            let pos = src
                .char_indices()
                .take_while(|(i, _)| *i < MAX_EXPR_LEN)
                .count();
            return Err(Error::invalid(format!(
                "expression: longer than {MAX_EXPR_LEN} bytes at position {pos}"
            )));
        }
        let code = parser::parse(src)?;
        Ok(Expr {
            src: src.into(),
            program: Arc::new(Program::new(&code, src.chars().count())?),
        })
    }

    /// The source text the expression was parsed from.
    pub fn source(&self) -> &str {
        &self.src
    }

    /// Evaluates the expression against one lead; the result is always finite.
    ///
    /// Never panics and never allocates: see the [module documentation](self).
    #[inline]
    pub fn eval(&self, lead: &Lead) -> f64 {
        self.program.eval(lead)
    }
}

/// The lead score of weighted rules: `clamp(Σ eval × weight, 0, 100)`; a non-finite sum is 0.
pub fn score(rules: &[(&Expr, f64)], lead: &Lead) -> f64 {
    score_weighted(rules.iter().copied(), lead)
}

/// [`score`] over any sequence of (rule, weight), so callers holding rules in their own types
/// need not collect them first.
pub fn score_weighted<'e>(rules: impl IntoIterator<Item = (&'e Expr, f64)>, lead: &Lead) -> f64 {
    let sum: f64 = rules.into_iter().map(|(e, w)| e.eval(lead) * w).sum();
    // `+ 0.0`: a zero total is never shown as `-0.0`.
    fin(sum).clamp(0.0, 100.0) + 0.0
}

/// Per rule, in order: the rule's value and its contribution (value × weight, non-finite as 0),
/// before the total is clamped by [`score`].
pub fn explain(rules: &[(&Expr, f64)], lead: &Lead) -> Vec<(f64, f64)> {
    rules
        .iter()
        .map(|(e, w)| {
            let v = e.eval(lead);
            (v, fin(v * w))
        })
        .collect()
}
