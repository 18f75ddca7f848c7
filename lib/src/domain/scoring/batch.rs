//! Scoring many leads at once: a [`RuleSet`] compiles a set of weighted rules into one flat
//! program over *columns*, and runs it over the leads in groups of [`LANES`].
//!
//! Scoring one lead at a time walks each rule's closure tree per lead: around twenty indirect
//! calls for three rules, and reads of the lead's heap data (its city, tags and attributes) that
//! depend on those calls, so the processor fetches them one after another. Here each instruction
//! runs as a tight loop over a whole group of leads: a leaf load reads one field or attribute of
//! 64 leads in a row (independent loads the processor overlaps, instead of a chain of misses), and
//! arithmetic, comparisons and selections are loops over 64 numbers with the operator chosen once
//! per group, which the compiler can unroll and vectorize. Leaves that
//! several rules of the set read (`rating`, an attribute) are loaded once per lead.
//!
//! The semantics are those of [`Expr::eval`] and [`super::score`], bit for bit: every value is
//! pure, so evaluating both sides of `&&`, `||` and `?:` gives what short-circuiting gives, and a
//! property test checks the two paths agree on random rule sets and leads.

use super::{
    Arg, Bin, Expr, Field, Op, Operand, StrConst, Test, arith, attr_val, attr_value, clamp_total,
    compare, fin, present, text_fn, truth,
};
use crate::domain::lead::{Lead, TextField};

/// Leads per group: enough to amortize choosing each instruction's loop, few enough that a
/// group's columns stay in the first-level cache and the leads just parsed in the second.
pub const LANES: usize = 64;

/// Most numbers the columns of one group may hold (512 KiB): a rule set of many long rules,
/// which needs thousands of columns, runs over smaller groups instead of taking more memory
/// (down to one lead per group, whose columns are then all the scratch there is).
const SCRATCH: usize = 1 << 16;

/// An instruction's input: a column computed earlier, or a constant.
#[derive(Debug, Clone, Copy)]
enum Src {
    Reg(usize),
    K(f64),
}

/// One instruction of a [`RuleSet`] program. Each writes column `dst`, always numbered above
/// the columns it reads (every column is written once), so inputs and output never alias.
enum Step {
    /// A field where a number is needed (`Field::num`).
    FieldNum { field: Field, dst: usize },
    /// A text field compared with a number: its numeric value when it parses as one, else its
    /// truthiness (`Val::cmp_num`).
    FieldCmp { field: Field, dst: usize },
    /// An attribute, found once per lead, in the views the program reads: as a number
    /// (`Val::num`) and compared with a number (`Val::cmp_num`).
    Attr {
        name: Box<str>,
        num: Option<usize>,
        cmp: Option<usize>,
    },
    /// A text field equals a literal (`Test::TextEq`): 1/0.
    TextEq {
        get: fn(&Lead) -> &str,
        lit: StrConst,
        eq: bool,
        dst: usize,
    },
    /// The tags hold a literal (`Test::TagsEq`): 1/0.
    TagsEq { lit: StrConst, eq: bool, dst: usize },
    /// Any other comparison of two leaves that may be text or lists, lead by lead: 1/0.
    Compare { op: Bin, a: Arg, b: Arg, dst: usize },
    /// `a op b` on numbers (`arith`).
    Arith { op: Bin, a: Src, b: Src, dst: usize },
    /// A comparison of numbers: 1/0.
    Cmp { op: Bin, a: Src, b: Src, dst: usize },
    /// `c ? a : b` on numbers.
    Select { c: Src, a: Src, b: Src, dst: usize },
    /// `-a`.
    Neg { a: Src, dst: usize },
    /// `!a`: 1/0.
    Not { a: Src, dst: usize },
    /// Adds a rule's value times its weight to the running total (column 0).
    Total { value: Src, weight: f64 },
}

/// A leaf already loaded into a column, so other rules of the set reuse it.
#[derive(PartialEq)]
enum Loaded {
    FieldNum(Field),
    FieldCmp(Field),
    AttrNum(Box<str>),
    AttrCmp(Box<str>),
}

