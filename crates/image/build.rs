//! `CONDUCTOR_DEBOOTSTRAP_TEST=1` un-ignores the real debootstrap test (network, minutes).

fn main() {
    println!("cargo::rustc-check-cfg=cfg(conductor_debootstrap_test)");
    println!("cargo::rerun-if-env-changed=CONDUCTOR_DEBOOTSTRAP_TEST");
    if std::env::var("CONDUCTOR_DEBOOTSTRAP_TEST").is_ok_and(|v| v == "1") {
        println!("cargo::rustc-cfg=conductor_debootstrap_test");
    }
}
