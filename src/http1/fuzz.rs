//! A deterministic fuzz of the pure HTTP/1.1 parser (`http1.rs`): valid requests, mutated
//! and random byte streams, from a seeded SplitMix64, through [`HeadReader`] and
//! [`Chunked`]. Invariants: nothing panics; no more bytes are taken than given; a parsed
//! head re-serialises and parses back to the same head; feeding the input in two pieces
//! split at any byte, or a byte at a time, gives the same outcome as feeding it whole.
//!
//! `make test` runs a few thousand cases from a fixed seed (well under a second in a
//! debug build); `make fuzz` runs more from a new seed (`MCPCTL_FUZZ_SEED`,
//! `MCPCTL_FUZZ_ITERS`); `MCPCTL_FUZZ_ONLY=<iteration>` replays one case and prints it.

use super::{head_of, parse_head, BodyError, Chunked, HeadError, HeadReader};

const DEFAULT_SEED: u64 = 0x6d63_7063_746c_4831;
const DEFAULT_ITERS: u64 = 3000;
/// Inputs up to this long are split at every byte; longer ones at a dozen places.
const SPLIT_ALL_UP_TO: usize = 300;

/// SplitMix64: no crate, the same sequence everywhere.
pub(super) struct Rng(u64);

impl Rng {
    /// The generator of one case: independent of the others, so one can be replayed alone.
    pub(super) fn for_case(seed: u64, iter: u64) -> Rng {
        let mut r = Rng(seed ^ iter.wrapping_mul(0xa076_1d64_78bd_642f));
        r.next();
        r
    }
    fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9e37_79b9_7f4a_7c15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        z ^ (z >> 31)
    }
    fn below(&mut self, n: usize) -> usize {
        (self.next() % n.max(1) as u64) as usize
    }
    fn one_in(&mut self, n: usize) -> bool {
        self.below(n) == 0
    }
    fn pick<'a, T>(&mut self, items: &'a [T]) -> &'a T {
        &items[self.below(items.len())]
    }
}

/// Requests the mutations start from: every framing, version and header shape we serve.
const SEEDS: &[&str] = &[
    "GET /health HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n",
    "GET http://127.0.0.1:7878/status?x=1 HTTP/1.1\r\nHost: evil\r\nConnection: close\r\n\r\n",
    "POST /mcp/fx HTTP/1.1\r\nHost: a\r\nContent-Type: application/json\r\nContent-Length: 7\r\n\r\n{\"a\":1}",
    "POST /mcp HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nhello\r\n3;ext=1\r\nabc\r\n0\r\nX-T: y\r\n\r\n",
    "POST /cli/call HTTP/1.1\r\nHost: a\r\nExpect: 100-continue\r\nContent-Length: 2\r\n\r\n{}",
    "GET / HTTP/1.0\r\nConnection: keep-alive\r\n\r\n",
    "\r\nDELETE /mcp/fx HTTP/1.1\nHost: [::1]:7878\nMcp-Session-Id: abc\nAuthorization: Bearer t\n\n",
    "OPTIONS * HTTP/1.1\r\nHost: a\r\nOrigin: http://localhost\r\nX-Empty:\r\nX-Ws: \t v \t\r\n\r\n",
    "POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\n\r\n000a\r\n0123456789\r\n0\r\n\r\nGET / HTTP/1.1\r\n",
];

/// What mutations splice in: framing headers, line ends, lone bytes that matter.
const PIECES: &[&str] = &[
    "\r\n",
    "\n",
    "\r",
    " ",
    "\t",
    ":",
    ";",
    ",",
    "\0",
    "\u{7f}",
    "\u{e9}",
    "0",
    "f",
    "Content-Length: 5\r\n",
    "Content-Length: 99999999999999999999999\r\n",
    "Content-Length: -1\r\n",
    "Transfer-Encoding: chunked\r\n",
    "Transfer-Encoding: gzip, chunked\r\n",
    "Host: b\r\n",
    "Connection: close\r\n",
    "Connection: keep-alive\r\n",
    " folded\r\n",
    "HTTP/1.0",
    "HTTP/2.0",
    "http://a/",
    "ffffffffffffffff\r\n",
    "10000000000000000\r\n",
    "0\r\n\r\n",
];

