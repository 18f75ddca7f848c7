//! The compiled form and the code generator: what the parser hands over, operation by
//! operation, becomes straight-line bytecode over a value stack, with constant sub-expressions
//! folded and the common shapes fused into single instructions.

use super::eval::{Val, apply_bin, const_val, is_comparison, parse_text_num, truth};
use super::lexer::err_at;
use crate::domain::lead::TextField;
use crate::error::Result;

/// Largest evaluation stack an expression may need (well above what
/// [`MAX_NESTING`](super::MAX_NESTING) allows).
pub(super) const MAX_STACK: usize = 512;

/// A lead field an expression can read.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Field {
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

impl Field {
    /// The field an identifier names, if any.
    pub(super) fn parse(name: &str) -> Option<Field> {
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
}

/// Where an instruction takes an input from: the evaluation stack or a leaf resolved at parse
/// time. Leaves are read directly, never pushed, which keeps the bytecode short.
#[derive(Debug, Clone, Copy, PartialEq)]
pub(super) enum Operand {
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
pub(super) enum Bin {
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
pub(super) enum Op {
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
pub(super) enum Test {
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

/// A string literal, with what comparing against it needs worked out once.
#[derive(Debug, Clone, PartialEq)]
pub(super) struct StrConst {
    pub(super) text: Box<str>,
    /// The literal's numeric value when it parses as a finite number.
    pub(super) num: Option<f64>,
    /// Whether the literal is all ASCII (enables [`eq_ci_ascii`](super::eval::eq_ci_ascii)).
    pub(super) ascii: bool,
    /// Whether the literal has a `k` or `K`: the only letter a longer, non-ASCII text can match
    /// (U+212A KELVIN SIGN lowercases to `k`; a unit test checks no other char does this).
    pub(super) has_k: bool,
}

impl StrConst {
    pub(super) fn new(text: String) -> StrConst {
        StrConst {
            num: parse_text_num(&text),
            ascii: text.is_ascii(),
            has_k: text.contains(['k', 'K']),
            text: text.into(),
        }
    }
}

/// The bytecode being generated and its pools. Each generating method returns an [`Operand`]:
/// a leaf that has not been emitted (a constant, field or attribute), or [`Operand::Stack`] when
/// the emitted code has pushed the value.
#[derive(Default)]
pub(super) struct Code {
    pub(super) code: Vec<Op>,
    pub(super) nums: Vec<f64>,
    pub(super) strs: Vec<StrConst>,
    pub(super) attrs: Vec<Box<str>>,
    /// Values on the evaluation stack at this point of the code.
    sp: usize,
    /// Most values the evaluation stack ever holds.
    pub(super) max_sp: usize,
}

impl Code {
    fn idx(n: usize, pos: usize) -> Result<u16> {
        u16::try_from(n).map_err(|_| err_at("expression too complex", pos))
    }

    /// A number constant.
    pub(super) fn num(&mut self, x: f64, pos: usize) -> Result<Operand> {
        let i = Self::idx(self.nums.len(), pos)?;
        self.nums.push(x);
        Ok(Operand::Num(i))
    }

    /// A string literal.
    pub(super) fn str(&mut self, s: String, pos: usize) -> Result<Operand> {
        let i = Self::idx(self.strs.len(), pos)?;
        self.strs.push(StrConst::new(s));
        Ok(Operand::Str(i))
    }

    /// An attribute; repeated names share one pool slot.
    pub(super) fn attr(&mut self, name: &str, pos: usize) -> Result<Operand> {
        let i = match self.attrs.iter().position(|a| **a == *name) {
            Some(i) => Self::idx(i, pos)?,
            None => {
                let i = Self::idx(self.attrs.len(), pos)?;
                self.attrs.push(name.into());
                i
            }
        };
        Ok(Operand::Attr(i))
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

    /// Ends the code with `root`'s value on the stack; `end` is the position reported when the
    /// expression needs more stack than evaluation has.
    pub(super) fn finish(&mut self, root: Operand, end: usize) -> Result<()> {
        if root != Operand::Stack {
            self.emit(Op::Push(root), 0)?;
        }
        if self.max_sp > MAX_STACK {
            return Err(err_at("too complex to evaluate", end));
        }
        Ok(())
    }

    /// The value of a constant operand, for folding.
    fn const_val(&self, o: Operand) -> Option<Val<'_>> {
        const_val(&self.nums, &self.strs, o)
    }

    /// `cond ? a : b`.
    pub(super) fn select(
        &mut self,
        cond: Operand,
        a: Operand,
        b: Operand,
        pos: usize,
    ) -> Result<Operand> {
        // A constant condition with leaf branches folds to the chosen branch (as a number).
        let chosen = match self.const_val(cond) {
            Some(c) if a != Operand::Stack && b != Operand::Stack => {
                Some(if c.num() != 0.0 { a } else { b })
            }
            _ => None,
        };
        match chosen {
            Some(o) => match self.const_val(o).map(Val::num) {
                Some(x) => self.num(x, pos),
                None => self.emit(Op::Push(o), pos),
            },
            None => match (a, b) {
                (Operand::Num(x), Operand::Num(y)) => {
                    // The condition, when computed, was pushed by the last instruction: fuse a
                    // comparison into the choice.
                    match (cond, self.code.last().copied()) {
                        (Operand::Stack, Some(Op::Test(t))) => {
                            self.code.pop();
                            self.sp = self.sp.saturating_sub(1) + t.pops();
                            self.emit(Op::TestK(t, x, y), pos)
                        }
                        _ => self.emit(Op::SelectK(cond, x, y), pos),
                    }
                }
                _ => self.emit(Op::Select(cond, a, b), pos),
            },
        }
    }

    /// `-v` (`neg`) or `!v`, folded when `v` is a constant.
    pub(super) fn unary(&mut self, neg: bool, v: Operand, pos: usize) -> Result<Operand> {
        let folded = self
            .const_val(v)
            .map(|c| if neg { -c.num() } else { truth(c.num() == 0.0) });
        if let Some(x) = folded {
            return self.num(x, pos);
        }
        self.emit(if neg { Op::Neg(v) } else { Op::Not(v) }, pos)
    }

    /// A binary operation, folded when both sides are constants.
    pub(super) fn bin(&mut self, op: Bin, a: Operand, b: Operand, pos: usize) -> Result<Operand> {
        if let (Some(va), Some(vb)) = (self.const_val(a), self.const_val(b)) {
            let x = apply_bin(op, va, vb);
            return self.num(x, pos);
        }
        let numeric = |o: Operand| match o {
            Operand::Stack | Operand::Num(_) => true,
            Operand::Field(f) => f.is_numeric(),
            Operand::Str(_) | Operand::Attr(_) => false,
        };
        let text_field = |o: Operand| match o {
            Operand::Field(f @ (Field::Name | Field::Source | Field::Status | Field::Text(_))) => {
                Some(f)
            }
            _ => None,
        };
        let text_eq = match (a, b) {
            (x, Operand::Str(i)) | (Operand::Str(i), x) => text_field(x).map(|f| (f, i)),
            _ => None,
        };
        let code = if !is_comparison(op) {
            match (a, b) {
                (Operand::Stack, Operand::Stack) => Op::ArithSS(op),
                (Operand::Field(f), Operand::Num(k)) if f.is_numeric() => Op::ArithFK(op, f, k),
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
