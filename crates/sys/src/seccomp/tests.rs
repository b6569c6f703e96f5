use super::*;

// ---- a classic-BPF interpreter covering what the compiler emits ----

/// struct seccomp_data, filled the way the kernel does (native endianness).
#[derive(Clone, Copy)]
struct Data {
    nr: u32,
    arch: u32,
    args: [u64; 6],
}

impl Data {
    fn new(arch: Arch, nr: u32, args: [u64; 6]) -> Data {
        Data { nr, arch: arch.audit_arch(), args }
    }

    fn bytes(&self) -> [u8; 64] {
        let mut b = [0u8; 64];
        b[0..4].copy_from_slice(&self.nr.to_ne_bytes());
        b[4..8].copy_from_slice(&self.arch.to_ne_bytes());
        b[8..16].copy_from_slice(&0x1234_5678_u64.to_ne_bytes());
        for (i, a) in self.args.iter().enumerate() {
            b[16 + 8 * i..24 + 8 * i].copy_from_slice(&a.to_ne_bytes());
        }
        b
    }
}

/// Runs `prog` the way the kernel's checker and interpreter would, panicking on anything the
/// kernel would reject (unknown opcode, jump out of the program, misaligned load).
fn run(prog: &[sock_filter], data: &Data) -> u32 {
    use libc::*;
    assert!(!prog.is_empty() && prog.len() <= MAX_INSNS);
    let mem = data.bytes();
    let mut a: u32 = 0;
    let mut pc = 0usize;
    loop {
        let insn = prog[pc];
        pc += 1;
        let code = insn.code as u32;
        let k = insn.k;
        let mut branch = |taken: bool| {
            pc += if taken { insn.jt } else { insn.jf } as usize;
        };
        if code == BPF_LD | BPF_W | BPF_ABS {
            let k = k as usize;
            assert!(k & 3 == 0 && k + 4 <= mem.len(), "bad load offset {k}");
            a = u32::from_ne_bytes(mem[k..k + 4].try_into().unwrap());
        } else if code == BPF_ALU | BPF_AND | BPF_K {
            a &= k;
        } else if code == BPF_JMP | BPF_JA {
            pc += k as usize;
        } else if code == BPF_JMP | BPF_JEQ | BPF_K {
            branch(a == k);
        } else if code == BPF_JMP | BPF_JGT | BPF_K {
            branch(a > k);
        } else if code == BPF_JMP | BPF_JGE | BPF_K {
            branch(a >= k);
        } else if code == BPF_JMP | BPF_JSET | BPF_K {
            branch(a & k != 0);
        } else if code == BPF_RET | BPF_K {
            return k;
        } else {
            panic!("unexpected opcode {code:#x} at {}", pc - 1);
        }
        assert!(pc < prog.len(), "jump past the end of the program");
    }
}

// ---- helpers ----

const ALLOW: u32 = libc::SECCOMP_RET_ALLOW;
const KILL_PROCESS: u32 = libc::SECCOMP_RET_KILL_PROCESS;
fn errno(e: u32) -> u32 {
    libc::SECCOMP_RET_ERRNO | e
}

fn rule(names: &[&str], action: Action, args: Vec<ArgCmp>) -> Rule {
    Rule { syscalls: names.iter().map(|s| s.to_string()).collect(), action, errno: None, args }
}

fn cmp(index: u8, op: CmpOp, value: u64) -> ArgCmp {
    ArgCmp { index, value, value_two: 0, op }
}

fn filter(default_action: Action, architectures: Vec<Arch>, rules: Vec<Rule>) -> Filter {
    Filter { default_action, default_errno: None, architectures, rules, flags: vec![] }
}

fn nr(arch: Arch, name: &str) -> u32 {
    arch.syscall_number(name).unwrap_or_else(|| panic!("{name} unknown on {arch:?}"))
}

/// Compiles as on an x86_64 host.
fn prog(f: &Filter) -> Vec<sock_filter> {
    compile_for(f, Arch::X86_64).expect("compile").program
}

fn eval(p: &[sock_filter], arch: Arch, name: &str, args: [u64; 6]) -> u32 {
    run(p, &Data::new(arch, nr(arch, name), args))
}

// ---- tables ----

