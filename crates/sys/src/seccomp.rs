//! seccomp-bpf, written from scratch: compile a syscall filter into a classic BPF program and
//! install it with seccomp(2); answer user notifications.
//!
//! The program's shape:
//!
//! ```text
//!   A = seccomp_data.arch          ; one `jeq` per allowed audit arch token
//!   ret KILL_PROCESS               ; any other ABI
//! per arch section:
//!   A = seccomp_data.nr
//!   (x86_64 token) nr >= x32 bit?  ; -> the x32 section if x32 is listed, else KILL_PROCESS
//!   search tree on nr              ; ranges of numbers with one outcome -> a `ret` or a block
//!   ret ...                        ; the section's returns, close to the tree's jumps
//!   rule blocks                    ; argument checks, the syscall's rules in order, first
//!                                  ; match wins, then the default action
//! ```
//!
//! Every listed arch with a syscall table (x86_64, x86, x32, aarch64, arm) gets a section
//! that resolves names with its own numbers, as libseccomp does; a listed arch without a table
//! gets the default action for all its syscalls. The native arch is always included.

mod bpf;
mod tables;
#[cfg(test)]
mod tests;

use std::collections::BTreeMap;
use std::io;
use std::os::fd::{AsRawFd, BorrowedFd, FromRawFd, OwnedFd, RawFd};
use std::sync::OnceLock;

pub use libc::sock_filter;

use bpf::{Asm, Cond, Label};

/// The kernel's limit on the length of one filter program (BPF_MAXINSNS).
pub const MAX_INSNS: usize = 4096;

/// Set in seccomp_data.nr for syscalls made through the x32 ABI (whose arch token is x86_64's).
pub const X32_SYSCALL_BIT: u32 = 0x4000_0000;

// Offsets into struct seccomp_data.
const OFF_NR: u32 = 0;
const OFF_ARCH: u32 = 4;
const OFF_ARGS: u32 = 16;

/// What the kernel does when the filter returns for a syscall.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Action {
    /// Kill the calling thread (SCMP_ACT_KILL / SCMP_ACT_KILL_THREAD).
    KillThread,
    KillProcess,
    /// Send SIGSYS to the thread.
    Trap,
    /// Fail the syscall with this errno (16-bit).
    Errno(u32),
    /// Hand the syscall to a ptrace tracer with this 16-bit message.
    Trace(u32),
    Allow,
    /// Allow and log.
    Log,
    /// Ask the user-space supervisor holding the listener fd.
    Notify,
}

impl Action {
    /// The SECCOMP_RET_* value the BPF program returns; `None` when the errno or trace data
    /// does not fit the 16-bit SECCOMP_RET_DATA field.
    pub fn ret_value(self) -> Option<u32> {
        let data = |v: u32| (v <= libc::SECCOMP_RET_DATA).then_some(v);
        Some(match self {
            Action::KillThread => libc::SECCOMP_RET_KILL_THREAD,
            Action::KillProcess => libc::SECCOMP_RET_KILL_PROCESS,
            Action::Trap => libc::SECCOMP_RET_TRAP,
            Action::Errno(e) => libc::SECCOMP_RET_ERRNO | data(e)?,
            Action::Trace(d) => libc::SECCOMP_RET_TRACE | data(d)?,
            Action::Allow => libc::SECCOMP_RET_ALLOW,
            Action::Log => libc::SECCOMP_RET_LOG,
            Action::Notify => libc::SECCOMP_RET_USER_NOTIF,
        })
    }
}

/// Unsigned comparison of a syscall argument with `ArgCmp::value`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum CmpOp {
    Ne,
    Lt,
    Le,
    Eq,
    Ge,
    Gt,
    /// `arg & value == value_two` (libseccomp's SCMP_CMP_MASKED_EQ: value is the mask).
    MaskedEq,
}

/// One condition on one syscall argument; all conditions of a rule must hold.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct ArgCmp {
    /// Argument number, 0..=5.
    pub index: u8,
    pub value: u64,
    /// Only used by [`CmpOp::MaskedEq`].
    pub value_two: u64,
    pub op: CmpOp,
}

impl ArgCmp {
    /// Whether a 64-bit argument value satisfies the condition (the kernel-independent meaning
    /// the BPF code implements).
    pub fn matches(&self, arg: u64) -> bool {
        match self.op {
            CmpOp::Ne => arg != self.value,
            CmpOp::Lt => arg < self.value,
            CmpOp::Le => arg <= self.value,
            CmpOp::Eq => arg == self.value,
            CmpOp::Ge => arg >= self.value,
            CmpOp::Gt => arg > self.value,
            CmpOp::MaskedEq => arg & self.value == self.value_two,
        }
    }
}

