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
//! so that evaluating makes no decision that parsing could make. [`Expr::eval`] runs that tree
//! (or, for the rare expression nested too deep for it, interprets the bytecode) against a
//! [`Lead`] without allocating and without panicking, and [`score`] combines weighted rules into
//! the 0–100 lead score (docs: "Lead Scoring"). To score many leads, a [`RuleSet`] compiles the
//! same bytecode of all of an account's rules into one program over columns and runs it over
//! groups of [`LANES`] leads, with the same results (see `batch.rs`); [`StoredLeads`] feeds it
//! straight from stored documents, reading only what the rules need (see `stored.rs`).
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
//! # Why evaluation cannot allocate
//!
//! Parsing resolves every name once: fields become functions that read them, attribute names
//! and literals are owned by the [`Expr`], and every closure is allocated at parse time.
//! Evaluation only reads the lead by reference (`&str`, `&[String]`, `&serde_json::Value`), keeps
//! intermediate numbers in locals (the closure tree, at most 128 calls deep) or on a fixed-size
//! `[f64; N]` array on the call stack (the interpreter, sized from the depth computed at parse
//! time), compares text with `eq_ignore_ascii_case` or `char::to_lowercase` iterators, and
//! parses numeric text with `str::parse::<f64>`, none of which allocate.

use std::cmp::Ordering;
use std::fmt;
use std::sync::Arc;

use crate::domain::lead::{Lead, TextField};
use crate::error::{Error, Result};

/// Longest accepted expression, in bytes.
pub const MAX_EXPR_LEN: usize = 4096;
/// Deepest accepted nesting of parentheses, unary operators and ternary branches.
pub const MAX_NESTING: usize = 64;
/// Largest evaluation stack an expression may need (well above what [`MAX_NESTING`] allows).
const MAX_STACK: usize = 512;
/// Longest attribute name, as in [`crate::domain::lead::validate_attr_name`].
const MAX_ATTR_NAME: usize = 64;

// ------------------------------------------------------------------------------------------------
// Compiled form
// ------------------------------------------------------------------------------------------------

/// A lead field an expression can read.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Field {
    Rating,
    ReviewCount,
    Score,
    Latitude,
    Longitude,
    CreatedAt,
    UpdatedAt,
    LastInteractionAt,
    Name,
    Source,
    Status,
    Tags,
    Text(TextField),
}

/// A text field's truthiness: 1 when present and non-empty.
#[inline(always)]
fn present(s: &Option<String>) -> f64 {
    truth(s.as_ref().is_some_and(|s| !s.is_empty()))
}

/// Evaluates `$body` with `$get` bound to a closure reading field `$f` where a number is needed
/// (as [`Field::num`] does). Each field gets its own closure type, so generic node builders given
/// `$get` are compiled once per field and read the field inline, without a call.
macro_rules! with_num_field {
    ($f:expr, $get:ident => $body:expr) => {
        match $f {
            Field::Rating => {
                let $get = |l: &Lead| l.rating.unwrap_or(0.0);
                $body
            }
            Field::ReviewCount => {
                let $get = |l: &Lead| l.review_count.map_or(0.0, f64::from);
                $body
            }
            Field::Score => {
                let $get = |l: &Lead| l.score;
                $body
            }
            Field::Latitude => {
                let $get = |l: &Lead| l.latitude.unwrap_or(0.0);
                $body
            }
            Field::Longitude => {
                let $get = |l: &Lead| l.longitude.unwrap_or(0.0);
                $body
            }
            Field::CreatedAt => {
                let $get = |l: &Lead| l.created_at as f64;
                $body
            }
            Field::UpdatedAt => {
                let $get = |l: &Lead| l.updated_at as f64;
                $body
            }
            Field::LastInteractionAt => {
                let $get = |l: &Lead| l.last_interaction_at as f64;
                $body
            }
            Field::Name => {
                let $get = |l: &Lead| truth(!l.name.is_empty());
                $body
            }
            Field::Source => {
                let $get = |l: &Lead| truth(!l.source.is_empty());
                $body
            }
            Field::Status => {
                let $get = |_: &Lead| 1.0;
                $body
            }
            Field::Tags => {
                let $get = |l: &Lead| truth(!l.tags.is_empty());
                $body
            }
            Field::Text(TextField::Description) => {
                let $get = |l: &Lead| present(&l.description);
                $body
            }
            Field::Text(TextField::Address) => {
                let $get = |l: &Lead| present(&l.address);
                $body
            }
            Field::Text(TextField::City) => {
                let $get = |l: &Lead| present(&l.city);
                $body
            }
            Field::Text(TextField::State) => {
                let $get = |l: &Lead| present(&l.state);
                $body
            }
            Field::Text(TextField::Country) => {
                let $get = |l: &Lead| present(&l.country);
                $body
            }
            Field::Text(TextField::PostalCode) => {
                let $get = |l: &Lead| present(&l.postal_code);
                $body
            }
            Field::Text(TextField::Phone) => {
                let $get = |l: &Lead| present(&l.phone);
                $body
            }
            Field::Text(TextField::Email) => {
                let $get = |l: &Lead| present(&l.email);
                $body
            }
            Field::Text(TextField::Website) => {
                let $get = |l: &Lead| present(&l.website);
                $body
            }
            Field::Text(TextField::Category) => {
                let $get = |l: &Lead| present(&l.category);
                $body
            }
            Field::Text(TextField::SourceId) => {
                let $get = |l: &Lead| present(&l.source_id);
                $body
            }
            Field::Text(TextField::LogoUrl) => {
                let $get = |l: &Lead| present(&l.logo_url);
                $body
            }
        }
    };
}

impl Field {
    fn parse(name: &str) -> Option<Field> {
        Some(match name {
            "rating" => Field::Rating,
            "review_count" => Field::ReviewCount,
            "score" => Field::Score,
            "latitude" => Field::Latitude,
            "longitude" => Field::Longitude,
            "created_at" => Field::CreatedAt,
            "updated_at" => Field::UpdatedAt,
            "last_interaction_at" => Field::LastInteractionAt,
            "name" => Field::Name,
            "source" => Field::Source,
            "status" => Field::Status,
            "tags" => Field::Tags,
            _ => {
                return TextField::ALL
                    .into_iter()
                    .find(|f| f.as_str() == name)
                    .map(Field::Text);
            }
        })
    }

    /// Whether the field is always a number (so comparisons need no text handling).
    fn is_numeric(self) -> bool {
        matches!(
            self,
            Field::Rating
                | Field::ReviewCount
                | Field::Score
                | Field::Latitude
                | Field::Longitude
                | Field::CreatedAt
                | Field::UpdatedAt
                | Field::LastInteractionAt
        )
    }

    /// The field where a number is needed; the same as `self.get(l).num()`.
    #[inline]
    fn num(self, l: &Lead) -> f64 {
        with_num_field!(self, get => get(l))
    }

    /// The field's text, for the text fields.
    #[inline]
    fn text(self, l: &Lead) -> Option<&str> {
        match self {
            Field::Name => Some(&l.name),
            Field::Source => Some(&l.source),
            Field::Status => Some(l.status.as_str()),
            Field::Text(t) => Some(text_of(t, l).unwrap_or("")),
            _ => None,
        }
    }

    fn get(self, l: &Lead) -> Val<'_> {
        match self {
            Field::Rating => Val::Num(l.rating.unwrap_or(0.0)),
            Field::ReviewCount => Val::Num(l.review_count.map_or(0.0, f64::from)),
            Field::Score => Val::Num(l.score),
            Field::Latitude => Val::Num(l.latitude.unwrap_or(0.0)),
            Field::Longitude => Val::Num(l.longitude.unwrap_or(0.0)),
            Field::CreatedAt => Val::Num(l.created_at as f64),
            Field::UpdatedAt => Val::Num(l.updated_at as f64),
            Field::LastInteractionAt => Val::Num(l.last_interaction_at as f64),
            Field::Name => Val::Text(&l.name),
            Field::Source => Val::Text(&l.source),
            Field::Status => Val::Text(l.status.as_str()),
            Field::Tags => Val::Tags(&l.tags),
            Field::Text(t) => Val::Text(text_of(t, l).unwrap_or("")),
        }
    }
}

/// [`Lead::text`], inlined here so a field read is a single jump.
#[inline(always)]
fn text_of(t: TextField, l: &Lead) -> Option<&str> {
    match t {
        TextField::Description => l.description.as_deref(),
        TextField::Address => l.address.as_deref(),
        TextField::City => l.city.as_deref(),
        TextField::State => l.state.as_deref(),
        TextField::Country => l.country.as_deref(),
        TextField::PostalCode => l.postal_code.as_deref(),
        TextField::Phone => l.phone.as_deref(),
        TextField::Email => l.email.as_deref(),
        TextField::Website => l.website.as_deref(),
        TextField::Category => l.category.as_deref(),
        TextField::SourceId => l.source_id.as_deref(),
        TextField::LogoUrl => l.logo_url.as_deref(),
    }
}

/// Where an instruction takes an input from: the evaluation stack or a leaf resolved at parse
/// time. Leaves are read directly, never pushed, which keeps the bytecode short.
#[derive(Debug, Clone, Copy, PartialEq)]
enum Operand {
    /// Pop the value computed by earlier instructions.
    Stack,
    /// A number from the constant pool.
    Num(u16),
    /// A string literal from the constant pool.
    Str(u16),
    /// A lead field.
    Field(Field),
    /// A custom attribute, by index into the attribute-name pool.
    Attr(u16),
}

/// Binary operators.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Bin {
    Add,
    Sub,
    Mul,
    Div,
    Rem,
    Gt,
    Ge,
    Lt,
    Le,
    Eq,
    Ne,
    And,
    Or,
}