#[test]
fn seccomp_tables_are_sorted_and_plausible() {
    for (arch, table) in [
        (Arch::X86_64, tables::X86_64),
        (Arch::X86, tables::X86),
        (Arch::X32, tables::X32),
        (Arch::Aarch64, tables::AARCH64),
        (Arch::Arm, tables::ARM),
    ] {
        assert!(table.windows(2).all(|w| w[0].0 < w[1].0), "{arch:?} unsorted");
        assert!(table.len() > 280, "{arch:?} has {} entries", table.len());
        assert!(arch.syscall_number("openat").is_some());
        assert!(arch.syscall_number("mseal").is_some(), "{arch:?} lacks 6.10 syscalls");
    }
    assert_eq!(nr(Arch::X86_64, "getpid"), 39);
    assert_eq!(nr(Arch::X86, "getpid"), 20);
    assert_eq!(nr(Arch::X32, "getpid"), 39 | X32_SYSCALL_BIT);
    assert_eq!(nr(Arch::X32, "execve"), 520 | X32_SYSCALL_BIT);
    assert_eq!(nr(Arch::Aarch64, "getpid"), 172);
    assert_eq!(nr(Arch::Arm, "getpid"), 20);
    assert_eq!(nr(Arch::Arm, "cacheflush"), 0x0f0002);
    assert_eq!(Arch::Aarch64.syscall_number("open"), None);
    #[cfg(target_arch = "x86_64")]
    {
        assert_eq!(nr(Arch::X86_64, "getpid") as i64, libc::SYS_getpid);
        assert_eq!(nr(Arch::X86_64, "clone3") as i64, libc::SYS_clone3);
    }
}

// ---- compile-only ----

#[test]
fn seccomp_compiles_every_action_and_op() {
    let actions = [
        Action::KillThread,
        Action::KillProcess,
        Action::Trap,
        Action::Errno(1),
        Action::Trace(7),
        Action::Allow,
        Action::Log,
        Action::Notify,
    ];
    let ops = [CmpOp::Ne, CmpOp::Lt, CmpOp::Le, CmpOp::Eq, CmpOp::Ge, CmpOp::Gt, CmpOp::MaskedEq];
    for &action in &actions {
        for &op in &ops {
            let f = filter(Action::Allow, vec![], vec![rule(&["read", "write"], action, vec![cmp(2, op, 5)])]);
            let c = compile_for(&f, Arch::X86_64).unwrap();
            assert!(c.program.len() < 60, "{action:?} {op:?}");
            assert_eq!(c.flags.contains(&FilterFlag::NewListener), action == Action::Notify);
        }
    }
}

#[test]
#[allow(clippy::unnecessary_cast)] // c_ulong is u64 here but not on every host
fn seccomp_flag_bits_match_the_kernel() {
    for (flag, bits) in [
        (FilterFlag::Tsync, libc::SECCOMP_FILTER_FLAG_TSYNC),
        (FilterFlag::Log, libc::SECCOMP_FILTER_FLAG_LOG),
        (FilterFlag::SpecAllow, libc::SECCOMP_FILTER_FLAG_SPEC_ALLOW),
        (FilterFlag::NewListener, libc::SECCOMP_FILTER_FLAG_NEW_LISTENER),
        (FilterFlag::TsyncEsrch, libc::SECCOMP_FILTER_FLAG_TSYNC_ESRCH),
        (FilterFlag::WaitKillableRecv, libc::SECCOMP_FILTER_FLAG_WAIT_KILLABLE_RECV),
    ] {
        assert_eq!(flag.bits(), bits as u64, "{flag:?}");
    }
}

#[test]
fn seccomp_errors_name_the_bad_field() {
    let mut f = filter(Action::Allow, vec![], vec![rule(&["read"], Action::Allow, vec![])]);
    f.rules[0].errno = Some(1);
    let e = compile(&f).unwrap_err().to_string();
    assert!(e.contains("rules[0]") && e.contains("Allow"), "{e}");

    let f = filter(
        Action::Allow,
        vec![],
        vec![rule(&["read"], Action::Log, vec![]), rule(&["read"], Action::Allow, vec![cmp(6, CmpOp::Eq, 1)])],
    );
    let e = compile(&f).unwrap_err().to_string();
    assert!(e.contains("rules[1]") && e.contains("index 6"), "{e}");

    let f = filter(Action::Errno(70000), vec![], vec![]);
    let e = compile(&f).unwrap_err().to_string();
    assert!(e.contains("default action") && e.contains("70000"), "{e}");
}

#[test]
fn seccomp_unknown_names_are_skipped_and_reported() {
    let f = filter(
        Action::Errno(1),
        vec![Arch::X86_64, Arch::X86],
        vec![rule(&["getpid", "no_such_syscall", "arm_fadvise64_64", "socketcall"], Action::Allow, vec![])],
    );
    let c = compile_for(&f, Arch::X86_64).unwrap();
    // socketcall exists on i386 only, which is listed; arm_fadvise64_64 only on arm.
    assert_eq!(c.unknown_syscalls, ["no_such_syscall", "arm_fadvise64_64"]);
    assert_eq!(eval(&c.program, Arch::X86_64, "getpid", [0; 6]), ALLOW);
    assert_eq!(eval(&c.program, Arch::X86, "socketcall", [0; 6]), ALLOW);
    assert_eq!(eval(&c.program, Arch::X86_64, "getppid", [0; 6]), errno(1));

    let c = compile_for(&f, Arch::Aarch64).unwrap();
    assert!(c.unknown_syscalls.contains(&"arm_fadvise64_64".to_string()));
    let f = filter(Action::Errno(1), vec![Arch::Arm], f.rules.clone());
    let c = compile_for(&f, Arch::Aarch64).unwrap();
    assert_eq!(c.unknown_syscalls, ["no_such_syscall", "socketcall"]);
    assert_eq!(eval(&c.program, Arch::Arm, "arm_fadvise64_64", [0; 6]), ALLOW);
}