/// Syscalls (by name) that get `action` when every condition in `args` holds.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Rule {
    pub syscalls: Vec<String>,
    pub action: Action,
    /// Overrides the errno of [`Action::Errno`] or the message of [`Action::Trace`]; an error
    /// with any other action.
    pub errno: Option<u32>,
    pub args: Vec<ArgCmp>,
}

/// A syscall ABI, named as libseccomp names them.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Arch {
    X86,
    X86_64,
    /// The x32 ABI: x86_64's audit token with [`X32_SYSCALL_BIT`] in the syscall number.
    X32,
    Arm,
    Aarch64,
    Mips,
    Mips64,
    Mips64N32,
    Mipsel,
    Mipsel64,
    Mipsel64N32,
    Ppc,
    Ppc64,
    Ppc64le,
    S390,
    S390x,
    Parisc,
    Parisc64,
    Riscv64,
    Loongarch64,
    M68k,
    Sh,
    Sheb,
}

impl Arch {
    /// The arch this code runs on, when the compiler has a syscall table for it.
    pub fn native() -> Option<Arch> {
        if cfg!(target_arch = "x86_64") {
            // An x32 build still runs on an x86_64 kernel and passes x32 numbers; x32 sections
            // only exist when listed, so native must name the ABI this binary uses.
            if cfg!(target_pointer_width = "32") {
                Some(Arch::X32)
            } else {
                Some(Arch::X86_64)
            }
        } else if cfg!(target_arch = "x86") {
            Some(Arch::X86)
        } else if cfg!(target_arch = "aarch64") {
            Some(Arch::Aarch64)
        } else if cfg!(target_arch = "arm") {
            Some(Arch::Arm)
        } else {
            None
        }
    }

    /// The AUDIT_ARCH_* value the kernel puts in seccomp_data.arch.
    pub fn audit_arch(self) -> u32 {
        const LE: u32 = 0x4000_0000; // __AUDIT_ARCH_LE
        const B64: u32 = 0x8000_0000; // __AUDIT_ARCH_64BIT
        const CONVENTION_MIPS64_N32: u32 = 0x2000_0000;
        match self {
            Arch::X86 => LE | 3,
            Arch::X86_64 | Arch::X32 => B64 | LE | 62,
            Arch::Arm => LE | 40,
            Arch::Aarch64 => B64 | LE | 183,
            Arch::Mips => 8,
            Arch::Mips64 => B64 | 8,
            Arch::Mips64N32 => B64 | CONVENTION_MIPS64_N32 | 8,
            Arch::Mipsel => LE | 8,
            Arch::Mipsel64 => B64 | LE | 8,
            Arch::Mipsel64N32 => B64 | LE | CONVENTION_MIPS64_N32 | 8,
            Arch::Ppc => 20,
            Arch::Ppc64 => B64 | 21,
            Arch::Ppc64le => B64 | LE | 21,
            Arch::S390 => 22,
            Arch::S390x => B64 | 22,
            Arch::Parisc => 15,
            Arch::Parisc64 => B64 | 15,
            Arch::Riscv64 => B64 | LE | 243,
            Arch::Loongarch64 => B64 | LE | 258,
            Arch::M68k => 4,
            Arch::Sh => LE | 42,
            Arch::Sheb => 42,
        }
    }

    /// Whether syscall arguments are 64 bits wide for this ABI. For the others, as libseccomp
    /// does, only the low 32 bits of an argument are compared: the kernel zero-extends them.
    fn wide_args(self) -> bool {
        matches!(
            self,
            Arch::X86_64
                | Arch::Aarch64
                | Arch::Mips64
                | Arch::Mipsel64
                | Arch::Ppc64
                | Arch::Ppc64le
                | Arch::S390x
                | Arch::Parisc64
                | Arch::Riscv64
                | Arch::Loongarch64
        )
    }

    fn table(self) -> Option<&'static [(&'static str, u32)]> {
        match self {
            Arch::X86_64 => Some(tables::X86_64),
            Arch::X86 => Some(tables::X86),
            Arch::X32 => Some(tables::X32),
            Arch::Aarch64 => Some(tables::AARCH64),
            Arch::Arm => Some(tables::ARM),
            _ => None,
        }
    }

    /// The syscall number of `name` for this ABI (with the x32 bit for x32), if known.
    pub fn syscall_number(self, name: &str) -> Option<u32> {
        let table = self.table()?;
        let i = table.binary_search_by(|(n, _)| (*n).cmp(name)).ok()?;
        Some(table[i].1)
    }

    /// Every syscall name this ABI's table knows (e.g. to turn a deny list into an allow list).
    pub fn syscall_names(self) -> Vec<&'static str> {
        self.table().into_iter().flatten().map(|(n, _)| *n).collect()
    }

    /// Whether the compiler knows this arch's syscall numbers (otherwise it is only an arch
    /// check that leads to the default action).
    pub fn has_syscall_table(self) -> bool {
        self.table().is_some()
    }
}