/// Weighted rules compiled together for scoring many leads: the batch form of
/// [`super::score_weighted`], used where a whole page of leads is rescored.
///
/// Build one per rescoring pass with [`RuleSet::new`] and call [`RuleSet::scores`] with each
/// group of leads read.
pub struct RuleSet {
    /// The steps that read leads (each writes its own columns and reads no other), run first.
    loads: Vec<Step>,
    /// The steps that compute on columns, in order.
    steps: Vec<Step>,
    /// What the loads read, for reading only that from a stored lead (see `StoredLeads`).
    pub(super) needs: Needs,
    /// Columns the program uses, the total (column 0) included.
    pub(super) columns: usize,
    /// Leads per group: [`LANES`], or fewer when the program has too many columns.
    pub(super) lanes: usize,
}

impl RuleSet {
    /// Compiles the rules, each with its weight, in the order their contributions are summed.
    pub fn new<'e>(rules: impl IntoIterator<Item = (&'e Expr, f64)>) -> RuleSet {
        let mut set = RuleSet {
            loads: Vec::new(),
            steps: Vec::new(),
            needs: Needs::default(),
            columns: 1,
            lanes: LANES,
        };
        let mut loaded = Vec::new();
        for (expr, weight) in rules {
            let value = Compiler {
                set: &mut set,
                loaded: &mut loaded,
                expr,
                stack: Vec::new(),
            }
            .run();
            set.steps.push(Step::Total { value, weight });
        }
        set.lanes = (SCRATCH / set.columns).clamp(1, LANES);
        set
    }

    /// Each lead's score, in order: the same numbers as [`super::score_weighted`] gives lead by
    /// lead. Allocates its result and one scratch area per call, never per lead.
    pub fn scores(&self, leads: &[Lead]) -> Vec<f64> {
        let mut out = Vec::with_capacity(leads.len());
        let mut cols = vec![0.0f64; self.columns * self.lanes];
        for group in leads.chunks(self.lanes) {
            self.run(group, &mut cols);
            let total = cols.get(..group.len()).unwrap_or_default();
            out.extend(total.iter().map(|t| clamp_total(*t)));
        }
        out
    }

    /// Runs the program over one group of at most `self.lanes` leads; column 0 ends up
    /// holding their totals.
    fn run(&self, leads: &[Lead], cols: &mut [f64]) {
        let n = leads.len();
        for step in &self.loads {
            step.run(leads, cols, n, self.lanes);
        }
        self.compute(cols, n);
    }

    /// The columns the loads write (what the program reads of a lead), in program order.
    pub(super) fn loaded_columns(&self) -> Vec<usize> {
        self.loads.iter().flat_map(Step::loaded).collect()
    }

    /// Runs the loads on one lead, into `one` (one lane per column).
    pub(super) fn load_one(&self, lead: &Lead, one: &mut [f64]) {
        for step in &self.loads {
            step.run(std::slice::from_ref(lead), one, 1, 1);
        }
    }

    /// Runs the computing steps over one group whose loaded columns are already filled (the
    /// loads never write column 0, the totals this starts from zero).
    pub(super) fn compute(&self, cols: &mut [f64], n: usize) {
        if let Some(total) = cols.get_mut(..n) {
            total.fill(0.0);
        }
        for step in &self.steps {
            step.run(&[], cols, n, self.lanes);
        }
    }
}

/// The fields and attributes a rule set reads.
#[derive(Default)]
pub(super) struct Needs {
    /// Fields read, each once (the stored score is always read, so never listed).
    pub(super) fields: Vec<Field>,
    /// Attribute names read, each once.
    pub(super) attrs: Vec<Box<str>>,
}

impl Needs {
    fn field(&mut self, f: Field) {
        if f != Field::Score && !self.fields.contains(&f) {
            self.fields.push(f);
        }
    }

    fn attr(&mut self, name: &str) {
        if !self.attrs.iter().any(|a| **a == *name) {
            self.attrs.push(name.into());
        }
    }

    fn arg(&mut self, a: &Arg) {
        match a {
            Arg::Field(f) => self.field(*f),
            Arg::Attr(name) => self.attr(name),
            Arg::Num(_) | Arg::Str(_) | Arg::Node(_) => {}
        }
    }
}

impl Step {
    /// The columns this step writes, if it is a load (reads the lead).
    fn loaded(&self) -> impl Iterator<Item = usize> + '_ {
        let (a, b) = match self {
            Step::FieldNum { dst, .. }
            | Step::FieldCmp { dst, .. }
            | Step::TextEq { dst, .. }
            | Step::TagsEq { dst, .. }
            | Step::Compare { dst, .. } => (Some(*dst), None),
            Step::Attr { num, cmp, .. } => (*num, *cmp),
            _ => (None, None),
        };
        a.into_iter().chain(b)
    }
}