#[test]
fn seccomp_program_longer_than_the_kernel_limit_is_an_error() {
    let rules = (0..1500)
        .map(|i| rule(&["getpid"], Action::Allow, vec![cmp(0, CmpOp::Eq, i), cmp(1, CmpOp::Gt, i << 33), cmp(2, CmpOp::Ne, i)]))
        .collect();
    let f = filter(Action::Errno(1), vec![], rules);
    match compile_for(&f, Arch::X86_64) {
        Err(SeccompError::ProgramLength { len }) => assert!(len > MAX_INSNS),
        other => panic!("expected ProgramLength, got {other:?}"),
    }
    assert!(matches!(install(&[], &[]), Err(SeccompError::ProgramLength { len: 0 })));
}

// ---- interpreted ----

#[test]
fn seccomp_allow_deny_and_default_errno() {
    let mut f = filter(
        Action::Errno(0),
        vec![],
        vec![
            rule(&["read", "write", "getpid"], Action::Allow, vec![]),
            rule(&["mount"], Action::Errno(1), vec![]),
            rule(&["ptrace"], Action::Trace(0), vec![]),
        ],
    );
    f.default_errno = Some(38);
    f.rules[1].errno = Some(13);
    f.rules[2].errno = Some(99);
    let p = prog(&f);
    assert_eq!(eval(&p, Arch::X86_64, "read", [0; 6]), ALLOW);
    assert_eq!(eval(&p, Arch::X86_64, "getpid", [0; 6]), ALLOW);
    assert_eq!(eval(&p, Arch::X86_64, "mount", [0; 6]), errno(13));
    assert_eq!(eval(&p, Arch::X86_64, "ptrace", [0; 6]), libc::SECCOMP_RET_TRACE | 99);
    assert_eq!(eval(&p, Arch::X86_64, "reboot", [0; 6]), errno(38));
    // Numbers no table has go to the default too.
    assert_eq!(run(&p, &Data::new(Arch::X86_64, 5000, [0; 6])), errno(38));
}

#[test]
fn seccomp_every_action_encodes_as_the_kernel_expects() {
    let cases = [
        (Action::KillThread, libc::SECCOMP_RET_KILL_THREAD),
        (Action::KillProcess, libc::SECCOMP_RET_KILL_PROCESS),
        (Action::Trap, libc::SECCOMP_RET_TRAP),
        (Action::Errno(1), libc::SECCOMP_RET_ERRNO | 1),
        (Action::Trace(3), libc::SECCOMP_RET_TRACE | 3),
        (Action::Allow, libc::SECCOMP_RET_ALLOW),
        (Action::Log, libc::SECCOMP_RET_LOG),
        (Action::Notify, libc::SECCOMP_RET_USER_NOTIF),
    ];
    for (action, value) in cases {
        let other = if action == Action::Allow { Action::Log } else { Action::Allow };
        let p = prog(&filter(other, vec![], vec![rule(&["getpid"], action, vec![])]));
        assert_eq!(eval(&p, Arch::X86_64, "getpid", [0; 6]), value, "{action:?}");
        let p = prog(&filter(action, vec![], vec![rule(&["getpid"], other, vec![])]));
        assert_eq!(eval(&p, Arch::X86_64, "getppid", [0; 6]), value, "{action:?}");
    }
}

/// Values around the 32-bit boundaries, so that high halves differ while low halves agree and
/// the other way round.
const EDGE: [u64; 16] = [
    0,
    1,
    5,
    0x7fff_ffff,
    0x8000_0000,
    0xffff_fffe,
    0xffff_ffff,
    0x1_0000_0000,
    0x1_0000_0001,
    0x1_0000_0005,
    0x1_ffff_ffff,
    0x2_0000_0000,
    0x8000_0000_0000_0000,
    0xffff_ffff_0000_0000,
    u64::MAX - 1,
    u64::MAX,
];

