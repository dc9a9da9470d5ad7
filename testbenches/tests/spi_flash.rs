//! `rtl/spi_flash_reader.v` against the flash model `testbenches/rtl/spi_flash_model.v` under
//! Icarus (testbench `fixtures/spi_flash_tb.v`): the words it reads, the wake-up from deep
//! power-down and its exact timing; and both files under `verilator --lint-only -Wall`.
//! Unlike the other RTL tests these fail when a tool is missing: nothing else checks the reader.

use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicUsize, Ordering};

use sim::stimulus::splitmix64;
use testbenches::{available, Rtl};

/// Where the image sits in flash, as `iceprog -o 1M` would put it.
const BASE: u32 = 0x10_0000;
const IMAGE_WORDS: usize = 37;
/// Edge of the first `w_valid` less `WAKE_CYCLES`, counting from the first edge that sees `rst`
/// low: CS falls at edge 0 and rises at 17 after the 8 SCK periods of 0xAB, falls again
/// `WAKE_CYCLES` edges later, and after 32 SCK periods of 0x03 and the address the last bit of
/// the first word is taken 31 edges into the data (17 + 64 + 31 = 112); the testbench sees
/// `w_valid` one edge after it is set.
const FIRST_WORD: u64 = 113;
/// Edges per word: 16 bits at SCK = clk / 2, back to back.
const WORD_CYCLES: u64 = 32;
/// Edges the testbench watches after `done` (its `AFTER`).
const AFTER_DONE: u64 = 64;

fn reader_v() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .expect("testbenches sits in the workspace")
        .join("rtl/spi_flash_reader.v")
}

fn model_v() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("rtl/spi_flash_model.v")
}

fn image() -> Vec<u8> {
    (0..2 * IMAGE_WORDS as u64)
        .map(|i| splitmix64(0x5f1a_5400 + i) as u8)
        .collect()
}

/// The image as the reader should deliver it: big-endian 16-bit words.
fn image_words() -> Vec<u16> {
    image()
        .chunks(2)
        .map(|c| u16::from_be_bytes([c[0], c[1]]))
        .collect()
}

struct Case {
    name: &'static str,
    addr: u32,
    words: usize,
    wake_cycles: u64,
    powered_down: bool,
    /// The testbench keeps the 0xAB transaction from the flash.
    hide_wake: bool,
}

impl Case {
    fn new(name: &'static str) -> Case {
        Case {
            name,
            addr: BASE,
            words: IMAGE_WORDS,
            wake_cycles: 100,
            powered_down: true,
            hide_wake: false,
        }
    }
}

/// What the testbench reported, as (edge, ...) in order.
#[derive(Debug, Default)]
struct Run {
    cs: Vec<(u64, bool, u64)>,
    words: Vec<(u64, u16)>,
    done: Option<u64>,
    end: Option<u64>,
}

impl Run {
    fn assert_words(&self, case: &Case, want: &[u16]) {
        let got: Vec<u16> = self.words.iter().map(|w| w.1).collect();
        assert!(
            got == want,
            "{}: words\n got  {got:04x?}\n want {want:04x?}",
            case.name
        );
    }
}

fn simulate(case: &Case) -> Run {
    if let Err(e) = available(Rtl::Icarus) {
        panic!("{e}");
    }
    let dir = PathBuf::from(env!("CARGO_TARGET_TMPDIR"))
        .join("spi_flash")
        .join(case.name);
    std::fs::create_dir_all(&dir).unwrap();
    let hex: String = image().iter().map(|b| format!("{b:02x}\n")).collect();
    std::fs::write(dir.join("flash.hex"), hex).unwrap();

    let tb = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/spi_flash_tb.v");
    let params = [
        ("BASE", u64::from(BASE)),
        ("BYTES", 2 * IMAGE_WORDS as u64),
        ("POWERED_DOWN", u64::from(case.powered_down)),
        ("ADDR", u64::from(case.addr)),
        ("WORDS", case.words as u64),
        ("WAKE_CYCLES", case.wake_cycles),
        ("HIDE_WAKE", u64::from(case.hide_wake)),
    ];
    let iverilog = tools::require(&["iverilog"], tools::INSTALL).unwrap();
    let vvp = tools::require(&["vvp"], tools::INSTALL).unwrap();
    let mut run = tools::Run::new("compile", iverilog, dir.join("iverilog.log"))
        .args(["-g2012", "-s", "spi_flash_tb", "-o"])
        .arg(dir.join("tb.vvp"));
    for (name, value) in params {
        run = run.arg(format!("-Pspi_flash_tb.{name}={value}"));
    }
    let ran = run
        .arg(reader_v())
        .arg(model_v())
        .arg(tb)
        .run()
        .unwrap_or_else(|e| panic!("{}: {e}", case.name));
    let text = ran.text();
    assert!(text.is_empty(), "{}: iverilog warned:\n{text}", case.name);

    // The model's IMAGE is a relative name, so vvp runs next to it.
    let text = tools::Run::new("simulate", vvp, "vvp.log")
        .args(["-n", "tb.vvp"])
        .current_dir(&dir)
        .run()
        .unwrap_or_else(|e| panic!("{}: {e}", case.name))
        .text();

    parse(&text).unwrap_or_else(|e| panic!("{}: {e}\n{text}", case.name))
}

