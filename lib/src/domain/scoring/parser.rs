//! The parser: the grammar of the module documentation by precedence climbing, in one pass
//! that hands each operation to the code generator as soon as its operands are known, so no
//! syntax tree is built. It bounds nesting (and so its own recursion) by
//! [`MAX_NESTING`](super::MAX_NESTING).

use super::MAX_NESTING;
use super::compiler::{Bin, Code, Field, Operand};
use super::lexer::{Punct, Tok, Token, err_at, lex, shorten, unexpected};
use crate::error::{Error, Result};

/// Longest attribute name, as in [`crate::domain::lead::validate_attr_name`].
const MAX_ATTR_NAME: usize = 64;

/// Parses and compiles `src` (already checked against [`MAX_EXPR_LEN`](super::MAX_EXPR_LEN)).
pub(super) fn parse(src: &str) -> Result<Code> {
    let mut p = Parser {
        toks: lex(src)?,
        i: 0,
        out: Code::default(),
    };
    if matches!(p.peek().tok, Tok::Eof) {
        return Err(Error::invalid("expression: empty expression at position 0"));
    }
    let root = p.ternary(0)?;
    let end = p.peek();
    if !matches!(end.tok, Tok::Eof) {
        return Err(unexpected(&end));
    }
    p.out.finish(root, end.pos)?;
    Ok(p.out)
}

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

/// The operator a binary operator token stands for.
pub(super) fn bin_of(p: Punct) -> Bin {
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

struct Parser<'a> {
    toks: Vec<Token<'a>>,
    i: usize,
    out: Code,
}

const EOF_TOKEN: Token<'static> = Token {
    tok: Tok::Eof,
    pos: 0,
    text: "",
};

impl<'a> Parser<'a> {
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
        self.out.select(cond, a, b, q)
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
            lhs = self.out.bin(bin_of(p), lhs, rhs, pos)?;
        }
        Ok(lhs)
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
        self.out.unary(p == Some(Punct::Minus), v, pos)
    }

    fn primary(&mut self, depth: usize) -> Result<Operand> {
        let t = self.peek();
        match t.tok {
            Tok::Num(x) => {
                self.advance();
                self.out.num(x, t.pos)
            }
            Tok::Str(s) => {
                self.advance();
                self.out.str(s, t.pos)
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
            "true" => return self.out.num(1.0, pos),
            "false" => return self.out.num(0.0, pos),
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
            return self.out.attr(attr, pos);
        }
        Field::parse(name)
            .map(Operand::Field)
            .ok_or_else(|| err_at(format_args!("unknown field '{}'", shorten(name)), pos))
    }
}