#[test]
fn seccomp_64bit_comparisons_match_their_meaning() {
    let ops = [CmpOp::Ne, CmpOp::Lt, CmpOp::Le, CmpOp::Eq, CmpOp::Ge, CmpOp::Gt];
    for op in ops {
        for value in EDGE {
            let c = cmp(3, op, value);
            let p = prog(&filter(Action::Errno(1), vec![Arch::X86], vec![rule(&["getpid"], Action::Allow, vec![c])]));
            for arg in EDGE {
                let args = [0, 0, 0, arg, 0, 0];
                let want = if c.matches(arg) { ALLOW } else { errno(1) };
                let got = eval(&p, Arch::X86_64, "getpid", args);
                assert_eq!(got, want, "{op:?} arg={arg:#x} value={value:#x}");

                // i386 arguments are 32 bits: only the low halves are compared.
                let low = cmp(3, op, value as u32 as u64);
                let want = if low.matches(arg as u32 as u64) { ALLOW } else { errno(1) };
                let args32 = [0, 0, 0, arg as u32 as u64, 0, 0];
                let got = eval(&p, Arch::X86, "getpid", args32);
                assert_eq!(got, want, "x86 {op:?} arg={arg:#x} value={value:#x}");
            }
        }
    }
}

#[test]
fn seccomp_masked_eq() {
    for mask in EDGE {
        for want_bits in EDGE {
            let c = ArgCmp { index: 1, value: mask, value_two: want_bits & mask, op: CmpOp::MaskedEq };
            let p = prog(&filter(Action::Errno(1), vec![], vec![rule(&["clone"], Action::Allow, vec![c])]));
            for arg in EDGE {
                let want = if arg & mask == want_bits & mask { ALLOW } else { errno(1) };
                let got = eval(&p, Arch::X86_64, "clone", [0, arg, 0, 0, 0, 0]);
                assert_eq!(got, want, "arg={arg:#x} mask={mask:#x} bits={want_bits:#x}");
            }
        }
    }
    // Docker's clone rule: no namespace flags allowed.
    let ns = 0x7E02_0000;
    let c = ArgCmp { index: 0, value: ns, value_two: 0, op: CmpOp::MaskedEq };
    let p = prog(&filter(Action::Errno(1), vec![], vec![rule(&["clone"], Action::Allow, vec![c])]));
    let clone = |flags: u64| eval(&p, Arch::X86_64, "clone", [flags, 0, 0, 0, 0, 0]);
    assert_eq!(clone(libc::SIGCHLD as u64), ALLOW);
    assert_eq!(clone(libc::CLONE_NEWNS as u64), errno(1));
    assert_eq!(clone(0xffff_ffff_0000_0000 | libc::SIGCHLD as u64), ALLOW);
}

#[test]
fn seccomp_args_are_anded_and_rules_ored_in_order() {
    let f = filter(
        Action::KillProcess,
        vec![],
        vec![
            rule(&["getpid"], Action::Errno(5), vec![cmp(0, CmpOp::Eq, 1), cmp(1, CmpOp::Eq, 2)]),
            rule(&["getpid"], Action::Errno(6), vec![cmp(1, CmpOp::Eq, 2)]),
            // Two conditions on the same argument: a range.
            rule(&["getpid"], Action::Errno(7), vec![cmp(2, CmpOp::Ge, 10), cmp(2, CmpOp::Lt, 20)]),
            rule(&["getpid", "getppid"], Action::Allow, vec![]),
            rule(&["getppid"], Action::Errno(8), vec![]), // unreachable: Allow came first
        ],
    );
    let p = prog(&f);
    let g = |args: [u64; 6]| eval(&p, Arch::X86_64, "getpid", args);
    assert_eq!(g([1, 2, 0, 0, 0, 0]), errno(5));
    assert_eq!(g([0, 2, 0, 0, 0, 0]), errno(6));
    assert_eq!(g([1, 0, 0, 0, 0, 0]), ALLOW);
    assert_eq!(g([0, 0, 10, 0, 0, 0]), errno(7));
    assert_eq!(g([0, 0, 19, 0, 0, 0]), errno(7));
    assert_eq!(g([0, 0, 20, 0, 0, 0]), ALLOW);
    assert_eq!(g([0, 0, 9, 0, 0, 0]), ALLOW);
    assert_eq!(eval(&p, Arch::X86_64, "getppid", [0; 6]), ALLOW);
    assert_eq!(eval(&p, Arch::X86_64, "gettid", [0; 6]), KILL_PROCESS);
}

