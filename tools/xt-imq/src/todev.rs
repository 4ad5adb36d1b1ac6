//! The option `--todev N` and the texts of the target: pure, so it is tested without iptables.

use std::fmt;

/// Highest device number the option accepts. The original IMQ had at most 16 devices
/// (`IMQ_MAX_DEVS`) and refused higher numbers with "invalid device specified, highest is 15";
/// the module's `numdevs` is likewise 1 to 16 and its `checkentry` refuses `todev >= numdevs`.
pub const MAX_TODEV: u32 = 15;

/// Device number a rule without `--todev` uses (as the original: "defaults to 0").
pub const DEFAULT_TODEV: u32 = 0;

/// Usage text for `iptables -j IMQ --help`.
pub const HELP: &str = "IMQ target options:\n  --todev <N>\t\tenqueue to imq<N> (0 to 15, below the module's numdevs), defaults to 0\n";

/// Why a `--todev` argument is refused; `Display` is the message iptables prints.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum TodevError {
    /// Not a decimal number (empty, a sign, hex, trailing text...).
    NotANumber(String),
    /// A number above [`MAX_TODEV`] (overflowing ones included).
    OutOfRange(String),
    /// `--todev` given twice for one rule.
    Repeated,
    /// `! --todev N`: there is nothing to invert.
    Inverted,
}

impl fmt::Display for TodevError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::NotANumber(arg) => write!(
                f,
                "IMQ: bad value for --todev \"{arg}\": a device number from 0 to {MAX_TODEV} is expected"
            ),
            Self::OutOfRange(arg) => write!(
                f,
                "IMQ: invalid device specified (--todev {arg}), highest is {MAX_TODEV}"
            ),
            Self::Repeated => write!(f, "IMQ: --todev may be given only once"),
            Self::Inverted => write!(f, "IMQ: unexpected \"!\" with --todev"),
        }
    }
}

/// Parses the argument of `--todev`: decimal digits only (as the original's `atoi`, but refusing
/// what `atoi` silently turned into 0 or a huge number), at most [`MAX_TODEV`].
pub fn parse(arg: &[u8]) -> Result<u32, TodevError> {
    let shown = || String::from_utf8_lossy(arg).into_owned();
    if arg.is_empty() || !arg.iter().all(u8::is_ascii_digit) {
        return Err(TodevError::NotANumber(shown()));
    }
    let mut value: u32 = 0;
    for &d in arg {
        value = value
            .checked_mul(10)
            .and_then(|v| v.checked_add(u32::from(d - b'0')))
            .ok_or_else(|| TodevError::OutOfRange(shown()))?;
    }
    if value > MAX_TODEV {
        return Err(TodevError::OutOfRange(shown()));
    }
    Ok(value)
}

/// What `iptables -L` shows after the rule (extensions print a leading space).
pub fn print_text(todev: u32) -> String {
    format!(" IMQ: todev {todev}")
}

/// What `iptables-save` and `iptables -S` append after `-j IMQ`; parses back to `todev`.
pub fn save_text(todev: u32) -> String {
    format!(" --todev {todev}")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn accepts_decimal_device_numbers() {
        assert_eq!(parse(b"0"), Ok(0));
        assert_eq!(parse(b"1"), Ok(1));
        assert_eq!(parse(b"15"), Ok(15));
        assert_eq!(parse(b"007"), Ok(7));
    }

    #[test]
    fn refuses_what_is_not_a_number() {
        for bad in [
            &b""[..],
            b"x",
            b"-1",
            b"+1",
            b" 1",
            b"1 ",
            b"0x1",
            b"1a",
            b"1.0",
        ] {
            assert!(
                matches!(parse(bad), Err(TodevError::NotANumber(_))),
                "{:?}",
                String::from_utf8_lossy(bad)
            );
        }
    }

    #[test]
    fn refuses_numbers_above_the_highest_device() {
        for bad in [
            &b"16"[..],
            b"99",
            b"4294967295",
            b"4294967296",
            b"99999999999",
        ] {
            assert_eq!(
                parse(bad),
                Err(TodevError::OutOfRange(String::from_utf8_lossy(bad).into())),
            );
        }
    }

    #[test]
    fn messages_name_the_option_and_the_value() {
        assert_eq!(
            parse(b"x").unwrap_err().to_string(),
            "IMQ: bad value for --todev \"x\": a device number from 0 to 15 is expected"
        );
        assert_eq!(
            parse(b"99999999999").unwrap_err().to_string(),
            "IMQ: invalid device specified (--todev 99999999999), highest is 15"
        );
        assert_eq!(
            TodevError::Repeated.to_string(),
            "IMQ: --todev may be given only once"
        );
        assert_eq!(
            TodevError::Inverted.to_string(),
            "IMQ: unexpected \"!\" with --todev"
        );
    }

    #[test]
    fn invalid_utf8_is_shown_not_trusted() {
        assert_eq!(
            parse(b"\xff"),
            Err(TodevError::NotANumber("\u{fffd}".into()))
        );
    }

    #[test]
    fn print_and_save_formats() {
        assert_eq!(print_text(0), " IMQ: todev 0");
        assert_eq!(save_text(15), " --todev 15");
    }

    #[test]
    fn saved_text_parses_back() {
        for todev in 0..=MAX_TODEV {
            let saved = save_text(todev);
            let arg = saved.strip_prefix(" --todev ").unwrap();
            assert_eq!(parse(arg.as_bytes()), Ok(todev));
        }
    }

    #[test]
    fn help_documents_the_option_and_default() {
        assert!(HELP.starts_with("IMQ target options:\n"));
        assert!(HELP.contains("--todev <N>") && HELP.contains("defaults to 0"));
        assert_eq!(DEFAULT_TODEV, 0);
    }
}