/// Flags for seccomp(SECCOMP_SET_MODE_FILTER).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum FilterFlag {
    Tsync,
    Log,
    SpecAllow,
    NewListener,
    TsyncEsrch,
    WaitKillableRecv,
}

impl FilterFlag {
    /// The SECCOMP_FILTER_FLAG_* bit (uapi values; libc's are c_ulong, 32-bit on some hosts).
    pub fn bits(self) -> u64 {
        match self {
            FilterFlag::Tsync => 1,
            FilterFlag::Log => 1 << 1,
            FilterFlag::SpecAllow => 1 << 2,
            FilterFlag::NewListener => 1 << 3,
            FilterFlag::TsyncEsrch => 1 << 4,
            FilterFlag::WaitKillableRecv => 1 << 5,
        }
    }
}

/// A whole filter: rules are tried in order for a syscall, the first whose conditions hold
/// decides; no match means `default_action`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Filter {
    pub default_action: Action,
    /// Overrides the errno of a default [`Action::Errno`] (or message of [`Action::Trace`]).
    pub default_errno: Option<u32>,
    /// ABIs whose syscalls the filter judges; the native one is always included. Syscalls from
    /// any other ABI kill the process.
    pub architectures: Vec<Arch>,
    pub rules: Vec<Rule>,
    pub flags: Vec<FilterFlag>,
}

/// The result of [`compile_with_warnings`].
pub struct Compiled {
    pub program: Vec<sock_filter>,
    /// The filter's flags plus those the program needs: `NewListener` when an action is
    /// `Notify`.
    pub flags: Vec<FilterFlag>,
    /// Names no listed arch knows (typos, or syscalls newer than our tables); skipped, as runc
    /// skips names libseccomp does not know.
    pub unknown_syscalls: Vec<String>,
}

impl std::fmt::Debug for Compiled {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Compiled")
            .field("program_len", &self.program.len())
            .field("flags", &self.flags)
            .field("unknown_syscalls", &self.unknown_syscalls)
            .finish()
    }
}