#[test]
fn seccomp_foreign_arches() {
    let f = filter(Action::Errno(1), vec![Arch::X86, Arch::Mips], vec![rule(&["getpid"], Action::Allow, vec![])]);
    let p = prog(&f);
    // An arch nobody listed is killed, whatever the default.
    let aarch64 = Data::new(Arch::Aarch64, nr(Arch::Aarch64, "getpid"), [0; 6]);
    assert_eq!(run(&p, &aarch64), KILL_PROCESS);
    // A listed arch resolves names with its own numbers: getpid is 20 on i386, 39 is mkdir.
    assert_eq!(eval(&p, Arch::X86, "getpid", [0; 6]), ALLOW);
    assert_eq!(run(&p, &Data::new(Arch::X86, 39, [0; 6])), errno(1));
    assert_eq!(eval(&p, Arch::X86_64, "getpid", [0; 6]), ALLOW);
    // A listed arch without a table only gets the default action.
    assert_eq!(run(&p, &Data::new(Arch::Mips, 4020, [0; 6])), errno(1));

    // The same filter laid out on an arm64 host with arm listed.
    let f = filter(Action::Errno(1), vec![Arch::Arm], vec![rule(&["getpid", "cacheflush"], Action::Allow, vec![])]);
    let p = compile_for(&f, Arch::Aarch64).unwrap().program;
    assert_eq!(eval(&p, Arch::Aarch64, "getpid", [0; 6]), ALLOW);
    assert_eq!(eval(&p, Arch::Arm, "getpid", [0; 6]), ALLOW);
    assert_eq!(eval(&p, Arch::Arm, "cacheflush", [0; 6]), ALLOW);
    assert_eq!(eval(&p, Arch::Arm, "getppid", [0; 6]), errno(1));
    assert_eq!(eval(&p, Arch::X86_64, "getpid", [0; 6]), KILL_PROCESS);
}

#[test]
fn seccomp_x32_bit_cannot_slip_past_x86_64_rules() {
    let rules = vec![rule(&["getpid"], Action::Allow, vec![]), rule(&["execve"], Action::Errno(2), vec![])];
    // Default Allow: a blocklist, the case where ignoring the x32 bit would let `execve`
    // (520 | bit on x32) through.
    let p = prog(&filter(Action::Allow, vec![], rules.clone()));
    assert_eq!(eval(&p, Arch::X86_64, "execve", [0; 6]), errno(2));
    for x32_nr in [nr(Arch::X32, "execve"), 59 | X32_SYSCALL_BIT, X32_SYSCALL_BIT] {
        let d = Data::new(Arch::X86_64, x32_nr, [0; 6]);
        assert_eq!(run(&p, &d), KILL_PROCESS, "{x32_nr:#x}");
    }

    let p = prog(&filter(Action::Allow, vec![Arch::X32], rules));
    assert_eq!(eval(&p, Arch::X32, "execve", [0; 6]), errno(2));
    assert_eq!(eval(&p, Arch::X32, "getpid", [0; 6]), ALLOW);
    assert_eq!(eval(&p, Arch::X86_64, "execve", [0; 6]), errno(2));
    // x86_64's execve number with the bit set is not x32's execve.
    let d = Data::new(Arch::X86_64, 59 | X32_SYSCALL_BIT, [0; 6]);
    assert_eq!(run(&p, &d), ALLOW);
}

#[test]
fn seccomp_long_programs_keep_jumps_in_range() {
    // 400 names: every x86_64 name plus i386-only ones, three arch sections.
    let mut names: Vec<&str> = tables::X86_64.iter().map(|(n, _)| *n).collect();
    for (n, _) in tables::X86 {
        if names.len() == 400 {
            break;
        }
        if !names.contains(n) {
            names.push(n);
        }
    }
    assert_eq!(names.len(), 400);
    // Varied outcomes so that the dispatch has many distinct targets, some with arg checks.
    let rules: Vec<Rule> = names
        .iter()
        .enumerate()
        .map(|(i, name)| {
            let args = if i % 5 == 0 { vec![cmp(0, CmpOp::Gt, 0x1_0000_0000 + i as u64)] } else { vec![] };
            rule(&[name], Action::Errno(100 + (i % 40) as u32), args)
        })
        .collect();
    let f = filter(Action::Allow, vec![Arch::X86_64, Arch::X86, Arch::X32], rules);
    let c = compile_for(&f, Arch::X86_64).unwrap();
    assert!(c.unknown_syscalls.is_empty());
    assert!(c.program.len() > 1000, "{}", c.program.len());
    let ja = (libc::BPF_JMP | libc::BPF_JA) as u16;
    assert!(c.program.iter().any(|i| i.code == ja && i.k > 255));

    for (i, name) in names.iter().enumerate() {
        let action = errno(100 + (i % 40) as u32);
        for arch in [Arch::X86_64, Arch::X86, Arch::X32] {
            if arch.syscall_number(name).is_none() {
                continue;
            }
            if i % 5 == 0 {
                let check = |arg: u64, want: u32| {
                    let got = eval(&c.program, arch, name, [arg, 0, 0, 0, 0, 0]);
                    assert_eq!(got, want, "{name} on {arch:?} with {arg:#x}");
                };
                let i = i as u64;
                if arch == Arch::X86_64 {
                    check(0x1_0000_0001 + i, action);
                    check(0x1_0000_0000 + i, ALLOW);
                    check(i + 1, ALLOW);
                } else {
                    // 32-bit ABIs compare only the low half, here `i`.
                    check(i + 1, action);
                    check(i, ALLOW);
                }
            } else {
                assert_eq!(eval(&c.program, arch, name, [0; 6]), action, "{name} {arch:?}");
            }
        }
    }
    let d = Data::new(Arch::Aarch64, 1, [0; 6]);
    assert_eq!(run(&c.program, &d), KILL_PROCESS);
}