/// One instruction. Each reads its operands (popping `Stack` ones, last operand first) and
/// pushes one value. There are no jumps: the code runs straight through once.
#[derive(Debug, Clone, Copy, PartialEq)]
enum Op {
    /// Push the numeric value of the operand.
    Push(Operand),
    /// Push the negation.
    Neg(Operand),
    /// Push 1 if the operand is falsy, else 0.
    Not(Operand),
    /// Push `a op b` for an arithmetic or logic operator, on numbers.
    Arith(Bin, Operand, Operand),
    /// Push 1 when the comparison holds, else 0.
    Test(Test),
    /// `c ? a : b`: push `a` when `c` is truthy, else `b`. A leaf branch that is not chosen is
    /// not read.
    Select(Operand, Operand, Operand),
    // Specialized forms of the most common shapes, so that their operands need no dispatch.
    /// `Arith` with both operands on the stack.
    ArithSS(Bin),
    /// `Arith` of a numeric field and a number constant (e.g. `rating * 10`).
    ArithFK(Bin, Field, u16),
    /// `Arith` of a computed value and a number constant.
    ArithSK(Bin, u16),
    /// `Select` whose branches are number constants (e.g. `website ? 20 : 0`).
    SelectK(Operand, u16, u16),
    /// A comparison choosing between two number constants (e.g. `rating > 4 ? 30 : 0`).
    TestK(Test, u16, u16),
}

/// A comparison, as read by [`Op::Test`] and [`Op::TestK`].
#[derive(Debug, Clone, Copy, PartialEq)]
enum Test {
    /// Both operands are always numbers.
    Cmp(Bin, Operand, Operand),
    /// The operands may be text or lists.
    CmpAny(Bin, Operand, Operand),
    /// A text field equals (`false`: differs from) a string literal: the common
    /// `city == "Paris"`, with the same result as `CmpAny`.
    TextEq(Field, u16, bool),
    /// `tags` holds (`false`: does not hold) a string literal, with the same result as `CmpAny`.
    TagsEq(u16, bool),
}

impl Test {
    /// Values the comparison pops.
    fn pops(self) -> usize {
        let pops = |o: Operand| usize::from(o == Operand::Stack);
        match self {
            Test::Cmp(_, a, b) | Test::CmpAny(_, a, b) => pops(a) + pops(b),
            Test::TextEq(..) | Test::TagsEq(..) => 0,
        }
    }
}

#[derive(Debug, Clone, PartialEq)]
struct StrConst {
    text: Box<str>,
    /// The literal's numeric value when it parses as a finite number.
    num: Option<f64>,
    /// Whether the literal is all ASCII (enables [`eq_ci_ascii`]).
    ascii: bool,
    /// Whether the literal has a `k` or `K`: the only letter a longer, non-ASCII text can match
    /// (U+212A KELVIN SIGN lowercases to `k`; a unit test checks no other char does this).
    has_k: bool,
}

impl StrConst {
    fn new(text: String) -> StrConst {
        StrConst {
            num: parse_text_num(&text),
            ascii: text.is_ascii(),
            has_k: text.contains(['k', 'K']),
            text: text.into(),
        }
    }

    /// `eq_ci(s, literal)`, faster.
    #[inline]
    fn eq_ci(&self, s: &str) -> bool {
        if self.ascii {
            // As `eq_ci_ascii`, reading `s` only when it can match: most candidates differ in
            // length, and a longer one needs a KELVIN SIGN to match, so a `k` in the literal.
            match s.len().cmp(&self.text.len()) {
                Ordering::Less => false,
                Ordering::Equal => match (s.as_bytes().first(), self.text.as_bytes().first()) {
                    (Some(a), Some(b)) => {
                        a.eq_ignore_ascii_case(b) && s.eq_ignore_ascii_case(&self.text)
                    }
                    _ => true,
                },
                Ordering::Greater => self.has_k && eq_ci_ascii(s, &self.text),
            }
        } else {
            eq_ci(s, &self.text)
        }
    }

    /// Text equality as [`compare`] defines it for text against this literal.
    #[inline]
    fn matches(&self, s: &str) -> bool {
        self.eq_ci(s) || self.num.is_some_and(|y| parse_text_num(s) == Some(y))
    }
}

/// A compiled scoring expression; see the [module documentation](self) for the language.
///
/// Build one with [`Expr::parse`], keep it, and call [`Expr::eval`] for each lead.
#[derive(Clone)]
pub struct Expr {
    src: Box<str>,
    code: Box<[Op]>,
    nums: Box<[f64]>,
    strs: Box<[StrConst]>,
    attrs: Box<[Box<str>]>,
    /// Most values the evaluation stack ever holds.
    stack: usize,
    /// The bytecode compiled to closures (see [`build_tree`]); `None` when the tree would be
    /// deeper than [`MAX_TREE_DEPTH`], and the bytecode is interpreted instead.
    tree: Option<Tree>,
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
            .field("code", &self.code)
            .field("stack", &self.stack)
            .field("tree", &self.tree.is_some())
            .finish()
    }
}

// ------------------------------------------------------------------------------------------------
// Values and operator semantics (shared by evaluation and constant folding)
// ------------------------------------------------------------------------------------------------