#[derive(Debug, thiserror::Error)]
pub enum SeccompError {
    #[error("seccomp: {field}: errno/data value {value} does not fit the 16-bit SECCOMP_RET_DATA field")]
    DataTooLarge { field: String, value: u32 },
    #[error("seccomp: {field}: an errno is only valid with the Errno or Trace action, not {action:?}")]
    ErrnoNotAllowed { field: String, action: Action },
    #[error("seccomp: rules[{rule}].args: argument index {index} is out of range (0..=5)")]
    ArgIndex { rule: usize, index: u8 },
    #[error("seccomp: no syscall table for this machine's architecture")]
    UnsupportedNativeArch,
    #[error("seccomp: the program has {len} BPF instructions; the kernel accepts 1 to {MAX_INSNS}")]
    ProgramLength { len: usize },
    #[error("seccomp: seccomp(SECCOMP_SET_MODE_FILTER, flags={flags:#x}) failed: {source}")]
    Install { flags: u64, source: io::Error },
    #[error("seccomp: SECCOMP_FILTER_FLAG_TSYNC: thread {tid} could not be synchronized")]
    Tsync { tid: i64 },
    #[error("seccomp: {op} on the notify listener failed: {source}")]
    Notify { op: &'static str, source: io::Error },
    #[error("seccomp: internal error laying out the BPF program: {0}")]
    Layout(&'static str),
}

/// Compile `filter`; names unknown to every listed arch are skipped (see
/// [`compile_with_warnings`] to get them).
pub fn compile(filter: &Filter) -> Result<Vec<sock_filter>, SeccompError> {
    Ok(compile_with_warnings(filter)?.program)
}

/// Compile `filter` for this machine.
pub fn compile_with_warnings(filter: &Filter) -> Result<Compiled, SeccompError> {
    let native = Arch::native().ok_or(SeccompError::UnsupportedNativeArch)?;
    compile_for(filter, native)
}

/// Compile as if `native` were this machine's arch (tests exercise other hosts' layouts).
fn compile_for(filter: &Filter, native: Arch) -> Result<Compiled, SeccompError> {
    Compiler::new(filter, native)?.compile()
}

/// `action` with the errno override applied, checked to be encodable.
fn effective_action(action: Action, errno: Option<u32>, field: &str) -> Result<Action, SeccompError> {
    let action = match (action, errno) {
        (Action::Errno(_), Some(e)) => Action::Errno(e),
        (Action::Trace(_), Some(e)) => Action::Trace(e),
        (action, Some(_)) => return Err(SeccompError::ErrnoNotAllowed { field: field.to_string(), action }),
        (action, None) => action,
    };
    match action {
        Action::Errno(value) | Action::Trace(value) if action.ret_value().is_none() => {
            Err(SeccompError::DataTooLarge { field: field.to_string(), value })
        }
        _ => Ok(action),
    }
}

struct Compiler<'a> {
    filter: &'a Filter,
    /// Distinct arches, native first.
    arches: Vec<Arch>,
    /// Per rule, its action with the errno override applied.
    actions: Vec<Action>,
    default: Action,
    asm: Asm,
    /// `ret` instructions wanted by jumps since the last [`Compiler::flush_rets`], by value.
    /// Returns are emitted close to the jumps that use them, so that they stay short jumps.
    rets: Vec<(u32, Label)>,
}

impl<'a> Compiler<'a> {
    fn new(filter: &'a Filter, native: Arch) -> Result<Self, SeccompError> {
        let default = effective_action(filter.default_action, filter.default_errno, "default action")?;
        let mut actions = Vec::with_capacity(filter.rules.len());
        for (i, rule) in filter.rules.iter().enumerate() {
            actions.push(effective_action(rule.action, rule.errno, &format!("rules[{i}]"))?);
            if let Some(bad) = rule.args.iter().find(|a| a.index > 5) {
                return Err(SeccompError::ArgIndex { rule: i, index: bad.index });
            }
        }
        let mut arches = vec![native];
        for &arch in &filter.architectures {
            if !arches.contains(&arch) {
                arches.push(arch);
            }
        }
        Ok(Compiler { filter, arches, actions, default, asm: Asm::default(), rets: Vec::new() })
    }

    /// A label whose instruction returns `action`, bound at the next `flush_rets`.
    fn ret_label(&mut self, action: Action) -> Label {
        // Every action was checked in `new`; the fallback is only there to fail closed.
        let value = action.ret_value().unwrap_or(libc::SECCOMP_RET_KILL_PROCESS);
        if let Some((_, label)) = self.rets.iter().find(|(v, _)| *v == value) {
            return *label;
        }
        let label = self.asm.label();
        self.rets.push((value, label));
        label
    }

    fn flush_rets(&mut self) {
        for (value, label) in std::mem::take(&mut self.rets) {
            self.asm.bind(label);
            self.asm.ret(value);
        }
    }

    fn ret(&mut self, action: Action) {
        self.asm.ret(action.ret_value().unwrap_or(libc::SECCOMP_RET_KILL_PROCESS));
    }