#[test]
fn seccomp_docker_like_profile_is_compact() {
    // An allow-list shaped like Docker's default: most syscalls, minus the dangerous ones,
    // a few argument rules, for x86_64 + x86 + x32.
    let blocked = [
        "acct",
        "add_key",
        "bpf",
        "clock_adjtime",
        "clock_settime",
        "clone",
        "clone3",
        "create_module",
        "delete_module",
        "finit_module",
        "get_kernel_syms",
        "get_mempolicy",
        "init_module",
        "ioperm",
        "iopl",
        "kcmp",
        "kexec_file_load",
        "kexec_load",
        "keyctl",
        "lookup_dcookie",
        "mbind",
        "mount",
        "move_pages",
        "name_to_handle_at",
        "nfsservctl",
        "open_by_handle_at",
        "perf_event_open",
        "personality",
        "pivot_root",
        "process_vm_readv",
        "process_vm_writev",
        "ptrace",
        "query_module",
        "quotactl",
        "reboot",
        "request_key",
        "set_mempolicy",
        "setns",
        "settimeofday",
        "socket",
        "stime",
        "swapoff",
        "swapon",
        "sysfs",
        "_sysctl",
        "umount",
        "umount2",
        "unshare",
        "uselib",
        "userfaultfd",
        "ustat",
        "vm86",
        "vm86old",
    ];
    let allowed: Vec<&str> = tables::X86_64
        .iter()
        .chain(tables::X86.iter())
        .map(|(n, _)| *n)
        .filter(|n| !blocked.contains(n))
        .collect::<std::collections::BTreeSet<_>>()
        .into_iter()
        .collect();
    let masked = |mask, value| ArgCmp { index: 0, value: mask, value_two: value, op: CmpOp::MaskedEq };
    let f = filter(
        Action::Errno(1),
        vec![Arch::X86_64, Arch::X86, Arch::X32],
        vec![
            rule(&allowed, Action::Allow, vec![]),
            rule(&["personality"], Action::Allow, vec![cmp(0, CmpOp::Eq, 0)]),
            rule(&["personality"], Action::Allow, vec![cmp(0, CmpOp::Eq, 8)]),
            rule(&["personality"], Action::Allow, vec![cmp(0, CmpOp::Eq, 0xffff_ffff)]),
            rule(&["clone"], Action::Allow, vec![masked(0x7E02_0000, 0)]),
            rule(&["clone3"], Action::Errno(38), vec![]),
            rule(&["socket"], Action::Allow, vec![cmp(0, CmpOp::Ne, 40)]),
        ],
    );
    let c = compile_for(&f, Arch::X86_64).unwrap();
    assert!(c.unknown_syscalls.is_empty(), "{:?}", c.unknown_syscalls);
    assert!(c.program.len() < 1000, "{} instructions", c.program.len());
    for arch in [Arch::X86_64, Arch::X86, Arch::X32] {
        let p = &c.program;
        for name in &allowed {
            if arch.syscall_number(name).is_some() {
                assert_eq!(eval(p, arch, name, [0; 6]), ALLOW, "{name} {arch:?}");
            }
        }
        for name in ["mount", "ptrace", "reboot", "unshare", "setns"] {
            assert_eq!(eval(p, arch, name, [0; 6]), errno(1), "{name} {arch:?}");
        }
        assert_eq!(eval(p, arch, "clone3", [0; 6]), errno(38));
        assert_eq!(eval(p, arch, "clone", [0x11, 0, 0, 0, 0, 0]), ALLOW);
        let newns = libc::CLONE_NEWNS as u64;
        assert_eq!(eval(p, arch, "clone", [newns, 0, 0, 0, 0, 0]), errno(1));
        assert_eq!(eval(p, arch, "personality", [8, 0, 0, 0, 0, 0]), ALLOW);
        assert_eq!(eval(p, arch, "personality", [9, 0, 0, 0, 0, 0]), errno(1));
        if arch != Arch::X86 {
            assert_eq!(eval(p, arch, "socket", [2, 0, 0, 0, 0, 0]), ALLOW);
            assert_eq!(eval(p, arch, "socket", [40, 0, 0, 0, 0, 0]), errno(1));
        }
        // Numbers beyond the table: a future syscall gets the default.
        let future = 600 | if arch == Arch::X32 { X32_SYSCALL_BIT } else { 0 };
        assert_eq!(run(p, &Data::new(arch, future, [0; 6])), errno(1));
    }
}