/// A value read from a leaf or the stack; borrowed, never owned.
#[derive(Debug, Clone, Copy)]
enum Val<'a> {
    Num(f64),
    /// Text read from the lead (its numeric form is parsed on demand).
    Text(&'a str),
    /// A string literal with its numeric form parsed at compile time.
    Lit(&'a str, Option<f64>),
    Tags(&'a [String]),
    List(&'a [serde_json::Value]),
}

impl<'a> Val<'a> {
    /// The value where a number is needed: text and lists count as 1 when non-empty.
    fn num(self) -> f64 {
        match self {
            Val::Num(x) => x,
            Val::Text(s) | Val::Lit(s, _) => truth(!s.is_empty()),
            Val::Tags(l) => truth(!l.is_empty()),
            Val::List(l) => truth(!l.is_empty()),
        }
    }

    fn text(self) -> Option<&'a str> {
        match self {
            Val::Text(s) | Val::Lit(s, _) => Some(s),
            _ => None,
        }
    }

    /// The numeric reading of text, when it is a finite number.
    fn text_num(self) -> Option<f64> {
        match self {
            Val::Text(s) => parse_text_num(s),
            Val::Lit(_, n) => n,
            _ => None,
        }
    }

    /// The value as the operand of a comparison with a number.
    fn cmp_num(self) -> f64 {
        self.text_num().unwrap_or_else(|| self.num())
    }

    /// Whether a list value holds `needle` (case-insensitive); `None` for non-lists.
    fn contains(self, needle: &str) -> Option<bool> {
        match self {
            Val::Tags(l) => Some(l.iter().any(|t| eq_ci(t, needle))),
            Val::List(l) => Some(
                l.iter()
                    .any(|v| v.as_str().is_some_and(|t| eq_ci(t, needle))),
            ),
            _ => None,
        }
    }
}

fn truth(b: bool) -> f64 {
    if b { 1.0 } else { 0.0 }
}

/// Non-finite values never escape: they become 0.
fn fin(x: f64) -> f64 {
    if x.is_finite() { x } else { 0.0 }
}

fn parse_text_num(s: &str) -> Option<f64> {
    let t = s.trim();
    match t.as_bytes().first() {
        Some(b'0'..=b'9' | b'+' | b'-' | b'.') => t.parse::<f64>().ok().filter(|x| x.is_finite()),
        _ => None,
    }
}

/// Case-insensitive equality without allocating: ASCII fast path, otherwise lowercase `char`
/// iterators compared pairwise.
fn eq_ci(a: &str, b: &str) -> bool {
    if a.eq_ignore_ascii_case(b) {
        return true;
    }
    if a.is_ascii() && b.is_ascii() {
        return false;
    }
    a.chars()
        .flat_map(char::to_lowercase)
        .eq(b.chars().flat_map(char::to_lowercase))
}

/// [`eq_ci`] when `lit` is all ASCII, reading `s` only when its length allows a match.
///
/// Every char of `s` must lowercase to ASCII to match. ASCII chars map one byte to one byte, and
/// the only non-ASCII chars whose lowercase is ASCII (the KELVIN SIGN) are longer than their
/// lowercase (checked over every `char` by a unit test). So a shorter `s` never matches, one of
/// the same length matches exactly when it is equal ignoring ASCII case, and only a longer,
/// non-ASCII `s` needs the general comparison.
#[inline]
fn eq_ci_ascii(s: &str, lit: &str) -> bool {
    match s.len().cmp(&lit.len()) {
        Ordering::Less => false,
        Ordering::Equal => s.eq_ignore_ascii_case(lit),
        Ordering::Greater => !s.is_ascii() && eq_ci(s, lit),
    }
}

/// Case-insensitive ordering without allocating.
fn cmp_ci(a: &str, b: &str) -> Ordering {
    if a.is_ascii() && b.is_ascii() {
        a.bytes()
            .map(|c| c.to_ascii_lowercase())
            .cmp(b.bytes().map(|c| c.to_ascii_lowercase()))
    } else {
        a.chars()
            .flat_map(char::to_lowercase)
            .cmp(b.chars().flat_map(char::to_lowercase))
    }
}

fn ord_test(op: Bin, o: Option<Ordering>) -> bool {
    match (op, o) {
        (_, None) => op == Bin::Ne,
        (Bin::Gt, Some(o)) => o == Ordering::Greater,
        (Bin::Ge, Some(o)) => o != Ordering::Less,
        (Bin::Lt, Some(o)) => o == Ordering::Less,
        (Bin::Le, Some(o)) => o != Ordering::Greater,
        (Bin::Eq, Some(o)) => o == Ordering::Equal,
        (_, Some(o)) => o != Ordering::Equal,
    }
}

fn num_test(op: Bin, x: f64, y: f64) -> bool {
    match op {
        Bin::Gt => x > y,
        Bin::Ge => x >= y,
        Bin::Lt => x < y,
        Bin::Le => x <= y,
        Bin::Eq => x == y,
        _ => x != y,
    }
}

fn compare(op: Bin, a: Val<'_>, b: Val<'_>) -> bool {
    if let (Val::Num(x), Val::Num(y)) = (a, b) {
        return num_test(op, x, y);
    }
    let eq_op = matches!(op, Bin::Eq | Bin::Ne);
    match (a.text(), b.text()) {
        (Some(sa), Some(sb)) => {
            if eq_op {
                // The literal's number is known already, so `city == "Paris"` never parses `city`.
                let same = eq_ci(sa, sb)
                    || b.text_num()
                        .and_then(|y| a.text_num().map(|x| x == y))
                        .unwrap_or(false);
                return same == (op == Bin::Eq);
            }
            let o = match (b.text_num(), a.text_num()) {
                (Some(y), Some(x)) => x.partial_cmp(&y),
                _ => Some(cmp_ci(sa, sb)),
            };
            ord_test(op, o)
        }
        (None, Some(sb)) if eq_op => match a.contains(sb) {
            Some(has) => has == (op == Bin::Eq),
            None => num_test(op, a.cmp_num(), b.cmp_num()),
        },
        (Some(sa), None) if eq_op => match b.contains(sa) {
            Some(has) => has == (op == Bin::Eq),
            None => num_test(op, a.cmp_num(), b.cmp_num()),
        },
        _ => num_test(op, a.cmp_num(), b.cmp_num()),
    }
}

fn is_comparison(op: Bin) -> bool {
    matches!(
        op,
        Bin::Gt | Bin::Ge | Bin::Lt | Bin::Le | Bin::Eq | Bin::Ne
    )
}

/// Arithmetic and logic operators on numbers.
#[inline(always)]
fn arith(op: Bin, x: f64, y: f64) -> f64 {
    match op {
        Bin::Add => fin(x + y),
        Bin::Sub => fin(x - y),
        Bin::Mul => fin(x * y),
        Bin::Div if y == 0.0 => 0.0,
        Bin::Div => fin(x / y),
        Bin::Rem if y == 0.0 => 0.0,
        Bin::Rem => fin(x % y),
        Bin::And => truth(x != 0.0 && y != 0.0),
        Bin::Or => truth(x != 0.0 || y != 0.0),
        // Comparisons never reach here (see `apply_bin`); keep a total, panic-free answer.
        _ => truth(num_test(op, x, y)),
    }
}

/// Any binary operator on any values: the reference semantics, used for constant folding.
fn apply_bin(op: Bin, a: Val<'_>, b: Val<'_>) -> f64 {
    if is_comparison(op) {
        truth(compare(op, a, b))
    } else {
        arith(op, a.num(), b.num())
    }
}

// ------------------------------------------------------------------------------------------------
// Evaluation
// ------------------------------------------------------------------------------------------------

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
        let toks = lex(src)?;
        let mut c = Compiler {
            toks,
            i: 0,
            code: Vec::new(),
            nums: Vec::new(),
            strs: Vec::new(),
            attrs: Vec::new(),
            sp: 0,
            max_sp: 0,
        };
        if matches!(c.peek().tok, Tok::Eof) {
            return Err(Error::invalid("expression: empty expression at position 0"));
        }
        let root = c.ternary(0)?;
        let end = c.peek();
        if !matches!(end.tok, Tok::Eof) {
            return Err(unexpected(&end));
        }
        c.materialize(root)?;
        if c.max_sp > MAX_STACK {
            return Err(Error::invalid(format!(
                "expression: too complex to evaluate at position {}",
                end.pos
            )));
        }
        let tree = build_tree(&c.code, &c.nums, &c.strs, &c.attrs);
        Ok(Expr {
            src: src.into(),
            code: c.code.into(),
            nums: c.nums.into(),
            strs: c.strs.into(),
            attrs: c.attrs.into(),
            stack: c.max_sp,
            tree,
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
        match &self.tree {
            // `+ 0.0` turns a negative zero into zero, as `run` does.
            Some(tree) => fin(tree(lead)) + 0.0,
            None => self.interpret(lead),
        }
    }

    /// Evaluates by interpreting the bytecode: the reference for the closure tree, and the
    /// path of expressions too deep for it.
    fn interpret(&self, lead: &Lead) -> f64 {
        if self.stack <= 4 {
            self.run::<4>(lead)
        } else if self.stack <= 32 {
            self.run::<32>(lead)
        } else {
            self.run::<MAX_STACK>(lead)
        }
    }

    /// Runs the bytecode with an evaluation stack of `N` numbers held in a local array.
    ///
    /// The stack pointer stays in a local (never lent out), so it can live in a register.
    /// Overflow and underflow cannot happen (the depth is computed at parse time); if they did, a
    /// value would be dropped or read as 0 rather than panicking. Not inlined, so that only the
    /// rare deep variant pays for a large stack frame.
    #[inline(never)]
    fn run<const N: usize>(&self, lead: &Lead) -> f64 {
        let mut buf = [0.0f64; N];
        let mut sp = 0usize;
        macro_rules! pop {
            () => {{
                sp = sp.wrapping_sub(1);
                buf.get(sp).copied().unwrap_or(0.0)
            }};
        }
        macro_rules! num {
            ($o:expr) => {
                match $o {
                    Operand::Stack => pop!(),
                    o => self.leaf_num(o, lead),
                }
            };
        }
        macro_rules! val {
            ($o:expr) => {
                match $o {
                    Operand::Stack => Val::Num(pop!()),
                    o => self.leaf(o, lead),
                }
            };
        }
        macro_rules! test {
            ($t:expr) => {
                match $t {
                    Test::Cmp(op, a, b) => {
                        let y = num!(b);
                        let x = num!(a);
                        num_test(op, x, y)
                    }
                    Test::CmpAny(op, a, b) => {
                        let vb = val!(b);
                        let va = val!(a);
                        compare(op, va, vb)
                    }
                    Test::TextEq(f, i, eq) => {
                        let hit = match (f.text(lead), self.strs.get(usize::from(i))) {
                            (Some(s), Some(lit)) => lit.matches(s),
                            _ => false,
                        };
                        hit == eq
                    }
                    Test::TagsEq(i, eq) => {
                        let hit = match self.strs.get(usize::from(i)) {
                            Some(lit) => lead.tags.iter().any(|t| lit.eq_ci(t)),
                            None => false,
                        };
                        hit == eq
                    }
                }
            };
        }
        for &op in &self.code {
            let v = match op {
                Op::Arith(op, a, b) => {
                    let y = num!(b);
                    let x = num!(a);
                    arith(op, x, y)
                }
                Op::Test(t) => truth(test!(t)),
                Op::TestK(t, a, b) => {
                    if test!(t) {
                        self.konst(a)
                    } else {
                        self.konst(b)
                    }
                }
                Op::Select(c, a, b) => {
                    // Pop computed branches first (they sit above the condition), then read
                    // only the chosen leaf.
                    let pb = if b == Operand::Stack { pop!() } else { 0.0 };
                    let pa = if a == Operand::Stack { pop!() } else { 0.0 };
                    let (o, popped) = if num!(c) != 0.0 { (a, pa) } else { (b, pb) };
                    match o {
                        Operand::Stack => popped,
                        o => self.leaf_num(o, lead),
                    }
                }
                Op::ArithSS(op) => {
                    let y = pop!();
                    let x = pop!();
                    arith(op, x, y)
                }
                Op::ArithFK(op, f, k) => arith(op, f.num(lead), self.konst(k)),
                Op::ArithSK(op, k) => {
                    let x = pop!();
                    arith(op, x, self.konst(k))
                }
                Op::SelectK(c, a, b) => {
                    if num!(c) != 0.0 {
                        self.konst(a)
                    } else {
                        self.konst(b)
                    }
                }
                Op::Push(a) => num!(a),
                Op::Neg(a) => -num!(a),
                Op::Not(a) => truth(num!(a) == 0.0),
            };
            if let Some(slot) = buf.get_mut(sp) {
                *slot = v;
                sp += 1;
            }
        }
        // `+ 0.0` turns a negative zero into zero.
        fin(pop!()) + 0.0
    }

    /// A number constant.
    #[inline(always)]
    fn konst(&self, i: u16) -> f64 {
        self.nums.get(usize::from(i)).copied().unwrap_or(0.0)
    }

    /// A leaf where a number is needed: the same as `self.leaf(o, lead).num()`, without building
    /// a [`Val`].
    #[inline(always)]
    fn leaf_num(&self, o: Operand, lead: &Lead) -> f64 {
        match o {
            Operand::Num(i) => self.nums.get(usize::from(i)).copied().unwrap_or(0.0),
            Operand::Field(f) => f.num(lead),
            _ => self.leaf(o, lead).num(),
        }
    }

    /// The value of a leaf operand (`Stack` reads as 0; callers pop it themselves).
    #[inline]
    fn leaf<'a>(&'a self, o: Operand, lead: &'a Lead) -> Val<'a> {
        match o {
            Operand::Stack => Val::Num(0.0),
            Operand::Field(f) => f.get(lead),
            Operand::Attr(i) => match self.attrs.get(usize::from(i)) {
                Some(name) => attr_val(name, lead),
                None => Val::Num(0.0),
            },
            Operand::Num(_) | Operand::Str(_) => {
                const_val(&self.nums, &self.strs, o).unwrap_or(Val::Num(0.0))
            }
        }
    }
}

/// The value of a constant operand, or `None` when the operand is not a constant.
fn const_val<'p>(nums: &'p [f64], strs: &'p [StrConst], o: Operand) -> Option<Val<'p>> {
    match o {
        Operand::Num(i) => nums.get(usize::from(i)).map(|x| Val::Num(*x)),
        Operand::Str(i) => strs.get(usize::from(i)).map(|s| Val::Lit(&s.text, s.num)),
        _ => None,
    }
}

impl fmt::Display for Expr {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.src)
    }
}