    fn compile(mut self) -> Result<Compiled, SeccompError> {
        // Group arches by the audit token the kernel reports: x86_64 and x32 share one.
        let mut groups: Vec<(u32, Vec<Arch>)> = Vec::new();
        for &arch in &self.arches {
            let token = arch.audit_arch();
            match groups.iter_mut().find(|(t, _)| *t == token) {
                Some((_, members)) => members.push(arch),
                None => groups.push((token, vec![arch])),
            }
        }

        self.asm.load(OFF_ARCH);
        let group_labels: Vec<Label> = groups.iter().map(|_| self.asm.label()).collect();
        for (i, (token, _)) in groups.iter().enumerate() {
            let next = if i + 1 == groups.len() { self.ret_label(Action::KillProcess) } else { self.asm.label() };
            self.asm.jump(Cond::Eq, *token, group_labels[i], next);
            if i + 1 < groups.len() {
                self.asm.bind(next);
            }
        }
        self.flush_rets();

        for ((token, members), label) in groups.iter().zip(group_labels) {
            self.asm.bind(label);
            if *token != Arch::X86_64.audit_arch() {
                self.arch_section(members[0]);
                continue;
            }
            // The x32 ABI shares x86_64's token and sets a bit in the syscall number. Rules for
            // x86_64 must not see those calls (x32's execve is 520|bit, not 59): they go to
            // the x32 section when x32 is allowed and are killed like any other ABI otherwise.
            let section = |c: &mut Self, arch| {
                if members.contains(&arch) {
                    c.asm.label()
                } else {
                    c.ret_label(Action::KillProcess)
                }
            };
            let x64 = section(&mut self, Arch::X86_64);
            let x32 = section(&mut self, Arch::X32);
            self.asm.load(OFF_NR);
            self.asm.jump(Cond::Ge, X32_SYSCALL_BIT, x32, x64);
            self.flush_rets();
            for (arch, label) in [(Arch::X86_64, x64), (Arch::X32, x32)] {
                if members.contains(&arch) {
                    self.asm.bind(label);
                    self.arch_section(arch);
                }
            }
        }

        let mut unknown: Vec<String> = Vec::new();
        for rule in &self.filter.rules {
            for name in &rule.syscalls {
                let known = self.arches.iter().any(|a| a.syscall_number(name).is_some());
                if !known && !unknown.contains(name) {
                    unknown.push(name.clone());
                }
            }
        }

        // Refuse hopeless programs before the layout loop, whose cost grows with length.
        if self.asm.min_len() > MAX_INSNS {
            return Err(SeccompError::ProgramLength { len: self.asm.min_len() });
        }
        let program = self.asm.assemble().map_err(|e| SeccompError::Layout(e.0))?;
        if program.len() > MAX_INSNS {
            return Err(SeccompError::ProgramLength { len: program.len() });
        }

        let mut flags = self.filter.flags.clone();
        let notify = self.default == Action::Notify || self.actions.contains(&Action::Notify);
        if notify && !flags.contains(&FilterFlag::NewListener) {
            flags.push(FilterFlag::NewListener);
        }
        Ok(Compiled { program, flags, unknown_syscalls: unknown })
    }

    /// Dispatch on the syscall number for one ABI, its returns, then the rule blocks.
    fn arch_section(&mut self, arch: Arch) {
        if !arch.has_syscall_table() {
            self.ret(self.default);
            return;
        }
        // Syscall number -> indices of the rules naming it, in rule order.
        let mut by_nr: BTreeMap<u32, Vec<usize>> = BTreeMap::new();
        for (i, rule) in self.filter.rules.iter().enumerate() {
            for name in &rule.syscalls {
                if let Some(nr) = arch.syscall_number(name) {
                    let list = by_nr.entry(nr).or_default();
                    if !list.contains(&i) {
                        list.push(i);
                    }
                }
            }
        }

        let default = self.ret_label(self.default);
        // [start, next start) -> target; consecutive numbers with one outcome share a range.
        let mut ranges: Vec<(u32, Label)> = vec![(0, default)];
        let mut push = |start: u32, target: Label| match ranges.last_mut() {
            Some(last) if last.0 == start => last.1 = target,
            Some(last) if last.1 == target => {}
            _ => ranges.push((start, target)),
        };
        let mut blocks: Vec<(Label, Vec<usize>)> = Vec::new();
        for (nr, rules) in by_nr {
            let first = rules[0];
            let target = if self.filter.rules[first].args.is_empty() {
                self.ret_label(self.actions[first])
            } else {
                let block = self.asm.label();
                blocks.push((block, rules));
                block
            };
            push(nr, target);
            if let Some(after) = nr.checked_add(1) {
                push(after, default);
            }
        }
        // Setting a range's target may have made it equal to its predecessor's.
        ranges.dedup_by(|later, earlier| later.1 == earlier.1);

        self.asm.load(OFF_NR);
        self.dispatch(&ranges, 1 << 32);
        self.flush_rets();
        for (block, rules) in blocks {
            self.asm.bind(block);
            self.rule_block(arch, &rules);
        }
    }