/// One case's bytes: a seed request mutated a few times, or (sometimes) random bytes.
pub(super) fn case(rng: &mut Rng) -> Vec<u8> {
    if rng.one_in(10) {
        let n = rng.below(200);
        return (0..n).map(|_| rng.next() as u8).collect();
    }
    let mut b = rng.pick(SEEDS).as_bytes().to_vec();
    for _ in 0..1 + rng.below(4) {
        let at = rng.below(b.len() + 1);
        match rng.below(8) {
            0 if !b.is_empty() => {
                let i = rng.below(b.len());
                b[i] ^= 1 << rng.below(8);
            }
            1 => b.insert(at, rng.next() as u8),
            2 => {
                let end = (at + rng.below(16)).min(b.len());
                b.drain(at..end);
            }
            3 => {
                let end = (at + rng.below(32)).min(b.len());
                let dup = b[at..end].to_vec();
                b.splice(at..at, dup);
            }
            4 => b.truncate(at),
            5 => {
                // A long run: past a line, chunk-line or header-count limit now and then.
                let len = *rng.pick(&[10usize, 1100, 17_000]);
                let byte = *rng.pick(b"x0 \n");
                b.splice(at..at, std::iter::repeat_n(byte, len));
            }
            _ => {
                let piece = rng.pick(PIECES).as_bytes();
                b.splice(at..at, piece.iter().copied());
            }
        }
    }
    b
}

/// Bytes, shown escaped.
#[derive(PartialEq)]
struct Bytes(Vec<u8>);

impl std::fmt::Debug for Bytes {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "\"{}\"", self.0.escape_ascii())
    }
}

/// What a byte stream comes to as a request head, fed in these pieces: the head's bytes
/// (parsing them is a function of those alone) and how many bytes were taken, or why not.
#[derive(Debug, PartialEq)]
enum HeadOutcome {
    Complete(Bytes, usize),
    Refused(HeadError),
    /// The input ended first (what the server makes of that: [`HeadReader::end_of_input`]).
    Ended(HeadError),
}

fn head_in_pieces(input: &[u8], cuts: &[usize]) -> Result<HeadOutcome, String> {
    let mut r = HeadReader::new();
    let mut taken = 0;
    let mut from = 0;
    for &to in cuts.iter().chain(std::iter::once(&input.len())) {
        let piece = &input[from..to];
        from = to;
        match r.feed(piece) {
            Err(e) => return Ok(HeadOutcome::Refused(e)),
            Ok((used, done)) => {
                if used > piece.len() {
                    return Err(format!("took {used} bytes of {}", piece.len()));
                }
                taken += used;
                if done {
                    return Ok(HeadOutcome::Complete(Bytes(r.collected().to_vec()), taken));
                }
                if used < piece.len() {
                    return Err(format!("stopped at {used} of {} bytes without a head", piece.len()));
                }
            }
        }
    }
    Ok(HeadOutcome::Ended(r.end_of_input()))
}

/// What a byte stream comes to as a chunked body: the body and the bytes taken, an error,
/// or (None) the input ended first.
type BodyOutcome = Option<Result<(Vec<u8>, usize), BodyError>>;

/// A chunked body fed in these pieces.
fn chunked_in_pieces(input: &[u8], cuts: &[usize], limit: usize) -> Result<BodyOutcome, String> {
    let mut c = Chunked::new(limit);
    let mut out = Vec::new();
    let mut taken = 0;
    let mut from = 0;
    for &to in cuts.iter().chain(std::iter::once(&input.len())) {
        let piece = &input[from..to];
        from = to;
        match c.feed(piece, &mut out) {
            Err(e) => return Ok(Some(Err(e))),
            Ok((used, done)) => {
                if used > piece.len() {
                    return Err(format!("the body took {used} bytes of {}", piece.len()));
                }
                taken += used;
                if done {
                    if out.len() > limit {
                        return Err(format!("a body of {} bytes past its limit of {limit}", out.len()));
                    }
                    return Ok(Some(Ok((std::mem::take(&mut out), taken))));
                }
                if used < piece.len() {
                    return Err(format!("the body stopped at {used} of {} bytes", piece.len()));
                }
            }
        }
    }
    Ok(None)
}

/// Where to split an input: at every byte when it is short, else at some.
fn cut_points(rng: &mut Rng, len: usize) -> Vec<usize> {
    if len <= SPLIT_ALL_UP_TO {
        (0..=len).collect()
    } else {
        (0..12).map(|_| rng.below(len + 1)).collect()
    }
}