/// The value of the lead's attribute `name`, if it has one.
#[inline]
fn attr_value<'a>(name: &str, lead: &'a Lead) -> Option<&'a serde_json::Value> {
    lead.attributes
        .iter()
        .find(|a| same_bytes(a.name.as_bytes(), name.as_bytes()))
        .map(|a| &a.value)
}

/// `a == b` for short byte strings such as attribute names, comparing lengths first and then
/// whole 8- or 4-byte words (the first and the last, overlapping), which beats both a call to
/// `memcmp` and a byte loop for names of a few to a few dozen bytes.
#[inline(always)]
fn same_bytes(a: &[u8], b: &[u8]) -> bool {
    let n = a.len();
    if n != b.len() {
        return false;
    }
    fn word8(s: &[u8], i: usize) -> u64 {
        s.get(i..i + 8)
            .and_then(|w| <[u8; 8]>::try_from(w).ok())
            .map_or(0, u64::from_ne_bytes)
    }
    fn word4(s: &[u8], i: usize) -> u32 {
        s.get(i..i + 4)
            .and_then(|w| <[u8; 4]>::try_from(w).ok())
            .map_or(0, u32::from_ne_bytes)
    }
    match n {
        0..4 => a.iter().zip(b).all(|(x, y)| x == y),
        4..8 => word4(a, 0) == word4(b, 0) && word4(a, n - 4) == word4(b, n - 4),
        _ => {
            // Every 8-byte word from the start, then the last one (which may overlap).
            let mut i = 0;
            while i + 8 < n {
                if word8(a, i) != word8(b, i) {
                    return false;
                }
                i += 8;
            }
            word8(a, n - 8) == word8(b, n - 8)
        }
    }
}

fn attr_val<'a>(name: &str, lead: &'a Lead) -> Val<'a> {
    use serde_json::Value as V;
    match attr_value(name, lead) {
        None | Some(V::Null) => Val::Text(""),
        Some(V::Number(n)) => Val::Num(n.as_f64().unwrap_or(0.0)),
        Some(V::Bool(b)) => Val::Num(truth(*b)),
        Some(V::String(s)) => Val::Text(s),
        Some(V::Array(items)) => Val::List(items),
        Some(V::Object(m)) => Val::Num(truth(!m.is_empty())),
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
    clamp_total(sum)
}

/// A sum of weighted rule values as a score: 0–100, a non-finite sum as 0.
fn clamp_total(sum: f64) -> f64 {
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

// ------------------------------------------------------------------------------------------------
// Closure tree
// ------------------------------------------------------------------------------------------------
//
// Interpreting the bytecode dispatches on the instruction, then on each operand, field and
// operator, for every lead. The closure tree makes all of those choices once, at parse time:
// each instruction becomes one closure specialized for its operator and its leaves (`rating * 10`
// is a closure that reads `rating` and multiplies by a captured 10), and evaluating is a walk of
// direct calls. The semantics are those of the bytecode, instruction by instruction, and a
// property test checks that both give the same result on random expressions and leads.

/// Deepest closure tree built; deeper expressions (up to [`MAX_STACK`]) are interpreted, which
/// keeps the native stack used by evaluation small and bounded.
const MAX_TREE_DEPTH: usize = 128;

/// The root of a compiled expression, shared by the clones of an [`Expr`].
type Tree = Arc<dyn Fn(&Lead) -> f64 + Send + Sync>;
/// A compiled sub-expression yielding a number.
type Node = Box<dyn Fn(&Lead) -> f64 + Send + Sync>;

/// An operand of a comparison that may be text or a list: a leaf that owns its data, or a
/// computed number.
enum Arg {
    Num(f64),
    Str(StrConst),
    Field(Field),
    Attr(Box<str>),
    Node(Node),
}

impl Arg {
    /// The value, as [`Expr::leaf`] reads it.
    #[inline]
    fn val<'a>(&'a self, l: &'a Lead) -> Val<'a> {
        match self {
            Arg::Num(x) => Val::Num(*x),
            Arg::Str(s) => Val::Lit(&s.text, s.num),
            Arg::Field(f) => f.get(l),
            Arg::Attr(name) => attr_val(name, l),
            Arg::Node(n) => Val::Num(n(l)),
        }
    }
}

/// Reads a text field as [`Field::text`] does (a missing one is empty); `None` for the others.
fn text_fn(f: Field) -> Option<fn(&Lead) -> &str> {
    fn or_empty(s: &Option<String>) -> &str {
        s.as_deref().unwrap_or("")
    }
    Some(match f {
        Field::Name => |l| &l.name,
        Field::Source => |l| &l.source,
        Field::Status => |l| l.status.as_str(),
        Field::Text(t) => match t {
            TextField::Description => |l| or_empty(&l.description),
            TextField::Address => |l| or_empty(&l.address),
            TextField::City => |l| or_empty(&l.city),
            TextField::State => |l| or_empty(&l.state),
            TextField::Country => |l| or_empty(&l.country),
            TextField::PostalCode => |l| or_empty(&l.postal_code),
            TextField::Phone => |l| or_empty(&l.phone),
            TextField::Email => |l| or_empty(&l.email),
            TextField::Website => |l| or_empty(&l.website),
            TextField::Category => |l| or_empty(&l.category),
            TextField::SourceId => |l| or_empty(&l.source_id),
            TextField::LogoUrl => |l| or_empty(&l.logo_url),
        },
        _ => return None,
    })
}

/// `a op b` on numbers, as [`arith`] computes it, specialized for `op`.
fn arith_node<A, B>(op: Bin, a: A, b: B) -> Node
where
    A: Fn(&Lead) -> f64 + Send + Sync + 'static,
    B: Fn(&Lead) -> f64 + Send + Sync + 'static,
{
    match op {
        Bin::Add => Box::new(move |l| fin(a(l) + b(l))),
        Bin::Sub => Box::new(move |l| fin(a(l) - b(l))),
        Bin::Mul => Box::new(move |l| fin(a(l) * b(l))),
        Bin::Div => Box::new(move |l| {
            let (x, y) = (a(l), b(l));
            if y == 0.0 { 0.0 } else { fin(x / y) }
        }),
        Bin::Rem => Box::new(move |l| {
            let (x, y) = (a(l), b(l));
            if y == 0.0 { 0.0 } else { fin(x % y) }
        }),
        // Both sides are pure, so short-circuiting gives the bytecode's answer.
        Bin::And => Box::new(move |l| truth(a(l) != 0.0 && b(l) != 0.0)),
        Bin::Or => Box::new(move |l| truth(a(l) != 0.0 || b(l) != 0.0)),
        _ => Box::new(move |l| truth(num_test(op, a(l), b(l)))),
    }
}

/// `a op k` for a constant `k`, specialized for `op`.
fn arith_k_node<A>(op: Bin, a: A, k: f64) -> Node
where
    A: Fn(&Lead) -> f64 + Send + Sync + 'static,
{
    match op {
        Bin::Add => Box::new(move |l| fin(a(l) + k)),
        Bin::Sub => Box::new(move |l| fin(a(l) - k)),
        Bin::Mul => Box::new(move |l| fin(a(l) * k)),
        Bin::Div if k == 0.0 => Box::new(|_| 0.0),
        Bin::Div => Box::new(move |l| fin(a(l) / k)),
        Bin::Rem if k == 0.0 => Box::new(|_| 0.0),
        Bin::Rem => Box::new(move |l| fin(a(l) % k)),
        _ => arith_node(op, a, move |_: &Lead| k),
    }
}

/// A comparison of two numbers, specialized for `op`, whose outcome `sel` turns into the
/// node's value (1/0 for a comparison, one of two constants for `cond ? a : b`), so the choice
/// costs no extra call.
fn cmp_node<A, B, S>(op: Bin, a: A, b: B, sel: S) -> Node
where
    A: Fn(&Lead) -> f64 + Send + Sync + 'static,
    B: Fn(&Lead) -> f64 + Send + Sync + 'static,
    S: Fn(bool) -> f64 + Send + Sync + 'static,
{
    match op {
        Bin::Gt => Box::new(move |l| sel(a(l) > b(l))),
        Bin::Ge => Box::new(move |l| sel(a(l) >= b(l))),
        Bin::Lt => Box::new(move |l| sel(a(l) < b(l))),
        Bin::Le => Box::new(move |l| sel(a(l) <= b(l))),
        Bin::Eq => Box::new(move |l| sel(a(l) == b(l))),
        _ => Box::new(move |l| sel(a(l) != b(l))),
    }
}

/// The pools of an expression being turned into a closure tree, and the trees of the values
/// its bytecode has computed so far (each with its depth).
struct TreeBuilder<'p> {
    nums: &'p [f64],
    strs: &'p [StrConst],
    attrs: &'p [Box<str>],
    stack: Vec<(Node, usize)>,
    /// Depth of the deepest tree popped for the instruction being built.
    depth: usize,
}