    /// A search tree over `ranges` (sorted starts, the last one ending before `end`); A holds
    /// the syscall number throughout. Small groups use `jeq` for single numbers, so a profile
    /// of hundreds of syscalls costs about one instruction per distinct outcome boundary.
    fn dispatch(&mut self, ranges: &[(u32, Label)], end: u64) {
        const LEAF: usize = 7;
        if ranges.len() == 1 {
            self.asm.ja(ranges[0].1);
            return;
        }
        if ranges.len() <= LEAF {
            let len = |i: usize| {
                let stop = ranges.get(i + 1).map_or(end, |r| r.0 as u64);
                stop - ranges[i].0 as u64
            };
            // The target of every range longer than one number, if they all agree; the
            // single numbers are then picked off with `jeq`.
            let wide: Vec<Label> = (0..ranges.len()).filter(|&i| len(i) > 1).map(|i| ranges[i].1).collect();
            let background = match wide.first() {
                None => Some(ranges[ranges.len() - 1].1),
                Some(&first) if wide.iter().all(|&l| l == first) => Some(first),
                Some(_) => None,
            };
            if let Some(background) = background {
                let singles: Vec<(u32, Label)> = ranges.iter().copied().filter(|&(_, target)| target != background).collect();
                for (i, &(nr, target)) in singles.iter().enumerate() {
                    if i + 1 == singles.len() {
                        self.asm.jump(Cond::Eq, nr, target, background);
                    } else {
                        let next = self.asm.label();
                        self.asm.jump(Cond::Eq, nr, target, next);
                        self.asm.bind(next);
                    }
                }
                return;
            }
        }
        let mid = ranges.len() / 2;
        let (low, high) = (&ranges[..mid], &ranges[mid..]);
        let subtree = |c: &mut Self, part: &[(u32, Label)]| {
            if part.len() == 1 {
                part[0].1
            } else {
                c.asm.label()
            }
        };
        let (low_label, high_label) = (subtree(self, low), subtree(self, high));
        self.asm.jump(Cond::Ge, high[0].0, high_label, low_label);
        if low.len() > 1 {
            self.asm.bind(low_label);
            self.dispatch(low, high[0].0 as u64);
        }
        if high.len() > 1 {
            self.asm.bind(high_label);
            self.dispatch(high, end);
        }
    }

