//! A small classic-BPF assembler with symbolic forward labels.
//!
//! Conditional jumps in classic BPF carry 8-bit offsets, so a target more than 255 instructions
//! ahead is out of reach. The assembler lays the program out, and every conditional jump whose
//! true or false target is too far becomes a conditional jump to an adjacent `ja` (32-bit
//! offset). Widening only moves code further apart, so repeating the layout until nothing else
//! needs widening terminates and leaves every offset in range, however long the program.

use libc::sock_filter;

/// A position in the program, bound once with [`Asm::bind`]; only forward jumps exist in BPF.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(super) struct Label(usize);

/// The conditional jumps the compiler uses, all comparing A with the constant k (unsigned).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(super) enum Cond {
    Eq,
    Gt,
    Ge,
}

impl Cond {
    fn code(self) -> u16 {
        let op = match self {
            Cond::Eq => libc::BPF_JEQ,
            Cond::Gt => libc::BPF_JGT,
            Cond::Ge => libc::BPF_JGE,
        };
        (libc::BPF_JMP | op | libc::BPF_K) as u16
    }
}

enum Item {
    /// A one-instruction statement that does not jump (load, ALU, return).
    Stmt(sock_filter),
    Jump {
        cond: Cond,
        k: u32,
        jt: Label,
        jf: Label,
    },
    Ja(Label),
    Bind(Label),
}

#[derive(Default)]
pub(super) struct Asm {
    items: Vec<Item>,
    labels: usize,
}

/// A layout bug (a jump to an unbound or earlier label); never caused by user input.
#[derive(Debug)]
pub(super) struct LayoutError(pub &'static str);

const fn stmt(code: u32, k: u32) -> sock_filter {
    sock_filter { code: code as u16, jt: 0, jf: 0, k }
}

impl Asm {
    pub(super) fn label(&mut self) -> Label {
        self.labels += 1;
        Label(self.labels - 1)
    }

    pub(super) fn bind(&mut self, label: Label) {
        self.items.push(Item::Bind(label));
    }

    /// A = the 32-bit word at `offset` in struct seccomp_data.
    pub(super) fn load(&mut self, offset: u32) {
        self.items.push(Item::Stmt(stmt(libc::BPF_LD | libc::BPF_W | libc::BPF_ABS, offset)));
    }

    /// A &= k.
    pub(super) fn and(&mut self, k: u32) {
        self.items.push(Item::Stmt(stmt(libc::BPF_ALU | libc::BPF_AND | libc::BPF_K, k)));
    }

    pub(super) fn ret(&mut self, k: u32) {
        self.items.push(Item::Stmt(stmt(libc::BPF_RET | libc::BPF_K, k)));
    }

    pub(super) fn jump(&mut self, cond: Cond, k: u32, jt: Label, jf: Label) {
        self.items.push(Item::Jump { cond, k, jt, jf });
    }

    pub(super) fn ja(&mut self, target: Label) {
        self.items.push(Item::Ja(target));
    }

    /// Instructions before any widening: a lower bound of the program's length.
    pub(super) fn min_len(&self) -> usize {
        self.items.iter().filter(|i| !matches!(i, Item::Bind(_))).count()
    }

    pub(super) fn assemble(&self) -> Result<Vec<sock_filter>, LayoutError> {
        // Per jump item: whether its true / false arm goes through a `ja`.
        let mut far = vec![(false, false); self.items.len()];
        let mut at = vec![usize::MAX; self.labels];
        let mut addrs = vec![0usize; self.items.len()];
        loop {
            let mut addr = 0;
            for (i, item) in self.items.iter().enumerate() {
                addrs[i] = addr;
                addr += match item {
                    Item::Bind(label) => {
                        at[label.0] = addr;
                        0
                    }
                    Item::Stmt(_) | Item::Ja(_) => 1,
                    Item::Jump { .. } => 1 + far[i].0 as usize + far[i].1 as usize,
                };
            }
            let mut widened = false;
            for (i, item) in self.items.iter().enumerate() {
                if let Item::Jump { jt, jf, .. } = item {
                    let next = addrs[i] + 1;
                    if !far[i].0 && forward(&at, *jt, next)? > 255 {
                        far[i].0 = true;
                        widened = true;
                    }
                    if !far[i].1 && forward(&at, *jf, next)? > 255 {
                        far[i].1 = true;
                        widened = true;
                    }
                }
            }
            if !widened {
                break;
            }
        }

        let mut out = Vec::with_capacity(self.items.len());
        for (i, item) in self.items.iter().enumerate() {
            let next = addrs[i] + 1;
            match item {
                Item::Bind(_) => {}
                Item::Stmt(insn) => out.push(*insn),
                Item::Ja(target) => {
                    let off = forward(&at, *target, next)?;
                    out.push(stmt(libc::BPF_JMP | libc::BPF_JA, off as u32));
                }
                Item::Jump { cond, k, jt, jf } => {
                    let (far_t, far_f) = far[i];
                    // The `ja` trampolines sit right after the conditional jump: true arm's
                    // first, then the false arm's.
                    let t = if far_t { 0 } else { forward(&at, *jt, next)? };
                    let f = if far_f { far_t as usize } else { forward(&at, *jf, next)? };
                    out.push(sock_filter { code: cond.code(), jt: t as u8, jf: f as u8, k: *k });
                    let mut tramp = next;
                    for (is_far, target) in [(far_t, jt), (far_f, jf)] {
                        if is_far {
                            let off = forward(&at, *target, tramp + 1)?;
                            out.push(stmt(libc::BPF_JMP | libc::BPF_JA, off as u32));
                            tramp += 1;
                        }
                    }
                }
            }
        }
        Ok(out)
    }
}

/// Offset of `label` from the instruction at `from` (the one after the jump).
fn forward(at: &[usize], label: Label, from: usize) -> Result<usize, LayoutError> {
    let target = at[label.0];
    if target == usize::MAX {
        return Err(LayoutError("jump to an unbound label"));
    }
    target.checked_sub(from).ok_or(LayoutError("backward jump"))
}
