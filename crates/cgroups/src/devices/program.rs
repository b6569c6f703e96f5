//! Device rules -> a BPF_PROG_TYPE_CGROUP_DEVICE program.
//!
//! The program sees `struct bpf_cgroup_dev_ctx { u32 access_type; u32 major; u32 minor; }`,
//! where access_type is `(access << 16) | type`, and returns 1 to allow, 0 to deny. It checks
//! the rules from last to first and the first match decides, so a later rule overrides an
//! earlier one, as when they are applied in order after "deny all"; no match means deny.
//!
//! A deny rule matches when the request asks for any of its access bits; an allow rule only
//! when it grants every bit asked for (an "rw" open is not allowed by an "r" rule alone).

use conductor_sys::bpf::Insn;

use super::{DeviceKind, DeviceRule, ACC_ALL};

/// BPF_DEVCG_DEV_BLOCK / BPF_DEVCG_DEV_CHAR.
const DEV_BLOCK: i32 = 1;
const DEV_CHAR: i32 = 2;

// Registers: r1 = ctx on entry; the rest are ours.
const R0: u8 = 0;
const R_CTX: u8 = 1;
const R_ACCESS_TYPE: u8 = 2;
const R_TYPE: u8 = 3;
const R_ACCESS: u8 = 4;
const R_MAJOR: u8 = 5;
const R_MINOR: u8 = 6;
const R_TMP: u8 = 7;

// Opcodes (class | op | source).
const LDX_W: u8 = 0x61; // BPF_LDX | BPF_W | BPF_MEM
const ALU32_MOV_X: u8 = 0xbc;
const ALU32_AND_K: u8 = 0x54;
const ALU32_RSH_K: u8 = 0x74;
const ALU64_MOV_K: u8 = 0xb7;
const JEQ_K: u8 = 0x15;
const JNE_K: u8 = 0x55;
const EXIT: u8 = 0x95;

fn insn(code: u8, dst: u8, src: u8, off: i16, imm: i32) -> Insn {
    Insn { code, regs: (src << 4) | dst, off, imm }
}

/// The whole program for `rules` (in spec order).
pub fn program(rules: &[DeviceRule]) -> Vec<Insn> {
    let mut prog = vec![
        insn(LDX_W, R_ACCESS_TYPE, R_CTX, 0, 0),
        insn(ALU32_MOV_X, R_TYPE, R_ACCESS_TYPE, 0, 0),
        insn(ALU32_AND_K, R_TYPE, 0, 0, 0xffff),
        insn(ALU32_MOV_X, R_ACCESS, R_ACCESS_TYPE, 0, 0),
        insn(ALU32_RSH_K, R_ACCESS, 0, 0, 16),
        insn(LDX_W, R_MAJOR, R_CTX, 4, 0),
        insn(LDX_W, R_MINOR, R_CTX, 8, 0),
    ];
    for rule in rules.iter().rev() {
        let (block, unconditional) = rule_block(rule);
        prog.extend(block);
        // The verifier refuses unreachable code, and nothing after an unconditional match runs.
        if unconditional {
            return prog;
        }
    }
    prog.push(insn(ALU64_MOV_K, R0, 0, 0, 0));
    prog.push(insn(EXIT, 0, 0, 0, 0));
    prog
}