impl TreeBuilder<'_> {
    fn konst(&self, i: u16) -> f64 {
        self.nums.get(usize::from(i)).copied().unwrap_or(0.0)
    }

    fn attr(&self, i: u16) -> Box<str> {
        self.attrs.get(usize::from(i)).cloned().unwrap_or_default()
    }

    fn pop(&mut self) -> Node {
        match self.stack.pop() {
            Some((n, d)) => {
                self.depth = self.depth.max(d);
                n
            }
            None => Box::new(|_| 0.0),
        }
    }

    /// An operand that may be text or a list (for `CmpAny`).
    fn arg(&mut self, o: Operand) -> Arg {
        match o {
            Operand::Stack => Arg::Node(self.pop()),
            Operand::Num(i) => Arg::Num(self.konst(i)),
            Operand::Str(i) => match self.strs.get(usize::from(i)) {
                Some(s) => Arg::Str(s.clone()),
                None => Arg::Num(0.0),
            },
            Operand::Field(f) => Arg::Field(f),
            Operand::Attr(i) => Arg::Attr(self.attr(i)),
        }
    }

    /// An operand where a number is needed.
    fn num(&mut self, o: Operand) -> Node {
        match self.arg(o) {
            Arg::Node(n) => n,
            Arg::Num(x) => Box::new(move |_| x),
            Arg::Field(f) => with_num_field!(f, get => Box::new(get)),
            Arg::Attr(name) => Box::new(move |l| match attr_value(&name, l) {
                Some(serde_json::Value::Number(n)) => n.as_f64().unwrap_or(0.0),
                _ => attr_val(&name, l).num(),
            }),
            // A string literal: its truthiness, as [`Val::num`] reads it.
            leaf @ Arg::Str(_) => Box::new(move |l| leaf.val(l).num()),
        }
    }

    /// A comparison whose outcome `sel` turns into the node's value.
    fn test<S>(&mut self, t: Test, sel: S) -> Node
    where
        S: Fn(bool) -> f64 + Send + Sync + 'static,
    {
        match t {
            Test::Cmp(op, Operand::Field(f), Operand::Num(k)) => {
                let k = self.konst(k);
                with_num_field!(f, get => cmp_node(op, get, move |_: &Lead| k, sel))
            }
            Test::Cmp(op, a, b) => {
                let nb = self.num(b);
                let na = self.num(a);
                cmp_node(op, na, nb, sel)
            }
            Test::CmpAny(op, Operand::Attr(i), Operand::Num(k)) => {
                // `attr_x > 500`: numeric attributes, the common case, skip `compare`.
                let (name, k) = (self.attr(i), self.konst(k));
                Box::new(move |l| {
                    sel(match attr_value(&name, l) {
                        Some(serde_json::Value::Number(n)) => {
                            num_test(op, n.as_f64().unwrap_or(0.0), k)
                        }
                        _ => compare(op, attr_val(&name, l), Val::Num(k)),
                    })
                })
            }
            Test::CmpAny(op, a, b) => {
                let vb = self.arg(b);
                let va = self.arg(a);
                Box::new(move |l| sel(compare(op, va.val(l), vb.val(l))))
            }
            Test::TextEq(f, i, eq) => match (text_fn(f), self.strs.get(usize::from(i))) {
                (Some(get), Some(lit)) => {
                    let lit = lit.clone();
                    Box::new(move |l| sel(lit.matches(get(l)) == eq))
                }
                _ => {
                    let v = sel(!eq);
                    Box::new(move |_| v)
                }
            },
            Test::TagsEq(i, eq) => match self.strs.get(usize::from(i)) {
                Some(lit) => {
                    let lit = lit.clone();
                    Box::new(move |l| sel(l.tags.iter().any(|t| lit.eq_ci(t)) == eq))
                }
                None => {
                    let v = sel(!eq);
                    Box::new(move |_| v)
                }
            },
        }
    }

    /// The tree of one instruction, popping the trees of its `Stack` operands.
    fn op(&mut self, op: Op) -> Node {
        match op {
            Op::Push(a) => self.num(a),
            Op::Neg(a) => {
                let a = self.num(a);
                Box::new(move |l| -a(l))
            }
            Op::Not(a) => {
                let a = self.num(a);
                Box::new(move |l| truth(a(l) == 0.0))
            }
            Op::Arith(op, a, Operand::Num(k)) => {
                let na = self.num(a);
                arith_k_node(op, na, self.konst(k))
            }
            Op::Arith(op, a, b) => {
                let nb = self.num(b);
                let na = self.num(a);
                arith_node(op, na, nb)
            }
            Op::ArithSS(op) => {
                let nb = self.pop();
                let na = self.pop();
                arith_node(op, na, nb)
            }
            Op::ArithFK(op, f, k) => {
                let k = self.konst(k);
                with_num_field!(f, get => arith_k_node(op, get, k))
            }
            Op::ArithSK(op, k) => {
                let a = self.pop();
                arith_k_node(op, a, self.konst(k))
            }
            Op::Test(t) => self.test(t, truth),
            Op::TestK(t, a, b) => {
                let (a, b) = (self.konst(a), self.konst(b));
                self.test(t, move |hit| if hit { a } else { b })
            }
            Op::Select(c, a, b) => {
                let nb = self.num(b);
                let na = self.num(a);
                let nc = self.num(c);
                Box::new(move |l| if nc(l) != 0.0 { na(l) } else { nb(l) })
            }
            Op::SelectK(c, a, b) => {
                let (a, b) = (self.konst(a), self.konst(b));
                match c {
                    Operand::Field(f) => {
                        with_num_field!(f, get => Box::new(move |l| if get(l) != 0.0 { a } else { b }))
                    }
                    c => {
                        let nc = self.num(c);
                        Box::new(move |l| if nc(l) != 0.0 { a } else { b })
                    }
                }
            }
        }
    }
}

/// Turns bytecode into a closure tree by running it symbolically: each instruction pops the
/// trees of its `Stack` operands (last operand first, as [`Expr::run`] pops them) and pushes its
/// own. `None` when the tree would be deeper than [`MAX_TREE_DEPTH`].
fn build_tree(code: &[Op], nums: &[f64], strs: &[StrConst], attrs: &[Box<str>]) -> Option<Tree> {
    let mut b = TreeBuilder {
        nums,
        strs,
        attrs,
        stack: Vec::new(),
        depth: 0,
    };
    for &op in code {
        b.depth = 0;
        let node = b.op(op);
        let depth = b.depth + 1;
        if depth > MAX_TREE_DEPTH {
            return None;
        }
        b.stack.push((node, depth));
    }
    let (root, _) = b.stack.pop()?;
    Some(Arc::from(root))
}

// ------------------------------------------------------------------------------------------------
// Lexer
// ------------------------------------------------------------------------------------------------

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Punct {
    Plus,
    Minus,
    Star,
    Slash,
    Percent,
    Gt,
    Ge,
    Lt,
    Le,
    EqEq,
    Ne,
    AndAnd,
    OrOr,
    Bang,
    Question,
    Colon,
    LParen,
    RParen,
}

#[derive(Debug, Clone, PartialEq)]
enum Tok<'a> {
    Num(f64),
    Str(String),
    Ident(&'a str),
    P(Punct),
    Eof,
}

#[derive(Debug, Clone, PartialEq)]
struct Token<'a> {
    tok: Tok<'a>,
    /// 0-based character offset.
    pos: usize,
    /// The source text of the token (empty at the end).
    text: &'a str,
}

fn err_at(what: impl fmt::Display, pos: usize) -> Error {
    Error::invalid(format!("expression: {what} at position {pos}"))
}

fn unexpected(t: &Token<'_>) -> Error {
    if matches!(t.tok, Tok::Eof) {
        return err_at("unexpected end of expression", t.pos);
    }
    err_at(format_args!("unexpected '{}'", shorten(t.text)), t.pos)
}

/// At most 32 characters of a token, for messages.
fn shorten(s: &str) -> String {
    if s.chars().count() <= 32 {
        s.to_string()
    } else {
        let mut out: String = s.chars().take(31).collect();
        out.push('…');
        out
    }
}

fn is_ident_start(c: char) -> bool {
    c.is_ascii_alphabetic() || c == '_'
}

fn is_ident_char(c: char) -> bool {
    c.is_ascii_alphanumeric() || c == '_'
}

fn lex(src: &str) -> Result<Vec<Token<'_>>> {
    let chars: Vec<(usize, char)> = src.char_indices().collect();
    let ch = |i: usize| chars.get(i).map(|c| c.1);
    let byte = |i: usize| chars.get(i).map_or(src.len(), |c| c.0);
    let slice = |a: usize, b: usize| src.get(byte(a)..byte(b)).unwrap_or("");
    let mut toks = Vec::new();
    let mut i = 0;
    while let Some(c) = ch(i) {
        if c.is_whitespace() {
            i += 1;
            continue;
        }
        let start = i;
        let digit_at = |j: usize| ch(j).is_some_and(|d| d.is_ascii_digit());
        let tok = if c.is_ascii_digit() || (c == '.' && digit_at(i + 1)) {
            while digit_at(i) {
                i += 1;
            }
            if ch(i) == Some('.') && digit_at(i + 1) {
                i += 1;
                while digit_at(i) {
                    i += 1;
                }
            }
            if matches!(ch(i), Some('e' | 'E')) {
                let sign = usize::from(matches!(ch(i + 1), Some('+' | '-')));
                if digit_at(i + 1 + sign) {
                    i += 1 + sign;
                    while digit_at(i) {
                        i += 1;
                    }
                }
            }
            if ch(i).is_some_and(|d| is_ident_char(d) || d == '.') {
                while ch(i).is_some_and(|d| is_ident_char(d) || d == '.') {
                    i += 1;
                }
                return Err(err_at(
                    format_args!("invalid number '{}'", shorten(slice(start, i))),
                    start,
                ));
            }
            match slice(start, i).parse::<f64>() {
                Ok(x) if x.is_finite() => Tok::Num(x),
                _ => {
                    return Err(err_at(
                        format_args!("number '{}' out of range", shorten(slice(start, i))),
                        start,
                    ));
                }
            }
        } else if is_ident_start(c) {
            while ch(i).is_some_and(is_ident_char) {
                i += 1;
            }
            Tok::Ident(slice(start, i))
        } else if c == '"' || c == '\'' {
            i += 1;
            let mut s = String::new();
            loop {
                match ch(i) {
                    None => return Err(err_at("unterminated string", start)),
                    Some(q) if q == c => {
                        i += 1;
                        break;
                    }
                    Some('\\') => {
                        let e = match ch(i + 1) {
                            Some(e @ ('\\' | '"' | '\'')) => e,
                            Some('n') => '\n',
                            Some('t') => '\t',
                            None => return Err(err_at("unterminated string", start)),
                            Some(other) => {
                                return Err(err_at(
                                    format_args!("invalid escape '\\{other}' in string"),
                                    i,
                                ));
                            }
                        };
                        s.push(e);
                        i += 2;
                    }
                    Some(other) => {
                        s.push(other);
                        i += 1;
                    }
                }
            }
            Tok::Str(s)
        } else {
            let next = ch(i + 1);
            let (p, len) = match (c, next) {
                ('>', Some('=')) => (Punct::Ge, 2),
                ('<', Some('=')) => (Punct::Le, 2),
                ('=', Some('=')) => (Punct::EqEq, 2),
                ('!', Some('=')) => (Punct::Ne, 2),
                ('&', Some('&')) => (Punct::AndAnd, 2),
                ('|', Some('|')) => (Punct::OrOr, 2),
                ('+', _) => (Punct::Plus, 1),
                ('-', _) => (Punct::Minus, 1),
                ('*', _) => (Punct::Star, 1),
                ('/', _) => (Punct::Slash, 1),
                ('%', _) => (Punct::Percent, 1),
                ('>', _) => (Punct::Gt, 1),
                ('<', _) => (Punct::Lt, 1),
                ('!', _) => (Punct::Bang, 1),
                ('?', _) => (Punct::Question, 1),
                (':', _) => (Punct::Colon, 1),
                ('(', _) => (Punct::LParen, 1),
                (')', _) => (Punct::RParen, 1),
                ('=', _) => return Err(err_at("unexpected '=' (use '==')", i)),
                ('&', _) => return Err(err_at("unexpected '&' (use '&&')", i)),
                ('|', _) => return Err(err_at("unexpected '|' (use '||')", i)),
                _ => {
                    return Err(err_at(
                        format_args!("unexpected character '{}'", c.escape_debug()),
                        i,
                    ));
                }
            };
            i += len;
            Tok::P(p)
        };
        toks.push(Token {
            tok,
            pos: start,
            text: slice(start, i),
        });
    }
    toks.push(Token {
        tok: Tok::Eof,
        pos: chars.len(),
        text: "",
    });
    Ok(toks)
}