// ---- real kernel ----

/// Runs `child` in a forked process and returns its wait status. The child exits with the
/// code `child` returns (101 if it panicked) and never returns into the test harness.
fn in_child(child: impl FnOnce() -> i32) -> nix::sys::wait::WaitStatus {
    use nix::unistd::{fork, ForkResult};
    // SAFETY: the child only runs `child` (syscalls, no locks other threads might hold
    // besides malloc's, which glibc resets in the child) and leaves with _exit.
    match unsafe { fork() }.expect("fork") {
        ForkResult::Child => {
            let code = std::panic::catch_unwind(std::panic::AssertUnwindSafe(child)).unwrap_or(101);
            // SAFETY: ends the child without running the parent's atexit handlers.
            unsafe { libc::_exit(code) }
        }
        ForkResult::Parent { child } => nix::sys::wait::waitpid(child, None).expect("waitpid"),
    }
}

fn errno_now() -> i32 {
    io::Error::last_os_error().raw_os_error().unwrap_or(0)
}

fn no_new_privs_no_core() {
    nix::sys::resource::setrlimit(nix::sys::resource::Resource::RLIMIT_CORE, 0, 0).expect("RLIMIT_CORE");
    nix::sys::prctl::set_no_new_privs().expect("no_new_privs");
}

#[cfg(target_arch = "x86_64")]
#[test]
fn seccomp_kernel_errno_args_and_kill() {
    use nix::sys::signal::Signal;
    use nix::sys::wait::WaitStatus;
    let mut f = filter(
        Action::Allow,
        vec![Arch::X86_64, Arch::X86, Arch::X32],
        vec![
            rule(&["getpid"], Action::Errno(0), vec![]),
            rule(&["uname"], Action::Errno(98), vec![]),
            rule(&["getuid"], Action::Errno(99), vec![cmp(0, CmpOp::Eq, 0x1_0000_0005)]),
            rule(&["getppid"], Action::KillProcess, vec![]),
        ],
    );
    f.rules[0].errno = Some(97);
    let p = compile(&f).unwrap();
    let status = in_child(|| {
        no_new_privs_no_core();
        if install(&p, &[FilterFlag::SpecAllow]).is_err() && install(&p, &[]).is_err() {
            return 2;
        }
        // SAFETY (these calls): raw syscalls with no memory arguments, or a valid buffer.
        if unsafe { libc::syscall(libc::SYS_getpid) } != -1 || errno_now() != 97 {
            return 3;
        }
        let mut uts: libc::utsname = unsafe { std::mem::zeroed() };
        if unsafe { libc::syscall(libc::SYS_uname, &mut uts) } != -1 || errno_now() != 98 {
            return 4;
        }
        // The low half matches 5 but the high half differs: allowed.
        if unsafe { libc::syscall(libc::SYS_getuid, 5u64) } < 0 {
            return 5;
        }
        if unsafe { libc::syscall(libc::SYS_getuid, 0x1_0000_0005u64) } != -1 || errno_now() != 99 {
            return 6;
        }
        unsafe { libc::syscall(libc::SYS_getppid) };
        7
    });
    assert!(
        matches!(status, WaitStatus::Signaled(_, Signal::SIGSYS, _)),
        "child ended with {status:?} (exit codes: 2 install, 3 getpid, 4 uname, 5/6 getuid, 7 not killed)"
    );
}

/// The kernel's own checker accepts a long program with far jumps, and it decides as the
/// interpreter does.
#[cfg(target_arch = "x86_64")]
#[test]
fn seccomp_kernel_accepts_long_programs() {
    use nix::sys::wait::WaitStatus;
    let names: Vec<&str> = tables::X86_64.iter().map(|(n, _)| *n).filter(|n| !["exit", "exit_group"].contains(n)).collect();
    let expected = |name: &str| 100 + names.iter().position(|n| *n == name).unwrap() as u32 % 40;
    let rules = names
        .iter()
        .enumerate()
        .map(|(i, name)| {
            let args = if i % 3 == 0 { vec![cmp(5, CmpOp::Ne, 0x7777_0000_0000)] } else { vec![] };
            rule(&[name], Action::Errno(100 + (i % 40) as u32), args)
        })
        .collect();
    let f = filter(Action::Allow, vec![Arch::X86_64, Arch::X86, Arch::X32], rules);
    let p = compile(&f).unwrap();
    assert!(p.len() > 600, "{}", p.len());
    let (getpid, uname) = (expected("getpid"), expected("uname"));
    let status = in_child(|| {
        no_new_privs_no_core();
        if install(&p, &[]).is_err() {
            return 2;
        }
        // SAFETY: raw syscalls; the kernel answers from the filter before looking at them.
        if unsafe { libc::syscall(libc::SYS_getpid) } != -1 || errno_now() != getpid as i32 {
            return 3;
        }
        if unsafe { libc::syscall(libc::SYS_uname, 0usize) } != -1 || errno_now() != uname as i32 {
            return 4;
        }
        0
    });
    assert_eq!(status, WaitStatus::Exited(status.pid().unwrap(), 0), "2 install, 3 getpid, 4 uname");
}