/// Check one case's invariants; Err says which failed.
fn check(rng: &mut Rng, input: &[u8]) -> Result<(), String> {
    let whole = head_in_pieces(input, &[])?;
    let cuts = cut_points(rng, input.len());
    for &k in &cuts {
        let split = head_in_pieces(input, &[k])?;
        if split != whole {
            return Err(format!("split at {k}: {split:?}, whole: {whole:?}"));
        }
    }
    if input.len() <= SPLIT_ALL_UP_TO {
        let bytewise: Vec<usize> = (1..input.len()).collect();
        let split = head_in_pieces(input, &bytewise)?;
        if split != whole {
            return Err(format!("a byte at a time: {split:?}, whole: {whole:?}"));
        }
    }
    let rest = match &whole {
        HeadOutcome::Complete(raw, taken) => {
            if *taken > input.len() {
                return Err(format!("the head took {taken} bytes of {}", input.len()));
            }
            if let Ok(head) = parse_head(raw.0.clone()) {
                let again = head.to_bytes();
                match head_of(&again) {
                    Ok((h, n)) if h == head && n == again.len() => {}
                    other => {
                        return Err(format!(
                            "{head:?} re-serialised as {:?} parsed to {other:?}",
                            String::from_utf8_lossy(&again)
                        ))
                    }
                }
            }
            &input[*taken..]
        }
        _ => input,
    };
    // Whatever follows (or the whole input) as a chunked body.
    let limit = *rng.pick(&[0usize, 5, 64, 1 << 20]);
    let whole = chunked_in_pieces(rest, &[], limit)?;
    for &k in &cut_points(rng, rest.len()) {
        let split = chunked_in_pieces(rest, &[k], limit)?;
        if split != whole {
            return Err(format!("body split at {k}: {split:?}, whole: {whole:?}"));
        }
    }
    Ok(())
}

fn env_u64(name: &str) -> Option<u64> {
    let v = std::env::var(name).ok()?;
    let v = v.trim();
    let parsed = match v.strip_prefix("0x") {
        Some(hex) => u64::from_str_radix(hex, 16),
        None => v.parse(),
    };
    Some(parsed.unwrap_or_else(|_| panic!("{name}=`{v}` is not a number")))
}

/// `b` escaped, cut short past 2,000 characters (`MCPCTL_FUZZ_ONLY` prints a case whole).
fn escaped(b: &[u8], whole: bool) -> String {
    let s = b.escape_ascii().to_string();
    match s.char_indices().nth(2000) {
        Some((i, _)) if !whole => format!("{}… ({} bytes)", &s[..i], b.len()),
        _ => s,
    }
}

#[test]
fn the_parser_keeps_its_invariants_on_mutated_and_random_input() {
    let seed = env_u64("MCPCTL_FUZZ_SEED").unwrap_or(DEFAULT_SEED);
    let iters = env_u64("MCPCTL_FUZZ_ITERS").unwrap_or(DEFAULT_ITERS);
    let only = env_u64("MCPCTL_FUZZ_ONLY");
    match only {
        Some(i) => eprintln!("http1 parser fuzz: seed {seed:#x}, case {i} alone"),
        None => eprintln!("http1 parser fuzz: seed {seed:#x}, {iters} cases"),
    }
    let (mut parsed, mut refused) = (0u64, 0u64);
    for iter in only.map(|i| i..i + 1).unwrap_or(0..iters) {
        let mut rng = Rng::for_case(seed, iter);
        let input = case(&mut rng);
        if only.is_some() {
            eprintln!("case {iter}: {}", escaped(&input, true));
        }
        let ran = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| check(&mut rng, &input)));
        let failed = match ran {
            Ok(Ok(())) => None,
            Ok(Err(why)) => Some(why),
            Err(p) => Some(format!(
                "panicked: {}",
                p.downcast_ref::<String>().map(String::as_str).or(p.downcast_ref::<&str>().copied()).unwrap_or("?")
            )),
        };
        if let Some(why) = failed {
            panic!(
                "http1 parser fuzz, seed {seed:#x}, case {iter}: {why}\n  input: {}\n  replay: MCPCTL_FUZZ_SEED={seed:#x} MCPCTL_FUZZ_ONLY={iter} cargo test --lib http1::fuzz -- --nocapture",
                escaped(&input, false)
            );
        }
        match head_of(&input) {
            Ok(_) => parsed += 1,
            _ => refused += 1,
        }
    }
    eprintln!("http1 parser fuzz: {parsed} heads parsed, {refused} refused or incomplete");
    // The corpus must reach past the first checks, or the fuzz tests little.
    if only.is_none() && iters >= 1000 {
        assert!(parsed * 10 >= iters, "only {parsed} of {iters} cases parsed");
    }
}