    /// The rules for one syscall in order; returns are inline since blocks come after the
    /// section's shared returns and BPF only jumps forward.
    fn rule_block(&mut self, arch: Arch, rules: &[usize]) {
        let filter = self.filter;
        for &i in rules {
            let args = &filter.rules[i].args;
            if args.is_empty() {
                // Matches unconditionally: later rules are unreachable.
                self.ret(self.actions[i]);
                return;
            }
            let next_rule = self.asm.label();
            for cmp in args {
                emit_cmp(&mut self.asm, cmp, arch.wide_args(), next_rule);
            }
            self.ret(self.actions[i]);
            self.asm.bind(next_rule);
        }
        self.ret(self.default);
    }
}

/// Offsets of the low and high 32-bit halves of argument `index` in seccomp_data.
fn arg_offsets(index: u8) -> (u32, u32) {
    let base = OFF_ARGS + 8 * index as u32;
    if cfg!(target_endian = "little") {
        (base, base + 4)
    } else {
        (base + 4, base)
    }
}

/// Falls through when `cmp` holds, jumps to `fail` otherwise. With `wide`, the 64-bit value
/// is compared as (high, low) halves: the high halves decide unless they are equal.
fn emit_cmp(asm: &mut Asm, cmp: &ArgCmp, wide: bool, fail: Label) {
    let (lo_off, hi_off) = arg_offsets(cmp.index);
    let (v_hi, v_lo) = ((cmp.value >> 32) as u32, cmp.value as u32);
    let pass = asm.label();
    match cmp.op {
        CmpOp::Eq | CmpOp::Ne => {
            let (on_eq, on_ne) = if cmp.op == CmpOp::Eq { (pass, fail) } else { (fail, pass) };
            if wide {
                let low = asm.label();
                asm.load(hi_off);
                asm.jump(Cond::Eq, v_hi, low, on_ne);
                asm.bind(low);
            }
            asm.load(lo_off);
            asm.jump(Cond::Eq, v_lo, on_eq, on_ne);
        }
        CmpOp::MaskedEq => {
            let (m_hi, m_lo) = ((cmp.value >> 32) as u32, cmp.value as u32);
            let (w_hi, w_lo) = ((cmp.value_two >> 32) as u32, cmp.value_two as u32);
            // Masked-off high half compared with zero always holds: skip it.
            if wide && !(m_hi == 0 && w_hi == 0) {
                let low = asm.label();
                asm.load(hi_off);
                asm.and(m_hi);
                asm.jump(Cond::Eq, w_hi, low, fail);
                asm.bind(low);
            }
            asm.load(lo_off);
            asm.and(m_lo);
            asm.jump(Cond::Eq, w_lo, pass, fail);
        }
        CmpOp::Gt | CmpOp::Ge | CmpOp::Lt | CmpOp::Le => {
            // Lt and Le are the negations of Ge and Gt: same code, arms swapped.
            let (cond, holds, fails) = match cmp.op {
                CmpOp::Gt => (Cond::Gt, pass, fail),
                CmpOp::Ge => (Cond::Ge, pass, fail),
                CmpOp::Lt => (Cond::Ge, fail, pass),
                _ => (Cond::Gt, fail, pass),
            };
            if wide {
                let (not_gt, equal) = (asm.label(), asm.label());
                asm.load(hi_off);
                asm.jump(Cond::Gt, v_hi, holds, not_gt);
                asm.bind(not_gt);
                asm.jump(Cond::Eq, v_hi, equal, fails);
                asm.bind(equal);
            }
            asm.load(lo_off);
            asm.jump(cond, v_lo, holds, fails);
        }
    }
    asm.bind(pass);
}

/// Load `program` as a seccomp filter for the calling thread (all threads with `Tsync`).
///
/// The caller must have set no_new_privs or hold CAP_SYS_ADMIN. `NewListener` is added when
/// the program can return SECCOMP_RET_USER_NOTIF, and then the listener fd is returned.
/// Does not allocate, so it is safe to call in a child between fork and exec.
pub fn install(program: &[sock_filter], flags: &[FilterFlag]) -> Result<Option<OwnedFd>, SeccompError> {
    if program.is_empty() || program.len() > MAX_INSNS {
        return Err(SeccompError::ProgramLength { len: program.len() });
    }
    let mut bits = flags.iter().fold(0u64, |b, f| b | f.bits());
    let listener = FilterFlag::NewListener.bits();
    let ret_k = (libc::BPF_RET | libc::BPF_K) as u16;
    if program.iter().any(|i| i.code == ret_k && i.k & libc::SECCOMP_RET_ACTION_FULL == libc::SECCOMP_RET_USER_NOTIF) {
        bits |= listener;
    }
    if bits & listener == 0 {
        // The kernel rejects WAIT_KILLABLE_RECV without a listener; it would mean nothing.
        bits &= !FilterFlag::WaitKillableRecv.bits();
    }
    let tsync = FilterFlag::Tsync.bits();
    if bits & listener != 0 && bits & tsync != 0 {
        // TSYNC reports failure as a thread id, which collides with the returned fd; the kernel
        // only accepts the pair with TSYNC_ESRCH (as libseccomp does).
        bits |= FilterFlag::TsyncEsrch.bits();
    }
    let prog = libc::sock_fprog { len: program.len() as u16, filter: program.as_ptr() as *mut sock_filter };
    // SAFETY: `prog` points at `program`, alive for the call; the kernel copies the program.
    let ret = unsafe {
        libc::syscall(
            libc::SYS_seccomp,
            libc::SECCOMP_SET_MODE_FILTER as libc::c_ulong,
            bits as libc::c_ulong,
            &prog as *const libc::sock_fprog,
        )
    };
    if ret < 0 {
        let err = io::Error::last_os_error();
        if err.raw_os_error() == Some(libc::ENOSYS) && bits == 0 {
            // Kernels before 3.17 only have the prctl interface, which takes no flags.
            // SAFETY: as above.
            let r = unsafe {
                libc::prctl(libc::PR_SET_SECCOMP, libc::SECCOMP_MODE_FILTER as libc::c_ulong, &prog as *const libc::sock_fprog)
            };
            if r == 0 {
                return Ok(None);
            }
            return Err(SeccompError::Install { flags: bits, source: io::Error::last_os_error() });
        }
        return Err(SeccompError::Install { flags: bits, source: err });
    }
    if bits & listener != 0 {
        // SAFETY: with NEW_LISTENER the kernel returns a new fd that nothing else owns.
        return Ok(Some(unsafe { OwnedFd::from_raw_fd(ret as RawFd) }));
    }
    if bits & tsync != 0 && ret > 0 {
        return Err(SeccompError::Tsync { tid: ret as i64 });
    }
    Ok(None)
}

/// A syscall waiting for the supervisor's answer (struct seccomp_notif).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Notification {
    /// Cookie for [`notify_respond`] and [`notify_id_valid`].
    pub id: u64,
    /// The calling thread, in the listener's pid namespace (0 if not visible there).
    pub pid: u32,
    pub nr: i32,
    pub arch: u32,
    pub instruction_pointer: u64,
    pub args: [u64; 6],
}

/// How the supervisor answers a notified syscall.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum NotifyResponse {
    /// The syscall fails with this (positive) errno.
    Errno(i32),
    /// The syscall returns this value without running.
    Value(i64),
    /// The kernel runs the syscall as if there were no filter (SECCOMP_USER_NOTIF_FLAG_CONTINUE;
    /// subject to TOCTOU races, never a security decision).
    Continue,
}