/// Turns one rule's bytecode into steps by running it symbolically: each instruction pops the
/// sources of its `Stack` operands (last operand first, as [`Expr::run`] pops them) and pushes
/// the column it writes.
struct Compiler<'s, 'e> {
    set: &'s mut RuleSet,
    /// Leaves the rules compiled so far load, and their columns.
    loaded: &'s mut Vec<(Loaded, usize)>,
    expr: &'e Expr,
    stack: Vec<Src>,
}

impl Compiler<'_, '_> {
    fn run(mut self) -> Src {
        for &op in self.expr.code.iter() {
            let v = self.op(op);
            self.stack.push(v);
        }
        self.pop()
    }

    fn column(&mut self) -> usize {
        self.set.columns += 1;
        self.set.columns - 1
    }

    fn emit(&mut self, step: impl FnOnce(usize) -> Step) -> Src {
        let dst = self.column();
        self.set.steps.push(step(dst));
        Src::Reg(dst)
    }

    /// As [`Compiler::emit`], for a step that reads the lead.
    fn emit_load(&mut self, step: impl FnOnce(usize) -> Step) -> Src {
        let dst = self.column();
        self.set.loads.push(step(dst));
        Src::Reg(dst)
    }

    fn pop(&mut self) -> Src {
        self.stack.pop().unwrap_or(Src::K(0.0))
    }

    fn konst(&self, i: u16) -> f64 {
        self.expr.konst(i)
    }

    fn lit(&self, i: u16) -> Option<&StrConst> {
        self.expr.strs.get(usize::from(i))
    }

    fn attr_name(&self, i: u16) -> Box<str> {
        self.expr
            .attrs
            .get(usize::from(i))
            .cloned()
            .unwrap_or_default()
    }

    /// The column holding `leaf`, loading it first if no rule of the set has yet.
    fn load(&mut self, leaf: Loaded) -> Src {
        if let Some((_, c)) = self.loaded.iter().find(|(l, _)| *l == leaf) {
            return Src::Reg(*c);
        }
        let dst = self.column();
        match &leaf {
            Loaded::FieldNum(field) => {
                self.set.needs.field(*field);
                self.set.loads.push(Step::FieldNum { field: *field, dst })
            }
            Loaded::FieldCmp(field) => {
                self.set.needs.field(*field);
                self.set.loads.push(Step::FieldCmp { field: *field, dst })
            }
            Loaded::AttrNum(name) | Loaded::AttrCmp(name) => {
                self.set.needs.attr(name);
                let is_num = matches!(leaf, Loaded::AttrNum(_));
                // One lookup per lead serves both views of the attribute.
                let existing = self.set.loads.iter_mut().find_map(|s| match s {
                    Step::Attr { name: n, num, cmp } if n == name => Some((num, cmp)),
                    _ => None,
                });
                match existing {
                    Some((num, _)) if is_num => *num = Some(dst),
                    Some((_, cmp)) => *cmp = Some(dst),
                    None => self.set.loads.push(Step::Attr {
                        name: name.clone(),
                        num: is_num.then_some(dst),
                        cmp: (!is_num).then_some(dst),
                    }),
                }
            }
        }
        self.loaded.push((leaf, dst));
        Src::Reg(dst)
    }

    /// An operand where a number is needed (`Expr::leaf_num`).
    fn num(&mut self, o: Operand) -> Src {
        match o {
            Operand::Stack => self.pop(),
            Operand::Num(i) => Src::K(self.konst(i)),
            Operand::Str(i) => Src::K(self.lit(i).map_or(0.0, |s| truth(!s.text.is_empty()))),
            Operand::Field(f) => self.load(Loaded::FieldNum(f)),
            Operand::Attr(i) => {
                let name = self.attr_name(i);
                self.load(Loaded::AttrNum(name))
            }
        }
    }

    /// An operand compared with a number (`Val::cmp_num`).
    fn cmp(&mut self, o: Operand) -> Src {
        match o {
            Operand::Str(i) => Src::K(
                self.lit(i)
                    .map_or(0.0, |s| s.num.unwrap_or(truth(!s.text.is_empty()))),
            ),
            Operand::Field(f) if !f.is_numeric() && f != Field::Tags => {
                self.load(Loaded::FieldCmp(f))
            }
            Operand::Attr(i) => {
                let name = self.attr_name(i);
                self.load(Loaded::AttrCmp(name))
            }
            o => self.num(o),
        }
    }