/// Code for one rule: checks that jump past the block on mismatch, then return the verdict.
/// Also says whether the block has no checks at all (it always decides).
fn rule_block(rule: &DeviceRule) -> (Vec<Insn>, bool) {
    let mut block = Vec::new();
    let mut skips = Vec::new(); // indexes of jumps to patch to "end of block"
    let mut skip_unless = |block: &mut Vec<Insn>, code: u8, reg: u8, imm: i32| {
        skips.push(block.len());
        block.push(insn(code, reg, 0, 0, imm));
    };
    match rule.kind {
        DeviceKind::All => {}
        DeviceKind::Char => skip_unless(&mut block, JNE_K, R_TYPE, DEV_CHAR),
        DeviceKind::Block => skip_unless(&mut block, JNE_K, R_TYPE, DEV_BLOCK),
    }
    if rule.access != ACC_ALL {
        block.push(insn(ALU32_MOV_X, R_TMP, R_ACCESS, 0, 0));
        if rule.allow {
            // Mismatch if the request has a bit the rule does not grant.
            block.push(insn(ALU32_AND_K, R_TMP, 0, 0, !i32::from(rule.access)));
            skip_unless(&mut block, JNE_K, R_TMP, 0);
        } else {
            // Mismatch if the request shares no bit with the rule.
            block.push(insn(ALU32_AND_K, R_TMP, 0, 0, i32::from(rule.access)));
            skip_unless(&mut block, JEQ_K, R_TMP, 0);
        }
    }
    if let Some(major) = rule.major {
        skip_unless(&mut block, JNE_K, R_MAJOR, major as i32);
    }
    if let Some(minor) = rule.minor {
        skip_unless(&mut block, JNE_K, R_MINOR, minor as i32);
    }
    let unconditional = skips.is_empty();
    block.push(insn(ALU64_MOV_K, R0, 0, 0, i32::from(rule.allow)));
    block.push(insn(EXIT, 0, 0, 0, 0));
    let len = block.len();
    for i in skips {
        block[i].off = (len - i - 1) as i16;
    }
    (block, unconditional)
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;
    use crate::devices::{ACC_MKNOD, ACC_READ, ACC_WRITE};

    /// Run the program on one request, interpreting just the instructions we emit.
    pub fn run(prog: &[Insn], dev_type: u32, access: u32, major: u32, minor: u32) -> u64 {
        let ctx = [(access << 16) | dev_type, major, minor];
        let mut r = [0u64; 11];
        let mut pc = 0usize;
        loop {
            let i = prog[pc];
            let (dst, src) = ((i.regs & 0xf) as usize, (i.regs >> 4) as usize);
            let imm32 = i.imm as u32;
            pc += 1;
            match i.code {
                LDX_W => r[dst] = u64::from(ctx[i.off as usize / 4]),
                ALU32_MOV_X => r[dst] = u64::from(r[src] as u32),
                ALU32_AND_K => r[dst] = u64::from((r[dst] as u32) & imm32),
                ALU32_RSH_K => r[dst] = u64::from((r[dst] as u32) >> imm32),
                ALU64_MOV_K => r[dst] = i64::from(i.imm) as u64,
                JEQ_K | JNE_K => {
                    let eq = r[dst] == i64::from(i.imm) as u64;
                    if eq == (i.code == JEQ_K) {
                        pc += i.off as usize;
                    }
                }
                EXIT => return r[0],
                other => panic!("unexpected opcode {other:#x}"),
            }
        }
    }

    fn rule(allow: bool, kind: DeviceKind, major: Option<u32>, minor: Option<u32>, access: u8) -> DeviceRule {
        DeviceRule { allow, kind, major, minor, access }
    }

    const C: u32 = DEV_CHAR as u32;
    const B: u32 = DEV_BLOCK as u32;
    const R: u32 = ACC_READ as u32;
    const W: u32 = ACC_WRITE as u32;
    const M: u32 = ACC_MKNOD as u32;

    #[test]
    fn default_is_deny() {
        let p = program(&[]);
        assert_eq!(run(&p, C, R, 1, 3), 0);
    }

    #[test]
    fn typical_container_rules() {
        let rules = [
            rule(false, DeviceKind::All, None, None, ACC_ALL),
            rule(true, DeviceKind::Char, Some(1), Some(3), ACC_ALL), // /dev/null
            rule(true, DeviceKind::Char, Some(136), None, ACC_READ | ACC_WRITE), // ptys
            rule(true, DeviceKind::Char, Some(1), Some(5), ACC_READ), // /dev/zero read-only
        ];
        let p = program(&rules);
        assert_eq!(run(&p, C, R | W, 1, 3), 1);
        assert_eq!(run(&p, C, M, 1, 3), 1);
        assert_eq!(run(&p, B, R, 1, 3), 0, "type must match");
        assert_eq!(run(&p, C, R | W, 136, 7), 1);
        assert_eq!(run(&p, C, M, 136, 7), 0, "mknod not granted");
        assert_eq!(run(&p, C, R, 1, 5), 1);
        assert_eq!(run(&p, C, R | W, 1, 5), 0, "rw needs a rule granting both");
        assert_eq!(run(&p, C, R, 1, 7), 0);
    }

    #[test]
    fn later_rules_win() {
        let rules = [rule(true, DeviceKind::All, None, None, ACC_ALL), rule(false, DeviceKind::Block, Some(8), None, ACC_WRITE)];
        let p = program(&rules);
        assert_eq!(run(&p, B, R, 8, 0), 1);
        assert_eq!(run(&p, B, W, 8, 0), 0);
        assert_eq!(run(&p, B, R | W, 8, 1), 0, "a deny matches on any shared bit");
        assert_eq!(run(&p, C, W, 8, 0), 1);
    }

    #[test]
    fn unconditional_rule_ends_the_program() {
        let p = program(&[
            rule(false, DeviceKind::Char, Some(1), Some(3), ACC_ALL),
            rule(true, DeviceKind::All, None, None, ACC_ALL),
        ]);
        assert_eq!(p.len(), 7 + 2, "no unreachable code after allow-all");
        assert_eq!(run(&p, C, R, 1, 3), 1);
    }
}