/// Sizes of the notify structs this kernel uses, which may exceed our headers' (newer kernels
/// append fields); buffers must be at least that large and zeroed.
fn notif_sizes() -> (usize, usize) {
    static SIZES: OnceLock<(usize, usize)> = OnceLock::new();
    *SIZES.get_or_init(|| {
        let mut sizes = libc::seccomp_notif_sizes { seccomp_notif: 0, seccomp_notif_resp: 0, seccomp_data: 0 };
        // SAFETY: SECCOMP_GET_NOTIF_SIZES writes one seccomp_notif_sizes to the pointer.
        let r = unsafe {
            libc::syscall(
                libc::SYS_seccomp,
                libc::SECCOMP_GET_NOTIF_SIZES as libc::c_ulong,
                0 as libc::c_ulong,
                &mut sizes as *mut libc::seccomp_notif_sizes,
            )
        };
        let ours = (std::mem::size_of::<libc::seccomp_notif>(), std::mem::size_of::<libc::seccomp_notif_resp>());
        if r != 0 {
            return ours;
        }
        (ours.0.max(sizes.seccomp_notif as usize), ours.1.max(sizes.seccomp_notif_resp as usize))
    })
}

/// Block until a notified syscall arrives on `listener` (SECCOMP_IOCTL_NOTIF_RECV).
/// EINTR is returned as an error for the caller to retry.
pub fn notify_receive(listener: BorrowedFd<'_>) -> Result<Notification, SeccompError> {
    let (size, _) = notif_sizes();
    // u64 words keep the buffer aligned for seccomp_notif.
    let mut buf = vec![0u64; size.div_ceil(8)];
    // SAFETY: buf is zeroed (the kernel requires it), aligned, and at least as large as the
    // kernel's struct seccomp_notif, which it writes.
    let r = unsafe { libc::ioctl(listener.as_raw_fd(), libc::SECCOMP_IOCTL_NOTIF_RECV, buf.as_mut_ptr()) };
    if r < 0 {
        return Err(SeccompError::Notify { op: "SECCOMP_IOCTL_NOTIF_RECV", source: io::Error::last_os_error() });
    }
    // SAFETY: the buffer holds at least size_of::<seccomp_notif>() initialised, aligned bytes.
    let n: libc::seccomp_notif = unsafe { std::ptr::read(buf.as_ptr().cast()) };
    Ok(Notification {
        id: n.id,
        pid: n.pid,
        nr: n.data.nr,
        arch: n.data.arch,
        instruction_pointer: n.data.instruction_pointer,
        args: n.data.args,
    })
}

/// Answer notification `id` (SECCOMP_IOCTL_NOTIF_SEND). ENOENT means the caller is gone (it
/// was killed, or a signal interrupted the syscall).
pub fn notify_respond(listener: BorrowedFd<'_>, id: u64, response: NotifyResponse) -> Result<(), SeccompError> {
    let (_, size) = notif_sizes();
    let mut resp = libc::seccomp_notif_resp { id, val: 0, error: 0, flags: 0 };
    match response {
        // The kernel wants a negative errno.
        NotifyResponse::Errno(e) => resp.error = -e.abs(),
        NotifyResponse::Value(v) => resp.val = v,
        NotifyResponse::Continue => resp.flags = libc::SECCOMP_USER_NOTIF_FLAG_CONTINUE as u32,
    }
    let mut buf = vec![0u64; size.div_ceil(8)];
    // SAFETY: buf is at least size_of::<seccomp_notif_resp>() bytes and aligned for it.
    unsafe { std::ptr::write(buf.as_mut_ptr().cast(), resp) };
    // SAFETY: the kernel reads its seccomp_notif_resp from the zero-padded buffer.
    let r = unsafe { libc::ioctl(listener.as_raw_fd(), libc::SECCOMP_IOCTL_NOTIF_SEND, buf.as_mut_ptr()) };
    if r < 0 {
        return Err(SeccompError::Notify { op: "SECCOMP_IOCTL_NOTIF_SEND", source: io::Error::last_os_error() });
    }
    Ok(())
}

/// Whether notification `id` is still pending; check it after reading the caller's memory
/// (the pid may have been reused in between).
pub fn notify_id_valid(listener: BorrowedFd<'_>, id: u64) -> Result<bool, SeccompError> {
    let mut id = id;
    // SAFETY: the ioctl reads one u64.
    let r = unsafe { libc::ioctl(listener.as_raw_fd(), libc::SECCOMP_IOCTL_NOTIF_ID_VALID, &mut id as *mut u64) };
    if r == 0 {
        return Ok(true);
    }
    let err = io::Error::last_os_error();
    if err.raw_os_error() == Some(libc::ENOENT) {
        return Ok(false);
    }
    Err(SeccompError::Notify { op: "SECCOMP_IOCTL_NOTIF_ID_VALID", source: err })
}