    /// A leaf of a comparison between two values that may be text or lists.
    fn arg(&self, o: Operand) -> Arg {
        match o {
            Operand::Num(i) => Arg::Num(self.konst(i)),
            Operand::Str(i) => match self.lit(i) {
                Some(s) => Arg::Str(s.clone()),
                None => Arg::Num(0.0),
            },
            Operand::Field(f) => Arg::Field(f),
            Operand::Attr(i) => Arg::Attr(self.attr_name(i)),
            Operand::Stack => Arg::Num(0.0),
        }
    }

    /// A comparison, as a column of 1/0.
    fn test(&mut self, t: Test) -> Src {
        match t {
            Test::Cmp(op, a, b) => {
                let b = self.num(b);
                let a = self.num(a);
                self.emit(|dst| Step::Cmp { op, a, b, dst })
            }
            Test::CmpAny(op, a, b) if is_number(a) || is_number(b) => {
                // Against a number, `compare` is a numeric comparison of both sides' `cmp_num`.
                let b = self.cmp(b);
                let a = self.cmp(a);
                self.emit(|dst| Step::Cmp { op, a, b, dst })
            }
            Test::CmpAny(op, a, b) => {
                let (a, b) = (self.arg(a), self.arg(b));
                self.set.needs.arg(&a);
                self.set.needs.arg(&b);
                self.emit_load(|dst| Step::Compare { op, a, b, dst })
            }
            Test::TextEq(f, i, eq) => match (text_fn(f), self.lit(i).cloned()) {
                (Some(get), Some(lit)) => {
                    self.set.needs.field(f);
                    self.emit_load(|dst| Step::TextEq { get, lit, eq, dst })
                }
                _ => Src::K(truth(!eq)),
            },
            Test::TagsEq(i, eq) => match self.lit(i).cloned() {
                Some(lit) => {
                    self.set.needs.field(Field::Tags);
                    self.emit_load(|dst| Step::TagsEq { lit, eq, dst })
                }
                None => Src::K(truth(!eq)),
            },
        }
    }

    fn op(&mut self, op: Op) -> Src {
        match op {
            Op::Push(a) => self.num(a),
            Op::Neg(a) => {
                let a = self.num(a);
                self.emit(|dst| Step::Neg { a, dst })
            }
            Op::Not(a) => {
                let a = self.num(a);
                self.emit(|dst| Step::Not { a, dst })
            }
            Op::Arith(op, a, b) => {
                let b = self.num(b);
                let a = self.num(a);
                self.emit(|dst| Step::Arith { op, a, b, dst })
            }
            Op::ArithSS(op) => {
                let b = self.pop();
                let a = self.pop();
                self.emit(|dst| Step::Arith { op, a, b, dst })
            }
            Op::ArithFK(op, f, k) => {
                let a = self.load(Loaded::FieldNum(f));
                let b = Src::K(self.konst(k));
                self.emit(|dst| Step::Arith { op, a, b, dst })
            }
            Op::ArithSK(op, k) => {
                let a = self.pop();
                let b = Src::K(self.konst(k));
                self.emit(|dst| Step::Arith { op, a, b, dst })
            }
            Op::Test(t) => self.test(t),
            Op::TestK(t, a, b) => {
                let c = self.test(t);
                let (a, b) = (Src::K(self.konst(a)), Src::K(self.konst(b)));
                self.emit(|dst| Step::Select { c, a, b, dst })
            }
            Op::Select(c, a, b) => {
                let b = self.num(b);
                let a = self.num(a);
                let c = self.num(c);
                self.emit(|dst| Step::Select { c, a, b, dst })
            }
            Op::SelectK(c, a, b) => {
                let c = self.num(c);
                let (a, b) = (Src::K(self.konst(a)), Src::K(self.konst(b)));
                self.emit(|dst| Step::Select { c, a, b, dst })
            }
        }
    }
}

/// Whether the operand is always a number at run time (then `compare` is numeric).
fn is_number(o: Operand) -> bool {
    match o {
        Operand::Stack | Operand::Num(_) => true,
        Operand::Field(f) => f.is_numeric(),
        Operand::Str(_) | Operand::Attr(_) => false,
    }
}

/// The columns a step reads: `stride` numbers each, one per lane.
#[derive(Clone, Copy)]
struct Inputs<'a> {
    data: &'a [f64],
    stride: usize,
}