#[test]
fn seccomp_kernel_notify_round_trip() {
    use nix::poll::{poll, PollFd, PollFlags, PollTimeout};
    use nix::sys::socket::{
        recvmsg, sendmsg, socketpair, AddressFamily, ControlMessage, ControlMessageOwned, MsgFlags, SockFlag, SockType,
    };
    use nix::sys::wait::WaitStatus;
    use std::io::{IoSlice, IoSliceMut};
    use std::os::fd::AsFd;

    let getpid = nr(Arch::native().unwrap(), "getpid");
    let f = filter(Action::Allow, vec![], vec![rule(&["getpid"], Action::Notify, vec![])]);
    let p = compile(&f).unwrap();
    let (ours, theirs) = socketpair(AddressFamily::Unix, SockType::Stream, None, SockFlag::SOCK_CLOEXEC).unwrap();

    use nix::unistd::{fork, ForkResult};
    // SAFETY: as in `in_child`; the child only makes syscalls and leaves with _exit.
    let child = match unsafe { fork() }.expect("fork") {
        ForkResult::Child => {
            let code = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
                drop(ours);
                no_new_privs_no_core();
                let listener = match install(&p, &[]) {
                    Ok(Some(fd)) => fd,
                    _ => return 2,
                };
                let fds = [listener.as_raw_fd()];
                let cmsg = [ControlMessage::ScmRights(&fds)];
                let iov = [IoSlice::new(b"L")];
                if sendmsg::<()>(theirs.as_raw_fd(), &iov, &cmsg, MsgFlags::empty(), None).is_err() {
                    return 3;
                }
                drop(listener);
                // SAFETY: plain syscalls without arguments.
                if unsafe { libc::syscall(libc::SYS_getpid) } != -1 || errno_now() != 42 {
                    return 4;
                }
                if unsafe { libc::syscall(libc::SYS_getpid) } != 4242 {
                    return 5;
                }
                0
            }))
            .unwrap_or(101);
            // SAFETY: ends the child without running the parent's atexit handlers.
            unsafe { libc::_exit(code) }
        }
        ForkResult::Parent { child } => child,
    };
    drop(theirs);

    let mut byte = [0u8; 1];
    let mut iov = [IoSliceMut::new(&mut byte)];
    let mut space = nix::cmsg_space!([RawFd; 1]);
    let msg = recvmsg::<()>(ours.as_raw_fd(), &mut iov, Some(&mut space), MsgFlags::empty()).expect("recvmsg");
    let mut raw = None;
    for c in msg.cmsgs().expect("cmsgs") {
        if let ControlMessageOwned::ScmRights(fds) = c {
            raw = fds.first().copied();
        }
    }
    let raw = raw.unwrap_or_else(|| panic!("no listener fd; child: {:?}", nix::sys::wait::waitpid(child, None)));
    // SAFETY: SCM_RIGHTS installed this fd in our table; nothing else owns it.
    let listener = unsafe { OwnedFd::from_raw_fd(raw) };

    for response in [NotifyResponse::Errno(42), NotifyResponse::Value(4242)] {
        let mut pfd = [PollFd::new(listener.as_fd(), PollFlags::POLLIN)];
        let ready = poll(&mut pfd, PollTimeout::from(10_000u16)).expect("poll");
        assert_eq!(ready, 1, "no notification within 10 s");
        let n = notify_receive(listener.as_fd()).expect("NOTIF_RECV");
        assert_eq!(n.nr as u32, getpid);
        assert_eq!(n.pid as i32, child.as_raw());
        assert_eq!(n.arch, Arch::native().unwrap().audit_arch());
        assert!(notify_id_valid(listener.as_fd(), n.id).unwrap());
        notify_respond(listener.as_fd(), n.id, response).expect("NOTIF_SEND");
    }
    let status = nix::sys::wait::waitpid(child, None).expect("waitpid");
    assert_eq!(status, WaitStatus::Exited(child, 0), "child codes: 2 install, 3 send, 4/5 getpid");
}