fn parse(text: &str) -> Result<Run, String> {
    let mut run = Run::default();
    for line in text.lines() {
        let f: Vec<&str> = line.split_whitespace().collect();
        let num = |i: usize, radix: u32| {
            f.get(i)
                .and_then(|s| u64::from_str_radix(s, radix).ok())
                .ok_or_else(|| format!("bad line {line:?}"))
        };
        match f.first().copied() {
            Some("C") => run.cs.push((num(1, 10)?, num(2, 2)? == 1, num(3, 10)?)),
            Some("W") => run.words.push((num(1, 10)?, num(2, 16)? as u16)),
            Some("D") => run.done = Some(num(1, 10)?),
            Some("END") => run.end = Some(num(1, 10)?),
            Some("ERROR" | "TIMEOUT") => return Err(format!("testbench: {line}")),
            _ => return Err(format!("unexpected output {line:?}")),
        }
    }
    if run.end.is_none() {
        return Err("the testbench stopped without END".into());
    }
    Ok(run)
}

/// The reader's documented timing, edge by edge, and nothing after `done`.
fn check_timing(case: &Case, run: &Run) {
    let w = case.wake_cycles;
    let n = case.words as u64;
    let words: Vec<u64> = run.words.iter().map(|x| x.0).collect();
    let want: Vec<u64> = (0..n).map(|i| FIRST_WORD + w + WORD_CYCLES * i).collect();
    assert_eq!(words, want, "{}: w_valid edges", case.name);
    let last = want[want.len() - 1];
    // CS: falls for 0xAB; rises after its 8 SCK pulses; stays high WAKE_CYCLES clocks (tRES1);
    // falls for 0x03; rises after the command, the address and the data.
    let cs = vec![
        (1, false, 0),
        (18, true, 8),
        (18 + w, false, 0),
        (last + 2, true, 32 + 16 * n),
    ];
    assert_eq!(
        run.cs, cs,
        "{}: CS edges (edge, cs_n, SCK pulses)",
        case.name
    );
    assert_eq!(run.done, Some(last + 2), "{}: done", case.name);
    assert_eq!(run.end, Some(last + 2 + AFTER_DONE), "{}: end", case.name);
}

#[test]
fn reads_the_image_from_a_flash_left_awake() {
    let case = Case {
        powered_down: false,
        // tRES1 at 12 MHz, the iCEBreaker's oscillator.
        wake_cycles: 36,
        ..Case::new("awake")
    };
    let run = simulate(&case);
    run.assert_words(&case, &image_words());
    check_timing(&case, &run);
}

#[test]
fn wakes_the_flash_from_deep_power_down() {
    let words = image_words();
    // Otherwise the reads below could not tell a sleeping flash from the image.
    assert!(!words.contains(&0xffff));

    let case = Case::new("asleep");
    let run = simulate(&case);
    run.assert_words(&case, &words);
    check_timing(&case, &run);

    // A reader whose 0xAB never arrives reads only what a sleeping flash drives: all ones.
    let case = Case {
        hide_wake: true,
        ..Case::new("wake_hidden")
    };
    let run = simulate(&case);
    run.assert_words(&case, &[0xffff; IMAGE_WORDS]);
    check_timing(&case, &run);
}

#[test]
fn reads_from_its_own_address() {
    let words = image_words();
    // One word in: the image's tail, then erased flash past its end.
    let case = Case {
        addr: BASE + 2,
        ..Case::new("one_word_in")
    };
    let run = simulate(&case);
    let mut want = words[1..].to_vec();
    want.push(0xffff);
    run.assert_words(&case, &want);
    check_timing(&case, &run);

    // Odd address, one byte before the image, and the shortest wake-up the reader allows.
    let image = image();
    let case = Case {
        addr: BASE - 1,
        words: 3,
        wake_cycles: 1,
        ..Case::new("byte_before")
    };
    let run = simulate(&case);
    let want: Vec<u16> = std::iter::once(0xff)
        .chain(image[..5].iter().copied())
        .collect::<Vec<u8>>()
        .chunks(2)
        .map(|c| u16::from_be_bytes([c[0], c[1]]))
        .collect();
    run.assert_words(&case, &want);
    check_timing(&case, &run);

    // A single word.
    let case = Case {
        words: 1,
        ..Case::new("single")
    };
    let run = simulate(&case);
    run.assert_words(&case, &words[..1]);
    check_timing(&case, &run);
}

fn lint(file: &Path, params: &[&str]) {
    let verilator =
        tools::require(&["verilator"], tools::INSTALL).unwrap_or_else(|e| panic!("{e}"));
    static N: AtomicUsize = AtomicUsize::new(0);
    let log = std::env::temp_dir().join(format!(
        "flipchip-spi-lint-{}-{}.log",
        std::process::id(),
        N.fetch_add(1, Ordering::Relaxed)
    ));
    let text = tools::Run::new("lint", verilator, &log)
        .args(["--lint-only", "-Wall"])
        .args(params)
        .arg(file)
        .default_timeout(tools::limits::LINT)
        .run()
        .unwrap_or_else(|e| panic!("{e}"))
        .text();
    let _ = std::fs::remove_file(&log);
    assert!(
        text.is_empty(),
        "verilator --lint-only -Wall {params:?} {}:\n{text}",
        file.display(),
    );
}

#[test]
fn verilator_lint_is_clean() {
    // Widths follow the parameters, so lint a few shapes: defaults, a real layer's weights,
    // the smallest counter, and the largest read.
    for params in [
        &[][..],
        &["-GWORDS=12544"][..],
        &["-GWORDS=1", "-GWAKE_CYCLES=1"][..],
        &["-GWORDS=1048576", "-GWAKE_CYCLES=300"][..],
    ] {
        lint(&reader_v(), params);
    }
    for params in [&[][..], &["-GBYTES=74"][..]] {
        lint(&model_v(), params);
    }
}