impl<'a> Inputs<'a> {
    /// The first `n` lanes of column `c`; empty if out of range (cannot happen: see [`Step`]).
    fn column(self, c: usize, n: usize) -> &'a [f64] {
        let start = c * self.stride;
        self.data.get(start..start + n).unwrap_or_default()
    }

    /// Lane `i` of `s`.
    fn lane(self, s: Src, i: usize) -> f64 {
        match s {
            Src::Reg(r) => self.data.get(r * self.stride + i).copied().unwrap_or(0.0),
            Src::K(k) => k,
        }
    }
}

/// Splits the columns into the inputs of a step and its output column `dst`, cut to `n` lanes.
/// Every input is numbered below `dst` (see [`Step`]), so inputs come from the first part.
fn split(cols: &mut [f64], dst: usize, n: usize, stride: usize) -> (Inputs<'_>, &mut [f64]) {
    let (data, rest) = cols.split_at_mut((dst * stride).min(cols.len()));
    let len = n.min(rest.len());
    let (out, _) = rest.split_at_mut(len);
    (Inputs { data, stride }, out)
}

/// `out[i] = f(a[i])`.
#[inline(always)]
fn map1(inputs: Inputs<'_>, out: &mut [f64], a: Src, f: impl Fn(f64) -> f64) {
    match a {
        Src::Reg(a) => {
            let xs = inputs.column(a, out.len());
            for (o, x) in out.iter_mut().zip(xs) {
                *o = f(*x);
            }
        }
        Src::K(x) => out.fill(f(x)),
    }
}

/// `out[i] = f(a[i], b[i])`, with the constant cases hoisted out of the loop.
#[inline(always)]
fn map2(inputs: Inputs<'_>, out: &mut [f64], a: Src, b: Src, f: impl Fn(f64, f64) -> f64) {
    let n = out.len();
    match (a, b) {
        (Src::Reg(a), Src::Reg(b)) => {
            let (xs, ys) = (inputs.column(a, n), inputs.column(b, n));
            for ((o, x), y) in out.iter_mut().zip(xs).zip(ys) {
                *o = f(*x, *y);
            }
        }
        (Src::Reg(a), Src::K(y)) => {
            for (o, x) in out.iter_mut().zip(inputs.column(a, n)) {
                *o = f(*x, y);
            }
        }
        (Src::K(x), Src::Reg(b)) => {
            for (o, y) in out.iter_mut().zip(inputs.column(b, n)) {
                *o = f(x, *y);
            }
        }
        (Src::K(x), Src::K(y)) => out.fill(f(x, y)),
    }
}

/// `out[i] = c[i] != 0 ? a[i] : b[i]`.
#[inline(always)]
fn select(inputs: Inputs<'_>, out: &mut [f64], c: Src, a: Src, b: Src) {
    let n = out.len();
    match c {
        Src::K(c) => map1(inputs, out, if c != 0.0 { a } else { b }, |x| x),
        Src::Reg(c) => {
            let cs = inputs.column(c, n);
            match (a, b) {
                (Src::K(a), Src::K(b)) => {
                    for (o, c) in out.iter_mut().zip(cs) {
                        *o = if *c != 0.0 { a } else { b };
                    }
                }
                _ => {
                    for (i, (o, c)) in out.iter_mut().zip(cs).enumerate() {
                        *o = if *c != 0.0 {
                            inputs.lane(a, i)
                        } else {
                            inputs.lane(b, i)
                        };
                    }
                }
            }
        }
    }
}

/// Fills `out` with `f` of each lead.
#[inline(always)]
fn each(leads: &[Lead], out: &mut [f64], f: impl Fn(&Lead) -> f64) {
    for (o, l) in out.iter_mut().zip(leads) {
        *o = f(l);
    }
}

