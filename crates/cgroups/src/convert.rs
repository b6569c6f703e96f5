//! Conversions between the v1 scales the OCI spec uses and the v2 files' scales.

/// cpu.shares (2..=262144, default 1024) -> cpu.weight (1..=10000, default 100).
///
/// The mapping runc (>= 1.3.2) and crun (>= 1.23) adopted: a quadratic in log2(shares) through
/// the three points that matter (2 -> 1, 1024 -> 100, 262144 -> 10000), so the default share
/// maps to the default weight. The older linear formula turned 1024 into 39, which made every
/// container weigh less than a plain systemd service.
pub fn shares_to_weight(shares: u64) -> u64 {
    match shares {
        0 => 0,
        1..=2 => 1,
        262_144.. => 10_000,
        _ => {
            let l = (shares as f64).log2();
            let exponent = (l * l + 125.0 * l) / 612.0 - 7.0 / 34.0;
            10f64.powf(exponent).ceil() as u64
        }
    }
}

/// The inverse of [`shares_to_weight`], for showing a v2 weight as shares: the share count
/// nearest the curve that converts back to `weight` (100 -> 1024, not the 1012 that also would).
pub fn weight_to_shares(weight: u64) -> u64 {
    match weight {
        0 => 0,
        1 => 2,
        10_000.. => 262_144,
        _ => {
            // Solve l^2 + 125 l - 612 (log10 w + 7/34) = 0 for l = log2(shares), then settle
            // the floating-point estimate on the exact integer.
            let c = 612.0 * ((weight as f64).log10() + 7.0 / 34.0);
            let l = (-125.0 + (125.0f64 * 125.0 + 4.0 * c).sqrt()) / 2.0;
            let mut s = (2f64.powf(l).round() as u64).clamp(2, 262_144);
            while s < 262_144 && shares_to_weight(s) < weight {
                s += 1;
            }
            while s > 2 && shares_to_weight(s) > weight && shares_to_weight(s - 1) >= weight {
                s -= 1;
            }
            s
        }
    }
}

/// blkio.weight (10..=1000) -> io.weight (1..=10000), linearly, as runc and crun do.
pub fn blkio_weight_to_io_weight(weight: u16) -> u64 {
    if weight == 0 {
        return 0;
    }
    1 + (u64::from(weight.max(10)) - 10) * 9999 / 990
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn shares_to_weight_fixed_points() {
        assert_eq!(shares_to_weight(0), 0);
        assert_eq!(shares_to_weight(2), 1);
        assert_eq!(shares_to_weight(1024), 100);
        assert_eq!(shares_to_weight(262_144), 10_000);
        assert_eq!(shares_to_weight(512), 59);
        assert_eq!(shares_to_weight(2048), 174);
    }

    #[test]
    fn shares_to_weight_is_monotonic_and_in_range() {
        let mut last = 0;
        for s in 2..=262_144u64 {
            let w = shares_to_weight(s);
            assert!((1..=10_000).contains(&w), "{s} -> {w}");
            assert!(w >= last, "not monotonic at {s}");
            last = w;
        }
    }

    #[test]
    fn weight_to_shares_round_trips() {
        assert_eq!(weight_to_shares(1), 2);
        assert_eq!(weight_to_shares(100), 1024);
        assert_eq!(weight_to_shares(10_000), 262_144);
        for w in [2u64, 10, 50, 100, 500, 1000, 5000, 9999] {
            assert_eq!(shares_to_weight(weight_to_shares(w)), w, "weight {w}");
        }
    }

    #[test]
    fn blkio_weight_conversion() {
        assert_eq!(blkio_weight_to_io_weight(10), 1);
        assert_eq!(blkio_weight_to_io_weight(500), 4950);
        assert_eq!(blkio_weight_to_io_weight(1000), 10_000);
    }
}
