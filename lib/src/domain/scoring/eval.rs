//! The evaluator: the values of the language and the meaning of its operators (which constant
//! folding uses too), and the closure tree that compiled bytecode becomes and that
//! [`Expr::eval`](super::Expr::eval) walks.

use std::cmp::Ordering;

use super::compiler::{Bin, Code, Field, Op, Operand, StrConst, Test};
use super::lexer::err_at;
use crate::domain::lead::{Lead, TextField};
use crate::error::Result;

// ------------------------------------------------------------------------------------------------
// Reading a lead
// ------------------------------------------------------------------------------------------------

impl Field {
    /// The field's value as the language reads it (a missing number is 0, missing text empty).
    pub(super) fn get(self, l: &Lead) -> Val<'_> {
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

impl StrConst {
    /// `eq_ci(s, literal)`, faster.
    #[inline]
    pub(super) fn eq_ci(&self, s: &str) -> bool {
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

// ------------------------------------------------------------------------------------------------
// Values and operator semantics (shared by evaluation and constant folding)
// ------------------------------------------------------------------------------------------------

/// A value read from a leaf or the stack; borrowed, never owned.
#[derive(Debug, Clone, Copy)]
pub(super) enum Val<'a> {
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
    pub(super) fn num(self) -> f64 {
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

/// 1 for true, 0 for false.
pub(super) fn truth(b: bool) -> f64 {
    if b { 1.0 } else { 0.0 }
}

/// Non-finite values never escape: they become 0.
pub(super) fn fin(x: f64) -> f64 {
    if x.is_finite() { x } else { 0.0 }
}

/// The number a text holds, when it is one (and finite).
pub(super) fn parse_text_num(s: &str) -> Option<f64> {
    let t = s.trim();
    match t.as_bytes().first() {
        Some(b'0'..=b'9' | b'+' | b'-' | b'.') => t.parse::<f64>().ok().filter(|x| x.is_finite()),
        _ => None,
    }
}

/// Case-insensitive equality without allocating: ASCII fast path, otherwise lowercase `char`
/// iterators compared pairwise.
pub(super) fn eq_ci(a: &str, b: &str) -> bool {
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
pub(super) fn eq_ci_ascii(s: &str, lit: &str) -> bool {
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

/// Whether an ordering satisfies a comparison operator; an unordered pair (NaN) only `!=`.
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

/// A comparison of two numbers.
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

/// Whether the comparison `a op b` holds, for any two values (see the module documentation).
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

/// Whether the operator compares (yields 1 or 0 from any two values).
pub(super) fn is_comparison(op: Bin) -> bool {
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
pub(super) fn apply_bin(op: Bin, a: Val<'_>, b: Val<'_>) -> f64 {
    if is_comparison(op) {
        truth(compare(op, a, b))
    } else {
        arith(op, a.num(), b.num())
    }
}

/// The value of a constant operand, or `None` when the operand is not a constant.
pub(super) fn const_val<'p>(nums: &'p [f64], strs: &'p [StrConst], o: Operand) -> Option<Val<'p>> {
    match o {
        Operand::Num(i) => nums.get(usize::from(i)).map(|x| Val::Num(*x)),
        Operand::Str(i) => strs.get(usize::from(i)).map(|s| Val::Lit(&s.text, s.num)),
        _ => None,
    }
}

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
pub(super) fn same_bytes(a: &[u8], b: &[u8]) -> bool {
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

/// The value of the lead's attribute `name`, as the language reads it (missing or null is empty
/// text).
pub(super) fn attr_val<'a>(name: &str, lead: &'a Lead) -> Val<'a> {
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

/// A text field's truthiness: 1 when present and non-empty.
#[inline(always)]
fn present(s: &Option<String>) -> f64 {
    truth(s.as_ref().is_some_and(|s| !s.is_empty()))
}

/// Evaluates `$body` with `$get` bound to a closure reading field `$f` where a number is needed
/// (as `self.get(l).num()` does). Each field gets its own closure type, so generic node builders given
/// `$get` are compiled once per field and read the field inline, without a call.
macro_rules! with_num_field {
    ($f:expr, $get:ident => $body:expr) => {
        match $f {
            Field::Rating => {
                let $get = |l: &Lead, _: &[f64]| l.rating.unwrap_or(0.0);
                $body
            }
            Field::ReviewCount => {
                let $get = |l: &Lead, _: &[f64]| l.review_count.map_or(0.0, f64::from);
                $body
            }
            Field::Score => {
                let $get = |l: &Lead, _: &[f64]| l.score;
                $body
            }
            Field::Latitude => {
                let $get = |l: &Lead, _: &[f64]| l.latitude.unwrap_or(0.0);
                $body
            }
            Field::Longitude => {
                let $get = |l: &Lead, _: &[f64]| l.longitude.unwrap_or(0.0);
                $body
            }
            Field::CreatedAt => {
                let $get = |l: &Lead, _: &[f64]| l.created_at as f64;
                $body
            }
            Field::UpdatedAt => {
                let $get = |l: &Lead, _: &[f64]| l.updated_at as f64;
                $body
            }
            Field::LastInteractionAt => {
                let $get = |l: &Lead, _: &[f64]| l.last_interaction_at as f64;
                $body
            }
            Field::Name => {
                let $get = |l: &Lead, _: &[f64]| truth(!l.name.is_empty());
                $body
            }
            Field::Source => {
                let $get = |l: &Lead, _: &[f64]| truth(!l.source.is_empty());
                $body
            }
            Field::Status => {
                let $get = |_: &Lead, _: &[f64]| 1.0;
                $body
            }
            Field::Tags => {
                let $get = |l: &Lead, _: &[f64]| truth(!l.tags.is_empty());
                $body
            }
            Field::Text(TextField::Description) => {
                let $get = |l: &Lead, _: &[f64]| present(&l.description);
                $body
            }
            Field::Text(TextField::Address) => {
                let $get = |l: &Lead, _: &[f64]| present(&l.address);
                $body
            }
            Field::Text(TextField::City) => {
                let $get = |l: &Lead, _: &[f64]| present(&l.city);
                $body
            }
            Field::Text(TextField::State) => {
                let $get = |l: &Lead, _: &[f64]| present(&l.state);
                $body
            }
            Field::Text(TextField::Country) => {
                let $get = |l: &Lead, _: &[f64]| present(&l.country);
                $body
            }
            Field::Text(TextField::PostalCode) => {
                let $get = |l: &Lead, _: &[f64]| present(&l.postal_code);
                $body
            }
            Field::Text(TextField::Phone) => {
                let $get = |l: &Lead, _: &[f64]| present(&l.phone);
                $body
            }
            Field::Text(TextField::Email) => {
                let $get = |l: &Lead, _: &[f64]| present(&l.email);
                $body
            }
            Field::Text(TextField::Website) => {
                let $get = |l: &Lead, _: &[f64]| present(&l.website);
                $body
            }
            Field::Text(TextField::Category) => {
                let $get = |l: &Lead, _: &[f64]| present(&l.category);
                $body
            }
            Field::Text(TextField::SourceId) => {
                let $get = |l: &Lead, _: &[f64]| present(&l.source_id);
                $body
            }
            Field::Text(TextField::LogoUrl) => {
                let $get = |l: &Lead, _: &[f64]| present(&l.logo_url);
                $body
            }
        }
    };
}

// ------------------------------------------------------------------------------------------------
// The closure tree
// ------------------------------------------------------------------------------------------------
//
// Interpreting bytecode would dispatch on the instruction, then on each operand, field and
// operator, for every lead. The closure tree makes all of those choices once, at parse time:
// each instruction becomes one closure specialized for its operator and its leaves (`rating * 10`
// is a closure that reads `rating` and multiplies by a captured 10), and evaluating is a walk of
// direct calls, with the semantics of the bytecode instruction by instruction.
//
// A walk recurses once per level, and a 4 KiB expression can be over 800 levels deep (a long
// `a + b + c + …`). So no tree is deeper than `MAX_TREE_DEPTH`: a sub-tree that reaches that
// depth becomes a *chunk* whose value is stored in a slot, and the tree above reads the slot.
// Chunks are run one after another, in the order the bytecode computes them (so a chunk's slots
// are filled before it runs), then the root: one strategy, whose native stack use is bounded
// whatever the expression. Nearly every rule is a single chunk-free tree.

/// Deepest closure tree walked at once: what the native stack used by evaluation is bounded by.
const MAX_TREE_DEPTH: usize = 64;

/// Most chunks an expression may have. Each chunk holds at least [`MAX_TREE_DEPTH`]
/// instructions, and an expression of [`MAX_EXPR_LEN`](super::MAX_EXPR_LEN) bytes has fewer than
/// 2,100, so 64 is never reached; it bounds the slots array evaluation keeps on the stack.
const MAX_SLOTS: usize = 64;

/// A compiled sub-expression yielding a number, given the lead and the slots of the chunks
/// evaluated before it.
type Node = Box<dyn Fn(&Lead, &[f64]) -> f64 + Send + Sync>;

/// An expression ready to evaluate: its chunks, in evaluation order, and its root.
pub(super) struct Program {
    pub(super) chunks: Box<[Node]>,
    root: Node,
}

impl Program {
    /// Builds the closure tree of compiled code; fails only for code too large for
    /// [`MAX_SLOTS`], which the parser's limits do not produce.
    pub(super) fn new(c: &Code, end: usize) -> Result<Program> {
        let mut b = TreeBuilder {
            nums: &c.nums,
            strs: &c.strs,
            attrs: &c.attrs,
            stack: Vec::new(),
            depth: 0,
            chunks: Vec::new(),
        };
        for &op in &c.code {
            b.depth = 0;
            let node = b.op(op);
            let depth = b.depth + 1;
            if depth < MAX_TREE_DEPTH {
                b.stack.push((node, depth));
                continue;
            }
            let slot = b.chunks.len();
            if slot >= MAX_SLOTS {
                return Err(err_at("too complex to evaluate", end));
            }
            b.chunks.push(node);
            let read: Node = Box::new(move |_, s| s.get(slot).copied().unwrap_or(0.0));
            b.stack.push((read, 1));
        }
        let root = b.pop();
        Ok(Program {
            chunks: b.chunks.into(),
            root,
        })
    }

    /// The expression's value on `lead`.
    #[inline]
    pub(super) fn eval(&self, lead: &Lead) -> f64 {
        let v = if self.chunks.is_empty() {
            (self.root)(lead, &[])
        } else {
            self.eval_chunks(lead)
        };
        // `+ 0.0` turns a negative zero into zero.
        fin(v) + 0.0
    }

    /// The value of an expression split into chunks. Not inlined: only deep expressions pay for
    /// the slots array.
    #[inline(never)]
    fn eval_chunks(&self, lead: &Lead) -> f64 {
        let mut slots = [0.0; MAX_SLOTS];
        for (i, chunk) in self.chunks.iter().enumerate() {
            let v = chunk(lead, &slots);
            if let Some(slot) = slots.get_mut(i) {
                *slot = v;
            }
        }
        (self.root)(lead, &slots)
    }
}

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
    /// The value, as a leaf or a computed number.
    #[inline]
    fn val<'a>(&'a self, l: &'a Lead, s: &[f64]) -> Val<'a> {
        match self {
            Arg::Num(x) => Val::Num(*x),
            Arg::Str(c) => Val::Lit(&c.text, c.num),
            Arg::Field(f) => f.get(l),
            Arg::Attr(name) => attr_val(name, l),
            Arg::Node(n) => Val::Num(n(l, s)),
        }
    }
}

/// Reads a text field as [`Field::get`] does (a missing one is empty); `None` for the others.
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
    A: Fn(&Lead, &[f64]) -> f64 + Send + Sync + 'static,
    B: Fn(&Lead, &[f64]) -> f64 + Send + Sync + 'static,
{
    match op {
        Bin::Add => Box::new(move |l, s| fin(a(l, s) + b(l, s))),
        Bin::Sub => Box::new(move |l, s| fin(a(l, s) - b(l, s))),
        Bin::Mul => Box::new(move |l, s| fin(a(l, s) * b(l, s))),
        Bin::Div => Box::new(move |l, s| {
            let (x, y) = (a(l, s), b(l, s));
            if y == 0.0 { 0.0 } else { fin(x / y) }
        }),
        Bin::Rem => Box::new(move |l, s| {
            let (x, y) = (a(l, s), b(l, s));
            if y == 0.0 { 0.0 } else { fin(x % y) }
        }),
        // Both sides are pure, so short-circuiting gives the bytecode's answer.
        Bin::And => Box::new(move |l, s| truth(a(l, s) != 0.0 && b(l, s) != 0.0)),
        Bin::Or => Box::new(move |l, s| truth(a(l, s) != 0.0 || b(l, s) != 0.0)),
        _ => Box::new(move |l, s| truth(num_test(op, a(l, s), b(l, s)))),
    }
}

/// `a op k` for a constant `k`, specialized for `op`.
fn arith_k_node<A>(op: Bin, a: A, k: f64) -> Node
where
    A: Fn(&Lead, &[f64]) -> f64 + Send + Sync + 'static,
{
    match op {
        Bin::Add => Box::new(move |l, s| fin(a(l, s) + k)),
        Bin::Sub => Box::new(move |l, s| fin(a(l, s) - k)),
        Bin::Mul => Box::new(move |l, s| fin(a(l, s) * k)),
        Bin::Div if k == 0.0 => Box::new(|_, _| 0.0),
        Bin::Div => Box::new(move |l, s| fin(a(l, s) / k)),
        Bin::Rem if k == 0.0 => Box::new(|_, _| 0.0),
        Bin::Rem => Box::new(move |l, s| fin(a(l, s) % k)),
        _ => arith_node(op, a, move |_: &Lead, _: &[f64]| k),
    }
}

/// A comparison of two numbers, specialized for `op`, whose outcome `sel` turns into the
/// node's value (1/0 for a comparison, one of two constants for `cond ? a : b`), so the choice
/// costs no extra call.
fn cmp_node<A, B, S>(op: Bin, a: A, b: B, sel: S) -> Node
where
    A: Fn(&Lead, &[f64]) -> f64 + Send + Sync + 'static,
    B: Fn(&Lead, &[f64]) -> f64 + Send + Sync + 'static,
    S: Fn(bool) -> f64 + Send + Sync + 'static,
{
    match op {
        Bin::Gt => Box::new(move |l, s| sel(a(l, s) > b(l, s))),
        Bin::Ge => Box::new(move |l, s| sel(a(l, s) >= b(l, s))),
        Bin::Lt => Box::new(move |l, s| sel(a(l, s) < b(l, s))),
        Bin::Le => Box::new(move |l, s| sel(a(l, s) <= b(l, s))),
        Bin::Eq => Box::new(move |l, s| sel(a(l, s) == b(l, s))),
        _ => Box::new(move |l, s| sel(a(l, s) != b(l, s))),
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
    /// The chunks cut so far; chunk `i` fills slot `i`.
    chunks: Vec<Node>,
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
            None => Box::new(|_, _| 0.0),
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
            Arg::Num(x) => Box::new(move |_, _| x),
            Arg::Field(f) => with_num_field!(f, get => Box::new(get)),
            Arg::Attr(name) => Box::new(move |l, _| match attr_value(&name, l) {
                Some(serde_json::Value::Number(n)) => n.as_f64().unwrap_or(0.0),
                _ => attr_val(&name, l).num(),
            }),
            // A string literal: its truthiness, as [`Val::num`] reads it.
            leaf @ Arg::Str(_) => Box::new(move |l, s| leaf.val(l, s).num()),
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
                with_num_field!(f, get => cmp_node(op, get, move |_: &Lead, _: &[f64]| k, sel))
            }
            Test::Cmp(op, a, b) => {
                let nb = self.num(b);
                let na = self.num(a);
                cmp_node(op, na, nb, sel)
            }
            Test::CmpAny(op, Operand::Attr(i), Operand::Num(k)) => {
                // `attr_x > 500`: numeric attributes, the common case, skip `compare`.
                let (name, k) = (self.attr(i), self.konst(k));
                Box::new(move |l, _| {
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
                Box::new(move |l, s| sel(compare(op, va.val(l, s), vb.val(l, s))))
            }
            Test::TextEq(f, i, eq) => match (text_fn(f), self.strs.get(usize::from(i))) {
                (Some(get), Some(lit)) => {
                    let lit = lit.clone();
                    Box::new(move |l, _| sel(lit.matches(get(l)) == eq))
                }
                _ => {
                    let v = sel(!eq);
                    Box::new(move |_, _| v)
                }
            },
            Test::TagsEq(i, eq) => match self.strs.get(usize::from(i)) {
                Some(lit) => {
                    let lit = lit.clone();
                    Box::new(move |l, _| sel(l.tags.iter().any(|t| lit.eq_ci(t)) == eq))
                }
                None => {
                    let v = sel(!eq);
                    Box::new(move |_, _| v)
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
                Box::new(move |l, s| -a(l, s))
            }
            Op::Not(a) => {
                let a = self.num(a);
                Box::new(move |l, s| truth(a(l, s) == 0.0))
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
                Box::new(move |l, s| if nc(l, s) != 0.0 { na(l, s) } else { nb(l, s) })
            }
            Op::SelectK(c, a, b) => {
                let (a, b) = (self.konst(a), self.konst(b));
                match c {
                    Operand::Field(f) => {
                        with_num_field!(f, get => Box::new(move |l, s| if get(l, s) != 0.0 { a } else { b }))
                    }
                    c => {
                        let nc = self.num(c);
                        Box::new(move |l, s| if nc(l, s) != 0.0 { a } else { b })
                    }
                }
            }
        }
    }
}
