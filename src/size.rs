//! Sizes as people write them, and as box prints them.
//!
//! [`parse`] takes a whole number of bytes with an optional unit: `1048576`, `512k`, `200M`,
//! `1G`, `200MiB`, `2t`. Units are binary (k = 1024) and case-insensitive; `K`, `KB` and `KiB`
//! all mean 1024, as in docker's `--memory`. Anything else (fractions, unknown units, overflow)
//! is refused with the reason. [`format`] prints the exact value in the largest unit that
//! divides it (`64 MiB`), or one decimal when none does (`95.4 MiB`).

pub const KIB: u64 = 1 << 10;
pub const MIB: u64 = 1 << 20;
pub const GIB: u64 = 1 << 30;
pub const TIB: u64 = 1 << 40;

/// The one-line hint given with every refusal.
const FORMS: &str = "a whole number of bytes with an optional binary unit k, M, G or T \
                     (512k, 200M, 1G, 200MiB)";

/// Parse a size; the error is the reason, for the caller to prefix with what it parsed
/// (`--memory 1.5G: ...`).
pub fn parse(s: &str) -> Result<u64, String> {
    let t = s.trim();
    let digits_end = t.find(|c: char| !c.is_ascii_digit()).unwrap_or(t.len());
    let (digits, unit) = t.split_at(digits_end);
    if digits.is_empty() {
        return Err(format!("not a size: expected {FORMS}"));
    }
    let mult = match unit.to_ascii_lowercase().as_str() {
        "" | "b" => 1,
        "k" | "kb" | "kib" => KIB,
        "m" | "mb" | "mib" => MIB,
        "g" | "gb" | "gib" => GIB,
        "t" | "tb" | "tib" => TIB,
        _ if unit.starts_with(['.', ',']) => {
            return Err(format!("not a whole number: expected {FORMS}"))
        }
        _ => return Err(format!("unknown unit {unit:?}: expected {FORMS}")),
    };
    digits
        .parse::<u64>()
        .ok()
        .and_then(|n| n.checked_mul(mult))
        .ok_or_else(|| "too large (more than 16 EiB)".to_string())
}

/// `bytes` for people: `64 MiB`, `1 GiB`, `512 KiB`, `100 bytes`, `95.4 MiB`.
pub fn format(bytes: u64) -> String {
    const UNITS: [(u64, &str); 4] = [(TIB, "TiB"), (GIB, "GiB"), (MIB, "MiB"), (KIB, "KiB")];
    if let Some((unit, name)) = UNITS
        .iter()
        .find(|(u, _)| bytes >= *u && bytes.is_multiple_of(*u))
    {
        return format!("{} {name}", bytes / unit);
    }
    match UNITS.iter().find(|(u, _)| bytes >= *u) {
        Some((unit, name)) => format!("{:.1} {name}", bytes as f64 / *unit as f64),
        None if bytes == 1 => "1 byte".to_string(),
        None => format!("{bytes} bytes"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn good_sizes() {
        for (s, want) in [
            ("1048576", 1048576),
            ("0", 0),
            ("512k", 512 * KIB),
            ("512K", 512 * KIB),
            ("512KiB", 512 * KIB),
            ("200M", 200 * MIB),
            ("200m", 200 * MIB),
            ("200MiB", 200 * MIB),
            ("200mib", 200 * MIB),
            ("200MB", 200 * MIB),
            ("1G", GIB),
            ("1g", GIB),
            ("2T", 2 * TIB),
            ("64b", 64),
            (" 64M ", 64 * MIB),
        ] {
            assert_eq!(parse(s), Ok(want), "{s:?}");
        }
    }

    #[test]
    fn bad_sizes_say_why() {
        let err = |s: &str| parse(s).unwrap_err();
        assert!(err("").starts_with("not a size: expected a whole number"));
        assert!(err("M").starts_with("not a size"));
        assert!(err("-1M").starts_with("not a size"));
        assert!(err("abc").starts_with("not a size"));
        assert!(err("1.5G").starts_with("not a whole number"));
        assert!(err("12X").starts_with("unknown unit \"X\""));
        assert!(err("12 MB").starts_with("unknown unit \" MB\""));
        assert!(err("1Mi").starts_with("unknown unit \"Mi\""));
        assert!(err("10P").starts_with("unknown unit \"P\""));
        assert_eq!(err("20000000T"), "too large (more than 16 EiB)");
        assert_eq!(err("99999999999999999999"), "too large (more than 16 EiB)");
    }

    #[test]
    fn formatting_is_exact_when_it_can_be() {
        assert_eq!(format(64 * MIB), "64 MiB");
        assert_eq!(format(GIB), "1 GiB");
        assert_eq!(format(1536 * MIB), "1536 MiB");
        assert_eq!(format(512 * KIB), "512 KiB");
        assert_eq!(format(3 * TIB), "3 TiB");
        assert_eq!(format(100), "100 bytes");
        assert_eq!(format(1), "1 byte");
        assert_eq!(format(0), "0 bytes");
        assert_eq!(format(100_000_000), "95.4 MiB");
        assert_eq!(format(1025), "1.0 KiB");
    }
}
