//! Times as conex writes and reads them.

// ---------------------------------------------------------------- time

/// Days since 1970-01-01 of a civil date (proleptic Gregorian).
fn days_from_civil(y: i64, m: i64, d: i64) -> i64 {
    let y = if m <= 2 { y - 1 } else { y };
    let era = if y >= 0 { y } else { y - 399 } / 400;
    let yoe = y - era * 400;
    let mp = (m + 9) % 12;
    let doy = (153 * mp + 2) / 5 + d - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    era * 146097 + doe - 719468
}

/// Formats unix seconds as RFC 3339 UTC `YYYY-MM-DDThh:mm:ssZ`.
pub fn format_time(secs: i64) -> String {
    let days = secs.div_euclid(86400);
    let rem = secs.rem_euclid(86400);
    let z = days + 719468;
    let era = if z >= 0 { z } else { z - 146096 } / 146097;
    let doe = z - era * 146097;
    let yoe = (doe - doe / 1460 + doe / 36524 - doe / 146096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = doy - (153 * mp + 2) / 5 + 1;
    let m = if mp < 10 { mp + 3 } else { mp - 9 };
    let y = yoe + era * 400 + i64::from(m <= 2);
    format!(
        "{y:04}-{m:02}-{d:02}T{:02}:{:02}:{:02}Z",
        rem / 3600,
        rem % 3600 / 60,
        rem % 60
    )
}

/// Parses an RFC 3339 time (`YYYY-MM-DDThh:mm:ss[.frac](Z|±hh:mm)`) to unix
/// seconds, as conex parses a timestamp's `created`.
pub fn parse_time(s: &str) -> Option<i64> {
    let b = s.as_bytes();
    let num = |r: std::ops::Range<usize>| -> Option<i64> {
        let t = s.get(r)?;
        if t.bytes().all(|c| c.is_ascii_digit()) {
            t.parse().ok()
        } else {
            None
        }
    };
    if b.len() < 20
        || b[4] != b'-'
        || b[7] != b'-'
        || !matches!(b[10], b'T' | b't')
        || b[13] != b':'
        || b[16] != b':'
    {
        return None;
    }
    let (y, mo, d, h, mi, se) = (
        num(0..4)?,
        num(5..7)?,
        num(8..10)?,
        num(11..13)?,
        num(14..16)?,
        num(17..19)?,
    );
    if !(1..=12).contains(&mo) || !(1..=31).contains(&d) || h > 23 || mi > 59 || se > 60 {
        return None;
    }
    let mut i = 19;
    if b.get(i) == Some(&b'.') {
        i += 1;
        while b.get(i).is_some_and(u8::is_ascii_digit) {
            i += 1;
        }
    }
    let off = match b.get(i)? {
        b'Z' | b'z' if i + 1 == b.len() => 0,
        c @ (b'+' | b'-') if i + 6 == b.len() && b[i + 3] == b':' => {
            let (oh, om) = (num(i + 1..i + 3)?, num(i + 4..i + 6)?);
            let o = oh * 3600 + om * 60;
            if *c == b'+' {
                o
            } else {
                -o
            }
        }
        _ => return None,
    };
    Some(days_from_civil(y, mo, d) * 86400 + h * 3600 + mi * 60 + se - off)
}

/// conex 1.0's `timestamp_to_int64`, the reading of a timestamp's
/// `created` that decides its verdict: `YYYY-MM-DDTHH:MM:SS` then `Z` or
/// `+H:M` / `-H:M`, each field read by OCaml's `int_of_string` (so `7`,
/// `07`, `0x7` and `0_7` are all seven), month 1–12, day 1–31, hour 0–23,
/// minute 0–59, second 0–60, offset hour 0–23 and minute 0–59; the offset
/// is *added* (as conex does); the result must be after the epoch. No
/// fractional seconds, no lower-case `t` or `z`.
pub fn conex_timestamp(ts: &str) -> Option<i64> {
    let int = |s: &str| crate::conex::wire::ocaml_int_of_string(s.as_bytes());
    let (date, time) = ts.split_once('T')?;
    let d: Vec<&str> = date.split('-').collect();
    let [year, month, day] = d.as_slice() else {
        return None;
    };
    if year.len() != 4 {
        return None;
    }
    let (y, m, d) = (int(year)?, int(month)?, int(day)?);
    if !(1..=12).contains(&m) || !(1..=31).contains(&d) {
        return None;
    }
    let (time, offset) = match time.split_once('Z') {
        Some((t, "")) => (t, 0i64),
        Some(_) => return None,
        None => {
            let (t, sign, off) = match (time.split_once('+'), time.split_once('-')) {
                (Some(_), Some(_)) | (None, None) => return None,
                (Some((t, o)), None) => (t, 1i64, o),
                (None, Some((t, o))) => (t, -1i64, o),
            };
            let (h, mi) = off.split_once(':')?;
            let (h, mi) = (int(h)?, int(mi)?);
            if !(0..=23).contains(&h) || !(0..=59).contains(&mi) {
                return None;
            }
            (t, sign * ((h * 60 + mi) * 60))
        }
    };
    let t: Vec<&str> = time.split(':').collect();
    let [hh, mm, ss] = t.as_slice() else {
        return None;
    };
    let (h, mi, s) = (int(hh)?, int(mm)?, int(ss)?);
    if !(0..=23).contains(&h) || !(0..=59).contains(&mi) || !(0..=60).contains(&s) {
        return None;
    }
    // the Julian day number formula conex uses, minus the POSIX epoch
    let a = (14 - m) / 12;
    let yy = y.checked_add(4800)?.checked_sub(a)?;
    let mm = m + 12 * a - 3;
    let days = d
        .checked_add((153 * mm + 2) / 5)?
        .checked_add(yy.checked_mul(365)?)?
        .checked_add(yy / 4)?
        .checked_sub(yy / 100)?
        .checked_add(yy / 400)?
        .checked_sub(32045)?
        .checked_sub(2440588)?;
    let r = days
        .checked_mul(86400)?
        .checked_add(h * 3600 + mi * 60 + s + offset)?;
    (r > 0).then_some(r)
}