// ------------------------------------------------------------------------------------------------
// Parser and code generator (one pass, precedence climbing)
// ------------------------------------------------------------------------------------------------

/// Binding power of a binary operator (higher binds tighter).
fn binop(p: Punct) -> Option<u8> {
    Some(match p {
        Punct::OrOr => 1,
        Punct::AndAnd => 2,
        Punct::EqEq | Punct::Ne => 3,
        Punct::Gt | Punct::Ge | Punct::Lt | Punct::Le => 4,
        Punct::Plus | Punct::Minus => 5,
        Punct::Star | Punct::Slash | Punct::Percent => 6,
        _ => return None,
    })
}

fn bin_of(p: Punct) -> Bin {
    match p {
        Punct::Plus => Bin::Add,
        Punct::Minus => Bin::Sub,
        Punct::Star => Bin::Mul,
        Punct::Slash => Bin::Div,
        Punct::Percent => Bin::Rem,
        Punct::Gt => Bin::Gt,
        Punct::Ge => Bin::Ge,
        Punct::Lt => Bin::Lt,
        Punct::Le => Bin::Le,
        Punct::EqEq => Bin::Eq,
        Punct::Ne => Bin::Ne,
        Punct::AndAnd => Bin::And,
        _ => Bin::Or,
    }
}

/// Parser state. Each parse function returns an [`Operand`]: a leaf that has not been emitted
/// (a constant, field or attribute) or [`Operand::Stack`] when its code has pushed the value.
struct Compiler<'a> {
    toks: Vec<Token<'a>>,
    i: usize,
    code: Vec<Op>,
    nums: Vec<f64>,
    strs: Vec<StrConst>,
    attrs: Vec<Box<str>>,
    /// Values on the evaluation stack at this point of the code.
    sp: usize,
    max_sp: usize,
}

const EOF_TOKEN: Token<'static> = Token {
    tok: Tok::Eof,
    pos: 0,
    text: "",
};

impl<'a> Compiler<'a> {
    fn peek(&self) -> Token<'a> {
        self.toks.get(self.i).cloned().unwrap_or(EOF_TOKEN)
    }

    fn peek_punct(&self) -> Option<Punct> {
        match self.toks.get(self.i).map(|t| &t.tok) {
            Some(Tok::P(p)) => Some(*p),
            _ => None,
        }
    }

    /// Consumes the current token and returns its position.
    fn advance(&mut self) -> usize {
        let pos = self.toks.get(self.i).map_or(0, |t| t.pos);
        self.i += 1;
        pos
    }

    fn expect(&mut self, p: Punct, what: &str, opened_at: usize) -> Result<()> {
        if self.peek_punct() == Some(p) {
            self.advance();
            return Ok(());
        }
        let t = self.peek();
        let found = if matches!(t.tok, Tok::Eof) {
            "end of expression".to_string()
        } else {
            format!("'{}'", shorten(t.text))
        };
        Err(err_at(
            format_args!("expected {what} (for the one at position {opened_at}) but found {found}"),
            t.pos,
        ))
    }

    fn enter(depth: usize, pos: usize) -> Result<()> {
        if depth > MAX_NESTING {
            return Err(err_at(
                format_args!("nested deeper than {MAX_NESTING} levels"),
                pos,
            ));
        }
        Ok(())
    }

    fn idx(n: usize, pos: usize) -> Result<u16> {
        u16::try_from(n).map_err(|_| err_at("expression too complex", pos))
    }

    fn num_const(&mut self, x: f64, pos: usize) -> Result<Operand> {
        let i = Self::idx(self.nums.len(), pos)?;
        self.nums.push(x);
        Ok(Operand::Num(i))
    }

    fn emit(&mut self, op: Op, pos: usize) -> Result<Operand> {
        let pops = |o: Operand| usize::from(o == Operand::Stack);
        let popped = match op {
            Op::Push(a) | Op::Neg(a) | Op::Not(a) => pops(a),
            Op::Arith(_, a, b) => pops(a) + pops(b),
            Op::Test(t) | Op::TestK(t, ..) => t.pops(),
            Op::Select(c, a, b) => pops(c) + pops(a) + pops(b),
            Op::ArithSS(_) => 2,
            Op::ArithFK(..) => 0,
            Op::ArithSK(..) => 1,
            Op::SelectK(c, ..) => pops(c),
        };
        self.sp = self.sp.saturating_sub(popped) + 1;
        self.max_sp = self.max_sp.max(self.sp);
        Self::idx(self.code.len() + 1, pos)?;
        self.code.push(op);
        Ok(Operand::Stack)
    }

    /// Makes sure the value is on the stack.
    fn materialize(&mut self, o: Operand) -> Result<()> {
        if o != Operand::Stack {
            self.emit(Op::Push(o), 0)?;
        }
        Ok(())
    }

    /// `or [ "?" expr ":" expr ]`
    fn ternary(&mut self, depth: usize) -> Result<Operand> {
        let cond = self.binary(1, depth)?;
        if self.peek_punct() != Some(Punct::Question) {
            return Ok(cond);
        }
        let q = self.advance();
        Self::enter(depth + 1, q)?;
        let a = self.ternary(depth + 1)?;
        self.expect(Punct::Colon, "':'", q)?;
        let b = self.ternary(depth + 1)?;
        // A constant condition with leaf branches folds to the chosen branch (as a number).
        let chosen = match self.const_val(cond) {
            Some(c) if a != Operand::Stack && b != Operand::Stack => {
                Some(if c.num() != 0.0 { a } else { b })
            }
            _ => None,
        };
        match chosen {
            Some(o) => match self.const_val(o).map(Val::num) {
                Some(x) => self.num_const(x, q),
                None => self.emit(Op::Push(o), q),
            },
            None => match (a, b) {
                (Operand::Num(x), Operand::Num(y)) => {
                    // The condition, when computed, was pushed by the last instruction: fuse a
                    // comparison into the choice.
                    match (cond, self.code.last().copied()) {
                        (Operand::Stack, Some(Op::Test(t))) => {
                            self.code.pop();
                            self.sp = self.sp.saturating_sub(1) + t.pops();
                            self.emit(Op::TestK(t, x, y), q)
                        }
                        _ => self.emit(Op::SelectK(cond, x, y), q),
                    }
                }
                _ => self.emit(Op::Select(cond, a, b), q),
            },
        }
    }

    /// Binary operators binding at least as tightly as `min`, left-associative.
    fn binary(&mut self, min: u8, depth: usize) -> Result<Operand> {
        let mut lhs = self.unary(depth)?;
        while let Some(p) = self.peek_punct() {
            let Some(prec) = binop(p).filter(|prec| *prec >= min) else {
                break;
            };
            let pos = self.advance();
            let rhs = self.binary(prec + 1, depth)?;
            lhs = self.bin(bin_of(p), lhs, rhs, pos)?;
        }
        Ok(lhs)
    }

    /// Emits a binary operation, folding it when both sides are constants.
    fn bin(&mut self, op: Bin, a: Operand, b: Operand, pos: usize) -> Result<Operand> {
        let folded = match (self.const_val(a), self.const_val(b)) {
            (Some(va), Some(vb)) => Some(apply_bin(op, va, vb)),
            _ => None,
        };
        match folded {
            Some(x) => self.num_const(x, pos),
            None => {
                let numeric = |o: Operand| match o {
                    Operand::Stack | Operand::Num(_) => true,
                    Operand::Field(f) => f.is_numeric(),
                    Operand::Str(_) | Operand::Attr(_) => false,
                };
                let text_field = |o: Operand| match o {
                    Operand::Field(
                        f @ (Field::Name | Field::Source | Field::Status | Field::Text(_)),
                    ) => Some(f),
                    _ => None,
                };
                let text_eq = match (a, b) {
                    (x, Operand::Str(i)) | (Operand::Str(i), x) => text_field(x).map(|f| (f, i)),
                    _ => None,
                };
                let code = if !is_comparison(op) {
                    match (a, b) {
                        (Operand::Stack, Operand::Stack) => Op::ArithSS(op),
                        (Operand::Field(f), Operand::Num(k)) if f.is_numeric() => {
                            Op::ArithFK(op, f, k)
                        }
                        (Operand::Stack, Operand::Num(k)) => Op::ArithSK(op, k),
                        _ => Op::Arith(op, a, b),
                    }
                } else if let (Some((f, i)), Bin::Eq | Bin::Ne) = (text_eq, op) {
                    Op::Test(Test::TextEq(f, i, op == Bin::Eq))
                } else if let (
                    (Operand::Field(Field::Tags), Operand::Str(i))
                    | (Operand::Str(i), Operand::Field(Field::Tags)),
                    Bin::Eq | Bin::Ne,
                ) = ((a, b), op)
                {
                    Op::Test(Test::TagsEq(i, op == Bin::Eq))
                } else if numeric(a) && numeric(b) {
                    Op::Test(Test::Cmp(op, a, b))
                } else {
                    Op::Test(Test::CmpAny(op, a, b))
                };
                self.emit(code, pos)
            }
        }
    }

    /// The value of a constant operand, for folding.
    fn const_val(&self, o: Operand) -> Option<Val<'_>> {
        const_val(&self.nums, &self.strs, o)
    }

    /// `( "-" | "!" ) unary | primary`
    fn unary(&mut self, depth: usize) -> Result<Operand> {
        let p = self.peek_punct();
        if !matches!(p, Some(Punct::Minus | Punct::Bang)) {
            return self.primary(depth);
        }
        let pos = self.advance();
        Self::enter(depth + 1, pos)?;
        let v = self.unary(depth + 1)?;
        let neg = p == Some(Punct::Minus);
        let folded = self
            .const_val(v)
            .map(|c| if neg { -c.num() } else { truth(c.num() == 0.0) });
        if let Some(x) = folded {
            return self.num_const(x, pos);
        }
        self.emit(if neg { Op::Neg(v) } else { Op::Not(v) }, pos)
    }

    fn primary(&mut self, depth: usize) -> Result<Operand> {
        let t = self.peek();
        match t.tok {
            Tok::Num(x) => {
                self.advance();
                self.num_const(x, t.pos)
            }
            Tok::Str(s) => {
                self.advance();
                let i = Self::idx(self.strs.len(), t.pos)?;
                self.strs.push(StrConst::new(s));
                Ok(Operand::Str(i))
            }
            Tok::Ident(name) => {
                self.advance();
                self.ident(name, t.pos)
            }
            Tok::P(Punct::LParen) => {
                let pos = self.advance();
                Self::enter(depth + 1, pos)?;
                let v = self.ternary(depth + 1)?;
                self.expect(Punct::RParen, "')'", pos)?;
                Ok(v)
            }
            _ => Err(unexpected(&t)),
        }
    }

    fn ident(&mut self, name: &str, pos: usize) -> Result<Operand> {
        match name {
            "true" => return self.num_const(1.0, pos),
            "false" => return self.num_const(0.0, pos),
            _ => {}
        }
        if let Some(attr) = name.strip_prefix("attr_") {
            if attr.is_empty() {
                return Err(err_at("missing attribute name after 'attr_'", pos));
            }
            if attr.len() > MAX_ATTR_NAME {
                return Err(err_at(
                    format_args!(
                        "attribute name '{}' is longer than {MAX_ATTR_NAME} characters",
                        shorten(attr)
                    ),
                    pos,
                ));
            }
            let i = match self.attrs.iter().position(|a| **a == *attr) {
                Some(i) => Self::idx(i, pos)?,
                None => {
                    let i = Self::idx(self.attrs.len(), pos)?;
                    self.attrs.push(attr.into());
                    i
                }
            };
            return Ok(Operand::Attr(i));
        }
        Field::parse(name)
            .map(Operand::Field)
            .ok_or_else(|| err_at(format_args!("unknown field '{}'", shorten(name)), pos))
    }
}