impl Step {
    /// Runs the step over the first `n` lanes of `cols` (each column `stride` lanes wide).
    fn run(&self, leads: &[Lead], cols: &mut [f64], n: usize, stride: usize) {
        match self {
            Step::FieldNum { field, dst } => {
                let (_, out) = split(cols, *dst, n, stride);
                with_num_field!(*field, get => each(leads, out, get));
            }
            Step::FieldCmp { field, dst } => {
                let (_, out) = split(cols, *dst, n, stride);
                each(leads, out, |l| field.get(l).cmp_num());
            }
            Step::Attr { name, num, cmp } => {
                for (i, l) in leads.iter().enumerate() {
                    let (x, y) = match attr_value(name, l) {
                        Some(serde_json::Value::Number(v)) => {
                            let x = v.as_f64().unwrap_or(0.0);
                            (x, x)
                        }
                        _ => {
                            let v = attr_val(name, l);
                            (v.num(), v.cmp_num())
                        }
                    };
                    if let Some(slot) = num.and_then(|c| cols.get_mut(c * stride + i)) {
                        *slot = x;
                    }
                    if let Some(slot) = cmp.and_then(|c| cols.get_mut(c * stride + i)) {
                        *slot = y;
                    }
                }
            }
            Step::TextEq { get, lit, eq, dst } => {
                let (_, out) = split(cols, *dst, n, stride);
                each(leads, out, |l| truth(lit.matches(get(l)) == *eq));
            }
            Step::TagsEq { lit, eq, dst } => {
                let (_, out) = split(cols, *dst, n, stride);
                each(leads, out, |l| {
                    truth(l.tags.iter().any(|t| lit.eq_ci(t)) == *eq)
                });
            }
            Step::Compare { op, a, b, dst } => {
                let (_, out) = split(cols, *dst, n, stride);
                each(leads, out, |l| truth(compare(*op, a.val(l), b.val(l))));
            }
            Step::Arith { op, a, b, dst } => {
                let (inputs, out) = split(cols, *dst, n, stride);
                let (a, b) = (*a, *b);
                match op {
                    Bin::Add => map2(inputs, out, a, b, |x, y| fin(x + y)),
                    Bin::Sub => map2(inputs, out, a, b, |x, y| fin(x - y)),
                    Bin::Mul => map2(inputs, out, a, b, |x, y| fin(x * y)),
                    Bin::Div => map2(inputs, out, a, b, |x, y| arith(Bin::Div, x, y)),
                    Bin::Rem => map2(inputs, out, a, b, |x, y| arith(Bin::Rem, x, y)),
                    Bin::And => map2(inputs, out, a, b, |x, y| truth(x != 0.0 && y != 0.0)),
                    Bin::Or => map2(inputs, out, a, b, |x, y| truth(x != 0.0 || y != 0.0)),
                    op => compare_columns(*op, inputs, out, a, b),
                }
            }
            Step::Cmp { op, a, b, dst } => {
                let (inputs, out) = split(cols, *dst, n, stride);
                compare_columns(*op, inputs, out, *a, *b);
            }
            Step::Select { c, a, b, dst } => {
                let (inputs, out) = split(cols, *dst, n, stride);
                select(inputs, out, *c, *a, *b);
            }
            Step::Neg { a, dst } => {
                let (inputs, out) = split(cols, *dst, n, stride);
                map1(inputs, out, *a, |x| -x);
            }
            Step::Not { a, dst } => {
                let (inputs, out) = split(cols, *dst, n, stride);
                map1(inputs, out, *a, |x| truth(x == 0.0));
            }
            Step::Total { value, weight } => {
                let (total, rest) = cols.split_at_mut(stride.min(cols.len()));
                let w = *weight;
                let add = |t: &mut f64, v: f64| *t += (fin(v) + 0.0) * w;
                match *value {
                    Src::Reg(r) => {
                        // Column `r` is above column 0, so it sits in `rest`, shifted by one.
                        let rest = Inputs { data: rest, stride };
                        let vs = rest.column(r.wrapping_sub(1), n);
                        for (t, v) in total.iter_mut().zip(vs) {
                            add(t, *v);
                        }
                    }
                    Src::K(v) => total.iter_mut().take(n).for_each(|t| add(t, v)),
                }
            }
        }
    }
}

/// `out[i] = a[i] op b[i]` for a comparison operator, as 1/0.
#[inline(always)]
fn compare_columns(op: Bin, inputs: Inputs<'_>, out: &mut [f64], a: Src, b: Src) {
    match op {
        Bin::Gt => map2(inputs, out, a, b, |x, y| truth(x > y)),
        Bin::Ge => map2(inputs, out, a, b, |x, y| truth(x >= y)),
        Bin::Lt => map2(inputs, out, a, b, |x, y| truth(x < y)),
        Bin::Le => map2(inputs, out, a, b, |x, y| truth(x <= y)),
        Bin::Eq => map2(inputs, out, a, b, |x, y| truth(x == y)),
        // `Ne`, and what `num_test` makes of any other operator.
        _ => map2(inputs, out, a, b, |x, y| truth(x != y)),
    }
}
