//! The `CODE_PASS` id obfuscation (videoproxy `DecodeVid`). Which ids and itags are valid is
//! the policy's rule, not this module's.

/// The alphabet of video ids, in the order the obfuscation uses.
const ALPHABET: &[u8; 64] = b"abcdefghijklmnopqrstuvwxyz0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZ-_";

/// Why an obfuscated id does not decode.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum DecodeError {
    /// Fewer than the two check characters.
    #[error("obfuscated id is too short")]
    TooShort,
    /// A check character does not match (wrong `CODE_PASS` or a mangled id).
    #[error("obfuscated id fails its check")]
    Check,
    /// A character outside the id alphabet.
    #[error("obfuscated id has a character outside the id alphabet")]
    Alphabet,
}

/// The substitution alphabet for `r1`, `r2`: the alphabet rotated left by `r1`, then its
/// first `r2 mod 64` positions swapped with their mirror positions, one after another (so
/// past the middle the swaps undo earlier ones, exactly as videoproxy does).
fn cipher_alphabet(r1: u64, r2: u64) -> [u8; 64] {
    let mut t = *ALPHABET;
    t.rotate_left((r1 % 64) as usize);
    for i in 0..(r2 % 64) as usize {
        t.swap(i, 63 - i);
    }
    t
}

fn alphabet_at(n: u64) -> u8 {
    ALPHABET.get((n % 64) as usize).copied().unwrap_or(b'a')
}

fn byte_sum(bytes: &[u8]) -> u64 {
    bytes.iter().map(|&b| u64::from(b)).sum()
}

/// Decodes an id obfuscated with `CODE_PASS=r1,r2` (videoproxy `util.DecodeVid`): the first
/// and last characters are checks, the ones between are substituted.
pub fn decode_vid(encoded: &str, r1: u64, r2: u64) -> Result<String, DecodeError> {
    let bytes = encoded.as_bytes();
    let (Some((&last, checked)), Some(&first)) = (bytes.split_last(), bytes.first()) else {
        return Err(DecodeError::TooShort);
    };
    let Some(middle) = checked.get(1..) else {
        return Err(DecodeError::TooShort);
    };
    let n = byte_sum(checked);
    if alphabet_at(n % 64 + r2 % 64) != last {
        return Err(DecodeError::Check);
    }
    if alphabet_at(byte_sum(middle) % 64 + r1 % 64) != first {
        return Err(DecodeError::Check);
    }
    let cipher = cipher_alphabet(r1, r2);
    middle
        .iter()
        .map(|c| {
            let i = cipher
                .iter()
                .position(|x| x == c)
                .ok_or(DecodeError::Alphabet)?;
            ALPHABET
                .get(i)
                .map(|&b| char::from(b))
                .ok_or(DecodeError::Alphabet)
        })
        .collect()
}

/// Obfuscates `vid` for `CODE_PASS=r1,r2`: the inverse of [`decode_vid`]. `None` if `vid`
/// has a character outside the id alphabet.
pub fn encode_vid(vid: &str, r1: u64, r2: u64) -> Option<String> {
    let cipher = cipher_alphabet(r1, r2);
    let middle = vid
        .bytes()
        .map(|c| {
            let i = ALPHABET.iter().position(|&x| x == c)?;
            cipher.get(i).copied()
        })
        .collect::<Option<Vec<u8>>>()?;
    let sum = byte_sum(&middle);
    let first = alphabet_at(sum % 64 + r1 % 64);
    let last = alphabet_at((sum + u64::from(first)) % 64 + r2 % 64);
    let mut out = String::with_capacity(middle.len() + 2);
    out.push(char::from(first));
    out.extend(middle.iter().map(|&b| char::from(b)));
    out.push(char::from(last));
    Some(out)
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    /// A straight transcription of videoproxy's Go `DecodeVid`, as the reference.
    fn go_decode(s: &str, r1: i64, r2: i64) -> Result<String, ()> {
        let t = ALPHABET;
        let l = t.len() as i64;
        let b = s.as_bytes();
        let n: i64 = b[..b.len() - 1].iter().map(|&c| i64::from(c)).sum();
        if t[((n + r2) % l) as usize] != b[b.len() - 1] {
            return Err(());
        }
        if t[(((n - i64::from(b[0])) + r1) % l) as usize] != b[0] {
            return Err(());
        }
        let k = (r1 % l) as usize;
        let mut t1: Vec<u8> = t[k..].iter().chain(t[..k].iter()).copied().collect();
        for i in 0..(r2 % l) as usize {
            t1.swap(i, l as usize - 1 - i);
        }
        let mut out = String::new();
        for c in &b[1..b.len() - 1] {
            let i = t1.iter().position(|x| x == c).ok_or(())?;
            out.push(char::from(t[i]));
        }
        Ok(out)
    }

    #[test]
    fn round_trips_and_matches_the_go_algorithm() {
        let vids = ["dQw4w9WgXcQ", "aaaaaa", "Z_-09zAB", "fixtureVid01"];
        for (r1, r2) in [(1, 1), (3, 7), (64, 64), (100, 31), (5, 40), (12345, 999)] {
            for vid in vids {
                let enc = encode_vid(vid, r1, r2).unwrap();
                assert_eq!(enc.len(), vid.len() + 2);
                assert_eq!(decode_vid(&enc, r1, r2).unwrap(), vid, "{r1},{r2}");
                assert_eq!(go_decode(&enc, r1 as i64, r2 as i64).unwrap(), vid);
            }
        }
    }

    #[test]
    fn rejects_wrong_pass_and_mangled_ids() {
        let enc = encode_vid("dQw4w9WgXcQ", 3, 7).unwrap();
        // A different r2 changes the last check; a different r1 the first one.
        assert_eq!(decode_vid(&enc, 3, 8), Err(DecodeError::Check));
        assert_eq!(decode_vid(&enc, 4, 7), Err(DecodeError::Check));
        let mut mangled = enc.clone().into_bytes();
        mangled[3] = if mangled[3] == b'a' { b'b' } else { b'a' };
        assert_eq!(
            decode_vid(std::str::from_utf8(&mangled).unwrap(), 3, 7),
            Err(DecodeError::Check)
        );
        assert_eq!(decode_vid("a", 3, 7), Err(DecodeError::TooShort));
        assert_eq!(decode_vid("", 3, 7), Err(DecodeError::TooShort));
    }
}