// ------------------------------------------------------------------------------------------------
// Many leads at once
// ------------------------------------------------------------------------------------------------

mod batch;
mod stored;
pub use batch::{LANES, RuleSet};
pub use stored::StoredLeads;

#[cfg(test)]
mod tests {
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
        assert_eq!(e.attrs.len(), 1);
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
        let e = Expr::parse("2 * 3 + 4").unwrap();
        assert_eq!(e.code.len(), 1, "{:?}", e.code);
        assert_eq!(e.eval(&empty_lead()), 10.0);
        let e =
            Expr::parse("rating * 10 + (website ? 20 : 0) + (city == \"Paris\" ? 5 : 0)").unwrap();
        // The module documentation's example.
        assert_eq!(
            Expr::parse("rating * 10 + (website ? 20 : 0)")
                .unwrap()
                .code
                .len(),
            3
        );
        // `rating * 10`, `website ? 20 : 0`, `+`, `city == "Paris" ? 5 : 0`, `+`.
        assert!(
            matches!(
                *e.code,
                [
                    Op::ArithFK(Bin::Mul, Field::Rating, _),
                    Op::SelectK(Operand::Field(Field::Text(TextField::Website)), _, _),
                    Op::ArithSS(Bin::Add),
                    Op::TestK(Test::TextEq(Field::Text(TextField::City), _, true), _, _),
                    Op::ArithSS(Bin::Add),
                ]
            ),
            "{:?}",
            e.code
        );
        assert!(e.stack <= 2);
        assert_eq!(e.eval(&lead(serde_json::json!({}))), 70.0);
        assert_eq!(e.source(), e.to_string());
        // Constant conditions pick their branch at parse time; the result is still a number.
        let e = Expr::parse("(1 ? 'a' : 'b') + (0 ? 5 : 7) + (true ? rating : 0)").unwrap();
        assert_eq!(e.code.len(), 2, "{:?}", e.code);
        assert_eq!(e.eval(&lead(serde_json::json!({}))), 12.5);
        // A ternary is a number even when folded: compared with text it is not text equality.
        assert_eq!(ev("(1 ? city : 0) == 'lyon'"), 1.0);
        assert_eq!(ev("(rating ? city : 0) == 'lyon'"), 1.0);
        assert_eq!(ev("(1 ? city : 0) == 1"), 1.0);
        assert_eq!(ev("(0 ? 1 : '') == 0"), 1.0);
    }

    #[test]
    fn rule_sets_of_long_rules_use_smaller_groups_not_more_memory() {
        let long = Expr::parse(&vec!["rating*2"; 450].join("+")).unwrap();
        let rules: Vec<(&Expr, f64)> = (0..60).map(|i| (&long, f64::from(i) / 1e5)).collect();
        let set = RuleSet::new(rules.iter().copied());
        // Tens of thousands of columns: one lead per group keeps the scratch under 1 MiB.
        assert!(set.columns > 50_000, "{}", set.columns);
        assert_eq!(set.lanes, 1);
        let page: Vec<Lead> = (0..5)
            .map(|i| lead(serde_json::json!({ "rating": f64::from(i) })))
            .collect();
        let got = set.scores(&page);
        for (l, s) in page.iter().zip(&got) {
            assert_eq!(s.to_bits(), score(&rules, l).to_bits());
        }
        assert!(got[1] > 0.0 && got[1] < got[2], "{got:?}");
        // A usual rule set keeps full groups.
        let a = Expr::parse("rating * 10").unwrap();
        assert_eq!(RuleSet::new([(&a, 1.0)]).lanes, LANES);
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
    fn stored_leads_read_only_what_the_rules_need_from_any_stored_shape() {
        let rules = [
            "rating * 10 + (city == 'Paris' ? 5 : 0) + (tags == 'vip' ? 1 : 0)",
            "attr_industry == 'software' ? 7 : 0",
            "attr_employees / 100 + (website ? 3 : 0) + (status == 'new' ? 0.5 : 0)",
        ]
        .map(|r| Expr::parse(r).unwrap());
        let pairs: Vec<(&Expr, f64)> = rules.iter().map(|e| (e, 1.0)).collect();
        let set = RuleSet::new(pairs.iter().copied());
        let docs = [
            // Keys in any order; the attribute's value before its name; escapes in keys and strings.
            r#"{"score": 3, "attributes": [{"value": "SOFTWARE", "type": "text", "name": "industry", "id": "a"},
                {"id": "b", "name": "employees", "type": "number", "value": 250}],
               "tags": ["x", "V\u0049P"], "c\u0069ty": "P\u0061ris", "rating": 4, "id": "cl_\"1",
               "website": "w", "status": "new", "name": "n", "source": "s",
               "created_at": 1, "updated_at": 1, "last_interaction_at": 1}"#,
            // Fields missing or null; unread fields of any shape; a repeated attribute name
            // (the first counts, as on a parsed lead).
            r#"{"id": "cl_2", "city": null, "description": {"not": "read"}, "phone": [1, 2],
               "attributes": [{"id": "a", "name": "employees", "type": "number", "value": 1000},
                {"id": "b", "name": "employees", "type": "number", "value": 5},
                {"id": "c", "name": "other", "type": "list", "value": [1]}]}"#,
            // Shorter tags and fewer attributes than the lead before: nothing stays behind.
            r#"{"id": "cl_3", "tags": [], "attributes": [], "city": "paris", "rating": null,
               "status": "converted", "score": 100}"#,
        ];
        let mut stored = StoredLeads::new(&set);
        for d in docs {
            stored.push(d.as_bytes()).unwrap();
        }
        assert_eq!(stored.len(), 3);
        assert_eq!(
            (stored.id(0), stored.id(1), stored.id(2), stored.id(3)),
            ("cl_\"1", "cl_2", "cl_3", "")
        );
        assert_eq!(
            (
                stored.stored_score(0),
                stored.stored_score(1),
                stored.stored_score(2)
            ),
            (3.0, 0.0, 100.0)
        );
        // 40 + 5 + 1, 7, 2.5 + 3 + 0.5; then 10 + 0.5 (status defaults to new); then 5.
        assert_eq!(stored.scores(), vec![59.0, 10.5, 5.0]);

        // What is not a stored lead is an error, and adds nothing.
        for bad in [
            "not json",
            r#"{"name": "no id"}"#,
            r#"{"id": "cl_4", "rating": "high"}"#,
            r#"{"id": "cl_4", "tags": "vip"}"#,
            r#"{"id": "cl_4", "attributes": [{"id": "a", "value": 1}]}"#,
            r#"{"id": "cl_4", "attributes": [{"id": "a", "name": "industry"}]}"#,
            r#"{"id": "cl_4"} trailing"#,
        ] {
            assert!(stored.push(bad.as_bytes()).is_err(), "{bad}");
            assert_eq!((stored.len(), stored.id(2)), (3, "cl_3"), "{bad}");
        }
        assert_eq!(stored.scores(), vec![59.0, 10.5, 5.0]);
        stored.clear();
        assert!(stored.is_empty() && stored.scores().is_empty());
    }

    #[test]
    fn rule_sets_score_pages_of_leads() {
        let paris = lead(serde_json::json!({}));
        let mut others = Vec::new();
        for i in 0..150 {
            let mut l = lead(serde_json::json!({}));
            l.rating = Some((i % 6) as f64);
            l.city = [Some("paris"), Some("Lyon"), None][i % 3].map(String::from);
            others.push(l);
        }
        let a = Expr::parse("rating * 10 + (city == 'Paris' ? 5 : 0)").unwrap();
        let b = Expr::parse("attr_employees > 500 ? 20 : attr_employees / 50").unwrap();
        let deep = Expr::parse(&vec!["rating"; 200].join(" + ")).unwrap();
        assert!(deep.tree.is_none());
        let set = RuleSet::new([(&a, 1.0), (&b, 0.5), (&deep, 0.01)]);
        // 45 + 5, then 500 employees / 50 × 0.5, then 200 × 4.5 × 0.01.
        assert_eq!(set.scores(std::slice::from_ref(&paris)), vec![64.0]);
        // 150 leads span three groups of `LANES`; each lane gets its own lead's score.
        let got = set.scores(&others);
        assert_eq!(got.len(), 150);
        for (l, s) in others.iter().zip(&got) {
            let want = score(&[(&a, 1.0), (&b, 0.5), (&deep, 0.01)], l);
            assert_eq!(s.to_bits(), want.to_bits(), "{:?} {:?}", l.rating, l.city);
        }
        assert_eq!(
            (got[0], got[1], got[4]),
            (5.0 + 5.0, 10.0 + 5.0 + 2.0, 40.0 + 5.0 + 8.0)
        );
        // No rules and no leads.
        assert_eq!(RuleSet::new([]).scores(&others[..3]), vec![0.0; 3]);
        assert!(set.scores(&[]).is_empty());
        // A total is clamped to 0..=100, and a negative zero is shown as zero.
        let neg = Expr::parse("0 - rating").unwrap();
        let zero = Expr::parse("0").unwrap();
        let s = RuleSet::new([(&a, 10.0), (&neg, 1.0), (&zero, -1.0)]).scores(&others[..5]);
        assert_eq!(s, vec![50.0, 99.0, 100.0, 100.0, 100.0]);
        let s = RuleSet::new([(&zero, -1.0)]).scores(&others[..1]);
        assert_eq!(s[0].to_bits(), 0.0f64.to_bits());
        assert_eq!(
            score(&[(&zero, -1.0)], &others[0]).to_bits(),
            0.0f64.to_bits()
        );
    }

    #[test]
    fn deep_expressions_use_bigger_stacks() {
        // Each level keeps a computed value pending, so the stack grows with nesting.
        let mut src = String::from("rating");
        for _ in 0..60 {
            src = format!("rating * 1 + ({src})");
        }
        let e = Expr::parse(&src).unwrap();
        assert!(e.stack > 32, "{}", e.stack);
        assert_eq!(e.eval(&lead(serde_json::json!({}))), 61.0 * 4.5);
        // 120 nested additions fit the closure tree's depth limit...
        assert!(e.tree.is_some());
        // ...a chain of 200 does not, and is interpreted with the same result.
        let chain = vec!["rating"; 200].join(" + ");
        let e = Expr::parse(&chain).unwrap();
        assert!(e.tree.is_none());
        assert_eq!(e.eval(&lead(serde_json::json!({}))), 200.0 * 4.5);
        let chain = vec!["rating"; 100].join(" + ");
        assert!(Expr::parse(&chain).unwrap().tree.is_some());
        let mut src = String::from("rating");
        for _ in 0..10 {
            src = format!("rating * 1 + ({src})");
        }
        let e = Expr::parse(&src).unwrap();
        assert!(e.stack > 4 && e.stack <= 32, "{}", e.stack);
        assert_eq!(e.eval(&lead(serde_json::json!({}))), 11.0 * 4.5);
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

#[cfg(test)]
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
        prop::sample::select(LEAVES)
            .prop_map(T::Leaf)
            .prop_recursive(6, 48, 3, |inner| {
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
                let e = Expr::parse(s).unwrap();
                let Some(Op::Push(o)) = e.code.first().copied() else {
                    panic!("{s} compiles to {:?}", e.code);
                };
                f(e.leaf(o, l))
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
                // The closure tree (what `eval` runs) and the bytecode interpreter agree.
                prop_assert!(e.tree.is_some());
                prop_assert_eq!(e.interpret(&l).to_bits(), want.to_bits(), "{} on {}", src, l.id);
            }
        }
    }

    /// Leads that differ lane by lane in every kind of leaf (numbers, text, numeric text, tags,
    /// attributes of each type, missing values), so a lane mix-up in the batch path shows.
    fn varied_leads(n: usize) -> Vec<Lead> {
        let base = leads();
        (0..n)
            .map(|i| {
                let mut l = base[i % 2].clone();
                l.rating = [Some(4.5), None, Some(0.0), Some(-2.0), Some(1e308)][i % 5];
                l.score = (i % 7) as f64;
                l.city = [
                    Some("İstanbul"),
                    Some("i̇stanbul"),
                    Some("k"),
                    Some("1e3"),
                    None,
                ][i % 5]
                    .map(String::from);
                l.name = ["", "x", "X", "1000", "new"][i % 5].into();
                l.postal_code =
                    [None, Some("1e3"), Some("01000"), Some("x")][i % 4].map(String::from);
                l.tags = [
                    vec![],
                    vec!["X".to_string()],
                    vec!["\u{212A}".into(), "é".into()],
                ][i % 3]
                    .clone();
                if i % 4 == 3 {
                    l.attributes.clear();
                } else if let Some(a) = l.attributes.get_mut(i % 3) {
                    a.value = [
                        serde_json::json!("1000"),
                        serde_json::json!(i),
                        serde_json::json!(null),
                    ][i % 3]
                        .clone();
                }
                l
            })
            .collect()
    }

    /// Up to three random rules, each with a weight (negative and huge ones included).
    fn weighted_rules() -> impl Strategy<Value = Vec<(T, f64)>> {
        prop::collection::vec(
            (tree(), prop::sample::select(vec![1.0, 0.5, -2.0, 1e300])),
            0..4,
        )
    }

    fn compile(rules: &[(T, f64)]) -> Vec<(Expr, f64)> {
        rules
            .iter()
            .map(|(t, w)| (Expr::parse(&t.src()).unwrap(), *w))
            .collect()
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(1000))]

        /// A rule set scoring a page of leads at once gives every lead exactly the score the
        /// rules give it one lead at a time.
        #[test]
        fn rule_set_matches_lead_by_lead(
            rules in weighted_rules(),
            n in 1usize..140,
        ) {
            let exprs = compile(&rules);
            let pairs: Vec<(&Expr, f64)> = exprs.iter().map(|(e, w)| (e, *w)).collect();
            let page = varied_leads(n);
            let got = RuleSet::new(pairs.iter().copied()).scores(&page);
            prop_assert_eq!(got.len(), n);
            for (i, (l, s)) in page.iter().zip(&got).enumerate() {
                let want = score(&pairs, l);
                prop_assert_eq!(s.to_bits(), want.to_bits(), "lead {} of {:?}", i, rules);
            }
        }

        /// Rescoring from stored documents gives every lead exactly the score the rules give
        /// the lead parsed from the same document, with its id and stored score.
        #[test]
        fn stored_leads_match_lead_by_lead(
            rules in weighted_rules(),
            n in 1usize..140,
        ) {
            let exprs = compile(&rules);
            let pairs: Vec<(&Expr, f64)> = exprs.iter().map(|(e, w)| (e, *w)).collect();
            let docs: Vec<Vec<u8>> = varied_leads(n)
                .iter()
                .enumerate()
                .map(|(i, l)| {
                    let mut l = l.clone();
                    l.id = format!("cl_{i}");
                    serde_json::to_vec(&l).unwrap()
                })
                .collect();
            let set = RuleSet::new(pairs.iter().copied());
            let mut stored = StoredLeads::new(&set);
            for d in &docs {
                stored.push(d).unwrap();
            }
            let got = stored.scores();
            prop_assert_eq!(got.len(), n);
            prop_assert_eq!(stored.len(), n);
            for (i, (d, s)) in docs.iter().zip(&got).enumerate() {
                let l: Lead = serde_json::from_slice(d).unwrap();
                prop_assert_eq!(stored.id(i), l.id.as_str());
                prop_assert_eq!(stored.stored_score(i).to_bits(), l.score.to_bits());
                let want = score(&pairs, &l);
                prop_assert_eq!(s.to_bits(), want.to_bits(), "lead {} of {:?}", i, rules);
            }
        }
    }

    fn ev_const(src: &str) -> f64 {
        Expr::parse(src).unwrap().eval(&leads()[1])
    }
}
